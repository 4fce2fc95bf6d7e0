// Wiring: the page's parts, the socket's messages, and one render per animation frame.

import { Controls, sameConfig } from "./controls.js";
import { ChartOptions } from "./chartoptions.js";
import { CompareControls } from "./compare.js";
import { Player } from "./player.js";
import { Socket } from "./socket.js";
import { Alerts, StatusLine } from "./status.js";
import { SweepPanel } from "./sweep.js";
import { PageState } from "./state.js";
import { NEEDS, Views } from "./views.js";
import { installKeyboard } from "./keyboard.js";
import { entryLabel, lastEntryLabel, rowsCaption, wireConfig } from "./arch.js";
import { ArchDiagram } from "./diagram.js";
import { AccuracyReadout } from "./accuracy.js";
import { RidgePair } from "./charts/ridgepair.js";
import { BandChart } from "./charts/band.js";
import { LossChart } from "./charts/loss.js";
import { HealthChart } from "./charts/health.js";
import { RenderLoop } from "./charts/loop.js";
import { buildPanels, placeCharts } from "./panels.js";
import { RunNotes } from "./notes.js";
import { installFacade } from "./facade.js";
import { ClaimChecks } from "./checks.js";
import { FrameQueue } from "./charts/frames.js";
import { isCompare, runOf } from "./charts/runs.js";
import { ROOM_ERRORS, RoomClient } from "./room.js";
import { ExperimentPanel } from "./experiment.js";
import { fetchScript } from "./export.js";
import { UploadPanel } from "./upload.js";
import { download } from "./download.js";
import { Recorder } from "./recorder.js";
import { installImageButtons } from "./snapshot.js";
import { Timeline } from "./timeline.js";
import { parseRecording, readRecordingFile, recordingName, recordingText } from "./recording.js";
import { RoomRecording } from "./roomrecording.js";
import { Lessons } from "./lessons.js";
import { applyHiding, hiddenByLink } from "./hiding.js";
import { presentation } from "./charts/theme.js";

const byId = (id) => document.getElementById(id);
const boot = JSON.parse(byId("shiftscope-boot").textContent);

const ERROR_TITLES = {
  invalid_config: "Settings refused:",
  over_budget: "Too big for this server:",
  invalid_message: "Message refused:",
  bad_json: "Message refused:",
  run_failed: "The run failed:",
  too_many_runs: "Too many runs:",
};
// Errors the server sends just before closing the socket: told once, with the close.
const CLOSING_CODES = new Set(["idle", "rate_limited", "too_large"]);

// --- parts ---------------------------------------------------------------------------------------

// The page's state in one object (state.js): every control edits it, and the form, the tabs, the
// chart options and the address bar are drawn from it.
const configForm = byId("config-form");
const pageState = new PageState({
  schema: boot.schema, presets: boot.presets, defaultPreset: boot.defaultPreset,
  fieldOrder: Controls.fieldOrder(configForm, boot.schema),
});
const controls = new Controls(configForm, {
  schema: boot.schema,
  pageState,
  mirrors: document.querySelectorAll("[data-mirror-for]"),
  story: {
    summary: byId("preset-summary"),
    look: byId("preset-look"),
    question: byId("preset-question"),
    claim: byId("preset-claim"),
    paper: byId("preset-paper"),
    claimBox: byId("preset-claim-box"),
  },
});
const compare = new CompareControls(byId("compare"), {
  schema: boot.schema, pageState, labels: { ...boot.labels, norm: "Norm", norm_position: "Norm position" },
  clearErrors: (field) => controls.clearErrors(field),
});

