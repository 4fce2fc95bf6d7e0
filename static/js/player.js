// What a run is doing, as the server last said, and the messages that play, pause, step, reset
// and steer it. The server is the authority: states change when its `started`/`state` arrive.

const DEFAULTS = Object.freeze({
  lrEveryMs: 120, // learning-rate changes are coalesced: the server closes on > 20 messages/s
  wire: (config) => config, // the config as sent (main.js: without the fields its arch does not read)
});

const ACTIVE = new Set(["running", "paused"]);

// Messages that steer a run: a room's viewer sends none of them (the server would refuse them).
const STEERING = new Set(["start", "sweep", "pause", "resume", "step", "stop", "set"]);

export class Player {
  constructor(socket, options = {}) {
    this.socket = socket;
    this.options = { ...DEFAULTS, ...options };
    // offline, ready, running, paused, done, stopped, diverged, timeout, failed
    this.state = "offline";
    this.stateStep = null;
    this.pendingStart = false;    // a start was sent; neither `started` nor a refusal came back
    this.queuePosition = null;    // where that start waits for capacity (`queued`)
    this.pauseOnStart = false;    // pause the run as soon as it has started (step from idle)
    this.acceptFrames = false;    // false after reset until the next run starts
    this.lastConfig = null;       // the full config of the last `started`
    this.lastCompare = null;      // the `compare` that start sent (null: a single run)
    this.sentCompare = null;      // the `compare` of the start in flight
    this.sweeping = false;        // the run in progress is a learning-rate sweep
    this.twinEnds = {};           // compare mode: {A|B: state message} of a twin that ended alone
    this.lrSent = null;
    this.lrWanted = null;
    this.lrTimer = null;
    this.listeners = [];
    this.viewing = false;         // watching a room: the teacher steers, this page sends nothing that would
  }

  /** `handler(player)` whenever the state or a pending action changes. */
  onChange(handler) { this.listeners.push(handler); }

  get active() { return ACTIVE.has(this.state); }

  get connected() { return this.state !== "offline"; }

  /** Resume a paused run; otherwise start a new run with `config` (replacing any run); with
   *  `compare` ({field: value} for run B), twin runs A and B in lockstep. */
  play(config, compare = null) {
    if (this.state === "paused" && !this.pendingStart) return this.send({ type: "resume" });
    return this.start(config, compare);
  }

  start(config, compare = null) {
    // Fields the form could not read are sent as null: the server refuses them by name, rather
    // than a blank field silently taking its default. Fields the architecture does not read are
    // left out (options.wire): the server refuses those too.
    config = this.options.wire(config);
    const sent = this.send(compare ? { type: "start", config, compare } : { type: "start", config });
    return this.sent(sent, compare);
  }

  /** A learning-rate sweep of `config` (and its twin): short runs of `steps` at each of `lrs`. */
  sweep(config, compare, lrs, steps) {
    config = this.options.wire(config);
    return this.sent(this.send({ type: "sweep", config, compare: compare ?? null, lrs, steps }), compare);
  }

  sent(sent, compare) {
    if (sent) {
      this.sentCompare = compare;
      this.pendingStart = true;
      this.queuePosition = null;
      this.pauseOnStart = false;
      this.changed();
    }
    return sent;
  }

  pause() {
    if (this.pendingStart) {
      // The server takes no pause until the run exists: ask again once it has started.
      this.pauseOnStart = true;
      this.changed();
      return true;
    }
    if (this.state === "running") return this.send({ type: "pause" });
    return false;
  }

  togglePlay(config, compare = null) {
    if (this.pendingStart) {
      this.pauseOnStart = !this.pauseOnStart;
      this.changed();
      return true;
    }
    if (this.state === "running") return this.pause();
    return this.play(config, compare);
  }

  /** One emit interval while paused; pauses a running run; from idle, a new run that pauses
   *  as soon as it has started (on the untrained network, or within a frame or two of it). */
  step(config, compare = null) {
    if (this.pendingStart) return this.pause();
    if (this.state === "paused") return this.send({ type: "step" });
    if (this.state === "running") return this.pause();
    const sent = this.start(config, compare);
    if (sent) this.pause();
    return sent;
  }

  /** Stop the run (if any, or the start waiting for a slot) and drop its remaining frames. */
  reset() {
    this.acceptFrames = false;
    if (this.active || this.pendingStart) this.send({ type: "stop" });
    this.pendingStart = false;
    this.pauseOnStart = false;
    this.queuePosition = null;
    if (this.connected) this.state = "ready";
    this.changed();
  }

  /** Change the learning rate of the run in progress, from its next step on. Changes closer
   *  together than `lrEveryMs` are coalesced: the last one is always sent. */
  setLearningRate(lr) {
    if (!this.active || !Number.isFinite(lr)) return;
    this.lrWanted = lr;
    if (this.lrTimer !== null) return;
    const flush = () => {
      this.lrTimer = null;
      if (this.lrWanted === this.lrSent || !this.active) return;
      this.lrSent = this.lrWanted;
      this.send({ type: "set", lr: this.lrWanted });
      this.lrTimer = setTimeout(flush, this.options.lrEveryMs);
    };
    flush();
  }

  // --- server events -----------------------------------------------------------------------------

  opened() {
    this.state = "ready";
    this.changed();
  }

  closed() {
    this.state = "offline";
    this.pendingStart = false;
    this.pauseOnStart = false;
    this.queuePosition = null;
    this.acceptFrames = false;
    this.changed();
  }

  queued(message) {
    this.queuePosition = message.position;
    this.warming = Boolean(message.warming); // admitted: a worker is being started for it
    this.changed();
  }

  started(message) {
    this.lastConfig = message.config;
    this.lastCompare = this.sentCompare;
    this.sweeping = Boolean(message.sweep);
    this.twinEnds = {};
    this.lrSent = message.config.lr;
    this.pendingStart = false;
    this.queuePosition = null;
    this.acceptFrames = true;
    this.state = "running";
    if (this.pauseOnStart) {
      this.pauseOnStart = false;
      this.send({ type: "pause" });
    }
    this.changed();
  }

  stateChanged(message) {
    if (message.run) {
      // One twin ended (it diverged, say) while the other goes on: the run is still running.
      if (this.acceptFrames) this.twinEnds = { ...this.twinEnds, [message.run]: message };
      this.changed();
      return;
    }
    // A late "stopped" from a run we reset, or one replaced by a new start, changes nothing shown.
    if (message.state === "stopped" && (!this.acceptFrames || this.pendingStart)) return;
    this.state = message.state;
    this.stateStep = message.step;
    this.changed();
  }

  /** The server refused the last request (an error, or "busy"): nothing is pending any more. */
  refused() {
    this.pendingStart = false;
    this.pauseOnStart = false;
    this.queuePosition = null;
    this.changed();
  }

  send(message) {
    if (this.viewing && STEERING.has(message.type)) return false;
    return this.socket.send(message);
  }

  changed() {
    for (const handler of this.listeners) handler(this);
  }
}
