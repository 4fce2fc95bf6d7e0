"""Real components for the scale-out tests: Debian's redis-server on a loopback port, and app
replicas as `python -m app` processes (as in production) sharing it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.browser_fixtures import free_port, program, stop_process

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30


def redis_binary() -> str:
    return program("redis-server", "redis-server")


@dataclass
class RedisServer:
    """A redis-server without persistence: a restart loses everything, as a crash would."""

    port: int
    directory: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self.directory, "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            assert self.process.poll() is None, "redis-server exited while starting"
            assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> Any:
        """A redis-py client of this server (for looking at its keys)."""
        import redis

        return redis.Redis(port=self.port, decode_responses=True)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(free_port(), directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Replica:
    """One `python -m app` process."""

    port: int
    process: subprocess.Popen[bytes]
    log: IO[str] = field(repr=False)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]


@contextmanager
def replica(settings: dict[str, str]) -> Iterator[Replica]:
    """A replica with SHIFTSCOPE_* `settings` (names without the prefix), ready when /healthz
    answers; ended (killed if it must be) on exit."""
    import httpx

    port = free_port()
    env = {**os.environ, "SHIFTSCOPE_PORT": str(port), "SHIFTSCOPE_HOST": "127.0.0.1"}
    env |= {f"SHIFTSCOPE_{name.upper()}": value for name, value in settings.items()}
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        server = Replica(port, process, log)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:  # a bounded poll: ready when /healthz answers
                try:
                    if httpx.get(f"{server.http}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"replica on port {port} did not come up:\n{server.output()}")
                time.sleep(0.1)
            yield server
        finally:
            stop_process(process)
