"""How fast the lab page draws: frames received vs frames rendered per second, in real Chromium.

    .venv/bin/python bench/bench_page.py                 # depth 10 and 24, 5 s each, ~1 minute
    .venv/bin/python bench/bench_page.py --depths 24 --seconds 10

Starts `python -m app` on a free port, opens the page at 1280x720 in Debian's headless Chromium
(/usr/bin/chromium), starts a tanh run paced to ~30 frames/s (emit_every 5 at 150 steps/s) and
reads the page's own counters (window.shiftscope.framesReceived / framesRendered) over a window.
Note that the server trains on the same machine as the browser: on 2 cores they compete.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/stats", timeout=1) as response:
                stats = json.load(response)
                if stats["workers_idle"] == stats["run_slots"]:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server did not get ready")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--depths", default="10,24")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SHIFTSCOPE_PORT=str(port))
    server = subprocess.Popen(
        [sys.executable, "-m", "app"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            print(f"{'depth':>5}  {'received/s':>10}  {'rendered/s':>10}")
            for depth in (int(d) for d in args.depths.split(",")):
                query = (
                    f"depth={depth}&width=64&activation=tanh&steps=100000&emit_every=5&max_steps_per_s=150"
                )
                page.goto(f"{url}/?{query}")
                page.wait_for_function("window.shiftscope !== undefined")
                page.click("#btn-play")
                page.wait_for_function("window.shiftscope.runFrames > 20", timeout=60_000)
                probe = (
                    "[window.shiftscope.framesReceived, window.shiftscope.framesRendered, performance.now()]"
                )
                start = page.evaluate(probe)
                page.wait_for_timeout(args.seconds * 1000)
                end = page.evaluate(probe)
                elapsed = (end[2] - start[2]) / 1000
                received, rendered = (end[0] - start[0]) / elapsed, (end[1] - start[1]) / elapsed
                print(f"{depth:>5}  {received:>10.1f}  {rendered:>10.1f}")
                page.click("#btn-reset")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
