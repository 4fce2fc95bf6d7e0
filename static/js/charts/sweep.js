// A learning-rate sweep: final training loss (log) over the learning rate (log), and training
// accuracy below it on the same rate axis, for A and B. A point that diverged has no loss: it
// is marked ✕ at the top of the loss axis (and at the bottom of the accuracy axis).

import {
  PALETTE, PLOT_CONFIG, RUN_COLORS, RUN_DASH, axis, baseLayout, emptyLayout, sizeOf, strokeWidth, typeSize,
} from "./theme.js";
import { StableRange } from "./scale.js";
import { extent } from "./history.js";
import { logTicks } from "./loss.js";
import { formatValue } from "./format.js";

export class SweepChart {
  constructor(element) {
    this.element = element;
    this.logRange = new StableRange({ padding: 0.06, minSpan: 0.5 });
    this.hidden = false;
    this.reset(null);
  }

  /** A sweep's `started` (its `sweep` field says the rates and runs) or null. */
  reset(sweep) {
    this.lrs = sweep?.lrs ?? [];
    this.runs = sweep?.runs ?? [];
    this.results = Object.fromEntries(this.runs.map((name) => [name, []]));
    this.logRange.reset();
    this.dirty = true;
  }

  /** One `sweep_result`. */
  add(result) {
    (this.results[result.run] ??= []).push(result);
    if (!this.runs.includes(result.run)) this.runs.push(result.run);
    this.dirty = true;
  }

  get points() {
    return Object.values(this.results).reduce((sum, results) => sum + results.length, 0);
  }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    const all = Object.values(this.results).flat();
    const [lo, hi] = extent(all.map((r) => r.final_loss).filter((v) => v > 0));
    const yRange = (lo > 0 ? this.logRange.fit(Math.log10(lo), Math.log10(hi)) : null) ?? [-2, 1];
    const span = yRange[1] - yRange[0];
    const atTop = 10 ** (yRange[1] - span * 0.06);
    const compare = this.runs.length > 1;
    const traces = [];
    for (const name of this.runs) {
      const results = [...this.results[name]].sort((a, b) => a.lr - b.lr);
      const color = RUN_COLORS[name];
      const finite = results.filter((r) => !r.diverged && r.final_loss > 0);
      const diverged = results.filter((r) => r.diverged);
      const line = { color, width: strokeWidth(2.5), dash: compare ? RUN_DASH[name] : "solid" };
      const marker = { size: 10, color, symbol: name === "B" ? "diamond" : "circle" };
      traces.push({ type: "scatter", mode: "lines+markers", x: finite.map((r) => r.lr), y: finite.map((r) => r.final_loss), line, marker });
      traces.push({
        type: "scatter", mode: "markers", x: diverged.map((r) => r.lr), y: diverged.map(() => atTop),
        marker: { size: 16, color, symbol: "x-thin", line: { width: 4, color } },
      });
      const trained = results.filter((r) => !r.diverged && r.train_acc !== null);
      traces.push({
        type: "scatter", mode: "lines+markers", x: trained.map((r) => r.lr), y: trained.map((r) => r.train_acc),
        yaxis: "y2", line, marker,
      });
      traces.push({
        type: "scatter", mode: "markers", x: diverged.map((r) => r.lr), y: diverged.map(() => 0.04), yaxis: "y2",
        marker: { size: 16, color, symbol: "x-thin", line: { width: 4, color } },
      });
    }
    const rates = this.lrs.length ? this.lrs : all.map((r) => r.lr);
    const [rateLo, rateHi] = extent(rates);
    const xRange = rateLo > 0 ? [Math.log10(rateLo) - 0.15, Math.log10(rateHi) + 0.15] : [-2, 0.5];
    const empty = this.points === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 60, r: 14, t: 8, b: 50 },
      xaxis: axis({
        type: "log", range: xRange, tickmode: "array", tickvals: rates, ticktext: rates.map(formatValue), anchor: "y2",
        title: { text: "learning rate (log)", font: { size: typeSize(14), color: PALETTE.ink2 }, standoff: 4 },
      }),
      yaxis: axis({
        type: "log", domain: [0.42, 1], range: yRange, ...logTicks(yRange),
        title: { text: "final loss", font: { size: typeSize(14), color: PALETTE.ink2 }, standoff: 6 },
      }),
      yaxis2: axis({
        domain: [0, 0.32], range: [0, 1.04], tickvals: [0, 0.5, 1], ticktext: ["0", ".5", "1"], anchor: "x",
        title: { text: "train acc", font: { size: typeSize(14), color: PALETTE.ink2 }, standoff: 6 },
      }),
      ...(empty ? emptyLayout("press Sweep: one point per rate appears as each short run ends") : {}),
    });
    if (empty) delete layout.yaxis2;
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}
