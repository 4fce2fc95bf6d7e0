// A class experiment on the projector: every student's current loss (log, left) and test
// accuracy (right) against the value they train, one point per student, and small ridge plots
// of each student's deepest layers on one canvas. Points of one value spread sideways a little
// so a class of 30 stays countable; a diverged run is an ✕ at the top of the loss panel (and
// the bottom of the accuracy panel), in its own legend entry, "diverged".

import { PALETTE, PLOT_CONFIG, axis, baseLayout, depthRamp, emptyLayout, rgba, sizeOf, strokeWidth, typeSize } from "./theme.js";
import { logTicks } from "./loss.js";
import { StableRange } from "./scale.js";

const ENDED = new Set(["done", "stopped", "timeout", "failed", "refused", "busy"]);
const GROUPS = Object.freeze([
  { name: "training", test: (p) => !ENDED.has(p.state) && p.state !== "diverged", symbol: "circle", color: PALETTE.blue },
  { name: "ended", test: (p) => ENDED.has(p.state), symbol: "circle-open", color: PALETTE.ink2 },
  { name: "diverged", test: (p) => p.state === "diverged", symbol: "x-thin", color: PALETTE.vermillion },
]);

/** Where a student's point sits along the value axis: its value's index, spread by student. */
function spread(point, sameValue) {
  const k = sameValue.indexOf(point.id);
  const n = sameValue.length;
  return point.index + (n > 1 ? (k / (n - 1) - 0.5) * Math.min(0.5, 0.12 * n) : 0);
}

export const valueLabel = (value) => (typeof value === "number" ? String(Number(value.toPrecision(3))) : String(value));

export class ClassChart {
  constructor(element) {
    this.element = element;
    this.hidden = false;
    // The loss axis holds still while points move inside it: Plotly then redraws the points only.
    this.logRange = new StableRange({ padding: 0.08, minSpan: 0.5 });
    this.reset(null);
  }

  /** An `experiment` announcement (its field and values) or null. */
  reset(experiment) {
    this.logRange?.reset();
    this.field = experiment?.field ?? null;
    this.values = experiment?.values ?? [];
    this.students = [];
    this.dirty = true;
  }

  /** One `class_summary`: the whole class as it stands. */
  update(summary) {
    this.values = summary.values;
    this.students = summary.students;
    this.dirty = true;
  }

  /** Points per panel: what the chart has to draw (tests read it). */
  get points() { return this.students.length; }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    const byValue = new Map();
    for (const p of this.students) byValue.set(p.index, [...(byValue.get(p.index) ?? []), p.id]);
    const x = (p) => spread(p, byValue.get(p.index));
    const losses = this.students.map((p) => p.loss).filter((v) => v > 0);
    const fitted = losses.length ? this.logRange.fit(Math.log10(Math.min(...losses)), Math.log10(Math.max(...losses))) : null;
    const [lo, hi] = fitted ?? [-2, 1];
    const yRange = [lo, hi + 0.3]; // the top is for the diverged
    const atTop = 10 ** (yRange[1] - 0.12);
    const traces = [];
    for (const group of GROUPS) {
      const points = this.students.filter(group.test);
      const diverged = group.name === "diverged";
      const marker = {
        size: diverged ? 16 : 12, symbol: group.symbol, color: group.color,
        line: { width: diverged ? strokeWidth(3) : strokeWidth(2), color: group.color },
      };
      traces.push({
        type: "scatter", mode: "markers", name: group.name, legendgroup: group.name, showlegend: false,
        x: points.map(x), y: points.map((p) => (diverged || !(p.loss > 0) ? atTop : p.loss)), marker,
        text: points.map((p) => `#${p.id} ${this.field} = ${valueLabel(p.value)}: ${p.state} at step ${p.step}`),
      });
      const measured = points.filter((p) => diverged || p.test_acc !== null); // none yet: no point
      traces.push({
        type: "scatter", mode: "markers", name: group.name, legendgroup: group.name, showlegend: false,
        x: measured.map(x), y: measured.map((p) => (diverged || p.test_acc === null ? 0.03 : p.test_acc)),
        xaxis: "x2", yaxis: "y2", marker,
      });
    }
    const ticks = { tickmode: "array", tickvals: this.values.map((_, i) => i), ticktext: this.values.map(valueLabel), range: [-0.5, this.values.length - 0.5] };
    const title = (text) => ({ text, font: { size: typeSize(14), color: PALETTE.ink2 }, standoff: 4 });
    const empty = this.students.length === 0;
    const layout = baseLayout(sizeOf(this), {
      margin: { l: 56, r: 48, t: 8, b: 46 },
      xaxis: axis({ ...ticks, domain: [0, 0.46], title: title(this.field ?? "") }),
      yaxis: axis({ type: "log", range: yRange, ...logTicks(yRange), title: title("loss (log)") }),
      xaxis2: axis({ ...ticks, domain: [0.56, 1], anchor: "y2", title: title(this.field ?? "") }),
      yaxis2: axis({ anchor: "x2", range: [0, 1.04], tickvals: [0, 0.5, 1], ticktext: ["0", ".5", "1"], title: title("test acc") }),
    });
    if (empty) {
      // The same four axes, hidden: Plotly.react adding a subplot to a drawn chart misplaces titles.
      const note = emptyLayout("each student who joins appears here as a point");
      for (const name of ["xaxis", "yaxis", "xaxis2", "yaxis2"]) layout[name] = { ...layout[name], visible: false };
      layout.annotations = note.annotations;
    }
    Plotly.react(this.element, traces, layout, PLOT_CONFIG);
    return true;
  }
}

