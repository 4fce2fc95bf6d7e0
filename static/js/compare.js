// Compare mode's controls: the "Compare A / B" switch and what run B changes ("B differs in"),
// an editor of the page state's `compare` ({on, fields}: the `compare` object of a start,
// docs/protocol.md, "Compare mode"; state.js keeps it in the URL as b.<field>=<value>). Run A is
// the state's config; B is A with these fields changed. A row the user left to the page follows
// A (B's norm is A's natural contrast): the page state's adjuster keeps its value current.

import { archOf, normsFor, placementsFor } from "./arch.js";

const DEFAULTS = Object.freeze({
  firstField: "norm",   // the one-click comparison: with and without normalization
});

// Twins share these (the server refuses a compare that changes them): not offered for B.
export const LOCKSTEP_FIELDS = Object.freeze([
  "steps", "emit_every", "eval_every", "max_steps_per_s", "drift_lag", "ics_every", "landscape_every",
]);
const NOT_OFFERED = new Set([...LOCKSTEP_FIELDS, "device"]);

/** Whether run B may differ in `field` (twins share the lockstep fields). */
export function offeredForB(schema, field) {
  return field in schema.properties && !NOT_OFFERED.has(field);
}

/** Run B's value of `field` when the user has not picked one: the natural contrast to A, among
 *  the `choices` B's architecture takes. */
export function contrastValue(field, prop, aValue, choices = prop.enum) {
  if (field === "norm") {
    if (aValue !== "none") return "none";
    return choices.includes("batch") ? "batch" : choices.find((choice) => choice !== "none") ?? "none";
  }
  if (prop.type === "boolean") return !aValue;
  if (choices) return choices.find((choice) => choice !== aValue) ?? aValue;
  if (field === "lr" && Number.isFinite(aValue)) return Math.min(aValue * 10, prop.maximum ?? Infinity);
  return aValue;
}

/** A value from a control or a URL, typed as the schema says ("true" → true, "3" → 3). */
export function typedValue(prop, text) {
  if (prop.type === "boolean") return text === true || text === "true" || text === "on";
  if (prop.type === "integer" || prop.type === "number") {
    const value = Number(text);
    return text === "" || !Number.isFinite(value) ? null : value;
  }
  return text;
}

/** The compare switch and its rows, drawn from the page state's `compare`. */
export class CompareControls {
  /** `root`: the compare fieldset; `pageState`: the state it edits; `clearErrors(field)`: the
   *  form's (a row's error sits next to it). */
  constructor(root, { schema, pageState, labels, clearErrors = () => {} }) {
    this.root = root;
    this.schema = schema;
    this.pageState = pageState;
    this.labels = labels; // field -> human label
    this.clearErrors = clearErrors;
    this.toggle = root.querySelector("#compare-on");
    this.fields = root.querySelector("#compare-fields");
    this.list = root.querySelector("#compare-list");
    this.addButton = root.querySelector("#compare-add");
    this.offered = Object.keys(schema.properties).filter((name) => !NOT_OFFERED.has(name));
    this.rows = [];          // [{field, element, valueControl}], in the state's order
    this.auto = new Set();   // fields whose B value follows A (the user has not picked one)
    this.builtArch = null;   // B's architecture the rows' menus were built for

    this.toggle.addEventListener("change", () => this.setOn(this.toggle.checked));
    this.addButton.addEventListener("click", () => {
      const fields = this.current;
      const field = this.offered.find((name) => !(name in fields));
      if (!field) return;
      this.auto.add(field);
      this.edit({ on: true, fields: { ...fields, [field]: this.contrast(field, { ...fields }) } });
      this.rows.at(-1)?.element.querySelector("select")?.focus();
    });
    // B follows A where the user left it to the page: A's norm changes, B's contrast follows.
    pageState.addAdjuster((next, patch) => (patch.config && !patch.compare ? this.follow(next) : next));
  }

  get on() { return this.pageState.state.compare.on; }

