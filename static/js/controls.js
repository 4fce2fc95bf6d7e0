// The settings form: form ⇄ config object, config ⇄ URL query string, presets, field errors.
// Bounds, choices and defaults come from the RunConfig JSON schema the server renders into the
// page (templates/index.html); nothing here repeats a limit. What depends on the architecture
// (fields shown, norms offered, defaults on a switch) is arch.js's.

import { ARCHS, ArchForm, NORM_WORDS, archOf, normsFor, switchArch } from "./arch.js";
import { isStateParam } from "./state.js";

const DEFAULTS = Object.freeze({
  lrMantissas: [1, 1.5, 2, 3, 5, 7], // notches per decade of the log learning-rate slider
  urlWriteDelayMs: 250,              // browsers refuse more than ~100 replaceState calls per 30 s
});

/** Notches of a log slider from `min` to `max`: 1, 1.5, 2, 3, 5, 7 × every power of ten. */
export function lrNotches(min, max, mantissas = DEFAULTS.lrMantissas) {
  const notches = [];
  for (let exponent = Math.floor(Math.log10(min)); exponent <= Math.ceil(Math.log10(max)); exponent++) {
    for (const mantissa of mantissas) {
      const value = Number((mantissa * 10 ** exponent).toPrecision(3));
      if (value >= min * (1 - 1e-9) && value <= max * (1 + 1e-9)) notches.push(value);
    }
  }
  return notches;
}

/** Index of the notch nearest to `value` on a log scale. */
export function nearestNotch(notches, value) {
  if (!(value > 0)) return 0;
  let best = 0;
  for (let i = 1; i < notches.length; i++) {
    if (Math.abs(Math.log(notches[i] / value)) < Math.abs(Math.log(notches[best] / value))) best = i;
  }
  return best;
}

/** The next notch above (direction +1) or below (−1) `value`, or `value` at the end of the scale. */
export function stepNotch(notches, value, direction) {
  if (direction > 0) return notches.find((notch) => notch > value * (1 + 1e-9)) ?? value;
  return [...notches].reverse().find((notch) => notch < value * (1 - 1e-9)) ?? value;
}

/** The schema's default for every field. */
export function defaultsFromSchema(schema) {
  return Object.fromEntries(Object.entries(schema.properties).map(([name, prop]) => [name, prop.default]));
}

/** Same config, field by field; `ignore` lists fields left out of the comparison. */
export function sameConfig(a, b, ignore = []) {
  return Object.keys({ ...a, ...b }).every((name) => ignore.includes(name) || a[name] === b[name]);
}

/** The settings form, its presets and its mirror in the URL. */
export class Controls {
  constructor(form, { schema, presets, defaultPreset, story }) {
    this.form = form;
    this.schema = schema;
    // The URL lists fields in the order the form shows them: the main four first.
    this.fieldOrder = [...new Set([...form.elements].map((el) => el.name).filter((n) => n in schema.properties))];
    this.presets = new Map(presets.map((preset) => [preset.id, preset]));
    this.defaultPreset = defaultPreset;
    this.story = story; // {summary, look, question, claim?, paper?, claimBox?}: the preset's story
    this.presetSelect = form.elements.namedItem("preset");
    this.more = form.querySelector("details.more");
    this.depthRange = form.querySelector("#f-depth-range");
    this.depthInput = form.elements.namedItem("depth");
    this.lrRange = form.querySelector("#f-lr-range");
    this.lrInput = form.elements.namedItem("lr");
    this.lrSteps = lrNotches(Number(this.lrRange.dataset.min), Number(this.lrRange.dataset.max));
    this.lrRange.max = String(this.lrSteps.length - 1);
    this.listeners = { change: [], lr: [] };
    this.archForm = new ArchForm(form, schema);
    this.config = this.readForm(); // the config the form shows, kept current by every edit
    this.arch = null;           // the architecture the form shows
    this.touched = new Set();   // fields the user set in this session: an arch switch keeps them
    this.notes = { arch: form.querySelector("#arch-note"), norm: form.querySelector("#norm-note") };
    this.urlTimer = null;
    this.queryOf = null; // () => the page state's query string (state.js); set by main.js

    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("input", (event) => this.onInput(event));
    form.addEventListener("change", (event) => {
      if (event.target === this.presetSelect) this.selectPreset(this.presetSelect.value);
    });
  }

