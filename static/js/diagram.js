// A small schematic of one layer (or block) of the network the form describes, showing where the
// histograms come from: a dot where the ridge's "pre" is measured, a diamond where its "post" is.
// An SVG built here, coloured by CSS classes on the page's theme (static/css/arch.css): the taps
// in the Okabe–Ito blue and orange, and told apart by shape and label too.

import { ARCHS, archOf, placementsFor } from "./arch.js";

const DEFAULTS = Object.freeze({
  width: 280,     // the settings panel's inner width, in CSS pixels (the SVG scales with it)
  boxHeight: 26,
  charWidth: 8.2, // a 14 px label's average advance: boxes are sized to their text
  padding: 12,    // inside a box, left + right
});

const SVG = "http://www.w3.org/2000/svg";
const NORM_SHORT = { batch: "BN", layer: "LN", group: "GN", rms: "RMS", none: "none" };
const ACT_SHORT = { sigmoid: "σ", tanh: "tanh", relu: "ReLU", gelu: "GELU", linear: "id" };
const ACT_WORDS = { sigmoid: "sigmoid", tanh: "tanh", relu: "ReLU", gelu: "GELU", linear: "identity" };

/** An SVG element with attributes and children. */
function el(name, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

function text(x, y, content, className = "dg-text", anchor = "middle") {
  return el("text", { x, y, class: className, "text-anchor": anchor, "dominant-baseline": "central" }, [content]);
}

const boxWidth = (label) => Math.max(30, Math.round(label.length * DEFAULTS.charWidth + DEFAULTS.padding));

/** A labelled box centred on the wire at height `y`, its left edge at `x`. */
function box(x, y, label, kind = "") {
  const width = boxWidth(label);
  const h = DEFAULTS.boxHeight;
  return {
    width,
    node: el("g", { class: `dg-box ${kind}`.trim() }, [
      el("rect", { x, y: y - h / 2, width, height: h, rx: 4 }),
      text(x + width / 2, y, label),
    ]),
  };
}

/** A tap: a dot (pre) or a diamond (post) on the wire at (x, y). */
function tap(x, y, which) {
  if (which === "pre") return el("circle", { cx: x, cy: y, r: 5.5, class: "dg-tap dg-tap-pre" });
  const r = 6.5;
  return el("path", { d: `M${x} ${y - r}L${x + r} ${y}L${x} ${y + r}L${x - r} ${y}Z`, class: "dg-tap dg-tap-post" });
}

const wire = (x1, y1, x2, y2, className = "dg-wire") => el("line", { x1, y1, x2, y2, class: className });
const arrow = (x1, y, x2, className = "dg-wire") => el("line", { x1, y1: y, x2, y2: y, class: className, "marker-end": "url(#dg-arrow)" });
const plus = (x, y) => el("g", { class: "dg-plus" }, [
  el("circle", { cx: x, cy: y, r: 8 }), wire(x - 4.5, y, x + 4.5, y, "dg-plus-mark"), wire(x, y - 4.5, x, y + 4.5, "dg-plus-mark"),
]);

/** Lays out boxes and taps left to right on one wire; returns the nodes and where each item sits. */
function chain(items, { x = 0, y, gap = 12 }) {
  const nodes = [];
  const at = {};
  let cursor = x;
  for (const item of items) {
    if (item.tap) {
      const centre = cursor + 7;
      nodes.push(wire(cursor, y, centre + 7, y), tap(centre, y, item.tap));
      at[item.key ?? item.tap] = centre;
      cursor = centre + 7;
      continue;
    }
    if (cursor > x || item.lead) nodes.push(arrow(cursor, y, cursor + gap));
    cursor += cursor > x || item.lead ? gap : 0;
    const b = box(cursor, y, item.label, item.kind);
    nodes.push(b.node);
    at[item.key ?? item.label] = cursor + b.width / 2;
    cursor += b.width;
  }
  return { nodes, at, end: cursor };
}

const normBox = (norm) => ({ label: NORM_SHORT[norm] ?? norm, kind: norm === "none" ? "dg-norm dg-norm-none" : "dg-norm", key: "norm" });
const actBox = (activation) => ({ label: ACT_SHORT[activation] ?? activation, kind: "dg-act", key: "act" });

/** MLP and CNN: Linear (or Conv) → Norm → act, or → act → Norm; pre and post around the act. */
function plainLayer(config, arch) {
  const y = 22;
  const first = arch === "cnn" ? { label: "Conv 3×3", key: "linear" } : { label: "Linear", key: "linear" };
  const after = config.norm_position === "after";
  const items = after
    ? [first, { tap: "pre" }, actBox(config.activation), { tap: "post" }, normBox(config.norm)]
    : [first, normBox(config.norm), { tap: "pre" }, actBox(config.activation), { tap: "post" }];
  const { nodes, at, end } = chain(items, { x: 2, y });
  nodes.push(arrow(end, y, end + 12), text(end + 16, y, `× ${config.depth}`, "dg-text dg-depth", "start"));
  nodes.push(text(at.pre, y + 26, "pre", "dg-label dg-label-pre"), text(at.post, y + 26, "post", "dg-label dg-label-post"));
  return { nodes, height: y + 36, width: Math.max(DEFAULTS.width, end + 52) };
}

/** The channel groups a conv layer of `channels` is probed in (app/nets/cnn.py, channel_groups). */
export function channelGroups(channels) {
  const count = Math.min(4, Math.max(1, channels));
  const size = Math.floor(channels / count);
  return Array.from({ length: count }, (_, i) => {
    const a = i * size;
    const b = i === count - 1 ? channels : a + size;
    return `ch${a}-${b - 1}`;
  });
}

/** A residual block: the stream along the top, its branches below, norms pre or post. */
function residualBlock(config, arch) {
  const streamY = 30;
  const branchY = 74;
  const pre = config.norm_position !== "post";
  const nodes = [];
  const streamParts = [];
  const norm = normBox(config.norm);
  // resid: the stream into the block (pre) and out of it (post).
  nodes.push(tap(7, streamY, "pre"), text(1, 9, "resid", "dg-label dg-label-pre", "start"));
  const branches = arch === "transformer"
    ? [
      // attn_in: the stream (pre) and what attention reads (post): Norm(x), or x itself in post-norm.
      { items: [{ tap: "pre", key: "in" }, ...(pre ? [norm] : []), { tap: "post", key: "out" }, { label: "Attn" }], name: "attn_in" },
      { items: [...(pre ? [norm] : []), { label: "FFN" }] },
    ]
    : [{
      items: [...(pre ? [norm] : []), { label: "W₁" }, { tap: "pre", key: "in" }, actBox(config.activation),
        { tap: "post", key: "out" }, { label: "W₂" }],
      name: "act",
    }];
  let x = 18;
  for (const branch of branches) {
    const split = x;
    const laid = chain(branch.items, { x: split + 6, y: branchY, gap: 10 });
    const join = laid.end + 10;
    nodes.push(wire(split, streamY, split, branchY), wire(split, branchY, split + 6, branchY));
    nodes.push(...laid.nodes, wire(laid.end, branchY, join, branchY), el("line", {
      x1: join, y1: branchY, x2: join, y2: streamY + 10, class: "dg-wire", "marker-end": "url(#dg-arrow)",
    }));
    if (branch.name) nodes.push(text((laid.at.in + laid.at.out) / 2, branchY + 27, branch.name, "dg-label"));
    streamParts.push(plus(join, streamY));
    x = join + 8;
    if (!pre) {
      // Post-norm: the sum is normalised on the stream itself.
      const b = box(x + 6, streamY, norm.label, norm.kind);
      streamParts.push(b.node);
      x += 6 + b.width;
    }
    x += 8;
  }
  nodes.unshift(arrow(12, streamY, x + 4, "dg-wire dg-stream"));
  const out = x + 14;
  nodes.push(...streamParts, tap(out, streamY, "post"), text(out + 7, 9, "resid", "dg-label dg-label-post", "end"));
  const width = Math.max(DEFAULTS.width, out + 9);
  nodes.push(text(width - 2, branchY + 27, `× ${config.depth}`, "dg-text dg-depth", "end"));
  return { nodes, height: branchY + 38, width };
}

/** In words, for screen readers and the caption. */
export function describeArch(config) {
  const arch = archOf(config);
  const norm = config.norm === "none" ? "no norm" : `${config.norm} norm`;
  const act = ACT_WORDS[config.activation] ?? config.activation;
  const depth = config.depth;
  if (arch === "mlp" || arch === "cnn") {
    const unit = arch === "cnn" ? "3×3 conv" : "Linear";
    const order = config.norm_position === "after" ? `${unit}, ${act}, then ${norm}` : `${unit}, ${norm}, then ${act}`;
    const rows = arch === "cnn" ? "four rows per layer, one per channel group" : "one row per layer";
    return `${ARCHS[arch].title}, ${depth} layers of ${order}; histograms before (pre) and after (post) the ${act}, ${rows}.`;
  }
  const placement = config.norm_position === "post" ? `post-norm (${norm} after each add)` : `pre-norm (${norm} inside each branch)`;
  const taps = arch === "transformer"
    ? "attn_in: the stream (pre) and what attention reads (post); resid: the stream into (pre) and out of (post) each block"
    : "act: before (pre) and after (post) the activation; resid: the stream into (pre) and out of (post) each block";
  return `${ARCHS[arch].title}, ${depth} ${ARCHS[arch].depthUnit}, ${placement}. Rows per block: ${taps}.`;
}

/** The caption under the drawing: how the ridge's rows map onto it. */
function caption(config) {
  const arch = archOf(config);
  const depth = config.depth;
  if (arch === "mlp") return `1 ridge row per layer: layer1 … layer${depth}`;
  if (arch === "cnn") {
    const groups = channelGroups(config.width);
    return `4 rows per layer: conv1.${groups[0]} … conv${depth}.${groups.at(-1)}`;
  }
  return `2 rows per block: ${arch === "transformer" ? "attn_in" : "act"}, resid (block1 … block${depth})`;
}

export class ArchDiagram {
  /** `figure`: the element to draw in (an empty <figure>); `schema`: the config schema. */
  constructor(figure, schema) {
    this.figure = figure;
    this.schema = schema;
    this.drawn = null; // what the drawing shows, as a string: redraw when it changes
    this.svg = el("svg", { class: "dg", role: "img", "aria-labelledby": "arch-diagram-title" });
    this.title = el("title", { id: "arch-diagram-title" });
    this.defs = el("defs", {}, [el("marker", {
      // Sized in drawing units: the same head on a thin wire and on the thick stream.
      id: "dg-arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 9, markerHeight: 9, orient: "auto",
      markerUnits: "userSpaceOnUse",
    }, [el("path", { d: "M0 0L8 4L0 8Z", class: "dg-arrowhead" })])]);
    this.caption = document.createElement("figcaption");
    this.caption.className = "dg-caption";
    this.keyElement = document.createElement("span");
    this.keyElement.className = "dg-key";
    this.keyElement.setAttribute("aria-hidden", "true");
    this.keyElement.innerHTML = '<span class="dg-key-pre"></span>pre <span class="dg-key-post"></span>post · ';
    this.captionText = document.createElement("span");
    this.caption.append(this.keyElement, this.captionText);
    figure.replaceChildren(this.svg, this.caption);
  }

  /** Draw the network `config` describes; redraws only when what it shows changed. */
  show(config) {
    const arch = archOf(config);
    const placements = placementsFor(this.schema, arch);
    const position = placements.includes(config.norm_position) ? config.norm_position : placements[0];
    const shown = { ...config, arch, norm_position: position };
    const key = ["arch", "norm", "norm_position", "activation", "depth", "width"].map((f) => shown[f]).join("|");
    if (key === this.drawn) return;
    this.drawn = key;
    // A block wider than the panel (post-norm, long labels) is drawn to scale, a little smaller.
    const { nodes, height, width } = ARCHS[arch].residual ? residualBlock(shown, arch) : plainLayer(shown, arch);
    this.title.textContent = describeArch(shown);
    this.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.svg.replaceChildren(this.title, this.defs, ...nodes);
    this.captionText.textContent = caption(shown);
    this.keyElement.hidden = !ARCHS[arch].residual; // plain layers label their taps "pre" and "post"
    this.figure.dataset.arch = arch;
    this.figure.dataset.normPosition = position;
  }
}
