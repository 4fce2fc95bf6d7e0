// The learning-rate sweep's controls: which rates, how many steps each, the Sweep button and the
// progress of a sweep under way (docs/protocol.md, "Sweeps"). The chart is charts/sweep.js.

import { formatCount, formatValue } from "./charts/format.js";

const DEFAULTS = Object.freeze({
  rates: [0.01, 0.03, 0.1, 0.3, 1, 3], // a log grid from 0.01 to 3, for presets without their own
  steps: 300,
  maxRates: 12,                        // the server's limit (MAX_SWEEP_POINTS)
  minRate: 1e-5,
  maxRate: 10,
});

/** Rates from text such as "0.01, 0.1 1": {rates} sorted and without repeats, or {error}. */
export function parseRates(text, limits = DEFAULTS) {
  const words = text.split(/[\s,;]+/).filter(Boolean);
  if (!words.length) return { error: "give at least one learning rate" };
  const rates = [];
  for (const word of words) {
    const rate = Number(word);
    if (!Number.isFinite(rate) || rate < limits.minRate || rate > limits.maxRate) {
      return { error: `each rate must be a number from ${limits.minRate} to ${limits.maxRate} (got “${word}”)` };
    }
    if (!rates.includes(rate)) rates.push(rate);
  }
  if (rates.length > limits.maxRates) return { error: `at most ${limits.maxRates} rates (got ${rates.length})` };
  return { rates: rates.sort((a, b) => a - b) };
}

export class SweepPanel {
  /** `elements`: {button, rates, steps, progressBox, progress, progressText, error}. */
  constructor(elements) {
    this.elements = elements;
    this.listeners = [];
    this.state = "idle"; // idle, running, done, stopped, failed
    this.results = 0;
    elements.button.addEventListener("click", () => this.request());
    for (const input of [elements.rates, elements.steps]) {
      input.addEventListener("input", () => this.showError(""));
      input.addEventListener("keydown", (event) => { if (event.key === "Enter") this.request(); });
    }
    this.setRates(DEFAULTS.rates);
  }

  /** `handler({lrs, steps})` when the user asks for a sweep. */
  onSweep(handler) { this.listeners.push(handler); }

  /** The rates a preset suggests, or the default grid. */
  setPreset(preset) {
    this.setRates(preset?.sweep_lrs ?? DEFAULTS.rates);
  }

  setRates(rates) {
    this.elements.rates.value = rates.map((rate) => String(rate)).join(", ");
  }

  /** Sweeping needs the connection and no run going (a sweep replaces the run). */
  setEnabled(enabled) {
    const button = this.elements.button;
    if (button.disabled === !enabled) return;
    button.disabled = !enabled;
    button.title = enabled ? "Train a short run at each rate" : "Wait for the run to end, or reset it (R)";
  }

  request() {
    if (this.elements.button.disabled) return;
    const parsed = parseRates(this.elements.rates.value);
    const steps = Number(this.elements.steps.value);
    if (parsed.error) return this.showError(parsed.error);
    if (!Number.isInteger(steps) || steps < 10 || steps > 5000) return this.showError("steps must be a whole number from 10 to 5000");
    this.showError("");
    for (const handler of this.listeners) handler({ lrs: parsed.rates, steps });
  }

  showError(text) {
    const error = this.elements.error;
    if (error.textContent !== text) error.textContent = text;
    error.hidden = !text;
    this.elements.rates.toggleAttribute("aria-invalid", Boolean(text));
  }

  /** A sweep's `started`. */
  started(sweep) {
    this.state = "running";
    this.results = 0;
    this.total = sweep.lrs.length * sweep.runs.length;
    this.elements.progress.max = this.total;
    this.elements.progress.value = 0;
    this.elements.progressBox.hidden = false;
    this.say(`0 / ${formatCount(this.total)}`);
  }

  /** One `sweep_result`. */
  result(result) {
    this.results = result.index + 1;
    this.elements.progress.value = this.results;
    const outcome = result.diverged ? "diverged" : `loss ${formatValue(result.final_loss)}`;
    this.say(`${formatCount(this.results)} / ${formatCount(result.total)} · lr ${formatValue(result.lr)} ${result.run}: ${outcome}`);
  }

  /** The sweep's final state. */
  ended(state) {
    if (this.state !== "running") return;
    this.state = state;
    const words = state === "done" ? "done" : state;
    this.say(`${formatCount(this.results)} / ${formatCount(this.total)} · ${words}`);
  }

  say(text) {
    if (this.elements.progressText.textContent !== text) this.elements.progressText.textContent = text;
  }
}
