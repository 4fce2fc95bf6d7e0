"""How `python -m app` serves: uvicorn's options, and an HTTP protocol that bounds what one
connection can hold before the app ever sees a request.

uvicorn's default HTTP parser (httptools, when installed) accepts a header of any size: 128 MB
streamed over one connection stalled every session (frame gaps of 3 s, /healthz at 2-4 s),
and a request whose headers never finish stays open for ever. `GuardedH11Protocol` is uvicorn's
h11 protocol with three bounds, all in Settings:

- `max_header_bytes`: h11 refuses a request whose headers pass it (HTTP 400, connection closed);
- `header_timeout_s`: a connection whose request headers are not complete this long after it
  opened (or after its last response) is closed with 408, so silent partial requests cannot
  pile up;
- `max_connections`: past this many open connections a new one is closed at once, before it
  costs more than a socket.

Websockets leave this protocol at their upgrade, so none of this touches a session. Their own
protocol, `GuardedWebSocketProtocol`, is uvicorn's with one bound: pings (control frames the
app never sees, each answered with a pong) are rate-limited per connection (`max_pings_per_s`,
`ping_burst`); past it the connection is closed with 1008. 41,000 pings a second cost 57% of a
core before.

    uvicorn.run("app.main:app", **uvicorn_options(Settings()))
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from app.config import Settings
from app.security import RateLimit

__all__ = ["GuardedH11Protocol", "GuardedWebSocketProtocol", "guarded_protocol", "uvicorn_options"]

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 34\r\n\r\nthe request headers took too long\n"
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and a cap on connections."""

    header_timeout_s = 10.0
    max_connections = 768

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            logger.warning("refusing a connection: %d open (max_connections)", len(self.connections) - 1)
            transport.abort()  # before it costs anything but a socket
            return
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()  # keep-alive: the next request's headers get the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        """Armed while the peer owes us a request's headers; disarmed once they are complete
        (the request runs, or the connection became a websocket)."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)
        elif not waiting:
            self._disarm()

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:  # nothing of ours in flight
                self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol with a rate limit on the peer's pings."""

    max_pings_per_s = 5.0
    ping_burst = 20

    _pings: RateLimit | None = None

    def handle_ping(self) -> None:
        if self._pings is None:
            self._pings = RateLimit(self.max_pings_per_s, self.ping_burst)
        if self._pings.allow():
            super().handle_ping()  # the pong the parser queued goes out
            return
        self.conn.data_to_send()  # past the limit: the queued pong is dropped, not sent
        if not self.close_sent and not self.transport.is_closing():
            # The closing handshake, as uvicorn closes for the app: the peer reads the reason.
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1008, "reason": "too many pings"})
            self.conn.send_close(1008, "too many pings")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """GuardedH11Protocol with this server's bounds."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": settings.header_timeout_s, "max_connections": settings.max_connections},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options `python -m app` serves with (tests/conftest.py serves the same)."""
    websocket = type(
        "GuardedWebSocketProtocol",
        (GuardedWebSocketProtocol,),
        {"max_pings_per_s": settings.max_pings_per_s, "ping_burst": settings.ping_burst},
    )
    return {
        "http": guarded_protocol(settings),
        "ws": websocket,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "ws_per_message_deflate": False,  # ~8x the server CPU for frame fan-out when on
        "ws_max_size": 4 * settings.max_message_bytes,  # the app closes past 1x; the transport past 4x
        "ws_ping_interval": 20.0,  # ping/pong: a vanished peer is dropped within ~40 s
        "ws_ping_timeout": 20.0,
    }
