"""The web app: create_app(), the lifespan, HTTP routes and the websocket endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import plotly
import segno
import torch
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app import __version__
from app.bodies import read_bounded
from app.config import Settings
from app.export import export_script, script_name
from app.lessons import LESSONS
from app.monitor import LoopLagMonitor
from app.presets import DEFAULT_PRESET, PRESETS
from app.relay import RoomRelay
from app.room_recordings import receive_recording, send_recording
from app.rooms import Rooms, normalise_code
from app.runner import Outbox, encode
from app.schemas import ProtocolError, config_schema, parse_client_message, parse_twin_configs
from app.security import (
    FailureThrottle,
    RateLimit,
    SecurityHeaders,
    TrustedHosts,
    origin_allowed,
    token_valid,
)
from app.session import Session, table_for
from app.uploads import TOKEN_HEADER, receive_upload, session_of, upload_hello
from app.workers import WorkerPool

ROOT = Path(__file__).resolve().parent.parent
# Frames a client that acknowledges (`seen`) may have in flight: ~0.5 s at 30 frames/s, above
# what arrives between two of the page's acknowledgements (every 250 ms) plus a round trip. A
# reader of r frames a second then sees frames at most ~FLOW_WINDOW / r seconds old.
FLOW_WINDOW = 16
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.sessions = set()
        app.state.clients = Counter()  # open connections per client address
        app.state.client_limits = {}  # the message rate of each address with a connection open
        app.state.token_failures = FailureThrottle(
            settings.token_failure_burst, settings.token_failures_per_minute
        )
        app.state.cuda_available = torch.cuda.is_available()
        app.state.pool = WorkerPool(
            settings.run_slots(),
            settings.max_queue,
            memory_bytes=settings.worker_memory_bytes,
            recycle_bytes=settings.worker_recycle_bytes,
            capacity=settings.run_cores(),
            spares=settings.spare_workers,
            niceness=settings.worker_niceness,
        )
        app.state.loop_lag = LoopLagMonitor()
        app.state.upload_parsers = asyncio.Semaphore(settings.upload_parsers)  # CSV parses at once
        app.state.rooms = Rooms.from_settings(settings)
        relay = None
        if settings.redis_url and app.state.rooms is not None:
            relay = RoomRelay(
                settings.redis_url, app.state.rooms, settings.room_ttl_s, settings.replica_name or None
            )
            app.state.rooms.relay = relay
            await relay.start()
        app.state.relay = relay
        await app.state.pool.start()
        app.state.loop_lag.start()
        expiry = asyncio.create_task(_expire_rooms(app.state.rooms)) if app.state.rooms is not None else None
        yield
        if expiry is not None:
            expiry.cancel()
        for session in list(app.state.sessions):
            session.close()
        await app.state.loop_lag.stop()
        if relay is not None:
            await relay.stop()
        await app.state.pool.close()

    app = FastAPI(title="ShiftScope", version=__version__, lifespan=lifespan)
    # Covers websockets too (Host only): a DNS-rebinding page cannot reach a loopback server.
    app.add_middleware(
        TrustedHosts, allowed_hosts=settings.trusted_hosts(), allow_ip_hosts=settings.ip_hosts_allowed()
    )
    app.add_middleware(SecurityHeaders)  # CSP, no framing, no referrer (docs/security.md)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    templates = Jinja2Templates(directory=ROOT / "templates")

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "version": __version__,
                "presets": [p.to_wire() for p in PRESETS],
                "default_preset": DEFAULT_PRESET.id,
                "schema": config_schema(),
                "lessons": [lesson.to_wire() for lesson in LESSONS],
            },
        )

    @app.get("/r/{code}")
    async def room_link(code: str) -> RedirectResponse:
        """A room's join link: the lab page, told to join room `code` as a viewer. The redirect is
        relative, like the page's own URLs, so it works under a proxy's path prefix too."""
        return RedirectResponse(f"../?{urlencode({'room': normalise_code(code)[:16]})}", status_code=307)

    @app.get("/r/{code}/qr.svg", include_in_schema=False)
    async def room_qr(request: Request, code: str) -> Response:
        """The join link of room `code` as a QR code (SVG), for students' phones. Drawn for any
        well-formed code, open or not: it tells nothing about which rooms exist."""
        link = str(request.url_for("room_link", code=normalise_code(code)[:16]))
        svg = io.BytesIO()
        segno.make(link, error="m").save(
            svg, kind="svg", scale=10, border=2, dark="#121821", light="#ffffff", title=f"Join: {link}"
        )
        return Response(svg.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready when a start would get a warm worker at once: the spare workers are warm (503
        while they warm up, ~2.4 s after start-up, or while a lost one is replaced). /healthz
        only says the server is alive."""
        pool: WorkerPool = app.state.pool
        body = {
            "status": "ready" if pool.ready else "warming",
            "workers_warm": pool.warm_count,
            "spares": pool.spares,
        }
        return JSONResponse(body, status_code=200 if pool.ready else 503)

    @app.post("/api/export-script")
    async def export_run(request: Request) -> Response:
        """The run a config describes as one standalone PyTorch script (app/export.py): body
        {"config": {...}, "compare": {...}?, "run": "A" | "B"?}, validated as a `start` is."""
        try:
            raw = await _bounded_json(request, settings.max_message_bytes)
            config, compare, which = raw.get("config"), raw.get("compare"), raw.get("run", "A")
            if not isinstance(config, dict) or not (compare is None or isinstance(compare, dict)):
                raise ProtocolError(
                    "bad_request", "the body needs 'config' (an object) and may have 'compare'"
                )
            if which not in ("A", "B") or (which == "B" and compare is None):
                raise ProtocolError("bad_request", "'run' is A, or B when there is a 'compare'")
            first, second = parse_twin_configs(config, compare)
            spec = (second if which == "B" and second is not None else first).to_spec()
            # A run on uploaded data embeds the session's standardised table (X-Upload-Token).
            session = session_of(app.state.sessions, request.headers.get(TOKEN_HEADER))
            table = table_for(spec, session.table if session is not None else None)
        except ProtocolError as exc:
            status_code = 413 if exc.code == "too_large" else 422
            return JSONResponse(exc.to_wire(), status_code=status_code)
        text = await asyncio.to_thread(export_script, spec, table)
        disposition = f'attachment; filename="{script_name(spec)}"'
        return Response(
            text, media_type="text/x-python; charset=utf-8", headers={"Content-Disposition": disposition}
        )

    @app.post("/api/dataset")
    async def upload_dataset(request: Request) -> Response:
        """Your own CSV into this page's session (app/uploads.py; docs/protocol.md, "Your own data")."""
        return await receive_upload(request, app.state.sessions, settings, app.state.upload_parsers)

    @app.post("/api/rooms/{code}/recording")
    async def room_recording_in(request: Request, code: str) -> Response:
        """A recording the room's teacher opened, for every viewer (app/room_recordings.py)."""
        return await receive_recording(request, code, app.state.rooms, settings)

    @app.get("/api/rooms/{code}/recording")
    async def room_recording_out(request: Request, code: str) -> Response:
        return send_recording(request, code, app.state.sessions)

    @app.get("/api/config-schema")
    async def get_config_schema() -> dict[str, Any]:
        return config_schema()

    @app.get("/api/presets")
    async def get_presets() -> list[dict[str, Any]]:
        return [p.to_wire() for p in PRESETS]

    @app.get("/api/lessons")
    async def get_lessons() -> list[dict[str, Any]]:
        return [lesson.to_wire() for lesson in LESSONS]

    @app.get("/api/stats")
    async def get_stats() -> dict[str, Any]:
        """Load and health numbers for operators and bench/load.py."""
        pool: WorkerPool = app.state.pool
        sessions = app.state.sessions
        return {
            "sessions": len(sessions),
            "clients": len(app.state.clients),
            "runs_active": sum(1 for s in sessions if s.run is not None and s.run.active),
            "run_slots": pool.max_workers,
            "runs_admitted": pool.running,
            "load": round(pool.load, 3),  # the admitted runs' floors, in cores
            "capacity": pool.capacity,
            "workers_alive": sum(1 for w in pool.workers if w.alive),
            "worker_crashes": pool.crashes,
            "workers_idle": pool.idle_count,
            "queue_length": pool.queue_length,
            "frames_dropped": sum(s.outbox.frames_dropped for s in sessions),
            "rooms": len(app.state.rooms) if app.state.rooms is not None else 0,
            "room_viewers": sum(1 for s in sessions if s.watching is not None),
            "loop_lag": app.state.loop_lag.summary(),
            "uploads": sum(1 for s in sessions if s.table is not None),
            "upload_bytes": sum(s.table.nbytes for s in sessions if s.table is not None),
            "relay": app.state.relay.status() if app.state.relay is not None else None,
            "server_pid": os.getpid(),
            "worker_pids": [w.pid for w in pool.workers],
        }

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        # Served from the installed plotly package: no CDN, works offline.
        return FileResponse(
            PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        # Checked before accept: a refused handshake gets HTTP 403 and no session exists.
        if not origin_allowed(
            websocket.headers.get("origin"), websocket.headers.get("host"), settings.allowed_origins
        ):
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin not allowed")
            return
        client = websocket.client.host if websocket.client else "unknown"
        if settings.access_token:
            throttle: FailureThrottle = app.state.token_failures
            # An address out of wrong guesses is refused before its token is even looked at.
            if throttle.blocked(client):
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="too many wrong tokens")
                return
            if not token_valid(websocket.query_params.get("token"), settings.access_token):
                throttle.failed(client)
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="access token required")
                return
        clients: Counter[str] = app.state.clients
        if clients[client] >= settings.max_connections_per_client or len(app.state.sessions) >= (
            settings.max_sessions
        ):
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="too many connections")
            return
        clients[client] += 1
        limits: dict[str, RateLimit] = app.state.client_limits
        if client not in limits:  # one bucket per address, shared by its connections
            limits[client] = RateLimit(settings.max_messages_per_s_per_client, settings.client_message_burst)
        try:
            await websocket.accept()
            await serve_session(websocket, app, client, limits[client])
        finally:
            clients[client] -= 1
            if clients[client] <= 0:
                del clients[client]
                limits.pop(client, None)

    return app


