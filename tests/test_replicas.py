"""Rooms across replicas (app/relay.py) with real components on loopback: Debian's redis-server
and two `python -m app` replicas sharing it. A viewer on replica 2 follows a room driven on
replica 1, joining late with history and no gap; Redis restarted mid-room, viewers resume;
replica 1 killed, viewers are told; no Redis, rooms stay in their process as before."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from app.relay import Mirror, Payload, RoomRelay
from app.rooms import Room, RoomHistory, Rooms
from app.runner import Outbox
from tests.replicas import RedisServer, Replica, redis_server, replica
from tests.test_web import SMALL, _send, _until

PACED = {**SMALL, "steps": 100_000, "max_steps_per_s": 100, "emit_every": 5}
TTL_S = 2.0
SETTINGS = {
    "max_rooms_per_client": "50",
    "max_jobs_per_client": "20",
    "spare_workers": "1",
    "room_ttl_s": str(TTL_S),
    "room_history_frames": "1000",
}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def replicas(redis: RedisServer) -> Iterator[tuple[Replica, Replica]]:
    settings = SETTINGS | {"redis_url": redis.url}
    with (
        replica(settings | {"replica_name": "one"}) as one,
        replica(settings | {"replica_name": "two"}) as two,
    ):
        yield one, two


TOKENS: dict[int, str] = {}  # id(connection) -> its session token (hello.upload.token)


@contextmanager
def _client(server: Replica) -> Iterator[ClientConnection]:
    with connect(server.ws, compression=None, max_size=None, open_timeout=10) as ws:
        hello = orjson.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        TOKENS[id(ws)] = hello["upload"]["token"]
        yield ws
        TOKENS.pop(id(ws), None)


def _open_room(ws: ClientConnection) -> dict[str, Any]:
    """The teacher's `room` answer: its code and control key."""
    _send(ws, {"type": "room_open"})
    room = _until(ws, lambda m: m["type"] in ("room", "error"))
    assert room["type"] == "room" and room["role"] == "teacher", room
    return room


def _join(ws: ClientConnection, code: str) -> list[dict[str, Any]]:
    """Join `code`; the history's messages."""
    _send(ws, {"type": "join", "code": code})
    room = _until(ws, lambda m: m["type"] in ("room", "error"))
    assert room["type"] == "room" and room["role"] == "viewer", room
    return list(_until(ws, lambda m: m["type"] == "history")["messages"])


def _frame_steps(ws: ClientConnection, past: int) -> list[int]:
    steps: list[int] = []
    while not steps or steps[-1] < past:
        steps.append(_until(ws, lambda m: m["type"] == "frame")["step"])
    return steps


def _relay(server: Replica) -> dict[str, Any]:
    relay = httpx.get(f"{server.http}/api/stats").json()["relay"]
    assert relay is not None
    return dict(relay)


def test_a_viewer_on_another_replica_follows_the_room_and_a_late_joiner_gets_history_without_gap(
    replicas: tuple[Replica, Replica],
) -> None:
    one, two = replicas
    with _client(one) as teacher, _client(one) as early:
        code = _open_room(teacher)["code"]
        assert _join(early, code) == []
        _send(teacher, {"type": "start", "config": PACED})
        _frame_steps(early, 40)  # a viewer on the owner, from step 0
        with _client(two) as late, _client(two) as later:
            history = _join(late, code)  # the first viewer on replica 2: its mirror's snapshot
            kinds = [m["type"] for m in history]
            assert kinds[0] == "started" and kinds.count("frame") >= 5, kinds
            assert history[0]["config"]["depth"] == SMALL["depth"]
            steps = [m["step"] for m in history if m["type"] == "frame"]
            live = _until(late, lambda m: m["type"] == "frame")["step"]
            # History then live: a contiguous stretch of every frame the room published (a late
            # joiner on the owner gets them all: its history holds 1000 frames), no duplicate.
            # A frame the viewer's own outbox replaced unsent (a slow reader, by design) is
            # counted in frames_dropped; then only the order is checked.
            with _client(one) as witness:
                published = [m["step"] for m in _join(witness, code) if m["type"] == "frame"]
            start = published.index(steps[0])
            if httpx.get(f"{two.http}/api/stats").json()["frames_dropped"] == 0:
                assert published[start : start + len(steps) + 1] == [*steps, live]
            else:
                assert steps == published[start : start + len(steps)] and live in published
            # A second viewer on replica 2 joins its mirror: the same run, from the same start.
            later_history = _join(later, code)
            assert later_history[0] == history[0] and later_history[1]["step"] == steps[0]
            # The teacher counts viewers on every replica (replica 2's reach it by heartbeat).
            _until(teacher, lambda m: m["type"] == "room" and m["viewers"] == 3, timeout=20)
            assert _until(late, lambda m: m["type"] == "room" and m["viewers"] == 3, timeout=20)
            # Viewers elsewhere cannot steer either.
            _send(late, {"type": "pause"})
            assert _until(late, lambda m: m["type"] == "error")["code"] == "not_teacher"
            _send(teacher, {"type": "room_state", "state": {"preset": "relu-dying", "view": "drift"}})
            assert _until(late, lambda m: m["type"] == "room_state")["state"]["view"] == "drift"
            _send(teacher, {"type": "pause"})
            assert _until(late, lambda m: m["type"] == "state")["state"] == "paused"
            _send(teacher, {"type": "room_close"})
            ended = _until(later, lambda m: m["type"] == "room_ended")
            assert ended["reason"] == "the teacher ended the room"
            assert _relay(two)["mirrors"] == 0
            # The code is gone for every replica.
            _send(late, {"type": "join", "code": code})
            assert _until(late, lambda m: m["type"] == "error")["code"] == "no_room"


