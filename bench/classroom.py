"""A class training at once: S students, each a real websocket client, start the default preset
at the same moment; how does every one of them fare?

    .venv/bin/python bench/classroom.py                  # S = 4, 8, 12, 16, 30; 15 s windows
    .venv/bin/python bench/classroom.py --quick --json   # S = 2, 4; 3 s windows (the smoke test)
    .venv/bin/python bench/classroom.py --students 12 --seconds 30

Method
------
For each class size S a fresh `python -m app` starts (bench/load.py's `running_server`: a real
uvicorn on a free loopback port, in its own process; `max_runs` 0, so admission is by capacity
alone; no per-address job cap, since every student here is 127.0.0.1). This process holds the S
students: S websocket connections (compression off, as browsers get it), all connected first,
then each sends `start` with the default preset's config (its steps raised to 100 000, so that
no run ends inside the window) in the same instant. Like the page,
every student acknowledges the frames it has read every 250 ms (`seen`).

- **First frame:** from the student's `start` to its first frame (or to `queued`/`busy`, which
  also answer it); a student that hears nothing within 1 s is *silent* (the target is none).
- After a 2 s settle, a `--seconds` window: each admitted student's frames received (frames/s),
  and steps trained, (last step - first step) / (last frame's t - first frame's t) (steps/s);
  p5 and median over the students.
- **Loop lag p99:** GET /api/stats `loop_lag` at the window's end (samples every 50 ms since the
  server started: the start-up, the joins and the window).
- **PSS:** proportional set size (/proc/<pid>/smaps_rollup) of the server and every process
  under it (fork server, workers), summed at the window's end: shared torch pages counted once.
- **CPU:** the server's and the workers' utime + stime across the window, in % of one core.
- **Admission:** how many were admitted, queued (with the largest position told) or busy; the
  summed floor load of the admitted runs and the capacity (GET /api/stats), from which the note
  extrapolates to a larger machine: students at the floor = capacity / (load per student).

Nothing here asserts; the targets column says whether each number met its target on this run:
at S = 12 every student >= 20 frames/s and >= 20 steps/s, first frame p95 < 1 s, loop lag p99 <
20 ms, PSS < 3 GB; at every S nobody silent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from load import CORES, cpu_seconds, loadavg, open_sessions, percentile, running_server
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the app, for its default preset

from app.presets import DEFAULT_PRESET  # noqa: E402

SIZES = [4, 8, 12, 16, 30]
QUICK_SIZES = [2, 4]
SETTLE_S = 2.0
ACK_EVERY_S = 0.25  # as the page does (static/js/socket.js)
SILENCE_S = 1.0
TARGET_SIZE = 12
TARGETS = {
    "fps_p5": 20.0,
    "steps_per_s_p5": 20.0,
    "first_frame_p95_s": 1.0,
    "loop_lag_p99_ms": 20.0,
    "pss_gib": 3.0,
}


@dataclass
class Student:
    """One student's connection: what it heard, when."""

    ws: ClientConnection
    sent_at: float = 0.0
    first_answer_s: float | None = None  # frame, queued or busy: anything that answers the start
    first_frame_s: float | None = None
    queued_position: int | None = None  # the largest place in line it was told
    busy: bool = False
    frames: list[tuple[float, float, int]] = field(default_factory=list)  # (received, t, step)
    received = 0
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        last_ack = time.monotonic()
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                now = time.monotonic()
                message = orjson.loads(text)
                kind = message["type"]
                if kind in ("frame", "queued", "busy") and self.first_answer_s is None:
                    self.first_answer_s = now - self.sent_at
                if kind == "frame":
                    self.received += 1
                    if self.first_frame_s is None:
                        self.first_frame_s = now - self.sent_at
                    self.frames.append((now, message["t"], message["step"]))
                elif kind == "queued":
                    self.queued_position = max(self.queued_position or 0, message["position"])
                elif kind == "busy":
                    self.busy = True
                    return
                if now - last_ack >= ACK_EVERY_S:
                    await self.ws.send(orjson.dumps({"type": "seen", "frames": self.received}).decode())
                    last_ack = now

    def window(self, begin: float, end: float) -> list[tuple[float, float, int]]:
        return [f for f in self.frames if begin <= f[0] < end]


