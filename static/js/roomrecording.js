// A recording opened in a room, replayed on every viewer's page (docs/protocol.md, "Rooms";
// app/room_recordings.py). A recording runs to ~18 MB, far past a websocket message, so the
// teacher's page posts the file over HTTP with the room's control key; viewers are told
// (`room_recording`) and fetch it with their connection's token. Which recording the teacher's
// charts show and the timeline's step travel in the teacher's page state (`timeline`), so a
// following viewer opens the same recording and shows the same step, scrubbed or replayed.
//
//   const shared = new RoomRecording({ socket, room, show, seek });
//   shared.opened(text, recording);  // the teacher opened a file: the room gets it
//   shared.state(timeline)           // {recording, step}: published with the page state
//   shared.follow(state.timeline)    // a viewer: that recording, at that step

export class RoomRecording {
  /** `show({started, frames})` puts a recording on the charts; `seek(step)` shows the recorded
   *  frame of `step` (null: live); `parse(text)` reads a recording file (recording.js). */
  constructor({ socket, room, show, seek, parse }) {
    this.room = room;
    this.show = show;
    this.seek = seek;
    this.parse = parse;
    this.token = null;       // this connection's session token (hello), for fetching
    this.text = null;        // the teacher: the recording file this page shows
    this.shared = null;      // the teacher: {code, id} of the room that has it
    this.sharing = null;     // the teacher: the post in flight
    this.shown = null;       // the room's id of the recording the charts show (null: a live run)
    this.wanted = null;      // a viewer: the recording the teacher's state names
    this.fetched = new Map(); // id -> Promise of the parsed recording
    socket.on("hello", (message) => { this.token = message.upload?.token ?? null; });
    socket.on("room_recording", (message) => { if (this.room.viewing) this.fetch(message.id).catch(() => {}); });
    // A run (live, or the history of a room joined) replaces whatever recording was shown.
    socket.on("started", () => { this.shown = null; if (!this.room.viewing) this.text = null; });
  }

  /** The teacher (or anyone) opened a recording file on this page: a teacher's room gets it. */
  opened(text) {
    this.text = text;
    this.shared = null;
    this.shown = null;
    if (this.room.role === "teacher") this.share();
  }

  /** What the room publishes with the page state: the recording shown and the timeline's step. */
  state(timeline) {
    if (this.text && this.room.role === "teacher" && this.shared?.code !== this.room.code) this.share();
    const frame = timeline.replaying ? timeline.frames[timeline.index] : null;
    return { recording: this.shown, step: frame ? frame.step : null };
  }

  /** A viewer follows the teacher's `timeline` part: the recording it names (fetched once), at
   *  its step; without a recording, the live run's timeline at its step. */
  async follow(timeline) {
    if (!timeline) return;
    const { recording, step } = timeline;
    this.wanted = recording ?? null;
    if (recording && recording !== this.shown) {
      let parsed;
      try {
        parsed = await this.fetch(recording);
      } catch {
        return; // the room ended, or a newer recording replaced it: the next state says
      }
      if (this.wanted !== recording || recording === this.shown) return;
      this.show(parsed);
      this.shown = recording;
    }
    if (this.wanted === this.shown) this.seek(step ?? null);
  }

  // --- internals ---------------------------------------------------------------------------------

  async share() {
    if (this.sharing) return this.sharing;
    const { code } = this.room;
    const key = this.room.stored()?.key;
    if (!code || !key || !this.text) return null;
    this.sharing = (async () => {
      try {
        const reply = await fetch(`api/rooms/${encodeURIComponent(code)}/recording`, {
          method: "POST", headers: { "Content-Type": "application/json", "X-Room-Key": key }, body: this.text,
        });
        const answer = await reply.json().catch(() => ({}));
        if (!reply.ok) throw new Error(answer.message ?? `the server answered ${reply.status}`);
        this.shared = { code, id: answer.id };
        this.shown = answer.id;
      } catch (error) {
        this.shared = { code, id: null }; // tried: not again for this room
        this.room.alerts.show("room", "The class cannot see this recording:", error.message);
      } finally {
        this.sharing = null;
      }
    })();
    return this.sharing;
  }

  fetch(id) {
    if (!this.fetched.has(id)) {
      const code = this.room.code;
      const promise = (async () => {
        const reply = await fetch(`api/rooms/${encodeURIComponent(code)}/recording`, {
          headers: this.token ? { "X-Upload-Token": this.token } : {}, cache: "no-store",
        });
        if (!reply.ok || reply.headers.get("X-Recording-Id") !== id) throw new Error(`recording ${id} is not the room's`);
        return this.parse(await reply.text());
      })();
      promise.catch(() => this.fetched.delete(id)); // a later state may ask again
      this.fetched.clear(); // one recording at a time is kept
      this.fetched.set(id, promise);
    }
    return this.fetched.get(id);
  }
}
