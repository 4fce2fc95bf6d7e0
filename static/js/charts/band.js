// Percentile band over steps for one layer: the 15th–85th percentile of its pre-activation as a
// shaded band with the median as a line, like Ioffe & Szegedy's Fig. 1. Without normalization
// the band's centre and width wander as training goes; with batch norm they stay put. Twins get
// a band each on the same axis: A blue, B orange (its median dashed).

import { PLOT_CONFIG, RUN_COLORS, axis, baseLayout, emptyLayout, sizeOf, strokeWidth } from "./theme.js";
import { History, extent, growingEnd } from "./history.js";
import { StableRange } from "./scale.js";
import { runOf, runView, runsOf } from "./runs.js";

const BANDS = {
  A: { fill: "rgba(0,114,178,0.22)", edge: "rgba(0,114,178,0.55)", median: RUN_COLORS.A, dash: "solid" },
  B: { fill: "rgba(230,159,0,0.28)", edge: "rgba(184,120,0,0.75)", median: "#b87800", dash: "dash" },
};

export class BandChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = options;
    this.yRange = new StableRange({ padding: 0.08, minSpan: 0.2 });
    this.selected = -1; // -1: the last layer, whatever the depth
    this.reset(null);
  }

  reset(run) {
    this.runs = runsOf(run);
    this.layers = run?.layers ?? [];
    this.depth = Object.fromEntries(this.runs.map((name) => [name, runView(run, name).layers.length]));
    this.steps = run?.config?.steps ?? 1;
    this.xEnd = 0;
    this.histories = {};
    for (const name of this.runs) {
      const columns = ["step"];
      for (let i = 0; i < this.depth[name]; i++) columns.push(`p15_${i}`, `p50_${i}`, `p85_${i}`);
      this.histories[name] = new History(columns, this.options);
    }
    if (this.selected >= this.layers.length) this.selected = -1;
    this.yRange.reset();
    this.dirty = true;
  }

  /** Record every frame (cheap); drawing waits for render(). */
  update(frame) {
    const history = this.histories[runOf(frame)];
    if (!history) return;
    this.xEnd = growingEnd(this.xEnd, frame.step, this.steps);
    const row = { step: frame.step };
    frame.layers.forEach((layer, i) => {
      row[`p15_${i}`] = layer.pre.p15;
      row[`p50_${i}`] = layer.pre.p50;
      row[`p85_${i}`] = layer.pre.p85;
    });
    history.push(row);
    this.dirty = true;
  }

  /** Show layer `index` (0-based), or -1 for the last layer. */
  select(index) {
    this.selected = index;
    this.yRange.reset();
    this.dirty = true;
  }

  /** The layer shown for run `name` (A unless given): the selected one, or that run's last. */
  layerIndex(name = "A") {
    const depth = this.depth[name] ?? this.layers.length;
    return this.selected < 0 || this.selected >= depth ? depth - 1 : this.selected;
  }

  render() {
    if (!this.dirty) return false;
    this.dirty = false;
    const traces = [];
    const edges = [];
    const compare = this.runs.length > 1;
    for (const name of this.runs.length ? this.runs : ["A"]) {
      const i = this.layerIndex(name);
      const columns = this.histories[name]?.columns ?? {};
      const step = columns.step ?? [];
      const p15 = columns[`p15_${i}`] ?? [];
      const p50 = columns[`p50_${i}`] ?? [];
      const p85 = columns[`p85_${i}`] ?? [];
      const look = BANDS[name];
      traces.push(
        { type: "scatter", mode: "lines", x: step, y: p85, line: { color: look.edge, width: strokeWidth(2) } },
        {
          type: "scatter", mode: "lines", x: step, y: p15, line: { color: look.edge, width: strokeWidth(2) },
          fill: "tonexty", fillcolor: look.fill,
        },
        {
          type: "scatter", mode: "lines", x: step, y: p50,
          line: { color: look.median, width: strokeWidth(2.5), dash: compare ? look.dash : "solid" },
        },
      );
      edges.push(p15, p85);
    }
    const [lo, hi] = extent(...edges);
    const range = this.yRange.fit(lo, hi);
    const points = Object.values(this.histories).reduce((sum, history) => sum + history.length, 0);
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 52, r: 12, t: 6, b: 34 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5 }),
      yaxis: axis({ range: range ?? [-1, 1], nticks: 5, zeroline: true }),
      datarevision: points,
      ...(points === 0 ? emptyLayout() : {}),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