const { panels, ridge, gradients, waterfall, sweepChart } = buildPanels();
const diagram = new ArchDiagram(byId("arch-diagram"), boot.schema);
const accuracy = new AccuracyReadout(byId("acc-readout"));
const side = placeCharts(document.querySelector(".side"), ["band", "loss", "health"]);
const band = new BandChart(side.band);
const health = new HealthChart(side.health, byId("nonfinite"));
const claimChecks = new ClaimChecks(byId("preset-checks")); // "this run: …" beside quoted figures
const recorder = new Recorder(); // the run's statistics, for the CSV and JSON downloads
// The charts at any recorded moment: they are reset and given the recorded frames up to it.
const timeline = new Timeline(
  {
    box: byId("timeline"), slider: byId("timeline-slider"), step: byId("timeline-step"),
    live: byId("btn-live"), play: byId("btn-replay"), speed: byId("timeline-speed"),
  },
  { show: (frames) => replayCharts(frames) },
);
byId("btn-save-recording").addEventListener("click", () => {
  download(recordingName(timeline.started, timeline.frames), recordingText(timeline.started, timeline.frames), "application/json");
});

/** Show a recording: the live run (if any) stops, the charts replay the file's frames. */
function showRecording({ started, frames }) {
  actions.reset();
  showRun(started);
  for (const frame of frames) {
    timeline.add(frame);
    recorder.add(frame); // its statistics download as CSV and JSON too
  }
  refreshRecordButtons();
  timeline.seek(timeline.frames.length - 1); // a recording is replayed, never live
  stats.recordingsOpened += 1;
}

/** Open a saved recording file here (and, in a room the page leads, on every viewer's page). */
async function openRecording(file) {
  try {
    const text = await readRecordingFile(file);
    showRecording(parseRecording(text));
    sharedRecording.opened(text);
    alerts.dismiss("error");
  } catch (error) {
    alerts.show("error", `Could not open ${file.name}:`, error.message);
  }
}
byId("recording-file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) openRecording(file);
  event.target.value = "";
});
byId("main").addEventListener("dragover", (event) => {
  if ([...(event.dataTransfer?.items ?? [])].some((item) => item.kind === "file")) event.preventDefault();
});
byId("main").addEventListener("drop", (event) => {
  const [file] = event.dataTransfer?.files ?? [];
  if (!file) return;
  event.preventDefault();
  openRecording(file);
});

function replayCharts(frames) {
  resetCharts(shownRun);
  for (const frame of frames) applyFrame(frame);
  requestRender();
}
const sideCharts = [band, new LossChart(side.loss), health];
const views = new Views(document.querySelectorAll('input[name="view"]'), panels, pageState);
const panelCharts = views.charts.filter((chart) => chart !== ridge);
// Everything a frame feeds (the sweep chart takes sweep results instead).
const frameCharts = [ridge, ...sideCharts, ...panelCharts.filter((chart) => chart !== sweepChart)];
const charts = [ridge, ...sideCharts, ...panelCharts];

const status = new StatusLine({
  root: byId("status"),
  state: byId("status-state"),
  step: byId("status-step"),
  stepLabel: byId("status-step-label"),
  steps: byId("status-steps"),
  rate: byId("status-rate"),
  lr: byId("status-lr"),
  device: byId("status-device"),
  params: byId("status-params"),
});
const sweepPanel = new SweepPanel({
  button: byId("btn-sweep"),
  rates: byId("sweep-lrs"),
  steps: byId("sweep-steps"),
  progressBox: byId("sweep-progress-box"),
  progress: byId("sweep-progress"),
  progressText: byId("sweep-progress-text"),
  error: byId("sweep-error"),
});
const alerts = new Alerts(byId("alerts"));
const socket = new Socket();
// Your own data: a CSV into this connection's session; once loaded, the form trains on it.
const upload = new UploadPanel(
  {
    box: byId("upload"), file: byId("upload-file"), pick: byId("btn-upload"), label: byId("upload-label"),
    status: byId("upload-status"), error: byId("upload-error"), preview: byId("upload-preview"),
    summary: byId("upload-summary"), scatter: byId("upload-scatter"),
  },
  { onLoaded: () => controls.setFields({ dataset: "upload" }, "dataset") },
);
socket.on("hello", (message) => upload.connected(message.upload));
socket.acknowledgeFrames();
const player = new Player(socket, { wire: (config) => wireConfig(boot.schema, config) });
const buttons = { play: byId("btn-play"), pause: byId("btn-pause"), step: byId("btn-step"), reset: byId("btn-reset") };
const app = byId("app");
const connection = byId("connection");
const ridgeEmpty = byId("ridge-empty");
const applyHint = byId("apply-hint");
const chartOptions = new ChartOptions(document, {
  pageState,
  menus: { band: byId("band-layer"), drift: byId("drift-layer") },
  charts: {
    values: (values) => { ridge.setValues(values); requestRender(); },
    x: (mode) => { ridge.setXMode(mode); requestRender(); },
    gradX: (mode) => { gradients.setXMode(mode); requestRender(); },
    band: (index) => { band.select(index); requestRender(); },
    drift: (index) => { waterfall.select(index); requestRender(); },
  },
});
for (const editor of [controls, compare, views, chartOptions]) pageState.addEditor(editor);

