"""Run states: the allowed moves, checked loudly, and what a real Run says along them."""

from __future__ import annotations

import threading
from itertools import product

import orjson
import pytest

from app.lifecycle import FINAL_STATES, TRANSITIONS, InvalidTransition, Lifecycle, RunState
from app.loops import Sweep
from app.runner import Outbox, Run
from app.spec import RunSpec


def test_every_move_the_table_allows_is_taken_and_every_other_raises() -> None:
    for start, to in product([None, *RunState], RunState):
        life = Lifecycle()
        life.state = start
        if to in TRANSITIONS[start]:
            life.move(to)
            assert life.state is to and life.final == (to in FINAL_STATES)
        else:
            with pytest.raises(InvalidTransition, match=f"to {to}"):
                life.move(to)
            assert life.state is start
    # A run that has said its last state says nothing more.
    assert all(not TRANSITIONS[state] for state in FINAL_STATES)


class _States:
    """Every state a run says, in order, replayed through a Lifecycle of its own."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.outbox = Outbox(self._wake)
        self.outbox.run_id = 1  # the runs below are run 1
        self.said: list[dict] = []

    def _wake(self) -> None:
        with self.cond:
            for text in self.outbox.take():
                message = orjson.loads(text)
                if message["type"] == "state":
                    self.said.append(message)
            self.cond.notify_all()

    def wait_for(self, state: str, count: int = 1) -> dict:
        with self.cond:
            assert self.cond.wait_for(
                lambda: sum(m["state"] == state for m in self.said) >= count, timeout=60
            ), self.said
            return [m for m in self.said if m["state"] == state][count - 1]

    def names(self) -> list[str]:
        with self.cond:
            return [m["state"] for m in self.said]


def _replays(states: list[str]) -> None:
    life = Lifecycle()
    for state in states:
        life.move(RunState(state))
    assert life.final


def test_a_resume_that_cancels_a_pause_not_yet_taken_says_nothing() -> None:
    # The pause and the resume both arrive before the run's thread reaches a frame boundary:
    # the run never left running, so no second `running` (it used to say one, before `started`).
    seen = _States()
    run = Run(RunSpec(dataset="xor", depth=2, width=8, steps=50, emit_every=5), seen.outbox, 1)
    run.pause()
    run.resume()
    run.start()
    assert run.join(timeout=60)
    assert seen.names() == ["running", "done"]
    assert run.final_state is RunState.DONE


def test_pause_step_resume_stop_say_each_state_once_along_allowed_moves() -> None:
    seen = _States()
    run = Run(RunSpec(dataset="xor", depth=2, width=8, steps=100_000, emit_every=7), seen.outbox, 1)
    run.start()
    seen.wait_for("running")
    run.pause()
    first = seen.wait_for("paused")
    run.step_once()
    again = seen.wait_for("paused", count=2)  # paused -> paused, one interval later
    assert again["step"] == first["step"] + 7
    run.resume()
    seen.wait_for("running", count=2)
    run.resume()  # not paused: nothing to say
    run.stop()
    seen.wait_for("stopped")
    assert run.join(timeout=60)
    assert seen.names() == ["running", "paused", "paused", "running", "stopped"]
    _replays(seen.names())
    assert run.final_state is RunState.STOPPED and run.lifecycle.final


def test_a_sweep_paused_and_stopped_moves_along_the_table() -> None:
    seen = _States()
    spec = RunSpec(dataset="xor", depth=2, width=8)
    run = Run(spec, seen.outbox, 1, sweep=Sweep((0.01, 0.1, 1.0), 10))
    run.pause()  # before it starts: the first point pauses at its end
    run.start()
    seen.wait_for("paused")
    run.stop()
    seen.wait_for("stopped")
    assert run.join(timeout=60)
    assert seen.names() == ["running", "paused", "stopped"]
    _replays(seen.names())
