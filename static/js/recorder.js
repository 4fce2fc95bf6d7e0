// What the page has seen of the current run, kept so it can be saved: every frame's statistics
// (not its histogram counts), bounded and thinned evenly past `cap` frames (thinned.js).
//
//   recorder.reset(started); recorder.add(frame); recorder.toCSV(); recorder.toJSON()

import { ThinnedRecord } from "./thinned.js";

export const RECORD_FORMAT = "shiftscope-statistics";
export const RECORD_VERSION = 1;
const STATS = ["mean", "std", "p15", "p50", "p85"];

/** One CSV row per step × layer: the run, the step's loss and accuracies, and the layer's pre and
 *  post statistics and instrument readings (empty where the frame has none). */
export const CSV_COLUMNS = [
  "run", "step", "layer", "loss", "train_acc", "test_acc", "test_acc_batch_stats", "lr",
  ...STATS.map((s) => `pre_${s}`), ...STATS.map((s) => `post_${s}`),
  "saturated", "dead", "nonfinite", "grad_norm", "update_ratio", "drift", "ics_dist", "ics_cos",
];

/** A frame's statistics without its histograms' counts (what the record keeps). */
function compact(frame) {
  const layers = (frame.layers ?? []).map((layer, i) => {
    const pick = (h) => (h ? Object.fromEntries(STATS.map((s) => [s, h[s] ?? null])) : null);
    const ics = frame.ics?.[i] ?? null;
    return {
      name: layer.name, pre: pick(layer.pre), post: pick(layer.post),
      saturated: layer.saturated ?? null, dead: layer.dead ?? null, nonfinite: layer.nonfinite ?? null,
      grad_norm: layer.grad_norm ?? null, update_ratio: layer.update_ratio ?? null, drift: layer.drift ?? null,
      ics_dist: ics?.dist ?? null, ics_cos: ics?.cos ?? null,
    };
  });
  return {
    run: frame.run ?? "A", step: frame.step, loss: frame.loss ?? null, train_acc: frame.train_acc ?? null,
    test_acc: frame.test_acc ?? null, test_acc_batch_stats: frame.test_acc_batch_stats ?? null,
    lr: frame.lr ?? null, ics_step: frame.ics_step ?? null, layers,
  };
}

function cell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export class Recorder {
  constructor(cap = 4000) {
    this.record = new ThinnedRecord(cap);
    this.started = null;
  }

  /** A new run (its `started`; null: none): nothing recorded yet. */
  reset(started) {
    this.started = started;
    this.record.clear();
  }

  get length() { return this.record.length; }

  get frames() { return this.record.entries; }

  get stride() { return this.record.stride; }

  add(frame) {
    if (this.started) this.record.add(frame, compact(frame));
  }

  /** The record as CSV text: a header, then one row per frame × layer. */
  toCSV() {
    const rows = [CSV_COLUMNS.join(",")];
    for (const frame of this.frames) {
      for (const layer of frame.layers) {
        const stats = (side) => STATS.map((s) => layer[side]?.[s] ?? null);
        rows.push([
          frame.run, frame.step, layer.name, frame.loss, frame.train_acc, frame.test_acc,
          frame.test_acc_batch_stats, frame.lr, ...stats("pre"), ...stats("post"),
          layer.saturated, layer.dead, layer.nonfinite, layer.grad_norm, layer.update_ratio, layer.drift,
          layer.ics_dist, layer.ics_cos,
        ].map(cell).join(","));
      }
    }
    return rows.join("\n") + "\n";
  }

  /** The record as JSON text: the format and its version, the run's config, and the frames. */
  toJSON() {
    return JSON.stringify({
      format: RECORD_FORMAT,
      version: RECORD_VERSION,
      columns: CSV_COLUMNS,
      config: this.started?.config ?? null,
      configs: this.started?.configs ?? null,
      thinned_to_every: this.stride,
      frames: this.frames,
    });
  }

  /** A file name for the record: the architecture, the norm and the step reached. */
  fileName(extension) {
    const config = this.started?.config ?? {};
    const last = this.frames.at(-1)?.step ?? 0;
    return `shiftscope-${config.arch ?? "run"}-${config.norm ?? "none"}-step${last}.${extension}`;
  }
}
