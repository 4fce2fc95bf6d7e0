"""Runs a Trainer off the event loop: a dedicated thread, cooperative pause/step/stop, and an
outbox that keeps control messages in order but only the newest unsent frame."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict
from typing import Any

import orjson
import torch

from app.datasets.upload import Table
from app.lifecycle import InvalidTransition, Lifecycle, RunState, SteeredRun
from app.loops import Event, Say, Sweep, lockstep, started_message, sweep_points
from app.spec import RunSpec
from app.training import FrameClock, Trainer

__all__ = ["MAX_KEPT_FRAMES", "Outbox", "Pace", "Run", "encode"]

logger = logging.getLogger(__name__)


MAX_KEPT_FRAMES = 32  # measurement-carrying frames that may wait for a slow client


def encode(message: dict[str, Any]) -> str:
    """JSON text of a message; orjson writes NaN and +-inf as null, which browsers can parse."""
    return orjson.dumps(message).decode()


class Outbox:
    """Messages waiting for one client.

    Control messages (started, state, error) queue in order and are never dropped; frames wait in
    one slot per run ("A" and "B" in compare mode, "" otherwise), so a slow reader only ever costs
    the newest frame of each run. Frames pending when a control message arrives are queued ahead
    of it, keeping the order the run produced them in. Written from worker threads, read on the
    event loop through `wake`.
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        # (text, frame slot or None for a control message, kept frame?), oldest first
        self._messages: deque[tuple[str, str | None, bool]] = deque()
        self._frames: dict[str, str] = {}  # newest unsent frame per slot, in arrival order
        self._kept = 0  # kept frames waiting in _messages
        self._wake = wake
        self.run_id = 0  # messages from any other run are stale and dropped
        self.frames_dropped = 0
        # A room's publish (app/rooms.py): every message queued here is offered to it too.
        self.tee: Callable[[str, str | None, bool], None] | None = None
        self.last_started: str | None = None  # the current run's `started`, for a room opened late

    def put(
        self, message: dict[str, Any], is_frame: bool = False, run_id: int | None = None, keep: bool = False
    ) -> None:
        slot = str(message.get("run", "")) if is_frame else None
        self.put_text(encode(message), slot, run_id, keep)

    def put_text(
        self, text: str, slot: str | None = None, run_id: int | None = None, keep: bool = False
    ) -> None:
        """Queue an encoded message: a frame for `slot`, or a control message when slot is None.

        A kept frame (one carrying a measurement later frames do not repeat) queues in order like
        a control message, up to MAX_KEPT_FRAMES waiting; past that it is an ordinary frame, so
        a client that reads slower than the run writes cannot grow the queue without bound."""
        with self._lock:
            if run_id is not None and run_id != self.run_id:
                return
            if slot is None and text.startswith('{"type":"started"'):
                self.last_started = text
            if slot is not None and not (keep and self._kept < MAX_KEPT_FRAMES):
                if slot in self._frames:
                    self.frames_dropped += 1
                    del self._frames[slot]  # re-inserted last: slots stay in arrival order
                self._frames[slot] = text
            else:
                self._messages.extend((frame, key, False) for key, frame in self._frames.items())
                self._frames.clear()
                self._messages.append((text, slot, slot is not None))
                self._kept += slot is not None
        tee = self.tee
        if tee is not None:
            tee(text, slot, keep)
        self._wake()

    def take_tagged(self) -> list[tuple[str, str | None, bool]]:
        """Everything pending as (text, frame slot or None, kept), oldest first."""
        with self._lock:
            out = list(self._messages)
            self._messages.clear()
            self._kept = 0
            out.extend((frame, key, False) for key, frame in self._frames.items())
            self._frames.clear()
            return out

    def put_back(self, text: str, slot: str) -> None:
        """Return an unsent frame to its slot, unless a newer one for that slot came meanwhile
        (flow control: the newest frame waits for the client, older ones are dropped)."""
        with self._lock:
            if slot in self._frames:
                self.frames_dropped += 1
            else:
                self._frames[slot] = text

    def take(self) -> list[str]:
        return [text for text, _, _ in self.take_tagged()]


