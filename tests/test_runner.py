"""The outbox's delivery rules and a Run driven from another thread."""

from __future__ import annotations

import threading
import time

import orjson

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

    def broken(spec: RunSpec) -> None:
        raise MemoryError("no room for this network")

    monkeypatch.setattr(app.runner, "Trainer", broken)
    rec = Recorder()
    run = Run(RunSpec(), rec.outbox, 1)
    run.start()
    error = rec.wait_for(lambda m: m["type"] == "error")
    assert error["code"] == "run_failed" and "MemoryError" in error["message"]
    assert rec.wait_for(lambda m: m.get("state") == "failed")
    assert run.join(timeout=10)


def test_pace_holds_a_run_to_its_rate_and_a_stop_cuts_the_wait() -> None:
    pace = Pace(steps_per_s=100)
    stop = threading.Event()
    start = time.perf_counter()
    pace.hold(20, stop)  # 20 steps at 100/s are due 0.2 s after the anchor
    assert time.perf_counter() - start >= 0.2
    stop.set()
    cut = time.perf_counter()
    pace.hold(10_000, stop)  # due in 100 s, but stopped
    assert time.perf_counter() - cut < 5
    unlimited = Pace(steps_per_s=0)
    unlimited.hold(10**9, threading.Event())  # returns at once: nothing to wait for