  /** What B changes now ({} for none). */
  get current() { return { ...(this.pageState.state.compare.fields ?? {}) }; }

  /** Switch compare mode on (with the one-click norm comparison when nothing is chosen) or off. */
  setOn(on) {
    let fields = this.current;
    if (on && !Object.keys(fields).length) {
      this.auto.add(DEFAULTS.firstField);
      fields = { [DEFAULTS.firstField]: this.contrast(DEFAULTS.firstField, fields) };
    }
    this.edit({ on, fields: Object.keys(fields).length ? fields : null });
  }

  toggleOn() {
    this.setOn(!this.on);
    return true;
  }

  /** Draw the switch and the rows from the state: rows are rebuilt when the fields named (or B's
   *  architecture) change, and a row's value is rewritten when it differs from the state's. */
  render(state, changes = null) {
    if (changes && !changes.compare && !changes.config.length) return;
    const { on } = state.compare;
    const fields = state.compare.fields ?? {};
    if (this.toggle.checked !== on) this.toggle.checked = on;
    if (this.fields.hidden === on) this.fields.hidden = !on;
    this.root.toggleAttribute("data-on", on);
    // A field the state names anew follows A when its value is A's contrast (a preset's "B has
    // batch norm" keeps following A's norm); a value that is not A's contrast was picked.
    const known = new Set(this.rows.map((row) => row.field));
    for (const field of Object.keys(fields)) {
      const contrast = this.contrast(field, fields, state.config);
      if (!known.has(field) && fields[field] === contrast) this.auto.add(field);
      else if (fields[field] !== contrast) this.auto.delete(field);
    }
    for (const field of [...this.auto]) if (!(field in fields)) this.auto.delete(field);
    const names = Object.keys(fields);
    const arch = this.archOfB(fields, state.config);
    if (names.join() !== this.rows.map((row) => row.field).join() || arch !== this.builtArch) {
      for (const row of this.rows) row.element.remove();
      this.rows = names.map((field) => ({ field, element: document.createElement("div") }));
      this.builtArch = arch;
      for (const row of this.rows) {
        row.element.className = "compare-row";
        this.list.append(row.element);
        this.buildRow(row, fields, state.config);
      }
      this.addButton.disabled = this.rows.length >= this.offered.length;
    }
    for (const row of this.rows) {
      const value = fields[row.field];
      const text = value === null || value === undefined ? "" : String(value);
      if (row.valueControl !== document.activeElement && row.valueControl.value !== text) row.valueControl.value = text;
    }
  }

  // --- internals ---------------------------------------------------------------------------------

  edit(compare) {
    this.pageState.update({ compare }, { field: "compare", byUser: true });
  }

  /** `next` with B's followed fields at A's contrast (the page state's adjuster). */
  follow(next) {
    const fields = next.compare.fields;
    if (!fields || !this.auto.size) return next;
    const followed = { ...fields };
    for (const field of this.auto) if (field in followed) followed[field] = this.contrast(field, followed, next.config);
    return sameFields(followed, fields) ? next : { ...next, compare: { ...next.compare, fields: followed } };
  }

  /** B's natural contrast to A in `field`, among the values B's architecture takes. */
  contrast(field, fields, config = this.pageState.state.config) {
    const prop = this.schema.properties[field];
    return contrastValue(field, prop, config[field], this.choicesFor(field, fields, config));
  }

  /** B's architecture: its row's, or A's. */
  archOfB(fields, config) {
    return archOf("arch" in fields ? { arch: fields.arch } : config);
  }

  /** The values B can take for `field`: the norms and placements its architecture takes. */
  choicesFor(field, fields, config) {
    if (field === "norm") return normsFor(this.schema, this.archOfB(fields, config));
    if (field === "norm_position") return placementsFor(this.schema, this.archOfB(fields, config));
    return this.schema.properties[field].enum;
  }

