"""Worker processes: spawned once, kept warm with torch imported, each running one Run at a time.

A crash, an out-of-memory kill or a runaway run takes down its worker, never the server: the
parent sees the pipe close, tells the session its run `failed` and spawns a replacement.

Wire between parent and worker (a duplex multiprocessing pipe):
  parent -> worker  pickled commands (the dataclasses below): BeginRun, Pause, Resume, StepOnce,
                    Stop, SetLr, Quit
  worker -> parent  bytes: b"F" + slot + frame JSON (slot: b"A", b"B", or b"-" for a single run),
                    b"K" + slot + frame JSON (a frame with a measurement: not to be coalesced),
                    b"M" + control-message JSON, b"I" (idle: ready for a job, or the last job's
                    messages are all sent), b"R" (retiring: the last job's messages are all sent,
                    and the worker exits so that a fresh one takes its slot)

Memory: once warm, a worker caps its own address space (RLIMIT_AS, `worker_memory_bytes`), so a
run that needs more fails with an out-of-memory error; after each job it gives its free pages
back, and one that still holds more than `worker_recycle_bytes` retires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

from app.datasets.upload import Table
from app.lifecycle import FINAL_STATES, RunState, SteeredRun
from app.spec import RunSpec

FRAME, KEPT, MESSAGE, IDLE, RETIRE = b"F", b"K", b"M", b"I", b"R"
NO_SLOT = b"-"  # the frame slot of a single run
KILL_GRACE_S = 5.0  # a run that ignores stop (or its time limit) this long is killed

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class BeginRun:
    """Start a run: its spec's fields (and its twin's), its id, its time limit, a sweep, and the
    session's uploaded table when the run trains on it (numpy arrays, pickled down the pipe: ~20
    MB at most, never through shared memory or a file)."""

    spec: dict[str, Any]
    run_id: int
    max_seconds: float
    twin: dict[str, Any] | None = None
    sweep: tuple[tuple[float, ...], int] | None = None  # (learning rates, steps of each run)
    table: Table | None = None


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class StepOnce:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class SetLr:
    lr: float


@dataclass(frozen=True)
class Quit:
    pass


Command = BeginRun | Pause | Resume | StepOnce | Stop | SetLr | Quit


# ----------------------------------------------------------------------------- worker side


@dataclass(frozen=True)
class Limits:
    """A worker's rules: its address-space cap and the footprint that retires it (0: none), and
    its runs' scheduling priority once they have sent their first frame (nice value: 10 leaves
    the event loop ahead of every run; a run starting meanwhile gets its first frame out at the
    server's priority)."""

    memory_bytes: int = 0
    recycle_bytes: int = 0
    niceness: int = 0


