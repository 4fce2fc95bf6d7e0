// The main chart: every layer's histogram on ONE axis, as a ridge plot. Layer 1 sits at the top
// and the deepest layer at the bottom, each a filled step line offset by one unit, so a shared
// x-axis shows drift as sliding and widening. Colour darkens with depth.
//
// Plotly draws the chart's frame (axes, ticks, the shaded guides, notes), and only when the frame
// changes; the ridges themselves are drawn on a canvas laid exactly over Plotly's plot area, in
// the same colours, fills and 2 px outlines. Plotly redraws the whole chart (axes, ticks, shapes)
// on any data change: 35-65 ms per frame at 24 layers on the 2-core dev box, whatever the number
// of traces, so the page drew ~8-12 frames/s; the canvas draws the outlines in ~1 ms
// (bench/bench_page.py measures both).

import {
  PALETTE, PLOT_CONFIG, axis, baseLayout, depthRamp, emptyLayout, rgba, sizeOf, strokeWidth, typeSize,
} from "./theme.js";
import { formatValue } from "./format.js";
import { StableRange, niceStep } from "./scale.js";

const DEFAULTS = Object.freeze({
  values: "pre",      // "pre": input to the nonlinearity; "post": its output
  xMode: "shared",    // "shared": true values on one axis; "layer": each layer in its own std units
  peak: 1.45,         // a ridge's tallest bin, in ridge spacings (overlap gives the ridge look)
  lineWidth: 2,       // outline width, CSS px
  fillWhite: 0.72,    // fill = the layer colour mixed with this much white, opaque
  offNote: () => "not measured in this run", // (config) => the note on frames without these histograms
});

// Output bounds of the bounded activations, drawn as guides when showing post-activations.
const OUTPUT_BOUNDS = { sigmoid: [0, 1], tanh: [-1, 1] };

// Where a squashing nonlinearity still has slope: its derivative is at least 5% of its maximum
// (the server's definition of "saturated", docs/protocol.md). Shaded behind pre-activations, so
// a distribution spilling past it is visibly saturating. sigmoid'(x) = 0.05 · 0.25 at |x| = 4.36;
// tanh'(x) = 0.05 at |x| = 2.18.
const LIVE_RANGE = { sigmoid: 4.356, tanh: 2.178 };

/** The x positions (bin edges) and heights of one histogram, drawn as a closed step outline. */
export function ridgeOutline(histogram, baseline, peak, transform) {
  if (!histogram) return { x: [], y: [] }; // an instrument that is off (or has no value yet)
  const { lo, hi, counts, n } = histogram;
  if (!counts || !counts.length || !n || lo === null || hi === null) return { x: [], y: [] };
  const bins = counts.length;
  const width = (hi - lo) / bins;
  // Density (count per unit of x over all values) makes layers with different ranges comparable;
  // each ridge is then scaled to the same peak height so that every layer's shape stays readable.
  const density = counts.map((count) => count / (n * width));
  const top = Math.max(...density) || 1;
  const x = [transform(lo)];
  const y = [baseline];
  for (let k = 0; k < bins; k++) {
    const height = baseline + (density[k] / top) * peak;
    x.push(transform(lo + k * width), transform(lo + (k + 1) * width));
    y.push(height, height);
  }
  x.push(transform(hi));
  y.push(baseline);
  return { x, y };
}

const NO_VALUES = "no finite values";
const NO_VALUES_SHORT = "NaN/inf only";
// Fixed margins: no per-frame layout jumps. Compact: half a stage wide, beside its twin.
const MARGIN = Object.freeze({ l: 58, r: 128, t: 26, b: 28 });
const COMPACT_MARGIN = Object.freeze({ l: 34, r: 100, t: 26, b: 28 });
const NAME_CHAR_PX = 7.5; // per character of a row label past the two an MLP's layer numbers take
const AXIS_TITLES = { pre: "pre-activation", post: "post-activation", grad: "∂L/∂ pre-activation" };
const LABEL_MIN_PX = 16; // closer rows than this label every other layer (or fewer)

