// Rooms: a teacher shares their run with the class; students watch it live (docs/protocol.md,
// "Rooms"). The teacher's page sends its PageState whenever it changes; a viewer's page shows
// the teacher's run and, while it follows, the teacher's page state. A viewer cannot steer the
// room: the Player sends nothing that would (the server refuses it too), and the form is inert.
//
//   const room = new RoomClient({ socket, player, pageState, alerts, elements, onViewing });
//   room.share();            // teacher: open a room; its code, link and key come back
//   room.join("K7P3QX");     // viewer: history, then live frames

const STORED = "shiftscope-room"; // sessionStorage: the teacher's {code, key}, for a reload
const STATE_EVERY_MS = 300;       // how often the teacher's page state is compared and sent
export const ROOM_ERRORS = new Set([
  "no_room", "room_locked", "room_full", "join_limited", "bad_key", "room_limit", "in_room", "not_teacher", "no_rooms",
  "room_elsewhere",
]);

export function roomCodeFromUrl(search = window.location.search) {
  const code = new URLSearchParams(search).get("room");
  return code ? code.toUpperCase().replace(/[^0-9A-Z]/g, "").slice(0, 16) : null;
}

/** The join link of room `code`, next to this page (a path prefix behind a proxy is kept). */
export function joinLink(code, base = window.location.href) {
  return new URL(`r/${encodeURIComponent(code)}`, new URL(".", base)).href;
}

function dropRoomFromUrl() {
  const url = new URL(window.location.href);
  if (!url.searchParams.has("room")) return;
  url.searchParams.delete("room");
  window.history.replaceState(null, "", `${url.pathname}${url.search}${url.hash}`);
}

export class RoomClient {
  constructor({
    socket, player, pageState, alerts, elements, onViewing = () => {}, replay, extraState = () => ({}), applyExtra = () => {},
  }) {
    this.socket = socket;
    this.player = player;
    this.pageState = pageState;
    this.alerts = alerts;
    this.el = elements;
    this.onViewing = onViewing;
    this.extraState = extraState; // what the room shows beside the page state (presentation mode)
    this.applyExtra = applyExtra;
    this.replay = replay ?? ((message) => socket.emit(message.type, message));
    this.role = null;          // "teacher" | "viewer" | null
    this.code = null;
    this.following = true;
    this.wanted = roomCodeFromUrl();  // a room to join (the join link, or a typed code)
    this.sentState = null;
    this.stateTimer = null;
    socket.on("open", () => this.opened());
    socket.on("room", (message) => this.roomMessage(message));
    socket.on("history", (message) => {
      for (const inner of message.messages ?? []) this.replay(inner);
    });
    socket.on("room_state", (message) => this.follow(message.state));
    socket.on("room_waiting", (message) => this.status(`The teacher's connection dropped; waiting up to ${Math.round(message.grace_s)} s for them…`));
    socket.on("room_ended", (message) => this.ended(message.reason));
    // Rooms across replicas: this server lost its link to the room's server for a moment; the
    // room's run comes again as a `history` once it is back (docs/protocol.md).
    socket.on("room_reconnecting", () => this.status("Reconnecting to the room…"));
    socket.on("room_left", () => this.left());
    socket.on("error", (message) => this.error(message));
    elements.share?.addEventListener("click", () => this.share());
    elements.lock?.addEventListener("click", () => this.setLocked(elements.lock.getAttribute("aria-pressed") !== "true"));
    elements.end?.addEventListener("click", () => this.socket.send({ type: "room_close" }));
    elements.leave?.addEventListener("click", () => this.leave());
    elements.fork?.addEventListener("click", () => { this.forking = true; this.leave(); });
    elements.follow?.addEventListener("change", () => {
      this.following = elements.follow.checked;
      if (this.following && this.lastState) this.apply(this.lastState);
    });
    elements.joinForm?.addEventListener("submit", (event) => {
      event.preventDefault();
      const code = elements.joinInput.value.toUpperCase().replace(/[^0-9A-Z]/g, "");
      if (code) this.join(code);
    });
    this.render();
  }

  get viewing() { return this.role === "viewer"; }

