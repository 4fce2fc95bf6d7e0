// A bounded record of a run's frames, thinned evenly (static/js/recorder.js keeps their
// statistics for the CSV, static/js/timeline.js the frames whole for replay). Past `cap` entries
// every other ordinary entry goes and the stride doubles, so an hour-long run costs what a few
// minutes do (as the room's history on the server, app/rooms.py RoomHistory); frames that carry
// a measurement (test accuracy, ICS, the landscape) are kept, unless they alone fill half of it.

/** Whether a wire frame carries a reading later frames do not repeat (app/training.py,
 *  Snapshot.has_measurement). */
export const measured = (frame) =>
  (frame.test_acc !== null && frame.test_acc !== undefined) || Boolean(frame.ics) || Boolean(frame.landscape);

export class ThinnedRecord {
  constructor(cap) {
    this.cap = Math.max(2, cap);
    this.clear();
  }

  clear() {
    this.entries = [];
    this.marked = []; // per entry: it carries a measurement
    this.stride = 1; // keep every stride-th ordinary frame
    this.seen = 0;
  }

  get length() { return this.entries.length; }

  /** Offer a frame (`entry`: what to keep of it); `pinned`: an entry thinning must keep.
   *  Returns whether it was kept. */
  add(frame, entry = frame, pinned = null) {
    this.seen += 1;
    const isMeasured = measured(frame);
    if (!isMeasured && this.seen % this.stride !== 0) return false;
    this.entries.push(entry);
    this.marked.push(isMeasured);
    if (this.entries.length > this.cap) this.thin(pinned);
    return true;
  }

  thin(pinned) {
    const many = this.marked.filter(Boolean).length > this.cap / 2;
    let ordinary = 0;
    let kept = 0;
    const keep = this.entries.map((entry, i) => entry === pinned
      || (this.marked[i] ? !many || kept++ % 2 === 0 : ordinary++ % 2 === 0));
    this.entries = this.entries.filter((_, i) => keep[i]);
    this.marked = this.marked.filter((_, i) => keep[i]);
    this.stride *= 2;
  }
}