async def _bounded_json(request: Request, limit: int) -> dict[str, Any]:
    """A request's JSON object body, read no further than `limit` bytes."""
    body = await read_bounded(request, limit)
    if body is None:
        raise ProtocolError("too_large", f"the body is larger than {limit} bytes")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("bad_json", "the body must be a JSON object")
    return raw


async def _expire_rooms(rooms: Rooms) -> None:
    """End rooms whose teacher stayed away past the grace period (viewers are told)."""
    while True:
        await asyncio.sleep(1.0)
        rooms.expire()


async def serve_session(websocket: WebSocket, app: FastAPI, client: str, address_limit: RateLimit) -> None:
    """Receive loop for one connection, with a sender task draining the session's outbox."""
    settings: Settings = app.state.settings
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def wake_sender() -> None:  # called from training threads
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody to wake
            loop.call_soon_threadsafe(wake.set)

    outbox = Outbox(wake_sender)
    pool: WorkerPool = app.state.pool
    closing: list[asyncio.Task[None]] = []

    def close_busy() -> None:
        # Everything pending (the 'busy' message last) goes out, then a clean "try again later".
        closing.append(asyncio.create_task(_close(websocket, sender, outbox.take(), 1013, "busy")))

    def jobs_of(address: str) -> int:
        return sum(1 for other in app.state.sessions if other.client == address and other.holds_job)

    flow = FlowWindow()

    def seen(frames: int) -> None:
        flow.seen(frames)
        wake.set()  # frames held for this client may go now

    session = Session(
        outbox, settings, pool, app.state.cuda_available, close_busy, client, jobs_of, app.state.rooms, seen
    )
    limiter = RateLimit(settings.max_messages_per_s, settings.message_burst)
    app.state.sessions.add(session)
    sender = asyncio.create_task(_send_loop(websocket, outbox, wake, settings.send_timeout_s, flow))
    outbox.put(
        {
            "type": "hello",
            "version": __version__,
            "devices": ["cpu", "cuda"] if app.state.cuda_available else ["cpu"],
            "limits": {
                "max_message_bytes": settings.max_message_bytes,
                "max_messages_per_s": settings.max_messages_per_s,
                "max_run_seconds": settings.max_run_seconds,
                "runs": pool.max_workers,
                "queue": pool.max_queue,
            },
            "upload": upload_hello(session, settings),  # this connection's own data (app/uploads.py)
        }
    )
    try:
        while True:
            try:
                message = await _next_message(websocket, sender, settings.idle_timeout_s)
            except TimeoutError:
                if session.active:
                    continue  # watching a run (or waiting for one) is not idling
                await _policy_close(websocket, outbox, sender, "idle", "closed after a long idle time")
                break
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if not limiter.allow():
                limit = f"at most {settings.max_messages_per_s:g} messages a second"
                await _policy_close(websocket, outbox, sender, "rate_limited", f"too many messages: {limit}")
                break
            # Acknowledgements (flow control) are tiny and cheap: a class behind one NAT address
            # sends several a second each, so they count against the connection's limit only.
            acknowledgement = text is not None and len(text) < 64 and text.startswith('{"type":"seen"')
            if not acknowledgement and not address_limit.allow():
                limit = f"at most {settings.max_messages_per_s_per_client:g} a second from one address"
                await _policy_close(websocket, outbox, sender, "rate_limited", f"too many messages: {limit}")
                break
            size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
            if size > settings.max_message_bytes:
                limit = f"a message may be at most {settings.max_message_bytes} bytes (got {size})"
                await _policy_close(websocket, outbox, sender, "too_large", limit)
                break
            try:
                if text is None:
                    raise ProtocolError("bad_json", "binary frames are not understood; send JSON text")
                session.handle(parse_client_message(text))
            except ProtocolError as refusal:
                outbox.put(refusal.to_wire())
    except WebSocketDisconnect:
        pass
    finally:
        session.close()
        app.state.sessions.discard(session)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        for task in closing:
            with contextlib.suppress(Exception):
                await task


