// Loss on a log axis, with train and test accuracy on a 0–1 axis on the right. Test accuracy is
// measured every `eval_every` steps only (null in the frames between), so it is drawn as points.

import { PALETTE, PLOT_CONFIG, axis, baseLayout, emptyLayout, sizeOf } from "./theme.js";
import { History, extent, growingEnd } from "./history.js";
import { StableRange } from "./scale.js";
import { formatValue } from "./format.js";

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
    this.steps = run?.config?.steps ?? 1;
    this.xEnd = 0;
    this.train = new History(["step", "loss", "acc"], this.options);
    this.test = new History(["step", "acc"], this.options);
    this.logRange.reset();
    this.dirty = true;
  }

  update(frame) {
    this.xEnd = growingEnd(this.xEnd, frame.step, this.steps);
    const loss = frame.loss !== null && frame.loss > 0 ? frame.loss : null;
    this.train.push({ step: frame.step, loss, acc: frame.train_acc });
    if (frame.test_acc !== null && frame.test_acc !== undefined) {
      this.test.push({ step: frame.step, acc: frame.test_acc });
    }
    this.dirty = true;
  }

  render() {
    if (!this.dirty) return false;
    this.dirty = false;
    const train = this.train.columns;
    const test = this.test.columns;
    const traces = [
      {
        type: "scatter", mode: "lines", x: train.step, y: train.acc, yaxis: "y2",
        line: { color: PALETTE.blue, width: 2 },
      },
      {
        type: "scatter", mode: "lines+markers", x: test.step, y: test.acc, yaxis: "y2",
        line: { color: PALETTE.green, width: 2 }, marker: { size: 7, color: PALETTE.green },
      },
      { type: "scatter", mode: "lines", x: train.step, y: train.loss, line: { color: PALETTE.vermillion, width: 2.5 } },
    ];
    const [lo, hi] = extent(train.loss);
    const logRange = lo > 0 ? this.logRange.fit(Math.log10(lo), Math.log10(hi)) : null;
    const empty = this.train.length === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 52, r: 44, t: 6, b: 34 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5 }),
      yaxis: axis({
        type: "log",
        range: logRange ?? [-2, 1],
        tickfont: { size: 14, color: PALETTE.vermillion },
        ...logTicks(logRange ?? [-2, 1]),
      }),
      yaxis2: axis({
        overlaying: "y",
        side: "right",
        range: [0, 1.04],
        tickvals: [0, 0.5, 1],
        ticktext: ["0", ".5", "1"],
        showgrid: false,
        tickfont: { size: 14, color: PALETTE.blue },
      }),
      datarevision: this.train.length,
      ...(empty ? emptyLayout(undefined, { withY2: true }) : {}),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
