// Per-layer saturated and dead fractions as bars on a fixed 0–1 axis, and a warning when any
// layer held NaN or ±inf values.

import { PALETTE, PLOT_CONFIG, axis, baseLayout, emptyLayout, sizeOf } from "./theme.js";
import { formatCount } from "./format.js";

export class HealthChart {
  constructor(element, warning) {
    this.element = element;
    this.warning = warning; // element that names the layers with non-finite values
    this.reset(null);
  }

  reset(run) {
    this.layers = run?.layers ?? [];
    this.frame = null;
    this.warningText = null;
    this.showWarning("");
    this.dirty = true;
  }

  update(frame) {
    this.frame = frame;
    this.dirty = true;
  }

  render() {
    if (!this.dirty) return false;
    this.dirty = false;
    const layers = this.frame?.layers ?? [];
    const x = layers.map((_, i) => i + 1);
    const traces = [
      {
        type: "bar", x, y: layers.map((layer) => layer.saturated), name: "saturated",
        marker: { color: PALETTE.orange },
      },
      {
        type: "bar", x, y: layers.map((layer) => layer.dead), name: "dead",
        marker: { color: PALETTE.purple },
      },
    ];
    const count = Math.max(this.layers.length, 1);
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
      annotations: layers.length && layers.every((layer) => !layer.saturated && !layer.dead)
        ? [{
          xref: "paper", x: 0.5, yref: "paper", y: 0.75, showarrow: false,
          text: "none in any layer", font: { size: 14, color: PALETTE.ink2 },
        }]
        : [],
      ...(layers.length ? {} : emptyLayout()),
    });
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    const bad = layers.flatMap((layer, i) => (layer.nonfinite > 0 ? [[i + 1, layer.nonfinite]] : []));
    const total = bad.reduce((sum, [, n]) => sum + n, 0);
    const where = bad.length === 1 ? `layer ${bad[0][0]}`
      : bad.length <= 4 ? `layers ${bad.map(([i]) => i).join(", ")}` : `${bad.length} layers`;
    this.showWarning(bad.length ? `⚠ ${formatCount(total)} NaN/inf in ${where}` : "");
    return true;
  }

  showWarning(text) {
    if (text === this.warningText) return; // touch the DOM only when the text changes
    this.warningText = text;
    this.warning.textContent = text;
    this.warning.hidden = text === "";
  }
}
