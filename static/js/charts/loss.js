// Loss on a log axis, with train and test accuracy on a 0–1 axis on the right. Test accuracy is
// measured every `eval_every` steps only (null in the frames between), so it is drawn as points.
// Twin runs (compare mode) share the axes, A in blue and B in orange.

import {
  PALETTE, PLOT_CONFIG, RUN_COLORS, RUN_DASH, axis, baseLayout, emptyLayout, sizeOf, strokeWidth, typeSize,
} from "./theme.js";
import { History, extent, growingEnd } from "./history.js";
import { StableRange } from "./scale.js";
import { formatValue } from "./format.js";
import { runOf, runsOf } from "./runs.js";

/** Tick values for a log axis spanning [lo, hi] in log10 units: 1-2-5 steps, or whole decades
 *  when those would crowd the axis, at most about five labels. */
export function logTicks([lo, hi]) {
  const candidates = (mantissas) => {
    const values = [];
    for (let decade = Math.floor(lo); decade <= Math.ceil(hi); decade++) {
      for (const m of mantissas) {
        const value = Number((m * 10 ** decade).toPrecision(3));
        const at = Math.log10(value);
        if (at >= lo - 1e-9 && at <= hi + 1e-9) values.push(value);
      }
    }
    return values;
  };
  let values = candidates([1, 2, 5]);
  if (values.length > 5) values = candidates([1]);
  for (let every = 2; values.length > 5; every++) values = candidates([1]).filter((_, i) => i % every === 0);
  if (values.length < 2) values = candidates([1, 1.5, 2, 3, 5, 7]);
  return { tickmode: "array", tickvals: values, ticktext: values.map(formatValue) };
}

export class LossChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = options;
    this.logRange = new StableRange({ padding: 0.05, minSpan: 0.3 }); // log10 units
    this.reset(null);
  }

  reset(run) {
    this.runs = run ? runsOf(run) : ["A"];
    this.compare = this.runs.length > 1;
    this.steps = run?.config?.steps ?? 1;
    this.xEnd = 0;
    this.train = {};
    this.test = {};
    for (const name of this.runs) {
      this.train[name] = new History(["step", "loss", "acc"], this.options);
      this.test[name] = new History(["step", "acc"], this.options);
    }
    this.logRange.reset();
    this.dirty = true;
  }

  update(frame) {
    const name = runOf(frame);
    if (!this.train[name]) return;
    this.xEnd = growingEnd(this.xEnd, frame.step, this.steps);
    const loss = frame.loss !== null && frame.loss > 0 ? frame.loss : null;
    this.train[name].push({ step: frame.step, loss, acc: frame.train_acc });
    if (frame.test_acc !== null && frame.test_acc !== undefined) {
      this.test[name].push({ step: frame.step, acc: frame.test_acc });
    }
    this.dirty = true;
  }

  /** A single run: loss vermillion, train accuracy blue, test accuracy green dots. */
  singleTraces() {
    const train = this.train.A.columns;
    const test = this.test.A.columns;
    return [
      {
        type: "scatter", mode: "lines", x: train.step, y: train.acc, yaxis: "y2",
        line: { color: PALETTE.blue, width: strokeWidth(2) },
      },
      {
        type: "scatter", mode: "lines+markers", x: test.step, y: test.acc, yaxis: "y2",
        line: { color: PALETTE.green, width: strokeWidth(2) }, marker: { size: 7, color: PALETTE.green },
      },
      { type: "scatter", mode: "lines", x: train.step, y: train.loss, line: { color: PALETTE.vermillion, width: strokeWidth(2.5) } },
    ];
  }

  /** Twins: colour says the run (A blue, B orange), the line says the measure: loss thick,
   *  train accuracy thin and dotted, test accuracy with markers. */
  twinTraces() {
    const traces = [];
    for (const name of this.runs) {
      const color = RUN_COLORS[name];
      const train = this.train[name].columns;
      const test = this.test[name].columns;
      traces.push(
        {
          type: "scatter", mode: "lines", x: train.step, y: train.acc, yaxis: "y2", opacity: 0.6,
          line: { color, width: strokeWidth(1.5), dash: "dot" },
        },
        {
          type: "scatter", mode: "lines+markers", x: test.step, y: test.acc, yaxis: "y2",
          line: { color, width: strokeWidth(2), dash: RUN_DASH[name] },
          marker: { size: 7, color, symbol: name === "B" ? "diamond" : "circle" },
        },
      );
    }
    for (const name of this.runs) {
      const train = this.train[name].columns;
      const color = RUN_COLORS[name];
      traces.push({
        type: "scatter", mode: "lines", x: train.step, y: train.loss, line: { color, width: strokeWidth(2.5), dash: RUN_DASH[name] },
      });
    }
    return traces;
  }

  render() {
    if (!this.dirty) return false;
    this.dirty = false;
    const traces = this.compare ? this.twinTraces() : this.singleTraces();
    const [lo, hi] = extent(...this.runs.map((name) => this.train[name].columns.loss));
    const logRange = lo > 0 ? this.logRange.fit(Math.log10(lo), Math.log10(hi)) : null;
    const points = this.runs.reduce((sum, name) => sum + this.train[name].length, 0);
    const empty = points === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 52, r: 44, t: 6, b: 34 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5 }),
      yaxis: axis({
        type: "log",
        range: logRange ?? [-2, 1],
        tickfont: { size: typeSize(14), color: this.compare ? PALETTE.ink2 : PALETTE.vermillion },
        ...logTicks(logRange ?? [-2, 1]),
      }),
      yaxis2: axis({
        overlaying: "y",
        side: "right",
        range: [0, 1.04],
        tickvals: [0, 0.5, 1],
        ticktext: ["0", ".5", "1"],
        showgrid: false,
        tickfont: { size: typeSize(14), color: this.compare ? PALETTE.ink2 : PALETTE.blue },
      }),
      datarevision: points,
      ...(empty ? emptyLayout(undefined, { withY2: true }) : {}),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
