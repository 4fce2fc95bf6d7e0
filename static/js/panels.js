// The stage's panels and their charts: the layers' ridge plots and one panel per instrument.
// Each chart is built on its element in templates/index.html (the ids are the template's); a
// panel's charts record every frame and draw only while the panel is shown (views.js).

import { RidgeChart } from "./charts/ridge.js";
import { RidgePair } from "./charts/ridgepair.js";
import { LinesChart } from "./charts/lines.js";
import { LayerBarsChart } from "./charts/layerbars.js";
import { DriftChart, WaterfallChart } from "./charts/drift.js";
import { SweepChart } from "./charts/sweep.js";
import { PALETTE, RUN_RAMPS } from "./charts/theme.js";

const byId = (id) => document.getElementById(id);

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

const layerLines = (id, layerValue, options = {}) => new LinesChart(byId(id), { layerValue, ...options });

const landscapeLine = (id, key) => new LinesChart(byId(id), {
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
  const drift = new DriftChart(byId("chart-drift"));
  const waterfall = new WaterfallChart(byId("chart-waterfall"));
  const sweepChart = new SweepChart(byId("chart-sweep"));
  const panels = {
    layers: { element: byId("panel-layers"), charts: [ridge] },
    drift: { element: byId("panel-drift"), charts: [drift, waterfall] },
    gradients: {
      element: byId("panel-gradients"),
      charts: [
        gradients,
        layerLines("chart-grad-norm", (layer) => layer.grad_norm, { yType: "log", emptyNote: "needs gradient probes" }),
        layerLines("chart-update-ratio", (layer) => layer.update_ratio, {
          yType: "log", references: [{ y: 1e-3, label: "10⁻³" }], emptyNote: "needs gradient probes",
        }),
      ],
    },
    ics: {
      element: byId("panel-ics"),
      charts: [
        layerLines("chart-ics-dist", (_, frame, i) => frame.ics?.[i]?.dist, {
          x: (frame) => frame.ics_step ?? null, yType: "log", emptyNote: "needs ICS measurements",
        }),
        layerLines("chart-ics-cos", (_, frame, i) => frame.ics?.[i]?.cos, {
          x: (frame) => frame.ics_step ?? null, emptyNote: "needs ICS measurements",
        }),
      ],
    },
    landscape: {
      element: byId("panel-landscape"),
      charts: [landscapeLine("chart-loss-range", "loss_range"), landscapeLine("chart-grad-change", "grad_change"),
        landscapeLine("chart-beta", "beta")],
    },
    eval: {
      element: byId("panel-eval"),
      charts: [
        new LinesChart(byId("chart-eval-acc"), {
          x: (frame) => (frame.test_acc ?? frame.test_acc_batch_stats ?? null) === null ? null : frame.step,
          metrics: [
            { key: "eval", value: (frame) => frame.test_acc, color: PALETTE.green, markers: true },
            { key: "batch", value: (frame) => frame.test_acc_batch_stats, color: PALETTE.purple, dash: "dot", markers: true },
          ],
          yRange: [0, 1.04],
        }),
        new LayerBarsChart(byId("chart-bn-gap"), { value: (layer) => layer.batch_norm?.mean_gap, emptyNote: "needs batch norm" }),
        new LayerBarsChart(byId("chart-bn-var"), {
          value: (layer) => layer.batch_norm?.var_ratio, yType: "log", base: 1, references: [{ y: 1 }], emptyNote: "needs batch norm",
        }),
      ],
    },
    sweep: { element: byId("panel-sweep"), charts: [sweepChart] },
  };
  return { panels, ridge, gradients, waterfall, sweepChart };
}
