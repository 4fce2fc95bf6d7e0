"""Training throughput with and without probes, frame size and per-frame costs.

    .venv/bin/python bench/bench_training.py                 # the full table, ~3-4 minutes on 2 cores
    .venv/bin/python bench/bench_training.py --quick --json  # a seconds-long smoke run, as JSON

Method
------
Every variant drives the real `app.training.Trainer` on one intra-op thread, as `app.runner.Run`
does, and hands each frame it yields to a real `app.runner.Outbox` (`encode(snapshot.to_wire())`
plus the frame slot), so a probed step pays exactly what it pays in the app. Variants:

* ``bare``: `emit_every` larger than any run, so the only frame is the initial one, taken before
  the clock starts. This is the Trainer's own step (sampler, forward, cross-entropy, the per-step
  `isfinite(loss).item()` sync, backward, optimiser step) with its probes' forward hooks
  registered but disarmed, i.e. no histograms, no snapshots and no frames. (Idle hooks and the
  sync were measured apart at about 3 µs per layer per forward and 15 µs per step: 1-3%.)
* ``e1``, ``e10``: a frame every step and every 10 steps.
* ``e20fps``: a frame every k steps, where k = round(bare steps/s / 20), the cadence that would
  send 20 frames/s at bare speed. The target is that it costs under 10% of bare throughput.
  k is fixed from the warm-up's bare rate (best of 3), so that e20fps can be interleaved with
  the others; the table also gives the frame rate it really sent.

A measurement stops the run through the Trainer's own `stop` check (an Event whose `is_set`
fires once a wall-clock deadline, or with `--steps` a step count, is reached, and only on a
multiple of `emit_every`), so each window holds a whole number of emit periods, no final frame
is forced and evaluation never lands inside it (`eval_every` is larger than any run). That is
why bare uses an "infinite" `emit_every` rather than `emit_every = steps`: the forced final
frame would add a snapshot and a test-set evaluation to the timed window. Each variant keeps one
Trainer per size; every measurement calls `run()` again, which continues from the step it
reached, so the untimed initial frame is the only cost of restarting.

The machine is noisy (other processes share its 2 cores), so:

* Times are process CPU time by default (`--clock wall` for the wall clock). Training and
  probing run on this one thread, so on an idle machine the two agree; on a busy one CPU time
  leaves out the slices other processes hold the core for, by far the largest disturbance
  (wall-clock rounds of one variant were seen to vary 5x; CPU-time rounds about 1.5x).
  Windows are still cut by the wall clock, which bounds the run's length.
* Per size the variants are measured in many short interleaved rounds (the order rotates each
  round) after an untimed warm-up, and each variant's rate is its best round (contention only
  ever slows a run down, so the best round is the least disturbed). `--stat median` takes
  medians instead, ratios then being medians of per-round ratios.

Per-frame costs, using public API only: ``collect ms`` is `ActivationProbe.collect` alone (every
layer's pre/post histograms, mean/std, quantiles, saturation and dead fractions) on a batch the
model has just seen, timed apart from training; ``snapshot ms`` is the whole frame build inside
the real e1 run (collection plus drift, batch-norm and any enabled instruments, and the scalar
reads), recovered from each frame's own `steps_per_s` (see `measure`; with `--probe-gradients`
the weight-gradient instruments run inside the optimiser step, so they count in the rates but
not in snapshot ms); ``frame B`` and
``encode µs`` are the length of a real e1 frame's JSON text and the median time to encode it.
Collect and snapshot take the fastest repetition (`--stat median`: the median), the fastest
being, like the best round, the one least disturbed by other processes.
No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from app.allocator import keep_freed_memory  # noqa: E402
from app.probes import ActivationProbe  # noqa: E402
from app.runner import Outbox, encode  # noqa: E402
from app.spec import Activation, Arch, Dataset, Norm, Optimizer, RunSpec  # noqa: E402
from app.training import Trainer  # noqa: E402

NEVER = 10**12  # a step count no measurement reaches: emit_every / eval_every / steps "off"
TARGET_FPS = 20.0
VARIANTS = ("bare", "e1", "e10", "e20fps")
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


class Budget(threading.Event):
    """The Trainer's `stop`: set once the deadline has passed, or enough steps were taken, at a frame.

    Trainer checks `stop.is_set()` before every step, so this ends a run at a step boundary
    without a final frame. It fires only on a multiple of the run's `emit_every`, right after that
    step's frame, so every window starts and ends on a frame boundary and holds a whole number of
    emit periods: short windows are not biased by where the cadence's phase happens to fall.
    Unarmed it never fires (the initial frame is taken unarmed).
    """

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self._trainer = trainer
        self._align = trainer.spec.emit_every if trainer.spec.emit_every < NEVER else 1
        self._deadline = float("inf")
        self._last_step = NEVER

    def arm(self, seconds: float | None, steps: int | None) -> None:
        self._deadline = time.perf_counter() + seconds if seconds is not None else float("inf")
        self._last_step = self._trainer.step + steps if steps is not None else NEVER

    def is_set(self) -> bool:
        step = self._trainer.step
        if step % self._align:
            return False
        return step >= self._last_step or time.perf_counter() >= self._deadline


@dataclass(frozen=True)
class Measurement:
    steps: int
    wall_s: float
    cpu_s: float
    frames: int
    build_s: list[float]  # per frame: the Trainer's time to build the snapshot (wall clock)
    last_frame: dict[str, Any] | None  # the last frame's wire dict

    def rate(self, clock: str) -> float:
        return self.steps / (self.cpu_s if clock == "cpu" else self.wall_s)


def measure(trainer: Trainer, seconds: float | None, steps: int | None) -> Measurement:
    """Train `trainer` from where it stands for a wall budget or a step count; frames go to an Outbox.

    Each frame's build time comes from public fields alone: the Trainer restarts its clock when
    the consumer resumes it and stops it just before building the snapshot, reporting
    `steps_per_s` over that span, so (frame received - generator resumed) - steps / steps_per_s
    is the snapshot's own cost (collection, drift, any instruments, the scalar reads).
    """
    outbox = Outbox(lambda: None)
    budget = Budget(trainer)
    run = trainer.run(budget)
    next(run)  # the initial frame: an untrained-network snapshot plus a test evaluation, untimed
    gc.collect()
    start_step = previous_step = trainer.step
    build_s: list[float] = []
    wire: dict[str, Any] | None = None
    budget.arm(seconds, steps)
    start, start_cpu = time.perf_counter(), time.process_time()
    resumed = start
    for snapshot in run:
        received = time.perf_counter()
        stepped = snapshot.step - previous_step
        if stepped > 0 and snapshot.steps_per_s > 0:
            build_s.append(received - resumed - stepped / snapshot.steps_per_s)
        wire = snapshot.to_wire()
        outbox.put(wire, is_frame=True, run_id=0)  # encode + frame slot, as the run's thread does
        previous_step = snapshot.step
        resumed = time.perf_counter()
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if trainer.outcome == "diverged":
        raise SystemExit(f"{trainer.spec}: the loss went non-finite at step {trainer.step}; lower --lr")
    outbox.take()
    return Measurement(trainer.step - start_step, elapsed, elapsed_cpu, len(build_s), build_s, wire)


def repeat_time(
    fn: Callable[[], object],
    prepare: Callable[[], object],
    reps: int,
    timer: Callable[[], float] = time.perf_counter,
    budget_s: float = 2.0,
) -> list[float]:
    """Seconds of `fn()` over `reps` calls, each after an untimed `prepare()`.

    Stops early once `budget_s` of timed calls have run (after at least 5), so slow collections
    on big nets do not stretch the run.
    """
    times: list[float] = []
    while len(times) < reps and (len(times) < 5 or sum(times) < budget_s):
        prepare()
        start = timer()
        fn()
        times.append(timer() - start)
    return times


def collect_time(trainer: Trainer, reps: int, stat: str, clock: str) -> float:
    """Seconds of `ActivationProbe.collect` on one training batch, forward passes untimed."""
    probe = ActivationProbe(trainer.taps)
    x = trainer.x_train[trainer.sampler.peek_indices()]

    def arm_and_forward() -> None:
        probe.armed = True
        with torch.no_grad():
            trainer.model(x)

    try:
        times = repeat_time(lambda: probe.collect(trainer.spec.bins), arm_and_forward, reps, CLOCKS[clock])
    finally:
        probe.remove()
    return min(times) if stat == "best" else statistics.median(times)


def encode_time(frame: dict[str, Any], reps: int, clock: str) -> tuple[float, int]:
    """Median seconds of `encode(frame)`, and the length in bytes of its text."""
    times = repeat_time(lambda: encode(frame), lambda: None, reps, CLOCKS[clock])
    return statistics.median(times), len(encode(frame).encode())


@dataclass(frozen=True)
class Row:
    depth: int
    width: int
    bare_steps_s: float
    e1_steps_s: float
    e1_pct: float  # e1 throughput as a percentage of bare (see --stat)
    e10_steps_s: float
    e10_pct: float
    frame_bytes: int
    encode_us: float
    collect_ms: float
    snapshot_ms: float
    emit_every_20fps: int
    e20fps_steps_s: float
    e20fps_fps: float  # frames/s the e20fps variant actually sent: its steps/s / k
    e20fps_pct: float
    e20fps_cost_pct: float  # 100 - e20fps_pct: the probes' cost at the k cadence
    # ... scaled to exactly 20 frames/s: k is whole, so k fps is rarely 20, and a frame's cost is
    # fixed, so the share of throughput it takes is proportional to the frames per second.
    cost_at_20fps_pct: float
    rounds: int


def bench_size(args: argparse.Namespace, depth: int, width: int, log: Callable[[str], None]) -> Row:
    base = RunSpec(
        arch=args.arch,
        # residual blocks take their norm inside the block: pre-norm, as the page's default
        norm_position="pre" if args.arch in ("resmlp", "transformer") else "before",
        dataset=args.dataset,
        depth=depth,
        width=width,
        d_model=width if args.arch == "transformer" else RunSpec.d_model,
        activation=args.activation,
        norm=args.norm,
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch,
        bins=args.bins,
        probe_gradients=args.probe_gradients,
        steps=NEVER,
        eval_every=NEVER,
        device="cpu",
    )
    seconds = None if args.steps else args.seconds
    steps = args.steps or None

    trainers = {"bare": Trainer(replace(base, emit_every=NEVER))}
    # Warm-up: a few bare rounds, the best of which sizes the 20 frames/s cadence.
    bare_rate = max(measure(trainers["bare"], seconds, steps).rate(args.clock) for _ in range(3))
    every_20fps = max(1, round(bare_rate / TARGET_FPS))
    cadence = {"e1": 1, "e10": 10, "e20fps": every_20fps}
    for name, every in cadence.items():
        trainers[name] = Trainer(replace(base, emit_every=every))
        measure(trainers[name], seconds, steps)  # warm-up, discarded

    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    builds: list[float] = []  # e1's per-frame snapshot build times
    frame: dict[str, Any] | None = None
    for r in range(args.rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for name in order:
            m = measure(trainers[name], seconds, steps)
            results[name].append(m.rate(args.clock))
            if name == "e1":
                builds += m.build_s
                frame = m.last_frame or frame
        log(
            f"  {depth}x{width} round {r + 1}/{args.rounds}: "
            + ", ".join(f"{n} {results[n][-1]:.0f}" for n in VARIANTS)
        )

    def rate(name: str) -> float:
        return max(results[name]) if args.stat == "best" else statistics.median(results[name])

    def pct(name: str) -> float:
        if args.stat == "best":
            return 100 * rate(name) / rate("bare")
        return 100 * statistics.median(v / b for v, b in zip(results[name], results["bare"], strict=True))

    assert frame is not None and builds, "the e1 variant yields a frame every step"
    encode_s, frame_bytes = encode_time(frame, args.encode_reps, args.clock)
    collect_s = collect_time(trainers["e1"], args.collect_reps, args.stat, args.clock)
    snapshot_s = min(builds) if args.stat == "best" else statistics.median(builds)
    return Row(
        depth=depth,
        width=width,
        bare_steps_s=rate("bare"),
        e1_steps_s=rate("e1"),
        e1_pct=pct("e1"),
        e10_steps_s=rate("e10"),
        e10_pct=pct("e10"),
        frame_bytes=frame_bytes,
        encode_us=encode_s * 1e6,
        collect_ms=collect_s * 1e3,
        snapshot_ms=snapshot_s * 1e3,
        emit_every_20fps=every_20fps,
        e20fps_steps_s=rate("e20fps"),
        e20fps_fps=rate("e20fps") / every_20fps,
        e20fps_pct=pct("e20fps"),
        e20fps_cost_pct=100 - pct("e20fps"),
        cost_at_20fps_pct=(100 - pct("e20fps")) * TARGET_FPS / (rate("e20fps") / every_20fps),
        rounds=args.rounds,
    )


COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, Row field, format)
    ("depth", "depth", "d"),
    ("width", "width", "d"),
    ("bare st/s", "bare_steps_s", ".0f"),
    ("e1 st/s", "e1_steps_s", ".0f"),
    ("e1 %", "e1_pct", ".0f"),
    ("e10 st/s", "e10_steps_s", ".0f"),
    ("e10 %", "e10_pct", ".0f"),
    ("frame B", "frame_bytes", "d"),
    ("encode µs", "encode_us", ".0f"),
    ("collect ms", "collect_ms", ".2f"),
    ("snapshot ms", "snapshot_ms", ".2f"),
    ("k@20fps", "emit_every_20fps", "d"),
    ("k st/s", "e20fps_steps_s", ".0f"),
    ("k fps", "e20fps_fps", ".1f"),
    ("k %", "e20fps_pct", ".0f"),
    ("k cost %", "e20fps_cost_pct", ".1f"),
    ("cost @20fps %", "cost_at_20fps_pct", ".1f"),
)


def format_table(rows: Sequence[Row]) -> str:
    cells = [[header for header, _, _ in COLUMNS]]
    cells += [[format(getattr(row, field), fmt) for _, field, fmt in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


LEGEND = """\
st/s: training steps per second ({stat} of the rounds, {clock} clock), 1 thread.
bare: no frames (hooks registered, disarmed); e1/e10: a frame every 1/10 steps;
k@20fps: emit_every for {fps:.0f} frames/s at bare speed (warm-up bare st/s / {fps:.0f}), run as its own
variant; k fps: the frames/s it actually sent (k st/s / k).
%: throughput relative to bare; k cost %: 100 - k %; cost @20fps %: k cost % x 20 / k fps (a
frame's cost is fixed, so its share scales with the frame rate; k is whole, k fps rarely 20): target < 10.
frame B / encode µs: a real e1 frame's JSON length and median time of encode(frame);
collect ms: ActivationProbe.collect alone ({collect_stat} of repetitions); snapshot ms: the whole
frame build inside the Trainer (collect, drift, instruments, scalars), {collect_stat} of e1's frames."""


def parse_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--depths", type=parse_ints, default=[4, 12, 24], help="hidden layers, comma-separated")
    p.add_argument("--widths", type=parse_ints, default=[64, 256], help="units per layer, comma-separated")
    p.add_argument("--arch", default=RunSpec.arch, choices=get_args(Arch), help="transformer: width=d_model")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--activation", default="relu", choices=get_args(Activation))
    p.add_argument("--norm", default="none", choices=get_args(Norm))
    p.add_argument("--optimizer", default=RunSpec.optimizer, choices=get_args(Optimizer))
    p.add_argument("--lr", type=float, default=RunSpec.lr)
    p.add_argument("--dataset", default=RunSpec.dataset, choices=get_args(Dataset))
    p.add_argument("--bins", type=int, default=RunSpec.bins)
    p.add_argument("--probe-gradients", action="store_true", help="turn on the gradient instruments")
    p.add_argument("--seconds", type=float, default=0.3, help="wall budget of each timed measurement")
    p.add_argument("--steps", type=int, default=0, help="time a fixed number of steps instead of --seconds")
    p.add_argument("--rounds", type=int, default=10, help="interleaved rounds of all variants per size")
    p.add_argument("--stat", default="best", choices=["best", "median"], help="per-variant statistic")
    p.add_argument("--clock", default="cpu", choices=list(CLOCKS), help="process CPU time or wall time")
    p.add_argument("--collect-reps", type=int, default=25)
    p.add_argument("--encode-reps", type=int, default=300)
    p.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc as it is (workers keep freed memory: app/allocator.py)",
    )
    p.add_argument("--quick", action="store_true", help="smoke mode: one small size, short budgets")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = p.parse_args(argv)
    if args.quick:
        args.depths, args.widths, args.batch = [4], [64], min(args.batch, 64)
        args.seconds, args.steps, args.rounds = 0.1, 0, 2
        args.collect_reps, args.encode_reps = 3, 20
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # as app.runner.Run: one intra-op thread per run
    # As a worker process does (app/workers.py), unless asked to measure glibc's defaults.
    malloc = "default" if args.default_malloc else ("kept" if keep_freed_memory() else "default (n/a)")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    rows = [bench_size(args, d, w, log) for d in args.depths for w in args.widths]
    config = {
        "arch": args.arch,
        "batch": args.batch,
        "activation": args.activation,
        "norm": args.norm,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "dataset": args.dataset,
        "bins": args.bins,
        "probe_gradients": args.probe_gradients,
        "seconds": None if args.steps else args.seconds,
        "steps": args.steps or None,
        "rounds": args.rounds,
        "stat": args.stat,
        "clock": args.clock,
        "threads": torch.get_num_threads(),
        "malloc": malloc,
        "torch": torch.__version__,
        "target_fps": TARGET_FPS,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps({"config": config, "rows": [asdict(row) for row in rows]}, indent=2))
        return
    print(", ".join(f"{k} {v}" for k, v in config.items() if v is not None))
    print(format_table(rows))
    collect_stat = "fastest" if args.stat == "best" else "median"
    print(LEGEND.format(stat=args.stat, clock=args.clock, fps=TARGET_FPS, collect_stat=collect_stat))


if __name__ == "__main__":
    main()
