// Frames wait here for the next animation frame, oldest first, and each animation frame shows one
// step. Frames do not arrive evenly: when the training and the browser share a busy CPU, or a
// chart's redraw holds up an animation frame, two can land inside one animation frame, and drawing
// only the newest would skip the other. Shown one step per animation frame (60 a second), a
// burst is spread over the next few instead, at the cost of at most a frame or two of latency.
// Twins (compare mode) arrive as a pair with the same step and are shown together. At most
// `maxSteps` steps wait: past that (a hidden tab, a page slower than the run) the oldest are
// applied to the charts, which record them, without being drawn, so latency and memory stay
// bounded.

export class FrameQueue {
  /** `apply(frame)` hands one frame to the charts; the next draw shows it. */
  constructor(apply, { maxSteps = 3 } = {}) {
    this.apply = apply;
    this.maxSteps = maxSteps;
    this.frames = [];
  }

  get length() {
    return this.frames.length;
  }

  push(frame) {
    this.frames.push(frame);
    while (this.steps() > this.maxSteps) this.applyStep();
  }

  /** Apply the oldest step's frames (one, or a twin pair); false when none were waiting. */
  applyStep() {
    if (this.frames.length === 0) return false;
    const step = this.frames[0].step;
    let count = 1;
    while (count < this.frames.length && this.frames[count].step === step) count += 1;
    for (const frame of this.frames.splice(0, count)) this.apply(frame);
    return true;
  }

  /** How many steps are waiting (frames of one step count once). */
  steps() {
    let steps = 0;
    for (let i = 0; i < this.frames.length; i++) {
      if (i === 0 || this.frames[i].step !== this.frames[i - 1].step) steps += 1;
    }
    return steps;
  }

  /** Forget waiting frames (a new run, a reset). */
  clear() {
    this.frames = [];
  }
}
