// The settings form: an editor of the page state's preset and config (state.js). An input's
// change becomes a state update; the form (and the test-set mirrors in the eval panel) is then
// rendered from the state. Presets, field errors and the notes an edit leaves are its own. Bounds,
// choices and defaults come from the RunConfig JSON schema the server renders into the page
// (templates/index.html); nothing here repeats a limit. What depends on the architecture (fields
// shown, norms offered, defaults on a switch) is arch.js's.

import { ARCHS, ArchForm, NORM_WORDS, archOf, normsFor, switchArch } from "./arch.js";
import { defaultsFromSchema } from "./state.js";

const DEFAULTS = Object.freeze({
  lrMantissas: [1, 1.5, 2, 3, 5, 7], // notches per decade of the log learning-rate slider
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

/** Same config, field by field; `ignore` lists fields left out of the comparison. */
export function sameConfig(a, b, ignore = []) {
  return Object.keys({ ...a, ...b }).every((name) => ignore.includes(name) || a[name] === b[name]);
}

/** The value an input shows, typed as its field (the one DOM read of the config: the edited input's). */
function inputValue(element, prop) {
  if (prop.type === "boolean") return Boolean(element.checked);
  const text = element.value; // a RadioNodeList's value is the checked radio's, or ""
  if (prop.type === "integer" || prop.type === "number") return text === "" || !Number.isFinite(Number(text)) ? null : Number(text);
  return text === "" ? null : text;
}

/** The settings form and its presets: edits go to the page state, the form is drawn from it. */
export class Controls {
  /** `form`: the settings form; `pageState`: the state it edits (state.js); `story`: the
   *  preset's texts {summary, look, question, claim?, paper?, claimBox?}; `mirrors`: inputs
   *  elsewhere on the page that edit one config field each (data-mirror-for). */
  constructor(form, { schema, pageState, story, mirrors = [] }) {
    this.form = form;
    this.schema = schema;
    this.pageState = pageState;
    this.story = story;
    this.mirrors = [...mirrors];
    this.presetSelect = form.elements.namedItem("preset");
    this.more = form.querySelector("details.more");
    this.depthRange = form.querySelector("#f-depth-range");
    this.lrRange = form.querySelector("#f-lr-range");
    this.lrInput = form.elements.namedItem("lr");
    this.lrSteps = lrNotches(Number(this.lrRange.dataset.min), Number(this.lrRange.dataset.max));
    this.lrRange.max = String(this.lrSteps.length - 1);
    this.archForm = new ArchForm(form, schema);
    this.arch = null;           // the architecture the form shows
    this.storyOf = undefined;   // the preset whose story shows
    this.touched = new Set();   // fields the user set in this session: an arch switch keeps them
    this.notes = { arch: form.querySelector("#arch-note"), norm: form.querySelector("#norm-note") };

    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("input", (event) => this.onInput(event));
    form.addEventListener("change", (event) => {
      if (event.target === this.presetSelect) this.selectPreset(this.presetSelect.value);
    });
    for (const input of this.mirrors) {
      input.addEventListener("input", () => {
        const value = input.value.trim() === "" || !Number.isFinite(Number(input.value)) ? input.value : Number(input.value);
        this.setFields({ [input.dataset.mirrorFor]: value });
      });
      input.addEventListener("blur", () => this.renderMirrors(this.pageState.state.config, { force: true }));
    }
  }

  /** The URL lists fields in the order the form shows them: the main four first. */
  static fieldOrder(form, schema) {
    return [...new Set([...form.elements].map((el) => el.name).filter((n) => n in schema.properties))];
  }

  /** The chosen preset (or undefined), and its id. */
  get preset() { return this.pageState.preset; }

  get presetId() { return this.pageState.state.preset; }

  /** Set config fields as if the user had: the state, then the form, the URL and every listener. */
  setFields(values, field = Object.keys(values).join(",")) {
    for (const name of Object.keys(values)) {
      this.touched.add(name);
      this.clearErrors(name);
    }
    this.pageState.update({ config: values }, { field, byUser: true });
  }

  /** Show preset `id`: a whole config, nothing in it set by hand. */
  selectPreset(id) {
    if (!this.pageState.presets.has(id)) return;
    this.touched.clear();
    this.showNote("arch", "");
    this.showNote("norm", "");
    this.clearErrors();
    this.pageState.update(this.pageState.presetState(id), { field: "preset", byUser: true });
  }

  /** Move the learning rate one notch up (+1) or down (−1) the log scale. */
  nudgeLearningRate(direction) {
    const current = this.pageState.state.config.lr;
    const lr = stepNotch(this.lrSteps, current > 0 ? current : Number(this.schema.properties.lr.default), direction);
    this.setFields({ lr }, "lr");
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
    this.showNote("norm", "");
    this.setFields({ norm: choices[index] }, "norm");
    return true;
  }

  focusPreset() { this.presetSelect.focus(); }

  /** Draw the form from the state: the preset and its story, every field, the sliders beside
   *  their boxes, what the architecture shows, the "edited" mark and the mirrors. An input already
   *  showing its value is left alone (the user may be typing "0.0" on the way to "0.05"). */
  render(state, changes = null) {
    if (changes && !changes.preset && !changes.config.length) return;
    const value = state.preset ?? "";
    if (this.presetSelect.value !== value) this.presetSelect.value = value;
    if (this.storyOf !== state.preset) this.showStory(this.pageState.preset);
    const { config } = state;
    for (const [name, prop] of Object.entries(this.schema.properties)) {
      const element = this.form.elements.namedItem(name);
      if (!element || inputValue(element, prop) === config[name]) continue;
      const text = config[name] === null || config[name] === undefined ? "" : String(config[name]);
      if (element instanceof RadioNodeList) {
        for (const radio of element) radio.checked = radio.value === text;
      } else if (element.type === "checkbox") {
        element.checked = config[name] === true;
      } else {
        element.value = text;
      }
    }
    if (config.depth !== null && this.depthRange.value !== String(config.depth)) this.depthRange.value = String(config.depth);
    this.syncLrRange(config.lr);
    const arch = archOf(config);
    if (arch !== this.arch) {
      if (this.arch !== null) this.showNote("arch", "");
      this.arch = arch;
      this.archForm.show(arch);
    }
    const base = this.pageState.presetState(state.preset).config;
    this.presetSelect.closest(".field").toggleAttribute("data-edited", !sameConfig(base, config));
    this.renderMirrors(config);
  }

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

  /** The user changed an input: its field's new value goes to the state (the form is then drawn
   *  from the state). The only place the form's inputs are read. */
  onInput(event) {
    const target = event.target;
    if (target === this.presetSelect) return; // handled on "change"
    let field = target.name;
    let value;
    if (target === this.depthRange) {
      field = "depth";
      value = Number(target.value);
    } else if (target === this.lrRange) {
      field = "lr";
      value = this.lrSteps[Number(target.value)];
    } else if (field in this.schema.properties) {
      value = inputValue(this.form.elements.namedItem(field), this.schema.properties[field]);
    } else {
      return;
    }
    this.touched.add(field);
    this.showNote("norm", "");
    if (field !== "arch") this.showNote("arch", "");
    this.clearErrors(field);
    if (field === "arch") return this.switchArch(archOf({ arch: value }));
    this.pageState.update({ config: { [field]: value } }, { field, byUser: true });
  }

  /** The user picked another architecture: fields follow it (arch.js, switchArch), and what had
   *  to change is said under the buttons. */
  switchArch(to) {
    const config = this.pageState.state.config;
    const from = this.arch ?? to;
    if (to === from) return;
    const { values, notes } = switchArch(this.schema, { ...config, arch: from }, from, to, {
      preset: this.preset, touched: this.touched,
    });
    for (const name of Object.keys(values)) this.clearErrors(name);
    this.pageState.update({ config: { ...values, arch: to } }, { field: "arch", byUser: true });
    this.showNote("arch", notes.join(" "));
  }

  showStory(preset) {
    this.storyOf = preset?.id;
    this.story.summary.textContent = preset?.summary ?? "";
    this.story.look.textContent = preset?.look_for ?? "";
    this.story.question.textContent = preset?.question ?? "";
    if (this.story.claim) {
      // An instrument preset tests a paper's claim: say which paper and what it claims.
      this.story.claim.textContent = preset?.claim ?? "";
      this.story.paper.textContent = preset?.paper ?? "";
      // A story preset may quote figures (its checks) without a paper's claim.
      this.story.claim.parentElement.hidden = !preset?.claim && !preset?.paper;
      this.story.claimBox.hidden = !preset?.claim && !preset?.paper && !preset?.checks?.length;
    }
  }

  /** The test-set fields mirrored into the eval panel; never rewrites the one being typed in. */
  renderMirrors(config, { force = false } = {}) {
    for (const input of this.mirrors) {
      if (!force && input === document.activeElement) continue;
      const value = config[input.dataset.mirrorFor];
      const text = value === null || value === undefined ? "" : String(value);
      if (input.value !== text) input.value = text;
    }
  }

  showNote(which, text) {
    const note = this.notes[which];
    if (!note || note.textContent === text) return;
    note.textContent = text;
    note.hidden = !text;
  }

  syncLrRange(lr) {
    if (Number.isFinite(lr) && lr > 0) {
      const notch = String(nearestNotch(this.lrSteps, lr));
      if (this.lrRange.value !== notch) this.lrRange.value = notch;
    }
    this.lrRange.setAttribute("aria-valuetext", `learning rate ${lr ?? ""}`);
  }

  inputsOf(field) {
    const element = this.form.elements.namedItem(field);
    if (!element) return [];
    return element instanceof RadioNodeList ? [...element] : [element];
  }
}