// --- rendering: the newest data, drawn at most once per animation frame ---------------------------

// Counters for tests and the curious (window.shiftscope); runFrames restarts with every run.
const stats = {
  framesReceived: 0, framesRendered: 0, runFrames: 0, runs: 0, lastStep: null, receivedStep: null,
  framesByRun: { A: 0, B: 0 }, sweepResults: 0, recordingsOpened: 0,
};
let shownRun = null;       // the `started` of the run whose frames the charts show
let framePending = false;  // a frame arrived since the last render

// Frames received wait for the next animation frame, which shows one step (see frames.js).
function applyFrame(message) {
  framePending = true;
  // History charts record every frame (test accuracy comes in a few frames only); drawing waits.
  for (const chart of frameCharts) chart.update(message);
  status.update(message);
  accuracy.update(message);
}
const waitingFrames = new FrameQueue(applyFrame);

const loop = new RenderLoop(ridge, [...sideCharts, ...panelCharts], (drewFrame) => {
  status.render();
  accuracy.render();
  const empty = ridge.frame === null;
  if (ridgeEmpty.hidden === empty) ridgeEmpty.hidden = !empty;
  // With a panel covering the ridge plot, a frame counts as shown once the page has drawn.
  if (drewFrame || (ridge.hidden && framePending && ridge.frame)) {
    stats.framesRendered += 1;
    stats.runFrames += 1;
    stats.lastStep = ridge.frame.step;
  }
  framePending = false;
}, { prepare: () => waitingFrames.applyStep() && waitingFrames.length > 0 });
const requestRender = () => loop.request();

function resetCharts(run) {
  shownRun = run;
  waitingFrames.clear();
  for (const chart of frameCharts) chart.reset(run);
  const twins = isCompare(run);
  app.toggleAttribute("data-compare", twins);
  const [first, second] = health.measures; // what the twins' bars show: saturated, dead or both
  byId("health-measures").textContent = second ? `${first} (solid), ${second} (faded)` : first;
  refreshTitles();
  refreshNotes();
  accuracy.reset(run);
  byId("ridge-subtitle").textContent = rowsCaption(run);
  loop.flush();
}

// Each draw is sized to its chart's box: redraw a chart whose box changed (window, zoom, layout).
const sized = [ridge.charts.A, ridge.charts.B, gradients.charts.A, gradients.charts.B, ...charts];
const resizeObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    for (const chart of sized) {
      if (chart.element !== entry.target || chart instanceof RidgePair) continue;
      chart.size = { width: entry.contentRect.width, height: entry.contentRect.height };
      chart.dirty = true;
    }
  }
  requestRender();
});
for (const chart of sized) if (!(chart instanceof RidgePair)) resizeObserver.observe(chart.element);

// --- what the page says about the run (notes.js) ---------------------------------------------------

const runNotes = new RunNotes({ pairs: [ridge, gradients], player, pageState, controls });
const refreshTitles = () => runNotes.titles(shownRun);
const refreshNotes = () => runNotes.notes(shownRun);

// --- what the buttons show ------------------------------------------------------------------------

