"""Class experiments: in a room, every student trains one value of one field, and the teacher's
projector shows the whole class at once.

The teacher opens an experiment on a base config, a field (lr, norm, batch_size, depth, init or
activation) and 2-12 values; every value is checked as a whole config, exactly as a `start` of
it would be, before anything is announced. A student who joins is handed a value (in turn, or
the one they pick) and trains it as an ordinary run of their own session: admission, the line
and `busy` are the pool's as for any run. Their messages are teed to the experiment, which keeps
only the newest frame text (and the newest one carrying a test accuracy) per student and reads
them at most once per summary: 30 students at 60 frames/s cost the event loop ~30 reads every
0.2 s, not 1,800 parses a second. The class summary goes to the teacher (and, once revealed, to
every viewer) at most every `every_s`, and only when something changed.

    experiment = Experiment.open(room, message, validate, every_s=0.2)  # every value checked
    student = experiment.join(outbox, None, stop=stop_run)  # value handed out, `experiment_assigned`
    ...  # the student's session starts student.config through its normal start path
    experiment.stop_all(); experiment.reveal(); experiment.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from app.runner import Outbox, encode
from app.schemas import ExperimentOpenMessage, ProtocolError

if TYPE_CHECKING:
    from app.rooms import Room

__all__ = [
    "RIDGE_BINS",
    "RIDGE_FRAMES",
    "RIDGE_LAYERS",
    "Experiment",
    "ExperimentRefusal",
    "Phase",
    "Student",
    "rebin",
]

RIDGE_LAYERS = 2  # the deepest probed layers each student's ridge shows
RIDGE_BINS = 16  # their post-activation histograms, rebinned to this many bins
RIDGE_FRAMES = 6  # recent frames per layer, at most one per summary
# Control messages of a student's run the experiment reads; all else is skipped unparsed.
_WATCHED = ('{"type":"state"', '{"type":"started"', '{"type":"queued"', '{"type":"busy"', '{"type":"error"')


class ExperimentRefusal(ProtocolError):
    """A refused experiment message: an `error` marked `"about":"experiment"`, which the page
    shows in its experiment panel rather than beside the run's settings."""

    def to_wire(self) -> dict[str, Any]:
        return super().to_wire() | {"about": "experiment"}


class Phase(StrEnum):
    OPEN = "open"  # students may join (and rejoin) and train
    STOPPED = "stopped"  # the teacher stopped every run: the class's results stay on show
    ENDED = "ended"  # over: no more summaries


