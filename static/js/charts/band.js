// Percentile band over steps for one layer: the 15th–85th percentile of its pre-activation as a
// shaded band with the median as a line, like Ioffe & Szegedy's Fig. 1. Without normalization
// the band's centre and width wander as training goes; with batch norm they stay put.

import { PALETTE, PLOT_CONFIG, axis, baseLayout, emptyLayout, sizeOf } from "./theme.js";
import { History, extent, growingEnd } from "./history.js";
import { StableRange } from "./scale.js";

const BAND_FILL = "rgba(0,114,178,0.22)";
const BAND_EDGE = "rgba(0,114,178,0.55)";

export class BandChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = options;
    this.yRange = new StableRange({ padding: 0.08, minSpan: 0.2 });
    this.selected = -1; // -1: the last layer, whatever the depth
    this.reset(null);
  }

  reset(run) {
    this.layers = run?.layers ?? [];
    this.steps = run?.config?.steps ?? 1;
    this.xEnd = 0;
    const columns = ["step"];
    this.layers.forEach((_, i) => columns.push(`p15_${i}`, `p50_${i}`, `p85_${i}`));
    this.history = new History(columns, this.options);
    if (this.selected >= this.layers.length) this.selected = -1;
    this.yRange.reset();
    this.dirty = true;
  }

  /** Record every frame (cheap); drawing waits for render(). */
  update(frame) {
    this.xEnd = growingEnd(this.xEnd, frame.step, this.steps);
    const row = { step: frame.step };
    frame.layers.forEach((layer, i) => {
      row[`p15_${i}`] = layer.pre.p15;
      row[`p50_${i}`] = layer.pre.p50;
      row[`p85_${i}`] = layer.pre.p85;
    });
    this.history.push(row);
    this.dirty = true;
  }

  /** Show layer `index` (0-based), or -1 for the last layer. */
  select(index) {
    this.selected = index;
    this.yRange.reset();
    this.dirty = true;
  }

  get layerIndex() {
    return this.selected < 0 ? this.layers.length - 1 : this.selected;
  }

  render() {
    if (!this.dirty) return false;
    this.dirty = false;
    const i = this.layerIndex;
    const columns = this.history.columns;
    const step = columns.step;
    const p15 = columns[`p15_${i}`] ?? [];
    const p50 = columns[`p50_${i}`] ?? [];
    const p85 = columns[`p85_${i}`] ?? [];
    const traces = [
      { type: "scatter", mode: "lines", x: step, y: p85, line: { color: BAND_EDGE, width: 2 } },
      {
        type: "scatter", mode: "lines", x: step, y: p15, line: { color: BAND_EDGE, width: 2 },
        fill: "tonexty", fillcolor: BAND_FILL,
      },
      { type: "scatter", mode: "lines", x: step, y: p50, line: { color: PALETTE.blue, width: 2.5 } },
    ];
    const [lo, hi] = extent(p15, p85);
    const range = this.yRange.fit(lo, hi);
    const empty = this.history.length === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 52, r: 12, t: 6, b: 34 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5 }),
      yaxis: axis({ range: range ?? [-1, 1], nticks: 5, zeroline: true }),
      datarevision: this.history.length,
      ...(empty ? emptyLayout() : {}),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
