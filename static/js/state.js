// The page's state in one plain, serialisable object, and the one place it is kept:
//
//   { preset, config, compare: { on, fields }, view, chart: { values, x, gradX, band, drift } }
//
// `preset` is the preset chosen, `config` run A's every field, `compare.fields` what run B
// changes (compare mode is on when `compare.on`; the fields stay while it is off), `view` the
// stage view shown, `chart` the ridge and panel options. Every control is an editor of it: an input's change becomes `update(patch)`, and the
// form, the compare rows, the view tabs, the chart options and the address bar are then rendered
// from the new state (each editor's `render(state)`). A link restores it (toQuery / fromQuery);
// a room sends it to every student's screen (`apply`).
//
//   const pageState = new PageState({ schema, presets, defaultPreset, fieldOrder });
//   pageState.addEditor(controls);                 // controls.render(state) after every change
//   pageState.onChange((state, changes, cause) => …);
//   pageState.update({ config: { norm: "batch" } }, { field: "norm", byUser: true });

import { offeredForB, typedValue } from "./compare.js";
import { ARCHS, switchArch } from "./arch.js";

export const PARAMS = Object.freeze({
  preset: "preset",      // ?preset=id selects a preset; config fields override it
  compare: "b.",        // b.norm=batch: run B's norm
  compareOff: "compare", // compare=off: a preset's comparison switched off
  view: "view",
  initialView: "layers",
});

const DEFAULTS = Object.freeze({
  urlWriteDelayMs: 250, // browsers refuse more than ~100 replaceState calls per 30 s
  chart: Object.freeze({ values: "pre", x: "shared", gradX: "shared", band: -1, drift: -1 }),
});

/** The query string of a config (every field, in schema order) and the preset it started from. */
export function configToQuery(config, presetId, fieldOrder) {
  const params = new URLSearchParams();
  if (presetId) params.set(PARAMS.preset, presetId);
  for (const name of fieldOrder) {
    const value = config[name];
    if (value !== null && value !== undefined && value !== "") params.set(name, String(value));
  }
  return params.toString();
}

/** {presetId, overrides} from a query string. Values are typed from the schema but not checked:
 *  the server validates, and its errors are shown next to the field. */
export function configFromQuery(search, schema) {
  const params = new URLSearchParams(search);
  const overrides = {};
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (!params.has(name)) continue;
    const text = params.get(name).trim();
    const isNumeric = prop.type === "integer" || prop.type === "number";
    if (prop.type === "boolean") overrides[name] = text === "true" ? true : text === "false" ? false : text;
    else overrides[name] = isNumeric && text !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
  }
  return { presetId: params.get(PARAMS.preset), overrides };
}

/** The query string of a state: ?preset=…&<config fields>&b.<field>=…|compare=off&view=…. */
export function toQuery(state, fieldOrder, presetCompare = null) {
  const params = new URLSearchParams(configToQuery(state.config, state.preset, fieldOrder));
  if (state.compare?.on && state.compare.fields) {
    for (const [field, value] of Object.entries(state.compare.fields)) params.set(`${PARAMS.compare}${field}`, String(value));
  } else if (presetCompare && !state.compare?.on) {
    params.set(PARAMS.compareOff, "off");
  }
  if (state.view && state.view !== PARAMS.initialView) params.set(PARAMS.view, state.view);
  return params.toString();
}

/** What a query string says of the state: {preset, config (the fields it names), compare
 *  ({on, fields}, or {on: false} for compare=off, or null: the preset's), view (or null)}.
 *  Values are typed from the schema but not checked: the server validates. */
export function fromQuery(search, schema, offeredForB = () => true) {
  const params = new URLSearchParams(search);
  const { presetId, overrides } = configFromQuery(search, schema);
  const fields = {};
  for (const [name, text] of params) {
    if (!name.startsWith(PARAMS.compare)) continue;
    const field = name.slice(PARAMS.compare.length);
    const prop = schema.properties[field];
    if (prop && offeredForB(field)) fields[field] = typedValue(prop, text);
  }
  let compare = null;
  if (Object.keys(fields).length) compare = { on: true, fields };
  else if (params.get(PARAMS.compareOff) === "off") compare = { on: false, fields: null };
  return { preset: presetId, config: overrides, compare, view: params.get(PARAMS.view) };
}

