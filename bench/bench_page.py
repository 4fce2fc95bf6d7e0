"""How fast the lab page draws: frames received vs frames rendered per second, in real Chromium.

    .venv/bin/python bench/bench_page.py                      # depth 10 and 24, 5 s each, ~1 minute
    .venv/bin/python bench/bench_page.py --depths 24 --seconds 10
    .venv/bin/python bench/bench_page.py --static /tmp/static-before --rounds 3   # before vs after
    .venv/bin/python bench/bench_page.py --depths 24 --profile                    # where the time goes

Starts `python -m app` on a free port, opens the page at 1280x720 in Debian's headless Chromium
(/usr/bin/chromium), starts a tanh run paced to ~30 frames/s (emit_every 5 at 150 steps/s) and
reads the page's own counters (window.shiftscope.framesReceived / framesRendered) over a window.
The server trains on the same machine as the browser: on 2 cores they compete, so each row
gives the steps/s the run made in the window (below 150 the training, not the page, limits the
frames there are to receive), the 1-minute load average at the end of the window and `steal %`,
the share of the whole machine's CPU time the hypervisor gave to other guests during it (from
/proc/stat; on a shared VM, at 25% the page and the training both fall well short).

Per chart, by element id: `draw` is the median time of the chart's whole render() (building its
traces or outlines and drawing them) as the page's render loop times it
(window.shiftscope.renderTimings; pages older than it show –), `plotly` the median time of one
Plotly call on it (an init script wraps react, restyle, relayout, ...), each with its rate per
second. `raf ms` is the median time of one animation-frame callback (every chart drawn in it),
`msg ms` of handling one websocket message (JSON.parse and every chart recording the frame),
`busy %` the share of the window the main thread spent in long tasks (>50 ms, Long Tasks API).

`--static DIR` (repeatable) serves the page's /static/ files from DIR instead of the repo's, by
intercepting the requests in the browser: a copy of an older static/ measured in the same run, on
the same server, gives a before/after under the same load. Variants run in interleaved rounds.
`--replay 30` takes the training off the CPU: it records 60 frames of each depth's run from the
server once, then a stand-in WebSocket feeds them to the page on a 30/s timer (steps going on):
what the page can draw when frames arrive on time, whatever the training can do on this machine.
`--profile` records a CPU profile (Chrome DevTools Protocol) over each window and prints the
functions with the most self time, and the split between Plotly, the page's modules and the rest.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from load import STEAL, cpu_ticks
from playwright.sync_api import Page, Route, sync_playwright

ROOT = Path(__file__).resolve().parent.parent

# Times every Plotly call by chart element id, every animation-frame callback and every websocket
# message handler. Plotly arrives as a global from a classic script: catch the assignment.
INSTRUMENT = """
(() => {
  const costs = {};
  const note = (key, ms) => { (costs[key] ??= []).push(ms); };
  const METHODS = ["react", "restyle", "relayout", "update", "extendTraces", "newPlot", "redraw"];
  const wrap = (plotly) => {
    for (const name of METHODS) {
      const original = plotly[name];
      if (typeof original !== "function") continue;
      plotly[name] = function (gd, ...rest) {
        const t0 = performance.now();
        const result = original.call(this, gd, ...rest);
        const id = typeof gd === "string" ? gd : gd?.id || "?";
        note(`plotly:${id}`, performance.now() - t0);
        return result;
      };
    }
  };
  let plotly;
  Object.defineProperty(window, "Plotly", {
    configurable: true,
    get() { return plotly; },
    set(value) { plotly = value; if (value) wrap(value); },
  });
  const raf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => raf((now) => {
    const t0 = performance.now();
    try { callback(now); } finally { note("raf", performance.now() - t0); }
  });
  const recorded = []; // the server's messages, kept for --replay while `recording`
  let recording = false;
  const listen = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, listener, ...rest) {
    if (type !== "message") return listen.call(this, type, listener, ...rest);
    return listen.call(this, type, function (event) {
      if (recording) recorded.push(event.data);
      const t0 = performance.now();
      try { return listener.call(this, event); } finally { note("msg", performance.now() - t0); }
    }, ...rest);
  };
  let longTaskMs = 0;
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) longTaskMs += entry.duration;
    }).observe({ type: "longtask", buffered: true });
  } catch {}
  window.__bench = {
    costs,
    note,
    clear() { for (const key of Object.keys(costs)) delete costs[key]; longTaskMs = 0; },
    get longTaskMs() { return longTaskMs; },
    record(on) { recording = on; },
    get recorded() { return recorded; },
  };
})();
"""

# --replay: a stand-in for the page's WebSocket that answers a `start` with recorded messages
# and then sends the recorded frames at a fixed rate, so the page's drawing is measured with
# frames arriving on time and no training on the CPU. REPLAY is {hello, started, frames, fps}:
# the first two lists of message texts, `frames` the frame texts in order (steps increasing).
REPLAY_SOCKET = """
(() => {
  const REPLAY = __REPLAY__;
  class ReplaySocket extends EventTarget {
    static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
    constructor(url) {
      super();
      this.url = url;
      this.readyState = ReplaySocket.CONNECTING;
      this.timer = null;
      setTimeout(() => {
        this.readyState = ReplaySocket.OPEN;
        this.dispatchEvent(new Event("open"));
        for (const text of REPLAY.hello) this.deliver(text);
      }, 0);
    }
    addEventListener(type, listener, ...rest) {
      if (type !== "message") return super.addEventListener(type, listener, ...rest);
      return super.addEventListener(type, (event) => {
        const t0 = performance.now();
        try { return listener.call(this, event); }
        finally { window.__bench.note("msg", performance.now() - t0); }
      }, ...rest);
    }
    deliver(text) { this.dispatchEvent(new MessageEvent("message", { data: text })); }
    send(text) {
      const message = JSON.parse(text);
      if (message.type !== "start") return; // pause, reset, set...: the replay goes on regardless
      clearInterval(this.timer);
      for (const started of REPLAY.started) this.deliver(started);
      let next = 0;
      const tick = () => { if (next < REPLAY.frames.length) this.deliver(REPLAY.frames[next++]); };
      this.timer = setInterval(tick, 1000 / REPLAY.fps);
    }
    close() {
      clearInterval(this.timer);
      this.readyState = ReplaySocket.CLOSED;
    }
  }
  window.WebSocket = ReplaySocket;
})();
"""

PROBE = (
    "[window.shiftscope.framesReceived, window.shiftscope.framesRendered, performance.now(),"
    " window.__bench.longTaskMs, window.shiftscope.receivedStep]"
)
# The page's own draw times (pages that have them).
TIMINGS = "window.shiftscope.renderTimings ? window.shiftscope.renderTimings() : {}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server did not get ready")


def serve_static_from(page: Page, directory: Path) -> None:
    """Answer the page's /static/ requests from `directory` instead of the server."""

    def handle(route: Route) -> None:
        path = route.request.url.split("/static/", 1)[1].split("?", 1)[0].split("#", 1)[0]
        file = (directory / path).resolve()
        if not file.is_relative_to(directory.resolve()) or not file.is_file():
            route.fulfill(status=404, body="not found")
            return
        kind = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0]
        route.fulfill(status=200, body=file.read_bytes(), content_type=kind or "application/octet-stream")

    page.route("**/static/**", handle)


