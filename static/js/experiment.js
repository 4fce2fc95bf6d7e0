// A class experiment (docs/protocol.md, "Class experiments"): in a room, the teacher varies one
// setting of this page's config over a few values; each student who joins trains one value as
// their own run (the page shows it as any run) and the teacher's projector shows the class: a
// point per student and their deepest layers, from one `class_summary` at most 5 times a second.
//
//   const experiment = new ExperimentPanel({ socket, room, pageState, wire, elements });
//   // teacher: Experiment → pick a field and values → Start; Stop all, Reveal, Save results, End
//   // student: Join → "Your value: lr = 1"

import { ClassChart, ClassRidges, valueLabel } from "./charts/class.js";
import { download } from "./download.js";

// Values offered when the teacher picks a field: a spread wide enough to show something.
export const DEFAULT_VALUES = Object.freeze({
  lr: "0.01, 0.1, 1, 10",
  norm: "none, batch, layer, rms",
  batch_size: "8, 32, 128, 512",
  depth: "2, 4, 8, 16",
  init: "default, xavier, kaiming, normal",
  activation: "sigmoid, tanh, relu, gelu",
});
const NUMERIC = new Set(["lr", "batch_size", "depth"]);
export const FIELD_LABELS = Object.freeze({
  lr: "lr", norm: "norm", batch_size: "batch size", depth: "depth", init: "init", activation: "activation",
});

/** The values a teacher typed, as the server takes them: numbers for numeric fields. */
export function parseValues(field, text) {
  const parts = text.split(/[,;\s]+/).map((part) => part.trim()).filter(Boolean);
  return NUMERIC.has(field) ? parts.map((part) => (Number.isFinite(Number(part)) ? Number(part) : part)) : parts;
}

