// A transformer run's test accuracy in numbers, twice: the answers scored in one pass, and the
// answers written one token at a time (`test_acc_generated`, docs/protocol.md "Architectures").
// Shown for transformer runs only; the line is laid out when the run starts (no layout jump when
// the first value arrives) and its numbers change at most once per animation frame.

import { runOf, runsOf } from "./charts/runs.js";

/** "92%", or "–" when there is no value yet. */
export function formatAccuracy(value) {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : `${Math.round(100 * value)}%`;
}

export class AccuracyReadout {
  constructor(element) {
    this.element = element;
    element.innerHTML = '<span class="acc-test">test <b></b></span> · '
      + '<span class="acc-generated" title="Each answer token generated from the prompt and the model’s own earlier answers, '
      + 'on the first 128 test rows (the one-pass test accuracy uses every test row)">'
      + "one token at a time (128 rows) <b></b></span>";
    this.values = { test: element.querySelector(".acc-test b"), generated: element.querySelector(".acc-generated b") };
    this.reset(null);
  }

  /** A new run (`started`) or null. */
  reset(run) {
    this.runs = run ? runsOf(run) : [];
    const configs = this.runs.map((name) => run.configs?.[name] ?? run.config);
    this.shown = configs.some((config) => config?.arch === "transformer");
    this.latest = Object.fromEntries(this.runs.map((name) => [name, { test: null, generated: null }]));
    this.element.hidden = !this.shown;
    this.dirty = true;
  }

  update(frame) {
    if (!this.shown || (frame.test_acc ?? frame.test_acc_generated ?? null) === null) return;
    const latest = this.latest[runOf(frame)];
    if (!latest) return;
    latest.test = frame.test_acc ?? latest.test;
    latest.generated = frame.test_acc_generated ?? latest.generated;
    this.dirty = true;
  }

  render() {
    if (!this.dirty || !this.shown) return;
    this.dirty = false;
    for (const [key, element] of Object.entries(this.values)) {
      const twins = this.runs.length > 1;
      const text = this.runs.map((name) => `${twins ? `${name} ` : ""}${formatAccuracy(this.latest[name][key])}`).join("  ");
      if (element.textContent !== text) element.textContent = text;
    }
    this.element.toggleAttribute("data-has-value", Object.values(this.latest).some((v) => v.generated !== null));
  }
}