def out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed: Python's MemoryError, or torch's allocator refusing (a worker's
    address-space cap, RLIMIT_AS, or a GPU that is full)."""
    text = str(exc)
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)
    )


class Run:
    """One Trainer (or twins A and B in lockstep, or a sweep) on its own thread, steered by
    pause/resume/step/stop/set_lr from any thread."""

    def __init__(
        self,
        spec: RunSpec,
        outbox: Outbox,
        run_id: int,
        max_seconds: float | None = None,
        twin: RunSpec | None = None,
        sweep: Sweep | None = None,
        niceness: int = 0,
        table: Table | None = None,
    ) -> None:
        self.spec = spec
        self.table = table  # the uploaded data of a run on dataset "upload" (twins share it)
        # After its first frame the run's thread lowers its own priority to this nice value
        # (Linux nice values are per thread, and raising one needs no privilege): a run that
        # has just started gets its first frame out quickly, then shares the CPU with the rest
        # below the server's event loop.
        self._niceness = niceness
        self.twin = twin  # compare mode: run B's spec
        self.sweep = sweep
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
        self.lifecycle = Lifecycle()  # the states this run has said, checked move by move
        self.step = 0
        self.finished = threading.Event()
        self.trainers: list[Trainer] = []
        self._frame_clock: FrameClock | None = None
        self._pace = Pace(spec.max_steps_per_s)  # held at each step (clocked) or each frame
        # Never a pooled thread (anyio.to_thread): those are shared and cannot be cancelled.
        self._thread = threading.Thread(target=self._main, name=f"run-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def active(self) -> bool:
        return not self.finished.is_set()

    @property
    def is_sweep(self) -> bool:
        return self.sweep is not None

    @property
    def final_state(self) -> RunState | None:
        return self.lifecycle.state if self.lifecycle.final else None

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        """Resume a paused run. A pause that has not yet taken hold is cancelled and nothing is
        said: the run never left `running`. The thread says `running` when it wakes."""
        with self._cond:
            self._paused = False
            self._step_budget = 0
            self._cond.notify_all()

    def step_once(self) -> None:
        with self._cond:
            if self._paused:
                self._step_budget += 1
                self._cond.notify_all()

    def set_lr(self, lr: float) -> None:
        self._pending_lr = lr  # picked up by trainers still being built
        for trainer in self.trainers:
            trainer.set_lr(lr)  # twins change together: the comparison stays fair

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _emit(self, message: dict[str, Any], is_frame: bool = False, keep: bool = False) -> None:
        self._outbox.put(message, is_frame, self.run_id, keep)
        if is_frame and self._niceness > 0:
            with contextlib.suppress(OSError):  # not Linux, or not allowed: run as we are
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._niceness)
            self._niceness = 0

    def _state(self, state: RunState) -> None:
        self.lifecycle.move(state)  # raises on a move the table does not allow
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
            if self.sweep is not None:
                self._run_sweep(self.sweep)
            else:
                self._run_trainers()
        except Exception as exc:  # a run may fail; the server and the connection must not
            self.trainers = []  # an out-of-memory run: free what it holds before anything else
            if out_of_memory(exc):
                logger.warning("run %s ran out of memory: %s", self.run_id, str(exc)[:200])
                message = (
                    "the run needed more memory than a run may use on this server "
                    "(SHIFTSCOPE_WORKER_MEMORY_BYTES): lower batch_size, width or depth "
                    f"({type(exc).__name__})"
                )
            else:
                logger.exception("run %s failed", self.run_id)
                message = f"the run failed: {type(exc).__name__}: {exc}"
            self._emit({"type": "error", "code": "run_failed", "message": message, "errors": []})
            if isinstance(exc, InvalidTransition) and self.lifecycle.final:
                pass  # the run had already said its last state: the bug is logged above
            else:
                self._state(RunState.FAILED)
        finally:
            if timer is not None:
                timer.cancel()
            self.trainers = []  # drop the models and data as soon as the run ends
            self.table = None
            self.finished.set()

    def _end_state(self, outcomes: list[str | None]) -> RunState:
        if self._timed_out:
            return RunState.TIMEOUT
        if self._stop.is_set() or None in outcomes:
            return RunState.STOPPED
        if "done" in outcomes:
            return RunState.DONE
        return RunState(outcomes[0] or "stopped")

    def _run_trainers(self) -> None:
        specs = {"": self.spec} if self.twin is None else {"A": self.spec, "B": self.twin}
        trainers = {label: Trainer(spec, self.table) for label, spec in specs.items()}
        self.trainers = list(trainers.values())
        if self.spec.max_steps_per_s > 0:  # watched: frames by the clock, one clock for twins
            self._frame_clock = FrameClock(hold=lambda step: self._pace.hold(step, self._stop))
            for trainer in self.trainers:
                trainer.frame_clock = self._frame_clock
        if self._pending_lr is not None:
            for trainer in self.trainers:
                trainer.set_lr(self._pending_lr)
        self._emit(started_message(self.spec, self.twin, trainers))
        self._state(RunState.RUNNING)
        self._drive(lockstep(trainers, self._stop))
        self.step = max(trainer.step for trainer in self.trainers)
        self._state(self._end_state([trainer.outcome for trainer in self.trainers]))

    def _run_sweep(self, sweep: Sweep) -> None:
        bases = {"A": self.spec} if self.twin is None else {"A": self.spec, "B": self.twin}
        self._emit(
            {
                "type": "started",
                "config": asdict(self.spec),
                "sweep": {"lrs": list(sweep.lrs), "steps": sweep.steps, "runs": list(bases)},
                "layers": [],
                **({"configs": {label: asdict(spec) for label, spec in bases.items()}} if self.twin else {}),
            }
        )
        self._state(RunState.RUNNING)

        def current(trainer: Trainer) -> None:
            self.trainers = [trainer]

        finished = self._drive(sweep_points(bases, sweep, self._stop, current, self.table))
        self._state(RunState.TIMEOUT if self._timed_out else RunState.DONE if finished else RunState.STOPPED)

    def _drive(self, events: Generator[Event, None, Any] | Iterator[Event]) -> Any:
        """Say each event's message; at each boundary, pause if asked, else hold the pace.
        Returns what the generator returns."""
        pace = self._pace
        pace.restart(0)
        while True:
            try:
                event = next(events)
            except StopIteration as end:
                return end.value
            if isinstance(event, Say):
                self._emit(event.message, event.is_frame, event.keep)
                continue
            self.step = event.step
            if self._wait_while_paused():
                pace.restart(event.step)
            elif event.paced and self._frame_clock is None:
                pace.hold(event.step, self._stop)

    def _wait_while_paused(self) -> bool:
        """Block while paused (a requested step lets one frame through); True if it paused."""
        with self._cond:
            if self._step_budget > 0:
                self._step_budget -= 1  # this frame was the requested step
            if not self._paused or self._stop.is_set():
                return False
            self._state(RunState.PAUSED)
            if self._frame_clock is not None:
                self._frame_clock.by_steps = True  # a requested step is emit_every steps
            self._waiting = True
            while self._paused and self._step_budget == 0 and not self._stop.is_set():
                self._cond.wait()
            self._waiting = False
            if not self._paused and not self._stop.is_set():
                if self._frame_clock is not None:
                    self._frame_clock.by_steps = False
                self._state(RunState.RUNNING)
            return True


_RUN_IS_STEERED: type[SteeredRun] = Run  # mypy checks that Run honours the protocol


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
