"""The outbox's delivery rules and a Run driven from another thread."""

from __future__ import annotations

import threading

import orjson
import pytest

import app.runner
from app.runner import Outbox, Pace, Run
from app.spec import RunSpec


def _decoded(outbox: Outbox) -> list[dict]:
    return [orjson.loads(text) for text in outbox.take()]


def test_outbox_keeps_only_the_newest_frame_but_every_control_message() -> None:
    wakes = []
    outbox = Outbox(lambda: wakes.append(1))
    outbox.put({"type": "started"})
    for step in range(100):
        outbox.put({"type": "frame", "step": step}, is_frame=True)
    assert _decoded(outbox) == [{"type": "started"}, {"type": "frame", "step": 99}]
    assert outbox.frames_dropped == 99 and len(wakes) == 101
    assert outbox.take() == []


def test_a_pending_frame_stays_ahead_of_a_later_control_message() -> None:
    outbox = Outbox(lambda: None)
    outbox.put({"type": "frame", "step": 10}, is_frame=True)
    outbox.put({"type": "state", "state": "done", "step": 10})
    outbox.put({"type": "frame", "step": 11}, is_frame=True)
    assert [m.get("step") for m in _decoded(outbox)] == [10, 10, 11]


def test_messages_of_a_stale_run_are_dropped() -> None:
    outbox = Outbox(lambda: None)
    outbox.run_id = 2
    outbox.put({"type": "frame", "step": 1}, is_frame=True, run_id=1)
    outbox.put({"type": "state", "state": "done"}, run_id=1)
    outbox.put({"type": "state", "state": "running"}, run_id=2)
    assert _decoded(outbox) == [{"type": "state", "state": "running"}]


def test_non_finite_numbers_go_out_as_null() -> None:
    outbox = Outbox(lambda: None)
    outbox.put({"type": "frame", "loss": float("nan"), "x": float("inf")}, is_frame=True)
    assert outbox.take() == ['{"type":"frame","loss":null,"x":null}']


class Recorder:
    """An Outbox wake callback that lets a test wait for a message without sleeping."""

    def __init__(self) -> None:
        self.outbox = Outbox(self._wake)
        self.outbox.run_id = 1
        self.messages: list[dict] = []
        self._cond = threading.Condition()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:  # type: ignore[no-untyped-def]
        with self._cond:
            while True:
                self.messages.extend(_decoded(self.outbox))
                for message in self.messages:
                    if predicate(message):
                        self.messages.remove(message)
                        return message
                assert self._cond.wait(timeout), f"no matching message in {timeout} s: {self.messages}"


def test_run_pauses_steps_one_interval_resumes_and_stops() -> None:
    rec = Recorder()
    run = Run(RunSpec(dataset="xor", depth=2, width=8, steps=100_000, emit_every=7), rec.outbox, 1)
    run.start()
    started = rec.wait_for(lambda m: m["type"] == "started")
    assert started["layers"] == ["layer1", "layer2"] and started["config"]["emit_every"] == 7
    run.pause()
    paused = rec.wait_for(lambda m: m.get("state") == "paused")
    rec.messages.clear()
    run.step_once()
    frame = rec.wait_for(lambda m: m["type"] == "frame")
    assert frame["step"] == paused["step"] + 7
    again = rec.wait_for(lambda m: m.get("state") == "paused")
    assert again["step"] == frame["step"]
    run.set_lr(0.005)
    run.resume()
    rec.wait_for(lambda m: m.get("state") == "running")
    later = rec.wait_for(lambda m: m["type"] == "frame" and m["step"] > frame["step"] + 7)
    assert later["lr"] == 0.005
    run.stop()
    stopped = rec.wait_for(lambda m: m.get("state") == "stopped")
    assert stopped["step"] >= later["step"]
    assert run.join(timeout=10) and not run.active


def test_a_failing_run_reports_failed_and_frees_its_thread(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import app.runner

    def broken(spec: RunSpec, *data: object) -> None:  # Trainer(spec, table)
        raise MemoryError("no room for this network")

    monkeypatch.setattr(app.runner, "Trainer", broken)
    rec = Recorder()
    run = Run(RunSpec(), rec.outbox, 1)
    run.start()
    error = rec.wait_for(lambda m: m["type"] == "error")
    assert error["code"] == "run_failed" and "MemoryError" in error["message"]
    assert rec.wait_for(lambda m: m.get("state") == "failed")
    assert run.join(timeout=10)


class FakeTime:
    """Stands in for app.runner's `time` module (only Pace reads it): a clock that moves when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class RecordingStop(threading.Event):
    """A stop event whose waits are recorded and move the fake clock on instead of blocking."""

    def __init__(self, clock: FakeTime) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "Pace waits with a timeout"
        self.waits.append(timeout)
        if not self.is_set():
            self.clock.now += timeout
        return self.is_set()


def test_pace_waits_until_each_step_is_due_from_its_anchor(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(app.runner, "time", clock)
    stop = RecordingStop(clock)
    pace = Pace(steps_per_s=100)  # anchored at step 0, t = 1000
    pace.hold(20, stop)  # 20 steps at 100/s are due 0.2 s after the anchor
    assert stop.waits == [pytest.approx(0.2)] and clock.now == pytest.approx(1000.2)
    pace.hold(20, stop)  # already due: no wait
    clock.now += 0.05  # training steps 21..30 took 0.05 s: step 30 is due 0.05 s from now
    pace.hold(30, stop)
    assert stop.waits[1:] == [pytest.approx(0.05)] and clock.now == pytest.approx(1000.3)
    # A little behind (under 0.25 s): no wait, and the anchor stays, so the pace catches up.
    clock.now += 0.2  # step 40 was due at 1000.4; it is 1000.5
    pace.hold(40, stop)
    pace.hold(60, stop)  # due at 1000.6, from the first anchor
    assert stop.waits[2:] == [pytest.approx(0.1)] and clock.now == pytest.approx(1000.6)
    # Far behind (a slow machine): re-anchored at that step, no sprint to catch up.
    clock.now += 1.0  # step 70 was due at 1000.7; it is 1001.6
    pace.hold(70, stop)
    assert len(stop.waits) == 3
    pace.hold(80, stop)  # due 0.1 s after the new anchor (step 70, t = 1001.6)
    assert stop.waits[3:] == [pytest.approx(0.1)] and clock.now == pytest.approx(1001.7)
    # A pause restarts the pace: steps are due from the resume, not from before the pause.
    clock.now += 60.0
    pace.restart(80)
    pace.hold(130, stop)
    assert stop.waits[4:] == [pytest.approx(0.5)] and clock.now == pytest.approx(1062.2)
    # Unlimited: never waits, however far ahead.
    Pace(steps_per_s=0).hold(10**9, stop)
    assert len(stop.waits) == 5


def test_a_stop_cuts_a_pace_wait_short() -> None:
    # Step 10**9 at 100/s is due in about 3 years: the hold can only return because of the stop.
    pace, stop = Pace(steps_per_s=100), threading.Event()
    holding = threading.Thread(target=pace.hold, args=(10**9, stop), daemon=True)
    holding.start()
    holding.join(timeout=0.5)
    assert holding.is_alive(), "the hold returned long before the step was due"
    stop.set()
    holding.join(timeout=30)
    assert not holding.is_alive(), "the stop did not end the wait"