def descendants(pid: int) -> list[int]:
    """`pid` and every process under it (children of children too), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:
                    text = stat.read()
                parents[int(entry)] = int(text[text.rindex(")") + 2 :].split()[1])
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def pss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p5": None, "median": None, "min": None}
    return {
        "p5": round(percentile(values, 0.05), 2),
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
    }


async def one_class(size: int, seconds: float, config: dict[str, Any]) -> dict[str, Any]:
    settings = {"SHIFTSCOPE_MAX_QUEUE": str(max(8, size))}
    async with running_server(0, max(8, size), size + 8, settings) as server:
        students = [Student(ws) for ws in await open_sessions(server.ws, size)]
        start = orjson.dumps({"type": "start", "config": config}).decode()
        for student in students:
            student.reader = asyncio.create_task(student.read())
        now = time.monotonic()
        for student in students:
            student.sent_at = now
        await asyncio.gather(*(student.ws.send(start) for student in students))
        await asyncio.sleep(SETTLE_S)
        stats_before = await server.stats()
        pids = [stats_before["server_pid"], *stats_before["worker_pids"]]
        cpu_before = {pid: _cpu(pid) for pid in pids}
        begin = time.monotonic()
        await asyncio.sleep(seconds)
        end = time.monotonic()
        stats = await server.stats()
        cpu_after = {pid: _cpu(pid) for pid in pids}
        pss = sum(pss_bytes(pid) for pid in descendants(stats["server_pid"]))
        for student in students:
            with contextlib.suppress(ConnectionClosed):
                await student.ws.send('{"type":"stop"}')
        for student in students:
            await student.ws.close()
            if student.reader is not None:
                with contextlib.suppress(asyncio.TimeoutError, ConnectionClosed):
                    await asyncio.wait_for(student.reader, 5)
    return _row(size, students, begin, end, stats, cpu_before, cpu_after, pss)


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def _row(
    size: int,
    students: list[Student],
    begin: float,
    end: float,
    stats: dict[str, Any],
    cpu_before: dict[int, float],
    cpu_after: dict[int, float],
    pss: int,
) -> dict[str, Any]:
    seconds = end - begin
    fps, steps = [], []
    for student in students:
        frames = student.window(begin, end)
        if len(frames) >= 2:
            fps.append(len(frames) / seconds)
            span = frames[-1][1] - frames[0][1]
            steps.append((frames[-1][2] - frames[0][2]) / span if span > 0 else 0.0)
    first_frames = [s.first_frame_s for s in students if s.first_frame_s is not None]
    server_pid = stats["server_pid"]
    # A process gone by the window's end (a worker that quit) reads 0 after: left out.
    used = {pid: cpu_after[pid] - cpu_before[pid] for pid in cpu_before if cpu_after[pid] >= cpu_before[pid]}
    admitted = stats["runs_admitted"]
    return {
        "students": size,
        "streaming": len(fps),  # students with frames in the window
        "queued": sum(1 for s in students if s.queued_position is not None and not s.frames),
        "queued_max_position": max((s.queued_position or 0) for s in students),
        "busy": sum(1 for s in students if s.busy),
        "silent": sum(1 for s in students if s.first_answer_s is None or s.first_answer_s > SILENCE_S),
        "fps": quantiles(fps),
        "steps_per_s": quantiles(steps),
        "first_frame_s": {
            "p95": round(percentile(first_frames, 0.95), 3) if first_frames else None,
            "max": round(max(first_frames), 3) if first_frames else None,
        },
        "loop_lag_p99_ms": stats["loop_lag"]["p99_ms"],
        "pss_gib": round(pss / 2**30, 3),
        "cpu_pct": {
            "server": round(100 * used.get(server_pid, 0.0) / seconds, 1),
            "workers": round(100 * sum(v for pid, v in used.items() if pid != server_pid) / seconds, 1),
        },
        "admitted": admitted,
        "load_per_student": round(stats["load"] / admitted, 4) if admitted else None,
        "capacity": stats["capacity"],
    }


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The targets at S = 12 (or the largest class below it), and silence at every S."""
    eligible = [row for row in rows if row["students"] <= TARGET_SIZE] or rows[:1]
    row = max(eligible, key=lambda r: r["students"])
    values = {
        "fps_p5": row["fps"]["p5"],
        "steps_per_s_p5": row["steps_per_s"]["p5"],
        "first_frame_p95_s": row["first_frame_s"]["p95"],
        "loop_lag_p99_ms": row["loop_lag_p99_ms"],
        "pss_gib": row["pss_gib"],
    }
    out: dict[str, Any] = {"students": row["students"]}
    for key, target in TARGETS.items():
        value = values[key]
        at_least = key in ("fps_p5", "steps_per_s_p5")
        ok = value is not None and (value >= target if at_least else value < target)
        out[key] = {"target": target, "value": value, "ok": ok}
    silent = sum(r["silent"] for r in rows)
    out["silent"] = {"target": 0, "value": silent, "ok": silent == 0}
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    sizes = args.students or (QUICK_SIZES if args.quick else SIZES)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    # The preset's own config, but long enough that no run ends inside the window (at 300
    # steps/s its 3000 steps last 10 s: a small class would finish before the window ends).
    config = {**DEFAULT_PRESET.config, "steps": 100_000}
    start_load = loadavg()
    rows = [await one_class(size, seconds, config) for size in sizes]
    return {
        "config": {
            "students": sizes,
            "seconds": seconds,
            "preset": DEFAULT_PRESET.id,
            "run": {k: config[k] for k in ("depth", "width", "batch_size", "emit_every", "max_steps_per_s")},
            "cores": CORES,
            "quick": args.quick,
            "loadavg_at_start": start_load,
            "loadavg_at_end": loadavg(),
        },
        "rows": rows,
        "targets": targets(rows),
    }


def table(report: dict[str, Any]) -> str:
    config = report["config"]
    lines = [
        f"classroom: {config['preset']} ({config['run']}), {config['seconds']:g} s windows, "
        f"{config['cores']} cores, loadavg {config['loadavg_at_start']}",
        "",
        "| students | streaming | queued (max pos) | busy | silent | fps p5 / median | steps/s p5 / median "
        "| first frame p95 | loop lag p99 | PSS | CPU server / workers | load per student |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        fps, steps = row["fps"], row["steps_per_s"]
        lines.append(
            f"| {row['students']} | {row['streaming']} | {row['queued']} ({row['queued_max_position']}) "
            f"| {row['busy']} | {row['silent']} | {fps['p5']} / {fps['median']} "
            f"| {steps['p5']} / {steps['median']} "
            f"| {row['first_frame_s']['p95']} s | {row['loop_lag_p99_ms']} ms | {row['pss_gib']} GiB "
            f"| {row['cpu_pct']['server']}% / {row['cpu_pct']['workers']}% | {row['load_per_student']} |"
        )
    lines += ["", "| target | value | ok |", "|---|---|---|"]
    for key, goal in report["targets"].items():
        if key != "students":
            lines.append(f"| {key} (S = {report['targets']['students']}) | {goal['value']} | {goal['ok']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="*", help="class sizes (default 4 8 12 16 30)")
    parser.add_argument("--seconds", type=float, help="measurement window per class (default 15)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: 2 and 4 students")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = asyncio.run(bench(args))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
