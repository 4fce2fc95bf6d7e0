"""Rooms over real websockets: a teacher's run reaches every viewer, late joiners get the run so
far with no gap or duplicate, viewers cannot steer, codes and keys are checked and throttled,
and a teacher who drops keeps the room (and the run) for the grace period."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.sync.client import ClientConnection

from app.config import Settings
from app.rooms import CODE_ALPHABET, CODE_LENGTH, RoomHistory, normalise_code
from tests.conftest import LiveServer, serve
from tests.test_web import SMALL, _open, _send, _state, _until, eventually

PACED = {**SMALL, "steps": 100_000, "max_steps_per_s": 100, "emit_every": 5}


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    # Every client here is 127.0.0.1, and a room outlives its teacher's socket by the grace
    # period: lift the per-address caps that would otherwise carry over between tests.
    with serve(Settings(max_rooms_per_client=50, max_jobs_per_client=20)) as server:
        yield server


def _open_room(ws: ClientConnection) -> dict[str, Any]:
    _send(ws, {"type": "room_open"})
    room = _until(ws, lambda m: m["type"] in ("room", "error"))
    assert room["type"] == "room" and room["role"] == "teacher" and "key" in room, room
    return room


def _join(ws: ClientConnection, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Join `code`: the room's summary and the history's messages."""
    _send(ws, {"type": "join", "code": code})
    room = _until(ws, lambda m: m["type"] in ("room", "error"))
    assert room["type"] == "room", room
    history = _until(ws, lambda m: m["type"] == "history")
    return room, history["messages"]


def test_a_code_is_six_unambiguous_symbols() -> None:
    assert CODE_LENGTH == 6 and not set("0O1IL5S2Z") & set(CODE_ALPHABET)
    assert normalise_code(" k7p-3qx ") == "K7P3QX"


def test_history_downsamples_evenly_and_keeps_the_run_bounded() -> None:
    history = RoomHistory(cap=8)
    history.add('{"type":"started"}', "started")
    for step in range(100):
        history.add(f'{{"type":"frame","step":{step}}}', "frame")
    steps = [orjson.loads(text)["step"] for text in history.frames]
    assert len(steps) < 8 and steps == sorted(steps) and steps[0] == 0
    gaps = {b - a for a, b in zip(steps, steps[1:], strict=False)}
    assert len(gaps) == 1  # evenly spaced
    messages = orjson.loads(history.message())["messages"]
    assert messages[0] == {"type": "started"} and len(messages) == 1 + len(steps)


def test_the_teachers_run_reaches_viewers_and_a_late_joiner_gets_it_from_step_0(
    live_server: LiveServer,
) -> None:
    with _open(live_server) as teacher, _open(live_server) as early:
        room = _open_room(teacher)
        code = room["code"]
        summary, history = _join(early, code)
        assert summary["role"] == "viewer" and "key" not in summary and history == []
        _send(teacher, {"type": "start", "config": PACED})
        assert _until(early, lambda m: m["type"] == "started")["config"]["depth"] == SMALL["depth"]
        early_steps: list[int] = []  # every frame the viewer who watched from the start got
        while not early_steps or early_steps[-1] < 50:
            early_steps.append(_until(early, lambda m: m["type"] == "frame")["step"])
        with _open(live_server) as late:
            _, history = _join(late, code)
            kinds = [m["type"] for m in history]
            assert kinds[0] == "started" and kinds.count("frame") >= 10
            steps = [m["step"] for m in history if m["type"] == "frame"]
            assert steps[0] == 0 and steps == sorted(set(steps))  # from the start, no duplicate
            live = _until(late, lambda m: m["type"] == "frame")
            # No gap between the history and the live frames: the viewer that watched from the
            # start (its socket's buffers hold what it has not read yet) got the same frame after
            # the history's last. A watched run's frames come by the clock, not on a fixed grid.
            while early_steps[-1] < live["step"]:
                early_steps.append(_until(early, lambda m: m["type"] == "frame")["step"])
            assert early_steps[: len(steps)] == steps
            assert early_steps[len(steps)] == live["step"]
            _send(teacher, {"type": "pause"})
            assert _until(late, lambda m: m["type"] == "state")["state"] == "paused"
        _send(teacher, {"type": "stop"})
        assert _until(early, lambda m: m["type"] == "state" and m["state"] == "stopped")


