// Wiring: the page's parts, the socket's messages, and one render per animation frame.

import { Controls, sameConfig } from "./controls.js";
import { Player } from "./player.js";
import { Socket } from "./socket.js";
import { Alerts, StatusLine } from "./status.js";
import { installKeyboard } from "./keyboard.js";
import { RidgeChart } from "./charts/ridge.js";
import { BandChart } from "./charts/band.js";
import { LossChart } from "./charts/loss.js";
import { HealthChart } from "./charts/health.js";
import { RenderLoop } from "./charts/loop.js";

const byId = (id) => document.getElementById(id);
const boot = JSON.parse(byId("shiftscope-boot").textContent);

const ERROR_TITLES = {
  invalid_config: "Settings refused:",
  over_budget: "Too big for this server:",
  invalid_message: "Message refused:",
  bad_json: "Message refused:",
  run_failed: "The run failed:",
};
// Errors the server sends just before closing the socket: told once, with the close.
const CLOSING_CODES = new Set(["idle", "rate_limited", "too_large"]);

// --- parts ---------------------------------------------------------------------------------------

const controls = new Controls(byId("config-form"), {
  schema: boot.schema,
  presets: boot.presets,
  defaultPreset: boot.defaultPreset,
  story: { summary: byId("preset-summary"), look: byId("preset-look"), question: byId("preset-question") },
});
const ridge = new RidgeChart(byId("chart-ridge"), { labels: byId("ridge-labels"), axisTitle: byId("ridge-axis-title") });
const band = new BandChart(byId("chart-band"));
const charts = [ridge, band, new LossChart(byId("chart-loss")), new HealthChart(byId("chart-health"), byId("nonfinite"))];
const status = new StatusLine({
  root: byId("status"),
  state: byId("status-state"),
  step: byId("status-step"),
  steps: byId("status-steps"),
  rate: byId("status-rate"),
  lr: byId("status-lr"),
  device: byId("status-device"),
  params: byId("status-params"),
});
const alerts = new Alerts(byId("alerts"));
const socket = new Socket();
const player = new Player(socket);
const buttons = { play: byId("btn-play"), pause: byId("btn-pause"), step: byId("btn-step"), reset: byId("btn-reset") };
const connection = byId("connection");
const ridgeEmpty = byId("ridge-empty");
const bandLayer = byId("band-layer");
const applyHint = byId("apply-hint");

// --- rendering: the newest data, drawn at most once per animation frame ---------------------------

// Counters for tests and the curious (window.shiftscope); runFrames restarts with every run.
const stats = { framesReceived: 0, framesRendered: 0, runFrames: 0, runs: 0, lastStep: null, receivedStep: null };

const loop = new RenderLoop(ridge, charts.slice(1), (drewFrame) => {
  status.render();
  const empty = ridge.frame === null;
  if (ridgeEmpty.hidden === empty) ridgeEmpty.hidden = !empty;
  if (drewFrame) {
    stats.framesRendered += 1;
    stats.runFrames += 1;
    stats.lastStep = ridge.frame.step;
  }
});
const requestRender = () => loop.request();

function resetCharts(run) {
  for (const chart of charts) chart.reset(run);
  loop.flush();
}

// Each draw is sized to its chart's box: redraw a chart whose box changed (window, zoom, layout).
const resizeObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const chart = charts.find((c) => c.element === entry.target);
    if (!chart) continue;
    chart.size = { width: entry.contentRect.width, height: entry.contentRect.height };
    chart.dirty = true;
  }
  requestRender();
});
for (const chart of charts) resizeObserver.observe(chart.element);

// --- what the buttons show ------------------------------------------------------------------------

function refreshButtons() {
  const { state, connected } = player;
  const label = state === "paused" ? "Resume" : state === "running" ? "Restart" : "Play";
  buttons.play.querySelector(".btn-play-label").textContent = label;
  buttons.play.title = state === "running" ? "Restart with the settings shown" : `${label} (Space)`;
  // Offline and not retrying (closed for idling): Play reconnects, then plays.
  buttons.play.disabled = !connected && socket.reconnect;
  buttons.pause.disabled = !(state === "running" || player.pendingStart);
  buttons.step.disabled = !connected;
  buttons.reset.disabled = !connected;
  status.setState(shownState(), player.stateStep);
  refreshApplyHint();
}

/** The state badge: the server's state, or what the page is waiting for. */
function shownState() {
  if (player.state === "offline") return "offline";
  if (player.queuePosition !== null) return `waiting: #${player.queuePosition} in line`;
  if (player.pendingStart) return "starting";
  return player.state;
}

