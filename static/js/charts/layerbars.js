// One bar per layer for the newest frame of each run (A beside B in compare mode): batch norm's
// running-average gaps in the train-vs-eval panel.

import { PALETTE, PLOT_CONFIG, RUN_COLORS, axis, baseLayout, emptyLayout, sizeOf, strokeWidth } from "./theme.js";
import { StableRange } from "./scale.js";
import { extent } from "./history.js";
import { logTicks } from "./loss.js";
import { runOf, runView, runsOf } from "./runs.js";

const DEFAULTS = Object.freeze({
  value: (layer) => null,     // the bar of one layer; null: no bar
  yType: "linear",
  floor: 0,                   // linear axes start here
  base: 0,                    // bars grow from here (1 for a ratio on a log axis: up above, down below)
  references: [],             // [{y}]: dashed guides (var_ratio's 1 = running averages match)
  emptyNote: "appears when a run starts",
});

export class LayerBarsChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = { ...DEFAULTS, ...options };
    this.yFit = new StableRange(this.options.yType === "log"
      ? { padding: 0.08, minSpan: 0.4 } : { padding: 0.08, floor: this.options.floor });
    this.hidden = false;
    this.reset(null);
  }

  reset(run) {
    this.runs = runsOf(run);
    this.depth = Math.max(1, ...this.runs.map((name) => runView(run, name).layers.length));
    this.frames = {};
    this.yFit.reset();
    this.dirty = true;
  }

  update(frame) {
    this.frames[runOf(frame)] = frame;
    this.dirty = true;
  }

  /** Bars with a value in the newest frames (tests and empty notes). */
  get points() {
    return Object.values(this.frames).reduce(
      (sum, frame) => sum + frame.layers.filter((layer) => this.valueOf(layer) !== null).length, 0);
  }

  valueOf(layer) {
    const value = this.options.value(layer);
    if (value === null || value === undefined || !Number.isFinite(value)) return null;
    return this.options.yType === "log" && value <= 0 ? null : value;
  }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    const traces = this.runs.map((name) => {
      const layers = this.frames[name]?.layers ?? [];
      return {
        type: "bar",
        x: layers.map((_, i) => i + 1),
        y: layers.map((layer) => { const v = this.valueOf(layer); return v === null ? null : v - this.options.base; }),
        base: this.options.base || undefined,
        marker: {
          color: RUN_COLORS[name],
          // B hatched as well as orange: the pair still reads in greyscale.
          pattern: name === "B"
            ? { shape: "/", fillmode: "overlay", fgcolor: "#7a4300", fgopacity: 0.6, size: 7, solidity: 0.3 }
            : undefined,
        },
      };
    });
    const log = this.options.yType === "log";
    const references = this.options.references;
    let [lo, hi] = extent(...Object.values(this.frames).map((frame) => frame.layers.map((l) => this.valueOf(l))));
    for (const reference of references) { lo = Math.min(lo, reference.y); hi = Math.max(hi, reference.y); }
    const range = log
      ? (lo > 0 ? this.yFit.fit(Math.log10(lo), Math.log10(hi)) : null) ?? [-1, 1]
      : this.yFit.fit(Math.min(lo, this.options.floor), hi) ?? [0, 1];
    const empty = this.points === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 56, r: 12, t: 8, b: 30 },
      barmode: "group",
      bargap: 0.25,
      bargroupgap: 0.05,
      xaxis: axis({
        range: [0.4, this.depth + 0.6], tickmode: "linear", tick0: 1, dtick: Math.ceil(this.depth / 10), showgrid: false,
      }),
      yaxis: axis(log ? { type: "log", range, ...logTicks(range) } : { range, nticks: 4 }),
      shapes: references.map((reference) => ({
        type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: reference.y, y1: reference.y,
        line: { color: PALETTE.ink2, width: strokeWidth(2), dash: "dash" },
      })),
      ...(empty ? emptyLayout(this.options.emptyNote) : {}),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
