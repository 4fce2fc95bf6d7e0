"""Rooms: a teacher's run on every student's screen.

A teacher's session opens a room: a short code that anyone may join to watch, and a secret
control key that only the teacher holds (the join link never carries it). Everything the
teacher's run says (started, frames, states, sweep results) is published once to the room and
handed, as the same encoded text, to each viewer's own outbox: a viewer that reads slowly keeps
only its newest frame, exactly as a solo client does, and stalls nobody. The teacher's page
state (preset, controls, compare, tab, band layer: `PageState`) is published beside it.

A late joiner gets the run so far in one `history` message (its `started`, the frames, evenly
downsampled past `room_history_frames`, its sweep results and its last state), then the live
messages: both are taken under the room's lock, so there is no gap and no duplicate.

A teacher who drops keeps the room, and the run, for `room_grace_s`; reconnecting with the key
takes both back. Past it, or on `room_close`, viewers are told the room ended.

    room = rooms.open(teacher_outbox, client="10.0.0.5")   # room.code "K7P3QX", room.key
    rooms.join("K7P3QX", viewer_outbox, client="10.0.0.9")  # history, then live messages
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.config import Settings
from app.runner import Outbox, encode
from app.security import FailureThrottle

__all__ = ["CODE_ALPHABET", "CODE_LENGTH", "Room", "RoomError", "RoomHistory", "RoomRecording", "Rooms"]

# No 0/O, 1/I/L, 5/S or 2/Z pairs to misread off a projector: 27 symbols, 6 of them ~3.9e8 codes.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 6
# Run messages a room republishes; everything else a teacher receives (errors, room replies,
# hello, queued) is for the teacher alone.
PUBLISHED = frozenset({"started", "state", "sweep_result"})
ANNOUNCE_EVERY_S = 0.5  # viewers hear the viewer count at most this often


class RoomError(Exception):
    """A refused room action: `code` is the wire error code (the session answers it as an
    `error` message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """What a student typed, as a code: case and separators do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class RoomHistory:
    """The current run so far, bounded: its `started`, frames (evenly downsampled past `cap`: when
    full, every other one goes and the stride doubles), sweep results, and its last state."""

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.started: str | None = None
        self.frames: list[str] = []
        self.results: list[str] = []
        self.state: str | None = None
        self._stride = 1
        self._seen = 0  # frames offered since the run started
        self._message: str | None = None  # message(), until the next change: joiners share it

    def add(self, text: str, kind: str) -> None:
        self._message = None
        if kind == "started":
            self.started, self.frames, self.results, self.state = text, [], [], None
            self._stride, self._seen = 1, 0
        elif kind == "frame":
            self._seen += 1
            if (self._seen - 1) % self._stride:
                return
            self.frames.append(text)
            if len(self.frames) >= self.cap:
                self.frames = self.frames[::2]
                self._stride *= 2
        elif kind == "sweep_result":
            self.results.append(text)
        elif kind == "state":
            self.state = text

    def message(self) -> str:
        """One `history` message built from the stored texts, without re-encoding them; the same
        text (one copy in memory) for every joiner until the run says more."""
        if self._message is None:
            parts = [t for t in (self.started, *self.frames, *self.results, self.state) if t is not None]
            self._message = '{"type":"history","messages":[' + ",".join(parts) + "]}"
        return self._message


@dataclass(frozen=True)
class RoomRecording:
    """A recording file a room's teacher opened (app/room_recordings.py): its bytes as posted, and
    a fresh id per post."""

    id: str
    body: bytes
    frames: int

    def notice(self) -> dict[str, Any]:
        return {"type": "room_recording", "id": self.id, "bytes": len(self.body), "frames": self.frames}


@dataclass(eq=False)
class Room:
    code: str
    key_hash: bytes
    client: str  # the teacher's address
    history: RoomHistory
    teacher: Outbox | None = None  # the outbox the run's messages are teed from
    present: bool = True  # the teacher's connection is open
    viewers: dict[int, Outbox] = field(default_factory=dict)  # id(outbox) -> outbox
    state: str = "{}"  # the teacher's page state, JSON
    locked: bool = False
    run: Any = None  # the teacher's run, held by the room while the teacher is away
    dropped_at: float | None = None  # the teacher's connection went away at (monotonic)
    active_at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    announcing: bool = False  # a viewer-count message to viewers is scheduled
    # A class experiment (app/experiments.py): viewers who train their own run in it are not
    # sent the teacher's run (their page shows theirs), until they leave or join again.
    experiment: Any = None
    training: set[int] = field(default_factory=set)  # id(outbox) of those viewers
    # Across replicas (app/relay.py, with SHIFTSCOPE_REDIS_URL): a room this replica owns is
    # relayed (every message also goes to Redis); a mirror is another replica's room, fed from
    # Redis to this replica's viewers. `seq` numbers the relayed messages.
    relay: Any = None  # the RoomRelay publishing this owned room
    relayed: bool = False
    mirror: bool = False
    seq: int = 0
    remote_viewers: int = 0  # viewers on other replicas
    # A recording the teacher opened (app/room_recordings.py): served to viewers over HTTP, held
    # in this process's memory (and, across replicas, in Redis), dropped when the room closes.
    recording: RoomRecording | None = None

    def publish(self, text: str, slot: str | None, keep: bool, kind: str | None = None) -> None:
        """A message of the teacher's run (any thread): recorded, then handed to every viewer."""
        if kind is None and slot is None:
            kind = orjson.loads(text).get("type")
            if kind not in PUBLISHED:
                return
        elif kind is None:
            kind = "frame"
        with self.lock:
            self.history.add(text, kind)
            viewers = [v for key, v in self.viewers.items() if key not in self.training]
            self.active_at = time.monotonic()  # a room with a live run is not idle
            if self.relay is not None:  # in the lock: Redis gets them in the history's order
                self.relay.published(self, kind, text, slot, keep)
        for viewer in viewers:
            viewer.put_text(text, slot, None, keep)

    def say(self, message: dict[str, Any]) -> None:
        """A room message (not the run's) to every viewer, on every replica."""
        text = encode(message)
        self.say_text(text)
        if self.relay is not None:
            self.relay.said(self, text)

    def say_text(self, text: str) -> None:
        """An encoded room message to this replica's viewers."""
        with self.lock:
            viewers = list(self.viewers.values())
        for viewer in viewers:
            viewer.put_text(text)

    def summary(self, role: str) -> dict[str, Any]:
        return {
            "type": "room",
            "code": self.code,
            "role": role,
            "viewers": len(self.viewers) + self.remote_viewers,
            "locked": self.locked,
            "teacher": self.present,
        }


class Rooms:
    """The rooms of this server, with their limits. All methods run on the event loop, except
    Room.publish, which worker threads call."""

    def __init__(
        self,
        max_rooms: int,
        max_rooms_per_client: int,
        max_viewers: int,
        history_frames: int,
        grace_s: float,
        idle_s: float,
        join_burst: int,
        joins_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rooms, self.max_viewers, self.history_frames = max_rooms, max_viewers, history_frames
        self.max_rooms_per_client = max_rooms_per_client
        self.grace_s, self.idle_s = grace_s, idle_s
        self._joins = FailureThrottle(join_burst, joins_per_minute)  # failed joins per address
        self._rooms: dict[str, Room] = {}
        self._mirrors: dict[str, Room] = {}  # other replicas' rooms this replica's viewers watch
        self._clock = clock
        self.relay: Any = None  # app/relay.RoomRelay when rooms span replicas (Redis)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rooms | None:
        """The server's rooms with its limits; None where rooms are off (`max_rooms` 0)."""
        if settings.max_rooms <= 0:
            return None
        return cls(
            settings.max_rooms,
            settings.max_rooms_per_client,
            settings.max_viewers_per_room,
            settings.room_history_frames,
            settings.room_grace_s,
            settings.room_idle_s,
            settings.room_join_failure_burst,
            settings.room_join_failures_per_minute,
        )

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, code: str) -> Room | None:
        code = normalise_code(code)
        return self._rooms.get(code) or self._mirrors.get(code)

    def owned(self) -> list[Room]:
        """The rooms led from this replica."""
        return list(self._rooms.values())

    def add_mirror(self, room: Room) -> None:
        self._mirrors[room.code] = room

    def drop_mirror(self, room: Room) -> None:
        if self._mirrors.get(room.code) is room:
            del self._mirrors[room.code]

    def join_refused(self, client: str) -> None:
        """A join that named no room on any replica: counted against the address."""
        self._joins.failed(client)

    def join_blocked(self, client: str) -> None:
        if self._joins.blocked(client):
            raise RoomError("join_limited", "too many wrong room codes from this address; wait a minute")

    def open(self, teacher: Outbox, client: str) -> tuple[Room, str]:
        """A new room led by `teacher`; returns it and its control key (shown only to the teacher)."""
        self.expire()
        if len(self._rooms) >= self.max_rooms:
            raise RoomError("room_limit", f"this server holds {self.max_rooms} rooms, its most: try later")
        if sum(1 for room in self._rooms.values() if room.client == client) >= self.max_rooms_per_client:
            raise RoomError(
                "room_limit", f"this address leads {self.max_rooms_per_client} rooms already: end one first"
            )
        code = new_code()
        while code in self._rooms or code in self._mirrors:
            code = new_code()
        key = secrets.token_urlsafe(18)
        room = Room(code, _hash(key), client, RoomHistory(self.history_frames), teacher=teacher)
        if teacher.last_started is not None:  # a run in progress: late joiners start from here
            room.history.add(teacher.last_started, "started")
        self._rooms[code] = room
        teacher.tee = room.publish
        if self.relay is not None:
            room.relay = self.relay
            self.relay.opened(room)
        return room, key

    def join(self, code: str, viewer: Outbox, client: str) -> Room:
        """Add `viewer` to the room `code`: the room's summary, the teacher's page state and the
        run so far, then every live message. Wrong codes are throttled per address."""
        self.join_blocked(client)
        room = self.get(code)
        if room is None:
            self._joins.failed(client)
            raise RoomError("no_room", f"there is no room {normalise_code(code)!r}: check the code")
        if room.locked:
            raise RoomError("room_locked", "the teacher has closed this room to new viewers")
        if len(room.viewers) + room.remote_viewers >= self.max_viewers:
            raise RoomError("room_full", f"this room has its {self.max_viewers} viewers already")
        with room.lock:  # history and live messages meet here: no gap, no duplicate
            viewer.put(room.summary("viewer") | {"state": orjson.loads(room.state)})
            viewer.put_text(room.history.message())
            room.viewers[id(viewer)] = viewer
        self._touch(room)
        self.announce(room)
        return room

    def leave(self, room: Room, viewer: Outbox) -> None:
        with room.lock:
            room.viewers.pop(id(viewer), None)
            room.training.discard(id(viewer))
            last = not room.viewers
        if room.experiment is not None:
            room.experiment.drop(viewer)  # their run stops and their point goes
        if room.mirror and last and self.relay is not None:
            self.relay.release(room)  # nobody here watches it any more
        self.announce(room)

    def check_key(self, code: str, key: str, client: str) -> Room:
        self.join_blocked(client)
        room = self._rooms.get(normalise_code(code))
        if room is None or not hmac.compare_digest(room.key_hash, _hash(key)):
            self._joins.failed(client)
            raise RoomError("bad_key", "that room code and control key do not match an open room")
        return room

    def set_state(self, room: Room, state: dict[str, Any]) -> None:
        room.state = encode(state)
        room.say({"type": "room_state", "state": state})
        self._touch(room)

    def set_locked(self, room: Room, locked: bool) -> None:
        room.locked = locked
        self.announce(room)

    def teacher_left(self, room: Room, run: Any) -> None:
        """The teacher's connection went away: the room, and the run it keeps publishing, wait
        `grace_s` for them."""
        room.present, room.run, room.dropped_at = False, run, self._clock()
        room.say({"type": "room_waiting", "grace_s": self.grace_s})

    def teacher_back(self, room: Room, teacher: Outbox) -> Any:
        """The teacher came back with the key (or opened a second tab): `teacher` leads the room
        from now on, after the room's summary, page state and run so far. Returns the run the
        room kept for them, whose messages now go to `teacher` (or None)."""
        with room.lock:  # nothing is published while the run changes hands
            teacher.put(room.summary("teacher") | {"state": orjson.loads(room.state)})
            teacher.put_text(room.history.message())
            if room.teacher is not None:
                room.teacher.tee = None
            room.teacher, room.present, room.dropped_at = teacher, True, None
            run, room.run = room.run, None
            if run is not None and run.active:
                teacher.run_id, run.outbox = run.run_id, teacher
            else:
                run = None
            teacher.tee = room.publish
        self._touch(room)
        self.announce(room)
        return run

    def is_open(self, room: Room) -> bool:
        return self._rooms.get(room.code) is room or self._mirrors.get(room.code) is room

    def close(self, room: Room, reason: str) -> None:
        if self._rooms.get(room.code) is not room:
            return
        del self._rooms[room.code]
        if room.experiment is not None:
            room.experiment.close()
        if room.teacher is not None:
            room.teacher.tee = None
        room.say({"type": "room_ended", "reason": reason})
        if room.relay is not None:
            room.relay.closed(room)
        if room.run is not None and room.run.active:
            room.run.stop()  # the teacher never came back for it
        with room.lock:
            room.viewers.clear()
        room.recording = None

    def expire(self) -> None:
        """End rooms whose teacher stayed away past the grace period, or that sat idle too long."""
        now = self._clock()
        for room in list(self._rooms.values()):
            if room.dropped_at is not None and now - room.dropped_at > self.grace_s:
                self.close(room, "the teacher left")
            elif now - room.active_at > self.idle_s:
                self.close(room, "the room was idle too long")

    def _touch(self, room: Room) -> None:
        room.active_at = self._clock()

    def announce(self, room: Room) -> None:
        """The viewer count and lock state, to the teacher at once and to every viewer at most
        every ANNOUNCE_EVERY_S: a class of V joining at once costs ~V such messages, not V²/2.
        A mirror's count reaches its owner by the relay's heartbeat, which announces it there."""
        if room.mirror:
            return
        if room.teacher is not None and room.present:
            room.teacher.put(room.summary("teacher"))
        if room.announcing:
            return
        room.announcing = True

        def announce() -> None:
            room.announcing = False
            if self.is_open(room):
                room.say(room.summary("viewer"))

        asyncio.get_running_loop().call_later(ANNOUNCE_EVERY_S, announce)