  /** (Re)build one row's controls: which field, B's value, remove. */
  buildRow(row, fields, config) {
    const index = this.rows.indexOf(row);
    const prop = this.schema.properties[row.field];
    const id = `compare-${index}`;
    const fieldSelect = document.createElement("select");
    fieldSelect.id = `${id}-field`;
    fieldSelect.className = "compare-field";
    fieldSelect.setAttribute("aria-label", "Field that run B changes");
    for (const name of this.offered) {
      if (name !== row.field && name in fields) continue;
      fieldSelect.append(new Option(this.labels[name] ?? name, name, false, name === row.field));
    }
    fieldSelect.addEventListener("change", () => {
      // The row now changes another field, in the same place, following A.
      const current = this.current;
      const next = Object.fromEntries(Object.entries(current).map(([field, value]) => (
        field === row.field ? [fieldSelect.value, null] : [field, value])));
      this.auto.delete(row.field);
      this.auto.add(fieldSelect.value);
      next[fieldSelect.value] = this.contrast(fieldSelect.value, next);
      this.edit({ on: true, fields: next });
    });

    let valueControl;
    if (prop.enum || prop.type === "boolean") {
      valueControl = document.createElement("select");
      const choices = prop.enum ? this.choicesFor(row.field, fields, config) : [true, false];
      for (const choice of choices) {
        const label = prop.type === "boolean" ? (choice ? "on" : "off") : (this.optionLabel(row.field, choice));
        valueControl.append(new Option(label, String(choice)));
      }
    } else {
      valueControl = document.createElement("input");
      valueControl.type = "number";
      valueControl.inputMode = prop.type === "integer" ? "numeric" : "decimal";
      valueControl.step = prop.type === "integer" ? "1" : "any";
      if (prop.minimum !== undefined) valueControl.min = String(prop.minimum);
      if (prop.maximum !== undefined) valueControl.max = String(prop.maximum);
    }
    valueControl.id = `${id}-value`;
    valueControl.className = "compare-value";
    // Named like the server's error fields: Controls.showErrors puts "compare.norm" errors here.
    valueControl.name = `compare.${row.field}`;
    valueControl.setAttribute("aria-label", `Run B's ${this.labels[row.field] ?? row.field}`);
    valueControl.setAttribute("aria-describedby", `err-compare-${index}`);
    valueControl.addEventListener(valueControl.tagName === "SELECT" ? "change" : "input", () => {
      this.auto.delete(row.field);
      this.clearErrors(`compare.${row.field}`);
      this.edit({ on: this.on, fields: { ...this.current, [row.field]: typedValue(prop, valueControl.value) } });
    });

    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "compare-remove";
    remove.textContent = "×";
    remove.title = "Remove this difference";
    remove.setAttribute("aria-label", `Remove: B differs in ${this.labels[row.field] ?? row.field}`);
    remove.addEventListener("click", () => {
      const next = this.current;
      delete next[row.field];
      this.auto.delete(row.field);
      const left = Object.keys(next).length;
      this.edit(left ? { on: this.on, fields: next } : { on: false, fields: null });
      (left ? this.addButton : this.toggle).focus();
    });

    const error = document.createElement("p");
    error.className = "field-error";
    error.id = `err-compare-${index}`;
    error.dataset.errorFor = `compare.${row.field}`;
    error.hidden = true;

    const is = document.createElement("span");
    is.className = "compare-is";
    is.textContent = "=";
    is.setAttribute("aria-hidden", "true");
    row.element.replaceChildren(fieldSelect, is, valueControl, remove, error);
    row.valueControl = valueControl;
  }

  optionLabel(field, choice) {
    const option = document.querySelector(`#f-${CSS.escape(field)} option[value="${CSS.escape(String(choice))}"]`)
      ?? document.querySelector(`label[for="f-${CSS.escape(field)}-${CSS.escape(String(choice))}"]`);
    return option?.textContent.trim() || String(choice);
  }
}

function sameFields(a, b) {
  return Object.keys({ ...a, ...b }).every((field) => a[field] === b[field]);
}
