// The architectures the server trains (docs/protocol.md, "Architectures"): which settings each one
// reads, which norms and placements it takes, and what switching architecture does to the form.
// What each architecture takes comes from the schema, whose x-arch-* hints are built from the
// server's one table (app/schemas.py, ARCHS): defaults, norms, placements, depth and width limits,
// the fields it does not read and the values it requires. Only the words are here.

/** What the page calls each architecture, and the words its settings take. */
export const ARCHS = Object.freeze({
  // residual: drawn as a stream with branches (app/nets/resmlp.py, transformer.py)
  mlp: { title: "MLP", name: "the MLP", depthUnit: "hidden layers", widthLabel: "Width", residual: false },
  resmlp: { title: "Residual MLP", name: "the residual MLP", depthUnit: "residual blocks", widthLabel: "Width", residual: true },
  transformer: { title: "Transformer", name: "the transformer", depthUnit: "blocks", widthLabel: "Width", residual: true },
  cnn: { title: "CNN", name: "the CNN", depthUnit: "conv layers", widthLabel: "Channels", residual: false },
});

// A placement carried to an architecture that takes the other pair: norm early ↔ norm late.
const PLACEMENT_SWAP = Object.freeze({ before: "pre", after: "post", pre: "before", post: "after" });

export const NORM_WORDS = Object.freeze({
  none: "No norm", batch: "Batch norm", layer: "Layer norm", group: "Group norm", rms: "RMS norm",
});

/** The architecture a config names (mlp when it names none the page knows). */
export function archOf(config) {
  return config?.arch in ARCHS ? config.arch : "mlp";
}

/** The norms `arch` takes, in the schema's order. */
export function normsFor(schema, arch) {
  return schema["x-arch-norms"]?.[arch] ?? schema.properties.norm.enum;
}

/** The norm placements `arch` takes: before/after (mlp, cnn) or pre/post (residual ones). */
export function placementsFor(schema, arch) {
  return schema["x-arch-placements"]?.[arch] ?? ["before", "after"];
}

export function maxDepthFor(schema, arch) {
  return schema["x-arch-max-depth"]?.[arch] ?? schema.properties.depth.maximum;
}

export function maxWidthFor(schema, arch) {
  return schema["x-arch-max-width"]?.[arch] ?? schema.properties.width.maximum;
}

/** Fields whose default depends on the architecture, and their defaults for `arch`. */
export function archDefaults(schema, arch) {
  return schema["x-arch-defaults"]?.[arch] ?? {};
}

/** The settings `arch` does not read: the server refuses them, so they are never sent. */
export function unreadFields(schema, arch) {
  return new Set(schema["x-arch-unread"]?.[arch] ?? []);
}

/** The values `arch` requires ({dataset: "digits"} for the CNN). */
export function fixedFields(schema, arch) {
  return schema["x-arch-fixed"]?.[arch] ?? {};
}

/** The settings the form hides for `arch`: those it does not read and those it fixes. */
export function hiddenFields(schema, arch) {
  return new Set([...unreadFields(schema, arch), ...Object.keys(fixedFields(schema, arch))]);
}

/** `config` as it goes on the wire: without the fields its architecture does not read.
 *
 *    wireConfig(schema, { arch: "transformer", width: 64, d_model: 32 })  // → {arch, d_model}
 */
export function wireConfig(schema, config) {
  const unread = unreadFields(schema, archOf(config));
  return Object.fromEntries(Object.entries(config).filter(([field]) => !unread.has(field)));
}

/** The fields to change when the form switches from `from` to `to`, and what to tell the user.
 *
 *  Fields the user has not `touched` in this session and whose default depends on the
 *  architecture take `to`'s value: the preset's when the preset is of `to`, else `to`'s default,
 *  else (a field only `from` had a default for) the preset's value or the schema's. Then any
 *  value `to` cannot take is replaced, so the next Play is valid, except fields in `keep` (a link
 *  that names them: the server's error then shows at the field).
 *
 *    switchArch(schema, config, "mlp", "transformer", { preset })  // → {values: {arch, lr, …}, notes}
 */
export function switchArch(schema, config, from, to, { preset = null, touched = new Set(), keep = new Set() } = {}) {
  const next = { ...config, arch: to };
  const presetConfig = preset?.config ?? null;
  const presetArch = presetConfig ? archOf(presetConfig) : null;
  const fromDefaults = archDefaults(schema, from);
  const toDefaults = archDefaults(schema, to);
  const presetDefaults = presetArch ? archDefaults(schema, presetArch) : {};
  for (const field of new Set([...Object.keys(fromDefaults), ...Object.keys(toDefaults)])) {
    if (touched.has(field) || keep.has(field)) continue;
    if (presetArch === to && field in presetConfig) next[field] = presetConfig[field];
    else if (field in toDefaults) next[field] = toDefaults[field];
    else if (presetConfig && field in presetConfig && !(field in presetDefaults)) next[field] = presetConfig[field];
    else next[field] = schema.properties[field]?.default;
  }
  const notes = fitArch(schema, next, keep);
  const values = Object.fromEntries(Object.entries(next).filter(([field, value]) => value !== config[field]));
  return { values, notes };
}

/** Replace, in place, what `config`'s architecture cannot take (fields in `keep` stay); returns
 *  a sentence for each replacement the user should hear about. */
