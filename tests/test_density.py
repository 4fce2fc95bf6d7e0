"""Many runs at once (issue: thirty students training at once): frames by the clock, admission by
CPU capacity, fair shares, workers on demand at a lower priority than the server.

Speed itself is bench/classroom.py's; these check the rules: which steps are frames for a given
step rate (a fake clock), who is admitted, queued or told busy and why, that simultaneous starts
are all answered, and that identical runs get comparable shares of the CPU.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from typing import Any

import orjson
import pytest
from websockets.sync.client import ClientConnection

from app.budget import floor_load
from app.config import Settings
from app.presets import DEFAULT_PRESET
from app.schemas import RunConfig
from app.training import FASTEST_FRAME_S, SLOWEST_FRAME_S, FrameClock
from tests.conftest import serve
from tests.test_web import SMALL, _open, _send, _until, eventually

# ----------------------------------------------------------------------------- the frame clock


class Ticks:
    """A clock that reads what the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _frame_times(steps_per_s: float, seconds: float = 3.0, every: int = 5) -> list[float]:
    ticks = Ticks()
    clock = FrameClock(clock=ticks)
    taken = []
    for step in range(1, int(seconds * steps_per_s) + 1):
        ticks.now = step / steps_per_s
        if clock.due(step, every):
            taken.append(ticks.now)
    return taken


@pytest.mark.parametrize("steps_per_s", [16, 20, 40, 100, 300, 1000, 5000])
def test_frames_come_between_15_and_30_a_second_whatever_the_step_rate(steps_per_s: float) -> None:
    times = _frame_times(steps_per_s)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= FASTEST_FRAME_S - 1e-9, (steps_per_s, min(gaps))
    assert max(gaps) <= SLOWEST_FRAME_S + 1e-9, (steps_per_s, max(gaps))
    if steps_per_s >= 40:  # steps of 25 ms or less: a frame every 50 ms at most, ~24 a second
        assert len(times) / 3.0 >= 20, (steps_per_s, len(times))


def test_steps_slower_than_the_slowest_frame_gap_are_each_a_frame() -> None:
    times = _frame_times(10, seconds=2.0)  # a step every 0.1 s: no frame can come sooner
    assert len(times) == 20


def test_the_clock_keeps_the_emit_every_cadence_when_it_can() -> None:
    ticks = Ticks()
    clock = FrameClock(clock=ticks)
    taken = []
    for step in range(1, 1001):
        ticks.now = step / 1000  # 1000 steps a second: every 5 steps would be 200 frames a second
        if clock.due(step, 5):
            taken.append(step)
    assert all(step % 5 == 0 for step in taken[1:])  # the first frame may come at once
    assert 24 <= len(taken) <= 31


def test_twins_share_one_clock_and_frame_the_same_steps() -> None:
    # Lockstep: A trains up to its next frame, then B does the same steps later in time.
    ticks = Ticks()
    clock = FrameClock(clock=ticks)
    a_frames, b_frames, step = [], [], 0
    while step < 600:
        start = step
        while True:
            step += 1
            ticks.now += 0.004
            if clock.due(step, 5):
                a_frames.append(step)
                break
        for follow in range(start + 1, step + 1):
            ticks.now += 0.004  # B's steps take time too; the clock must not re-decide them
            if clock.due(follow, 5):
                b_frames.append(follow)
    assert a_frames == b_frames and len(a_frames) > 10


def test_measurement_steps_are_always_frames_and_single_steps_keep_the_step_cadence() -> None:
    ticks = Ticks()
    clock = FrameClock(clock=ticks)
    assert clock.due(1, 5)  # the first frame comes at once
    assert clock.due(2, 5, forced=True)  # an evaluation step, however soon
    clock.by_steps = True  # paused, stepping: a requested step is emit_every steps on
    ticks.now = 100.0
    assert [s for s in range(3, 13) if clock.due(s, 5)] == [7, 12]


# ----------------------------------------------------------------------------- admission


def _config_load(config: dict[str, Any], settings: Settings) -> float:
    spec = RunConfig.model_validate(config).to_spec()
    return floor_load(spec, settings.floor_frames_per_s, settings.floor_steps_per_s)


PACED = {**SMALL, "steps": 100_000, "max_steps_per_s": 100}


