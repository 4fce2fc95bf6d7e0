"""Runs a Trainer off the event loop: a dedicated thread, cooperative pause/step/stop, and an
outbox that keeps control messages in order but only the newest unsent frame."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
import torch

from app.spec import RunSpec
from app.training import Trainer

logger = logging.getLogger(__name__)


def encode(message: dict[str, Any]) -> str:
    """JSON text of a message; orjson writes NaN and +-inf as null, which browsers can parse."""
    return orjson.dumps(message).decode()


class Outbox:
    """Messages waiting for one client.

    Control messages (started, state, error) queue in order and are never dropped; frames share
    one slot, so a slow reader only ever costs the newest frame. A frame pending when a control
    message arrives is queued ahead of it, keeping the order the run produced them in.
    Written from worker threads, read on the event loop through `wake`.
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._messages: deque[tuple[str, bool]] = deque()  # (text, is_frame), oldest first
        self._frame: str | None = None
        self._wake = wake
        self.run_id = 0  # messages from any other run are stale and dropped
        self.frames_dropped = 0

    def put(self, message: dict[str, Any], is_frame: bool = False, run_id: int | None = None) -> None:
        self.put_text(encode(message), is_frame, run_id)

    def put_text(self, text: str, is_frame: bool = False, run_id: int | None = None) -> None:
        """Queue an already-encoded message (frames from a worker process arrive this way)."""
        with self._lock:
            if run_id is not None and run_id != self.run_id:
                return
            if is_frame:
                if self._frame is not None:
                    self.frames_dropped += 1
                self._frame = text
            else:
                if self._frame is not None:
                    self._messages.append((self._frame, True))
                    self._frame = None
                self._messages.append((text, False))
        self._wake()

    def take_tagged(self) -> list[tuple[str, bool]]:
        """Everything pending as (text, is_frame), oldest first (empty when nothing is)."""
        with self._lock:
            out = list(self._messages)
            self._messages.clear()
            if self._frame is not None:
                out.append((self._frame, True))
                self._frame = None
            return out

    def take(self) -> list[str]:
        return [text for text, _ in self.take_tagged()]


class Run:
    """One Trainer on its own thread, steered by pause/resume/step/stop/set_lr from any thread."""

    def __init__(self, spec: RunSpec, outbox: Outbox, run_id: int, max_seconds: float | None = None) -> None:
        self.spec = spec
        self.max_seconds = max_seconds
        self._timed_out = False
        self.run_id = run_id
        self._outbox = outbox
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._paused = False
        self._step_budget = 0
        self._waiting = False  # the thread sits in _wait_while_paused
        self._pending_lr: float | None = None
        self.step = 0
        self.finished = threading.Event()
        self.trainer: Trainer | None = None
        # Never a pooled thread (anyio.to_thread): those are shared and cannot be cancelled.
        self._thread = threading.Thread(target=self._main, name=f"run-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def active(self) -> bool:
        return not self.finished.is_set()

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._step_budget = 0
            if not self._waiting and self.active:
                self._state("running")  # the pause never took hold; say so anyway
            self._cond.notify_all()

    def step_once(self) -> None:
        with self._cond:
            if self._paused:
                self._step_budget += 1
                self._cond.notify_all()

    def set_lr(self, lr: float) -> None:
        trainer = self.trainer
        if trainer is not None:
            trainer.set_lr(lr)
        else:
            self._pending_lr = lr  # picked up once the trainer exists

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _emit(self, message: dict[str, Any], is_frame: bool = False) -> None:
        self._outbox.put(message, is_frame, self.run_id)

    def _state(self, state: str) -> None:
        self._emit({"type": "state", "state": state, "step": self.step})

    def _time_out(self) -> None:
        self._timed_out = True
        self.stop()

    def _main(self) -> None:
        # One intra-op thread per run: on 2 cores, two OpenMP threads beside the server
        # spin-wait each other down from ~360 to ~2 steps/s (REFERENCES.md).
        torch.set_num_threads(1)
        timer = None
        if self.max_seconds is not None:
            timer = threading.Timer(self.max_seconds, self._time_out)
            timer.daemon = True
            timer.start()
        try:
            trainer = Trainer(self.spec)
            self.trainer = trainer
            if self._pending_lr is not None:
                trainer.set_lr(self._pending_lr)
            self._emit(
                {
                    "type": "started",
                    "config": asdict(self.spec),
                    "layers": trainer.layer_names,
                    "device": str(trainer.device),
                    "params": trainer.parameter_count,
                }
            )
            self._state("running")
            pace = Pace(self.spec.max_steps_per_s)
            for snapshot in trainer.run(self._stop):
                self.step = snapshot.step
                self._emit(snapshot.to_wire(), is_frame=True)
                if self._wait_while_paused():
                    pace.restart(snapshot.step)
                else:
                    pace.hold(snapshot.step, self._stop)
            self.step = trainer.step
            self._state("timeout" if self._timed_out else (trainer.outcome or "stopped"))
        except Exception as exc:  # a run may fail; the server and the connection must not
            logger.exception("run %s failed", self.run_id)
            self._emit(
                {
                    "type": "error",
                    "code": "run_failed",
                    "message": f"the run failed: {type(exc).__name__}: {exc}",
                    "errors": [],
                }
            )
            self._state("failed")
        finally:
            if timer is not None:
                timer.cancel()
            self.trainer = None  # drop the model and data as soon as the run ends
            self.finished.set()

    def _wait_while_paused(self) -> bool:
        """Block while paused (a requested step lets one frame through); True if it paused."""
        with self._cond:
            if self._step_budget > 0:
                self._step_budget -= 1  # this frame was the requested step
            if not self._paused or self._stop.is_set():
                return False
            self._state("paused")
            self._waiting = True
            while self._paused and self._step_budget == 0 and not self._stop.is_set():
                self._cond.wait()
            self._waiting = False
            if not self._paused and not self._stop.is_set():
                self._state("running")
            return True


class Pace:
    """Holds a run to at most `steps_per_s` (0: no limit), measured from the last (re)start."""

    def __init__(self, steps_per_s: int) -> None:
        self.steps_per_s = steps_per_s
        self.restart(0)

    def restart(self, step: int) -> None:
        self._anchor_step, self._anchor_time = step, time.perf_counter()

    def hold(self, step: int, stop: threading.Event) -> None:
        if self.steps_per_s <= 0:
            return
        due = self._anchor_time + (step - self._anchor_step) / self.steps_per_s
        delay = due - time.perf_counter()
        if delay > 0:
            stop.wait(delay)  # a stop cuts the wait short
        elif delay < -0.25:
            self.restart(step)  # fell behind (a slow machine): do not sprint to catch up