def cpu_split(profile: dict, top: int) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """Self time per function and per bucket (plotly / page / idle / other), in ms."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    self_ms: dict[int, float] = defaultdict(float)
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        self_ms[node_id] += delta / 1000
    by_function: dict[str, float] = defaultdict(float)
    buckets: dict[str, float] = defaultdict(float)
    for node_id, ms in self_ms.items():
        frame = nodes[node_id]["callFrame"]
        url = frame.get("url", "")
        name = frame.get("functionName") or "(anonymous)"
        if "plotly" in url:
            bucket = "plotly"
        elif "/static/" in url:
            bucket = "page"
        elif name == "(idle)":
            bucket = "idle"
        elif name in ("(garbage collector)", "(program)"):
            bucket = name
        else:
            bucket = "other"
        buckets[bucket] += ms
        where = url.rsplit("/", 1)[-1]
        by_function[f"{name} {where}:{frame.get('lineNumber', -1) + 1}" if where else name] += ms
    ranked = sorted(by_function.items(), key=lambda item: -item[1])[:top]
    return ranked, dict(buckets)


def record_frames(page: Page, url: str, depth: int, count: int, compare: bool = False) -> list[str]:
    """The server's messages for a run at `depth`, from connecting up to its `count`th frame."""
    page.goto(f"{url}/?{run_query(depth, compare)}")
    page.evaluate("window.__bench.record(true)")  # the hello came with the page: sent again below
    page.wait_for_function("window.shiftscope !== undefined && window.shiftscope.connected")
    page.click("#btn-play")
    page.wait_for_function(f"window.shiftscope.runFrames >= {count}", timeout=300_000)
    messages: list[str] = page.evaluate("window.__bench.recorded")
    page.click("#btn-reset")
    page.goto("about:blank")
    return messages


