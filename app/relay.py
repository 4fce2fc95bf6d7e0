"""Rooms across replicas: each room's messages relayed through Redis (SHIFTSCOPE_REDIS_URL).

N identical single-process replicas sit behind a proxy. The replica whose teacher opened a room
owns it: its run trains there and everything the room says goes out there, as today, and is
also published once to Redis. Another replica with viewers of that room keeps a *mirror* of it:
one subscription per room on the replica's one pub/sub connection, fanned out to its own viewers
by the same `Room` code the owner uses (so a slow viewer costs only its newest frame, anywhere).

Keys, for a room with code C (all under `shiftscope:`), each with a TTL the owner's heartbeat
refreshes every ttl/3, so a lost owner's rooms vanish within `room_ttl_s`:

    room:C           hash: owner, client, locked, present, state (the page state), seq, and the
                     payloads of the run's `started` and last `state`
    room:C:log       stream of the run's recent frames, ids "<seq>-0", XADD MAXLEN ~ history
    room:C:results   list of the run's sweep results
    room:C:viewers   hash: replica -> "<viewers> <unix time>"
    room:C:recording the recording the teacher opened in the room (its `room_recording` notice in
                     the hash), for viewers on other replicas
    channel room:C   every message, as a payload "<seq> <kind> <slot> <keep> <text>"

The owner writes each message in one MULTI: the keys above, `seq`, then PUBLISH. A mirror
subscribes first, waits for Redis to confirm, reads a snapshot (one MULTI: the hash, the results,
the log) and buffers live payloads meanwhile; buffered payloads whose seq the snapshot covers are
dropped, the rest applied: no gap, no duplicate (the XADD-then-PUBLISH race). A seq that skips
(pub/sub is at-most-once; Redis cuts slow subscribers; a publish failed while Redis was down)
makes the mirror take a fresh snapshot and hand its viewers the run again as a `history`.

redis-py's asyncio pub/sub does not reconnect by itself: the reader reconnects with backoff,
re-subscribes, and re-synchronises every mirror; meanwhile viewers are told `room_reconnecting`.
After a Redis restart the owner's heartbeat finds its hash gone and writes the room again from
its own in-process history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.rooms import Room, RoomError, RoomHistory, RoomRecording

if TYPE_CHECKING:
    from app.rooms import Rooms

__all__ = ["Payload", "RoomRelay", "replica_name"]

log = logging.getLogger("shiftscope.relay")

PREFIX = "shiftscope:"
PENDING_MAX = 4096  # messages waiting for Redis; past it the oldest go (mirrors re-sync on the gap)
BATCH = 64  # messages per MULTI
BUFFER_MAX = 2048  # live payloads a synchronising mirror holds; past it the oldest go (it re-syncs)
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 2.0
# A code not (yet) in Redis is looked up again this often: the owner writes a new room on its
# publish task, milliseconds after the teacher is told the code. A wrong code costs ~1 s.
REGISTER_WAITS, REGISTER_WAIT_S = 4, 0.25
SLOTS = {None: "-", "": "_"}  # a payload's slot field: no slot (a control message), the solo slot
UNSLOTS = {"-": None, "_": ""}


def replica_name() -> str:
    """This replica's name in Redis: host, process and a random part (a restarted process on the
    same host is another replica)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Payload:
    """One relayed message: its place in the room's sequence, what it is and how a viewer's outbox
    takes it (frame slot, kept frame), and its encoded text, never re-encoded."""

    seq: int
    kind: str  # started | frame | state | sweep_result | say
    slot: str | None
    keep: bool
    text: str

    def encode(self) -> str:
        slot = SLOTS.get(self.slot, self.slot)
        return f"{self.seq} {self.kind} {slot} {int(self.keep)} {self.text}"

    @classmethod
    def decode(cls, data: str) -> Payload:
        seq, kind, slot, keep, text = data.split(" ", 4)
        return cls(int(seq), kind, UNSLOTS.get(slot, slot), keep == "1", text)


