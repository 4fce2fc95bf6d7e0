"""The real app over real HTTP and a real websocket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.conftest import LiveServer

SMALL = {"dataset": "xor", "depth": 3, "width": 16, "emit_every": 5, "bins": 20}


@contextmanager
def _open(server: LiveServer) -> Iterator[ClientConnection]:
    with connect(server.ws, compression=None, max_size=None, open_timeout=10) as ws:
        hello = orjson.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and "cpu" in hello["devices"]
        yield ws


def _send(ws: ClientConnection, message: dict[str, Any]) -> None:
    ws.send(orjson.dumps(message).decode())


def _until(ws: ClientConnection, predicate: Callable[[dict], bool], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the expected message did not come"
        message = orjson.loads(ws.recv(timeout=remaining))
        if predicate(message):
            return message


def _state(name: str) -> Callable[[dict], bool]:
    return lambda m: m["type"] == "state" and m["state"] == name


def test_http_routes(live_server: LiveServer) -> None:
    base = live_server.http
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    schema = httpx.get(f"{base}/api/config-schema").json()
    assert schema["properties"]["depth"]["maximum"] == 24
    presets = httpx.get(f"{base}/api/presets").json()
    assert len(presets) >= 5 and all({"id", "title", "config"} <= set(p) for p in presets)
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    plotly = httpx.get(f"{base}/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert "javascript" in plotly.headers["content-type"]


def test_start_frames_done(live_server: LiveServer) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 60}})
        started = _until(ws, lambda m: m["type"] == "started")
        assert started["layers"] == ["layer1", "layer2", "layer3"]
        assert started["config"]["steps"] == 60 and started["config"]["lr"] == 0.1  # full config
        frames, done = [], None
        while done is None:
            message = orjson.loads(ws.recv(timeout=30))
            if message["type"] == "frame":
                frames.append(message)
            elif message["type"] == "state" and message["state"] == "done":
                done = message
        assert done["step"] == 60
        steps = [f["step"] for f in frames]
        assert steps == sorted(set(steps)) and steps[-1] == 60
        layer = frames[-1]["layers"][0]
        assert len(layer["pre"]["counts"]) == 20 and sum(layer["pre"]["counts"]) == layer["pre"]["n"]
        assert frames[-1]["test_acc"] is not None


def test_pause_step_resume_and_live_learning_rate(live_server: LiveServer) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 100_000}})
        _until(ws, lambda m: m["type"] == "frame")
        _send(ws, {"type": "pause"})
        paused = _until(ws, _state("paused"))
        _send(ws, {"type": "step"})
        frame = _until(ws, lambda m: m["type"] == "frame")
        assert frame["step"] == paused["step"] + 5
        assert _until(ws, _state("paused"))["step"] == frame["step"]
        _send(ws, {"type": "set", "lr": 0.0123})
        _send(ws, {"type": "resume"})
        _until(ws, _state("running"))
        later = _until(ws, lambda m: m["type"] == "frame" and m["step"] > frame["step"])
        assert later["lr"] == 0.0123
        _send(ws, {"type": "stop"})
        _until(ws, _state("stopped"))


def test_invalid_configs_get_errors_and_the_connection_survives(live_server: LiveServer) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {"depth": 99, "norm": "weird", "extra": 1}})
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "invalid_config"
        assert sorted(e["field"] for e in error["errors"]) == ["depth", "extra", "norm"]
        ws.send('{"type":"start","config":{"lr":NaN}}')
        assert _until(ws, lambda m: m["type"] == "error")["code"] == "bad_json"
        ws.send(b"\x00\x01binary")
        assert _until(ws, lambda m: m["type"] == "error")["code"] == "bad_json"
        _send(ws, {"type": "pause"})
        assert _until(ws, lambda m: m["type"] == "error")["code"] == "no_run"
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 10}})
        assert _until(ws, _state("done"))["step"] == 10


def test_second_start_replaces_the_running_run(live_server: LiveServer) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 100_000}})
        _until(ws, lambda m: m["type"] == "frame" and m["step"] >= 10)
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 20, "norm": "layer"}})
        assert _until(ws, lambda m: m["type"] == "state")["state"] == "stopped"
        started = _until(ws, lambda m: m["type"] == "started")
        assert started["config"]["norm"] == "layer"
        frame = _until(ws, lambda m: m["type"] == "frame")
        assert frame["step"] == 0, "no frame of the old run may follow 'started'"
        assert _until(ws, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "done"


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until the server-side `predicate` holds (polled), or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


def test_disconnect_mid_run_frees_its_worker_and_session(live_server: LiveServer) -> None:
    app = live_server.app
    pool = app.state.pool
    eventually(lambda: pool.busy_count == 0)
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 100_000}})
        _until(ws, lambda m: m["type"] == "frame" and m["step"] >= 10)
        assert pool.busy_count == 1 and len(app.state.sessions) == 1
        busy = [w for w in pool.workers if w.job is not None]
        assert len(busy) == 1
        run = busy[0].job
    # After the disconnect the run is stopped (its last state says a step far short of its
    # 100 000) and its warm worker is back in the pool; 30 s is a deadline, not a speed claim.
    eventually(lambda: pool.busy_count == 0 and not app.state.sessions, timeout=30)
    assert run is not None and not run.active and 10 <= run.step < 100_000, run and run.step
    assert busy[0].job is None and busy[0].process.is_alive()
    assert not app.state.clients


def test_divergence_is_a_state_not_a_crash(live_server: LiveServer) -> None:
    config = {"activation": "relu", "init": "kaiming", "depth": 10, "width": 100, "lr": 10, "steps": 2000}
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": config})
        diverged = _until(ws, lambda m: m["type"] == "state" and m["state"] not in ("running",))
        assert diverged["state"] == "diverged" and 0 < diverged["step"] < 2000
    assert httpx.get(f"{live_server.http}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group", "rms"])
def test_every_norm_runs_over_the_wire(live_server: LiveServer, norm: str) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "norm": norm, "groups": 4, "steps": 10}})
        assert _until(ws, lambda m: m["type"] == "started")["config"]["norm"] == norm
        assert _until(ws, lambda m: m["type"] == "state" and m["state"] != "running")["state"] == "done"


def test_stats_report_sessions_slots_and_loop_lag(live_server: LiveServer) -> None:
    stats = httpx.get(f"{live_server.http}/api/stats").json()
    assert stats["run_slots"] >= 1 and stats["workers_alive"] >= 1 and stats["runs_admitted"] == 0
    assert stats["queue_length"] == 0 and stats["sessions"] == 0
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 100_000, "max_steps_per_s": 100}})
        frame = _until(ws, lambda m: m["type"] == "frame")
        assert frame["t"] <= time.time()
        busy = httpx.get(f"{live_server.http}/api/stats").json()
        assert busy["sessions"] == 1 and busy["runs_active"] == 1
        assert busy["loop_lag"]["p99_ms"] is not None
