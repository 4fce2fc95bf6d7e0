// The charts' options, an editor of the page state's `chart` part (state.js): which values the
// ridge shows (pre/post), its x-axis and the gradients' (shared/per layer), and the layer the
// percentile band and the waterfall follow (-1: the last). Radios and menus edit the state; they
// and the charts are drawn from it. Kept out of the URL.

// [state key, radio group name]
const RADIOS = Object.freeze([
  ["values", "ridge-values"],
  ["x", "ridge-x"],
  ["gradX", "grad-x"],
]);

export class ChartOptions {
  /** `menus`: {band, drift} layer <select>s; `charts`: {values(v), x(v), gradX(v), band(i),
   *  drift(i)}: what each option steers. */
  constructor(root, { pageState, menus, charts }) {
    this.pageState = pageState;
    this.menus = menus;
    this.charts = charts;
    this.steered = {}; // the value each chart was last given
    this.radios = Object.fromEntries(RADIOS.map(([key, name]) => [key, [...root.querySelectorAll(`input[name="${name}"]`)]]));
    for (const [key, radios] of Object.entries(this.radios)) {
      for (const radio of radios) {
        radio.addEventListener("change", () => { if (radio.checked) this.edit({ [key]: radio.value }); });
      }
    }
    for (const [key, select] of Object.entries(menus)) {
      select.addEventListener("change", () => this.edit({ [key]: Number(select.value) }));
    }
  }

  edit(chart) {
    this.pageState.update({ chart }, { field: "chart", byUser: true });
  }

  /** A new run's layers in the band and waterfall menus; a chosen layer the run lacks becomes
   *  "the last". */
  fillLayerMenus(layers, { entryLabel, lastEntryLabel }) {
    const chart = {};
    for (const [key, select] of Object.entries(this.menus)) {
      const options = [new Option(lastEntryLabel(layers), "-1")];
      layers.forEach((name, i) => options.push(new Option(entryLabel(name, i), String(i))));
      select.replaceChildren(...options);
      const chosen = this.pageState.state.chart[key];
      chart[key] = Number.isInteger(chosen) && chosen < layers.length ? chosen : -1;
      select.value = String(chart[key]);
      this.steered[key] = chart[key];
      this.charts[key](chart[key]); // a new run's chart is told its layer again
    }
    this.pageState.update({ chart }, { field: "chart" });
  }

  /** Draw the radios, the menus and the charts' options from the state. */
  render(state, changes = null) {
    const keys = changes ? changes.chart : Object.keys(state.chart);
    for (const key of keys) {
      const value = state.chart[key];
      for (const radio of this.radios[key] ?? []) if (radio.checked !== (radio.value === value)) radio.checked = radio.value === value;
      const select = this.menus[key];
      if (select && [...select.options].some((option) => option.value === String(value))) select.value = String(value);
      if (this.steered[key] !== value) {
        this.steered[key] = value;
        this.charts[key]?.(value);
      }
    }
  }
}