  /** `handler(config, field)` after the user changes any config field. */
  onChange(handler) { this.listeners.change.push(handler); }

  /** `handler(lr)` after the user changes the learning rate (slider, box or arrow keys). */
  onLearningRate(handler) { this.listeners.lr.push(handler); }

  /** The chosen preset (or undefined), and its id. */
  get preset() { return this.presets.get(this.presetSelect.value); }

  get presetId() { return this.presetSelect.value || null; }

  /** Set config fields as if the user had: the form, the URL and every listener follow. */
  setFields(values) {
    for (const name of Object.keys(values)) this.touched.add(name);
    this.writeConfig(values);
    for (const name of Object.keys(values)) this.clearErrors(name);
    this.changed(Object.keys(values).join(","));
  }

  /** Fill the form from a link's preset and fields (state.js parses the URL): the preset (the
   *  default when it names none or an unknown one), then the fields over it. */
  loadFrom(presetId, overrides) {
    const known = presetId && this.presets.has(presetId);
    this.selectPreset(known ? presetId : this.defaultPreset, { writeUrl: false });
    if (overrides.arch in ARCHS && overrides.arch !== this.arch) {
      // A link that names another architecture: the fields it leaves out follow that architecture,
      // as the server's defaults do; the fields it names stay as they are.
      const { values } = switchArch(this.schema, this.readConfig(), this.arch, overrides.arch, {
        preset: this.preset, keep: new Set(Object.keys(overrides)),
      });
      this.writeConfig(values);
    }
    this.writeConfig(overrides);
    this.refreshEdited();
    return { unknownPreset: presetId && !known ? presetId : null };
  }

  /** Show another screen's config (the page state's): every field as given, none of it "set by
   *  hand" here; the listeners follow. */
  setConfig(config) {
    const arch = archOf(config);
    if (arch !== this.arch) this.showNote("arch", "");
    this.writeConfig(config);
    this.clearErrors();
    this.changed("config");
  }

  selectPreset(id, { writeUrl = true } = {}) {
    const preset = this.presets.get(id);
    if (!preset) return;
    this.presetSelect.value = id;
    this.touched.clear(); // a preset is a whole config: nothing in it was set by hand
    this.showNote("arch", "");
    this.showNote("norm", "");
    this.writeConfig({ ...defaultsFromSchema(this.schema), ...preset.config });
    this.story.summary.textContent = preset.summary;
    this.story.look.textContent = preset.look_for;
    this.story.question.textContent = preset.question;
    if (this.story.claim) {
      // An instrument preset tests a paper's claim: say which paper and what it claims.
      this.story.claim.textContent = preset.claim ?? "";
      this.story.paper.textContent = preset.paper ?? "";
      // A story preset may quote figures (its checks) without a paper's claim.
      this.story.claim.parentElement.hidden = !preset.claim && !preset.paper;
      this.story.claimBox.hidden = !preset.claim && !preset.paper && !preset.checks?.length;
    }
    this.clearErrors();
    this.refreshEdited();
    if (writeUrl) this.writeUrlSoon();
    this.emit("change", this.readConfig(), "preset");
  }

  /** The config the form describes: every field, typed; an empty or unreadable value is null.
   *  A copy of the one the page keeps (`this.config`), which follows every edit and write. */
  readConfig() {
    return { ...this.config };
  }