function refreshButtons() {
  const { state, connected } = player;
  const compareOn = Boolean(pageState.compareFields);
  byId("btn-export-script").textContent = compareOn ? "Export A as script" : "Export as script";
  byId("btn-export-script-b").hidden = !compareOn;
  const label = state === "paused" ? "Resume" : state === "running" ? "Restart" : "Play";
  buttons.play.querySelector(".btn-play-label").textContent = label;
  buttons.play.title = state === "running" ? "Restart with the settings shown" : `${label} (Space)`;
  // Offline and not retrying (closed for idling): Play reconnects, then plays.
  buttons.play.disabled = !connected && socket.reconnect;
  buttons.pause.disabled = !(state === "running" || player.pendingStart);
  buttons.step.disabled = !connected;
  buttons.reset.disabled = !connected;
  sweepPanel.setEnabled(connected && !player.active && !player.pendingStart);
  status.setState(shownState(), player.stateStep);
  refreshApplyHint();
  refreshTitles();
}

/** The state badge: the server's state, or what the page is waiting for. */
function shownState() {
  if (player.state === "offline") return "offline";
  if (player.queuePosition !== null && player.warming) return "warming up: starting a worker for your run";
  if (player.queuePosition !== null) return `waiting: #${player.queuePosition} in line`;
  if (player.pendingStart) return "starting";
  return player.state;
}

const sameCompare = (a, b) => (a === null || b === null ? a === b : sameConfig(a, b));

/** "Changed settings apply on Play" while a run uses other settings than the form shows. */
function refreshApplyHint() {
  const differs = player.active && !player.sweeping && player.lastConfig !== null
    && (!sameConfig(player.lastConfig, pageState.config, ["lr"]) || !sameCompare(player.lastCompare, pageState.compareFields));
  if (applyHint.hidden === differs) applyHint.hidden = !differs;
}

player.onChange(refreshButtons);
// What follows a change of the page state, beyond drawing its editors.
pageState.onChange((state, changes, cause) => {
  if (changes.config.length) diagram.show(state.config);
  if (changes.preset || cause.field === "preset") {
    sweepPanel.setPreset(pageState.preset);
    claimChecks.show(pageState.preset);
  }
  if (cause.byUser && cause.field === "lr" && state.config.lr !== null) player.setLearningRate(state.config.lr);
  if (changes.view) {
    // Opening an instrument's panel switches it on for the next start.
    const need = NEEDS[state.view];
    if (cause.byUser && need && !need.has(state.config)) controls.setFields(need.enable(state.config));
    ridge.hidden = state.view !== "layers";
    requestRender();
  }
  refreshApplyHint();
  refreshNotes();
});

// --- user actions ---------------------------------------------------------------------------------

let playWhenOpen = false; // Play pressed while the socket was held closed: reconnect first
let closingWords = null;  // the server's reason for the close that is coming

const actions = {
  play: () => {
    if (!socket.isOpen && !socket.reconnect) {
      playWhenOpen = true;
      socket.connect();
      return;
    }
    player.play(pageState.config, pageState.compareFields);
  },
  togglePlay: () => (socket.isOpen || socket.reconnect
    ? player.togglePlay(pageState.config, pageState.compareFields)
    : actions.play()),
  pause: () => player.pause(),
  step: () => player.step(pageState.config, pageState.compareFields),
  reset: () => {
    player.reset();
    status.clear();
    stats.runFrames = 0;
    stats.lastStep = null;
    stats.framesByRun = { A: 0, B: 0 };
    resetCharts(null);
    claimChecks.reset(null);
    timeline.reset(null);
  },
  timelineStep: (direction) => {
    if (!timeline.frames.length) return false;
    timeline.nudge(direction);
    return true;
  },
  timelineEdge: (direction) => {
    if (!timeline.frames.length) return false;
    if (direction < 0) timeline.first();
    else timeline.toLive();
    return true;
  },
  selectNorm: (index) => controls.selectNorm(index),
  nudgeLearningRate: (direction) => controls.nudgeLearningRate(direction),
  focusPreset: () => controls.focusPreset(),
  toggleCompare: () => compare.toggleOn(),
  togglePresent: () => setPresentation(!presentation.on, { fullscreen: true }),
  lessonStep: (direction) => {
    if (!lessons.lesson) return false;
    if (direction > 0) lessons.next();
    else lessons.previous();
    return true;
  },
};

