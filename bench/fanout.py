"""Fan-out: one room, V viewers following the teacher's run at 30 frames a second.

    .venv/bin/python bench/fanout.py                      # V = 10, 30, 100, 300, 20 s each: ~3 min
    .venv/bin/python bench/fanout.py --quick --json       # a seconds-long smoke run, as JSON
    .venv/bin/python bench/fanout.py --viewers 10,30 --seconds 10
    .venv/bin/python bench/fanout.py --replicas 2 --viewers 200   # rooms across replicas (Redis)

Method
------
Starts `python -m app` as bench/load.py does (a real uvicorn on a free loopback port, one run
slot), with the per-address caps lifted through SHIFTSCOPE_* variables: every client here is
127.0.0.1, so the connection, job, message-rate and room-join caps of one address would
otherwise stop the class at the door. This process is the whole class, one asyncio loop using
the `websockets` client with compression off (as browsers get from the server).

1. **Teacher.** One session opens a room (`room_open`) and starts the default preset's run
   paced to 30 frames a second (`max_steps_per_s` 150, `emit_every` 5), long enough for every
   window. It keeps reading its own socket; the run's own frame rate is the steps its frames
   span over their own clock (`t`), divided by `emit_every`.
2. **Per V** (each V a fresh class): V sessions connect and `join` the room mid-run; each gets
   its summary, the run so far in one `history` message, then live frames. Once every viewer
   has a live frame, and after a second of warm-up, every frame delivered in the `--seconds`
   window is counted per viewer, and its latency is `time.time()` on receipt minus the frame's
   `t` (the server's wall clock when the worker took it; same machine), so it includes the
   worker-to-server hop and this process's own queueing. Server CPU is utime + stime of the
   server process only (/proc/<pid>/stat) across the window, in % of one core; the worker's the
   same. Server RSS is VmRSS at the window's end (and before the class joined: each joiner's
   `history` is its own copy of up to `room_history_frames` frames). Frames dropped is the
   change in /api/stats' `frames_dropped` (summed over every session's outbox) across the
   window. Then the viewers close, and the next V waits until the server counts no viewer.

This process shares the machine's cores with the server and the worker: its own CPU (all its
threads, `time.process_time`) is reported, and so are the other processes' (the machine's busy
time in /proc/stat less our three processes) and /proc/loadavg, because on 2 cores a client
that reads 9,000 frames a second, or a neighbour's test run, slows the server it measures. A
frame arriving late or not at all may be the client's doing, not the server's: compare the
run's own frames/s and `frames_dropped` (the server's outboxes replacing an unsent frame). A
viewer that reads slower than the run writes is not held to the newest frame at once: the
socket buffers between them hold seconds of frames before the server's send waits and its
outbox starts replacing them, so that viewer's latency grows by the second.

**Replicas** (`--replicas R`, R > 1): a fresh Debian `redis-server` on a loopback port (no
persistence) and R servers sharing it (SHIFTSCOPE_REDIS_URL, app/relay.py). The teacher is on
replica 1; viewer i joins on replica i mod R, so most viewers follow the room through Redis and
their replica's mirror. CPU and RSS are per replica (and Redis's CPU), and latency is also given
for the viewers on other replicas than the teacher's alone ("cross-replica").

Nothing here asserts; the targets (100 viewers at 30 frames/s: server CPU under 15% of a core,
p95 latency under 100 ms, every viewer at >= 27 frames/s) are printed beside the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from load import (
    CLK_TCK,
    CORES,
    STEAL,
    Server,
    close_all,
    cpu_seconds,
    cpu_ticks,
    loadavg,
    open_session,
    open_sessions,
    percentile,
    rate,
    running_server,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.presets import DEFAULT_PRESET

VIEWERS = (10, 30, 100, 300)
# The default preset's run, paced to 30 frames a second and long enough for any bench.
PACE = {"max_steps_per_s": 150, "emit_every": 5}
RUN = {**DEFAULT_PRESET.config, **PACE, "steps": 100_000}

TARGETS = {
    "viewers": 100,  # the class size the targets are for
    "server_cpu_pct": 15.0,  # of one core, the server process alone
    "latency_p95_ms": 100.0,
    "min_fps": 27.0,  # every viewer
}
FRAME = b'{"type":"frame"'  # how an encoded frame starts (app/runner.py: `type` is its first key)


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Member:
    """One session in the room, teacher or viewer: every live frame as (received at, t, step)."""

    ws: ClientConnection
    frames: list[tuple[float, float, int]] = field(default_factory=list)
    room: dict[str, Any] | None = None  # the first `room` reply (code, key, role)
    history: int = 0  # bytes of the `history` message
    announcements: int = 0  # `room` messages after the first: viewer counts, lock changes
    live: asyncio.Event = field(default_factory=asyncio.Event)  # a live frame came
    has_room: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                data = await self.ws.recv(decode=False)  # bytes: orjson reads them undecoded
                received = time.time()
                if data.startswith(FRAME):
                    frame = orjson.loads(data)
                    self.frames.append((received, frame["t"], frame["step"]))
                    self.live.set()
                    continue
                message = orjson.loads(data)
                kind = message["type"]
                if kind == "room" and self.room is None:
                    self.room = message
                    self.has_room.set()
                elif kind == "history":
                    self.history = len(data)
                elif kind == "error":
                    raise RuntimeError(f"the server refused a room member: {message}")
                elif kind == "room":
                    self.announcements += 1
                elif kind == "room_ended":
                    self.ended = kind
                elif kind == "state" and message["state"] not in ("running", "paused"):
                    self.ended = message["state"]

    def window(self, begin: float, end: float) -> list[tuple[float, float, int]]:
        return [f for f in self.frames if begin <= f[0] < end]


async def live_frames(members: list[Member], timeout: float) -> None:
    """Wait until every member has a live frame, failing fast if a reader died."""
    readers: set[asyncio.Future[Any]] = {m.reader for m in members if m.reader is not None}
    waiting: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(m.live.wait() for m in members)))
    done, _ = await asyncio.wait({waiting, *readers}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if waiting not in done:
        waiting.cancel()
        for reader in done & readers:
            reader.result()  # raises what ended it
        late = [(i, m.room, m.history, m.ended) for i, m in enumerate(members) if not m.live.is_set()]
        raise RuntimeError(f"not every room member had a live frame within {timeout:g} s: {late[:5]}")


async def start_readers(members: list[Member], message: dict[str, Any]) -> None:
    text = orjson.dumps(message).decode()
    for member in members:
        member.reader = asyncio.create_task(member.read())
        await member.ws.send(text)


async def open_room(server: Server) -> Member:
    """The teacher: a room, and the run streaming into it."""
    teacher = Member(await open_session(server.ws))
    await start_readers([teacher], {"type": "room_open"})
    await asyncio.wait_for(teacher.has_room.wait(), 30)
    assert teacher.room is not None and teacher.room["role"] == "teacher", teacher.room
    await teacher.ws.send(orjson.dumps({"type": "start", "config": RUN}).decode())
    await live_frames([teacher], 60)
    return teacher


async def wait_for_viewers(servers: list[Server], n: int) -> None:
    deadline = time.monotonic() + 60
    while sum([(await server.stats())["room_viewers"] for server in servers]) != n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not count {n} room viewers within 60 s")
        await asyncio.sleep(0.2)


async def measure(
    servers: list[Server], teacher: Member, code: str, n: int, seconds: float, redis_pid: int | None = None
) -> dict[str, Any]:
    """One class of `n` viewers, spread over the replicas: join, warm up, one window, leave."""
    server = servers[0]  # the teacher's: the run trains there
    stats = await server.stats()
    server_pid, worker_pids = stats["server_pid"], stats["worker_pids"]
    replica_pids = [server_pid] + [(await other.stats())["server_pid"] for other in servers[1:]]
    rss_before = rss_mib(server_pid)
    joining = time.perf_counter()
    server_before = cpu_seconds(server_pid)
    shares = [len(range(i, n, len(servers))) for i in range(len(servers))]
    opened = [await open_sessions(other.ws, share) for other, share in zip(servers, shares, strict=True)]
    # viewer i on replica i mod R
    viewers = [Member(opened[i % len(servers)][i // len(servers)]) for i in range(n)]
    await start_readers(viewers, {"type": "join", "code": code})
    try:
        await live_frames(viewers, 120)
    except RuntimeError:
        for other in servers:
            print(await other.stats())
        raise
    join_s = time.perf_counter() - joining
    join_cpu = cpu_seconds(server_pid) - server_before
    assert all(v.room is not None and v.room["role"] == "viewer" for v in viewers)
    await wait_for_viewers(servers, n)
    await asyncio.sleep(1.0)  # warm-up: the join's announcements drain, sends settle

    stats = await server.stats()
    dropped_before = sum([(await other.stats())["frames_dropped"] for other in servers])
    watched = (*replica_pids, *worker_pids, *([redis_pid] if redis_pid else []))
    cpu_before = {pid: cpu_seconds(pid) for pid in watched}
    client_before = time.process_time()
    ticks_before = cpu_ticks()
    begin = time.time()
    await asyncio.sleep(seconds)
    end = time.time()
    ticks = [b - a for a, b in zip(ticks_before, cpu_ticks(), strict=True)]
    cpu_after = {pid: cpu_seconds(pid) for pid in watched}
    client_cpu = time.process_time() - client_before
    rss = rss_mib(server_pid)
    replica_rss = [rss_mib(pid) for pid in replica_pids]
    dropped_after = sum([(await other.stats())["frames_dropped"] for other in servers])
    wall = end - begin

    if teacher.ended is not None:
        raise RuntimeError(f"the teacher's run ended mid-window ({teacher.ended}): make it longer")
    windows = [v.window(begin, end) for v in viewers]
    fps = [len(w) / wall for w in windows]
    latencies = [(received - t) * 1000 for w in windows for received, t, _ in w]
    elsewhere = [
        (received - t) * 1000 for i, w in enumerate(windows) if i % len(servers) for received, t, _ in w
    ]
    # Each viewer's steps must only ever grow: a repeat or a step back is a fan-out bug.
    out_of_order = sum(
        1 for v in viewers for a, b in zip(v.frames, v.frames[1:], strict=False) if b[2] <= a[2]
    )
    await close_all([v.ws for v in viewers])
    for viewer in viewers:
        assert viewer.reader is not None
        with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
            await asyncio.wait_for(viewer.reader, 10)
    await wait_for_viewers(servers, 0)

    def pct(before: float, after: float) -> float:
        return round(100 * (after - before) / wall, 1)

    server_pct = pct(cpu_before[server_pid], cpu_after[server_pid])
    replicas_pct = [pct(cpu_before[pid], cpu_after[pid]) for pid in replica_pids]
    redis_pct = pct(cpu_before[redis_pid], cpu_after[redis_pid]) if redis_pid else None
    worker_pct = sum(pct(cpu_before[pid], cpu_after[pid]) for pid in worker_pids)
    client_pct = round(100 * client_cpu / wall, 1)
    # Everything the machine ran in the window but idle and iowait; what is not ours is the
    # other processes' (on a shared box, the CPU our three processes could not have).
    busy_pct = 100 * (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK / wall
    ours = sum(replicas_pct) + worker_pct + client_pct + (redis_pct or 0.0)

    return {
        "viewers": n,
        "seconds": round(wall, 2),
        "join_s": round(join_s, 2),
        "join_server_cpu_s": round(join_cpu, 2),
        "history_kib_median": round(statistics.median(v.history for v in viewers) / 1024, 1),
        # The frames the run made (its steps over the frames' own clock), and those the teacher got.
        "run_fps": round(rate(teacher.window(begin, end)) / RUN["emit_every"], 2),
        "teacher_fps": round(len(teacher.window(begin, end)) / wall, 2),
        "announcements_median": statistics.median(v.announcements for v in viewers),
        "fps": {
            "p5": round(percentile(fps, 0.05), 2),
            "median": round(statistics.median(fps), 2),
            "min": round(min(fps), 2),
        },
        "frames_per_viewer": [len(w) for w in windows],
        "frames_out_of_order": out_of_order,
        "frames_dropped": dropped_after - dropped_before,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "max": round(max(latencies), 2),
            "samples": len(latencies),
            "cross_replica_p95": round(percentile(elsewhere, 0.95), 2) if elsewhere else None,
        },
        "replicas": [
            {"viewers": share, "cpu_pct": cpu, "rss_mib": round(mib, 1)}
            for share, cpu, mib in zip(shares, replicas_pct, replica_rss, strict=True)
        ],
        "cpu_pct": {
            "server": server_pct,
            "workers": worker_pct,
            "bench_client": client_pct,
            "redis": redis_pct,
            "others": round(max(0.0, busy_pct - ours), 1),
            "steal": round(100 * ticks[STEAL] / CLK_TCK / wall, 1),
        },
        "server_rss_mib": round(rss, 1),
        "server_rss_before_join_mib": round(rss_before, 1),
        "loadavg_at_end": loadavg(),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    most = max(args.viewers)
    connections = most + 16
    lifted = str(100 * connections)  # messages a second, and at once, from 127.0.0.1
    settings = {
        "SHIFTSCOPE_MAX_CONNECTIONS": str(2 * connections),
        "SHIFTSCOPE_MAX_VIEWERS_PER_ROOM": str(most),
        "SHIFTSCOPE_MAX_MESSAGES_PER_S_PER_CLIENT": lifted,
        "SHIFTSCOPE_CLIENT_MESSAGE_BURST": lifted,
        "SHIFTSCOPE_ROOM_JOIN_FAILURE_BURST": lifted,
    }
    load_average = loadavg()
    async with contextlib.AsyncExitStack() as stack:
        redis_pid = None
        if args.replicas > 1:
            url, redis_pid = await stack.enter_async_context(redis_server())
            settings["SHIFTSCOPE_REDIS_URL"] = url
        servers = [
            await stack.enter_async_context(running_server(1, 1, connections, settings))
            for _ in range(args.replicas)
        ]
        teacher = await open_room(servers[0])
        assert teacher.room is not None
        code = teacher.room["code"]
        rows = [await measure(servers, teacher, code, n, args.seconds, redis_pid) for n in args.viewers]
        with contextlib.suppress(ConnectionClosed):
            await teacher.ws.send('{"type":"stop"}')
        await teacher.ws.close()
    report = {
        "config": {
            "cores": CORES,
            "replicas": args.replicas,
            "viewers": args.viewers,
            "seconds": args.seconds,
            "quick": args.quick,
            "run": {k: RUN[k] for k in ("dataset", "depth", "width", "activation", *PACE)},
            "loadavg_at_start": load_average,
            "loadavg_at_end": loadavg(),
        },
        "rows": rows,
    }
    report["targets"] = targets(rows)
    return report


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each target against the row for TARGETS["viewers"] (or the largest class below it)."""
    below = [r for r in rows if r["viewers"] <= TARGETS["viewers"]] or rows
    row = max(below, key=lambda r: r["viewers"])
    return {
        "viewers": row["viewers"],
        "server_cpu_pct": {
            "target": f"< {TARGETS['server_cpu_pct']:g}",
            "value": row["cpu_pct"]["server"],
            "ok": row["cpu_pct"]["server"] < TARGETS["server_cpu_pct"],
        },
        "latency_p95_ms": {
            "target": f"< {TARGETS['latency_p95_ms']:g}",
            "value": row["latency_ms"]["p95"],
            "ok": row["latency_ms"]["p95"] < TARGETS["latency_p95_ms"],
        },
        "min_fps": {
            "target": f">= {TARGETS['min_fps']:g}",
            "value": row["fps"]["min"],
            "ok": row["fps"]["min"] >= TARGETS["min_fps"],
        },
    }


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[tuple[str, int]]:
    """Debian's redis-server on a free loopback port, no persistence: (its URL, its pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--replicas needs redis-server (Debian's redis-server package)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(b"PING\r\n")
                    if (await reader.readline()).startswith(b"+PONG"):
                        writer.close()
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                await asyncio.sleep(0.1)
            yield f"redis://127.0.0.1:{port}/0", process.pid
        finally:
            process.kill()
            process.wait(timeout=10)


# ----------------------------------------------------------------------------- output


def table(report: dict[str, Any]) -> str:
    config, ok = report["config"], report["targets"]
    run = config["run"]
    columns = [
        ("viewers", lambda r: r["viewers"]),
        ("server CPU %", lambda r: " / ".join(f"{x['cpu_pct']:g}" for x in r["replicas"])),
        ("worker CPU %", lambda r: r["cpu_pct"]["workers"]),
        ("run fps", lambda r: r["run_fps"]),
        ("fps p5 / median", lambda r: f"{r['fps']['p5']:g} / {r['fps']['median']:g}"),
        ("fps min", lambda r: r["fps"]["min"]),
        ("latency p50 / p95 ms", lambda r: f"{r['latency_ms']['p50']:g} / {r['latency_ms']['p95']:g}"),
        ("cross-replica p95 ms", lambda r: r["latency_ms"]["cross_replica_p95"] or "-"),
        ("redis CPU %", lambda r: r["cpu_pct"]["redis"] if r["cpu_pct"]["redis"] is not None else "-"),
        (
            "server RSS MiB (before join)",
            lambda r: f"{r['server_rss_mib']:g} ({r['server_rss_before_join_mib']:g})",
        ),
        ("dropped", lambda r: r["frames_dropped"]),
        ("client CPU %", lambda r: r["cpu_pct"]["bench_client"]),
        ("others CPU %", lambda r: r["cpu_pct"]["others"]),
        ("join s (server CPU s)", lambda r: f"{r['join_s']:g} ({r['join_server_cpu_s']:g})"),
        ("history KiB", lambda r: r["history_kib_median"]),
    ]
    cells = [[name for name, _ in columns]] + [
        [f"{cell(row):g}" if isinstance(cell(row), float) else str(cell(row)) for _, cell in columns]
        for row in report["rows"]
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(ln, widths, strict=True)) + " |" for ln in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    mark = {True: "yes", False: "NO"}
    goals = "; ".join(
        f"{name} {ok[name]['target']}: {ok[name]['value']:g} ({mark[ok[name]['ok']]})"
        for name in ("server_cpu_pct", "latency_p95_ms", "min_fps")
    )

    def nums(values: list[float]) -> str:
        return ", ".join(f"{v:g}" for v in values)

    return (
        f"ShiftScope fan-out: one room, {config['cores']} cores (the server, its worker and this client "
        f"share them), loadavg {nums(config['loadavg_at_start'])} at start, "
        f"{nums(config['loadavg_at_end'])} at the end; {config['seconds']:g} s per window\n"
        f"teacher's run: {run['dataset']} {run['depth']} x {run['width']} {run['activation']}, "
        f"{run['max_steps_per_s']} steps/s, a frame every {run['emit_every']} steps\n"
        "CPU in % of one core over the window; fps per viewer; latency from the frame's t to receipt; "
        "dropped: frames the server's outboxes replaced unsent\n\n"
        + "\n".join(lines)
        + f"\n\ntargets at {ok['viewers']} viewers: {goals}\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--viewers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=list(VIEWERS),
        help="class sizes, comma-separated (each a fresh class and window)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="each window")
    parser.add_argument("--replicas", type=int, default=1, help="servers sharing the room through Redis")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run: 3 and 10 viewers")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.viewers, args.seconds = [3, 10], 2.0
    report = asyncio.run(bench(args))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