  /** Parse the form's inputs (after an edit or a write; everything else reads `this.config`). */
  readForm() {
    const config = {};
    for (const [name, prop] of Object.entries(this.schema.properties)) {
      const element = this.form.elements.namedItem(name);
      if (!element) continue;
      const text = element.value; // a RadioNodeList's value is the checked radio's, or ""
      if (prop.type === "boolean") {
        config[name] = Boolean(element.checked);
      } else if (prop.type === "integer" || prop.type === "number") {
        config[name] = text === "" || !Number.isFinite(Number(text)) ? null : Number(text);
      } else {
        config[name] = text === "" ? null : text;
      }
    }
    return config;
  }

  /** Put the given fields into the form; values it cannot hold (an unknown choice) leave it empty. */
  writeConfig(config) {
    for (const [name, value] of Object.entries(config)) {
      const element = this.form.elements.namedItem(name);
      if (!element) continue;
      if (element instanceof RadioNodeList) {
        for (const radio of element) radio.checked = radio.value === String(value);
      } else if (element.type === "checkbox") {
        element.checked = value === true || value === "true";
      } else {
        element.value = value === null || value === undefined ? "" : String(value);
      }
      if (name === "depth") this.depthRange.value = element.value;
      if (name === "lr") this.syncLrRange();
    }
    if ("arch" in config) this.showArch();
    this.config = this.readForm(); // values the form cannot hold read back as null
  }

  /** The architecture the form shows (mlp when its value is unknown). */
  get chosenArch() {
    return archOf({ arch: this.form.elements.namedItem("arch")?.value });
  }

  get learningRate() {
    const lr = Number(this.lrInput.value);
    return Number.isFinite(lr) && lr > 0 ? lr : Number(this.schema.properties.lr.default);
  }

  /** Move the learning rate one notch up (+1) or down (−1) the log scale. */
  nudgeLearningRate(direction) {
    this.touched.add("lr");
    const lr = stepNotch(this.lrSteps, this.learningRate, direction);
    this.lrInput.value = String(lr);
    this.syncLrRange();
    this.clearErrors("lr");
    this.changed("lr");
    return lr;
  }

  /** Pick a norm by its position in the schema's list (0-based), as the 1–5 keys do; false when
   *  there is no such choice. A norm the architecture does not take is explained, not picked. */
  selectNorm(index) {
    const choices = this.schema.properties.norm.enum;
    if (index < 0 || index >= choices.length) return false;
    const offered = normsFor(this.schema, this.arch);
    if (!offered.includes(choices[index])) {
      const keys = offered.map((norm) => `${choices.indexOf(norm) + 1} ${NORM_WORDS[norm].replace(/ norm$/, "").toLowerCase()}`);
      this.showNote("norm", `${NORM_WORDS[choices[index]]} is not offered for ${ARCHS[this.arch].name}; keys ${keys.join(", ")}.`);
      return true;
    }
    this.touched.add("norm");
    this.showNote("norm", "");
    this.writeConfig({ norm: choices[index] });
    this.clearErrors("norm");
    this.changed("norm");
    return true;
  }

  focusPreset() { this.presetSelect.focus(); }

  /** Show the server's per-field errors next to their fields; returns those that name no field. */
  showErrors(errors) {
    const unplaced = [];
    let first = null;
    for (const error of errors ?? []) {
      const slot = this.form.querySelector(`[data-error-for="${CSS.escape(error.field)}"]`);
      // A field the architecture hides (it does not read it) has its error in the alert instead.
      if (!slot || slot.parentElement.closest("[hidden]")) { unplaced.push(error); continue; }
      slot.textContent = error.message;
      slot.hidden = false;
      for (const input of this.inputsOf(error.field)) input.setAttribute("aria-invalid", "true");
      if (this.more.contains(slot)) this.more.open = true;
      first ??= slot;
    }
    first?.scrollIntoView({ block: "nearest" }); // the panel scrolls: bring the first one into view
    return unplaced;
  }