const lessons = new Lessons({
  lessons: boot.lessons,
  presets: boot.presets,
  selectPreset: (id) => controls.selectPreset(id),
  elements: {
    box: byId("lesson-box"), menu: byId("lesson"), title: byId("lesson-title"), progress: byId("lesson-progress"),
    note: byId("lesson-note"), predict: byId("lesson-predict"), answer: byId("lesson-answer"),
    reveal: byId("btn-lesson-reveal"), next: byId("btn-lesson-next"), previous: byId("btn-lesson-previous"),
  },
});

/** Presentation mode: large type and thick lines on every chart, the settings hidden (the keys
 *  and a minimal bar still drive the run), full screen when asked from a key or a click. */
function setPresentation(on, { fullscreen = false } = {}) {
  if (on === presentation.on) return;
  presentation.on = on;
  app.toggleAttribute("data-present", on);
  const button = byId("btn-present");
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? "Exit presentation" : "Present";
  if (fullscreen && on && !document.fullscreenElement) document.documentElement.requestFullscreen?.().catch(() => {});
  if (!on && document.fullscreenElement) document.exitFullscreen?.().catch(() => {});
  for (const chart of sized) chart.dirty = true;
  requestRender();
}
byId("btn-present").addEventListener("click", () => actions.togglePresent());
byId("btn-present-play").addEventListener("click", () => actions.togglePlay());

buttons.play.addEventListener("click", actions.play);
buttons.pause.addEventListener("click", actions.pause);
buttons.step.addEventListener("click", actions.step);
buttons.reset.addEventListener("click", actions.reset);
// A room's viewer watches: the teacher's run plays here and the keys that would steer it do nothing.
const STEERING_KEYS = new Set([
  "togglePlay", "step", "reset", "selectNorm", "nudgeLearningRate", "toggleCompare", "lessonStep",
]);
// (F stays a viewer's own: presentation mode is how this screen looks, not the room's run.)
installKeyboard(document, Object.fromEntries(Object.entries(actions).map(([name, act]) => [
  name, (...args) => (room.viewing && STEERING_KEYS.has(name) ? false : act(...args)),
])));
sweepPanel.onSweep(({ lrs, steps }) => player.sweep(pageState.config, pageState.compareFields, lrs, steps));

async function exportScript(run) {
  try {
    const config = wireConfig(boot.schema, pageState.config);
    const { name, text } = await fetchScript(config, pageState.compareFields, run, upload.headers());
    download(name, text, "text/x-python");
  } catch (error) {
    alerts.show("error", "Could not export the script:", error.message);
  }
}
function refreshRecordButtons() {
  for (const id of ["btn-record-csv", "btn-record-json"]) byId(id).disabled = recorder.length === 0;
}
byId("btn-record-csv").addEventListener("click", () => download(recorder.fileName("csv"), recorder.toCSV(), "text/csv"));
byId("btn-record-json").addEventListener("click", () => download(recorder.fileName("json"), recorder.toJSON(), "application/json"));
installImageButtons(
  document.body,
  (name, blob) => download(name, blob, blob.type),
  (error) => alerts.show("error", "Could not save the image:", error.message),
);
byId("btn-export-script").addEventListener("click", () => exportScript("A"));
byId("btn-export-script-b").addEventListener("click", () => exportScript("B"));


// --- server messages ------------------------------------------------------------------------------

socket.on("open", () => {
  connection.dataset.state = "open";
  connection.textContent = "connected";
  alerts.dismiss("connection");
  player.opened();
  if (playWhenOpen) {
    playWhenOpen = false;
    actions.play();
  }
});

