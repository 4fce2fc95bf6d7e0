"""A recording opened in a room (app/room_recordings.py), over real HTTP and websockets: the
teacher posts it with the room's control key, under a size cap; viewers are told (late joiners
too) and fetch it with their own connection's token; it goes when the room ends."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from app.config import Settings
from tests.conftest import LiveServer, serve
from tests.test_web import _send, _until

CAP = 64 * 1024


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    with serve(Settings(max_rooms_per_client=50, room_recording_max_bytes=CAP)) as server:
        yield server


@contextmanager
def _client(server: LiveServer) -> Iterator[tuple[ClientConnection, str]]:
    """A connection and its session token (hello.upload.token)."""
    with connect(server.ws, compression=None, max_size=None, open_timeout=10) as ws:
        hello = orjson.loads(ws.recv(timeout=10))
        yield ws, hello["upload"]["token"]


def _recording(frames: int = 3, padding: int = 0) -> bytes:
    started = {"type": "started", "run_id": 1, "layers": ["layer1"], "config": {"depth": 1}}
    frame = {"type": "frame", "step": 0, "layers": [{"name": "layer1"}], "pad": "x" * padding}
    body = {"format": "shiftscope-recording", "version": 1, "started": started, "frames": [frame] * frames}
    return orjson.dumps(body)


def _http(
    server: LiveServer, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{server.http}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as refusal:
        return refusal.code, refusal.read()


def _open_room(ws: ClientConnection) -> dict[str, Any]:
    _send(ws, {"type": "room_open"})
    return _until(ws, lambda m: m["type"] == "room")


def test_a_recording_reaches_every_viewer_needs_the_key_and_the_room(live_server: LiveServer) -> None:
    with _client(live_server) as (teacher, _), _client(live_server) as (viewer, viewer_token):
        room = _open_room(teacher)
        code, key = room["code"], room["key"]
        _send(viewer, {"type": "join", "code": code})
        _until(viewer, lambda m: m["type"] == "history")
        path = f"/api/rooms/{code}/recording"
        body = _recording()

        # Without the key, or with another, nothing is taken.
        assert _http(live_server, "POST", path, body)[0] == 403
        assert _http(live_server, "POST", path, body, {"X-Room-Key": "not-the-key"})[0] == 403
        # Not a recording: refused with the reason.
        status, reply = _http(live_server, "POST", path, b'{"format": "other"}', {"X-Room-Key": key})
        assert status == 422 and orjson.loads(reply)["code"] == "invalid_recording"

        status, reply = _http(live_server, "POST", path, body, {"X-Room-Key": key})
        assert status == 200
        posted = orjson.loads(reply)
        assert posted["bytes"] == len(body) and posted["frames"] == 3
        notice = _until(viewer, lambda m: m["type"] == "room_recording")
        assert notice == {"type": "room_recording", "id": posted["id"], "bytes": len(body), "frames": 3}

        # The viewer fetches it with its own connection's token; nobody else can.
        assert _http(live_server, "GET", path, headers={"X-Upload-Token": viewer_token}) == (200, body)
        assert _http(live_server, "GET", path)[0] == 403
        with _client(live_server) as (_, stranger_token):
            assert _http(live_server, "GET", path, headers={"X-Upload-Token": stranger_token})[0] == 403

        # A late joiner is told after the run so far.
        with _client(live_server) as (late, late_token):
            _send(late, {"type": "join", "code": code})
            _until(late, lambda m: m["type"] == "history")
            assert _until(late, lambda m: m["type"] == "room_recording")["id"] == posted["id"]
            assert _http(live_server, "GET", path, headers={"X-Upload-Token": late_token}) == (200, body)

        # The room ends: the recording goes with it.
        room_object = live_server.app.state.rooms.get(code)
        _send(teacher, {"type": "room_close"})
        _until(viewer, lambda m: m["type"] == "room_ended")
        assert room_object.recording is None
        assert _http(live_server, "GET", path, headers={"X-Upload-Token": viewer_token})[0] == 403
        assert _http(live_server, "POST", path, body, {"X-Room-Key": key})[0] == 403


def test_a_recording_past_the_cap_is_refused_unread(live_server: LiveServer) -> None:
    with _client(live_server) as (teacher, _):
        room = _open_room(teacher)
        path = f"/api/rooms/{room['code']}/recording"
        large = _recording(padding=CAP)
        status, reply = _http(live_server, "POST", path, large, {"X-Room-Key": room["key"]})
        assert status == 413 and orjson.loads(reply)["code"] == "too_large"
        assert live_server.app.state.rooms.get(room["code"]).recording is None
        # Just under the cap is taken.
        fits = _recording(frames=1, padding=CAP - len(_recording(frames=1)))
        assert len(fits) <= CAP
        assert _http(live_server, "POST", path, fits, {"X-Room-Key": room["key"]})[0] == 200
