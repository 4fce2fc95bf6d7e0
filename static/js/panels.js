// The stage's panels and their charts: the layers' ridge plots and one panel per instrument, the
// side column's charts and the class experiment's. The chart ids live here, in CHARTS: the
// template lays out a `data-chart` placeholder where each chart goes, and `placeCharts` gives a
// region's placeholders, in order, their chart's id and accessible name. (The ridge pairs' ids are
// the template's ridge_cell macro's; nothing here names them.) A panel's charts record every
// frame and draw only while the panel is shown (views.js).

import { RidgeChart } from "./charts/ridge.js";
import { RidgePair } from "./charts/ridgepair.js";
import { LinesChart } from "./charts/lines.js";
import { LayerBarsChart } from "./charts/layerbars.js";
import { DriftChart, WaterfallChart } from "./charts/drift.js";
import { SweepChart } from "./charts/sweep.js";
import { PALETTE, RUN_RAMPS } from "./charts/theme.js";

const byId = (id) => document.getElementById(id);

/** Every chart's name (its element is `chart-<name>`) and what it shows, for screen readers. */
export const CHARTS = Object.freeze({
  class: "Each student's current loss and test accuracy against the value they train",
  drift: "Heat map: drift of every layer over training steps, layer 1 at the top",
  waterfall: "Heat map: the selected layer's pre-activation histogram over training steps",
  "grad-norm": "Weight-gradient norm of every layer over steps, log scale",
  "update-ratio": "Update to weight ratio of every layer over steps, log scale, with a dashed line at one in a thousand",
  "ics-dist": "Distance between each layer's gradient before and after the layers below it step, over steps, log scale",
  "ics-cos": "Cosine between each layer's gradient before and after the layers below it step, over steps",
  "loss-range": "Range of the loss along the gradient over steps, log scale",
  "grad-change": "Largest change of the gradient along the gradient over steps, log scale",
  beta: "Effective beta smoothness over steps, log scale",
  "eval-acc": "Test accuracy in eval mode and with batch statistics over steps",
  "bn-gap": "Gap between batch norm's running mean and the batch mean, per layer",
  "bn-var": "Ratio of batch norm's running variance to the batch variance, per layer, log scale",
  sweep: "Final training loss and accuracy over the learning rate, log scales",
  band: "15th, 50th and 85th percentile of the selected layer's pre-activation over training steps",
  loss: "Training loss on a log scale, train and test accuracy over steps",
  health: "Fraction of saturated and dead units in each layer",
});

/** The chart elements of `region`, by name: its `data-chart` placeholders, in document order, get
 *  the charts `names` lists (a count that differs from the template's fails loudly). */
export function placeCharts(region, names) {
  const slots = [...region.querySelectorAll("[data-chart]")];
  if (slots.length !== names.length) {
    throw new Error(`${region.id || region.className} has ${slots.length} chart places for ${names.length} charts (${names.join(", ")})`);
  }
  return Object.fromEntries(names.map((name, i) => {
    const element = slots[i];
    element.id = `chart-${name}`;
    element.setAttribute("role", "img");
    element.setAttribute("aria-label", CHARTS[name]);
    return [name, element];
  }));
}

/** Twin ridge plots of one kind of histogram (`values`) in the pair `pairId`: each run's chart,
 *  range labels and axis title are found in its cell (the template's ridge_cell macro names them;
 *  nothing here rebuilds its ids). */
export function ridgePair(pairId, values, options = {}) {
  const pair = byId(pairId);
  const charts = {};
  const cells = {};
  for (const run of ["A", "B"]) {
    const cell = pair.querySelector(`.ridge-cell[data-run="${run}"]`);
    cells[run] = cell;
    charts[run] = new RidgeChart(cell.querySelector(".chart-ridge"), {
      labels: cell.querySelector(".ridge-labels"),
      axisTitle: cell.querySelector(".ridge-axis-title"),
      ramp: RUN_RAMPS[run],
      values,
      ...options,
    });
  }
  return new RidgePair(charts, cells, pair);
}

