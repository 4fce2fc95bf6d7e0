"""Class experiments over real websockets: the teacher's values are checked as whole configs,
students are handed values in turn (or pick one), each trains their own run through the pool,
and the teacher gets one class summary, at most 5 a second, in which every student's point
moves, a leaver's point goes, and stop-all stops every run (issue #12)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from app.config import Settings
from app.experiments import RIDGE_BINS, RIDGE_LAYERS, Experiment, rebin
from tests.conftest import LiveServer, serve
from tests.test_rooms import _join, _open_room
from tests.test_web import SMALL, _open, _send, _until, eventually

# Slow enough for four runs on two cores, fast enough that steps move within a second.
PACED = {**SMALL, "steps": 100_000, "max_steps_per_s": 60, "emit_every": 5}
LRS = [0.01, 0.1, 1.0]
DIVERGES = {"depth": 10, "width": 100, "activation": "relu", "init": "kaiming", "steps": 2000}


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    # Every client here is 127.0.0.1: the per-address caps are lifted, with run slots and a line
    # for a small class. A tight activation limit lets a batch size be over budget cheaply.
    settings = Settings(
        max_jobs_per_client=0,
        max_runs=4,
        max_queue=16,
        max_rooms_per_client=50,
        max_activation_values=100_000,
    )
    with serve(settings) as server:
        yield server


def _error(ws: ClientConnection) -> dict[str, Any]:
    return _until(ws, lambda m: m["type"] == "error")


def _summary(ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool] = lambda m: True) -> dict:
    return _until(ws, lambda m: m["type"] == "class_summary" and predicate(m))


def _experiment(server: LiveServer, code: str) -> Experiment:
    room = server.app.state.rooms.get(code)
    assert room is not None and room.experiment is not None
    return room.experiment  # type: ignore[no-any-return]


def _open_experiment(teacher: ClientConnection, **fields: Any) -> dict[str, Any]:
    message = {"type": "experiment_open", "field": "lr", "values": LRS, "config": PACED, **fields}
    _send(teacher, message)
    announced = _until(teacher, lambda m: m["type"] in ("experiment", "error"))
    assert announced["type"] == "experiment", announced
    return announced


@contextmanager
def _class(
    server: LiveServer, students: int
) -> Iterator[tuple[ClientConnection, str, list[ClientConnection]]]:
    """A teacher with a room and `students` viewers in it (no experiment yet)."""
    with ExitStack() as stack:
        teacher = stack.enter_context(_open(server))
        code = _open_room(teacher)["code"]
        viewers = [stack.enter_context(_open(server)) for _ in range(students)]
        for viewer in viewers:
            _join(viewer, code)
        try:
            yield teacher, code, viewers
        finally:
            # Quiet first: a client that stops reading stops at 16 unread messages, and its
            # close then waits out the close timeout (10 s) for the server's close frame.
            with contextlib.suppress(ConnectionClosed):
                _send(teacher, {"type": "room_close"})  # every student's run stops
            for ws in (*viewers, teacher):
                _drain(ws)


def _drain(ws: ClientConnection, quiet_s: float = 0.3) -> None:
    """Read until the connection has been quiet for `quiet_s` (or is closed)."""
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ws.recv(timeout=quiet_s)


def _enter(student: ClientConnection, index: int | None = None) -> dict[str, Any]:
    _send(student, {"type": "experiment_join"} | ({} if index is None else {"index": index}))
    assigned = _until(student, lambda m: m["type"] in ("experiment_assigned", "error"))
    assert assigned["type"] == "experiment_assigned", assigned
    return assigned


def _points(summary: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {point["id"]: point for point in summary["students"]}


def test_rebin_groups_neighbouring_bins_and_scales_to_the_tallest() -> None:
    counts = list(range(64))
    grouped = rebin(counts)
    assert len(grouped) == RIDGE_BINS and grouped[-1] == 99
    sums = [sum(counts[i * 4 : i * 4 + 4]) for i in range(16)]
    assert grouped == [round(99 * s / sums[-1]) for s in sums]
    assert rebin([0, 0, 0]) == [0, 0, 0] and rebin([1, 2]) == [50, 99]


def test_a_bad_experiment_is_refused_naming_the_field_and_the_limit(live_server: LiveServer) -> None:
    with _open(live_server) as teacher, _open(live_server) as outsider:
        _open_room(teacher)
        _send(teacher, {"type": "experiment_open", "field": "width", "values": [16, 32]})
        error = _error(teacher)
        assert error["code"] == "invalid_message" and error["errors"][0]["field"] == "field"
        assert "'lr'" in error["errors"][0]["message"] and "'width'" in error["errors"][0]["message"]
        _send(teacher, {"type": "experiment_open", "field": "lr", "values": [0.1], "config": PACED})
        assert _error(teacher)["errors"][0]["field"] == "values"  # at least 2
        # Each value is a whole config, checked as a start would be: lr ≤ 10.
        _send(teacher, {"type": "experiment_open", "field": "lr", "values": [0.1, 100], "config": PACED})
        error = _error(teacher)
        assert error["code"] == "invalid_config" and error["about"] == "experiment"
        assert error["errors"] == [{"field": "values.1", "message": "lr = 100: lr must be ≤ 10.0 (got 100)"}]
        # ... and priced as a start would be: batch 1024 x width 64 x depth 3 is over this server's limit.
        wide = {**PACED, "width": 64}
        _send(
            teacher, {"type": "experiment_open", "field": "batch_size", "values": [32, 1024], "config": wide}
        )
        error = _error(teacher)
        assert error["code"] == "over_budget" and [e["field"] for e in error["errors"]] == ["values.1"]
        assert "100,000" in error["errors"][0]["message"]
        # A base config's own problem is named once, as config.<field>; a repeated value too.
        bad_base = {**PACED, "depth": 99}
        _send(
            teacher,
            {"type": "experiment_open", "field": "norm", "values": ["none", "batch"], "config": bad_base},
        )
        assert [e["field"] for e in _error(teacher)["errors"]] == ["config.depth"]
        _send(teacher, {"type": "experiment_open", "field": "lr", "values": [0.1, 1, 1.0], "config": PACED})
        assert _error(teacher)["errors"] == [{"field": "values.2", "message": "lr = 1.0 is listed twice"}]
        # Only a room's teacher opens one; joining needs an experiment.
        _send(outsider, {"type": "experiment_open", "field": "lr", "values": LRS})
        assert _error(outsider)["code"] == "not_teacher"
        _send(outsider, {"type": "experiment_join"})
        assert _error(outsider)["code"] == "no_experiment"


def test_round_robin_hands_out_the_values_in_turn(live_server: LiveServer) -> None:
    with _class(live_server, 4) as (teacher, code, students):
        announced = _open_experiment(teacher)
        assert (
            announced["values"] == LRS
            and announced["state"] == "open"
            and announced["assign"] == "round_robin"
        )
        assert _until(students[0], lambda m: m["type"] == "experiment")["field"] == "lr"  # viewers hear it
        assigned = [_enter(student) for student in students]
        assert [a["index"] for a in assigned] == [0, 1, 2, 0]
        assert [a["config"]["lr"] for a in assigned] == [0.01, 0.1, 1.0, 0.01]
        assert assigned[0]["config"]["depth"] == PACED["depth"]
        # Each student's run is their own: started with their value, through the pool as usual.
        for student, lr in zip(students, [0.01, 0.1, 1.0, 0.01], strict=True):
            assert _until(student, lambda m: m["type"] == "started")["config"]["lr"] == lr
        # In round robin the server picks; a student trains their value, not settings of their own.
        _send(students[1], {"type": "experiment_join", "index": 2})
        assert _error(students[1])["errors"][0]["field"] == "index"
        _send(students[1], {"type": "set", "lr": 5.0})
        assert _error(students[1])["code"] == "in_experiment"
        _send(students[1], {"type": "start", "config": SMALL})
        assert _error(students[1])["code"] == "in_experiment"
        # A student who leaves frees their value: the next joiner gets it.
        _send(students[1], {"type": "leave"})
        _until(students[1], lambda m: m["type"] == "room_left")
        with _open(live_server) as late:
            _join(late, code)
            assert _until(late, lambda m: m["type"] == "experiment")["values"] == LRS  # told on joining
            assert _enter(late)["index"] == 1


def test_a_students_point_moves_and_summaries_come_at_most_five_a_second(live_server: LiveServer) -> None:
    with _class(live_server, 2) as (teacher, code, students):
        _open_experiment(teacher)
        assert _summary(teacher)["students"] == []  # the empty class, at once
        for student in students:
            _enter(student)
        first = _summary(
            teacher, lambda m: len(m["students"]) == 2 and all(p["step"] > 0 for p in m["students"])
        )
        point = _points(first)[1]
        assert point["value"] == 0.01 and point["state"] == "running" and point["loss"] is not None
        layers = point["ridge"]
        assert len(layers) == RIDGE_LAYERS and layers[-1][0] == "layer3"
        step, lo, hi, counts = layers[-1][1][-1]
        assert step <= point["step"] and lo <= hi and len(counts) == RIDGE_BINS and max(counts) == 99
        later = _summary(teacher, lambda m: _points(m)[1]["step"] > point["step"] + 20)
        assert len(_points(later)[1]["ridge"][-1][1]) > 1  # the ridge keeps a few recent frames
        assert _points(later)[2]["value"] == 0.1
        # The rate, counted where it is decided: over a window, at most one summary per 0.2 s.
        experiment = _experiment(live_server, code)
        sent, started = experiment.summaries_sent, time.monotonic()
        received = 0
        while time.monotonic() - started < 2.0:
            _summary(teacher)
            received += 1
        elapsed = time.monotonic() - started
        assert experiment.summaries_sent - sent <= elapsed / 0.2 + 1
        assert 3 <= received <= elapsed / 0.2 + 2  # the runs move: summaries keep coming
        assert experiment.last_summary_bytes < 4000  # two students


def test_summaries_reach_viewers_only_once_revealed(live_server: LiveServer) -> None:
    with _class(live_server, 2) as (teacher, _, (student, onlooker)):
        _open_experiment(teacher)
        _enter(student)
        _summary(teacher, lambda m: len(m["students"]) == 1 and m["students"][0]["step"] > 0)
        _send(teacher, {"type": "experiment_reveal"})
        # Summaries went to the teacher before; the onlooker's first is after the reveal.
        first = _until(
            onlooker, lambda m: m["type"] == "class_summary" or m["type"] == "experiment" and m["revealed"]
        )
        assert first["type"] == "experiment"
        revealed = _summary(onlooker)
        assert revealed["revealed"] is True and len(revealed["students"]) == 1
        assert _summary(student)["students"][0]["id"] == 1  # the student sees the class too


def test_a_leaving_student_drops_out_of_the_summary(live_server: LiveServer) -> None:
    with _class(live_server, 3) as (teacher, code, (stays, leaves, closes)):
        _open_experiment(teacher)
        for student in (stays, leaves, closes):
            _enter(student)
        _summary(
            teacher, lambda m: len(m["students"]) == 3 and all(p["state"] == "running" for p in m["students"])
        )
        _send(leaves, {"type": "leave"})
        assert (
            _until(leaves, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "stopped"
        )  # their run stops
        assert set(_points(_summary(teacher, lambda m: len(m["students"]) == 2))) == {1, 3}
        closes.close()  # the connection goes: as a leave
        assert set(_points(_summary(teacher, lambda m: len(m["students"]) == 1))) == {1}
        pool = live_server.app.state.pool
        eventually(lambda: sum(1 for w in pool.workers if w.job is not None) == 1, timeout=15)
        assert _experiment(live_server, code).students.keys() == {
            id(s.outbox) for s in _sessions_of(live_server)
        }


def _sessions_of(server: LiveServer) -> list[Any]:
    return [s for s in server.app.state.sessions if s.student is not None]


def test_stop_all_stops_every_run_and_a_diverged_run_is_marked(live_server: LiveServer) -> None:
    with _class(live_server, 3) as (teacher, _, students):
        _open_experiment(teacher, values=[0.01, 0.1, 10.0], config={**DIVERGES, "max_steps_per_s": 60})
        for student in students:
            _enter(student)
        summary = _summary(teacher, lambda m: _points(m).get(3, {}).get("state") == "diverged")
        diverged = _points(summary)[3]
        assert diverged["value"] == 10.0 and 0 < diverged["step"] < 2000
        assert all(p["state"] == "running" for i, p in _points(summary).items() if i != 3)
        _send(teacher, {"type": "experiment_stop_all"})
        assert _until(teacher, lambda m: m["type"] == "experiment")["state"] == "stopped"
        for student in students[:2]:
            assert (
                _until(student, lambda m: m["type"] == "state" and m["state"] != "running")["state"]
                == "stopped"
            )
        final = _summary(
            teacher, lambda m: [p["state"] for p in m["students"]] == ["stopped", "stopped", "diverged"]
        )
        assert final["state"] == "stopped"
        # Stopped means stopped: nobody starts again until the teacher opens a new experiment.
        _send(students[0], {"type": "experiment_join"})
        assert _error(students[0])["code"] == "experiment_closed"
        _send(teacher, {"type": "experiment_close"})
        assert _until(teacher, lambda m: m["type"] == "experiment")["state"] == "ended"
        _open_experiment(teacher, values=[0.1, 0.3])  # a new one may follow
        assert _enter(students[0])["index"] == 0


def test_a_student_picks_a_value_when_the_teacher_lets_them(live_server: LiveServer) -> None:
    with _class(live_server, 1) as (teacher, _, (student,)):
        _open_experiment(teacher, field="norm", values=["none", "batch", "layer"], assign="choice")
        _send(student, {"type": "experiment_join"})
        assert _error(student)["errors"][0]["field"] == "index"
        _send(student, {"type": "experiment_join", "index": 3})
        assert "< 3" in _error(student)["errors"][0]["message"]
        assigned = _enter(student, 2)
        assert assigned["value"] == "layer" and assigned["config"]["norm"] == "layer"
        assert _until(student, lambda m: m["type"] == "started")["config"]["norm"] == "layer"
        assert _summary(teacher, lambda m: len(m["students"]) == 1)["students"][0]["value"] == "layer"
        # Their own run is theirs to pause and resume (its settings stay the teacher's).
        _send(student, {"type": "pause"})
        assert (
            _until(student, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "paused"
        )
        assert _summary(teacher, lambda m: m["students"][0]["state"] == "paused")
        _send(student, {"type": "resume"})
        assert _until(student, lambda m: m["type"] == "state")["state"] == "running"
        # Picking another value restarts the run with it.
        assert _enter(student, 0)["config"]["norm"] == "none"
        assert _until(student, lambda m: m["type"] == "started")["config"]["norm"] == "none"


def test_a_teacher_who_comes_back_gets_the_experiment_and_the_class() -> None:
    settings = Settings(max_jobs_per_client=0, max_runs=4, room_grace_s=30)
    with serve(settings) as server, _open(server) as student:
        with _open(server) as teacher:
            room = _open_room(teacher)
            _join(student, room["code"])
            _open_experiment(teacher)
            _enter(student)
            _summary(teacher, lambda m: len(m["students"]) == 1)
        # The teacher's tab closed; the student's run goes on, and a new tab takes the room back.
        step = _until(student, lambda m: m["type"] == "frame")["step"]
        with _open(server) as back:
            _send(back, {"type": "room_rejoin", "code": room["code"], "key": room["key"]})
            announced = _until(back, lambda m: m["type"] == "experiment")
            assert announced["field"] == "lr" and announced["state"] == "open"
            summary = _summary(back, lambda m: len(m["students"]) == 1)
            assert summary["students"][0]["step"] >= step
            _send(back, {"type": "experiment_stop_all"})
            assert (
                _until(student, lambda m: m["type"] == "state" and m["state"] != "running")["state"]
                == "stopped"
            )


def test_ending_the_room_ends_the_experiment_and_its_runs(live_server: LiveServer) -> None:
    with _class(live_server, 1) as (teacher, code, (student,)):
        _open_experiment(teacher)
        _enter(student)
        _until(student, lambda m: m["type"] == "frame")
        experiment = _experiment(live_server, code)
        _send(teacher, {"type": "room_close"})
        assert (
            _until(student, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "stopped"
        )
        assert not experiment.live
