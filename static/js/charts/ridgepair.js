// Ridge plots of twin runs side by side: A on the left, B on the right, rows aligned (layer k at
// the same height) and ONE x range for both, so "B's layers sit in one band while A's spread"
// reads at a glance. A single run shows chart A alone, exactly as the plain ridge plot.

import { runOf, runView, runsOf } from "./runs.js";
import { formatCount } from "./format.js";

export class RidgePair {
  /** `charts`: {A: RidgeChart, B: RidgeChart}; `cells`: {A, B}: each chart's box, holding a
   *  `.ridge-title` element; `host`: the element marked data-compare in compare mode. */
  constructor(charts, cells, host) {
    this.charts = charts;
    this.cells = cells;
    this.host = host;
    this.hidden = false; // another view covers the stage: draw nothing, stay dirty
    this.drawsEveryFrame = true; // ridges are drawn on a canvas (~1 ms): no turn-taking (loop.js)
    this.reset(null);
  }

  /** A `started` message or null. */
  reset(run) {
    this.runs = runsOf(run);
    this.compare = this.runs.length > 1;
    this.diverged = false; // a twin blew up: its last values (1e35, say) must not squash the other's axis
    this.host.toggleAttribute("data-compare", this.compare);
    this.cells.B.hidden = !this.compare;
    for (const [name, chart] of Object.entries(this.charts)) {
      chart.setCompact(this.compare);
      chart.reset(name === "A" || this.compare ? runView(run, name) : null);
    }
  }

  /** The title over run `name`'s ridge ("A: norm none"), and how it ended when its twin goes on. */
  setTitle(name, text, ended = null) {
    const title = this.cells[name].querySelector(".ridge-title");
    const label = title.querySelector(".ridge-title-text");
    const badge = title.querySelector(".ridge-title-state");
    if (label.textContent !== text) label.textContent = text;
    const state = ended ? `${ended.state} at ${formatCount(ended.step)}` : "";
    if (badge.textContent !== state) badge.textContent = state;
    badge.hidden = !ended;
    if (ended) badge.dataset.state = ended.state;
    if (ended?.state === "diverged" && !this.diverged) {
      this.diverged = true;
      this.dirty = true;
    }
  }

  update(frame) {
    this.charts[runOf(frame)]?.update(frame);
  }

  setValues(values) {
    for (const chart of Object.values(this.charts)) chart.setValues(values);
  }

  setXMode(xMode) {
    for (const chart of Object.values(this.charts)) chart.setXMode(xMode);
  }

  get element() { return this.charts.A.element; }

  /** The newest frame of run A (null before the first). */
  get frame() { return this.charts.A.frame; }

  get layers() { return this.charts.A.layers; }

  /** Layers with a histogram to draw in the newest frames (tests and empty notes). */
  get points() {
    const runs = this.compare ? ["A", "B"] : ["A"];
    return runs.reduce((sum, name) => {
      const chart = this.charts[name];
      return sum + (chart.frame?.layers ?? []).filter((layer) => layer[chart.values]?.n > 0).length;
    }, 0);
  }

  get dirty() {
    return this.charts.A.dirty || (this.compare && this.charts.B.dirty);
  }

  set dirty(value) {
    this.charts.A.dirty = value;
    this.charts.B.dirty = value && this.compare;
  }

  /** Draw what changed; returns whether a frame was drawn. */
  render() {
    if (this.hidden) return false;
    if (!this.compare) return this.charts.A.render();
    if (!this.dirty) return false;
    const { A, B } = this.charts;
    if (this.diverged) {
      // Each on its own axis once a twin diverged: its exploded values would flatten the other.
      A.dirty = B.dirty = true;
      const drewA = A.render();
      const drewB = B.render();
      return drewA || drewB;
    }
    const [loA, hiA] = A.extent();
    const [loB, hiB] = B.extent();
    // A's ranges (with their hysteresis) serve both: the twins' x-axes are always the same.
    const range = A.fitRange(Math.min(loA, loB), Math.max(hiA, hiB));
    A.dirty = B.dirty = true;
    const drewA = A.render(range);
    const drewB = B.render(range);
    return drewA || drewB;
  }
}
