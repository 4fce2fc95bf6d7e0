"""Helpers behind the browser tests' fixtures: the real server in a subprocess, Debian's headless
Chromium, and a page wrapper that records console errors.

tests/test_browser.py turns these into fixtures. Never downloads a browser: Playwright drives
/usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 30
VIEWPORT = {"width": 1280, "height": 720}  # a projector


def missing_program(reason: str) -> NoReturn:
    """A test's program is not installed: skipped here, failed under CI (which installs it)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def program(name: str, package: str) -> str:
    """The path of a program the tests run (Debian's `package`), or skipped/failed as above."""
    path = shutil.which(name)
    if path is None:
        missing_program(f"{name} is missing: install Debian's {package} package to run this test")
    return path


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a server the tests started, killing it if it does not end within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def serve_app(port: int | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """Base URL of the real app, served by uvicorn in a subprocess as in production; `env`
    adds SHIFTSCOPE_* settings."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "uvicorn", "app.main:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--ws-per-message-deflate", "false", "--log-level", "warning",
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as log:
        environment = {**os.environ, **(env or {})}
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while not _healthy(url):  # a bounded poll: the server is ready when /healthz answers
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the server did not come up on {url}:\n{log.read()[-4000:]}")
                time.sleep(0.1)
            yield url
        finally:
            stop_process(server)


@contextmanager
def launch_chromium() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright; skipped (failed on CI) when it is missing."""
    if not CHROMIUM.exists():
        missing_program(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@dataclass
class Lab:
    """One browser page on the lab, with every console error and uncaught exception it produced."""

    page: object
    base_url: str
    errors: list[str] = field(default_factory=list)

    def open(self, query: str = "") -> None:
        """Load the page (query: a URL query string, with or without '?') and wait for the socket."""
        query = query if not query or query.startswith("?") else f"?{query}"
        self.page.goto(f"{self.base_url}/{query}")
        self.page.wait_for_function("window.shiftscope && window.shiftscope.connected")

    def value(self, expression: str) -> object:
        """Evaluate a JS expression against the page's read-only debug object `s`."""
        return self.page.evaluate(f"(() => {{ const s = window.shiftscope; return {expression}; }})()")

    def wait(self, condition: str, timeout_ms: float = 30_000) -> None:
        """Wait until a JS condition on the debug object `s` holds."""
        self.page.wait_for_function(
            f"(() => {{ const s = window.shiftscope; return Boolean({condition}); }})()", timeout=timeout_ms
        )


@contextmanager
def open_lab(browser: object, base_url: str, **context_options: object) -> Iterator[Lab]:
    """A fresh browser context (1280×720 unless told otherwise) with one page.

    The tests' own probes (wait_for_function with a JS string) run through eval in the page,
    which the app's Content-Security-Policy forbids: contexts bypass the CSP unless told not to
    (tests/test_browser_csp.py runs the page under it)."""
    options = {"viewport": VIEWPORT, "bypass_csp": True, **context_options}
    context = browser.new_context(**options)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(30_000)
    lab = Lab(page, base_url)
    page.on("console", lambda message: message.type == "error" and lab.errors.append(message.text))
    page.on("pageerror", lambda error: lab.errors.append(f"uncaught: {error}"))
    try:
        yield lab
    finally:
        context.close()


def query(base: dict[str, object], **overrides: object) -> str:
    """A lab URL's query string: a base config with some fields overridden."""
    return urlencode({**base, **overrides})