/** Round tick positions across `range`, about one per 70 px, labelled compactly (a run that
 *  blows up spans 1e35, where Plotly's own labels collide). */
function ticksFor([lo, hi], plotWidth) {
  const step = niceStep(hi - lo, Math.min(8, Math.max(3, Math.floor(plotWidth / 70))));
  const tickvals = [];
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) tickvals.push(k * step);
  return { tickmode: "array", tickvals, ticktext: tickvals.map((v) => formatValue(Math.abs(v) < step * 1e-9 ? 0 : v)) };
}

/** Whether layer `i` of `count` gets a label when only every `every`-th one fits: the first,
 *  every `every`-th after it, and the last (with room before it). */
export function labelled(i, count, every) {
  if (i === count - 1) return true;
  return i % every === 0 && count - 1 - i >= every;
}

/** A row's y-axis label from its entry name: "layer3" → "3", "block3.attn_in" → "3 attn",
 *  "block3.resid" → "3 resid", "conv2.ch4-7" → "2: 4-7" (the axis title names the unit). */
export function shortName(name, i) {
  const match = /^(?:layer|block|conv)(\d+)(?:\.(.+))?$/.exec(name ?? "");
  if (!match) return String(i + 1);
  const [, index, part] = match;
  if (!part) return index;
  if (part.startsWith("ch")) return `${index}: ${part.slice(2)}`;
  return `${index} ${part === "attn_in" ? "attn" : part}`;
}

/** The y-axis title for a run's entries: what one row is. */
function rowTitle(names) {
  const first = names[0] ?? "";
  if (first.startsWith("block")) return "block";
  if (first.startsWith("conv")) return "conv: channels";
  return "layer";
}

/** Row labels on the y-axis (the first entry at the top), as many as fit. */
function layerTicks(count, every, names = []) {
  const shown = [];
  for (let i = 0; i < count; i++) if (labelled(i, count, every)) shown.push(i);
  return { tickvals: shown.map((i) => count - 1 - i), ticktext: shown.map((i) => shortName(names[i], i)) };
}

export class RidgeChart {
  /** `labels`: element beside the plot for each layer's range; `axisTitle`: the x-axis caption. */
  constructor(element, { labels, axisTitle, ...options } = {}) {
    this.element = element;
    // The ridges' canvas: a sibling laid over Plotly's plot area (Plotly owns the element's children).
    this.canvas = document.createElement("canvas");
    this.canvas.className = "ridge-canvas";
    this.canvas.setAttribute("aria-hidden", "true");
    element.after(this.canvas);
    this.canvasGeometry = "";
    this.frameKey = null; // what Plotly last drew the frame for (see drawFrame)
    // What the canvas shows: each layer's outline, in data units (window.shiftscope.drawn reads it,
    // as it reads a Plotly chart's traces).
    this.outlines = [];
    this.labels = labels;
    this.axisTitle = axisTitle;
    this.labelSpans = [];
    this.labelGeometry = "";
    this.options = { ...DEFAULTS, ...options };
    this.values = this.options.values;
    this.xMode = this.options.xMode;
    this.ramp = this.options.ramp; // colour stops light → dark; undefined: the default blues
    this.sharedRange = new StableRange();
    this.layerRange = new StableRange({ symmetric: true }); // std units: centred on each mean
    this.compact = false;
    this.margin = null;
    this.layers = [];
    this.applyMargin();
    this.reset(null);
  }

  /** Half-width layout beside a twin: narrower margins, no "layer" axis title. */
  setCompact(compact) {
    this.compact = compact;
    this.applyMargin();
  }