def worker_main(conn: Connection, limits: Limits = Limits()) -> None:
    """Entry point of a worker process: import torch once, then run jobs until told to quit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    with contextlib.suppress(EOFError, OSError):  # the parent went away: nothing left to do
        _serve_jobs(conn, limits)


def _cap_memory(limit: int) -> None:
    """Cap this process's address space: past it allocations fail (torch raises, the run fails
    with a clear reason) instead of the host running out of memory."""
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _warm_up() -> None:
    """Pay the first-use costs (imports, the digits file, torch's first kernels) before any job."""
    import torch

    from app.allocator import keep_freed_memory
    from app.training import Trainer

    torch.set_num_threads(1)  # one core per run; see runner.Run._main
    keep_freed_memory()  # frames stop re-faulting their temporaries' pages; see app/allocator.py
    trainer = Trainer(RunSpec(dataset="digits", depth=2, width=8, steps=2, emit_every=1, norm="batch"))
    for _ in trainer.run(threading.Event()):
        pass


def _serve_jobs(conn: Connection, limits: Limits) -> None:
    from app.allocator import release_freed_memory, resident_bytes
    from app.loops import Sweep
    from app.runner import Outbox, Run

    _warm_up()
    _cap_memory(limits.memory_bytes)
    send_lock = threading.Lock()

    def send(data: bytes) -> None:
        with send_lock:
            conn.send_bytes(data)

    send(IDLE)
    while True:
        job: Command = conn.recv()
        if isinstance(job, Quit):
            return
        if not isinstance(job, BeginRun):
            continue  # a command for a run that already ended
        forwarder = _Forwarder(send)
        outbox = Outbox(forwarder.wake)
        outbox.run_id = job.run_id
        forwarder.attach(outbox)
        run = Run(
            RunSpec(**job.spec),
            outbox,
            job.run_id,
            job.max_seconds,
            twin=RunSpec(**job.twin) if job.twin else None,
            sweep=Sweep(tuple(job.sweep[0]), job.sweep[1]) if job.sweep else None,
            niceness=limits.niceness,
            table=job.table,
        )
        run.start()
        try:
            while not run.finished.is_set():
                if conn.poll(0.05):
                    _apply(run, conn.recv())
        finally:
            run.stop()  # a no-op when it ended by itself; else the parent is gone
            run.join()
        forwarder.close(outbox)
        del run, outbox, forwarder, job  # the job's table too: it goes with the run
        release_freed_memory()
        if limits.recycle_bytes and resident_bytes() > limits.recycle_bytes:
            send(RETIRE)  # the job is over; a fresh worker takes this slot
            return
        send(IDLE)


def _apply(run: SteeredRun, command: Command) -> None:
    match command:
        case Pause():
            run.pause()
        case Resume():
            run.resume()
        case StepOnce():
            run.step_once()
        case Stop():
            run.stop()
        case SetLr(lr=lr):
            run.set_lr(lr)
        case _:
            logger.warning("a worker with a run in progress ignored %r", command)


class _Forwarder:
    """Sends a run's outbox to the parent on its own thread: a slow pipe coalesces frames."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._event = threading.Event()
        self._outbox: Any = None
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="forwarder", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._event.set()

    def _loop(self) -> None:
        while not self._closing:
            self._event.wait()
            self._event.clear()
            if self._outbox is not None:
                self._flush(self._outbox)

    def _flush(self, outbox: Any) -> None:
        for text, slot, kept in outbox.take_tagged():
            prefix = MESSAGE if slot is None else (KEPT if kept else FRAME) + (slot.encode() or NO_SLOT)
            self._send(prefix + text.encode())

    def attach(self, outbox: Any) -> None:
        self._outbox = outbox

    def close(self, outbox: Any) -> None:
        self._closing = True
        self._event.set()
        self._thread.join()
        self._flush(outbox)  # whatever the run said last goes out before IDLE


# ----------------------------------------------------------------------------- parent side


class RemoteRun:
    """A run inside a worker process, steered like a runner.Run from the event loop."""

    def __init__(
        self, worker: Worker, spec: RunSpec, outbox: Any, run_id: int, max_seconds: float, sweep: bool = False
    ) -> None:
        self.worker, self.spec, self.outbox, self.run_id = worker, spec, outbox, run_id
        self._sweep = sweep  # a learning-rate sweep: each point trains at its own rate
        self.step = 0
        self.finished = threading.Event()
        self.deadline = time.monotonic() + max_seconds + KILL_GRACE_S
        self.stop_requested_at: float | None = None
        self._final_state: RunState | None = None  # the run's last state, once the worker sent it
        self._on_finish: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return not self.finished.is_set()

    @property
    def is_sweep(self) -> bool:
        return self._sweep

    @property
    def final_state(self) -> RunState | None:
        return self._final_state

    def pause(self) -> None:
        self.worker.send(Pause())

    def resume(self) -> None:
        self.worker.send(Resume())

    def step_once(self) -> None:
        self.worker.send(StepOnce())

    def set_lr(self, lr: float) -> None:
        self.worker.send(SetLr(lr))

    def stop(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        self.worker.send(Stop())

    def on_finish(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the reader thread) once the run has ended."""
        self._on_finish.append(callback)
        if self.finished.is_set():
            callback()

    def deliver(self, text: str, slot: str | None, keep: bool = False) -> None:
        if slot is None:
            message = orjson.loads(text)
            if message.get("type") == "state":
                self.step = message["step"]
                if "run" not in message and message["state"] in FINAL_STATES:
                    self._final_state = RunState(message["state"])
        self.outbox.put_text(text, slot, self.run_id, keep)

    def end(self, died: str | None = None) -> None:
        if self.finished.is_set():
            return
        if died is not None and self._final_state is not None:
            pass  # it had said its last state: the client has heard how the run ended
        elif died is not None and self.stop_requested_at is not None:
            # Killed after a stop it did not see in time (the watchdog's grace ran out): what the
            # user asked for happened, so the run ends `stopped`, not `failed`.
            self.outbox.put({"type": "state", "state": "stopped", "step": self.step}, run_id=self.run_id)
            self._final_state = RunState.STOPPED
        elif died is not None:
            self.outbox.put(
                {"type": "error", "code": "run_failed", "message": died, "errors": []}, run_id=self.run_id
            )
            self.outbox.put({"type": "state", "state": "failed", "step": self.step}, run_id=self.run_id)
        self.finished.set()
        for callback in self._on_finish:
            callback()


_REMOTE_RUN_IS_STEERED: type[SteeredRun] = RemoteRun  # mypy checks RemoteRun honours it


class Worker:
    """The parent's handle on one worker process and the thread that reads its pipe."""

    def __init__(
        self,
        context: Any,
        on_idle: Callable[[Worker], None],
        on_exit: Callable[[Worker], None],
        limits: Limits = Limits(),
    ) -> None:
        parent_end, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=worker_main, args=(child_end, limits), daemon=True)
        self.process.start()
        child_end.close()
        self.conn: Connection = parent_end
        self.pid: int = self.process.pid
        self.job: RemoteRun | None = None
        self.alive = True
        self.retired = False  # it said it would exit after its job (memory): not a crash
        self.warm = False  # it has imported torch and run its warm-up: ready for a job
        self.load: float | None = None  # the admitted load of the run it was handed out for
        self.quitting = False  # told to quit (an idle worker past the spares): not a crash
        self._on_idle, self._on_exit = on_idle, on_exit
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"worker-{self.pid}", daemon=True)
        self._reader.start()

    def begin(
        self,
        spec: RunSpec,
        outbox: Any,
        run_id: int,
        max_seconds: float,
        twin: RunSpec | None = None,
        sweep: tuple[tuple[float, ...], int] | None = None,
        table: Table | None = None,
    ) -> RemoteRun:
        assert self.job is None, "a worker runs one job at a time"
        run = RemoteRun(self, spec, outbox, run_id, max_seconds, sweep=sweep is not None)
        self.job = run
        self.send(BeginRun(asdict(spec), run_id, max_seconds, asdict(twin) if twin else None, sweep, table))
        return run

    def send(self, command: Command) -> None:
        with self._send_lock, contextlib.suppress(OSError, ValueError):  # dead: the reader reports it
            self.conn.send(command)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def _read(self) -> None:
        while True:
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                break
            kind = data[:1]
            if kind in (IDLE, RETIRE):
                self.warm = True
                job, self.job = self.job, None
                if job is not None:
                    job.end()
                if kind == RETIRE:
                    self.retired = True  # it exits now; the pool spawns its replacement
                else:
                    self._on_idle(self)
            elif self.job is not None:
                if kind in (FRAME, KEPT):
                    slot = data[1:2]
                    label = "" if slot == NO_SLOT else slot.decode()
                    self.job.deliver(data[2:].decode(), label, keep=kind == KEPT)
                else:
                    self.job.deliver(data[1:].decode(), None)
        self.alive = False
        self.process.join(timeout=5)
        code = self.process.exitcode
        job, self.job = self.job, None
        if job is not None:
            reason = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            job.end(died=f"the run's worker process died ({reason}); the server is fine, start again")
        with contextlib.suppress(OSError):
            self.conn.close()
        self._on_exit(self)