async def _policy_close(
    websocket: WebSocket, outbox: Outbox, sender: asyncio.Task[None], code: str, message: str
) -> None:
    """Say why in an error message, then close with 1008 (policy violation)."""
    outbox.take()  # what was pending no longer matters to a client we are closing on
    error = {"type": "error", "code": code, "message": message, "errors": []}
    await _close(websocket, sender, [encode(error)], status.WS_1008_POLICY_VIOLATION, code)


async def _close(
    websocket: WebSocket, sender: asyncio.Task[None], last_words: list[str], code: int, reason: str
) -> None:
    """Stop the sender (one writer at a time), send `last_words` (best effort), close."""
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    with contextlib.suppress(Exception):
        for text in last_words:
            await asyncio.wait_for(websocket.send_text(text), 1.0)
        await websocket.close(code=code, reason=reason)


async def _next_message(websocket: WebSocket, sender: asyncio.Task[None], timeout: float) -> Any:
    """The next ASGI message; a disconnect once the sender has ended (the client stopped reading,
    or went away); TimeoutError after `timeout` seconds without either."""
    receive = asyncio.ensure_future(websocket.receive())
    try:
        done, _ = await asyncio.wait({receive, sender}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        receive.cancel()  # a no-op once done; a cancelled receive loses no message
    if receive in done:
        return receive.result()
    if sender in done:
        return {"type": "websocket.disconnect", "code": status.WS_1006_ABNORMAL_CLOSURE}
    raise TimeoutError


class FlowWindow:
    """Frames sent to one client and frames it says it has received (`seen` messages). Off until
    the client's first `seen`: then at most FLOW_WINDOW frames are in flight, so a client that
    reads slower than the run writes gets the newest frame, not an ever older backlog: a viewer
    reading a frame every 0.1 s from a 30 frames/s room saw frames 13.5 s old after 20 s, and
    now ~1.6 s (FLOW_WINDOW / its 10 reads a second), whatever the time."""

    def __init__(self, window: int = FLOW_WINDOW) -> None:
        self.window = window
        self.sent = 0
        self.acknowledged: int | None = None

    def seen(self, frames: int) -> None:
        self.acknowledged = min(frames, self.sent)  # a client cannot see what was never sent

    @property
    def full(self) -> bool:
        return self.acknowledged is not None and self.sent - self.acknowledged >= self.window


async def _send_loop(
    websocket: WebSocket, outbox: Outbox, wake: asyncio.Event, send_timeout: float, flow: FlowWindow
) -> None:
    """Drains the outbox. A send waits only while the socket's buffers are full: one that waits
    `send_timeout` seconds means the client stopped reading, and ending here ends the session.
    While the client's flow window is full, ordinary frames go back to their slot (the newest
    one waits there); control messages and measurement-carrying frames always go."""
    try:
        while True:
            await wake.wait()
            wake.clear()
            for text, slot, kept in outbox.take_tagged():
                if slot is not None and not kept and flow.full:
                    outbox.put_back(text, slot)
                    continue
                # Not wait_for: on 3.11 it can swallow the cancel that _close sends this task.
                async with asyncio.timeout(send_timeout):
                    await websocket.send_text(text)
                if slot is not None:
                    flow.sent += 1
    except TimeoutError:
        logger.warning("a client read nothing for %g s; dropping its session", send_timeout)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client went away; the receive loop cleans up


app = create_app()
