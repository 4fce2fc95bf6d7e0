"""A recording opened in a room, for every viewer: `POST/GET /api/rooms/{code}/recording`.

A saved recording (static/js/recording.js, format "shiftscope-recording") runs to ~18 MB, far past
a websocket message (`max_message_bytes`), so the teacher's page posts the file over HTTP with the
room's control key. The room holds it in memory (one per room, the newest replacing the last) and
drops it when it ends; viewers are told by a `room_recording` message (late joiners after their
history) and fetch it with their connection's session token, which only a connection watching or
leading that room may use. Where the recording is and which step it shows travels in the
teacher's page state, as the rest of the page does.

    POST /api/rooms/K7P3QX/recording   X-Room-Key: <key>         <the recording's JSON>
    GET  /api/rooms/K7P3QX/recording   X-Upload-Token: <hello.upload.token>
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.bodies import http_error, read_bounded
from app.config import Settings
from app.rooms import RoomError, RoomRecording, Rooms, normalise_code
from app.security import origin_allowed
from app.session import Session
from app.uploads import TOKEN_HEADER, session_of  # the session's token, told to its websocket alone

__all__ = ["KEY_HEADER", "RoomRecording", "receive_recording", "send_recording"]

KEY_HEADER = "x-room-key"
FORMAT = "shiftscope-recording"


def _frame_count(body: bytes) -> int:
    """Frames in a recording's text; ValueError naming what makes it no recording."""
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("the body is not JSON: not a ShiftScope recording") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"the body is not a ShiftScope recording (format {FORMAT!r})")
    started, frames = record.get("started"), record.get("frames")
    if not isinstance(started, dict) or started.get("type") != "started":
        raise ValueError("the recording has no run (its 'started' is missing)")
    if not isinstance(frames, list) or not frames:
        raise ValueError("the recording has no frames")
    return len(frames)


async def receive_recording(request: Request, code: str, rooms: Rooms | None, settings: Settings) -> Response:
    """The teacher's recording into room `code` (needs its control key), announced to viewers."""
    limit = settings.room_recording_max_bytes
    if rooms is None or limit <= 0:
        return http_error(404, "no_rooms", "this server does not share recordings in rooms")
    headers = request.headers
    if not origin_allowed(headers.get("origin"), headers.get("host"), settings.allowed_origins):
        return http_error(403, "origin", "recordings are taken from this server's own page only")
    client = request.client.host if request.client else "unknown"
    try:
        room = rooms.check_key(code, headers.get(KEY_HEADER, ""), client)
    except RoomError as refusal:
        return http_error(429 if refusal.code == "join_limited" else 403, refusal.code, refusal.message)
    body = await read_bounded(request, limit)
    if body is None:
        too_large = f"the recording is larger than {limit:,} bytes (SHIFTSCOPE_ROOM_RECORDING_MAX_BYTES)"
        return http_error(413, "too_large", too_large)
    try:
        frames = await asyncio.to_thread(_frame_count, body)  # ~18 MB of JSON: off the loop
    except ValueError as refusal:
        return http_error(422, "invalid_recording", str(refusal))
    if not rooms.is_open(room):  # ended while the body came
        return http_error(404, "no_room", "the room has ended")
    recording = RoomRecording(secrets.token_urlsafe(12), body, frames)
    room.recording = recording
    room.say(recording.notice())
    return JSONResponse({"id": recording.id, "bytes": len(recording.body), "frames": frames})


def send_recording(request: Request, code: str, sessions: Iterable[Session]) -> Response:
    """Room `code`'s recording, to a connection that watches or leads the room."""
    session = session_of(sessions, request.headers.get(TOKEN_HEADER))
    room = (session.watching or session.leading) if session is not None else None
    if room is None or room.code != normalise_code(code):
        return http_error(
            403, "not_in_room", "only a page watching or leading the room may fetch its recording"
        )
    recording = room.recording
    if recording is None:
        return http_error(404, "no_recording", "the room has no recording open")
    return Response(
        recording.body,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "X-Recording-Id": recording.id},
    )
