"""Flow control over a real websocket: a client that acknowledges what it has received (`seen`)
gets the newest frames, not a backlog; one that does not is served as before.

Before: the newest-frame slot only took over once the socket's send path blocked, after the
kernel's and the client's buffers (megabytes) were full, so a viewer reading a frame every 0.1 s
saw frames 13.6 s old after 20 s with nothing dropped (bench/fanout.py's reproduction)."""

from __future__ import annotations

import time

from tests.conftest import LiveServer
from tests.test_web import SMALL, _open, _send, _until

# A watched run: its frames come by the clock, ~30 a second (training.FrameClock).
FAST = {**SMALL, "steps": 100_000, "max_steps_per_s": 300, "emit_every": 1}


def _read_slowly(server: LiveServer, frames: int, acknowledge: bool) -> tuple[list[int], int]:
    """Start a run writing ~30 frames a second and return the steps of the first `frames` frames
    read, one every 50 ms (20 a second), acknowledging each or not; and how many frames the
    server dropped for this client (replaced by a newer one before it was sent)."""
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


def test_an_acknowledging_slow_reader_gets_the_newest_frames(live_server: LiveServer) -> None:
    steps, dropped = _read_slowly(live_server, 40, acknowledge=True)
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert all(gap > 0 for gap in gaps)  # in order, no repeats
    # The run wrote 3 frames for each 2 read: past the first window the server keeps at most
    # FLOW_WINDOW in flight, and the newest frame replaces an unsent one.
    assert dropped > 0, steps


def test_a_client_that_does_not_acknowledge_is_served_as_before(live_server: LiveServer) -> None:
    steps, dropped = _read_slowly(live_server, 40, acknowledge=False)
    # Every frame in turn, from the socket's buffers: the backlog flow control is for.
    assert dropped == 0 and steps == sorted(set(steps)), steps