/** Each student's deepest layers as small ridge plots on one canvas: a cell per student, in
 *  value order, each row a recent frame's histogram (oldest at the top), on the cell's range. */
export class ClassRidges {
  constructor(canvas) {
    this.element = canvas;
    this.hidden = false;
    this.reset(null);
  }

  reset(experiment) {
    this.field = experiment?.field ?? null;
    this.students = [];
    this.dirty = true;
  }

  update(summary) {
    this.students = [...summary.students].sort((a, b) => a.index - b.index || a.id - b.id);
    this.dirty = true;
  }

  get points() { return this.students.length; }

  render() {
    if (!this.dirty || this.hidden) return false;
    this.dirty = false;
    const { width, height } = sizeOf(this);
    const canvas = this.element;
    const scale = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * scale) || canvas.height !== Math.round(height * scale)) {
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const n = this.students.length;
    const font = typeSize(12);
    ctx.font = `${font}px ${getComputedStyle(document.body).fontFamily}`;
    if (!n) {
      ctx.fillStyle = PALETTE.ink2;
      ctx.textAlign = "center";
      ctx.fillText("each student's deepest layers appear here", width / 2, height / 2);
      return true;
    }
    const columns = Math.ceil(Math.sqrt((n * width) / Math.max(height, 1) / 1.6)) || 1;
    const rows = Math.ceil(n / columns);
    const cellW = width / columns;
    const cellH = height / rows;
    ctx.textAlign = "left";
    this.students.forEach((student, i) => {
      const left = (i % columns) * cellW;
      const top = Math.floor(i / columns) * cellH;
      this.drawCell(ctx, student, left + 3, top + 2, cellW - 6, cellH - 4, font);
    });
    return true;
  }

  drawCell(ctx, student, left, top, width, height, font) {
    const diverged = student.state === "diverged";
    ctx.fillStyle = diverged ? PALETTE.vermillion : PALETTE.ink;
    const label = `#${student.id} ${valueLabel(student.value)}${diverged ? " ✕ diverged" : ""}`;
    ctx.fillText(label, left, top + font, width);
    const plotTop = top + font + 3;
    const plotH = height - font - 3;
    const layers = student.ridge ?? [];
    if (plotH < 8 || !layers.length) return;
    const layerW = width / layers.length;
    layers.forEach(([, rows], j) => {
      const x0 = left + j * layerW + 2;
      const w = layerW - 4;
      const finite = rows.filter(([, lo, hi]) => lo !== null && hi !== null);
      const lo = Math.min(...finite.map((r) => r[1]));
      const hi = Math.max(...finite.map((r) => r[2]));
      const span = hi > lo ? hi - lo : 1;
      const colors = depthRamp(rows.length);
      const rowH = plotH / (rows.length + 1);
      rows.forEach(([, rowLo, rowHi, counts], k) => {
        const base = plotTop + rowH * (k + 2);
        ctx.beginPath();
        if (rowLo === null || rowHi === null || !counts.length) {
          ctx.strokeStyle = PALETTE.vermillion;
          ctx.moveTo(x0, base);
          ctx.lineTo(x0 + w, base);
          ctx.stroke();
          return;
        }
        const binW = (rowHi - rowLo) / counts.length;
        ctx.moveTo(x0 + ((rowLo - lo) / span) * w, base);
        counts.forEach((count, b) => {
          const at = x0 + ((rowLo + (b + 0.5) * binW - lo) / span) * w;
          ctx.lineTo(at, base - (count / 99) * rowH * 1.8);
        });
        ctx.lineTo(x0 + ((rowHi - lo) / span) * w, base);
        ctx.closePath();
        ctx.fillStyle = rgba(colors[k], 0.55);
        ctx.strokeStyle = rgba(colors[k], 1);
        ctx.lineWidth = 1;
        ctx.fill();
        ctx.stroke();
      });
    });
  }
}