class Busy(Exception):
    """No capacity for another run and the wait queue is full."""


@dataclass
class _Waiter:
    """A start waiting in line for capacity: its load, and how to tell it its place."""

    load: float
    on_position: Callable[[int, bool], None]
    admitted: asyncio.Future[None]


class WorkerPool:
    """Runs admitted by CPU capacity, each in a warm worker process, and a bounded FIFO line.

    Every run says its `load`: the share of a core it needs to keep the floor (frames and steps a
    second, app/budget.floor_load). A run is admitted while the loads of the admitted runs and its
    own fit in `capacity` (cores; 0: no CPU check) and fewer than `max_workers` run; the first
    run is always admitted, whatever its load. Past that, starts wait in line in order, told
    their place; past `max_queue` waiting, a start is told `busy`. Admitted runs share the CPU
    fairly because the kernel shares it fairly between processes of one priority: the workers
    run at `niceness` (lower priority than the server's event loop) and each run takes what it
    gets, its frames by the clock (training.FrameClock).

    Workers start on demand from a fork server that has imported torch, so a new one is warm in
    ~0.1 s; `spares` idle ones are kept warm for instant starts, more are quit.

    All methods run on the event loop; worker threads reach it through call_soon_threadsafe.
    """

    def __init__(
        self,
        max_workers: int,
        max_queue: int,
        memory_bytes: int = 0,
        recycle_bytes: int = 0,
        capacity: float = 0.0,
        spares: int = 1,
        niceness: int = 0,
    ) -> None:
        self.max_workers, self.max_queue, self.capacity = max(1, max_workers), max_queue, capacity
        self.spares = max(0, min(spares, self.max_workers))
        self.limits = Limits(memory_bytes, recycle_bytes, niceness)
        # Workers fork from a fork server that has imported torch, torch._dynamo (which the
        # optimizers import on first use: 1.3 s of a worker's warm-up) and the trainer once:
        # they share its pages copy-on-write and are warm ~20 ms after the fork. The fork server
        # only imports (no torch op, so no OpenMP threads yet): forking from it is safe.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["app.workers", "torch", "torch._dynamo", "app.training"])
        self._loop: asyncio.AbstractEventLoop | None = None
        self.workers: list[Worker] = []
        self._idle: deque[Worker] = deque()
        self._waiters: deque[_Waiter] = deque()  # in line for capacity
        self._wanting: deque[asyncio.Future[Worker]] = deque()  # admitted, waiting for a worker
        self.running = 0  # admitted runs (with a worker, or about to get one)
        self.load = 0.0  # their loads, summed
        self._closed = False
        self._watchdog: asyncio.Task[None] | None = None
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawn-worker")
        self._spawning = 0  # forks asked of the spawner thread, not yet done
        self.crashes = 0  # workers that exited unasked (killed, crashed), since start-up

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._maintain()
        self._watchdog = asyncio.create_task(self._watch())

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def busy_count(self) -> int:
        return sum(1 for worker in self.workers if worker.job is not None)

    @property
    def queue_length(self) -> int:
        return len(self._waiters)

    @property
    def warm_count(self) -> int:
        return sum(1 for worker in self.workers if worker.warm and worker.alive)

    @property
    def ready(self) -> bool:
        """Started, and the spare workers are warm (or busy training): a start gets one at once."""
        return self._loop is not None and self.warm_count >= self.spares

    def fits(self, load: float) -> bool:
        if self.running >= self.max_workers:
            return False
        return self.running == 0 or self.capacity <= 0 or self.load + load <= self.capacity + 1e-9

    async def acquire(self, on_position: Callable[[int, bool], None], load: float = 0.0) -> Worker:
        """A warm worker for a run of this load, now or after waiting in line; raises Busy when
        the line is full. `on_position(n, False)` hears its place in line (1 = next), and
        `on_position(1, True)` that it is admitted but waits for a worker to warm up."""
        if self._waiters or not self.fits(load):
            if len(self._waiters) >= self.max_queue:
                raise Busy()
            await self._wait_in_line(load, on_position)
        else:
            self._admit(load)
        try:
            worker = await self._worker(on_position)
        except BaseException:
            self._unadmit(load)
            raise
        worker.load = load
        return worker

    async def _wait_in_line(self, load: float, on_position: Callable[[int, bool], None]) -> None:
        assert self._loop is not None
        waiter = _Waiter(load, on_position, self._loop.create_future())
        self._waiters.append(waiter)
        on_position(len(self._waiters), False)
        try:
            await waiter.admitted
        except asyncio.CancelledError:
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                self._unadmit(load)  # admitted as we were cancelled: pass the capacity on
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._announce_positions()

    async def _worker(self, on_position: Callable[[int, bool], None]) -> Worker:
        if self._idle:
            return self._idle.popleft()
        assert self._loop is not None
        future: asyncio.Future[Worker] = self._loop.create_future()
        self._wanting.append(future)
        on_position(1, True)  # admitted: the wait is a worker's warm-up, not other people's runs
        self._maintain()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._idle_or_hand_over(future.result())  # handed over as we were cancelled
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._wanting.remove(future)

    def _admit(self, load: float) -> None:
        self.running += 1
        self.load += load

    def _unadmit(self, load: float) -> None:
        self.running = max(0, self.running - 1)
        self.load = max(0.0, self.load - load) if self.running else 0.0
        self._admit_waiting()

    def _admit_waiting(self) -> None:
        """Admit starts from the head of the line while they fit (in order: no overtaking)."""
        changed = False
        while self._waiters and self.fits(self._waiters[0].load):
            waiter = self._waiters.popleft()
            if waiter.admitted.done():
                continue
            self._admit(waiter.load)
            waiter.admitted.set_result(None)
            changed = True
        if changed:
            self._announce_positions()

    def _job_over(self, worker: Worker) -> None:
        """A worker's job ended (it is idle again, or it exited): its capacity goes back."""
        if worker.load is not None:
            load, worker.load = worker.load, None
            self._unadmit(load)

    def _released(self, worker: Worker) -> None:
        self._job_over(worker)
        if self._closed or not worker.alive:
            return
        self._idle_or_hand_over(worker)
        self._maintain()

    def _idle_or_hand_over(self, worker: Worker) -> None:
        while self._wanting:
            future = self._wanting.popleft()
            if not future.done():
                future.set_result(worker)
                return
        if len(self._idle) >= self._spare_target() or self._closed:
            worker.quitting = True  # more idle workers than spares: this one goes
            worker.send(Quit())
            return
        self._idle.append(worker)

    def _announce_positions(self) -> None:
        for position, waiter in enumerate(self._waiters, start=1):
            waiter.on_position(position, False)

    def _maintain(self) -> None:
        """Start workers for the admitted runs waiting for one, and to keep the spares."""
        if self._closed:
            return
        starting = self._spawning + sum(1 for worker in self.workers if not worker.warm and worker.alive)
        wanted = len(self._wanting) + max(0, self._spare_target() - len(self._idle)) - starting
        room = self.max_workers - self._spawning - sum(1 for worker in self.workers if not worker.quitting)
        for _ in range(min(wanted, room)):
            self._spawn()

    def _spare_target(self) -> int:
        """Idle workers worth keeping warm: the spares, but no more than could still be admitted."""
        return max(0, min(self.spares, self.max_workers - self.running))

    def _spawn(self) -> None:
        """Fork a worker on the spawner thread: a fork asks the fork server and waits for its pid
        (~6 ms, far longer under load or while the fork server first imports torch), which the
        event loop must not wait for."""
        assert self._loop is not None
        self._spawning += 1
        future = self._loop.run_in_executor(self._spawner, self._new_worker)
        future.add_done_callback(self._spawned)

    def _new_worker(self) -> Worker:
        return Worker(
            self._context, self._from_thread(self._released), self._from_thread(self._exited), self.limits
        )

    def _spawned(self, future: asyncio.Future[Worker]) -> None:
        self._spawning -= 1
        if future.cancelled() or future.exception() is not None:
            if not self._closed:
                logger.error("a worker could not be started: %r", future.exception())
            return
        worker = future.result()
        if self._closed:
            worker.send(Quit())
            return
        self.workers.append(worker)

    def _exited(self, worker: Worker) -> None:
        with contextlib.suppress(ValueError):
            self.workers.remove(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        self._job_over(worker)
        if self._closed or worker.quitting:
            return
        if worker.retired:
            logger.info("worker %s retired after a large job; starting a fresh one", worker.pid)
        else:
            self.crashes += 1
            logger.warning("worker %s exited; starting a replacement", worker.pid)
        self._maintain()

    def _from_thread(self, callback: Callable[[Worker], None]) -> Callable[[Worker], None]:
        def call(worker: Worker) -> None:
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(callback, worker)

        return call

    async def _watch(self) -> None:
        """Kill workers whose run ignores its stop or outlives its time limit."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for worker in list(self.workers):
                job = worker.job
                if job is None:
                    continue
                stuck = job.stop_requested_at is not None and now - job.stop_requested_at > KILL_GRACE_S
                if stuck or now > job.deadline:
                    logger.warning("killing worker %s: its run does not stop", worker.pid)
                    worker.kill()

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        # A fork in flight finishes first (its worker, seeing the pool closed, is told to quit).
        await asyncio.get_running_loop().run_in_executor(None, self._spawner.shutdown)
        for worker in self.workers:
            worker.send(Quit())
        deadline = time.monotonic() + 5
        for worker in list(self.workers):
            while worker.process.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if worker.process.is_alive():
                worker.kill()