export function fitArch(schema, config, keep = new Set()) {
  const arch = archOf(config);
  const words = ARCHS[arch];
  const notes = [];
  const set = (field, value) => {
    if (keep.has(field) || config[field] === value) return false;
    config[field] = value;
    return true;
  };
  const norms = normsFor(schema, arch);
  if (!norms.includes(config.norm)) {
    const old = config.norm;
    if (set("norm", norms.includes("layer") ? "layer" : "none")) {
      notes.push(`${NORM_WORDS[old] ?? old} is not offered for ${words.name}: now ${NORM_WORDS[config.norm].toLowerCase()}.`);
    }
  }
  const placements = placementsFor(schema, arch);
  if (!placements.includes(config.norm_position)) {
    set("norm_position", PLACEMENT_SWAP[config.norm_position] ?? placements[0]);
  }
  const maxDepth = maxDepthFor(schema, arch);
  if (config.depth > maxDepth && set("depth", maxDepth)) {
    notes.push(`${words.title} takes at most ${maxDepth} ${words.depthUnit}: depth is now ${maxDepth}.`);
  }
  const maxWidth = maxWidthFor(schema, arch);
  if (config.width > maxWidth && set("width", maxWidth)) {
    notes.push(`${words.title} takes at most ${maxWidth} ${words.widthLabel.toLowerCase()}: now ${maxWidth}.`);
  }
  // A fixed field keeps a value the architecture also takes (the CNN on an upload of 8×8 images).
  const also = schema["x-arch-also"]?.[arch] ?? {};
  const moved = Object.entries(fixedFields(schema, arch))
    .filter(([field]) => !(also[field] ?? []).includes(config[field]))
    .filter(([field, value]) => set(field, value));
  if (moved.some(([field]) => field === "dataset")) notes.push(`${words.title} reads the 8×8 digits as images.`);
  if (config.norm === "group" && config.width > 0 && config.groups > 0 && config.width % config.groups) {
    // Group norm needs groups that divide the width: the largest that does, below the old count.
    let groups = Math.min(config.groups, config.width);
    while (config.width % groups) groups -= 1;
    set("groups", groups);
  }
  return notes;
}

/** The ridge's row caption for a run: what its rows are, top to bottom (the names are in the
 *  layer menus and the diagram's caption). */
export function rowsCaption(run) {
  const arch = archOf(run?.config);
  if (arch === "resmlp") return "act, resid per block; block 1 at the top";
  if (arch === "transformer") return "attn_in, resid per block; block 1 at the top";
  if (arch === "cnn") return "4 channel groups per conv layer; conv 1 at the top";
  return "layer 1 at the top, deepest at the bottom";
}

/** What one row (probed tensor) is called in a menu: "layer 3" for an MLP, else its name. */
export function entryLabel(name, index) {
  return /^layer\d+$/.test(name) ? `layer ${index + 1}` : name;
}

/** The menu entry for "whatever the last row is": "last layer (8)", or "last: block4.resid". */
export function lastEntryLabel(layers) {
  const last = layers.at(-1);
  return last === undefined || /^layer\d+$/.test(last) ? `last layer (${layers.length})` : `last: ${last}`;
}

/** The form's architecture-dependent look: which fields show, their labels, the norms and
 *  placements offered, the depth limit. Touches the DOM only when the architecture changes. */
export class ArchForm {
  constructor(form, schema) {
    this.form = form;
    this.schema = schema;
    this.shown = null;
    this.widthLabel = form.querySelector('label[for="f-width"]');
    this.depthUnit = form.querySelector("#depth-unit");
    this.depthRange = form.querySelector("#f-depth-range");
    this.depthInput = form.elements.namedItem("depth");
  }

  /** Show the form as `arch` takes it. */
  show(arch) {
    if (arch === this.shown) return;
    this.shown = arch;
    const words = ARCHS[arch];
    const hidden = hiddenFields(this.schema, arch);
    for (const field of this.form.querySelectorAll("[data-field]")) {
      const hide = hidden.has(field.dataset.field);
      if (field.hidden !== hide) field.hidden = hide;
    }
    // The same settings mirrored into panels (the test set of "Train vs eval").
    for (const input of document.querySelectorAll("[data-mirror-for]")) {
      input.disabled = hidden.has(input.dataset.mirrorFor);
      input.closest("label")?.toggleAttribute("data-unread", input.disabled);
    }
    const norms = normsFor(this.schema, arch);
    for (const radio of this.form.querySelectorAll('input[name="norm"]')) {
      const offered = norms.includes(radio.value);
      radio.disabled = !offered;
      const label = this.form.querySelector(`label[for="${radio.id}"]`);
      const key = this.schema.properties.norm.enum.indexOf(radio.value) + 1;
      label.title = offered ? `${NORM_WORDS[radio.value]} (key ${key})` : `${NORM_WORDS[radio.value]}: not offered for ${words.name}`;
    }
    const placements = placementsFor(this.schema, arch);
    for (const radio of this.form.querySelectorAll('input[name="norm_position"]')) {
      const offered = placements.includes(radio.value);
      radio.disabled = !offered;
      radio.hidden = !offered;
      this.form.querySelector(`label[for="${radio.id}"]`).hidden = !offered;
    }
    if (this.widthLabel) this.widthLabel.textContent = words.widthLabel;
    if (this.depthUnit) this.depthUnit.textContent = words.depthUnit;
    const maxDepth = String(maxDepthFor(this.schema, arch));
    this.depthRange.max = maxDepth;
    this.depthInput.max = maxDepth;
    const width = this.form.elements.namedItem("width");
    if (width) width.max = String(maxWidthFor(this.schema, arch));
    this.form.dataset.arch = arch;
  }

  /** Whether a field is shown for the architecture on screen. */
  isShown(field) {
    return !hiddenFields(this.schema, this.shown).has(field);
  }
}