def test_viewers_joining_at_once_on_another_replica_share_one_mirror(
    replicas: tuple[Replica, Replica],
) -> None:
    one, two = replicas
    with _client(one) as teacher, ExitStack() as stack:
        code = _open_room(teacher)["code"]
        _send(teacher, {"type": "start", "config": PACED})
        _until(teacher, lambda m: m["type"] == "frame")
        for round in range(2):  # the second class meets a mirror the first one left
            viewers = [stack.enter_context(_client(two)) for _ in range(4)]
            for viewer in viewers:  # all four joins in flight before any is answered
                _send(viewer, {"type": "join", "code": code})
            for viewer in viewers:
                assert _until(viewer, lambda m: m["type"] in ("room", "error"))["type"] == "room"
                _until(viewer, lambda m: m["type"] == "history")
                _until(viewer, lambda m: m["type"] == "frame")
            mirrored = _relay(two)["mirrored"]
            assert list(mirrored) == [code] and mirrored[code]["viewers"] == 4, (round, mirrored)
            for viewer in viewers:
                _send(viewer, {"type": "leave"})
                assert _until(viewer, lambda m: m["type"] == "room_left")["code"] == code
            assert _relay(two)["mirrored"] == {}
        _send(teacher, {"type": "room_close"})


def test_a_teacher_who_reaches_another_replica_is_told_the_proxy_lost_affinity(
    replicas: tuple[Replica, Replica],
) -> None:
    one, two = replicas
    with _client(one) as teacher, _client(two) as lost:
        room = _open_room(teacher)
        _send(lost, {"type": "room_rejoin", "code": room["code"], "key": room["key"]})
        error = _until(lost, lambda m: m["type"] == "error")
        assert error["code"] == "room_elsewhere" and "affinity" in error["message"], error
        _send(lost, {"type": "room_rejoin", "code": "QQQQQQ", "key": room["key"]})
        assert _until(lost, lambda m: m["type"] == "error")["code"] == "bad_key"
        _send(teacher, {"type": "room_close"})


def test_a_recording_the_teacher_opens_reaches_viewers_on_another_replica(
    replicas: tuple[Replica, Replica],
) -> None:
    one, two = replicas
    with _client(one) as teacher, _client(two) as viewer:
        room = _open_room(teacher)
        code, path = room["code"], f"/api/rooms/{room['code']}/recording"
        _join(viewer, code)
        started = {"type": "started", "run_id": 1, "layers": ["layer1"], "config": {"depth": 1}}
        frames = [{"type": "frame", "step": step, "layers": [{"name": "layer1"}]} for step in range(5)]
        body = orjson.dumps(
            {"format": "shiftscope-recording", "version": 1, "started": started, "frames": frames}
        )
        posted = httpx.post(f"{one.http}{path}", content=body, headers={"X-Room-Key": room["key"]})
        assert posted.status_code == 200, posted.text
        notice = _until(viewer, lambda m: m["type"] == "room_recording")
        assert notice["id"] == posted.json()["id"] and notice["frames"] == 5
        # The viewer's replica answers its GET from its own copy (taken from Redis once).
        fetched = httpx.get(f"{two.http}{path}", headers={"X-Upload-Token": TOKENS[id(viewer)]})
        assert fetched.status_code == 200 and fetched.content == body
        # A late joiner on replica 2 is told after its history, as on the owner.
        with _client(two) as late:
            _join(late, code)
            assert _until(late, lambda m: m["type"] == "room_recording")["id"] == notice["id"]
        _send(teacher, {"type": "room_close"})
        _until(viewer, lambda m: m["type"] == "room_ended")


def test_a_code_no_replica_has_is_refused(replicas: tuple[Replica, Replica]) -> None:
    _, two = replicas
    with _client(two) as viewer:
        _send(viewer, {"type": "join", "code": "QQQQQQ"})
        error = _until(viewer, lambda m: m["type"] == "error")
        assert error["code"] == "no_room" and "QQQQQQ" in error["message"]