def test_viewers_cannot_steer_the_room_and_may_leave_to_train_their_own(live_server: LiveServer) -> None:
    with _open(live_server) as teacher, _open(live_server) as viewer:
        code = _open_room(teacher)["code"]
        _join(viewer, code)
        for message in (
            {"type": "pause"},
            {"type": "set", "lr": 0.5},
            {"type": "start", "config": SMALL},
            {"type": "room_lock", "locked": True},
            {"type": "room_state", "state": {"view": "drift"}},
        ):
            _send(viewer, message)
            error = _until(viewer, lambda m: m["type"] == "error")
            assert error["code"] == "not_teacher", (message, error)
        # Fork: leave, then start with the room's config; admission as for anyone.
        _send(viewer, {"type": "leave"})
        assert _until(viewer, lambda m: m["type"] == "room_left")["code"] == code
        _send(viewer, {"type": "start", "config": {**SMALL, "steps": 10}})
        assert _until(viewer, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "done"


def test_page_state_lock_viewer_count_and_end(live_server: LiveServer) -> None:
    with _open(live_server) as teacher, _open(live_server) as viewer:
        code = _open_room(teacher)["code"]
        _send(teacher, {"type": "room_state", "state": {"preset": "relu-dying", "view": "drift"}})
        summary, _ = _join(viewer, code)
        assert summary["state"] == {"preset": "relu-dying", "view": "drift"}
        assert _until(teacher, lambda m: m["type"] == "room" and m["viewers"] == 1)["role"] == "teacher"
        _send(teacher, {"type": "room_state", "state": {"preset": "relu-dying", "view": "layers"}})
        assert _until(viewer, lambda m: m["type"] == "room_state")["state"]["view"] == "layers"
        _send(teacher, {"type": "room_lock", "locked": True})
        with _open(live_server) as latecomer:
            _send(latecomer, {"type": "join", "code": code})
            assert _until(latecomer, lambda m: m["type"] == "error")["code"] == "room_locked"
        _send(teacher, {"type": "room_close"})
        assert _until(viewer, lambda m: m["type"] == "room_ended")["reason"] == "the teacher ended the room"
        # The viewer's session is its own again: it may train.
        _send(viewer, {"type": "start", "config": {**SMALL, "steps": 10}})
        assert _until(viewer, lambda m: m["type"] in ("started", "error"))["type"] == "started"


def test_wrong_codes_and_keys_are_refused_and_throttled_per_address() -> None:
    with serve(Settings(room_join_failure_burst=3, room_join_failures_per_minute=1)) as server:
        with _open(server) as teacher, _open(server) as guesser:
            room = _open_room(teacher)
            for _ in range(3):
                _send(guesser, {"type": "join", "code": "AAAAAA" if room["code"] != "AAAAAA" else "BBBBBB"})
                assert _until(guesser, lambda m: m["type"] == "error")["code"] == "no_room"
            _send(guesser, {"type": "join", "code": room["code"]})  # right, but the address is out of tries
            assert _until(guesser, lambda m: m["type"] == "error")["code"] == "join_limited"
            _send(guesser, {"type": "room_rejoin", "code": room["code"], "key": "guess"})
            assert _until(guesser, lambda m: m["type"] == "error")["code"] == "join_limited"


def _teacher_runs_then_leaves(server: LiveServer, viewer: ClientConnection) -> dict[str, Any]:
    """A teacher opens a room that `viewer` joins, starts a run, and closes the connection once
    the viewer has seen 20 steps of it. Returns the teacher's `room` (with its key)."""
    with _open(server) as teacher:
        room = _open_room(teacher)
        _join(viewer, room["code"])
        _send(teacher, {"type": "start", "config": PACED})
        _until(viewer, lambda m: m["type"] == "frame" and m["step"] >= 20)
    return room


def test_a_teacher_who_drops_returns_within_the_grace_period_with_the_run() -> None:
    with serve(Settings(room_grace_s=30)) as server, _open(server) as viewer:
        room = _teacher_runs_then_leaves(server, viewer)
        # The teacher's tab closed: viewers are told to wait, and the run goes on for them.
        assert _until(viewer, lambda m: m["type"] == "room_waiting")["grace_s"] == 30
        step = _until(viewer, lambda m: m["type"] == "frame")["step"]
        with _open(server) as back:
            _send(back, {"type": "room_rejoin", "code": room["code"], "key": room["key"]})
            summary = _until(back, lambda m: m["type"] == "room")
            assert summary["role"] == "teacher" and summary["viewers"] == 1
            history = _until(back, lambda m: m["type"] == "history")["messages"]
            assert history[0]["type"] == "started"
            assert _until(back, lambda m: m["type"] == "frame")["step"] > step  # the run is theirs again
            _send(back, {"type": "stop"})
            assert _until(viewer, lambda m: m["type"] == "state")["state"] == "stopped"


def test_past_the_grace_period_viewers_are_told_the_room_ended() -> None:
    with serve(Settings(room_grace_s=0.5)) as server, _open(server) as viewer:
        room = _teacher_runs_then_leaves(server, viewer)
        ended = _until(viewer, lambda m: m["type"] == "room_ended", timeout=15)
        assert ended["reason"] == "the teacher left"
        eventually(lambda: len(server.app.state.rooms) == 0)
        eventually(lambda: all(w.job is None for w in server.app.state.pool.workers), timeout=15)
        with _open(server) as other:
            _send(other, {"type": "room_rejoin", "code": room["code"], "key": room["key"]})
            assert _until(other, lambda m: m["type"] == "error")["code"] == "bad_key"


def test_room_limits_per_server_and_per_address() -> None:
    with serve(Settings(max_rooms=3, max_rooms_per_client=2, max_viewers_per_room=1)) as server:
        with (
            _open(server) as a,
            _open(server) as b,
            _open(server) as c,
            _open(server) as v1,
            _open(server) as v2,
        ):
            code = _open_room(a)["code"]
            _open_room(b)
            _send(c, {"type": "room_open"})
            error = _until(c, lambda m: m["type"] == "error")
            assert error["code"] == "room_limit" and "this address leads 2" in error["message"]
            _join(v1, code)
            with _open(server) as v2:
                _send(v2, {"type": "join", "code": code})
                assert _until(v2, lambda m: m["type"] == "error")["code"] == "room_full"
            # Nothing leaks between rooms: b's room hears nothing of a's run.
            _send(a, {"type": "start", "config": {**SMALL, "steps": 10}})
            _until(v1, _state("done"))
            time.sleep(0.2)
            assert server.app.state.rooms is not None and len(server.app.state.rooms) == 2


def test_rooms_can_be_switched_off() -> None:
    with serve(Settings(max_rooms=0)) as server, _open(server) as ws:
        _send(ws, {"type": "room_open"})
        assert _until(ws, lambda m: m["type"] == "error")["code"] == "no_rooms"


@pytest.mark.parametrize("code", ["k7p3qx", "K7P3QX", "k7p-3qx"])
def test_the_join_link_leads_to_the_page_with_its_room(live_server: LiveServer, code: str) -> None:
    import httpx

    reply = httpx.get(f"{live_server.http}/r/{code}")
    assert reply.status_code == 307 and reply.headers["location"] == "../?room=K7P3QX"
    page = httpx.get(f"{live_server.http}/r/{code}", follow_redirects=True)
    assert page.status_code == 200 and str(page.url).endswith("/?room=K7P3QX")


def test_the_join_link_as_a_qr_code(live_server: LiveServer) -> None:
    import httpx

    reply = httpx.get(f"{live_server.http}/r/k7p3qx/qr.svg")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("image/svg+xml")
    svg = reply.text
    assert "<svg" in svg and 'xmlns="http://www.w3.org/2000/svg"' in svg  # a document an <img> shows
    assert f"Join: {live_server.http}/r/K7P3QX" in svg
    assert svg.count("h") > 50  # the modules' path: a real code, not an empty picture
    # A code that does not exist gets a picture too: the endpoint is no oracle for open rooms.
    assert httpx.get(f"{live_server.http}/r/AAAAAA/qr.svg").status_code == 200
