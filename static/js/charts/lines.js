// Lines over steps for the instrument panels: one line per layer (gradient norms, update ratios,
// ICS) or per metric (landscape, test accuracies), for one run or for twins A and B. Every
// frame is recorded (cheap); drawing waits for render(), and a hidden panel draws nothing.

import {
  PALETTE, PLOT_CONFIG, RUN_COLORS, RUN_DASH, RUN_RAMPS, axis, baseLayout, depthRamp, emptyLayout, rgba, sizeOf, strokeWidth, typeSize,
} from "./theme.js";
import { History, extent, growingEnd } from "./history.js";
import { StableRange } from "./scale.js";
import { logTicks } from "./loss.js";
import { runOf, runView, runsOf } from "./runs.js";

const DEFAULTS = Object.freeze({
  x: (frame) => frame.step,   // where a frame's point goes; null: this frame has none
  layerValue: null,           // (layer, frame, index) => value: one line per layer
  metrics: [],                // [{key, value: (frame) => value, color, dash, markers}]: one line each
  yType: "linear",            // "log": values ≤ 0 are left out
  yRange: null,               // fixed [lo, hi] (linear), else fitted with hysteresis
  references: [],             // [{y, label}]: dashed horizontal guides
  emptyNote: "appears when a run starts",
  maxPoints: 600,
});

export class LinesChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = { ...DEFAULTS, ...options };
    this.yFit = new StableRange(this.options.yType === "log" ? { padding: 0.05, minSpan: 0.3 } : { padding: 0.06 });
    this.hidden = false;
    this.reset(null);
  }

  reset(run) {
    this.runs = runsOf(run);
    this.compare = this.runs.length > 1;
    this.steps = run?.config?.steps ?? 1;
    this.xEnd = 0;
    this.series = {};
    this.histories = {};
    for (const name of this.runs) {
      const layers = runView(run, name).layers ?? [];
      this.series[name] = this.seriesFor(name, layers.length);
      this.histories[name] = new History(["x", ...this.series[name].map((s) => s.key)], this.options);
    }
    this.yFit.reset();
    this.dirty = true;
  }

  /** The lines of run `name`: keys, colours and dashes. */
  seriesFor(name, layerCount) {
    const { layerValue, metrics } = this.options;
    if (layerValue) {
      const colors = depthRamp(Math.max(layerCount, 1), this.compare ? RUN_RAMPS[name] : undefined);
      return colors.slice(0, layerCount).map((color, i) => ({
        key: `l${i}`, color: rgba(color), dash: this.compare ? RUN_DASH[name] : "solid", width: strokeWidth(2),
      }));
    }
    return metrics.map((metric) => ({
      key: metric.key,
      color: this.compare || !metric.color ? RUN_COLORS[name] : metric.color,
      dash: metric.dash ?? (this.compare ? RUN_DASH[name] : "solid"),
      width: metric.width ?? 2.5,
      markers: metric.markers ?? false,
    }));
  }

  update(frame) {
    const name = runOf(frame);
    const history = this.histories[name];
    const x = this.options.x(frame);
    if (!history || x === null || x === undefined) return;
    const row = { x };
    let any = false;
    const keep = (value) => {
      if (value === null || value === undefined || !Number.isFinite(value)) return null;
      if (this.options.yType === "log" && value <= 0) return null;
      any = true;
      return value;
    };
    if (this.options.layerValue) {
      frame.layers.forEach((layer, i) => { row[`l${i}`] = keep(this.options.layerValue(layer, frame, i)); });
    } else {
      for (const metric of this.options.metrics) row[metric.key] = keep(metric.value(frame));
    }
    if (!any) return; // the instrument had nothing to say in this frame
    history.push(row);
    this.xEnd = growingEnd(this.xEnd, Math.max(x, frame.step ?? x), this.steps);
    this.dirty = true;
  }

  /** How many points each run holds (tests and empty notes). */
  get points() {
    return Object.values(this.histories).reduce((sum, history) => sum + history.length, 0);
  }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    const traces = [];
    const values = [];
    for (const name of this.runs) {
      const columns = this.histories[name].columns;
      for (const series of this.series[name]) {
        values.push(columns[series.key]);
        traces.push({
          type: "scatter",
          mode: series.markers ? "lines+markers" : "lines",
          x: columns.x,
          y: columns[series.key],
          connectgaps: true,
          line: { color: series.color, width: series.width, dash: series.dash },
          marker: { size: 7, color: series.color, symbol: name === "B" ? "diamond" : "circle" },
        });
      }
    }
    const log = this.options.yType === "log";
    let [lo, hi] = extent(...values);
    for (const reference of this.options.references) { lo = Math.min(lo, reference.y); hi = Math.max(hi, reference.y); }
    let yRange = this.options.yRange;
    if (!yRange) {
      yRange = log
        ? (lo > 0 ? this.yFit.fit(Math.log10(lo), Math.log10(hi)) : null) ?? [-3, 0]
        : this.yFit.fit(lo, hi) ?? [0, 1];
    }
    const empty = this.points === 0;
    const shapes = this.options.references.map((reference) => ({
      type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: reference.y, y1: reference.y,
      line: { color: PALETTE.ink2, width: strokeWidth(2), dash: "dash" }, layer: "below",
    }));
    const annotations = this.options.references.filter((r) => r.label).map((reference) => ({
      xref: "paper", x: 1, xanchor: "right", yref: "y", y: log ? Math.log10(reference.y) : reference.y,
      yanchor: "bottom", showarrow: false, text: reference.label, font: { size: typeSize(14), color: PALETTE.ink2 },
    }));
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 56, r: 12, t: 8, b: 30 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5 }),
      yaxis: axis(log
        ? { type: "log", range: yRange, ...logTicks(yRange) }
        : { range: yRange, nticks: 5, zeroline: false }),
      shapes,
      annotations,
      datarevision: this.points,
      ...(empty ? emptyLayout(this.options.emptyNote) : {}),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
