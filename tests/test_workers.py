"""Worker processes and admission: crashes stay contained, slots are bounded, the line is fair."""

from __future__ import annotations

import os
import signal

import pytest
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from tests.conftest import serve
from tests.test_web import SMALL, _open, _send, _state, _until, eventually

LONG = {**SMALL, "steps": 100_000, "max_steps_per_s": 200}


def test_a_killed_worker_fails_its_run_and_is_replaced() -> None:
    with serve(Settings(max_runs=1)) as server, _open(server) as ws:
        pool = server.app.state.pool
        _send(ws, {"type": "start", "config": LONG})
        _until(ws, lambda m: m["type"] == "frame" and m["step"] >= 10)
        (worker,) = [w for w in pool.workers if w.job is not None]
        os.kill(worker.pid, signal.SIGKILL)
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "run_failed" and "signal 9" in error["message"]
        assert _until(ws, lambda m: m["type"] == "state")["state"] == "failed"
        # The slot is freed: a replacement worker takes the next run.
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 10}})
        assert _until(ws, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "done"
        assert worker not in pool.workers and len(pool.workers) == 1


def test_admission_runs_n_queues_m_and_tells_the_next_it_is_busy() -> None:
    # Three jobs from one address (127.0.0.1): past the per-address cap, which is tested below.
    with serve(Settings(max_runs=1, max_queue=1, max_jobs_per_client=3)) as server:
        pool = server.app.state.pool
        eventually(lambda: pool.idle_count == 1)
        with _open(server) as first, _open(server) as second, _open(server) as third:
            _send(first, {"type": "start", "config": LONG})
            _until(first, lambda m: m["type"] == "frame")
            _send(second, {"type": "start", "config": {**SMALL, "steps": 10}})
            queued = _until(second, lambda m: m["type"] == "queued")
            assert queued["position"] == 1
            _send(third, {"type": "start", "config": {**SMALL, "steps": 10}})
            busy = _until(third, lambda m: m["type"] == "busy", timeout=5.0)  # bench/load.py times it
            assert busy["runs"] == 1 and busy["queue"] == 1
            with pytest.raises(ConnectionClosed) as info:
                third.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1013
            # While queued only 'stop' is accepted; the first run's end admits the second.
            _send(second, {"type": "pause"})
            assert _until(second, lambda m: m["type"] == "error")["code"] == "no_run"
            _send(first, {"type": "stop"})
            _until(first, _state("stopped"))
            assert _until(second, lambda m: m["type"] == "started")["config"]["steps"] == 10
            assert (
                _until(second, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "done"
            )


def test_stop_while_queued_leaves_the_line() -> None:
    with serve(Settings(max_runs=1, max_queue=4)) as server:
        pool = server.app.state.pool
        eventually(lambda: pool.idle_count == 1)
        with _open(server) as first, _open(server) as second:
            _send(first, {"type": "start", "config": LONG})
            _until(first, lambda m: m["type"] == "frame")
            _send(second, {"type": "start", "config": LONG})
            _until(second, lambda m: m["type"] == "queued")
            assert pool.queue_length == 1
            _send(second, {"type": "stop"})
            assert _until(second, lambda m: m["type"] == "state")["state"] == "stopped"
            eventually(lambda: pool.queue_length == 0)


def test_per_client_connection_cap() -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with serve(Settings(max_connections_per_client=2, max_runs=1)) as server:
        with _open(server), _open(server):
            with pytest.raises(InvalidStatus):
                with connect(server.ws, open_timeout=10):
                    pass
        eventually(lambda: not server.app.state.clients)
        with _open(server):
            pass


def test_one_address_holds_at_most_its_share_of_runs_and_places_in_line() -> None:
    # Hardening round 2, item 2: ten sockets of one address took both slots and all 8 places in
    # line in 0.2 s, and everyone else was told `busy`. Now an address holds two jobs at most.
    with serve(Settings(max_runs=1, max_queue=8, max_jobs_per_client=2)) as server:
        pool = server.app.state.pool
        eventually(lambda: pool.idle_count == 1)
        with _open(server) as first, _open(server) as second, _open(server) as third:
            _send(first, {"type": "start", "config": LONG})
            _until(first, lambda m: m["type"] == "frame")
            _send(second, {"type": "start", "config": LONG})
            _until(second, lambda m: m["type"] == "queued")
            _send(third, {"type": "start", "config": LONG})
            refused = _until(third, lambda m: m["type"] == "error")
            assert refused["code"] == "too_many_runs" and "at most 2 per address" in refused["message"]
            assert pool.queue_length == 1  # the third took no place in line
            # A session restarting its own job takes no extra place (it waits behind the second).
            _send(first, {"type": "start", "config": LONG})
            reply = _until(first, lambda m: m["type"] in ("queued", "started", "error"))
            assert reply["type"] != "error", reply
            # Once one of them ends, the third may start (the connection stayed open).
            _send(second, {"type": "stop"})
            _until(second, _state("stopped"))
            _send(third, {"type": "start", "config": {**SMALL, "steps": 10}})
            assert _until(third, lambda m: m["type"] in ("queued", "started", "error"))["type"] != "error"
            _send(first, {"type": "stop"})
            ended = _until(third, lambda m: m["type"] == "state" and m["state"] != "running")
            assert ended["state"] == "done"


def test_readyz_says_warming_until_a_worker_is_warm() -> None:
    # The fork server has imported torch once (start-up waits for that); a worker forked from it
    # is warm ~40 ms later. Until then the pool is not ready, and /readyz says so.
    import asyncio

    import httpx

    from app.workers import WorkerPool

    async def warm_up() -> tuple[bool, bool]:
        pool = WorkerPool(2, 1, spares=1)
        await pool.start()
        before = pool.ready  # the fork has happened; its warm-up has not
        for _ in range(500):
            if pool.ready:
                break
            await asyncio.sleep(0.01)
        after = pool.ready
        await pool.close()
        return before, after

    assert asyncio.run(warm_up()) == (False, True)
    with serve(Settings(max_runs=1, spare_workers=1)) as server:
        pool = server.app.state.pool
        eventually(lambda: httpx.get(f"{server.http}/readyz").status_code == 200, timeout=60)
        assert httpx.get(f"{server.http}/readyz").json() == {
            "status": "ready",
            "workers_warm": 1,
            "spares": 1,
        }
        # A lost worker is replaced from the warm fork server in well under a second.
        (worker,) = pool.workers
        os.kill(worker.pid, signal.SIGKILL)
        eventually(lambda: pool.workers and pool.workers[0].pid != worker.pid and pool.ready, timeout=30)
        assert httpx.get(f"{server.http}/readyz").status_code == 200


def test_without_a_spare_worker_a_start_is_told_it_waits_for_a_warm_up() -> None:
    with serve(Settings(max_runs=2, spare_workers=0)) as server, _open(server) as ws:
        assert not server.app.state.pool.workers  # nothing forked until a run needs it
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 10}})
        first = _until(ws, lambda m: m["type"] in ("queued", "started"))
        assert first["type"] == "queued" and first["warming"] is True, first
        assert "starting a worker" in first["message"]
        assert _until(ws, lambda m: m["type"] == "state" and m["state"] != "running", 60)["state"] == "done"
        # The worker it got is not kept: no spares wanted.
        eventually(lambda: not server.app.state.pool.workers, timeout=10)