def test_viewers_resume_after_redis_restarts_mid_room(
    redis: RedisServer, replicas: tuple[Replica, Replica]
) -> None:
    one, two = replicas
    with _client(one) as teacher, _client(two) as viewer:
        code = _open_room(teacher)["code"]
        _send(teacher, {"type": "start", "config": PACED})
        _until(teacher, lambda m: m["type"] == "frame" and m["step"] >= 20)
        _join(viewer, code)
        before = _frame_steps(viewer, 30)[-1]
        reconnects = _relay(two)["reconnects"]
        redis.stop()
        _until(viewer, lambda m: m["type"] == "room_reconnecting")
        redis.start()  # empty: the owner writes its room again, the mirror re-synchronises
        resumed = _until(viewer, lambda m: m["type"] in ("history", "room_ended"))
        assert resumed["type"] == "history", resumed
        kinds = [m["type"] for m in resumed["messages"]]
        assert kinds[0] == "started" and "frame" in kinds
        after = _until(viewer, lambda m: m["type"] == "frame")["step"]
        assert after > before
        relay = _relay(two)
        assert relay["connected"] and relay["reconnects"] == reconnects + 1 and relay["resyncs"] >= 1
        # Everything written again carries a TTL: a replica lost now would leave nothing behind.
        keys = redis.client().keys(f"shiftscope:room:{code}*")
        assert keys and all(redis.client().ttl(key) > 0 for key in keys), keys
        _send(teacher, {"type": "room_close"})
        assert _until(viewer, lambda m: m["type"] == "room_ended")["reason"] == "the teacher ended the room"


def test_viewers_elsewhere_are_told_when_the_owner_replica_is_killed(redis: RedisServer) -> None:
    settings = SETTINGS | {"redis_url": redis.url}
    with replica(settings | {"replica_name": "doomed"}) as owner, replica(settings) as other:
        with _client(owner) as teacher, _client(other) as viewer:
            code = _open_room(teacher)["code"]
            _send(teacher, {"type": "start", "config": PACED})
            _join(viewer, code)
            _frame_steps(viewer, 10)
            owner.process.kill()  # SIGKILL: no goodbye; its rooms expire with their TTL
            killed = time.monotonic()
            # The room's keys live TTL_S past the owner's last heartbeat; the mirror looks every
            # TTL_S/3: told within TTL_S + 2 beats, with slack for a busy machine.
            ended = _until(viewer, lambda m: m["type"] == "room_ended", timeout=TTL_S + 3.0)
            print(f"viewer told {time.monotonic() - killed:.2f} s after the owner was killed")
            assert ended["reason"] == "the teacher's server stopped answering"


def test_without_redis_rooms_stay_in_their_process() -> None:
    with replica(SETTINGS) as one, replica(SETTINGS) as two:
        assert httpx.get(f"{one.http}/api/stats").json()["relay"] is None
        with _client(one) as teacher, _client(two) as viewer:
            code = _open_room(teacher)["code"]
            _send(viewer, {"type": "join", "code": code})
            assert _until(viewer, lambda m: m["type"] == "error")["code"] == "no_room"


def test_a_payload_round_trips_and_a_mirror_drops_what_its_snapshot_covers_and_resyncs_on_a_gap() -> None:
    """The relay's sequence logic without Redis: a snapshot at seq 5, then live payloads (kept
    frames, which a viewer's outbox queues in order rather than keeping the newest)."""
    for slot in (None, "", "A"):
        payload = Payload(7, "frame", slot, True, '{"type":"frame","note":"two words"}')
        assert Payload.decode(payload.encode()) == payload

    async def scenario() -> tuple[list[int], int]:
        rooms = Rooms(20, 2, 300, 240, 60.0, 3600.0, 10, 10.0)
        relay = RoomRelay("redis://unused", rooms)
        syncs: list[Mirror] = []

        async def sync(mirror: Mirror, first: bool = False) -> None:
            syncs.append(mirror)

        relay._sync = sync  # type: ignore[method-assign]
        viewer = Outbox(lambda: None)
        mirror = Mirror(Room("K7P3QX", b"", "", RoomHistory(240), mirror=True))
        mirror.room.viewers[id(viewer)] = viewer
        frame = '{{"type":"frame","step":{}}}'
        started = '{"type":"started","run_id":1}'
        for seq in (4, 5, 6):  # live payloads while the snapshot is read
            relay._receive(mirror, Payload(seq, "frame", "", True, frame.format(seq)))
        meta = {"owner": "one", "seq": "5", "started": Payload(1, "started", None, False, started).encode()}
        snapshot = {"meta": meta, "results": [], "frames": [], "counts": {}}
        relay._apply_snapshot(mirror, snapshot)  # 4 and 5 are in it; 6 is applied
        relay._receive(mirror, Payload(6, "frame", "", True, frame.format(6)))  # a repeat: dropped
        relay._receive(mirror, Payload(7, "frame", "", True, frame.format(7)))
        relay._receive(mirror, Payload(9, "frame", "", True, frame.format(9)))  # 8 was lost
        await asyncio.sleep(0)  # the re-sync task runs
        steps = [orjson.loads(text)["step"] for text in viewer.take() if text.startswith('{"type":"frame"')]
        return steps, len(syncs)

    steps, syncs = asyncio.run(scenario())
    assert steps == [6, 7] and syncs == 1
