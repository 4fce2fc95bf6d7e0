"""Load on a real server: many connected sessions, streaming runs, latency, loop lag, CPU.

    .venv/bin/python bench/load.py                  # 100 idle sessions + one streaming run per core, 60 s
    .venv/bin/python bench/load.py --quick --json   # a seconds-long smoke run, as JSON
    .venv/bin/python bench/load.py --sessions 200 --runs 4 --seconds 30

Method
------
Starts `python -m app` (a real uvicorn, per-message deflate off) as a subprocess on a free
loopback port, with its limits set through SHIFTSCOPE_* variables: `--runs` run slots, a short
queue (`--queue`) and connection caps high enough for the whole load. The client is one asyncio
process using the `websockets` client with compression off, as browsers get from the server.

1. **Load.** `--sessions` sessions connect and stay idle (connected, hello received, no run);
   `--runs` sessions start a run paced to stream 20-30 frames a second
   (`max_steps_per_s` / `emit_every`: 125 / 5 = 25 by default) on the default run's network
   (digits, 8 x 64 sigmoid; `--depth`, `--width`, `--norm` change it). After a second of
   warm-up, every frame delivered in the
   `--seconds` window is counted, and its step-to-client latency is `time.time()` on receipt
   minus the frame's `t` (the server's wall clock when the worker took it; same machine).
   Server CPU is utime + stime from /proc/<pid>/stat of the server process and of each worker
   (their pids come from GET /api/stats) across the window, in % of one core. Event-loop lag
   is GET /api/stats's `loop_lag` at the end of the window: the server samples it every 50 ms
   and keeps the last 60 s, so with `--seconds` >= 60 it covers the load window only.
2. **Busy.** Still under load (every slot taken), `--queue` more sessions start runs and wait
   in line; then each of `--busy-tries` fresh connections sends a start and is timed from send
   to the `busy` reply (the server closes it with 1013 afterwards).
3. **Throughput.** The same network unpaced (`max_steps_per_s` 0): one run alone, then
   `--runs` runs at once, each measured over the same window as (last step - first step) /
   (last frame's t - first frame's t), in `--rounds` interleaved rounds; the solo rate and the
   group are each their best round (contention only slows runs down). Each concurrent run is
   compared with its fair share: solo / (runs / cores) when there are more runs than cores,
   else solo. The target is >= 80%. On a shared machine other processes take CPU too, so the
   report adds steps per worker CPU-second (utime + stime of the workers across the window),
   solo and together: their ratio is what running together costs each step, whatever CPU the
   OS handed out.

Nothing here asserts; the targets column says whether each number met its target on this run.
The machine is shared and noisy: /proc/loadavg at the start is reported with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
CORES = len(os.sched_getaffinity(0))  # the cores this process (and the server it starts) may use
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The default run's network (digits, 8 x 64 sigmoid, 64 bins), long enough for any window.
NETWORK = {
    "dataset": "digits",
    "depth": 8,
    "width": 64,
    "activation": "sigmoid",
    "bins": 64,
    "steps": 100_000,
}

TARGETS = {
    "sessions": 100,  # connected sessions, at least
    "fps": (20.0, 30.0),  # frames a second per streaming run
    "latency_p95_ms": 100.0,
    "loop_lag_p99_ms": 20.0,
    "fair_share_pct": 80.0,  # each concurrent run's throughput vs solo / its share of the cores
}


# ----------------------------------------------------------------------------- the server


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Any

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return json.loads(response.read())

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.get, "/api/stats")

    def log_tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(runs: int, queue: int, connections: int, settings: dict[str, str] | None = None) -> Server:
    """`python -m app` on a free loopback port, once its workers are warm; `settings` adds
    SHIFTSCOPE_* variables (bench/fanout.py lifts the room limits with them)."""
    port = free_port()
    env = {
        **os.environ,
        "SHIFTSCOPE_HOST": "127.0.0.1",
        "SHIFTSCOPE_PORT": str(port),
        "SHIFTSCOPE_LOG_LEVEL": "warning",
        "SHIFTSCOPE_MAX_RUNS": str(runs),
        "SHIFTSCOPE_MAX_QUEUE": str(queue),
        "SHIFTSCOPE_MAX_SESSIONS": str(connections),
        "SHIFTSCOPE_MAX_CONNECTIONS_PER_CLIENT": str(connections),  # every client is 127.0.0.1
        "SHIFTSCOPE_MAX_JOBS_PER_CLIENT": "0",  # the same: no per-address cap on runs
        **(settings or {}),
    }
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{server.log_tail()}")
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"the server was not ready within 90 s:\n{server.log_tail()}")
        with contextlib.suppress(OSError, ValueError):
            if server.get("/readyz")["status"] == "ready":
                return server  # the spare workers are warm
        time.sleep(0.2)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown; workers quit
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    server.log.close()


@contextlib.asynccontextmanager
async def running_server(
    runs: int, queue: int, connections: int, settings: dict[str, str] | None = None
) -> AsyncIterator[Server]:
    """A started server for the `async with` block; if the block fails, the server's log tail
    (and its exit code, if it died) goes to stderr before it is stopped."""
    server = await asyncio.to_thread(start_server, runs, queue, connections, settings)
    try:
        yield server
    except BaseException:
        if server.process.poll() is not None:
            print(f"the server exited with code {server.process.returncode} mid-bench", file=sys.stderr)
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        await asyncio.to_thread(stop_server, server)


def loadavg() -> list[float]:
    with open("/proc/loadavg") as file:
        return [float(x) for x in file.read().split()[:3]]


STEAL = 7  # the steal column of /proc/stat's "cpu" line, counted from its first number


def cpu_ticks() -> list[int]:
    """The whole machine's CPU time by kind (/proc/stat: user, nice, system, idle, iowait, irq,
    softirq, steal), or zeros where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(field) for field in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return [0] * 8


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": fields from 3 on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ----------------------------------------------------------------------------- clients


