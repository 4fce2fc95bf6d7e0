"""Session: one websocket connection's state, its outbox and at most one run."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from app.budget import DataShape, RunCost, floor_load
from app.config import Settings
from app.datasets.upload import Table
from app.experiments import Experiment, ExperimentRefusal, Student
from app.nets.cnn import IMAGE_PIXELS
from app.rooms import Room, RoomError, Rooms, normalise_code
from app.runner import Outbox
from app.schemas import (
    ClientMessage,
    ExperimentCloseMessage,
    ExperimentJoinMessage,
    ExperimentMessage,
    ExperimentOpenMessage,
    ExperimentRevealMessage,
    ExperimentStopAllMessage,
    JoinMessage,
    LeaveMessage,
    PauseMessage,
    ProtocolError,
    ResumeMessage,
    RoomLockMessage,
    RoomMessage,
    RoomOpenMessage,
    RoomRejoinMessage,
    RoomStateMessage,
    SeenMessage,
    SetMessage,
    StartMessage,
    StepMessage,
    StopMessage,
    SweepMessage,
    parse_twin_configs,
)
from app.spec import RunSpec
from app.workers import Busy, RemoteRun, WorkerPool


class Session:
    """Turns parsed client messages into actions on the session's run. Lives on the event loop."""

    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        pool: WorkerPool,
        cuda_available: bool,
        on_busy: Callable[[], None],
        client: str = "unknown",
        jobs_of: Callable[[str], int] = lambda client: 0,
        rooms: Rooms | None = None,
        on_seen: Callable[[int], None] = lambda frames: None,
    ) -> None:
        self.outbox = outbox
        self.client = client  # the peer's address: its running and waiting jobs are capped
        self._on_seen = on_seen  # flow control: the frames the client says it has received
        self._jobs_of = jobs_of  # jobs (running or waiting) of an address's sessions
        self.settings = settings
        self.pool = pool
        self.cuda_available = cuda_available
        self.on_busy = on_busy
        self.run: RemoteRun | None = None
        self.rooms = rooms
        self._leading: Room | None = None  # the room this session's teacher leads
        self._watching: Room | None = None  # the room this session views
        self._student: Student | None = None  # this viewer's part in the room's class experiment
        self._starting: asyncio.Task[None] | None = None
        self._joining: asyncio.Task[None] | None = None  # a join of another replica's room
        self._run_ids = itertools.count(1)
        # Your own data: the page uploads a CSV over HTTP (POST /api/dataset) with this token,
        # which only this connection is told (in `hello`); the table lives here, in memory only,
        # and goes when the connection does.
        self.upload_token = secrets.token_urlsafe(24)
        self.table: Table | None = None
        self.uploading = False  # one upload at a time per session

    @property
    def waiting(self) -> bool:
        """A start is waiting for a worker (or for the previous run to let go of one)."""
        return self._starting is not None and not self._starting.done()

    @property
    def active(self) -> bool:
        return self.waiting or (self.run is not None and self.run.active)

    @property
    def holds_job(self) -> bool:
        """Waiting for a worker, or running a job that has not said its last state."""
        return self.waiting or (self.run is not None and self.run.active and self.run.final_state is None)

    @property
    def leading(self) -> Room | None:
        room = self._leading
        return room if room is not None and self.rooms is not None and self.rooms.is_open(room) else None

    @property
    def watching(self) -> Room | None:
        room = self._watching
        return room if room is not None and self.rooms is not None and self.rooms.is_open(room) else None

    @property
    def student(self) -> Student | None:
        """This viewer's part in a live class experiment of the room it watches."""
        student, room = self._student, self.watching
        if student is None or room is None or room.experiment is None:
            return None
        return student if room.experiment.student_of(self.outbox) is student else None

    def handle(self, message: ClientMessage) -> None:
        """Act on one message; raises ProtocolError for anything refused."""
        if isinstance(message, SeenMessage):
            self._on_seen(message.frames)
            return
        if isinstance(message, RoomMessage):
            try:
                self._handle_room(message)
            except RoomError as refusal:
                raise ProtocolError(refusal.code, refusal.message) from None
            return
        if isinstance(message, ExperimentMessage):
            start = self._handle_experiment(message)
            if start is None:
                return
            message = start  # a student's run of the experiment: the normal start path below
        elif self.student is not None and isinstance(message, StartMessage | SweepMessage | SetMessage):
            raise ExperimentRefusal(
                "in_experiment",
                f"you train {self.student_label()} for the class experiment: your run's settings are "
                "the teacher's; leave the room to train a run of your own",
            )
        watching = self.watching
        if watching is not None and not (self.student is not None and isinstance(message, OWN_RUN)):
            raise ProtocolError(
                "not_teacher",
                f"you are watching room {watching.code}: only its teacher controls it; leave the room "
                "(or fork it) to train a run of your own",
            )
        if isinstance(message, StartMessage | SweepMessage):
            job = self.validate(message)
            self._check_share()
            self._cancel_start()
            self._starting = asyncio.create_task(self._start(job))
            return
        if self.waiting:
            if isinstance(message, StopMessage):
                self._cancel_start()
                self.outbox.put({"type": "state", "state": "stopped", "step": 0})
                return
            raise ProtocolError("no_run", f"'{message.type}' must wait: the run has not started yet")
        run = self.run
        if run is None or not run.active:
            raise ProtocolError("no_run", f"'{message.type}' needs a run in progress; send 'start' first")
        if isinstance(message, PauseMessage):
            run.pause()
        elif isinstance(message, ResumeMessage):
            run.resume()
        elif isinstance(message, StepMessage):
            run.step_once()
        elif isinstance(message, StopMessage):
            run.stop()
        elif isinstance(message, SetMessage):
            if run.is_sweep:
                raise ProtocolError(
                    "invalid_message",
                    "'set' is refused during a sweep: each point trains at its own rate",
                    [
                        {
                            "field": "lr",
                            "message": "lr is fixed per sweep point; stop the sweep to train at another rate",
                        }
                    ],
                )
            run.set_lr(message.lr)

    def _handle_room(self, message: RoomMessage) -> None:
        rooms = self.rooms
        if rooms is None:
            raise RoomError("no_rooms", "this server has rooms switched off")
        leading, watching = self.leading, self.watching
        if isinstance(message, RoomOpenMessage | JoinMessage) and leading is not None:
            raise RoomError("in_room", f"you lead room {leading.code}: end it first")
        if isinstance(message, RoomOpenMessage):
            if watching is not None:
                raise RoomError("in_room", f"you are watching room {watching.code}: leave it first")
            room, key = rooms.open(self.outbox, self.client)
            self._leading = room
            self.outbox.put(room.summary("teacher") | {"key": key})
        elif isinstance(message, RoomRejoinMessage):
            if rooms.relay is not None and rooms.get(message.code) is None:
                rooms.join_blocked(self.client)
                self._joining = asyncio.create_task(
                    self._rejoin_elsewhere(rooms, normalise_code(message.code))
                )
                return
            room = rooms.check_key(message.code, message.key, self.client)
            if watching is not None:
                rooms.leave(watching, self.outbox)
                self._watching = None
            run = rooms.teacher_back(room, self.outbox)
            if run is not None:
                self._cancel_start()
                if self.run is not None and self.run.active:
                    self.run.stop()
                self.run = run
            self._leading = room
            if room.experiment is not None and room.experiment.live:
                self.outbox.put(room.experiment.announcement())
                room.experiment.touch()  # the class summary follows at the next tick
        elif isinstance(message, JoinMessage):
            if watching is not None:
                rooms.leave(watching, self.outbox)
                self._watching = None
            self._cancel_start()
            self._cancel_join()
            if self.run is not None and self.run.active:
                self.run.stop()  # one thing at a time: watching the room replaces your own run
            known = rooms.get(message.code)
            if rooms.relay is not None and (known is None or known.mirror):
                rooms.join_blocked(self.client)
                self._joining = asyncio.create_task(self._join_elsewhere(rooms, normalise_code(message.code)))
                return
            self._joined(rooms.join(message.code, self.outbox, self.client))
        elif isinstance(message, LeaveMessage):
            if self._joining is not None and not self._joining.done():
                self._cancel_join()
                self.outbox.put({"type": "room_left", "code": ""})
                return
            if watching is None:
                raise RoomError("no_room", "you are not watching a room")
            rooms.leave(watching, self.outbox)
            self._watching = None
            self.outbox.put({"type": "room_left", "code": watching.code})
        else:
            if leading is None:
                raise RoomError("not_teacher", f"'{message.type}' is for a room's teacher; open a room first")
            if isinstance(message, RoomStateMessage):
                rooms.set_state(leading, message.state)
            elif isinstance(message, RoomLockMessage):
                rooms.set_locked(leading, message.locked)
            else:
                rooms.close(leading, "the teacher ended the room")
                self._leading = None
                self.outbox.tee = None
                self.outbox.put({"type": "room_ended", "reason": "you ended the room"})

    def _joined(self, room: Room) -> None:
        """This connection now watches `room`: after its history, what else is live in it."""
        self._watching = room
        experiment = room.experiment
        if experiment is not None and experiment.live:
            self.outbox.put(experiment.announcement())
        if room.recording is not None:  # opened in the room: app/room_recordings.py
            self.outbox.put(room.recording.notice())

    async def _join_elsewhere(self, rooms: Rooms, code: str) -> None:
        """Join a room another replica owns (rooms across replicas, app/relay.py): its mirror here
        is synchronised first, then the join is the same as for a room of this replica's."""
        try:
            await rooms.relay.mirror(code)
            self._joined(rooms.join(code, self.outbox, self.client))
        except RoomError as refusal:
            if refusal.code == "no_room":
                rooms.join_refused(self.client)
            self.outbox.put(ProtocolError(refusal.code, refusal.message).to_wire())

    async def _rejoin_elsewhere(self, rooms: Rooms, code: str) -> None:
        """A teacher's rejoin that reached a replica other than the room's: a room only moves with
        its run, so say where the fault is (the proxy's affinity) rather than "wrong key"."""
        if await rooms.relay.owned_elsewhere(code):
            refusal = RoomError(
                "room_elsewhere",
                f"room {code} is led from another server behind this address, and your browser "
                "reached a different one: the proxy must keep each browser on one server (its "
                "affinity cookie, docs/deploy.md); reload to try again",
            )
        else:
            rooms.join_refused(self.client)
            refusal = RoomError("bad_key", "that room code and control key do not match an open room")
        self.outbox.put(ProtocolError(refusal.code, refusal.message).to_wire())

    def _cancel_join(self) -> None:
        if self._joining is not None:
            self._joining.cancel()
            self._joining = None

    def _handle_experiment(self, message: ExperimentMessage) -> StartMessage | None:
        """A class experiment's message; returns the start of a joining student's run."""
        try:
            return self._experiment_action(message)
        except RoomError as refusal:
            raise ExperimentRefusal(refusal.code, refusal.message) from None

    def _experiment_action(self, message: ExperimentMessage) -> StartMessage | None:
        if self.rooms is None:
            raise RoomError("no_rooms", "this server has rooms switched off")
        leading, watching = self.leading, self.watching
        if isinstance(message, ExperimentJoinMessage):
            experiment = watching.experiment if watching is not None else None
            if experiment is None or not experiment.live:
                raise RoomError("no_experiment", "there is no class experiment to join in a room you watch")
            student = experiment.join(self.outbox, message.index, self._stop_experiment_run)
            self._student = student
            return StartMessage(type="start", config=experiment.config_of(student.index), compare=None)
        if leading is None:
            raise RoomError("not_teacher", f"'{message.type}' is for a room's teacher; open a room first")
        experiment = leading.experiment
        if isinstance(message, ExperimentOpenMessage):
            if experiment is not None and experiment.live:
                raise RoomError("in_experiment", "this room runs an experiment already: end it first")

            def validate(config: dict[str, object]) -> None:
                if config.get("dataset") == "upload":  # students train in their own sessions
                    message = (
                        "dataset upload stays in the teacher's session, and each student trains in "
                        "their own: pick a built-in dataset for a class experiment"
                    )
                    raise ProtocolError("invalid_config", message, [{"field": "dataset", "message": message}])
                self.validate(StartMessage(type="start", config=config, compare=None))

            every_s = self.settings.experiment_summary_every_s
            leading.experiment = Experiment.open(leading, message, validate, every_s)
            return None
        if experiment is None or not experiment.live:
            raise RoomError("no_experiment", "this room runs no experiment: start one first")
        if isinstance(message, ExperimentStopAllMessage):
            experiment.stop_all()
        elif isinstance(message, ExperimentRevealMessage):
            experiment.reveal()
        elif isinstance(message, ExperimentCloseMessage):
            experiment.close()
        return None

    def _stop_experiment_run(self) -> None:
        """The experiment stopped this student's run (stop all, end, or they left): as a `stop`."""
        if self.waiting:
            self._cancel_start()
            self.outbox.put({"type": "state", "state": "stopped", "step": 0})
        elif self.run is not None and self.run.active:
            self.run.stop()

    def student_label(self) -> str:
        student, room = self.student, self.watching
        if student is None or room is None:
            return "nothing"
        experiment = room.experiment
        return f"{experiment.field} = {experiment.values[student.index]}"

    def _check_share(self) -> None:
        """An address may hold `max_jobs_per_client` jobs, running or waiting, over all its
        connections; a start that replaces this session's own job takes no extra place."""
        limit = self.settings.max_jobs_per_client
        if self.holds_job or limit <= 0:
            return
        held = self._jobs_of(self.client)
        if held >= limit:
            raise ProtocolError(
                "too_many_runs",
                f"this address already has {held} runs going or waiting; at most {limit} per address "
                "(SHIFTSCOPE_MAX_JOBS_PER_CLIENT): stop one first",
            )

    def validate(self, message: StartMessage | SweepMessage) -> Job:
        first, second = parse_twin_configs(message.config, message.compare)
        spec = first.to_spec()
        twin = second.to_spec() if second is not None else None
        for run_spec in (spec, twin):
            if run_spec is not None and run_spec.device == "cuda" and not self.cuda_available:
                raise ProtocolError(
                    "invalid_config",
                    "device cuda is not available on this server",
                    [{"field": "device", "message": "device must be auto or cpu here: torch sees no GPU"}],
                )
        table = table_for(spec, self.table)
        if twin is not None:
            table = table_for(twin, self.table, "compare.") or table
        shape = DataShape.of(table)
        if isinstance(message, SweepMessage):
            sweep = (tuple(message.lrs), message.steps)
            short_twin = replace(twin, steps=message.steps) if twin is not None else None
            short = replace(spec, steps=message.steps)
            check_budget(short, self.settings, len(message.lrs), twin=short_twin, data=shape)
            return Job(spec, twin, sweep, table)
        check_budget(spec, self.settings, twin=twin, data=shape)
        return Job(spec, twin, None, table)

    async def _start(self, job: Job) -> None:
        run_id = next(self._run_ids)
        # Silence the old run first, then say it stopped: no stale frame can follow 'started'.
        self.outbox.run_id = run_id
        previous, self.run = self.run, None
        if previous is not None and previous.active:
            previous.stop()
            # A run that has sent its last state (done, say) but whose worker has not yet said it
            # is idle is over: a 'stopped' now would contradict the 'done' the client just read.
            if previous.final_state is None:
                self.outbox.put({"type": "state", "state": "stopped", "step": previous.step})
            await _finished(previous)  # its worker goes back to the pool first
        load = floor_load(
            job.spec,
            self.settings.floor_frames_per_s,
            self.settings.floor_steps_per_s,
            twin=job.twin,
            sweep_steps=job.sweep[1] if job.sweep else None,
            data=DataShape.of(job.table),
        )
        try:
            worker = await self.pool.acquire(lambda place, warming: self._queued(place, warming, load), load)
        except Busy:
            self.outbox.put(
                {
                    "type": "busy",
                    "message": f"the server is full: {self._capacity_text(load)}, and all "
                    f"{self.pool.max_queue} places in line are taken; try again in a minute",
                    "runs": self.pool.running,
                    "queue": self.pool.max_queue,
                }
            )
            self.on_busy()
            return
        self.run = worker.begin(
            job.spec,
            self.outbox,
            run_id,
            self.settings.max_run_seconds,
            twin=job.twin,
            sweep=job.sweep,
            table=job.table,
        )

    def _capacity_text(self, load: float) -> str:
        """Why a run of this floor load is not admitted now."""
        pool, floor = self.pool, self.settings
        if pool.running >= pool.max_workers:
            return (
                f"{pool.running} runs are training, the most this server takes at once (SHIFTSCOPE_MAX_RUNS)"
            )
        return (
            f"{pool.running} runs are training and need {pool.load:.2f} of the {pool.capacity:.2f} cores "
            f"runs may share to keep {floor.floor_frames_per_s:g} frames/s and {floor.floor_steps_per_s:g} "
            f"steps/s each; this run needs {load:.2f} more"
        )

    def _queued(self, position: int, warming: bool, load: float) -> None:
        """A place in line: waiting for capacity (`message` says why), or, admitted, for a
        worker to warm up (start-up, or a replacement)."""
        message = "starting a worker for your run" if warming else f"waiting: {self._capacity_text(load)}"
        self.outbox.put(
            {
                "type": "queued",
                "position": position,
                "runs": self.pool.running,
                "warming": warming,
                "message": message,
            }
        )

    def _cancel_start(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            self._starting = None

    def close(self) -> None:
        """The connection is gone: stop the run (its worker returns to the pool within a step),
        unless this session leads a room, which keeps the run for the teacher's return."""
        self._cancel_start()
        self._cancel_join()
        self.table = None  # uploaded data die with the connection (a room's run keeps its copy)
        run = self.run if self.run is not None and self.run.active else None
        leading, watching = self.leading, self.watching
        if leading is not None and self.rooms is not None:
            self.rooms.teacher_left(leading, run)
            return
        if watching is not None and self.rooms is not None:
            self.rooms.leave(watching, self.outbox)
        if run is not None:
            run.stop()


def table_for(spec: RunSpec, table: Table | None, prefix: str = "") -> Table | None:
    """The uploaded `table` when `spec` trains on it (None for other data); refuses, naming
    `<prefix>dataset`, a run on dataset upload without a table or one the CNN cannot read."""
    if spec.dataset != "upload" or spec.arch == "transformer":
        return None
    field = f"{prefix}dataset"
    if table is None:
        message = (
            "dataset upload: this session has no uploaded data; upload a CSV first (it is kept per "
            "connection)"
        )
        raise ProtocolError("invalid_config", message, [{"field": field, "message": message}])
    if spec.arch == "cnn" and table.features != IMAGE_PIXELS:
        message = (
            f"arch=cnn reads 8x8 images: dataset upload has {table.features} features, "
            f"it needs {IMAGE_PIXELS} (or train it with arch mlp or resmlp)"
        )
        raise ProtocolError("invalid_config", message, [{"field": field, "message": message}])
    return table


# What a student in a class experiment may do to their own run (its start comes from the experiment).
OWN_RUN = StartMessage | PauseMessage | ResumeMessage | StepMessage | StopMessage


async def _finished(run: RemoteRun) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def set_done() -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(done.set)

    run.on_finish(set_done)
    await done.wait()


@dataclass(frozen=True)
class Job:
    """What a validated start or sweep asks a worker to do."""

    spec: RunSpec
    twin: RunSpec | None  # compare mode: run B
    sweep: tuple[tuple[float, ...], int] | None  # (learning rates, steps of each run)
    table: Table | None = None  # the session's uploaded data, for a run on dataset "upload"


def _what_to_lower(part: str, spec: RunSpec) -> tuple[str, str]:
    """The field to name, and what to change, when most of a job's FLOPs go to `part`."""
    if part == "evaluation":
        return "eval_every", "raise eval_every or eval_batch_size, or lower steps"
    if part == "instruments" and spec.ics_every > 0:
        return "ics_every", "raise ics_every or landscape_every, or turn probe_gradients off"
    if part == "instruments" and spec.landscape_every > 0:
        return "landscape_every", "raise landscape_every, or turn probe_gradients off"
    if part == "instruments":
        return "probe_gradients", "turn probe_gradients off or raise emit_every"
    return "steps", "lower steps, batch_size, width or depth"


def check_budget(
    spec: RunSpec,
    settings: Settings,
    runs: int = 1,
    twin: RunSpec | None = None,
    data: DataShape | None = None,
) -> None:
    """Refuse a job whose networks or total work are over the server's limits, naming the limit.

    Every network of the job is priced on its own (run A; in compare mode run B, whose errors
    name `compare.<field>`), each against the size limits; the job's FLOPs are the sum of its
    networks', times `runs`, the trainings each one holds (a sweep: its points)."""
    networks = [("", spec)] + ([("compare.", twin)] if twin is not None else [])
    errors: list[dict[str, str]] = []
    parts = {"training": 0.0, "evaluation": 0.0, "instruments": 0.0}
    for prefix, network in networks:
        cost = RunCost.of(network, data)
        parts["training"] += cost.train_flops * runs
        parts["evaluation"] += cost.eval_flops * runs
        parts["instruments"] += cost.instrument_flops * runs
        which = "run B's network" if prefix else "this network"
        if cost.parameters > settings.max_parameters:
            errors.append(
                {
                    "field": f"{prefix}width",
                    "message": f"{which} has {cost.parameters:,} parameters; the limit is "
                    f"{settings.max_parameters:,}: lower width or depth",
                }
            )
        if cost.activation_values > settings.max_activation_values:
            errors.append(
                {
                    "field": f"{prefix}batch_size",
                    "message": f"{'run B: ' if prefix else ''}{cost.sizes} is about "
                    f"{cost.activation_values:,}; the limit is {settings.max_activation_values:,}: "
                    "lower one of them",
                }
            )
    total_flops = sum(parts.values())
    if total_flops > settings.max_train_flops:
        largest = max(parts, key=lambda part: parts[part])
        field, advice = _what_to_lower(largest, spec)
        breakdown = ", ".join(f"{part} {flops:.2g}" for part, flops in parts.items() if flops > 0)
        errors.append(
            {
                "field": field,
                "message": f"this {'job' if len(networks) > 1 or runs > 1 else 'run'} needs about "
                f"{total_flops:.2g} FLOPs ({breakdown}); the limit is {settings.max_train_flops:.2g}: "
                f"{advice}",
            }
        )
    if errors:
        raise ProtocolError("over_budget", "; ".join(e["message"] for e in errors), errors)
