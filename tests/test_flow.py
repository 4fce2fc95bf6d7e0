"""Flow control over a real websocket: a client that acknowledges what it has received (`seen`)
gets the newest frames, not a backlog; one that does not is served as before.

Before: the newest-frame slot only took over once the socket's send path blocked, after the
kernel's and the client's buffers (megabytes) were full, so a viewer reading a frame every 0.1 s
saw frames 13.6 s old after 20 s with nothing dropped (bench/fanout.py's reproduction)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.config import Settings
from app.main import FLOW_WINDOW
from tests.conftest import LiveServer, serve
from tests.test_web import SMALL, _open, _send, _until

# Unpaced, a frame every step: hundreds to thousands of frames a second, however busy the machine
# (a watched run's frames come by the clock, ~24 a second: too close to the reader's 20 for a
# test that must not depend on the machine's speed).
FAST = {**SMALL, "steps": 100_000, "max_steps_per_s": 0, "emit_every": 1}


def _read_slowly(server: LiveServer, frames: int, acknowledge: bool) -> tuple[list[int], int]:
    """Start a run writing frames far faster than they are read; return the steps of the first
    `frames` frames read, one every 50 ms (20 a second), acknowledging each or not, and how many
    frames the server dropped for this client (replaced by a newer one before it was sent)."""
    steps, received = [], 0
    sessions = server.app.state.sessions
    with _open(server) as ws:
        _send(ws, {"type": "start", "config": FAST})
        _until(ws, lambda m: m["type"] == "started")
        while len(steps) < frames:
            message = _until(ws, lambda m: m["type"] == "frame")
            received += 1
            steps.append(message["step"])
            if acknowledge:
                _send(ws, {"type": "seen", "frames": received})
            time.sleep(0.05)
        (session,) = sessions
        dropped = session.outbox.frames_dropped
        _send(ws, {"type": "stop"})
    return steps, dropped


@pytest.fixture(scope="module")
def fast_server() -> Iterator[LiveServer]:
    """The runs at the server's own priority: how fast the run writes must not depend on what
    else the machine is doing (at nice 10 a busy machine slows it to the reader's pace)."""
    with serve(Settings(worker_niceness=0)) as server:
        yield server


def test_an_acknowledging_slow_reader_gets_the_newest_frames(fast_server: LiveServer) -> None:
    steps, dropped = _read_slowly(fast_server, 40, acknowledge=True)
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert all(gap > 0 for gap in gaps)  # in order, no repeats
    # The run wrote many frames for each one read: past the first window the server keeps at
    # most FLOW_WINDOW in flight, and the newest frame replaces an unsent one: the reader skips.
    assert dropped > 0 and max(gaps[FLOW_WINDOW:]) > 1, steps
    assert steps[-1] > len(steps) + FLOW_WINDOW, steps


def test_a_client_that_does_not_acknowledge_is_served_as_before(fast_server: LiveServer) -> None:
    steps, dropped = _read_slowly(fast_server, 40, acknowledge=False)
    # Frames in turn, from the socket's buffers: the backlog flow control is for. (The run writes
    # faster than the server's sender wakes, so the odd frame is coalesced before it is sent.)
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert steps == sorted(set(steps)), steps
    assert sum(gap == 1 for gap in gaps) >= 0.75 * len(gaps), steps