@dataclass
class Stream:
    """One session with a run: every frame as (received at, frame t, step)."""

    ws: ClientConnection
    frames: list[tuple[float, float, int]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for text in self.ws:
            received = time.time()
            message = orjson.loads(text)
            kind = message["type"]
            if kind == "frame":
                self.frames.append((received, message["t"], message["step"]))
                self.started.set()
            elif kind in ("error", "busy"):
                raise RuntimeError(f"a streaming run was refused: {message}")
            elif kind == "state" and message["state"] not in ("running", "paused"):
                self.ended = message["state"]
                return

    def window(self, begin: float, end: float) -> list[tuple[float, float, int]]:
        return [f for f in self.frames if begin <= f[0] < end]


async def open_session(url: str) -> ClientConnection:
    ws = await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=30)
    hello = orjson.loads(await ws.recv())
    assert hello["type"] == "hello", hello
    return ws


async def open_sessions(url: str, n: int) -> list[ClientConnection]:
    gate = asyncio.Semaphore(16)

    async def one() -> ClientConnection:
        async with gate:
            return await open_session(url)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def start_streams(url: str, n: int, config: dict[str, Any]) -> list[Stream]:
    streams = [Stream(ws) for ws in await open_sessions(url, n)]
    for stream in streams:
        await stream.ws.send(orjson.dumps({"type": "start", "config": config}).decode())
        stream.reader = asyncio.create_task(stream.read())
    await asyncio.wait_for(asyncio.gather(*(s.started.wait() for s in streams)), 60)
    return streams


async def stop_streams(streams: list[Stream]) -> None:
    for stream in streams:
        with contextlib.suppress(ConnectionClosed):
            await stream.ws.send('{"type":"stop"}')
    for stream in streams:
        assert stream.reader is not None
        with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
            await asyncio.wait_for(stream.reader, 10)
        await stream.ws.close()


async def close_all(sessions: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in sessions), return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rate(frames: list[tuple[float, float, int]]) -> float:
    """Steps per second between the first and the last frame, on the server's clock."""
    if len(frames) < 2 or frames[-1][1] <= frames[0][1]:
        return 0.0
    return (frames[-1][2] - frames[0][2]) / (frames[-1][1] - frames[0][1])


# ----------------------------------------------------------------------------- phases


