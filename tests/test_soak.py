"""Soak: a client that never reads, and many short sessions, leave the server as it was.

The server runs in this process (tests.conftest.serve), so its RSS is this process's VmRSS and
its threads are ours to count.
"""

from __future__ import annotations

import base64
import gc
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from app.config import Settings
from tests.conftest import LiveServer, serve
from tests.test_web import SMALL, _open, _send, _until, eventually

SEND_TIMEOUT_S = 3.0  # the server's send_timeout_s here: how long a non-reading client is kept
# Frames of ~4 KB at up to 400 a second: a client that reads nothing fills the socket buffers fast.
FLOOD = {"dataset": "xor", "depth": 8, "width": 16, "bins": 256, "emit_every": 1, "steps": 100_000}
FLOOD_PACE = 300
NORMAL = {**SMALL, "steps": 100_000, "max_steps_per_s": 100}  # emit_every 5: 20 frames a second
TINY = {"dataset": "xor", "depth": 2, "width": 8, "bins": 8, "emit_every": 1, "steps": 100_000}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # Pings after 5 s, dropping at 10 s: by then the stuck client's buffers are full and uvicorn's
    # ping timeout cannot drop it (its transport close waits for a flush that never comes); the
    # app's send timeout does. Earlier, a ping timeout would drop it before its buffers fill.
    settings = Settings(max_runs=2, send_timeout_s=SEND_TIMEOUT_S)
    with serve(settings, ws_ping_interval=5.0, ws_ping_timeout=5.0) as live:
        pool = live.app.state.pool
        eventually(lambda: pool.busy_count == 0, timeout=60)
        yield live


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _masked_text_frame(payload: bytes) -> bytes:
    """One final text frame, masked as a client must (RFC 6455 section 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return header + mask + masked


def _never_reading_client(server: LiveServer, message: dict) -> socket.socket:
    """A raw socket that completes the handshake, sends `message`, and then reads nothing more."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # byte by byte: not one byte past the headers
        chunk = sock.recv(1)
        assert chunk, "the server closed the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    sock.sendall(_masked_text_frame(orjson.dumps(message)))
    return sock


def test_a_client_that_never_reads_is_dropped_and_stalls_no_one(server: LiveServer) -> None:
    app, pool = server.app, server.app.state.pool
    rss_before = rss_mb()
    with _open(server) as normal:
        _send(normal, {"type": "start", "config": NORMAL})
        _until(normal, lambda m: m["type"] == "frame")
        (normal_session,) = app.state.sessions

        stuck = _never_reading_client(
            server, {"type": "start", "config": {**FLOOD, "max_steps_per_s": FLOOD_PACE}}
        )
        try:
            eventually(lambda: len(app.state.sessions) == 2)
            (slow,) = app.state.sessions - {normal_session}
            eventually(lambda: slow.run is not None and pool.idle_count == 0)

            # The stuck client's sender blocks once its socket buffers are full; its frames then
            # coalesce in its one-frame slot (frames_dropped counts them) until, send_timeout_s
            # later, its session ends. All the while the normal client must get its frames: a
            # broadcast loop shared by both would stall it until the stuck one is dropped.
            steps: list[int] = []
            during: list[int] = []  # the normal client's frames while the stuck one stalled
            after: list[int] = []  # and after it was dropped
            stalled = dropped = False
            deadline = time.monotonic() + 30  # a deadline for the drop, not a speed claim
            while len(after) < 5:
                assert time.monotonic() < deadline, "the never-reading client was not dropped within 30 s"
                stalled = stalled or slow.outbox.frames_dropped > 0
                dropped = dropped or slow not in app.state.sessions
                message = orjson.loads(normal.recv(timeout=5))
                if message["type"] == "frame":
                    steps.append(message["step"])
                    if dropped:
                        after.append(message["step"])
                    elif stalled:
                        during.append(message["step"])

            # The stuck client was held (frames coalescing), then dropped: its run stopped and its
            # slot went back to the pool.
            assert slow.outbox.frames_dropped > 10
            eventually(lambda: pool.idle_count == 1, timeout=5)
            assert app.state.sessions == {normal_session}
            # The normal client's frames kept coming while the stuck one stalled (a shared loop
            # would have held them back until the drop) and after it, in order, none repeated.
            print(
                f"{len(during)} frames to the normal client during the stall;",
                f"{slow.outbox.frames_dropped} coalesced for the stuck one",
            )
            assert len(during) >= 10, f"the normal client got {len(during)} frames during the stall"
            assert during == sorted(set(during)) and after[0] > during[-1]
            assert steps == sorted(set(steps))
            assert rss_mb() - rss_before < 50
        finally:
            stuck.close()
    eventually(lambda: not app.state.sessions and pool.busy_count == 0 and not app.state.clients)


def test_200_short_sessions_leave_no_trace(server: LiveServer) -> None:
    app, pool = server.app, server.app.state.pool

    def cycle() -> None:
        with _open(server) as ws:
            _send(ws, {"type": "start", "config": TINY})
            _until(ws, lambda m: m["type"] == "frame")

    def settled() -> bool:
        return not app.state.sessions and not app.state.clients and pool.busy_count == 0

    for _ in range(10):  # first-use allocations before the baseline
        cycle()
    eventually(settled)
    gc.collect()
    threads, crashes, rss = threading.active_count(), pool.crashes, rss_mb()

    for _ in range(200):
        cycle()

    eventually(settled, timeout=10)
    eventually(lambda: threading.active_count() == threads, timeout=10)
    # Workers come and go on demand (a start while the last run stops forks another); none died,
    # and only the spares stay.
    assert pool.crashes == crashes, "a worker died"
    eventually(lambda: len(pool.workers) == pool.spares, timeout=10)
    assert all(w.alive and w.process.is_alive() for w in pool.workers)
    gc.collect()
    growth = rss_mb() - rss
    print(f"200 cycles: RSS growth {growth:+.1f} MB")
    assert growth < 50
