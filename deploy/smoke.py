"""A deployed ShiftScope, checked from outside: ready, serves its page, trains a run over the websocket.

    python deploy/smoke.py http://127.0.0.1:8000          # exits 1 and says what failed

deploy/image-test.sh runs it against the image it built; it needs only `websockets` (a dev
dependency) beside the standard library. A server with SHIFTSCOPE_ACCESS_TOKEN set: pass --token.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from websockets.sync.client import connect

# A short run that any server admits: 4 x 32 tanh with batch norm, 120 steps, a frame every 10.
RUN_CONFIG = {"dataset": "spiral", "depth": 4, "width": 32, "activation": "tanh", "norm": "batch"}
RUN_CONFIG |= {"steps": 120, "emit_every": 10, "bins": 20, "seed": 1}


class SmokeFailure(Exception):
    """A check on the deployed server did not hold."""


def get(url: str) -> tuple[int, bytes]:
    """The status and body of a GET; HTTP errors are answers here, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(base: str, timeout_s: float) -> dict[str, Any]:
    """Poll /readyz until it answers 200 (503 while the workers warm; refused while starting)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = get(f"{base}/readyz")
        except OSError as error:  # not listening yet
            last = repr(error)
        else:
            if status == 200:
                return json.loads(body)
            last = f"{status} {body[:200]!r}"
        time.sleep(0.5)
    raise SmokeFailure(f"/readyz not ready after {timeout_s:.0f} s (last: {last})")


def check_http(base: str) -> None:
    """Liveness, the page and the files it loads: the image must carry templates/ and static/."""
    status, body = get(f"{base}/healthz")
    if status != 200 or json.loads(body) != {"status": "ok"}:
        raise SmokeFailure(f"/healthz answered {status} {body[:200]!r}")
    status, body = get(f"{base}/")
    if status != 200 or b"ShiftScope" not in body:
        raise SmokeFailure(f"/ answered {status} without the page")
    for path in ("/static/js/main.js", "/vendor/plotly.min.js", "/api/presets"):
        status, body = get(f"{base}{path}")
        if status != 200 or not body:
            raise SmokeFailure(f"{path} answered {status}")


def play_run(ws_url: str, timeout_s: float) -> int:
    """Start RUN_CONFIG, read frames until `done`; returns the number of frames received."""
    deadline = time.monotonic() + timeout_s
    frames = 0
    with connect(ws_url, compression=None, open_timeout=10) as ws:

        def receive() -> dict[str, Any]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SmokeFailure(f"the run did not finish within {timeout_s:.0f} s ({frames} frames)")
            return json.loads(ws.recv(timeout=remaining))

        hello = receive()
        if hello.get("type") != "hello":
            raise SmokeFailure(f"first message is not hello: {hello}")
        ws.send(json.dumps({"type": "start", "config": RUN_CONFIG}))
        while True:
            message = receive()
            kind = message.get("type")
            if kind in ("error", "busy"):
                raise SmokeFailure(f"the server refused the run: {message}")
            if kind == "started" and len(message["layers"]) != RUN_CONFIG["depth"]:
                raise SmokeFailure(f"started lists {len(message['layers'])} layers")
            if kind == "frame":
                frames += 1
                if len(message["layers"][0]["pre"]["counts"]) != RUN_CONFIG["bins"]:
                    raise SmokeFailure("a frame's histogram has the wrong number of bins")
            if kind == "state" and message["state"] not in ("running", "paused"):
                if message["state"] != "done" or message["step"] != RUN_CONFIG["steps"]:
                    raise SmokeFailure(f"the run ended {message}")
                break
    if frames < 3:
        raise SmokeFailure(f"only {frames} frames before done")
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the server's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", default="", help="SHIFTSCOPE_ACCESS_TOKEN, when the server sets one")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--run-timeout", type=float, default=120.0)
    args = parser.parse_args()
    base = args.base.rstrip("/")
    ws_url = base.replace("http", "ws", 1) + "/ws" + (f"?token={args.token}" if args.token else "")
    try:
        ready = wait_ready(base, args.ready_timeout)
        print(f"smoke: /readyz {ready}")
        check_http(base)
        print("smoke: /healthz, the page, its scripts and the presets are served")
        frames = play_run(ws_url, args.run_timeout)
        print(f"smoke: a {RUN_CONFIG['steps']}-step run over the websocket: {frames} frames, done")
    except SmokeFailure as failure:
        print(f"smoke: FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
