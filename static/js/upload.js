// Your own data: a CSV of numeric features and a label column, uploaded into this page's session
// (POST /api/dataset with the token the server's `hello` gave this connection; docs/protocol.md,
// "Your own data"). The server parses, checks and standardises it and answers with a preview or
// an error naming the row and column; the table lives in the session until the page disconnects.

import { PALETTE, PLOT_CONFIG, axis } from "./charts/theme.js";

const DEFAULTS = Object.freeze({
  // Classes in the scatter: Okabe–Ito, then repeated (a 2-D preview of 8+ classes is a crowd anyway).
  colors: [PALETTE.blue, PALETTE.orange, PALETTE.green, PALETTE.vermillion, PALETTE.purple, PALETTE.sky, PALETTE.ink2, PALETTE.yellow],
  shownClasses: 8, // class counts listed in the summary
  scatterSize: 240, // px
});

/** The upload controls: a file picker (or a file dropped on the box), the label column, the
 *  preview, and the errors. `onLoaded(preview)` runs after a table is in the session. */
export class UploadPanel {
  constructor(elements, { onLoaded = () => {} } = {}) {
    this.el = elements; // {box, file, pick, label, status, error, preview, summary, scatter}
    this.onLoaded = onLoaded;
    this.upload = null; // hello.upload: token, path, limits
    this.loaded = null; // the preview of the table in the session
    this.el.pick.addEventListener("click", () => this.el.file.click());
    this.el.file.addEventListener("change", () => {
      const [file] = this.el.file.files;
      if (file) this.send(file);
      this.el.file.value = "";
    });
    this.el.box.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.items ?? [])].some((item) => item.kind === "file")) return;
      event.preventDefault();
      event.stopPropagation(); // not the charts' drop (a recording)
      this.el.box.dataset.over = "";
    });
    this.el.box.addEventListener("dragleave", () => delete this.el.box.dataset.over);
    this.el.box.addEventListener("drop", (event) => {
      const [file] = event.dataTransfer?.files ?? [];
      delete this.el.box.dataset.over;
      if (!file) return;
      event.preventDefault();
      event.stopPropagation();
      this.send(file);
    });
  }

  /** A (re)connected session: its upload token and limits. A new connection holds no data. */
  connected(upload) {
    const had = this.loaded;
    this.upload = upload ?? null;
    this.el.pick.disabled = this.upload === null;
    this.loaded = null;
    this.el.preview.hidden = true;
    delete this.el.box.dataset.loaded;
    if (had) this.say(`The connection was renewed: upload ${had.name} again to train on it.`);
    else if (this.upload) this.say(`A .csv of numeric features and a label column (at most ${this.limitsText()}); or drop it here.`);
  }

  /** Headers that let a request act for this session's data (the script export). */
  headers() {
    return this.upload ? { "X-Upload-Token": this.upload.token } : {};
  }

  limitsText() {
    const u = this.upload;
    return `${(u.max_bytes / 2 ** 20).toFixed(0)} MB, ${u.max_rows.toLocaleString("en")} rows, ${u.max_features} features, ${u.max_classes} classes`;
  }

  say(text) {
    this.el.status.textContent = text;
  }

  async send(file) {
    if (!this.upload) return this.fail("Not connected: the upload waits for the server.");
    if (file.size > this.upload.max_bytes) {
      return this.fail(`${file.name} has ${file.size.toLocaleString("en")} bytes; at most ${this.upload.max_bytes.toLocaleString("en")}.`);
    }
    this.el.error.hidden = true;
    this.say(`Uploading ${file.name}…`);
    this.el.box.setAttribute("aria-busy", "true");
    const url = new URL(this.upload.path, window.location.href);
    url.search = new URLSearchParams({ name: file.name, ...(this.el.label.value.trim() ? { label: this.el.label.value.trim() } : {}) });
    try {
      const reply = await fetch(url, { method: "POST", headers: { ...this.headers(), "Content-Type": "text/csv" }, body: file });
      const body = await reply.json().catch(() => null);
      if (!reply.ok) return this.fail(body?.message ?? `the server answered ${reply.status}`, body?.errors ?? [], file.name);
      this.show(body);
      this.onLoaded(body);
    } catch (error) {
      this.fail(`Could not upload ${file.name}: ${error.message}`);
    } finally {
      this.el.box.removeAttribute("aria-busy");
    }
  }

  /** A refusal: each error names the row and column (data-row, data-column for tests). */
  fail(message, errors = [], name = "") {
    const box = this.el.error;
    box.replaceChildren();
    const head = document.createElement("p");
    head.textContent = name ? `${name} was not loaded${this.loaded ? ` (still loaded: ${this.loaded.name})` : ""}:` : message;
    box.append(head);
    for (const error of name ? (errors.length ? errors : [{ message }]) : []) {
      const line = document.createElement("p");
      line.className = "upload-error-line";
      if (error.row != null) line.dataset.row = error.row;
      if (error.column != null) line.dataset.column = error.column;
      line.textContent = error.message;
      box.append(line);
    }
    box.hidden = false;
    this.say(this.loaded ? `Training data: ${this.loaded.name}.` : "Nothing loaded.");
  }

  show(preview) {
    this.loaded = preview;
    this.el.box.dataset.loaded = "";
    this.el.error.hidden = true;
    const classes = preview.class_names.map((name, i) => `${name} ${preview.class_counts[i]}`);
    const shown = classes.slice(0, DEFAULTS.shownClasses).join(", ") + (classes.length > DEFAULTS.shownClasses ? ", …" : "");
    this.el.summary.textContent =
      `${preview.rows.toLocaleString("en")} rows (${preview.train_rows.toLocaleString("en")} train, ${preview.test_rows.toLocaleString("en")} test by the seed) · ` +
      `${preview.features} feature${preview.features === 1 ? "" : "s"}, standardised · ` +
      `${preview.classes} classes of “${preview.label}”: ${shown}` +
      (preview.cnn ? " · 64 features: the CNN reads them as 8×8 images" : "");
    this.el.preview.hidden = false;
    this.say(`Training data: ${preview.name} (Dataset: your CSV). It stays on the server while this page is connected.`);
    this.drawScatter(preview.scatter);
  }

  drawScatter(scatter) {
    const chart = this.el.scatter;
    chart.hidden = !scatter;
    if (!scatter || typeof Plotly === "undefined") return;
    const byClass = new Map();
    scatter.label.forEach((k, i) => {
      if (!byClass.has(k)) byClass.set(k, { x: [], y: [] });
      byClass.get(k).x.push(scatter.x[i]);
      byClass.get(k).y.push(scatter.y[i]);
    });
    const traces = [...byClass.entries()].sort(([a], [b]) => a - b).map(([k, points]) => ({
      type: "scatter", mode: "markers", name: this.loaded.class_names[k], x: points.x, y: points.y,
      marker: { size: 5, color: DEFAULTS.colors[k % DEFAULTS.colors.length], symbol: k >= DEFAULTS.colors.length ? "x" : "circle" },
    }));
    const [fx, fy] = this.loaded.feature_names;
    const size = DEFAULTS.scatterSize;
    Plotly.react(chart, traces, {
      width: size, height: size, margin: { l: 40, r: 8, t: 8, b: 36 },
      xaxis: axis({ title: { text: fx } }), yaxis: axis({ title: { text: fy } }),
      showlegend: false, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    }, PLOT_CONFIG);
    chart.setAttribute("aria-label", `Scatter of the two standardised features, ${fx} against ${fy}, coloured by class`);
  }
}
