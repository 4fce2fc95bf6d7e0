// The run's timeline: every chart at any recorded moment (issue: record, replay, export).
//
// The page keeps the frames it received (whole, histograms and all; bounded: past `cap` they are
// thinned evenly, every other one going and the stride doubling, frames that carry a measurement
// kept). Dragging the slider (or [ / ] one recorded frame, Home / End) shows that moment: the
// charts are reset and given the recorded frames up to it, exactly as they were given the live
// ones, so the ridge, band, loss, health and instruments all show that step. Meanwhile the live
// run goes on being recorded; "Live" (or End at the newest frame) returns to it. Play replays the
// recording from the moment shown at 0.5-4x the speed it was recorded at (frames' `t`). It works
// paused, after the run ended and in compare mode (A and B are recorded side by side).

import { ThinnedRecord } from "./thinned.js";

export class Timeline {
  /** `elements`: {box, slider, step, live, play, speed}; `show(frames)` resets the charts to the
   *  run and gives them `frames` (oldest first): a recorded moment, or all of them going live. */
  constructor(elements, { show, cap = 600 }) {
    this.elements = elements;
    this.show = show;
    this.record = new ThinnedRecord(cap);
    this.timer = null;
    this.index = null; // the recorded frame shown; null: live
    this.reset(null);
    elements.slider.addEventListener("input", () => this.seek(Number(elements.slider.value)));
    elements.live.addEventListener("click", () => this.toLive());
    elements.play.addEventListener("click", () => (this.timer ? this.stopPlayback() : this.playBack()));
  }

  /** A new run (its `started`; null: none): nothing recorded, live. */
  reset(started) {
    this.stopPlayback();
    this.started = started;
    this.record.clear();
    this.index = null;
    this.render();
  }

  get frames() { return this.record.entries; }

  get replaying() { return this.index !== null; }

  /** Record a live frame; true when the charts should show it (live), false while replaying. */
  add(frame) {
    if (!this.started) return true;
    const shown = this.replaying ? this.frames[this.index] : null; // thinning keeps it
    this.record.add(frame, frame, shown);
    if (shown) this.index = this.frames.indexOf(shown);
    this.render();
    return !this.replaying;
  }

  /** Show recorded frame `index` (clamped); the charts get every recorded frame up to it. */
  seek(index) {
    if (!this.frames.length) return;
    const last = this.frames.length - 1;
    const at = Math.max(0, Math.min(last, Math.round(index)));
    this.index = at;
    // Twins share a step: show both of the step reached.
    let end = at + 1;
    while (end < this.frames.length && this.frames[end].step === this.frames[at].step) end += 1;
    this.show(this.frames.slice(0, end));
    this.render();
  }

  /** One recorded frame (or twin pair) back or on. */
  nudge(direction) {
    if (!this.frames.length) return;
    let at = this.replaying ? this.index : this.frames.length - 1;
    const step = this.frames[at].step;
    if (direction < 0) {
      while (at > 0 && this.frames[at].step === step) at -= 1;
      while (at > 0 && this.frames[at - 1].step === this.frames[at].step) at -= 1;
    } else {
      while (at < this.frames.length - 1 && this.frames[at].step === step) at += 1;
    }
    this.seek(at);
  }

  first() { this.seek(0); }

  /** Show the recorded frame of `step` (the last one at or before it), or live for null: another
   *  page's timeline (a room's teacher's) followed here. Nothing moves when it already shows. */
  showStep(step) {
    if (step === null || step === undefined) return this.toLive();
    let at = -1;
    for (let i = 0; i < this.frames.length && this.frames[i].step <= step; i++) at = i;
    if (at < 0 || (this.replaying && this.frames[this.index].step === this.frames[at].step)) return;
    this.seek(at);
  }

  toLive() {
    this.stopPlayback();
    if (!this.replaying) return;
    this.index = null;
    this.show(this.frames);
    this.render();
  }

  /** Replay from the frame shown at the chosen speed, by the frames' own clock. */
  playBack() {
    if (!this.frames.length) return;
    if (!this.replaying || this.index >= this.frames.length - 1) this.seek(0);
    const speed = Number(this.elements.speed.value) || 1;
    const startWall = performance.now();
    const startT = this.frames[this.index].t ?? 0;
    const tick = () => {
      const due = startT + ((performance.now() - startWall) / 1000) * speed;
      let at = this.index;
      while (at < this.frames.length - 1 && (this.frames[at + 1].t ?? 0) <= due) at += 1;
      if (at !== this.index) this.seek(at);
      if (this.index >= this.frames.length - 1) this.stopPlayback();
      else this.timer = requestAnimationFrame(tick);
    };
    this.timer = requestAnimationFrame(tick);
    this.render();
  }

  stopPlayback() {
    if (this.timer) cancelAnimationFrame(this.timer);
    this.timer = null;
    this.render();
  }

  render() {
    const { box, slider, step, live, play } = this.elements;
    const count = this.frames.length;
    box.hidden = count === 0;
    slider.max = String(Math.max(0, count - 1));
    slider.value = String(this.replaying ? this.index : Math.max(0, count - 1));
    slider.disabled = count < 2;
    const shown = this.replaying ? this.frames[this.index] : this.frames.at(-1);
    step.textContent = shown ? `step ${shown.step}${this.replaying ? "" : " · live"}` : "";
    live.disabled = !this.replaying;
    live.setAttribute("aria-pressed", String(!this.replaying));
    play.textContent = this.timer ? "Pause replay" : "Replay";
    box.toggleAttribute("data-replaying", this.replaying);
  }
}