def rebin(counts: list[int], bins: int = RIDGE_BINS) -> list[int]:
    """A histogram's counts in `bins` equal groups of neighbouring bins (fewer stay as they are),
    scaled to 0-99 of the tallest: a ridge shows the shape, not the sample size."""
    if len(counts) > bins:
        grouped = [0] * bins
        for i, count in enumerate(counts):
            grouped[i * bins // len(counts)] += count
        counts = grouped
    top = max(counts, default=0)
    return [round(99 * count / top) for count in counts] if top > 0 else [0] * len(counts)


def _short(value: float | None) -> float | None:
    """A number as the summary sends it: 4 significant digits, null when not finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


@dataclass(eq=False)
class Student:
    """One student's part: their value, and what their run last said."""

    number: int  # 1, 2, ... in order of joining this experiment: the summary's `id`
    outbox: Outbox
    index: int  # of the value trained
    stop: Callable[[], None]  # stops the student's run (or their wait for one)
    state: str = "joined"  # joined, queued, running, paused, done, stopped, diverged, ...
    step: int = 0
    loss: float | None = None
    test_acc: float | None = None  # the newest measured, kept between measurements
    layers: list[str] = field(default_factory=list)  # the ridge's layers (the deepest)
    ridge: list[deque[list[Any]]] = field(default_factory=list)
    piece: str | None = None  # this student's encoded summary entry, until they change
    # Written by the run's thread (the outbox's tee), read by the summary on the event loop.
    _frame: str | None = None
    _measured: str | None = None
    _control: deque[str] = field(default_factory=deque)
    _read: tuple[str | None, str | None] = (None, None)
    on_change: Callable[[], None] = lambda: None

    def observe(self, text: str, slot: str | None, keep: bool) -> None:
        """Every message queued for the student (any thread): frames are kept as text, unread."""
        if slot is not None:
            self._frame = text
            if keep:
                self._measured = text
        elif text.startswith(_WATCHED):
            self._control.append(text)
        else:
            return
        self.on_change()

    def restart(self, index: int, state: str = "joined") -> None:
        """A new run of this student's (a rejoin, or its `started`): the old one's point no
        longer counts. Messages not yet read stay: they may be the new run's."""
        self.index, self.state, self.step, self.loss, self.test_acc = index, state, 0, None, None
        self.layers, self.ridge, self.piece = [], [], None

    def refresh(self) -> bool:
        """Read what arrived since the last summary; True when this student's point changed."""
        changed = False
        while self._control:
            changed |= self._read_control(orjson.loads(self._control.popleft()))
        frame, measured = self._frame, self._measured
        if measured is not None and measured is not self._read[1]:
            test_acc = orjson.loads(measured).get("test_acc")
            if test_acc is not None:
                self.test_acc, changed = _short(test_acc), True
        if frame is not None and frame is not self._read[0]:
            self._read_frame(orjson.loads(frame))
            changed = True
        self._read = (frame, measured)
        if changed:
            self.piece = None
        return changed

    def _read_control(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "started":
            self.restart(self.index, "running")
        elif kind == "state" and "run" not in message:  # twins' own ends are not the run's
            self.state, self.step = str(message.get("state")), int(message.get("step") or 0)
        elif kind == "queued":
            self.state = "queued"
        elif kind == "busy":
            self.state = "busy"
        elif kind == "error" and message.get("code") in ("too_many_runs", "over_budget", "invalid_config"):
            self.state = "refused"
        else:
            return False
        return True

    def _read_frame(self, frame: dict[str, Any]) -> None:
        self.step = max(self.step, int(frame.get("step") or 0))
        self.loss = _short(frame.get("loss"))
        if frame.get("test_acc") is not None:
            self.test_acc = _short(frame["test_acc"])
        deepest = (frame.get("layers") or [])[-RIDGE_LAYERS:]
        names = [str(layer.get("name")) for layer in deepest]
        if names != self.layers:
            self.layers, self.ridge = names, [deque(maxlen=RIDGE_FRAMES) for _ in names]
        for rows, layer in zip(self.ridge, deepest, strict=True):
            post = layer.get("post") or {}
            counts = post.get("counts") or []
            rows.append([self.step, _short(post.get("lo")), _short(post.get("hi")), rebin(counts)])

    def entry(self, values: list[Any]) -> str:
        """This student's point in the class summary, encoded once until it changes."""
        if self.piece is None:
            self.piece = encode(
                {
                    "id": self.number,
                    "index": self.index,
                    "value": values[self.index],
                    "state": self.state,
                    "step": self.step,
                    "loss": self.loss,
                    "test_acc": self.test_acc,
                    "ridge": [[name, list(rows)] for name, rows in zip(self.layers, self.ridge, strict=True)],
                }
            )
        return self.piece


class Experiment:
    """One class experiment of one room. Lives on the event loop (students' runs write to it
    from their threads only through Student.observe)."""

    def __init__(
        self, room: Room, field: str, values: list[Any], config: dict[str, Any], assign: str, every_s: float
    ) -> None:
        self.room, self.field, self.values, self.config, self.assign = room, field, values, config, assign
        self.every_s = every_s
        self.phase = Phase.OPEN
        self.revealed = False
        self.students: dict[int, Student] = {}  # id(outbox) -> the student
        self.summaries_sent = 0
        self.last_summary_bytes = 0
        self._joined = 0
        self._dirty = True  # the first summary (an empty class) goes out at once
        self._task = asyncio.get_running_loop().create_task(self._summarise())

    @classmethod
    def open(
        cls,
        room: Room,
        message: ExperimentOpenMessage,
        validate: Callable[[dict[str, Any]], object],
        every_s: float,
    ) -> Experiment:
        """Check every value as the config a student would start (`validate` is the session's
        check of a `start`: parse, device, budget), then open the experiment and announce it."""
        check_values(message, validate)
        experiment = cls(room, message.field, list(message.values), message.config, message.assign, every_s)
        experiment.announce()
        return experiment

    @property
    def live(self) -> bool:
        return self.phase is not Phase.ENDED

    def config_of(self, index: int) -> dict[str, Any]:
        return {**self.config, self.field: self.values[index]}

    def announcement(self) -> dict[str, Any]:
        return {
            "type": "experiment",
            "field": self.field,
            "values": self.values,
            "assign": self.assign,
            "config": self.config,
            "state": self.phase.value,
            "revealed": self.revealed,
        }

    def announce(self) -> None:
        """The experiment as it now stands, to the teacher and every viewer."""
        message = self.announcement()
        teacher = self.room.teacher
        if teacher is not None and self.room.present:
            teacher.put(message)
        self.room.say(message)

    def join(self, outbox: Outbox, index: int | None, stop: Callable[[], None]) -> Student:
        """A viewer takes part (or, already in, trains again): their value, then `experiment_assigned`.
        The caller starts `config_of(student.index)` as the viewer's own run."""
        if self.phase is not Phase.OPEN:
            raise ExperimentRefusal(
                "experiment_closed", "the teacher has stopped this experiment: no new runs join it"
            )
        n = len(self.values)
        if self.assign == "choice" and index is None:
            raise ExperimentRefusal(
                "invalid_message",
                f"pick a value to train: index 0-{n - 1}",
                [{"field": "index", "message": f"index is required: pick one of 0-{n - 1}"}],
            )
        if self.assign == "choice" and index is not None and index >= n:
            raise ExperimentRefusal(
                "invalid_message",
                f"index must be < {n} (got {index})",
                [{"field": "index", "message": f"index must be < {n}: the experiment has {n} values"}],
            )
        student = self.students.get(id(outbox))
        if self.assign == "round_robin" and index is not None and (student is None or index != student.index):
            raise ExperimentRefusal(
                "invalid_message",
                "the teacher hands out the values in this experiment: join without an index",
                [{"field": "index", "message": "values are assigned in turn here (assign round_robin)"}],
            )
        chosen = index if index is not None else student.index if student is not None else self._next_index()
        if student is None:
            self._joined += 1
            student = Student(self._joined, outbox, chosen, stop, on_change=self._changed)
            self.students[id(outbox)] = student
            with self.room.lock:  # from now on the room's run is not sent to this viewer
                self.room.training.add(id(outbox))
            outbox.tee = student.observe
        else:
            student.restart(chosen)
        outbox.put(
            {
                "type": "experiment_assigned",
                "field": self.field,
                "value": self.values[chosen],
                "index": chosen,
                "id": student.number,
                "config": self.config_of(chosen),
            }
        )
        self._dirty = True
        return student

    def _next_index(self) -> int:
        """Round robin: the value the fewest students train now, the first such (students 1, 2,
        3, ... joining a fresh experiment of n values get values 0, 1, ..., n-1, 0, ...)."""
        taking = [0] * len(self.values)
        for student in self.students.values():
            taking[student.index] += 1
        return taking.index(min(taking))

    def drop(self, outbox: Outbox) -> None:
        """The viewer left the room (or the connection closed): their run stops, their point goes."""
        student = self.students.pop(id(outbox), None)
        if student is None:
            return
        outbox.tee = None
        student.stop()
        self._dirty = True

    def student_of(self, outbox: Outbox) -> Student | None:
        return self.students.get(id(outbox)) if self.live else None

    def stop_all(self) -> None:
        """Every student's run stops; the points stay where they ended; no new runs."""
        if self.phase is Phase.OPEN:
            self.phase = Phase.STOPPED
        for student in list(self.students.values()):
            student.stop()
        self.announce()

    def reveal(self) -> None:
        """From now on every viewer (students too) gets the class summary."""
        self.revealed, self._dirty = True, True
        self.announce()

    def close(self) -> None:
        """End the experiment: runs still going stop, summaries stop. Students keep their own
        run on screen until they go back to the room's (`join`)."""
        if not self.live:
            return
        for student in list(self.students.values()):
            student.outbox.tee = None
            student.stop()
        self.phase = Phase.ENDED
        self._task.cancel()
        self.announce()

    def touch(self) -> None:
        """Send the summary again at the next tick (a teacher came back)."""
        self._dirty = True

    def _changed(self) -> None:
        self._dirty = True  # a plain store: safe from the runs' threads

    async def _summarise(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while self.live:
                await asyncio.sleep(self.every_s)
                if self._dirty:
                    self._dirty = False  # cleared first: a change from now on is the next tick's
                    self.send_summary()

    def summary_text(self) -> str:
        """The class summary: every student's point, each entry re-encoded only when it changed."""
        for student in self.students.values():
            student.refresh()
        head = encode(
            {
                "type": "class_summary",
                "field": self.field,
                "values": self.values,
                "state": self.phase.value,
                "revealed": self.revealed,
            }
        )
        entries = ",".join(student.entry(self.values) for student in self.students.values())
        return f'{head[:-1]},"students":[{entries}]}}'

    def send_summary(self) -> None:
        text = self.summary_text()
        self.summaries_sent += 1
        self.last_summary_bytes = len(text)
        room = self.room
        if room.teacher is not None and room.present:
            room.teacher.put_text(text)
        if self.revealed:
            with room.lock:
                viewers = list(room.viewers.values())
            for viewer in viewers:
                viewer.put_text(text)


def check_values(message: ExperimentOpenMessage, validate: Callable[[dict[str, Any]], object]) -> None:
    """Refuse an experiment any of whose values would not start: each error names the value
    (`values.2`) or the base config's field (`config.width`), and the limit."""
    errors: list[dict[str, str]] = []
    codes: list[str] = []
    seen: set[tuple[bool, Any]] = set()
    for i, value in enumerate(message.values):
        key = (isinstance(value, str), value)  # 1 and 1.0 are one value; "1" is another
        if key in seen:
            errors.append({"field": f"values.{i}", "message": f"{message.field} = {value!r} is listed twice"})
            codes.append("invalid_message")
            continue
        seen.add(key)
        try:
            validate({**message.config, message.field: value})
        except ProtocolError as refusal:
            codes.append(refusal.code)
            for error in refusal.errors or [{"field": message.field, "message": refusal.message}]:
                name = error["field"]
                where = f"values.{i}" if name == message.field else f"config.{name}"
                if any(known["field"] == where for known in errors):
                    continue  # the base config's problem, met again at the next value
                errors.append({"field": where, "message": f"{message.field} = {value!r}: {error['message']}"})
    if errors:
        shown = errors[:10]
        raise ExperimentRefusal(codes[0], "; ".join(e["message"] for e in shown[:3]), shown)
