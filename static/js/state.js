// The page's state in one plain, serialisable object:
//
//   { preset, config, compare: { on, fields } , view, chart: { values, x, gradX, band, drift } }
//
// `preset` is the preset chosen, `config` run A's every field, `compare.fields` what run B
// changes (compare mode is on when `compare.on`), `view` the stage view shown, `chart` the ridge
// and panel options. The URL is written from it and read back into it (toQuery / fromQuery); a
// link restores it, and the classroom will send it to every student's screen (PageState.apply).
// The form, the compare rows, the view radios and the chart options are its editors.

import { typedValue } from "./compare.js";

export const PARAMS = Object.freeze({
  preset: "preset",      // ?preset=id selects a preset; config fields override it
  compare: "b.",        // b.norm=batch: run B's norm
  compareOff: "compare", // compare=off: a preset's comparison switched off
  view: "view",
  initialView: "layers",
});

// Chart options: [state key, radio group name]. Kept out of the URL.
const CHART_OPTIONS = Object.freeze([
  ["values", "ridge-values"],
  ["x", "ridge-x"],
  ["gradX", "grad-x"],
]);

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

/** The page's state, gathered from its editors and applied to them. */
export class PageState {
  constructor({ schema, controls, compare, views, charts }) {
    this.schema = schema;
    this.controls = controls;
    this.compare = compare;
    this.views = views;
    this.charts = charts; // {bandLayer, driftLayer}: the layer menus of the band and the waterfall
  }

  /** The config of run A (a copy). */
  get config() { return this.controls.readConfig(); }

  /** What the next start sends as `compare` (null: a single run). */
  get compareFields() { return this.compare.read(); }

  /** The whole state, as a plain object a JSON round trip leaves equal. */
  get() {
    const chart = {};
    for (const [key, name] of CHART_OPTIONS) chart[key] = checkedValue(name);
    chart.band = Number(this.charts.bandLayer.value);
    chart.drift = Number(this.charts.driftLayer.value);
    return {
      preset: this.controls.presetId,
      config: this.config,
      compare: { on: this.compare.on, fields: this.compare.on ? this.compare.read() : null },
      view: this.views.current,
      chart,
    };
  }

  /** Show `state` (all of it, or the parts it has): its preset, then its config over the
   *  preset's, compare mode, the view and the chart options. */
  apply(state) {
    if (state.preset && state.preset !== this.controls.presetId) this.controls.selectPreset(state.preset, { writeUrl: false });
    if (state.config) this.controls.setConfig(state.config);
    if (state.compare) this.compare.setState(state.compare);
    if (state.view) this.views.show(state.view);
    for (const [key, name] of CHART_OPTIONS) {
      const value = state.chart?.[key];
      const radio = value && document.querySelector(`input[name="${name}"][value="${CSS.escape(String(value))}"]`);
      if (radio && !radio.checked) {
        radio.checked = true;
        radio.dispatchEvent(new Event("change", { bubbles: true }));
      }
    }
    for (const [key, select] of [["band", this.charts.bandLayer], ["drift", this.charts.driftLayer]]) {
      const value = state.chart?.[key];
      if (Number.isInteger(value) && String(value) !== select.value && [...select.options].some((o) => o.value === String(value))) {
        select.value = String(value);
        select.dispatchEvent(new Event("change", { bubbles: true }));
      }
    }
    this.controls.writeUrlSoon();
  }

  /** The state's query string (what the address bar shows). */
  toQuery() {
    return toQuery(this.get(), this.controls.fieldOrder, this.compare.presetCompare);
  }

  /** Load the state a URL describes: no parameters, the default preset. Returns
   *  {unknownPreset}: a preset id the page does not know (the default is shown instead). */
  loadFromUrl(search) {
    const parsed = fromQuery(search, this.schema, (field) => this.compare.offers(field));
    const result = this.controls.loadFrom(parsed.preset, parsed.config);
    if (parsed.compare) this.compare.setState(parsed.compare, { emit: false });
    if (parsed.view || this.views.current === null) this.views.show(parsed.view ?? PARAMS.initialView);
    this.controls.writeUrlNow();
    return result;
  }
}

function checkedValue(name) {
  return document.querySelector(`input[name="${name}"]:checked`)?.value ?? null;
}