def test_past_capacity_a_start_waits_told_why_then_is_told_busy() -> None:
    load = _config_load(PACED, Settings())
    settings = Settings(run_capacity=2.5 * load, max_queue=1, max_jobs_per_client=0, max_runs=8)
    with serve(settings) as server:
        pool = server.app.state.pool
        with _open(server) as a, _open(server) as b, _open(server) as c, _open(server) as d:
            for ws in (a, b):
                _send(ws, {"type": "start", "config": PACED})
                _until(ws, lambda m: m["type"] == "frame")
            assert pool.running == 2 and pool.load == pytest.approx(2 * load)
            _send(c, {"type": "start", "config": PACED})
            queued = _until(c, lambda m: m["type"] == "queued")
            assert queued["position"] == 1 and queued["warming"] is False
            assert "2 runs are training" in queued["message"]
            assert f"of the {2.5 * load:.2f} cores" in queued["message"]
            assert "15 frames/s and 10 steps/s each" in queued["message"]
            _send(d, {"type": "start", "config": PACED})
            busy = _until(d, lambda m: m["type"] == "busy")
            assert "the server is full" in busy["message"] and busy["queue"] == 1
            # A run that ends hands its capacity to the first in line.
            _send(a, {"type": "stop"})
            assert _until(c, lambda m: m["type"] in ("started", "error"))["type"] == "started"
            _until(c, lambda m: m["type"] == "frame")
            assert pool.running == 2
            for ws in (b, c):
                _send(ws, {"type": "stop"})
        eventually(lambda: pool.running == 0 and pool.load == 0.0)


def test_a_run_too_large_for_the_capacity_runs_alone() -> None:
    # Nothing running: the first run is admitted whatever its load, so a big run is never stuck.
    with serve(Settings(run_capacity=1e-6, max_runs=4)) as server, _open(server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 20}})
        assert _until(ws, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "done"


def _thread_nices(pid: int) -> list[int]:
    """The nice value of each of a process's threads (field 19 of /proc/<pid>/task/<tid>/stat)."""
    nices = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            text = stat.read()
        nices.append(int(text[text.rindex(")") + 2 :].split()[16]))
    return nices


def test_workers_start_on_demand_run_below_the_server_and_only_the_spares_stay() -> None:
    settings = Settings(max_runs=6, spare_workers=1, max_jobs_per_client=0, worker_niceness=10)
    with serve(settings) as server:
        pool = server.app.state.pool
        eventually(lambda: pool.ready, timeout=60)
        assert len(pool.workers) == 1  # the spare
        with contextlib.ExitStack() as stack:
            sockets = [stack.enter_context(_open(server)) for _ in range(3)]
            for ws in sockets:
                _send(ws, {"type": "start", "config": PACED})
            for ws in sockets:
                _until(ws, lambda m: m["type"] == "frame")
            busy = [worker for worker in pool.workers if worker.job is not None]
            assert len(busy) == 3
            for worker in busy:
                # Each run's thread, past its first frame, trains at nice 10; the worker's other
                # threads (its pipe, its forwarder) stay at the server's 0.
                nices = _thread_nices(worker.pid)
                assert nices.count(10) == 1 and set(nices) == {0, 10}, nices
            for ws in sockets:
                _send(ws, {"type": "stop"})
        # The idle workers past the one spare quit.
        eventually(lambda: pool.running == 0 and len(pool.workers) == 1 and pool.idle_count == 1, timeout=30)


# ----------------------------------------------------------------------------- a class at once


def _student(server: Any, start: threading.Barrier, out: dict[str, Any]) -> None:
    ws: ClientConnection
    with _open(server) as ws:
        start.wait()
        sent = time.monotonic()
        _send(ws, {"type": "start", "config": DEFAULT_PRESET.config})
        frames: list[tuple[float, int]] = []
        deadline = sent + 8.0
        while time.monotonic() < deadline:
            message = orjson.loads(ws.recv(timeout=30))
            if message["type"] in ("frame", "queued", "busy") and "answered" not in out:
                out["answered"] = time.monotonic() - sent
                out["first"] = message["type"]
            if message["type"] == "frame":
                frames.append((message["t"], message["step"]))
            elif message["type"] == "busy":
                break
        out["frames"] = frames
        _send(ws, {"type": "stop"})


def test_twelve_simultaneous_starts_are_all_answered_and_share_the_cpu_fairly() -> None:
    settings = Settings(max_jobs_per_client=0, max_queue=16, max_connections_per_client=64, run_capacity=1.7)
    with serve(settings) as server:
        eventually(lambda: server.app.state.pool.ready, timeout=60)
        results: list[dict[str, Any]] = [{} for _ in range(12)]
        barrier = threading.Barrier(12)
        threads = [
            threading.Thread(target=_student, args=(server, barrier, out), daemon=True) for out in results
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        # Everyone hears something (a frame, or a place in line) within a second: never silence.
        answered = [out.get("answered", 99.0) for out in results]
        assert all(seconds < 1.0 for seconds in answered), answered
        # The default preset's floor is ~0.075 of a core: twelve fit in 85% of two cores (the
        # capacity is pinned below, whatever this machine has), and they train side by side. Over
        # the same stretch of time (2 s to 6 s after the start, on the server's clock) each trains
        # a comparable number of steps.
        begin = min(frames[0][0] for frames in (out["frames"] for out in results)) + 2.0
        shares = []
        for out in results:
            window = [(t, step) for t, step in out["frames"] if begin <= t <= begin + 4.0]
            assert len(window) >= 10, "a student's frames stopped coming"
            shares.append((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]))
        middle = statistics.median(shares)
        assert min(shares) >= 0.5 * middle and max(shares) <= 2.0 * middle, shares