/** Whether a URL parameter is part of the state (others, an access token say, are kept as they are). */
export function isStateParam(name, schema) {
  return name in schema.properties || name === PARAMS.preset || name === PARAMS.view || name === PARAMS.compareOff
    || name.startsWith(PARAMS.compare);
}

/** The schema's default for every field. */
export function defaultsFromSchema(schema) {
  return Object.fromEntries(Object.entries(schema.properties).map(([name, prop]) => [name, prop.default]));
}

/** A config value as the form can hold it: an unknown choice or an unreadable number is null (the
 *  server then refuses it by name), a switch is true or false. */
export function formValue(prop, value) {
  if (value === null || value === undefined) return null;
  if (prop.type === "boolean") return value === true || value === "true";
  if (prop.enum) return prop.enum.includes(value) ? value : null;
  if (prop.type === "integer" || prop.type === "number") {
    if (value === "") return null;
    const number = Number(value);
    return Number.isFinite(number) ? number : null;
  }
  return String(value);
}

/** Two plain JSON values are equal. */
export function sameValue(a, b) {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** The page's state and its editors: the state is changed only by `update` (or `apply`, another
 *  screen's), and every editor is then rendered from it. */
export class PageState {
  constructor({ schema, presets, defaultPreset, fieldOrder = Object.keys(schema.properties) }) {
    this.schema = schema;
    this.presets = new Map(presets.map((preset) => [preset.id, preset]));
    this.defaultPreset = defaultPreset;
    this.fieldOrder = fieldOrder; // the URL lists fields in the order the form shows them
    this.state = {
      preset: null,
      config: defaultsFromSchema(schema),
      compare: { on: false, fields: null },
      view: PARAMS.initialView,
      chart: { ...DEFAULTS.chart },
    };
    this.editors = [];   // {render(state)}: the form, the compare rows, the tabs, the chart options
    this.adjusters = []; // (next, patch) => next: what follows from a change (B's contrast follows A)
    this.listeners = [];
    this.urlTimer = null;
  }

  addEditor(editor) { this.editors.push(editor); }

  /** `adjust(next, patch)` returns the state with what follows from `patch` (run before rendering). */
  addAdjuster(adjust) { this.adjusters.push(adjust); }

  /** `handler(state, changes, cause)` after every change: `changes` says which parts moved
   *  ({preset, config: [fields], compare, view, chart: [keys]}), `cause` is the updater's. */
  onChange(handler) { this.listeners.push(handler); }

  /** The config of run A (a copy). */
  get config() { return { ...this.state.config }; }

  /** The preset shown (or undefined). */
  get preset() { return this.presets.get(this.state.preset); }

  /** What the next start sends as `compare` (null: a single run). */
  get compareFields() {
    const { on, fields } = this.state.compare;
    return on && fields && Object.keys(fields).length ? { ...fields } : null;
  }

  /** The whole state, as a plain object a JSON round trip leaves equal (a copy). */
  get() { return JSON.parse(JSON.stringify(this.state)); }

  /** Change the parts `patch` names ({preset, config: fields to set, compare, view, chart: keys to
   *  set}), then render every editor and the address bar from the new state. */
  update(patch, cause = {}) {
    const previous = this.state;
    let next = {
      preset: "preset" in patch ? patch.preset : previous.preset,
      config: patch.config ? { ...previous.config, ...this.typed(patch.config) } : previous.config,
      compare: patch.compare ? { on: Boolean(patch.compare.on), fields: patch.compare.fields ?? null } : previous.compare,
      view: patch.view ?? previous.view,
      chart: patch.chart ? { ...previous.chart, ...patch.chart } : previous.chart,
    };
    for (const adjust of this.adjusters) next = adjust(next, patch, cause);
    const changes = {
      preset: next.preset !== previous.preset,
      config: Object.keys(next.config).filter((field) => next.config[field] !== previous.config[field]),
      compare: !sameValue(next.compare, previous.compare),
      view: next.view !== previous.view,
      chart: Object.keys(next.chart).filter((key) => next.chart[key] !== previous.chart[key]),
    };
    this.state = next;
    // Another screen's state or a link is drawn whole; an edit redraws what it changed.
    const drawn = cause.source === "apply" || cause.source === "url" ? null : changes;
    for (const editor of this.editors) editor.render(next, drawn, cause);
    if (cause.writeUrl !== false) this.writeUrlSoon();
    for (const handler of this.listeners) handler(next, changes, cause);
    return changes;
  }

  /** The state a preset opens: its config over the defaults, its comparison and its view. */
  presetState(id) {
    const preset = this.presets.get(id);
    return {
      preset: id,
      config: { ...defaultsFromSchema(this.schema), ...(preset?.config ?? {}) },
      compare: preset?.compare ? { on: true, fields: { ...preset.compare } } : { on: false, fields: null },
      view: preset?.view ?? PARAMS.initialView,
    };
  }

  /** Show `state` (all of it, or the parts it has; another screen's, say): its preset, then its
   *  config over the preset's, compare mode, the view and the chart options. */
  apply(state, cause = {}) {
    const patch = {};
    if (state.preset && state.preset !== this.state.preset && this.presets.has(state.preset)) {
      Object.assign(patch, this.presetState(state.preset));
    }
    if (state.config) patch.config = { ...(patch.config ?? {}), ...state.config };
    if (state.compare) {
      patch.compare = { on: Boolean(state.compare.on), fields: state.compare.fields ?? (patch.compare ?? this.state.compare).fields };
    }
    if (state.view) patch.view = state.view;
    if (state.chart) patch.chart = state.chart;
    return this.update(patch, { source: "apply", ...cause });
  }

  /** The state's query string (what the address bar shows). */
  toQuery() {
    return toQuery(this.state, this.fieldOrder, this.preset?.compare ?? null);
  }

  /** Load the state a URL describes: no parameters, the default preset. Returns
   *  {unknownPreset}: a preset id the page does not know (the default is shown instead). */
  loadFromUrl(search) {
    const parsed = fromQuery(search, this.schema, (field) => offeredForB(this.schema, field));
    const known = parsed.preset && this.presets.has(parsed.preset);
    const patch = this.presetState(known ? parsed.preset : this.defaultPreset);
    const overrides = this.typed(parsed.config);
    const arch = patch.config.arch;
    if (overrides.arch in ARCHS && overrides.arch !== arch) {
      // A link that names another architecture: the fields it leaves out follow that architecture,
      // as the server's defaults do; the fields it names stay as they are.
      const { values } = switchArch(this.schema, patch.config, arch, overrides.arch, {
        preset: this.presets.get(patch.preset), keep: new Set(Object.keys(overrides)),
      });
      Object.assign(patch.config, values);
    }
    Object.assign(patch.config, overrides);
    if (parsed.compare) patch.compare = parsed.compare.fields ? parsed.compare : { on: false, fields: patch.compare.fields };
    if (parsed.view) patch.view = parsed.view;
    this.update(patch, { source: "url", writeUrl: false });
    this.writeUrlNow();
    return { unknownPreset: parsed.preset && !known ? parsed.preset : null };
  }

  writeUrlSoon() {
    clearTimeout(this.urlTimer);
    this.urlTimer = setTimeout(() => this.writeUrlNow(), DEFAULTS.urlWriteDelayMs);
  }

  writeUrlNow() {
    clearTimeout(this.urlTimer);
    const params = new URLSearchParams(this.toQuery());
    // Parameters that are not the page's state (an access token, a room) stay as they were.
    for (const [name, value] of new URLSearchParams(window.location.search)) {
      if (!isStateParam(name, this.schema)) params.set(name, value);
    }
    const url = `${window.location.pathname}?${params.toString()}${window.location.hash}`;
    if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) {
      window.history.replaceState(null, "", url);
    }
  }

  /** Config fields as the form holds them (unknown fields dropped). */
  typed(config) {
    const typed = {};
    for (const [field, value] of Object.entries(config)) {
      const prop = this.schema.properties[field];
      if (prop) typed[field] = formValue(prop, value);
    }
    return typed;
  }
}
