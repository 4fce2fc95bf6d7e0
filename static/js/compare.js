// Compare mode's controls: the "Compare A / B" switch and what run B changes ("B differs in"),
// turned into the `compare` object of a start (docs/protocol.md, "Compare mode"); the page state
// (state.js) keeps it in the URL as b.<field>=<value> parameters. Run A is the form; B is A with these fields changed.

import { archOf, normsFor, placementsFor } from "./arch.js";

const DEFAULTS = Object.freeze({
  firstField: "norm",   // the one-click comparison: with and without normalization
});

// Twins share these (the server refuses a compare that changes them): not offered for B.
export const LOCKSTEP_FIELDS = Object.freeze([
  "steps", "emit_every", "eval_every", "max_steps_per_s", "drift_lag", "ics_every", "landscape_every",
]);
const NOT_OFFERED = new Set([...LOCKSTEP_FIELDS, "device"]);

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

/** The compare switch and its rows; `read()` is the `compare` of the next start (null: off). */
export class CompareControls {
  /** `root`: the compare fieldset; `controls`: the settings form (run A). */
  constructor(root, { schema, controls, labels }) {
    this.root = root;
    this.schema = schema;
    this.controls = controls;
    this.labels = labels; // field -> human label
    this.toggle = root.querySelector("#compare-on");
    this.fields = root.querySelector("#compare-fields");
    this.list = root.querySelector("#compare-list");
    this.addButton = root.querySelector("#compare-add");
    this.offered = Object.keys(schema.properties).filter((name) => !NOT_OFFERED.has(name));
    this.rows = []; // [{field, value, auto, element}]
    this.listeners = [];
    this.presetCompare = null;

    this.toggle.addEventListener("change", () => this.setOn(this.toggle.checked));
    this.addButton.addEventListener("click", () => {
      const used = new Set(this.rows.map((row) => row.field));
      const field = this.offered.find((name) => !used.has(name));
      if (field) this.addRow(field);
      this.rows.at(-1)?.element.querySelector("select")?.focus();
      this.changed();
    });
    // B follows A where the user left it to the page: A's norm changes, B's contrast follows.
    controls.onChange(() => this.refreshAuto());
  }

  /** `handler(compare)` after any change of the switch or the rows. */
  onChange(handler) { this.listeners.push(handler); }

  get on() { return this.toggle.checked; }

  /** The `compare` of the next start: {field: value} for run B, or null for a single run. */
  read() {
    if (!this.on || !this.rows.length) return null;
    const config = this.controls.readConfig();
    return Object.fromEntries(this.rows.map((row) => [row.field, this.valueOf(row, config)]));
  }

  /** Switch compare mode on (with the one-click norm comparison when nothing is chosen) or off. */
  setOn(on, { emit = true } = {}) {
    this.toggle.checked = on;
    if (on && !this.rows.length) this.addRow(DEFAULTS.firstField);
    this.fields.hidden = !on;
    this.root.toggleAttribute("data-on", on);
    if (emit) this.changed();
  }

  toggleOn() {
    this.setOn(!this.on);
    return true;
  }

  /** A preset's `compare` (or null): its rows, and compare mode on exactly when it has one. */
  setFromPreset(compare, { emit = true } = {}) {
    this.presetCompare = compare ?? null;
    this.replaceRows(compare ? Object.entries(compare) : []);
    this.setOn(Boolean(compare), { emit: false });
    if (emit) this.changed();
  }

  /** Show a page state's compare part ({on, fields}; state.js): its rows when it names fields,
   *  and compare mode on or off; `fields: null` leaves the rows as they are. */
  setState({ on, fields }, { emit = true } = {}) {
    if (fields && Object.keys(fields).length) this.replaceRows(Object.entries(fields).filter(([field]) => this.offers(field)));
    this.setOn(Boolean(on), { emit: false });
    if (emit) this.changed();
  }

  /** Whether run B may differ in `field` (twins share the lockstep fields). */
  offers(field) {
    return field in this.schema.properties && !NOT_OFFERED.has(field);
  }

  // --- internals ---------------------------------------------------------------------------------

  replaceRows(entries) {
    for (const row of this.rows) row.element.remove();
    this.rows = [];
    for (const [field, value] of entries) this.addRow(field, value);
  }

