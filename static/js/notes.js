// What the page says about the run beside the charts: the twins' titles ("A: norm none") and
// each panel's note (its instrument is off, or the run shown lacks what it needs). Notes change
// on user actions and new runs only, never per frame.

import { NEEDS } from "./views.js";
import { differences, isCompare, runView } from "./charts/runs.js";

const byId = (id) => document.getElementById(id);
const FIELD_WORDS = { norm: "norm", lr: "lr", noisy_norm: "noisy norm", batch_size: "batch" };

/** "norm batch, groups 8": what one twin has where the two differ. */
export function describe(diffs, which) {
  if (!diffs.length) return "same settings";
  return diffs.map(([field, a, b]) => {
    const value = which === "A" ? a : b;
    const word = FIELD_WORDS[field] ?? field.replaceAll("_", " ");
    return `${word} ${value === true ? "on" : value === false ? "off" : value}`;
  }).join(", ");
}

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** A panel's note, with a button when there is something to do about it. */
export function setNote(element, text, action = null) {
  const key = `${text}|${action?.label ?? ""}`;
  if (element.dataset.key !== key) {
    element.dataset.key = key;
    element.replaceChildren(text);
    if (action) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn-link";
      button.textContent = action.label;
      button.addEventListener("click", action.run);
      element.append(" ", button);
    }
  }
  element.hidden = !text;
}

export class RunNotes {
  /** `pairs`: the twin ridge pairs whose titles name what differs; `player` knows a twin that
   *  ended alone; `pageState` the form's config; `controls` switches an instrument on. */
  constructor({ pairs, player, pageState, controls }) {
    this.pairs = pairs;
    this.player = player;
    this.pageState = pageState;
    this.controls = controls;
  }

  /** The twins' titles ("A: norm none" / "B: norm batch"), with a twin that ended alone. */
  titles(run) {
    if (!isCompare(run)) return;
    const diffs = differences(run);
    for (const pair of this.pairs) {
      for (const name of ["A", "B"]) pair.setTitle(name, `${name}: ${describe(diffs, name)}`, this.player.twinEnds[name]);
    }
  }

  /** Each panel's note: its instrument is off in `run`, or needs something the run lacks. */
  notes(run) {
    const form = this.pageState.config;
    const configs = run ? [runView(run, "A").config, ...(isCompare(run) ? [runView(run, "B").config] : [])] : [];
    for (const [name, need] of Object.entries(NEEDS)) {
      const note = byId(`note-${name}`);
      if (!need.has(form)) {
        setNote(note, `${capitalize(need.what)} are off.`, {
          label: "Switch on", run: () => this.controls.setFields(need.enable(this.pageState.config)),
        });
      } else if (configs.length && !need.has(configs[0])) {
        setNote(note, `The run shown has no ${need.what}. They are on for the next run: press ▶ Play.`);
      } else {
        setNote(note, "");
      }
    }
    const batchNorm = configs.some((config) => config.norm === "batch");
    const noBatchNorm = configs.length && configs.every((config) => config.arch === "transformer"); // token-level norms only
    setNote(byId("note-eval"), configs.length && !batchNorm
      ? (noBatchNorm ? "Batch statistics and running averages need batch norm, which the transformer does not take."
        : "Batch statistics and running averages need batch norm in A or B: press 2 (batch norm), or compare (C).")
      : "");
    for (const element of document.querySelectorAll("[data-config]")) {
      const value = (configs[0] ?? form)[element.dataset.config];
      const text = value === null || value === undefined ? "–" : String(value);
      if (element.textContent !== text) element.textContent = text;
    }
  }
}
