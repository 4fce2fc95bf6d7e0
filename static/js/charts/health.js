// Per-layer saturated and dead fractions as bars on a fixed 0–1 axis, and a warning when any
// layer held NaN or ±inf values. Twins: bars of A (blue) beside B (orange, hatched), for the
// measures their activations can show (saturation for sigmoid/tanh, dead units for ReLU/GELU).

import { PALETTE, PLOT_CONFIG, RUN_COLORS, axis, baseLayout, emptyLayout, sizeOf, typeSize } from "./theme.js";
import { formatCount } from "./format.js";
import { runOf, runView, runsOf } from "./runs.js";

const MEASURES = {
  saturated: { label: "saturated", activations: new Set(["sigmoid", "tanh"]) },
  dead: { label: "dead", activations: new Set(["relu", "gelu"]) },
};
// B's bars: orange with dark hatching laid over, so the pair also reads in greyscale.
const B_HATCH = { shape: "/", fillmode: "overlay", fgcolor: "#7a4300", fgopacity: 0.6, size: 7, solidity: 0.3 };

export class HealthChart {
  constructor(element, warning) {
    this.element = element;
    this.warning = warning; // element that names the layers with non-finite values
    this.reset(null);
  }

  reset(run) {
    this.runs = run ? runsOf(run) : ["A"];
    this.compare = this.runs.length > 1;
    this.layers = run?.layers ?? [];
    this.depth = Math.max(this.layers.length, ...this.runs.map((name) => runView(run, name)?.layers.length ?? 0));
    const activations = this.runs.map((name) => runView(run, name)?.config?.activation);
    // Twins show only the measures their activations have (both, if neither says).
    this.measures = Object.keys(MEASURES).filter((key) => activations.some((a) => MEASURES[key].activations.has(a)));
    if (!this.measures.length) this.measures = Object.keys(MEASURES);
    this.frames = {};
    this.warningText = null;
    this.showWarning("");
    this.dirty = true;
  }

  update(frame) {
    this.frames[runOf(frame)] = frame;
    this.dirty = true;
  }

  get frame() { return this.frames.A ?? null; }

  singleTraces(layers) {
    const x = layers.map((_, i) => i + 1);
    return [
      {
        type: "bar", x, y: layers.map((layer) => layer.saturated), name: "saturated",
        marker: { color: PALETTE.orange },
      },
      {
        type: "bar", x, y: layers.map((layer) => layer.dead), name: "dead",
        marker: { color: PALETTE.purple },
      },
    ];
  }

  twinTraces() {
    const traces = [];
    for (const measure of this.measures) {
      for (const name of this.runs) {
        const layers = this.frames[name]?.layers ?? [];
        traces.push({
          type: "bar", x: layers.map((_, i) => i + 1), y: layers.map((layer) => layer[measure]),
          name: `${measure} ${name}`,
          marker: {
            color: RUN_COLORS[name],
            pattern: name === "B" ? B_HATCH : undefined,
            opacity: measure === "dead" && this.measures.length > 1 ? 0.55 : 1,
          },
        });
      }
    }
    return traces;
  }

  render() {
    if (!this.dirty) return false;
    this.dirty = false;
    const frames = this.runs.map((name) => this.frames[name]).filter(Boolean);
    const layers = this.frames.A?.layers ?? [];
    const all = frames.flatMap((frame) => frame.layers);
    const traces = this.compare ? this.twinTraces() : this.singleTraces(layers);
    const count = Math.max(this.depth, 1);
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 52, r: 12, t: 6, b: 34 },
      barmode: "group",
      bargap: 0.25,
      bargroupgap: 0.05,
      xaxis: axis({
        range: [0.4, count + 0.6],
        tickmode: "linear",
        tick0: 1,
        dtick: Math.ceil(count / 12),
        showgrid: false,
        title: { text: "" },
      }),
      yaxis: axis({ range: [0, 1], tickvals: [0, 0.5, 1], ticktext: ["0", "50%", "100%"] }),
      annotations: all.length && all.every((layer) => !layer.saturated && !layer.dead)
        ? [{
          xref: "paper", x: 0.5, yref: "paper", y: 0.75, showarrow: false,
          text: this.compare ? "none in any layer of A or B" : "none in any layer", font: { size: typeSize(14), color: PALETTE.ink2 },
        }]
        : [],
      ...(all.length ? {} : emptyLayout()),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    const warnings = frames.map((frame) => {
      const bad = frame.layers.flatMap((layer, i) => (layer.nonfinite > 0 ? [[i + 1, layer.nonfinite]] : []));
      if (!bad.length) return "";
      const total = bad.reduce((sum, [, n]) => sum + n, 0);
      const where = bad.length === 1 ? `layer ${bad[0][0]}`
        : bad.length <= 4 ? `layers ${bad.map(([i]) => i).join(", ")}` : `${bad.length} layers`;
      return `⚠ ${formatCount(total)} NaN/inf in ${where}${this.compare ? ` of ${runOf(frame)}` : ""}`;
    });
    this.showWarning(warnings.filter(Boolean).join("; "));
    return true;
  }

  showWarning(text) {
    if (text === this.warningText) return; // touch the DOM only when the text changes
    this.warningText = text;
    this.warning.textContent = text;
    this.warning.hidden = text === "";
  }
}