socket.on("close", ({ reason, retryInMs }) => {
  const wasConnected = player.connected;
  if (reason === "idle") {
    // The server closes sockets left idle for a long time: stay closed until the user is back.
    socket.hold();
    alerts.show("connection", "Disconnected after a long idle time.", "Press ▶ Play to reconnect.");
  } else if (closingWords) {
    alerts.show("connection", "Disconnected:", `${closingWords}. Reconnecting…`);
  } else if (wasConnected && reason !== "busy") {
    alerts.show("connection", "Connection lost.", "Reconnecting to the server…");
  }
  closingWords = null;
  connection.dataset.state = "closed";
  connection.textContent = socket.reconnect ? `reconnecting in ${Math.ceil(retryInMs / 1000)} s…` : "disconnected";
  player.closed();
});

socket.on("hello", (message) => {
  // A device the server lacks stays listed (the schema allows it) but cannot be picked.
  const cuda = document.querySelector('#f-device option[value="cuda"]');
  if (cuda) cuda.disabled = !(message.devices ?? []).includes("cuda");
});

socket.on("started", (message) => {
  stats.runs += 1;
  controls.clearErrors();
  alerts.dismiss("error");
  alerts.dismiss("busy");
  player.started(message);
  if (message.sweep) {
    // A sweep replaces the run but sends no frames: the charts keep showing the last run.
    stats.sweepResults = 0;
    status.setSweep(message);
    sweepPanel.started(message.sweep);
    sweepChart.reset(message.sweep);
    byId("sweep-legend").hidden = message.sweep.runs.length < 2;
    pageState.update({ view: "sweep" });
    claimChecks.reset(message);
    requestRender();
    return;
  }
  showRun(message);
});

/** The charts, menus, checks and records set up for a run (live, or a recording opened). */
function showRun(started) {
  stats.runFrames = 0;
  stats.lastStep = null;
  stats.receivedStep = null;
  stats.framesByRun = { A: 0, B: 0 };
  status.setRun(started);
  chartOptions.fillLayerMenus(started.layers, { entryLabel, lastEntryLabel });
  resetCharts(started);
  claimChecks.reset(started);
  recorder.reset(started);
  timeline.reset(started);
  refreshRecordButtons();
}

socket.on("frame", (message) => {
  if (!player.acceptFrames) return;
  stats.framesReceived += 1;
  stats.framesByRun[runOf(message)] += 1;
  stats.receivedStep = message.step;
  if (timeline.add(message)) waitingFrames.push(message); // while replaying, only recorded
  claimChecks.update(message);
  recorder.add(message);
  if (recorder.length === 1) refreshRecordButtons();
  requestRender();
});

socket.on("sweep_result", (message) => {
  if (!player.acceptFrames) return;
  stats.sweepResults += 1;
  claimChecks.update(message);
  sweepChart.add(message);
  sweepPanel.result(message);
  status.sweepPoint(message);
  requestRender();
});

socket.on("state", (message) => {
  if (player.sweeping && !message.run && message.state !== "running" && message.state !== "paused") {
    sweepPanel.ended(message.state);
  }
  if (!message.run && message.state !== "running" && message.state !== "paused") claimChecks.finish();
  player.stateChanged(message);
});

socket.on("queued", (message) => player.queued(message));

socket.on("busy", (message) => {
  // Every training slot is taken; the server closes this socket and the page reconnects.
  player.refused();
  alerts.show("busy", "Server busy:", message.message);
});

socket.on("error", (message) => {
  if (ROOM_ERRORS.has(message.code)) return; // the room bar says it
  if (message.about === "experiment") return; // the experiment panel says it
  if (message.code === "no_run") return; // a pause or lr change that raced the run's end: harmless
  if (CLOSING_CODES.has(message.code)) {
    closingWords = message.message;
    return;
  }
  player.refused();
  if (message.errors?.some((error) => error.field.startsWith("compare.")) && !compare.on) compare.setOn(true);
  const unplaced = controls.showErrors(message.errors);
  const title = ERROR_TITLES[message.code] ?? "Error:";
  const detail = message.errors?.length && !unplaced.length
    ? `${message.message} (see the highlighted field${message.errors.length > 1 ? "s" : ""})`
    : message.message;
  alerts.show("error", title, detail);
});