@dataclass(eq=False)
class Mirror:
    """A room owned by another replica, seen from this one."""

    room: Room
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    syncing: bool = True
    buffer: list[Payload] = field(default_factory=list)
    ended: str | None = None  # why the room could not be followed
    task: asyncio.Task[None] | None = None  # the synchronisation in flight


def _keys(code: str) -> tuple[str, str, str, str, str]:
    base = f"{PREFIX}room:{code}"
    return base, f"{base}:log", f"{base}:results", f"{base}:viewers", base  # channel = base key


def _stored(code: str) -> tuple[str, ...]:
    """Every key a room keeps in Redis (the channel is none)."""
    return (*_keys(code)[:4], _recording_key(code))


def _recording_key(code: str) -> str:
    return f"{PREFIX}room:{code}:recording"


RECORDING_NOTICE = '{"type":"room_recording"'  # how an encoded recording notice starts


class RoomRelay:
    """The Redis side of this replica's rooms: publishes the rooms it owns, mirrors the rooms its
    viewers watch that other replicas own. Runs on the event loop; `published` is thread-safe."""

    def __init__(self, url: str, rooms: Rooms, ttl_s: float = 3.0, replica: str | None = None) -> None:
        self.url, self.rooms, self.ttl_s = url, rooms, ttl_s
        self.replica = replica or replica_name()
        self.redis: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[tuple[Room, str, str, str | None, bool]] = deque(maxlen=PENDING_MAX)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references
        self._mirrors: dict[str, Mirror] = {}
        self._pubsub: Any = None
        self._subscribed: dict[str, asyncio.Event] = {}
        self.connected_since: float | None = None  # the reader's connection, monotonic; None: down
        self.reconnects = 0
        self.resyncs = 0

    # Lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.redis = aioredis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=10,  # the pub/sub connection PINGs when idle: a dead link shows
        )
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="relay-publish"),
            asyncio.create_task(self._read_loop(), name="relay-read"),
            asyncio.create_task(self._heartbeat_loop(), name="relay-heartbeat"),
        ]

    async def stop(self) -> None:
        """Shut down: rooms this replica owns end for every viewer elsewhere now, not at expiry."""
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                owned = [room for room in self.rooms.owned() if room.relayed]
                if owned:
                    pipe = self.redis.pipeline(transaction=False)
                    for room in owned:
                        text = orjson.dumps({"type": "room_ended", "reason": "the teacher's server stopped"})
                        self._write(pipe, room, "say", text.decode(), None, False)
                        pipe.delete(*_stored(room.code))
                    await asyncio.wait_for(pipe.execute(), 2.0)
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
            await self.redis.aclose()

    @property
    def connected(self) -> bool:
        return self.connected_since is not None

    def status(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "connected": self.connected,
            "mirrors": len(self._mirrors),
            "mirrored": {
                code: {"viewers": len(m.room.viewers), "seq": m.room.seq, "syncing": m.syncing}
                for code, m in self._mirrors.items()
            },
            "reconnects": self.reconnects,
            "resyncs": self.resyncs,
        }

    # The rooms this replica owns -----------------------------------------------------------------

    def opened(self, room: Room) -> None:
        room.relayed = True
        self._enqueue(room, "register", "", None, False)

    def published(self, room: Room, kind: str, text: str, slot: str | None, keep: bool) -> None:
        """A message of an owned room (any thread): queued for Redis in the order it came."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self._enqueue, room, kind, text, slot, keep)

    def said(self, room: Room, text: str) -> None:
        """A room message (the event loop's) of an owned room."""
        self._enqueue(room, "say", text, None, False)

    def closed(self, room: Room) -> None:
        self._enqueue(room, "close", "", None, False)

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        """A background task of the relay's, held until it ends; a failure is logged."""
        task = asyncio.create_task(work)
        self._background.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._background.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning("relay: %s failed: %r", task.get_coro(), task.exception())

        task.add_done_callback(done)
        return task

    def _enqueue(self, room: Room, kind: str, text: str, slot: str | None, keep: bool) -> None:
        self._pending.append((room, kind, text, slot, keep))
        self._wake.set()

    async def _publish_loop(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                assert self.redis is not None
                pipe = self.redis.pipeline(transaction=True)
                for room, kind, text, slot, keep in batch:
                    if kind == "register":
                        self._register(pipe, room)
                    elif kind == "close":
                        pipe.delete(*_stored(room.code))
                    else:
                        self._write(pipe, room, kind, text, slot, keep)
                try:
                    await pipe.execute()
                    backoff = BACKOFF_MIN_S
                except (RedisError, OSError) as exc:
                    # These messages are lost for other replicas: their mirrors see the seq skip
                    # and re-sync; the heartbeat writes the room again once Redis is back.
                    log.warning("relay: publishing to Redis failed (%s); retrying", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _write(self, pipe: Any, room: Room, kind: str, text: str, slot: str | None, keep: bool) -> None:
        """One message of an owned room: its keys, the room's seq, then the publish."""
        base, log_key, results, _, channel = _keys(room.code)
        room.seq += 1
        payload = Payload(room.seq, kind, slot, keep, text).encode()
        if kind == "started":
            pipe.delete(log_key, results)
            pipe.hset(base, "started", payload)
            pipe.hdel(base, "runstate")
        elif kind == "frame":
            maxlen = self.rooms.history_frames
            pipe.xadd(log_key, {"p": payload}, id=f"{room.seq}-0", maxlen=maxlen, approximate=True)
        elif kind == "sweep_result":
            pipe.rpush(results, payload)
        elif kind == "state":
            pipe.hset(base, "runstate", payload)
        else:  # a room message: the room's fields a joiner needs may have changed
            if text.startswith(RECORDING_NOTICE) and room.recording is not None:
                pipe.set(_recording_key(room.code), room.recording.body, ex=self._ttl())
                pipe.hset(base, "recording", text)
            pipe.hset(
                base, mapping={"state": room.state, "locked": int(room.locked), "present": int(room.present)}
            )
        pipe.hset(base, "seq", room.seq)
        # Written keys always carry a TTL: after a Redis restart they are written again before
        # the heartbeat has re-registered the room, and a replica that dies then leaves nothing.
        pipe.expire(base, self._ttl())
        if kind in ("frame", "started"):
            pipe.expire(log_key, self._ttl())
        elif kind == "sweep_result":
            pipe.expire(results, self._ttl())
        pipe.publish(channel, payload)

    def _register(self, pipe: Any, room: Room) -> None:
        """The whole room, from this replica's own history: at opening, and again after Redis
        lost it (a restart). Its messages so far all take the current seq (ids seq-1, seq-2…)."""
        base, log_key, results, viewers, _ = _keys(room.code)
        seq, history = room.seq, room.history
        pipe.delete(base, log_key, results)
        fields: dict[str, Any] = {
            "owner": self.replica,
            "client": room.client,
            "locked": int(room.locked),
            "present": int(room.present),
            "state": room.state,
            "seq": seq,
        }
        if history.started is not None:
            fields["started"] = Payload(seq, "started", None, False, history.started).encode()
        if history.state is not None:
            fields["runstate"] = Payload(seq, "state", None, False, history.state).encode()
        if room.recording is not None:
            fields["recording"] = orjson.dumps(room.recording.notice()).decode()
            pipe.set(_recording_key(room.code), room.recording.body, ex=self._ttl())
        pipe.hset(base, mapping=fields)
        for i, text in enumerate(history.frames[-self.rooms.history_frames :], start=1):
            pipe.xadd(log_key, {"p": Payload(seq, "frame", "", False, text).encode()}, id=f"{seq}-{i}")
        if history.results:
            pipe.rpush(
                results, *(Payload(seq, "sweep_result", None, False, t).encode() for t in history.results)
            )
        for key in (base, log_key, results, viewers):
            pipe.expire(key, self._ttl())

    def _ttl(self) -> int:
        """Keys' time to live in whole seconds (Redis's EXPIRE), at least 1."""
        return max(1, round(self.ttl_s))

    # Rooms other replicas own --------------------------------------------------------------------

    async def mirror(self, code: str) -> Room:
        """The mirror of room `code`, owned by another replica, synchronised; raises RoomError
        `no_room` when no replica has it. Joiners who come at once share one mirror: it is
        registered before the first await."""
        mirror = self._mirrors.get(code)
        if mirror is None:
            if self.redis is None or not self.connected:
                raise RoomError("no_room", f"room {code!r} is not here and the room service is unreachable")
            mirror = Mirror(Room(code, b"", "", RoomHistory(self.rooms.history_frames), mirror=True))
            self._mirrors[code] = mirror
            self.rooms.add_mirror(mirror.room)
            mirror.task = self._spawn(self._sync(mirror, first=True))
        await mirror.synced.wait()
        if mirror.ended is not None:
            raise RoomError("no_room", mirror.ended)
        return mirror.room

    def release(self, room: Room) -> None:
        """The last local viewer of a mirrored room left: unsubscribe."""
        mirror = self._mirrors.get(room.code)
        if mirror is None or mirror.room is not room:
            return
        del self._mirrors[room.code]
        self.rooms.drop_mirror(room)
        channel = _keys(room.code)[4]
        self._subscribed.pop(channel, None)
        pubsub = self._pubsub
        if mirror.task is not None:
            mirror.task.cancel()
        if pubsub is not None:
            self._spawn(pubsub.unsubscribe(channel))

    async def _subscribe(self, code: str) -> None:
        """Subscribe on the current connection and wait for Redis to confirm it."""
        channel = _keys(code)[4]
        confirmed = self._subscribed.setdefault(channel, asyncio.Event())
        pubsub = self._pubsub
        if pubsub is None:
            raise ConnectionError("no pub/sub connection")
        await pubsub.subscribe(channel)
        await asyncio.wait_for(confirmed.wait(), 5.0)

    async def _sync(self, mirror: Mirror, first: bool = False) -> None:
        """Subscribe (unless subscribed), then snapshot; buffered payloads after it are applied.
        A room not (yet) in Redis is waited for up to a TTL: after a Redis restart its owner
        writes it again within a heartbeat."""
        code = mirror.room.code
        mirror.syncing, mirror.buffer = True, []
        if first and not await self.owned_elsewhere(code):
            self._end_mirror(mirror, f"there is no room {code!r}: check the code")
            return
        deadline = time.monotonic() + self.ttl_s + 1.0
        while True:
            try:
                if not self._subscribed.get(_keys(code)[4], asyncio.Event()).is_set():
                    await self._subscribe(code)
                snapshot = await self._snapshot(code)
            except (TimeoutError, RedisError, OSError) as exc:
                if first:
                    self._end_mirror(mirror, f"the room service failed ({exc}); try again")
                    return
                if not self.connected:
                    return  # the reader syncs every mirror again once it is back
                await asyncio.sleep(self.ttl_s / 3)  # Redis answers, this did not: again
                continue
            if snapshot is not None:
                break
            if time.monotonic() > deadline or first:
                self._end_mirror(mirror, "the room has ended" if not first else f"there is no room {code!r}")
                return
            await asyncio.sleep(self.ttl_s / 6)
        self._apply_snapshot(mirror, snapshot)
        if not first:
            self.resyncs += 1

    async def owned_elsewhere(self, code: str) -> bool:
        """Whether another replica owns room `code`, looked up a few times: the owner writes a new
        room on its publish task, a moment after the teacher is told the code."""
        assert self.redis is not None
        for attempt in range(REGISTER_WAITS + 1):
            try:
                owner = await self.redis.hget(_keys(code)[0], "owner")
            except (TimeoutError, RedisError, OSError):
                return False
            if owner is not None:
                return bool(owner != self.replica)
            if attempt < REGISTER_WAITS:
                await asyncio.sleep(REGISTER_WAIT_S)
        return False

    async def _snapshot(self, code: str) -> dict[str, Any] | None:
        assert self.redis is not None
        base, log_key, results, viewers, _ = _keys(code)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(base)
        pipe.lrange(results, 0, -1)
        pipe.xrange(log_key)
        pipe.hgetall(viewers)
        meta, result_payloads, entries, counts = await pipe.execute()
        if not meta.get("owner"):
            return None
        return {
            "meta": meta,
            "results": result_payloads,
            "frames": [f["p"] for _, f in entries],
            "counts": counts,
        }

    def _apply_snapshot(self, mirror: Mirror, snapshot: dict[str, Any]) -> None:
        room, meta = mirror.room, snapshot["meta"]
        history = RoomHistory(self.rooms.history_frames)
        if "started" in meta:
            history.add(Payload.decode(meta["started"]).text, "started")
            for data in snapshot["frames"]:
                history.add(Payload.decode(data).text, "frame")
            for data in snapshot["results"]:
                history.add(Payload.decode(data).text, "sweep_result")
            if "runstate" in meta:
                history.add(Payload.decode(meta["runstate"]).text, "state")
        with room.lock:
            room.history, room.seq = history, int(meta.get("seq", 0))
            room.state = meta.get("state", "{}")
            room.locked, room.present = meta.get("locked") == "1", meta.get("present", "1") == "1"
            room.client = meta.get("client", "")
            room.remote_viewers = self._others(snapshot["counts"])
            viewers = list(room.viewers.values())
        for viewer in viewers:  # a re-sync: the run again from its start, as a late joiner gets it
            viewer.put(room.summary("viewer") | {"state": orjson.loads(room.state)})
            viewer.put_text(history.message())
        notice = meta.get("recording")
        if notice is not None and (room.recording is None or room.recording.id != orjson.loads(notice)["id"]):
            self._spawn(self._fetch_recording(mirror, notice))
        buffered, mirror.buffer, mirror.syncing = mirror.buffer, [], False
        mirror.synced.set()
        for payload in buffered:
            self._receive(mirror, payload)

    def _resync(self, mirror: Mirror) -> None:
        """Synchronise `mirror` from a fresh snapshot, replacing any synchronisation in flight."""
        if mirror.task is not None:
            mirror.task.cancel()
        mirror.syncing = True
        mirror.task = self._spawn(self._sync(mirror))

    def _receive(self, mirror: Mirror, payload: Payload) -> None:
        if mirror.syncing:
            mirror.buffer.append(payload)
            if len(mirror.buffer) > BUFFER_MAX:  # the snapshot covers them, or the gap re-syncs
                del mirror.buffer[: BUFFER_MAX // 2]
            return
        room = mirror.room
        if payload.seq <= room.seq:
            return  # the snapshot covered it
        if payload.seq > room.seq + 1:  # something was lost: start again from a snapshot
            self._resync(mirror)
            mirror.buffer.append(payload)
            return
        room.seq = payload.seq
        if payload.kind != "say":
            room.publish(payload.text, payload.slot, payload.keep, payload.kind)
            return
        message = orjson.loads(payload.text)
        kind = message.get("type")
        if kind == "room_recording":  # viewers are told once it is here to fetch
            self._spawn(self._fetch_recording(mirror, payload.text))
            return
        if kind == "room_state":
            room.state = orjson.dumps(message["state"]).decode()
        elif kind == "room":
            room.locked, room.present = bool(message.get("locked")), bool(message.get("teacher", True))
        room.say_text(payload.text)
        if kind == "room_ended":
            self._end_mirror(mirror, message.get("reason", "the room has ended"), tell=False)

    async def _fetch_recording(self, mirror: Mirror, notice: str) -> None:
        """The recording a room's teacher opened on another replica, copied here once for this
        replica's viewers (their GET is answered here); then they are told, as on the owner."""
        assert self.redis is not None
        message = orjson.loads(notice)
        try:
            body = await self.redis.get(_recording_key(mirror.room.code))
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("relay: fetching room %s's recording failed (%s)", mirror.room.code, exc)
            return
        if body is None or mirror.ended is not None:
            return
        data = body.encode() if isinstance(body, str) else body
        mirror.room.recording = RoomRecording(message["id"], data, int(message["frames"]))
        mirror.room.say_text(notice)

    def _end_mirror(self, mirror: Mirror, reason: str, tell: bool = True) -> None:
        mirror.ended = reason
        mirror.syncing = False
        mirror.synced.set()
        if tell:
            mirror.room.say_text(orjson.dumps({"type": "room_ended", "reason": reason}).decode())
        with mirror.room.lock:
            mirror.room.viewers.clear()
        self.release(mirror.room)

    # The reader: one pub/sub connection for the replica ----------------------------------------

    async def _read_loop(self) -> None:
        backoff = BACKOFF_MIN_S
        control = f"{PREFIX}replica:{self.replica}"
        while True:
            assert self.redis is not None
            pubsub = self.redis.pubsub()
            try:
                self._subscribed = {}
                self._subscribed[control] = asyncio.Event()
                await pubsub.subscribe(control)
                self._pubsub = pubsub
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    channel = message.get("channel")
                    if message["type"] == "subscribe":
                        self._subscribed.setdefault(channel, asyncio.Event()).set()
                        if channel == control and self.connected_since is None:
                            backoff = BACKOFF_MIN_S
                            self.connected_since = time.monotonic()
                            for mirror in list(self._mirrors.values()):  # resubscribe, re-sync
                                if not mirror.synced.is_set():
                                    continue  # a first sync in flight does its own
                                self._resync(mirror)
                    elif message["type"] == "message":
                        followed = self._mirrors.get(channel.removeprefix(f"{PREFIX}room:"))
                        if followed is not None:
                            self._receive(followed, Payload.decode(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected_since is not None:
                    log.warning("relay: lost the Redis subscription (%s); reconnecting", exc)
                    self.reconnects += 1
                    for mirror in list(self._mirrors.values()):
                        mirror.room.say_text('{"type":"room_reconnecting"}')
                self.connected_since = None
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    # The heartbeat -------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await self._beat()

    async def _beat(self) -> None:
        """Owned rooms: still there (else written again), TTLs refreshed, other replicas' viewer
        counts read. Mirrors: this replica's viewer count written, the room still there."""
        assert self.redis is not None
        owned = [room for room in self.rooms.owned() if room.relayed]
        mirrors = list(self._mirrors.values())
        if not owned and not mirrors:
            return
        now, ttl = time.time(), self._ttl()
        pipe = self.redis.pipeline(transaction=False)
        for room in owned:
            base, log_key, results, viewers, _ = _keys(room.code)
            pipe.hget(base, "owner")
            pipe.hset(viewers, self.replica, f"{len(room.viewers)} {now}")
            for key in _stored(room.code):
                pipe.expire(key, ttl)
            pipe.hgetall(viewers)
        for mirror in mirrors:
            base, _, _, viewers, _ = _keys(mirror.room.code)
            pipe.hget(base, "owner")
            pipe.hset(viewers, self.replica, f"{len(mirror.room.viewers)} {now}")
            pipe.expire(viewers, ttl)
            pipe.hgetall(viewers)
        replies = await pipe.execute()
        at = 0
        for room in owned:
            owner, counts = replies[at], replies[at + 7]
            at += 8
            if owner is None:  # Redis lost it (a restart): write it again
                self.opened(room)
            remote = self._others(counts)
            if remote != room.remote_viewers:
                room.remote_viewers = remote
                self.rooms.announce(room)
        stable = self.connected_since is not None and time.monotonic() - self.connected_since > self.ttl_s
        for mirror in mirrors:
            owner, counts = replies[at], replies[at + 3]
            at += 4
            mirror.room.remote_viewers = self._others(counts)
            if owner is None and stable and not mirror.syncing and mirror.ended is None:
                self._end_mirror(mirror, "the teacher's server stopped answering")

    def _others(self, counts: dict[str, str]) -> int:
        """Viewers on the other replicas, from fresh counts only."""
        total, now = 0, time.time()
        for replica, value in counts.items():
            if replica == self.replica:
                continue
            number, _, at = value.partition(" ")
            with contextlib.suppress(ValueError):
                if now - float(at) < self.ttl_s:
                    total += int(number)
        return total