  /** Margins for the layout and the entry names: "12 resid" needs more room than "12". */
  applyMargin() {
    const base = this.compact ? COMPACT_MARGIN : MARGIN;
    const longest = Math.max(0, ...this.layers.map((name, i) => shortName(name, i).length));
    const extra = Math.max(0, longest - 2) * NAME_CHAR_PX;
    if (this.margin?.l === base.l + extra && this.margin?.r === base.r) return;
    this.margin = { ...base, l: base.l + extra };
    const host = this.labels.parentElement;
    host.style.setProperty("--ridge-l", `${this.margin.l}px`);
    host.style.setProperty("--ridge-r", `${this.margin.r}px`);
    this.labelGeometry = "";
    this.dirty = true;
  }

  /** A new run (the `started` message) or null: clear everything, lay out its layers. */
  reset(run) {
    this.layers = run?.layers ?? [];
    this.applyMargin();
    this.activation = run?.config?.activation ?? null;
    this.config = run?.config ?? null;
    this.colors = depthRamp(Math.max(1, this.layers.length), this.ramp).map((color) => ({
      line: rgba(color),
      fill: rgba(color.map((c) => Math.round(c + (255 - c) * this.options.fillWhite))),
    }));
    this.frame = null;
    // A new run keeps the x-axis (it still shrinks, slowly): right after switching to batch norm
    // the new, narrow distributions are seen on the old run's wide axis. Reset clears it.
    if (run === null) this.sharedRange.reset();
    for (const span of this.labelSpans) span.remove();
    this.labelSpans = this.layers.map(() => this.labels.appendChild(document.createElement("span")));
    this.labelGeometry = "";
    this.dirty = true;
  }

  /** Keep the newest frame; drawing waits for render(), once per animation frame. */
  update(frame) {
    this.frame = frame;
    this.dirty = true;
  }

  setValues(values) {
    this.values = values;
    this.sharedRange.reset();
    this.layerRange.reset();
    this.dirty = true;
  }

  setXMode(xMode) {
    this.xMode = xMode;
    this.dirty = true;
  }

  /** The frame has none of these histograms at all (an instrument that is off): not one that
   *  holds only NaN/inf, which is shown, loudly, layer by layer. */
  get off() {
    return this.frame !== null && this.frame.layers.every((layer) => !layer[this.values]);
  }

  /** The x extent of the newest frame as drawn (true values or std units), for a twin's axis. */
  extent() {
    let lo = Infinity;
    let hi = -Infinity;
    for (const layer of this.frame?.layers ?? []) {
      const histogram = layer[this.values];
      if (!histogram?.n || histogram.lo === null) continue;
      const transform = this.transformFor(histogram);
      lo = Math.min(lo, transform(histogram.lo));
      hi = Math.max(hi, transform(histogram.hi));
    }
    return [lo, hi];
  }

  /** The x range for data spanning [lo, hi], with this chart's hysteresis (twins share it). */
  fitRange(lo, hi) {
    return (this.xMode === "layer" ? this.layerRange : this.sharedRange).fit(lo, hi);
  }

  /** Draw if anything changed; returns whether it drew a frame. `xRange`: a range fitted for
   *  this chart and its twin together (fitRange); by default the chart fits its own data. */
  render(xRange = undefined) {
    if (!this.dirty) return false;
    this.dirty = false;
    const count = this.layers.length;
    const outlines = [];
    const labels = [];
    let lo = Infinity;
    let hi = -Infinity;
    for (const [i, layer] of (this.frame?.layers ?? []).entries()) {
      const histogram = layer[this.values];
      const outline = ridgeOutline(histogram, count - 1 - i, this.options.peak, this.transformFor(histogram));
      if (outline.x.length) {
        lo = Math.min(lo, outline.x[0]);
        hi = Math.max(hi, outline.x[outline.x.length - 1]);
      }
      outlines.push(outline);
      labels.push(this.rangeLabel(histogram));
    }
    const range = (xRange === undefined ? this.fitRange(lo, hi) : xRange) ?? [-1, 1];
    this.drawFrame(count, range);
    this.drawOutlines(outlines, range);
    this.showLabels(labels);
    return this.frame !== null;
  }

