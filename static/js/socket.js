// The websocket to the server: connect, reconnect with backoff, dispatch messages by `type`.
// The contract is docs/protocol.md; unknown message types and fields are ignored.

const DEFAULTS = Object.freeze({
  path: "ws",             // relative to the page, so a path prefix behind a proxy still works
  firstRetryMs: 500,
  maxRetryMs: 8000,
});

/** The ws:// (or wss://) URL of `path` next to the current page, carrying the page's access
 *  `token` when it has one (a server started with an access token refuses sockets without it). */
export function socketUrl(path = DEFAULTS.path, base = window.location.href) {
  const url = new URL(path, base);
  const token = new URL(base).searchParams.get("token");
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = token ? `?${new URLSearchParams({ token })}` : "";
  return url.href;
}

/** One websocket session that comes back by itself after the server restarts or the network drops. */
export class Socket {
  constructor(url = socketUrl(), options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.handlers = new Map();       // type -> [handler]
    this.ws = null;
    this.retryMs = this.options.firstRetryMs;
    this.retryTimer = null;
    this.reconnect = true; // false after hold(): stay closed until connect() is called again
    this.framesIn = 0;     // `frame` messages received on the current connection
  }

  /** Call `handler(message)` for every message whose type is `type`; also "open" and "close". */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(handler);
    return this;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.reconnect = true;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return; // connecting or open already
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retryMs = this.options.firstRetryMs;
      this.framesIn = 0; // the server counts the frames it sends per connection
      this.emit("open", {});
    });
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      // Jitter keeps a room of projectors from reconnecting in lockstep after a restart.
      const delay = Math.round(this.retryMs * (0.5 + Math.random() * 0.5));
      this.retryMs = Math.min(this.retryMs * 2, this.options.maxRetryMs);
      const retryInMs = this.reconnect ? delay : null;
      if (retryInMs !== null) this.retryTimer = setTimeout(() => this.connect(), retryInMs);
      // Handlers may call hold() to cancel the retry (the server said why it closed).
      this.emit("close", { code: event.code, reason: event.reason, retryInMs });
    });
    // An "error" event is always followed by "close", which schedules the retry.
  }

  /** Stay closed: no reconnection until connect() is called again. */
  hold() {
    this.reconnect = false;
    clearTimeout(this.retryTimer);
  }

  /** Send one message; false when the socket is not open (the caller tells the user). */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return; // the server only sends JSON; a garbled frame is not worth a console error
    }
    if (!message || typeof message.type !== "string") return;
    if (message.type === "frame") this.framesIn += 1; // what `seen` acknowledges (flow control)
    this.emit(message.type, message);
  }

  /** Flow control: tell the server how many frames have arrived on this connection, at most
   *  every `everyMs` and only when more came. The server then keeps at most a small window of
   *  frames in flight, so a slow device gets the newest frame, not a growing backlog. */
  acknowledgeFrames(everyMs = 250) {
    let told = 0;
    setInterval(() => {
      if (this.isOpen && this.framesIn !== told && this.send({ type: "seen", frames: this.framesIn })) told = this.framesIn;
    }, everyMs);
    this.on("open", () => { told = 0; });
  }

  emit(type, message) {
    for (const handler of this.handlers.get(type) ?? []) handler(message);
  }
}