def replay_script(messages: list[str], frames: int, fps: float) -> str:
    """REPLAY_SOCKET for `frames` frames at `fps`, cycling the recorded ones with steps that go on."""
    decoded = [json.loads(text) for text in messages]
    first = next(i for i, m in enumerate(decoded) if m["type"] == "started")
    running = [m for m in decoded[first:] if m["type"] == "state" and m.get("state") == "running"]
    started = [decoded[first], *running[:1]]
    recorded = [m for m in decoded[first:] if m["type"] == "frame"]
    span = recorded[-1]["step"] - recorded[0]["step"] + (recorded[1]["step"] - recorded[0]["step"])
    stream = []
    for i in range(frames):
        frame = dict(recorded[i % len(recorded)])
        frame["step"] += (i // len(recorded)) * span
        stream.append(json.dumps(frame))
    hello = [json.dumps({"type": "hello", "version": "replay", "devices": ["cpu"], "limits": {}})]
    data = {"hello": hello, "started": [json.dumps(m) for m in started], "frames": stream, "fps": fps}
    return REPLAY_SOCKET.replace("__REPLAY__", json.dumps(data))


def run_query(depth: int, compare: bool = False) -> str:
    """A tanh run paced to ~30 frames/s; compare mode adds twin B with batch norm."""
    query = f"depth={depth}&width=64&activation=tanh&steps=100000&emit_every=5&max_steps_per_s=150"
    return query + ("&b.norm=batch" if compare else "")


def measure(page: Page, url: str, depth: int, seconds: float, profile: bool, compare: bool = False) -> dict:
    """One window of a run at `depth`: rates, per-chart costs and (optionally) a CPU profile."""
    page.goto(f"{url}/?{run_query(depth, compare)}")
    page.wait_for_function("window.shiftscope !== undefined && window.shiftscope.connected")
    page.click("#btn-play")
    page.wait_for_function("window.shiftscope.runFrames > 20", timeout=60_000)
    cdp = None
    if profile:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 200})
        cdp.send("Profiler.start")
    page.evaluate("window.__bench.clear()")
    start, ticks = page.evaluate(PROBE), cpu_ticks()
    page.wait_for_timeout(seconds * 1000)
    end, ticks = page.evaluate(PROBE), [b - a for a, b in zip(ticks, cpu_ticks(), strict=True)]
    load = os.getloadavg()[0]
    costs = page.evaluate("window.__bench.costs")
    for key, times in page.evaluate(TIMINGS).items():
        costs[f"draw:{key}"] = [ms for at, ms in times if start[2] <= at <= end[2]]
    cpu = cdp.send("Profiler.stop")["profile"] if cdp is not None else None
    if cdp is not None:
        cdp.detach()
    page.click("#btn-reset")
    elapsed = (end[2] - start[2]) / 1000
    return {
        "depth": depth,
        "received": (end[0] - start[0]) / elapsed,
        "rendered": (end[1] - start[1]) / elapsed,
        "busy": (end[3] - start[3]) / (elapsed * 1000),
        "steps_per_s": (end[4] - start[4]) / elapsed,
        "load": load,
        # The hypervisor's share of the window: on a shared VM, time none of our processes got.
        "steal": ticks[STEAL] / sum(ticks) if sum(ticks) else 0.0,
        "costs": {key: (statistics.median(v), len(v) / elapsed) for key, v in costs.items() if v},
        "profile": cpu,
    }


HEADER = "{:<{w}}  {:>5}  {:>10}  {:>10}  {:>6}  {:>6}  {:>6}  {:>7}  {:>5}  {:>7}"


def print_row(label: str, row: dict, width: int) -> None:
    costs = row["costs"]
    raf = costs.get("raf", (0.0, 0.0))[0]
    msg = costs.get("msg", (0.0, 0.0))[0]
    print(
        f"{label:<{width}}  {row['depth']:>5}  {row['received']:>10.1f}  {row['rendered']:>10.1f}"
        f"  {raf:>6.1f}  {msg:>6.1f}  {row['busy'] * 100:>6.0f}  {row['steps_per_s'] or 0:>7.0f}"
        f"  {row['load']:>5.2f}  {row['steal'] * 100:>7.0f}"
    )
    for chart in sorted({key.split(":", 1)[1] for key in costs if ":" in key}):
        cells = []
        for kind in ("draw", "plotly"):
            ms, per_s = costs.get(f"{kind}:{chart}", (None, 0.0))
            cells.append(f"{kind} {'–' if ms is None else f'{ms:.1f}':>5} ms {per_s:>5.1f}/s")
        print(f"{'':<{width}}  {'':>5}  {chart:>21}  " + "   ".join(cells))