  /** Plotly draws the axes, ticks, guides and notes: only when one of them changes (a new x
   *  range, size, mode or run), never for new data alone. */
  drawFrame(count, range) {
    const { width, height } = sizeOf(this);
    const state = this.frame === null ? "empty" : this.off ? `off:${this.options.offNote(this.config)}` : "data";
    const key = [count, range[0], range[1], width, height, this.margin.l, this.values, this.xMode,
      this.activation, this.labelEvery(), state, this.layers.join(",")].join("|");
    if (key === this.frameKey) return;
    this.frameKey = key;
    Plotly.react(this.element, [], this.layout(count, range), PLOT_CONFIG);
  }

  /** Each layer's filled outline on the canvas over the plot area, layer 1 first so that every
   *  deeper ridge overlaps the one above it. */
  drawOutlines(outlines, [x0, x1]) {
    const { width, height } = sizeOf(this);
    const margin = this.margin;
    // Plotly's plot area: whole pixels, inside the margins of a layout at least 10 px wide.
    const plotWidth = Math.max(1, Math.round(Math.max(width, 10)) - margin.l - margin.r);
    const plotHeight = Math.max(1, Math.round(Math.max(height, 10)) - margin.t - margin.b);
    const scale = window.devicePixelRatio || 1;
    const canvas = this.canvas;
    const geometry = `${margin.l}:${margin.t}:${plotWidth}:${plotHeight}:${scale}`;
    if (geometry !== this.canvasGeometry) {
      this.canvasGeometry = geometry;
      canvas.width = Math.round(plotWidth * scale);
      canvas.height = Math.round(plotHeight * scale);
      Object.assign(canvas.style, {
        left: `${margin.l}px`, top: `${margin.t}px`, width: `${plotWidth}px`, height: `${plotHeight}px`,
      });
    }
    const context = canvas.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    this.outlines = outlines.filter((outline) => outline.x.length);
    if (this.frame === null || this.off) return;
    const [y0, y1] = this.yRange();
    const kx = (plotWidth * scale) / (x1 - x0);
    const ky = (plotHeight * scale) / (y1 - y0);
    // Far outside the canvas (a diverged twin's 1e35) is as good as just outside it.
    const px = (x) => Math.min(Math.max((x - x0) * kx, -1e5), 1e5);
    const py = (y) => Math.min(Math.max((y1 - y) * ky, -1e5), 1e5);
    context.lineWidth = strokeWidth(this.options.lineWidth) * scale;
    outlines.forEach(({ x, y }, i) => {
      if (!x.length) return;
      context.beginPath();
      context.moveTo(px(x[0]), py(y[0]));
      for (let k = 1; k < x.length; k++) context.lineTo(px(x[k]), py(y[k]));
      const color = this.colors[i] ?? this.colors.at(-1);
      context.fillStyle = color.fill;
      context.fill(); // closes the outline along its baseline; the stroke leaves the baseline out
      context.strokeStyle = color.line;
      context.stroke();
    });
  }

  /** Put each layer's range beside its ridge; text and positions change only when they must. */
  showLabels(labels) {
    const { height } = sizeOf(this);
    const geometry = `${height}:${this.labelSpans.length}`;
    const [yMin, yMax] = this.yRange();
    const margin = this.margin;
    const plotHeight = height - margin.t - margin.b;
    const every = this.labelEvery();
    const count = this.labelSpans.length;
    this.labelSpans.forEach((span, i) => {
      const text = labelled(i, count, every) ? labels[i] ?? "" : "";
      if (span.textContent !== text) {
        span.textContent = text;
        span.toggleAttribute("data-bad", text === NO_VALUES || text === NO_VALUES_SHORT);
      }
      if (geometry !== this.labelGeometry) {
        const baseline = this.layers.length - 1 - i;
        span.style.top = `${margin.t + ((yMax - baseline) / (yMax - yMin)) * plotHeight}px`;
      }
    });
    this.labelGeometry = geometry;
    const nothing = this.frame === null || this.off;
    this.labels.toggleAttribute("data-empty", nothing);
    this.axisTitle.hidden = nothing;
    const what = AXIS_TITLES[this.values] ?? this.values;
    const perLayer = this.compact ? `${what}, std from layer mean` : `${what}, in standard deviations from each layer’s mean`;
    const title = this.xMode === "layer" ? perLayer : this.values === "grad" ? what : `${what} value`;
    if (this.axisTitle.textContent !== title) this.axisTitle.textContent = title;
  }

