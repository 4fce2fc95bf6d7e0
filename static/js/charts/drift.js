// Drift panel: a heat strip of every layer's drift over steps (how far its pre-activation
// distribution moved since `drift_lag` frames ago, in units of its spread then), and a
// waterfall of one layer's pre-activation histogram over steps. Twins are stacked, A above B,
// on one step axis and one colour scale, so the two runs compare cell by cell.

import { PALETTE, PLOT_CONFIG, RUN_COLORS, axis, baseLayout, emptyLayout, sizeOf, typeSize } from "./theme.js";
import { History, growingEnd } from "./history.js";
import { StableRange } from "./scale.js";
import { runOf, runView, runsOf } from "./runs.js";

// Sequential scales, white (nothing) to dark (a lot); colour-blind safe.
// The heat scale climbs fast at first: small drifts must not vanish into white.
const HEAT = [[0, "#fbfbf4"], [0.08, "#F0E442"], [0.3, "#E69F00"], [0.6, "#D55E00"], [1, "#4a1a00"]];
const DENSITY = [[0, "#ffffff"], [0.15, "#d6ecf8"], [0.45, "#56B4E9"], [0.75, "#0072B2"], [1, "#0b2a4a"]];

/** Axes for one heat map per run, stacked A over B on a shared x-axis. */
function stackedAxes(runs, yFor) {
  const axes = {};
  const gap = 0.08;
  const height = (1 - gap * (runs.length - 1)) / runs.length;
  runs.forEach((name, k) => {
    const top = 1 - k * (height + gap);
    const key = k === 0 ? "yaxis" : `yaxis${k + 1}`;
    axes[key] = axis({
      domain: [Math.max(0, top - height), top],
      anchor: "x",
      ...yFor(name),
      title: runs.length > 1
        ? { text: `<b>${name}</b>`, font: { size: typeSize(16), color: RUN_COLORS[name] }, standoff: 4 }
        : { text: "" },
    });
  });
  return axes;
}

/** The y-axis at the bottom of the stack: the step axis sits under it. */
function bottomAxis(runs) {
  return runs.length > 1 ? `y${runs.length}` : "y";
}

function colorAxis(scale, max, title) {
  return {
    colorscale: scale,
    cmin: 0,
    cmax: max,
    colorbar: {
      thickness: 12, len: 1, outlinewidth: 0, x: 1.03, xpad: 4,
      tickfont: { size: typeSize(14), color: PALETTE.ink2 }, nticks: 4,
      title: { text: title, side: "right", font: { size: typeSize(14), color: PALETTE.ink2 } },
    },
  };
}

/** Layer × step heat strip of `drift`. */
export class DriftChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = options;
    this.zFit = new StableRange({ padding: 0.02, floor: 0, minSpan: 0.05 });
    this.hidden = false;
    this.reset(null);
  }

  /** What an empty strip says: drift is off in the run shown (`drift_lag` 0), still needs
   *  `drift_lag` + 1 frames, or no run has started. */
  emptyNote() {
    if (this.lag === 0) return "drift is off in this run";
    return this.lag ? `drift needs ${this.lag + 1} frames` : this.options.emptyNote ?? "appears when a run starts";
  }

  reset(run) {
    this.runs = runsOf(run);
    this.steps = run?.config?.steps ?? 1;
    this.lag = run?.config?.drift_lag ?? null;
    this.xEnd = 0;
    this.depth = {};
    this.histories = {};
    for (const name of this.runs) {
      const depth = runView(run, name).layers.length;
      this.depth[name] = depth;
      this.histories[name] = new History(["step", ...Array.from({ length: depth }, (_, i) => `d${i}`)], this.options);
    }
    this.zFit.reset();
    this.dirty = true;
  }

  update(frame) {
    const history = this.histories[runOf(frame)];
    if (!history || !frame.layers.some((layer) => Number.isFinite(layer.drift))) return;
    const row = { step: frame.step };
    frame.layers.forEach((layer, i) => { row[`d${i}`] = Number.isFinite(layer.drift) ? layer.drift : null; });
    history.push(row);
    this.xEnd = growingEnd(this.xEnd, frame.step, this.steps);
    this.dirty = true;
  }

  get points() {
    return Object.values(this.histories).reduce((sum, history) => sum + history.length, 0);
  }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    const values = [];
    const traces = this.runs.map((name, k) => {
      const columns = this.histories[name].columns;
      const z = Array.from({ length: this.depth[name] }, (_, i) => columns[`d${i}`]);
      for (const row of z) for (const value of row) if (value !== null) values.push(value);
      return {
        type: "heatmap", x: columns.step, y: z.map((_, i) => i + 1), z,
        coloraxis: "coloraxis", yaxis: k === 0 ? "y" : `y${k + 1}`, xgap: 0, ygap: 1, hoverinfo: "skip",
      };
    });
    // The top of the colour scale: the 98th percentile, so one early jolt does not wash out the rest.
    values.sort((a, b) => a - b);
    const top = values.length ? values[Math.floor((values.length - 1) * 0.98)] : NaN;
    const zRange = this.zFit.fit(0, top) ?? [0, 1];
    const empty = this.points === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 48, r: 84, t: 8, b: 30 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5, anchor: bottomAxis(this.runs) }),
      ...stackedAxes(this.runs.length ? this.runs : ["A"], (name) => {
        const depth = this.depth[name] ?? 1;
        return {
          range: [depth + 0.5, 0.5], tickmode: "linear", tick0: 1, dtick: Math.ceil(depth / 6),
          showgrid: false, zeroline: false, ticks: "",
        };
      }),
      coloraxis: colorAxis(HEAT, zRange[1], "drift"),
      ...(empty ? emptyLayout(this.emptyNote()) : {}),
    });
    if (empty) { delete layout.coloraxis; delete layout.yaxis2; }
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}

