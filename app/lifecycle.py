"""A run's states, the transitions allowed between them, and the interface every run honours.

The states are the wire's (`{"type":"state","state":...}`, docs/protocol.md "States"). A move the
table does not allow is a bug and raises, as Starlette's websocket does for a send after close:

    life = Lifecycle()
    life.move(RunState.RUNNING); life.move(RunState.PAUSED); life.move(RunState.DONE)
    life.move(RunState.RUNNING)  # InvalidTransition: done -> running
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Protocol

__all__ = [
    "FINAL_STATES",
    "TRANSITIONS",
    "Interrupted",
    "InvalidTransition",
    "Lifecycle",
    "RunState",
    "SteeredRun",
    "stop_point",
]


class RunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    TIMEOUT = "timeout"
    FAILED = "failed"


FINAL_STATES = frozenset(
    {RunState.DONE, RunState.STOPPED, RunState.DIVERGED, RunState.TIMEOUT, RunState.FAILED}
)
# From each state (None: not yet started), the states a run may say next.
TRANSITIONS: dict[RunState | None, frozenset[RunState]] = {
    None: frozenset({RunState.RUNNING, RunState.FAILED}),  # failed: it broke while being built
    RunState.RUNNING: frozenset({RunState.PAUSED}) | FINAL_STATES,
    # paused -> paused: a `step` trained one interval and the run is paused again, at a new step.
    RunState.PAUSED: frozenset({RunState.RUNNING, RunState.PAUSED}) | FINAL_STATES,
    **{state: frozenset() for state in FINAL_STATES},
}


class InvalidTransition(RuntimeError):
    """A run tried a move its state does not allow (a bug, never the client's doing)."""


class Interrupted(Exception):
    """A stop seen inside a long measurement (an evaluation, an instrument's extra passes): the
    run ends `stopped` at once instead of finishing the measurement (and being killed for it)."""


def stop_point(stop: threading.Event | None) -> None:
    """Raise Interrupted if `stop` is set: called between the passes of a long measurement."""
    if stop is not None and stop.is_set():
        raise Interrupted


class Lifecycle:
    """The current state of one run; moves are checked against TRANSITIONS. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: RunState | None = None

    def move(self, to: RunState) -> None:
        with self._lock:
            if to not in TRANSITIONS[self.state]:
                raise InvalidTransition(f"a run cannot go from {self.state or 'not started'} to {to}")
            self.state = to

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class SteeredRun(Protocol):
    """What a session steers: runner.Run in the worker, workers.RemoteRun in the server."""

    run_id: int
    step: int  # the step of the last state said

    @property
    def active(self) -> bool: ...

    @property
    def is_sweep(self) -> bool: ...

    @property
    def final_state(self) -> RunState | None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def step_once(self) -> None: ...

    def set_lr(self, lr: float) -> None: ...

    def stop(self) -> None: ...