async def load_phase(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    stream_config = {**NETWORK, "emit_every": args.emit_every, "max_steps_per_s": args.steps_per_s}
    idle = await open_sessions(server.ws, args.sessions)
    streams = await start_streams(server.ws, args.runs, stream_config)
    await asyncio.sleep(1.0)  # warm-up: pacing settles, first-use costs are paid

    stats = await server.stats()
    pids = [stats["server_pid"], *stats["worker_pids"]]
    cpu_before = {pid: cpu_seconds(pid) for pid in pids}
    client_before = time.process_time()
    begin = time.time()
    await asyncio.sleep(args.seconds)
    end = time.time()
    cpu_after = {pid: cpu_seconds(pid) for pid in pids}
    client_cpu = time.process_time() - client_before
    stats = await server.stats()
    wall = end - begin

    frames = [stream.window(begin, end) for stream in streams]
    latencies = [(received - t) * 1000 for run in frames for received, t, _ in run]
    server_pid = pids[0]
    busy = await busy_phase(server, args, stream_config)

    await stop_streams(streams)
    await close_all(idle)
    return {
        "idle_sessions": len(idle),
        "streaming_runs": len(streams),
        "connected": stats["sessions"],
        "seconds": round(wall, 2),
        "config": stream_config,
        "frames_per_run": [len(run) for run in frames],
        "fps_per_run": [round(len(run) / wall, 2) for run in frames],
        "frames_dropped": stats["frames_dropped"],
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "max": round(max(latencies), 2),
            "samples": len(latencies),
        },
        "loop_lag_ms": stats["loop_lag"],
        "cpu_pct": {
            "server": round(100 * (cpu_after[server_pid] - cpu_before[server_pid]) / wall, 1),
            "workers": [round(100 * (cpu_after[pid] - cpu_before[pid]) / wall, 1) for pid in pids[1:]],
            "bench_client": round(100 * client_cpu / wall, 1),
        },
        "busy": busy,
    }


async def busy_phase(server: Server, args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """With every slot running, fill the queue, then time `busy` replies to further starts."""
    start = orjson.dumps({"type": "start", "config": config}).decode()
    waiting = await open_sessions(server.ws, args.queue)
    for ws in waiting:
        await ws.send(start)
        while orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "queued":
            pass
    times = []
    codes = []
    for _ in range(args.busy_tries):
        ws = await open_session(server.ws)
        sent = time.perf_counter()
        await ws.send(start)
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        times.append((time.perf_counter() - sent) * 1000)
        if reply["type"] != "busy":
            raise RuntimeError(f"expected busy, got {reply}")
        with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 10)
        codes.append(ws.close_code)
        await ws.close()
    for ws in waiting:
        await ws.send('{"type":"stop"}')
    await close_all(waiting)
    return {
        "queued": len(waiting),
        "tries": len(times),
        "reply_ms": {"median": round(statistics.median(times), 2), "max": round(max(times), 2)},
        "close_codes": sorted(set(codes)),
    }


