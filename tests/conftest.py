"""Shared fixtures: a real uvicorn server running the real app, in this process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.serve import uvicorn_options

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


@dataclass
class LiveServer:
    """A uvicorn server on a free loopback port, serving `app`."""

    app: FastAPI
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    with serve(Settings()) as server:
        yield server


@contextmanager
def serve(
    settings: Settings, *, ws_ping_interval: float | None = 20.0, ws_ping_timeout: float | None = 20.0
) -> Iterator[LiveServer]:
    """The real app with `settings`, on a uvicorn server in a thread of this process.

    It serves with `python -m app`'s uvicorn options (app/serve.py). The ping settings are
    uvicorn's (the defaults are `python -m app`'s): a peer that answers no
    ping within `ws_ping_timeout` is closed, though a close cannot complete while the peer reads
    nothing (the app's `send_timeout_s` ends such a session; see tests/test_soak.py).
    """
    app = create_app(settings)
    pings = {"ws_ping_interval": ws_ping_interval, "ws_ping_timeout": ws_ping_timeout}
    options = uvicorn_options(settings) | pings
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers):
        assert thread.is_alive(), "the server thread died while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    yield LiveServer(app, port)
    server.should_exit = True
    thread.join(timeout=15)


# Browser fixtures, shared by test_browser*.py. Module scope: Playwright's sync API allows one
# instance per thread at a time, so each browser test module starts its own server and browser.
@pytest.fixture(scope="module")
def lab_server() -> Iterator[str]:
    from browser_fixtures import serve_app

    with serve_app() as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    from browser_fixtures import launch_chromium

    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def lab(chromium: object, lab_server: str) -> Iterator[object]:
    """The lab page at 1280×720 (a projector) in a fresh browser context."""
    from browser_fixtures import open_lab

    with open_lab(chromium, lab_server) as page:
        yield page


def run_script_json(script: Path, *args: str, timeout: float) -> Any:
    """Run a bench script with this interpreter from the repo root; its stdout parsed as JSON."""
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)