export class ExperimentPanel {
  constructor({ socket, room, pageState, wire = (config) => config, elements }) {
    this.socket = socket;
    this.room = room;
    this.pageState = pageState;
    this.wire = wire;
    this.el = elements;
    this.experiment = null; // the last `experiment` announcement
    this.summary = null;    // the last `class_summary`
    this.mine = null;       // this student's `experiment_assigned`
    this.formOpen = false;  // the teacher opened the form (the Experiment button)
    this.summaries = 0;
    this.chart = new ClassChart(elements.chart);
    this.ridges = new ClassRidges(elements.ridges);
    this.drawPending = false;
    const resize = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const chart = entry.target === elements.chart ? this.chart : this.ridges;
        chart.size = { width: entry.contentRect.width, height: entry.contentRect.height };
        chart.dirty = true;
      }
      this.requestDraw();
    });
    resize.observe(elements.chart);
    resize.observe(elements.ridges);

    socket.on("experiment", (message) => this.announced(message));
    socket.on("experiment_assigned", (message) => this.assigned(message));
    socket.on("class_summary", (message) => this.summarised(message));
    socket.on("error", (message) => {
      if (message.about === "experiment") this.showError(message);
    });
    for (const type of ["room", "room_ended", "room_left", "close"]) socket.on(type, () => this.roomChanged(type));

    elements.toggle.addEventListener("click", () => this.toggleForm());
    elements.field.addEventListener("change", () => { elements.values.value = DEFAULT_VALUES[elements.field.value]; });
    elements.values.value = DEFAULT_VALUES[elements.field.value];
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    elements.stop.addEventListener("click", () => this.socket.send({ type: "experiment_stop_all" }));
    elements.reveal.addEventListener("click", () => this.socket.send({ type: "experiment_reveal" }));
    elements.end.addEventListener("click", () => this.socket.send({ type: "experiment_close" }));
    elements.save.addEventListener("click", () => this.save());
    elements.join.addEventListener("click", () => this.join());
    elements.back.addEventListener("click", () => this.backToRoom());
    this.render();
  }

  get role() { return this.room.role; }

  get live() { return this.experiment !== null && this.experiment.state !== "ended"; }

  // --- teacher --------------------------------------------------------------------------------

  toggleForm() {
    this.formOpen = !this.formOpen;
    this.render();
    if (this.formOpen && !this.live) this.el.field.focus();
  }

  /** Open an experiment on this page's config (the teacher's), varying the chosen field. */
  start() {
    const field = this.el.field.value;
    const values = parseValues(field, this.el.values.value);
    this.hideError();
    this.socket.send({
      type: "experiment_open", field, values, config: this.wire(this.pageState.config), assign: this.el.assign.value,
    });
  }

  /** The class's results as a JSON file: the experiment and its last summary. */
  save() {
    const results = { saved_at: new Date().toISOString(), experiment: this.experiment, summary: this.summary };
    const name = `class-experiment-${this.experiment?.field ?? "results"}-${results.saved_at.slice(0, 19).replaceAll(":", "")}.json`;
    download(name, JSON.stringify(results, null, 2), "application/json");
  }

  // --- student --------------------------------------------------------------------------------

  join() {
    this.hideError();
    const message = { type: "experiment_join" };
    if (this.experiment?.assign === "choice") message.index = Number(this.el.pick.value);
    this.socket.send(message);
  }

  /** After the experiment: watch the teacher's run again (the room's history restarts it). */
  backToRoom() {
    this.mine = null;
    if (this.room.code) this.room.join(this.room.code);
    if (this.el.follow) {
      this.el.follow.checked = true;
      this.el.follow.dispatchEvent(new Event("change"));
    }
    this.render();
  }

  // --- server messages -----------------------------------------------------------------------

  announced(message) {
    const fresh = !this.experiment || this.experiment.state === "ended" && message.state !== "ended";
    this.experiment = message;
    if (fresh) {
      this.summary = null;
      this.mine = null;
      this.chart.reset(message);
      this.ridges.reset(message);
      this.fillPicker();
    }
    if (this.role === "teacher" && message.state !== "ended") this.formOpen = false;
    this.hideError();
    this.render();
    this.requestDraw();
  }

  assigned(message) {
    this.mine = message;
    // The student's own run plays here now: the teacher's page state no longer steers this one.
    if (this.el.follow?.checked) {
      this.el.follow.checked = false;
      this.el.follow.dispatchEvent(new Event("change"));
    }
    this.pageState.apply({ config: message.config });
    this.room.status(`training your value for the class experiment (${message.field} = ${valueLabel(message.value)})`);
    this.render();
  }

  summarised(message) {
    this.summary = message;
    this.summaries += 1;
    this.chart.update(message);
    this.ridges.update(message);
    if (this.el.classBox.hidden) this.render();
    this.el.save.disabled = false;
    this.renderStatus();
    this.requestDraw();
  }

  roomChanged(type) {
    if (type === "room" && this.role !== null) {
      this.render();
      return;
    }
    if (type !== "room") {
      this.experiment = null;
      this.summary = null;
      this.mine = null;
      this.formOpen = false;
      this.chart.reset(null);
      this.ridges.reset(null);
    }
    this.render();
  }

  showError(message) {
    const detail = (message.errors ?? []).map((error) => error.message).join("; ") || message.message;
    this.el.error.textContent = detail;
    this.el.error.hidden = false;
    if (this.role === "teacher" && !this.live) this.formOpen = true;
    this.render();
  }

  hideError() { this.el.error.hidden = true; }

  // --- drawing ---------------------------------------------------------------------------------

  requestDraw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      if (this.el.classBox.hidden) return;
      this.chart.render();
      this.ridges.render();
    });
  }

  fillPicker() {
    const values = this.experiment?.values ?? [];
    this.el.pick.replaceChildren(...values.map((value, i) => new Option(`${FIELD_LABELS[this.experiment.field]} = ${valueLabel(value)}`, String(i))));
  }

  renderStatus() {
    const { experiment, summary } = this;
    if (!experiment) return;
    const field = FIELD_LABELS[experiment.field] ?? experiment.field;
    const values = experiment.values.map(valueLabel).join(", ");
    const students = summary?.students ?? [];
    const counts = {};
    for (const student of students) counts[student.state] = (counts[student.state] ?? 0) + 1;
    const tally = Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", ");
    const phase = { open: "", stopped: " · stopped", ended: " · ended" }[experiment.state] ?? "";
    const who = this.role === "teacher" || experiment.revealed ? ` · ${students.length} student${students.length === 1 ? "" : "s"}${tally ? ` (${tally})` : ""}` : "";
    const text = `${field} over ${values}${phase}${who}`;
    if (this.el.status.textContent !== text) this.el.status.textContent = text;
  }

  render() {
    const { el, experiment } = this;
    const teacher = this.role === "teacher";
    const viewer = this.role === "viewer";
    el.toggle.hidden = !teacher;
    el.toggle.setAttribute("aria-expanded", String(this.formOpen || this.live));
    const shown = (teacher && (this.formOpen || experiment !== null)) || (viewer && experiment !== null);
    el.box.hidden = !shown;
    el.form.hidden = !(teacher && this.formOpen && !this.live);
    el.teacherBox.hidden = !(teacher && experiment !== null);
    el.stop.disabled = experiment?.state !== "open";
    el.reveal.disabled = !this.live || Boolean(experiment?.revealed);
    el.end.disabled = !this.live;
    el.save.disabled = this.summary === null;
    const open = experiment?.state === "open";
    el.studentBox.hidden = !(viewer && experiment !== null);
    const choosing = experiment?.assign === "choice";
    el.pick.hidden = !(viewer && open && choosing);
    el.pickLabel.hidden = el.pick.hidden;
    el.join.hidden = !(viewer && open);
    el.join.textContent = this.mine ? "Restart my run" : choosing ? "Join: train this value" : "Join: train my value";
    el.back.hidden = !(viewer && experiment !== null && !this.live);
    el.mine.hidden = !this.mine;
    if (this.mine) el.mine.textContent = `Your value: ${this.mine.field} = ${valueLabel(this.mine.value)}`;
    const classShown = experiment !== null && (teacher || Boolean(experiment.revealed || this.summary?.revealed));
    if (el.classBox.hidden === classShown) {
      el.classBox.hidden = !classShown;
      this.chart.dirty = this.ridges.dirty = true;
      this.chart.size = this.ridges.size = null; // measured again now that it is shown
      this.requestDraw();
    }
    if (experiment) this.renderStatus();
    else el.status.textContent = teacher ? "every student trains one value of a setting; the class appears here" : "";
  }
}