/** The share of a histogram's values in each cell between consecutive `edges` (uniform within
 *  each bin, as the server's histograms are), by interpolating its cumulative counts. */
export function resample(histogram, edges) {
  const { lo, hi, counts, n } = histogram;
  const bins = counts.length;
  const width = (hi - lo) / bins;
  const cumulative = [0];
  for (const count of counts) cumulative.push(cumulative.at(-1) + count);
  const below = (x) => {
    const t = (x - lo) / width;
    if (!(t > 0)) return 0;
    if (t >= bins) return n;
    const k = Math.floor(t);
    return cumulative[k] + (t - k) * counts[k];
  };
  const shares = [];
  let previous = below(edges[0]);
  for (let j = 1; j < edges.length; j++) {
    const next = below(edges[j]);
    shares.push((next - previous) / n);
    previous = next;
  }
  return shares;
}

const DEFAULT_WATERFALL = Object.freeze({ rows: 72, maxColumns: 240, emptyNote: "appears when a run starts" });

/** One layer's pre-activation histogram over steps: value up, step across, share as colour. */
export class WaterfallChart {
  constructor(element, options = {}) {
    this.element = element;
    this.options = { ...DEFAULT_WATERFALL, ...options };
    this.yFit = new StableRange({ padding: 0.02 });
    this.selected = -1; // -1: the last layer
    this.hidden = false;
    this.reset(null);
  }

  reset(run) {
    this.runs = runsOf(run);
    this.steps = run?.config?.steps ?? 1;
    this.xEnd = 0;
    this.columns = Object.fromEntries(this.runs.map((name) => [name, []]));
    this.depth = Object.fromEntries(this.runs.map((name) => [name, runView(run, name).layers.length]));
    this.yFit.reset();
    this.dirty = true;
  }

  select(index) {
    this.selected = index;
    this.yFit.reset();
    this.dirty = true;
  }

  update(frame) {
    const columns = this.columns[runOf(frame)];
    if (!columns) return;
    columns.push({ step: frame.step, histograms: frame.layers.map((layer) => layer.pre) });
    if (columns.length > this.options.maxColumns) {
      // Every other old column goes: the whole run stays in view at half the resolution.
      this.columns[runOf(frame)] = columns.filter((_, i, all) => i % 2 === 0 || i === all.length - 1);
    }
    this.xEnd = growingEnd(this.xEnd, frame.step, this.steps);
    this.dirty = true;
  }

  get points() {
    return Object.values(this.columns).reduce((sum, columns) => sum + columns.length, 0);
  }

  layerOf(name) {
    const depth = this.depth[name] ?? 0;
    return this.selected < 0 || this.selected >= depth ? depth - 1 : this.selected;
  }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    // One value axis for both runs: B's narrow band reads against A's wide one.
    let lo = Infinity;
    let hi = -Infinity;
    const picked = {};
    for (const name of this.runs) {
      const layer = this.layerOf(name);
      picked[name] = this.columns[name].map((column) => ({ step: column.step, histogram: column.histograms[layer] }))
        .filter(({ histogram }) => histogram && histogram.n && histogram.lo !== null);
      for (const { histogram } of picked[name]) {
        lo = Math.min(lo, histogram.lo);
        hi = Math.max(hi, histogram.hi);
      }
    }
    const range = this.yFit.fit(lo, hi) ?? [-1, 1];
    const rows = this.options.rows;
    const edges = Array.from({ length: rows + 1 }, (_, j) => range[0] + ((range[1] - range[0]) * j) / rows);
    const centres = edges.slice(0, -1).map((edge, j) => (edge + edges[j + 1]) / 2);
    const traces = this.runs.map((name, k) => {
      const z = centres.map(() => []);
      for (const { histogram } of picked[name]) {
        const shares = resample(histogram, edges);
        const top = Math.max(...shares) || 1; // each column scaled to its own peak: the shape reads
        shares.forEach((share, j) => z[j].push(share / top));
      }
      return {
        type: "heatmap", x: picked[name].map(({ step }) => step), y: centres, z,
        coloraxis: "coloraxis", yaxis: k === 0 ? "y" : `y${k + 1}`, hoverinfo: "skip",
      };
    });
    const empty = this.points === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 56, r: 84, t: 8, b: 30 },
      xaxis: axis({ range: [0, this.xEnd || this.steps], nticks: 5, anchor: bottomAxis(this.runs) }),
      ...stackedAxes(this.runs.length ? this.runs : ["A"], () => ({
        range, nticks: 4, showgrid: false, zeroline: false, exponentformat: "e",
        tickformat: Math.abs(range[1] - range[0]) < 0.01 ? ".1e" : "",
      })),
      coloraxis: { ...colorAxis(DENSITY, 1, "share"), colorbar: { ...colorAxis(DENSITY, 1, "").colorbar,
        tickvals: [0, 1], ticktext: ["0", "peak"] } },
      ...(empty ? emptyLayout(this.options.emptyNote) : {}),
    });
    if (empty) { delete layout.coloraxis; delete layout.yaxis2; }
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