  yRange() {
    return [-0.12, Math.max(this.layers.length, 1) - 1 + this.options.peak + 0.1];
  }

  /** Rows closer than a label is tall get every k-th layer labelled (and the last): no pile-ups. */
  labelEvery() {
    const [yMin, yMax] = this.yRange();
    const rowPx = (sizeOf(this).height - this.margin.t - this.margin.b) / (yMax - yMin);
    return rowPx > 0 ? Math.max(1, Math.ceil(LABEL_MIN_PX / rowPx)) : 1;
  }

  // --- internals ---------------------------------------------------------------------------------

  transformFor(histogram) {
    if (this.xMode !== "layer") return (x) => x;
    const mean = histogram?.mean ?? 0;
    const std = histogram?.std > 0 ? histogram.std : 1;
    return (x) => (x - mean) / std;
  }

  /** A layer's true value range, as the label beside its ridge. */
  rangeLabel(histogram) {
    if (!histogram) return "";
    if (!histogram.n) return this.compact ? NO_VALUES_SHORT : NO_VALUES;
    if (this.values === "grad") {
      // Gradients straddle 0 and shrink by decades: their largest magnitude is the number to read.
      return `±${formatValue(Math.max(Math.abs(histogram.lo), Math.abs(histogram.hi)))}`;
    }
    const gap = this.compact ? "…" : " … "; // half a stage wide: every pixel counts
    return `${formatValue(histogram.lo)}${gap}${formatValue(histogram.hi)}`;
  }

  layout(count, xRange) {
    const compact = this.compact;
    const annotations = [];
    const bounds = this.values === "post" && this.xMode === "shared" ? OUTPUT_BOUNDS[this.activation] : null;
    const guides = (bounds ?? []).map((x) => ({
      type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
      line: { color: PALETTE.vermillion, width: strokeWidth(2), dash: "dot" },
      layer: "below",
    }));
    const live = this.values === "pre" && this.xMode === "shared" ? LIVE_RANGE[this.activation] : null;
    if (live) {
      guides.push({
        type: "rect", xref: "x", yref: "paper", x0: -live, x1: live, y0: 0, y1: 1,
        fillcolor: "rgba(0,158,115,0.10)", line: { width: 0 }, layer: "below",
      });
      annotations.push({
        xref: "x", x: 0, yref: "paper", y: 1, yanchor: "bottom", showarrow: false,
        text: compact ? "has slope" : `${this.activation} has slope here`,
        font: { size: typeSize(14), color: "#00694d" },
      });
    }
    return baseLayout(sizeOf(this), {
      margin: { ...this.margin },
      xaxis: axis({
        range: xRange ?? [-1, 1],
        layer: "below traces",
        zeroline: true,
        zerolinewidth: 1.5,
        showgrid: true,
        ...ticksFor(xRange ?? [-1, 1], sizeOf(this).width - this.margin.l - this.margin.r),
      }),
      yaxis: axis({
        range: this.yRange(),
        tickmode: "array",
        ...layerTicks(count, this.labelEvery(), this.layers),
        showgrid: false,
        zeroline: false,
        showline: false,
        ticks: "",
        title: { text: compact ? "" : rowTitle(this.layers), font: { size: typeSize(14), color: PALETTE.ink2 }, standoff: 8 },
      }),
      shapes: guides,
      annotations,
      ...(this.frame === null ? emptyLayout("") : this.off ? emptyLayout(this.options.offNote(this.config)) : {}),
    });
  }
}