// --- rooms: share this run with a class, or watch a teacher's ---------------------------------------

const room = new RoomClient({
  socket, player, pageState, alerts,
  elements: {
    share: byId("btn-share"), joinForm: byId("room-join"), joinInput: byId("room-code-input"),
    teacherBox: byId("room-teacher"), viewerBox: byId("room-viewer"), codes: document.querySelectorAll("[data-room-code]"),
    link: byId("room-link"), qr: byId("room-qr"), qrLink: byId("room-qr-link"), viewers: byId("room-viewers"), lock: byId("btn-room-lock"), end: byId("btn-room-end"),
    status: byId("room-status"), follow: byId("room-follow"), fork: byId("btn-room-fork"), leave: byId("btn-room-leave"),
    onFork: () => actions.play(), // the form holds the room's config: train it as your own run
  },
  // The teacher's presentation mode travels with their page state; a following viewer takes it.
  extraState: () => ({ present: presentation.on, lesson: lessons.state, timeline: sharedRecording.state(timeline) }),
  applyExtra: (state) => {
    if ("timeline" in state) sharedRecording.follow(state.timeline);
    if (typeof state.present === "boolean") setPresentation(state.present);
    if ("lesson" in state) lessons.apply(state.lesson);
  },
  onViewing: (viewing) => {
    configForm.inert = viewing; // the teacher's settings, shown, not edited
    // The settings column still scrolls: with its form inert, the column itself takes the focus.
    const panel = configForm.closest(".panel");
    if (viewing) panel.setAttribute("tabindex", "0");
    else panel.removeAttribute("tabindex");
    byId("lesson-box").inert = viewing; // the teacher moves the lesson on
    refreshButtons();
  },
});

// A recording opened in the room replays on every viewer's page, at the teacher's timeline step.
const sharedRecording = new RoomRecording({
  socket, room, parse: parseRecording, show: showRecording, seek: (step) => timeline.showStep(step),
});

// --- a class experiment: every student trains one value, the projector shows the class ---------------

const experiment = new ExperimentPanel({
  socket, room, pageState, wire: (config) => wireConfig(boot.schema, config),
  elements: {
    box: byId("experiment-box"), toggle: byId("btn-experiment"), status: byId("experiment-status"), mine: byId("experiment-mine"),
    form: byId("experiment-form"), field: byId("experiment-field"), values: byId("experiment-values"), assign: byId("experiment-assign"),
    teacherBox: byId("experiment-teacher"), stop: byId("btn-experiment-stop"), reveal: byId("btn-experiment-reveal"),
    save: byId("btn-experiment-save"), end: byId("btn-experiment-end"),
    studentBox: byId("experiment-student"), pick: byId("experiment-pick"), pickLabel: byId("experiment-pick-label"),
    join: byId("btn-experiment-join"), back: byId("btn-experiment-back"), follow: byId("room-follow"),
    error: byId("experiment-error"), classBox: byId("experiment-class"), chart: placeCharts(byId("experiment-class"), ["class"]).class, ridges: byId("class-ridges"),
  },
});

// --- start ----------------------------------------------------------------------------------------

const { unknownPreset } = pageState.loadFromUrl(window.location.search);
applyHiding(configForm, hiddenByLink(window.location.search, Object.keys(boot.schema.properties)));
diagram.show(pageState.config);
if (unknownPreset) alerts.show("preset", "Unknown preset:", `“${unknownPreset}”; showing the default instead.`);
resetCharts(null);
refreshButtons();
socket.connect();

installFacade({
  version: boot.version, stats, player, socket, ridge, pageState, panels, loop, room, lessons, experiment, shownRun: () => shownRun,
  charts: sized,
});
