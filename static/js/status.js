// The status line under the ridge plot and the alert area over the stage.

import { formatCount, formatValue } from "./charts/format.js";

const STATE_LABELS = {
  diverged: (step) => `diverged at step ${formatCount(step)}`,
  timeout: (step) => `time limit at step ${formatCount(step)}`,
  failed: () => "run failed",
};

/** Step / steps, steps per second, learning rate, state and device of the current run. */
export class StatusLine {
  constructor(elements) {
    this.elements = elements; // {root, state, step, stepLabel, steps, rate, lr, device, params}
    this.shown = new Map();   // element -> text on screen, so unchanged text is never rewritten
    this.frame = null;
  }

  /** A `started` message: the run's length, device and size. */
  setRun(started) {
    this.frame = null;
    delete this.elements.root.dataset.idle;
    delete this.elements.root.dataset.sweep;
    this.text("stepLabel", "step");
    this.text("steps", formatCount(started.config.steps));
    this.text("device", started.device);
    this.text("params", formatCount(started.params));
    this.text("step", "0");
    this.text("rate", "–");
    this.text("lr", formatValue(started.config.lr));
  }

  /** A sweep's `started`: progress counts points, not steps. */
  setSweep(started) {
    this.frame = null;
    delete this.elements.root.dataset.idle;
    this.elements.root.dataset.sweep = ""; // no steps/s, device or size: a sweep is many runs
    const { lrs, runs } = started.sweep;
    this.text("stepLabel", "sweep point");
    this.text("step", "0");
    this.text("steps", formatCount(lrs.length * runs.length));
    this.text("rate", "–");
    this.text("lr", "–");
    this.text("device", "–");
    this.text("params", "–");
  }

  /** One `sweep_result`: the point that just finished. */
  sweepPoint(result) {
    this.text("step", formatCount(result.index + 1));
    this.text("lr", formatValue(result.lr));
  }

  clear() {
    this.frame = null;
    this.elements.root.dataset.idle = "";
    delete this.elements.root.dataset.sweep;
    for (const name of ["step", "steps", "rate", "lr", "device", "params"]) this.text(name, "–");
    this.text("stepLabel", "step");
  }

  update(frame) {
    this.frame = frame;
  }

  /** Draw the newest frame's numbers (once per animation frame). */
  render() {
    const frame = this.frame;
    if (!frame) return;
    this.text("step", formatCount(frame.step));
    this.text("rate", frame.steps_per_s ? formatCount(frame.steps_per_s) : "–");
    this.text("lr", formatValue(frame.lr));
  }

  /** running / paused / done / stopped / diverged (loud) / timeout / failed / ready / offline /
   *  starting, or a waiting message shown as it is. */
  setState(state, step = null) {
    const element = this.elements.state;
    if (element.dataset.state !== state) element.dataset.state = state;
    const label = STATE_LABELS[state]?.(step) ?? state;
    this.text("state", label);
  }

  text(name, value) {
    const element = this.elements[name];
    if (this.shown.get(element) === value) return;
    this.shown.set(element, value);
    element.textContent = value;
  }
}

/** Messages for the user over the top of the stage; one per `key`, each with a close button. */
export class Alerts {
  constructor(container) {
    this.container = container;
    this.byKey = new Map();
  }

  show(key, title, message) {
    this.dismiss(key);
    const alert = document.createElement("div");
    alert.className = "alert";
    alert.dataset.key = key;
    const text = document.createElement("p");
    text.className = "alert-text";
    const strong = document.createElement("b");
    strong.textContent = title;
    text.append(strong, " ", message);
    const close = document.createElement("button");
    close.type = "button";
    close.className = "alert-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => this.dismiss(key));
    alert.append(text, close);
    this.container.append(alert);
    this.byKey.set(key, alert);
  }

  dismiss(key) {
    this.byKey.get(key)?.remove();
    this.byKey.delete(key);
  }

  clear() {
    for (const key of [...this.byKey.keys()]) this.dismiss(key);
  }
}