async def throughput_phase(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    config = {**NETWORK, "emit_every": args.emit_every, "max_steps_per_s": 0}

    async def measure(n: int) -> tuple[list[float], float]:
        """Each run's steps/s, and the steps all runs took per CPU-second their workers used."""
        streams = await start_streams(server.ws, n, config)
        await asyncio.sleep(0.5)  # warm-up
        pids = (await server.stats())["worker_pids"]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        begin = time.time()
        await asyncio.sleep(args.throughput_seconds)
        end = time.time()
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        windows = [stream.window(begin, end) for stream in streams]
        steps = sum(w[-1][2] - w[0][2] for w in windows if len(w) >= 2)
        await stop_streams(streams)
        await wait_idle(server)
        return [rate(w) for w in windows], (steps / cpu if cpu > 0 else 0.0)

    # Interleaved rounds, each side keeping its best: other processes only ever slow a run down,
    # so the best round is the least disturbed one, for the solo run and for the group alike.
    solo, solo_per_cpu, together, together_per_cpu = 0.0, 0.0, [0.0], 0.0
    for _ in range(args.rounds):
        (rate_alone,), per_cpu = await measure(1)
        if rate_alone > solo:
            solo, solo_per_cpu = rate_alone, per_cpu
        rates, per_cpu = await measure(args.runs)
        if statistics.mean(rates) > statistics.mean(together):
            together, together_per_cpu = rates, per_cpu
    share = min(1.0, CORES / args.runs)  # of one core, per run
    fair = solo * share
    return {
        "config": config,
        "rounds": args.rounds,
        "solo_steps_per_s": round(solo, 1),
        "runs": args.runs,
        "cores": CORES,
        "fair_share_steps_per_s": round(fair, 1),
        "steps_per_s": [round(r, 1) for r in together],
        "pct_of_fair_share": [round(100 * r / fair, 1) if fair else 0.0 for r in together],
        # Per CPU-second the workers got: separates "the OS gave the runs less CPU" (a shared
        # machine) from "running together made each step dearer" (the server's doing).
        "solo_steps_per_cpu_s": round(solo_per_cpu, 1),
        "together_steps_per_cpu_s": round(together_per_cpu, 1),
        "cpu_efficiency_pct": round(100 * together_per_cpu / solo_per_cpu, 1) if solo_per_cpu else 0.0,
    }


async def wait_idle(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = await server.stats()
        if stats["workers_idle"] == stats["run_slots"] and stats["queue_length"] == 0:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the workers did not come back to the pool within 30 s")


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    connections = args.sessions + args.runs + args.queue + args.busy_tries + 16
    load_average = loadavg()
    async with running_server(args.runs, args.queue, connections) as server:
        load = await load_phase(server, args)
        await wait_idle(server)
        throughput = await throughput_phase(server, args)
    report = {
        "config": {
            "cores": CORES,
            "sessions": args.sessions,
            "runs": args.runs,
            "queue": args.queue,
            "seconds": args.seconds,
            "throughput_seconds": args.throughput_seconds,
            "rounds": args.rounds,
            "quick": args.quick,
            "loadavg_at_start": load_average,
            "loadavg_at_end": loadavg(),
        },
        "load": load,
        "throughput": throughput,
    }
    report["targets"] = targets(report)
    return report


def targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    load, throughput = report["load"], report["throughput"]
    lo, hi = TARGETS["fps"]
    lag = load["loop_lag_ms"]["p99_ms"]
    return {
        "sessions": {
            "target": f">= {TARGETS['sessions']}",
            "value": load["connected"],
            "ok": load["connected"] >= TARGETS["sessions"],
        },
        "fps": {
            "target": f"{lo:g}-{hi:g}",
            "value": load["fps_per_run"],
            "ok": all(lo <= fps <= hi for fps in load["fps_per_run"]),
        },
        "latency_p95_ms": {
            "target": f"< {TARGETS['latency_p95_ms']:g}",
            "value": load["latency_ms"]["p95"],
            "ok": load["latency_ms"]["p95"] < TARGETS["latency_p95_ms"],
        },
        "loop_lag_p99_ms": {
            "target": f"< {TARGETS['loop_lag_p99_ms']:g}",
            "value": lag,
            "ok": lag is not None and lag < TARGETS["loop_lag_p99_ms"],
        },
        "fair_share_pct": {
            "target": f">= {TARGETS['fair_share_pct']:g}",
            "value": throughput["pct_of_fair_share"],
            "ok": all(p >= TARGETS["fair_share_pct"] for p in throughput["pct_of_fair_share"]),
        },
    }


# ----------------------------------------------------------------------------- output


def table(report: dict[str, Any]) -> str:
    config, load, throughput, ok = report["config"], report["load"], report["throughput"], report["targets"]
    net = load["config"]
    lag = load["loop_lag_ms"]
    cpu = load["cpu_pct"]
    mark = {True: "yes", False: "NO"}

    def nums(values: list[float]) -> str:
        return ", ".join(f"{v:g}" for v in values)

    rows = [
        (
            "connected sessions",
            f"{load['connected']} ({load['idle_sessions']} idle + {load['streaming_runs']} streaming)",
            ok["sessions"]["target"],
            mark[ok["sessions"]["ok"]],
        ),
        ("frames/s per run", nums(load["fps_per_run"]), ok["fps"]["target"], mark[ok["fps"]["ok"]]),
        ("frames delivered per run", nums(load["frames_per_run"]), "", ""),
        ("frames dropped (server)", str(load["frames_dropped"]), "", ""),
        (
            "step-to-client latency p50 / p95 / max",
            "{p50:g} / {p95:g} / {max:g} ms".format(**load["latency_ms"]),
            f"p95 {ok['latency_p95_ms']['target']} ms",
            mark[ok["latency_p95_ms"]["ok"]],
        ),
        (
            "event-loop lag p50 / p99 / max",
            f"{lag['p50_ms']} / {lag['p99_ms']} / {lag['max_ms']} ms",
            f"p99 {ok['loop_lag_p99_ms']['target']} ms",
            mark[ok["loop_lag_p99_ms"]["ok"]],
        ),
        ("server CPU: main process", f"{cpu['server']:g}% of a core", "", ""),
        ("server CPU: workers", f"{nums(cpu['workers'])} (% of a core each)", "", ""),
        ("bench client CPU", f"{cpu['bench_client']:g}% of a core", "", ""),
        (
            "busy reply, slots + queue full: median / max",
            f"{load['busy']['reply_ms']['median']:g} / {load['busy']['reply_ms']['max']:g} ms "
            f"({load['busy']['tries']} tries, close {nums(load['busy']['close_codes'])})",
            "",
            "",
        ),
        ("solo throughput (unpaced)", f"{throughput['solo_steps_per_s']:g} steps/s", "", ""),
        (f"{throughput['runs']} runs at once, each", f"{nums(throughput['steps_per_s'])} steps/s", "", ""),
        (
            "... vs solo / share of the cores",
            f"{nums(throughput['pct_of_fair_share'])} % "
            f"(fair share {throughput['fair_share_steps_per_s']:g} steps/s)",
            f"{ok['fair_share_pct']['target']} %",
            mark[ok["fair_share_pct"]["ok"]],
        ),
        (
            "steps per worker CPU-second: solo / together",
            f"{throughput['solo_steps_per_cpu_s']:g} / {throughput['together_steps_per_cpu_s']:g} "
            f"({throughput['cpu_efficiency_pct']:g} %)",
            "",
            "",
        ),
    ]
    head = (
        f"ShiftScope load: {config['cores']} cores, loadavg {nums(config['loadavg_at_start'])} at start, "
        f"{nums(config['loadavg_at_end'])} at the end; "
        f"{config['runs']} run slots, queue {config['queue']}; {load['seconds']:g} s window\n"
        f"streaming runs: {net['dataset']} {net['depth']} x {net['width']} {net['activation']}/"
        f"{net['norm']}, {net['max_steps_per_s']} steps/s, a frame every {net['emit_every']} steps\n\n"
    )
    widths = [
        max(len(str(row[i])) for row in [("metric", "value", "target", "met")] + rows) for i in range(4)
    ]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in [("metric", "value", "target", "met")] + rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return head + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100, help="idle connected sessions")
    parser.add_argument("--runs", type=int, default=CORES, help="streaming runs (the run slots)")
    parser.add_argument("--queue", type=int, default=2, help="the server's queue length")
    parser.add_argument("--seconds", type=float, default=60.0, help="the load window")
    parser.add_argument("--throughput-seconds", type=float, default=4.0, help="each throughput window")
    parser.add_argument("--rounds", type=int, default=3, help="solo / together throughput rounds")
    parser.add_argument("--busy-tries", type=int, default=5)
    parser.add_argument("--steps-per-s", type=int, default=125, help="pace of the streaming runs")
    parser.add_argument("--emit-every", type=int, default=5, help="steps between frames")
    parser.add_argument("--depth", type=int, default=NETWORK["depth"])
    parser.add_argument("--width", type=int, default=NETWORK["width"])
    parser.add_argument("--norm", default="none")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    NETWORK.update(depth=args.depth, width=args.width, norm=args.norm)
    if args.quick:
        args.sessions, args.seconds, args.throughput_seconds, args.busy_tries, args.rounds = (
            10,
            2.0,
            1.5,
            2,
            1,
        )
    report = asyncio.run(bench(args))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