  valueOf(row, config = this.controls.readConfig()) {
    const prop = this.schema.properties[row.field];
    return row.auto ? contrastValue(row.field, prop, config[row.field], this.choicesFor(row.field, config)) : row.value;
  }

  /** B's architecture: a row's, or A's. */
  archOfB(config) {
    const row = this.rows.find((candidate) => candidate.field === "arch");
    return archOf(row ? { arch: this.valueOf(row, config) } : config);
  }

  /** The values B can take for `field`: the norms and placements its architecture takes. */
  choicesFor(field, config = this.controls.readConfig()) {
    if (field === "norm") return normsFor(this.schema, this.archOfB(config));
    if (field === "norm_position") return placementsFor(this.schema, this.archOfB(config));
    return this.schema.properties[field].enum;
  }

  addRow(field, value = undefined) {
    // A value that is just A's natural contrast (batch when A has no norm) keeps following A.
    const prop = this.schema.properties[field];
    const config = this.controls.readConfig();
    const auto = value === undefined || value === contrastValue(field, prop, config[field], this.choicesFor(field, config));
    const row = { field, value: value ?? null, auto, element: document.createElement("div") };
    row.element.className = "compare-row";
    this.rows.push(row);
    this.list.append(row.element);
    this.buildRow(row);
    return row;
  }

  /** (Re)build one row's controls: which field, B's value, remove. Runs on user actions only. */
  buildRow(row) {
    const index = this.rows.indexOf(row);
    const prop = this.schema.properties[row.field];
    const id = `compare-${index}`;
    const fieldSelect = document.createElement("select");
    fieldSelect.id = `${id}-field`;
    fieldSelect.className = "compare-field";
    fieldSelect.setAttribute("aria-label", "Field that run B changes");
    const taken = new Set(this.rows.filter((other) => other !== row).map((other) => other.field));
    for (const name of this.offered) {
      if (taken.has(name)) continue;
      fieldSelect.append(new Option(this.labels[name] ?? name, name, false, name === row.field));
    }
    fieldSelect.addEventListener("change", () => {
      row.field = fieldSelect.value;
      row.auto = true;
      row.value = null;
      this.rebuildAll();
      this.changed();
    });

    let valueControl;
    if (prop.enum || prop.type === "boolean") {
      valueControl = document.createElement("select");
      const choices = prop.enum ? this.choicesFor(row.field) : [true, false];
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
      row.value = typedValue(prop, valueControl.value);
      row.auto = false;
      this.controls.clearErrors(`compare.${row.field}`);
      this.changed();
    });

    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "compare-remove";
    remove.textContent = "×";
    remove.title = "Remove this difference";
    remove.setAttribute("aria-label", `Remove: B differs in ${this.labels[row.field] ?? row.field}`);
    remove.addEventListener("click", () => {
      row.element.remove();
      this.rows.splice(this.rows.indexOf(row), 1);
      if (!this.rows.length) this.setOn(false, { emit: false });
      this.rebuildAll();
      (this.rows.length ? this.addButton : this.toggle).focus();
      this.changed();
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
    this.showValue(row);
  }

  rebuildAll() {
    this.builtArch = this.archOfB(this.controls.readConfig());
    for (const row of this.rows) this.buildRow(row);
    this.addButton.disabled = this.rows.length >= this.offered.length;
  }

  optionLabel(field, choice) {
    const option = document.querySelector(`#f-${CSS.escape(field)} option[value="${CSS.escape(String(choice))}"]`)
      ?? document.querySelector(`label[for="f-${CSS.escape(field)}-${CSS.escape(String(choice))}"]`);
    return option?.textContent.trim() || String(choice);
  }

  showValue(row, config = this.controls.readConfig()) {
    const value = this.valueOf(row, config);
    const text = value === null || value === undefined ? "" : String(value);
    if (row.valueControl.value !== text) row.valueControl.value = text;
  }

  refreshAuto() {
    const config = this.controls.readConfig();
    // Another architecture offers other norms and placements: B's menus follow.
    if (this.rows.length && this.archOfB(config) !== this.builtArch) this.rebuildAll();
    for (const row of this.rows) if (row.auto) this.showValue(row, config);
    if (this.on && this.rows.some((row) => row.auto)) this.changed({ fromForm: true });
  }

  changed({ fromForm = false } = {}) {
    for (const handler of this.listeners) handler(this.read(), { fromForm });
  }
}