  /** On every (re)connection: a viewer joins again (the history restarts its charts); a teacher
   *  who reloaded takes their room back with the stored key. */
  opened() {
    const stored = this.stored();
    if (this.wanted) this.socket.send({ type: "join", code: this.wanted });
    else if (stored) this.socket.send({ type: "room_rejoin", code: stored.code, key: stored.key });
  }

  share() { return this.socket.send({ type: "room_open" }); }

  join(code) {
    this.wanted = code;
    return this.socket.send({ type: "join", code });
  }

  leave() { return this.socket.send({ type: "leave" }); }

  setLocked(locked) { return this.socket.send({ type: "room_lock", locked }); }

  roomMessage(message) {
    this.code = message.code;
    if (message.role === "teacher") {
      if (message.key) sessionStorage.setItem(STORED, JSON.stringify({ code: message.code, key: message.key }));
      this.setRole("teacher");
      this.startSendingState();
    } else {
      this.setRole("viewer");
      if ("state" in message) this.follow(message.state);
      this.status(message.teacher ? "Following the teacher's run" : "The teacher is away; waiting for them…");
    }
    this.viewers = message.viewers;
    this.locked = message.locked;
    this.render();
  }

  follow(state) {
    this.lastState = state;
    if (this.following) this.apply(state);
  }

  apply(state) {
    if (!state || !Object.keys(state).length) return;
    this.pageState.apply(state);
    this.applyExtra(state);
  }

  startSendingState() {
    clearInterval(this.stateTimer);
    this.sentState = null;
    const send = () => {
      if (this.role !== "teacher" || !this.socket.isOpen) return;
      const text = JSON.stringify({ ...this.pageState.get(), ...this.extraState() });
      if (text !== this.sentState && this.socket.send({ type: "room_state", state: JSON.parse(text) })) this.sentState = text;
    };
    send();
    this.stateTimer = setInterval(send, STATE_EVERY_MS);
  }

  ended(reason) {
    const wasViewer = this.viewing;
    this.reset();
    this.alerts.show("room", "The room has ended:", wasViewer ? `${reason}. The charts show where it stopped; the lab is yours again.` : reason);
  }

  left() {
    const forking = this.forking;
    this.forking = false;
    this.reset();
    if (forking) this.el.onFork?.();
  }

  reset() {
    clearInterval(this.stateTimer);
    sessionStorage.removeItem(STORED);
    dropRoomFromUrl();
    this.wanted = null;
    this.code = null;
    this.setRole(null);
    this.render();
  }

  error(message) {
    if (!ROOM_ERRORS.has(message.code)) return;
    if (message.code === "bad_key") sessionStorage.removeItem(STORED);
    if (message.code === "no_room" || message.code === "room_locked" || message.code === "room_full") {
      this.wanted = null;
      dropRoomFromUrl();
    }
    this.alerts.show("room", "Room:", message.message);
  }

  stored() {
    try {
      return JSON.parse(sessionStorage.getItem(STORED) ?? "null");
    } catch {
      return null;
    }
  }

  setRole(role) {
    if (role === this.role) return;
    this.role = role;
    this.player.viewing = role === "viewer";
    this.onViewing(role === "viewer");
  }

  status(text) {
    if (this.el.status) this.el.status.textContent = text;
  }

  render() {
    const { el } = this;
    document.getElementById("app")?.setAttribute("data-room-role", this.role ?? "none");
    if (el.teacherBox) el.teacherBox.hidden = this.role !== "teacher";
    if (el.viewerBox) el.viewerBox.hidden = this.role !== "viewer";
    if (el.share) el.share.hidden = this.role !== null;
    if (el.joinForm) el.joinForm.hidden = this.role !== null;
    if (this.code) {
      for (const code of el.codes ?? []) code.textContent = this.code;
      if (el.link) {
        el.link.href = joinLink(this.code);
        el.link.textContent = joinLink(this.code);
      }
      const qr = `${joinLink(this.code)}/qr.svg`;
      if (el.qr && el.qr.getAttribute("src") !== qr) el.qr.src = qr;
      if (el.qrLink) el.qrLink.href = qr;
    }
    if (el.viewers) el.viewers.textContent = `${this.viewers ?? 0} watching`;
    if (el.lock) {
      el.lock.setAttribute("aria-pressed", String(Boolean(this.locked)));
      el.lock.textContent = this.locked ? "Unlock joining" : "Lock joining";
    }
  }
}