const layerLines = (element, layerValue, options = {}) => new LinesChart(element, { layerValue, ...options });

const landscapeLine = (element, key) => new LinesChart(element, {
  x: (frame) => frame.landscape_step ?? null,
  metrics: [{ key, value: (frame) => frame.landscape?.[key] }],
  yType: "log",
  emptyNote: "needs landscape probes",
});

/** Every panel {name: {element, charts}}, and the charts main.js steers by hand. */
export function buildPanels() {
  const ridge = ridgePair("ridge-pair", "pre");
  const gradients = ridgePair("grad-pair", "grad", {
    // Step 0 is the untrained network: no backward pass yet, so no gradient either.
    offNote: (config) => (config?.probe_gradients ? "appears after the first step" : "needs gradient probes"),
  });
  const at = {
    ...placeCharts(byId("panel-drift"), ["drift", "waterfall"]),
    ...placeCharts(byId("panel-gradients"), ["grad-norm", "update-ratio"]),
    ...placeCharts(byId("panel-ics"), ["ics-dist", "ics-cos"]),
    ...placeCharts(byId("panel-landscape"), ["loss-range", "grad-change", "beta"]),
    ...placeCharts(byId("panel-eval"), ["eval-acc", "bn-gap", "bn-var"]),
    ...placeCharts(byId("panel-sweep"), ["sweep"]),
  };
  const drift = new DriftChart(at.drift);
  const waterfall = new WaterfallChart(at.waterfall);
  const sweepChart = new SweepChart(at.sweep);
  const panels = {
    layers: { element: byId("panel-layers"), charts: [ridge] },
    drift: { element: byId("panel-drift"), charts: [drift, waterfall] },
    gradients: {
      element: byId("panel-gradients"),
      charts: [
        gradients,
        layerLines(at["grad-norm"], (layer) => layer.grad_norm, { yType: "log", emptyNote: "needs gradient probes" }),
        layerLines(at["update-ratio"], (layer) => layer.update_ratio, {
          yType: "log", references: [{ y: 1e-3, label: "10⁻³" }], emptyNote: "needs gradient probes",
        }),
      ],
    },
    ics: {
      element: byId("panel-ics"),
      charts: [
        layerLines(at["ics-dist"], (_, frame, i) => frame.ics?.[i]?.dist, {
          x: (frame) => frame.ics_step ?? null, yType: "log", emptyNote: "needs ICS measurements",
        }),
        layerLines(at["ics-cos"], (_, frame, i) => frame.ics?.[i]?.cos, {
          x: (frame) => frame.ics_step ?? null, emptyNote: "needs ICS measurements",
        }),
      ],
    },
    landscape: {
      element: byId("panel-landscape"),
      charts: [landscapeLine(at["loss-range"], "loss_range"), landscapeLine(at["grad-change"], "grad_change"),
        landscapeLine(at.beta, "beta")],
    },
    eval: {
      element: byId("panel-eval"),
      charts: [
        new LinesChart(at["eval-acc"], {
          x: (frame) => (frame.test_acc ?? frame.test_acc_batch_stats ?? null) === null ? null : frame.step,
          metrics: [
            { key: "eval", value: (frame) => frame.test_acc, color: PALETTE.green, markers: true },
            { key: "batch", value: (frame) => frame.test_acc_batch_stats, color: PALETTE.purple, dash: "dot", markers: true },
          ],
          yRange: [0, 1.04],
        }),
        new LayerBarsChart(at["bn-gap"], { value: (layer) => layer.batch_norm?.mean_gap, emptyNote: "needs batch norm" }),
        new LayerBarsChart(at["bn-var"], {
          value: (layer) => layer.batch_norm?.var_ratio, yType: "log", base: 1, references: [{ y: 1 }], emptyNote: "needs batch norm",
        }),
      ],
    },
    sweep: { element: byId("panel-sweep"), charts: [sweepChart] },
  };
  return { panels, ridge, gradients, waterfall, sweepChart };
}