  clearErrors(field = null) {
    const selector = field ? `[data-error-for="${CSS.escape(field)}"]` : "[data-error-for]";
    for (const slot of this.form.querySelectorAll(selector)) {
      if (slot.hidden) continue;
      slot.hidden = true;
      slot.textContent = "";
      for (const input of this.inputsOf(slot.dataset.errorFor)) input.removeAttribute("aria-invalid");
    }
  }

  // --- internals ---------------------------------------------------------------------------------

  onInput(event) {
    const target = event.target;
    if (target === this.presetSelect) return; // handled on "change"
    let field = target.name;
    if (target === this.depthRange) {
      this.depthInput.value = target.value;
      field = "depth";
    } else if (target === this.depthInput) {
      if (target.value !== "") this.depthRange.value = target.value;
    } else if (target === this.lrRange) {
      this.lrInput.value = String(this.lrSteps[Number(target.value)]);
      this.syncLrRange();
      field = "lr";
    } else if (target === this.lrInput) {
      this.syncLrRange();
    }
    if (!field || !(field in this.schema.properties)) return;
    this.touched.add(field);
    this.showNote("norm", "");
    if (field === "arch") {
      this.switchArch();
    } else {
      this.showNote("arch", "");
    }
    this.clearErrors(field);
    this.changed(field);
  }

  /** The user picked another architecture: fields follow it (arch.js, switchArch), the form
   *  shows what it reads, and what had to change is said under the buttons. */
  switchArch() {
    const to = this.chosenArch;
    const from = this.arch ?? to;
    if (to === from) return;
    const { values, notes } = switchArch(this.schema, { ...this.readConfig(), arch: from }, from, to, {
      preset: this.preset, touched: this.touched,
    });
    this.writeConfig(values);
    for (const name of Object.keys(values)) this.clearErrors(name);
    this.showNote("arch", notes.join(" "));
  }

  showArch() {
    this.arch = this.chosenArch;
    this.archForm.show(this.arch);
  }

  showNote(which, text) {
    const note = this.notes[which];
    if (!note || note.textContent === text) return;
    note.textContent = text;
    note.hidden = !text;
  }

  changed(field) {
    this.config = this.readForm();
    this.refreshEdited();
    this.writeUrlSoon();
    const config = this.readConfig();
    if (field === "lr" && config.lr !== null) this.emit("lr", config.lr);
    this.emit("change", config, field);
  }

  syncLrRange() {
    const lr = Number(this.lrInput.value);
    if (Number.isFinite(lr) && lr > 0) this.lrRange.value = String(nearestNotch(this.lrSteps, lr));
    this.lrRange.setAttribute("aria-valuetext", `learning rate ${this.lrInput.value}`);
  }

  /** Mark the preset as edited when the form no longer matches it. */
  refreshEdited() {
    const preset = this.presets.get(this.presetSelect.value);
    const base = { ...defaultsFromSchema(this.schema), ...(preset?.config ?? {}) };
    const edited = !sameConfig(base, this.readConfig());
    this.presetSelect.closest(".field").toggleAttribute("data-edited", edited);
  }

  inputsOf(field) {
    const element = this.form.elements.namedItem(field);
    if (!element) return [];
    return element instanceof RadioNodeList ? [...element] : [element];
  }

  writeUrlSoon() {
    clearTimeout(this.urlTimer);
    this.urlTimer = setTimeout(() => this.writeUrlNow(), DEFAULTS.urlWriteDelayMs);
  }

  writeUrlNow() {
    clearTimeout(this.urlTimer);
    if (!this.queryOf) return;
    const params = new URLSearchParams(this.queryOf());
    // Parameters that are not the page's state (an access token, say) stay as they were.
    for (const [name, value] of new URLSearchParams(window.location.search)) {
      if (!isStateParam(name, this.schema)) params.set(name, value);
    }
    const url = `${window.location.pathname}?${params.toString()}${window.location.hash}`;
    window.history.replaceState(null, "", url);
  }

  emit(kind, ...args) {
    for (const handler of this.listeners[kind]) handler(...args);
  }
}