def print_profile(profile: dict, top: int) -> None:
    ranked, buckets = cpu_split(profile, top)
    total = sum(buckets.values()) or 1
    split = sorted(buckets.items(), key=lambda bucket: -bucket[1])
    print("    cpu: " + ", ".join(f"{name} {ms / total * 100:.0f}%" for name, ms in split))
    for name, ms in ranked:
        print(f"    {ms / total * 100:5.1f}%  {name}")


def print_medians(rows: dict[tuple[str, int], list[dict]], width: int) -> None:
    print("\nmedians over rounds: frames/s, then ms per draw (draw: the chart's render(); plotly: one call)")
    for (label, depth), samples in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
        rendered = statistics.median(row["rendered"] for row in samples)
        received = statistics.median(row["received"] for row in samples)
        load = statistics.median(row["load"] for row in samples)
        steal = statistics.median(row["steal"] for row in samples)
        keys = sorted({key for row in samples for key in row["costs"]}, key=lambda k: (k.split(":")[-1], k))
        parts = []
        for key in keys:
            ms = statistics.median(row["costs"][key][0] for row in samples if key in row["costs"])
            parts.append(f"{key} {ms:.1f}")
        rates = f"received {received:5.1f}  rendered {rendered:5.1f}  load1 {load:4.2f}  steal {steal:.0%}"
        print(f"{label:<{width}}  {depth:>5}  {rates}")
        print(f"{'':<{width}}         " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--depths", nargs="+", default=["10", "24"], help="e.g. 10 24 (or 10,24)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--static",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="also measure the page with its /static/ files served from DIR",
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repeats of every variant")
    parser.add_argument("--profile", action="store_true", help="CPU profile: top functions by self time")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--replay",
        type=float,
        default=0,
        metavar="FPS",
        help="record each depth's frames from the server once, then feed them to the page at FPS",
    )
    parser.add_argument("--json", action="store_true", help="also print every row as JSON")
    parser.add_argument("--compare", action="store_true", help="compare mode: twins A and B (B: batch norm)")
    args = parser.parse_args()
    depths = [int(d) for part in args.depths for d in part.split(",") if d]
    variants: list[tuple[str, Path | None]] = [("current", None)]
    variants += [(str(directory), directory) for directory in args.static]
    width = max(len(label) for label, _ in variants)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SHIFTSCOPE_PORT=str(port))
    server = subprocess.Popen(
        [sys.executable, "-m", "app"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rows: dict[tuple[str, int], list[dict]] = defaultdict(list)
    try:
        wait_healthy(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )

            def open_page(directory: Path | None, replay: str | None = None) -> Page:
                # Playwright's string probes evaluate through eval, which the page's CSP forbids.
                page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
                page.add_init_script(INSTRUMENT)
                if replay is not None:
                    page.add_init_script(replay)
                if directory is not None:
                    serve_static_from(page, directory)
                return page

            # Live: one page per variant. Replay: one per variant and depth (the frames differ).
            pages: dict[tuple[str, int], Page] = {}
            live = {label: open_page(directory) for label, directory in variants}
            for depth in depths:
                replay = None
                if args.replay:
                    messages = record_frames(live["current"], url, depth, count=60, compare=args.compare)
                    replay = replay_script(messages, int((args.seconds + 15) * args.replay), args.replay)
                for label, directory in variants:
                    pages[(label, depth)] = open_page(directory, replay) if replay else live[label]
            if args.replay:
                print(f"replayed frames at {args.replay:g}/s (recorded from the server), no training running")
            columns = (
                "variant",
                "depth",
                "received/s",
                "rendered/s",
                "raf ms",
                "msg ms",
                "busy %",
                "steps/s",
            )
            print(HEADER.format(*columns, "load1", "steal %", w=width))
            for _ in range(args.rounds):
                for depth in depths:
                    for label, _directory in variants:
                        page = pages[(label, depth)]
                        page.bring_to_front()
                        row = measure(page, url, depth, args.seconds, args.profile, args.compare)
                        rows[(label, depth)].append(row)
                        print_row(label, row, width)
                        if row["profile"] is not None:
                            print_profile(row["profile"], args.top)
                        # Leave the page idle between windows: blank it so it draws nothing.
                        page.goto("about:blank")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    if args.rounds > 1 or len(variants) > 1:
        print_medians(rows, width)
    if args.json:
        for (label, _depth), samples in rows.items():
            for row in samples:
                print(json.dumps({"variant": label, **{k: v for k, v in row.items() if k != "profile"}}))


if __name__ == "__main__":
    main()
