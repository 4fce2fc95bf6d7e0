"""Session on the event loop with a fake worker pool: no worker processes, no sockets.

The fake worker records the commands the session sends down the pipe and lets a test deliver
the worker's messages, as the pipe reader would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from app.config import Settings
from app.runner import Outbox, encode
from app.schemas import ProtocolError, parse_client_message
from app.session import Session
from app.spec import RunSpec
from app.workers import BeginRun, Command, RemoteRun, SetLr


class FakeWorker:
    """Stands in for workers.Worker: begin() hands back a real RemoteRun wired to this fake."""

    def __init__(self) -> None:
        self.sent: list[Command] = []
        self.runs: list[RemoteRun] = []

    def send(self, command: Command) -> None:
        self.sent.append(command)

    def begin(
        self,
        spec: RunSpec,
        outbox: Outbox,
        run_id: int,
        max_seconds: float,
        twin: RunSpec | None = None,
        sweep: tuple[tuple[float, ...], int] | None = None,
        table: object = None,  # the session's uploaded data (tests/test_upload.py trains on it)
    ) -> RemoteRun:
        run = RemoteRun(self, spec, outbox, run_id, max_seconds, sweep=sweep is not None)  # type: ignore[arg-type]
        self.runs.append(run)
        self.send(BeginRun({}, run_id, max_seconds, None, sweep))
        return run


class FakePool:
    max_workers, max_queue = 1, 0

    def __init__(self) -> None:
        self.worker = FakeWorker()

    async def acquire(self, on_position: Any, load: float = 0.0) -> FakeWorker:
        self.load = load
        return self.worker


def _session() -> tuple[Session, Outbox, FakePool]:
    outbox = Outbox(wake=lambda: None)
    pool = FakePool()
    session = Session(outbox, Settings(), pool, cuda_available=False, on_busy=lambda: None)  # type: ignore[arg-type]
    return session, outbox, pool


async def _handle(session: Session, message: dict[str, Any]) -> None:
    session.handle(parse_client_message(orjson.dumps(message).decode()))
    if session._starting is not None:
        await asyncio.wait_for(asyncio.shield(session._starting), timeout=30)


def _states(outbox: Outbox) -> list[str]:
    return [m["state"] for m in map(orjson.loads, outbox.take()) if m["type"] == "state"]


def _replace_run_after(last_state: str) -> list[str]:
    """The states a client reads when a start replaces a run whose worker last sent `last_state`."""

    async def scenario() -> list[str]:
        session, outbox, pool = _session()
        await _handle(session, {"type": "start", "config": {"steps": 10}})
        first = pool.worker.runs[0]
        first.deliver(encode({"type": "state", "state": last_state, "step": 10}), None)
        assert first.active  # the worker has not yet sent the idle marker that ends the job
        outbox.take()
        session.handle(parse_client_message(orjson.dumps({"type": "start", "config": {}}).decode()))
        await asyncio.sleep(0)  # let the start task reach its wait for the old run
        first.end()  # the idle marker: the old run's worker is free again
        assert session._starting is not None
        await asyncio.wait_for(session._starting, timeout=30)
        assert len(pool.worker.runs) == 2
        return _states(outbox)

    return asyncio.run(scenario())


def test_a_start_just_after_done_reports_no_spurious_stopped() -> None:
    assert _replace_run_after("done") == []


def test_a_start_that_replaces_a_running_run_reports_stopped() -> None:
    assert _replace_run_after("running") == ["stopped"]


def test_set_lr_during_a_sweep_is_refused_naming_lr() -> None:
    async def scenario() -> tuple[ProtocolError, list[Command]]:
        session, _, pool = _session()
        await _handle(
            session, {"type": "sweep", "config": {}, "compare": None, "lrs": [0.01, 0.1], "steps": 20}
        )
        with pytest.raises(ProtocolError) as refused:
            session.handle(parse_client_message('{"type":"set","lr":0.5}'))
        return refused.value, pool.worker.sent

    error, sent = asyncio.run(scenario())
    assert error.errors and error.errors[0]["field"] == "lr"
    assert not any(isinstance(command, SetLr) for command in sent)


def test_set_lr_of_a_plain_run_reaches_the_worker() -> None:
    async def scenario() -> list[Command]:
        session, _, pool = _session()
        await _handle(session, {"type": "start", "config": {}})
        session.handle(parse_client_message('{"type":"set","lr":0.5}'))
        return pool.worker.sent

    assert SetLr(0.5) in asyncio.run(scenario())


def _died_after(stop: bool, last_state: str | None = None) -> list[dict[str, Any]]:
    """What a client reads when the run's worker dies (a kill), after a stop or not."""

    async def scenario() -> list[dict[str, Any]]:
        session, outbox, pool = _session()
        await _handle(session, {"type": "start", "config": {"steps": 10}})
        run = pool.worker.runs[0]
        if last_state is not None:
            run.deliver(encode({"type": "state", "state": last_state, "step": 10}), None)
        outbox.take()
        if stop:
            session.handle(parse_client_message('{"type":"stop"}'))
        run.end(died="the run's worker process died (signal 9); the server is fine, start again")
        return [orjson.loads(text) for text in outbox.take()]

    return asyncio.run(scenario())


def test_a_kill_that_follows_the_users_stop_reports_stopped_not_failed() -> None:
    # Hardening round 2, item 5: a stop not seen in time became a watchdog kill, reported `failed`.
    said = _died_after(stop=True)
    assert [m["type"] for m in said] == ["state"] and said[0]["state"] == "stopped"


def test_a_kill_nobody_asked_for_reports_failed_with_its_reason() -> None:
    said = _died_after(stop=False)
    assert [m["type"] for m in said] == ["error", "state"]
    assert said[0]["code"] == "run_failed" and "signal 9" in said[0]["message"]
    assert said[1]["state"] == "failed"


def test_a_kill_after_the_last_state_adds_nothing() -> None:
    assert _died_after(stop=False, last_state="done") == []
