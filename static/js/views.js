// The stage's views: the layers (ridge plots) and the instrument panels, one shown at a time.
// A hidden panel's charts keep recording frames but draw nothing; opening a panel switches on
// the config flags its instrument needs, for the next start. The view is the page state's
// (state.js: in the URL as ?view=); the tabs edit it and the panels are drawn from it.

const DEFAULTS = Object.freeze({ initial: "layers" });

/** What each instrument needs in the config; `enable` gives the fields to set when it is off. */
export const NEEDS = Object.freeze({
  drift: {
    has: (config) => config.drift_lag > 0,
    enable: () => ({ drift_lag: 10 }),
    what: "drift measurements (against 10 frames ago)",
  },
  gradients: {
    has: (config) => config.probe_gradients === true,
    enable: () => ({ probe_gradients: true }),
    what: "gradient probes",
  },
  ics: {
    has: (config) => config.ics_every > 0,
    enable: () => ({ ics_every: 10 }),
    what: "ICS measurements (every 10 steps)",
  },
  landscape: {
    has: (config) => config.landscape_every > 0,
    enable: () => ({ landscape_every: 20 }),
    what: "landscape probes (every 20 steps)",
  },
});

/** The view a preset tells its story in: the server names it (`preset.view`). */
export function viewForPreset(preset) {
  return preset?.view ?? DEFAULTS.initial;
}

export class Views {
  /** `radios`: the view radio buttons; `panels`: {name: {element, charts}}; `pageState`: the
   *  state whose `view` they edit. */
  constructor(radios, panels, pageState) {
    this.radios = [...radios];
    this.panels = panels;
    this.shown = null;
    pageState.addAdjuster((next) => (next.view in panels ? next : { ...next, view: DEFAULTS.initial }));
    for (const radio of this.radios) {
      radio.addEventListener("change", () => {
        if (radio.checked) pageState.update({ view: this.known(radio.value) }, { field: "view", byUser: true });
      });
    }
  }

  /** `name` when it is a view, else the first one. */
  known(name) {
    return name in this.panels ? name : DEFAULTS.initial;
  }

  /** Show the state's view: its tab checked, its panel and charts shown, the others hidden. */
  render(state) {
    const name = this.known(state.view);
    for (const radio of this.radios) if (radio.checked !== (radio.value === name)) radio.checked = radio.value === name;
    if (name === this.shown) return;
    this.shown = name;
    for (const [key, panel] of Object.entries(this.panels)) {
      const shown = key === name;
      if (panel.element.hidden === shown) panel.element.hidden = !shown;
      for (const chart of panel.charts) {
        chart.hidden = !shown;
        if (shown) chart.dirty = true; // drawn at its new size, with what it recorded meanwhile
      }
    }
  }

  /** Every chart of every panel (the render loop and the resize observer take them all). */
  get charts() {
    return Object.values(this.panels).flatMap((panel) => panel.charts);
  }
}