/** "Changed settings apply on Play" while a run uses other settings than the form shows. */
function refreshApplyHint() {
  const differs = player.active && player.lastConfig !== null
    && !sameConfig(player.lastConfig, controls.readConfig(), ["lr"]);
  if (applyHint.hidden === differs) applyHint.hidden = !differs;
}

player.onChange(refreshButtons);
controls.onChange(refreshApplyHint);
controls.onLearningRate((lr) => player.setLearningRate(lr));

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
    player.play(controls.readConfig());
  },
  togglePlay: () => (socket.isOpen || socket.reconnect ? player.togglePlay(controls.readConfig()) : actions.play()),
  pause: () => player.pause(),
  step: () => player.step(controls.readConfig()),
  reset: () => {
    player.reset();
    status.clear();
    stats.runFrames = 0;
    stats.lastStep = null;
    resetCharts(null);
  },
  selectNorm: (index) => controls.selectNorm(index),
  nudgeLearningRate: (direction) => controls.nudgeLearningRate(direction),
  focusPreset: () => controls.focusPreset(),
};

buttons.play.addEventListener("click", actions.play);
buttons.pause.addEventListener("click", actions.pause);
buttons.step.addEventListener("click", actions.step);
buttons.reset.addEventListener("click", actions.reset);
installKeyboard(document, actions);

for (const radio of document.querySelectorAll('input[name="ridge-values"]')) {
  radio.addEventListener("change", () => { ridge.setValues(radio.value); requestRender(); });
}
for (const radio of document.querySelectorAll('input[name="ridge-x"]')) {
  radio.addEventListener("change", () => { ridge.setXMode(radio.value); requestRender(); });
}
bandLayer.addEventListener("change", () => { band.select(Number(bandLayer.value)); requestRender(); });

function fillLayerMenu(layers) {
  const chosen = Number(bandLayer.value);
  const options = [new Option(`last layer (${layers.length})`, "-1")];
  layers.forEach((_, i) => options.push(new Option(`layer ${i + 1}`, String(i))));
  bandLayer.replaceChildren(...options);
  bandLayer.value = chosen < layers.length ? String(chosen) : "-1";
  band.select(Number(bandLayer.value));
}

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
  stats.runFrames = 0;
  stats.lastStep = null;
  stats.receivedStep = null;
  controls.clearErrors();
  alerts.dismiss("error");
  alerts.dismiss("busy");
  player.started(message);
  status.setRun(message);
  fillLayerMenu(message.layers);
  resetCharts(message);
});

socket.on("frame", (message) => {
  if (!player.acceptFrames) return;
  stats.framesReceived += 1;
  stats.receivedStep = message.step;
  // History charts record every frame (test accuracy comes in a few frames only); drawing waits.
  for (const chart of charts) chart.update(message);
  status.update(message);
  requestRender();
});

socket.on("state", (message) => player.stateChanged(message));

socket.on("queued", (message) => player.queued(message));

socket.on("busy", (message) => {
  // Every training slot is taken; the server closes this socket and the page reconnects.
  player.refused();
  alerts.show("busy", "Server busy:", message.message);
});

socket.on("error", (message) => {
  if (message.code === "no_run") return; // a pause or lr change that raced the run's end: harmless
  if (CLOSING_CODES.has(message.code)) {
    closingWords = message.message;
    return;
  }
  player.refused();
  const unplaced = controls.showErrors(message.errors);
  const title = ERROR_TITLES[message.code] ?? "Error:";
  const detail = message.errors?.length && !unplaced.length
    ? `${message.message} (see the highlighted field${message.errors.length > 1 ? "s" : ""})`
    : message.message;
  alerts.show("error", title, detail);
});

// --- start ----------------------------------------------------------------------------------------

const { unknownPreset } = controls.loadFromUrl();
if (unknownPreset) alerts.show("preset", "Unknown preset:", `“${unknownPreset}”; showing the default instead.`);
resetCharts(null);
refreshButtons();
socket.connect();

// A read-only window for tests and the curious: counters and the last run's config.
window.shiftscope = Object.freeze({
  version: boot.version,
  get framesReceived() { return stats.framesReceived; },
  get framesRendered() { return stats.framesRendered; },
  get runFrames() { return stats.runFrames; },
  get runs() { return stats.runs; },
  get lastStep() { return stats.lastStep; },
  get receivedStep() { return stats.receivedStep; },
  get state() { return player.state; },
  get connected() { return socket.isOpen; },
  get lastConfig() { return player.lastConfig ? { ...player.lastConfig } : null; },
  get layers() { return [...ridge.layers]; },
  get formConfig() { return controls.readConfig(); },
});
