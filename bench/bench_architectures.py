"""Steps/s of each architecture at its paper preset's size, and how soon each preset shows its claim.

    .venv/bin/python bench/bench_architectures.py           # every architecture preset, ~2-4 min
    .venv/bin/python bench/bench_architectures.py --quick   # a few steps each: a smoke run
    .venv/bin/python bench/bench_architectures.py --json

Method: for each preset of the "architectures" group, the real Trainer runs A alone, B alone and
A and B in lockstep (as compare mode does, in one worker), one intra-op thread, the preset's own
config (its pacing off), timed by the process CPU clock so other processes hardly disturb it.
"to effect" is the seconds a person waits after Play until the preset's `effect_step`: the
step by which its claim is plain to see (tests/test_papers.py asserts the claims), at the
slower of the lockstep rate and the preset's pace. The target is under 60 s.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator

import torch

from app.allocator import keep_freed_memory
from app.presets import PRESETS, Preset
from app.schemas import parse_twin_configs
from app.spec import RunSpec
from app.training import Snapshot, Trainer


def _lockstep(trainers: list[Trainer], stop: threading.Event) -> Iterator[list[Snapshot]]:
    runs = [t.run(stop) for t in trainers]
    while True:
        snapshots = [next(run, None) for run in runs]
        if any(s is None for s in snapshots):
            return
        yield snapshots  # type: ignore[misc]


def rate(specs: list[RunSpec], steps: int) -> float:
    """CPU-clock steps/s of `specs` stepped in lockstep, over `steps` steps after step 0."""
    trainers = [Trainer(spec) for spec in specs]
    frames = _lockstep(trainers, threading.Event())
    next(frames)  # step 0 (and its evaluation), before the clock starts
    start = time.process_time()
    for _ in frames:
        pass
    return steps / max(time.process_time() - start, 1e-9)


def measure(preset: Preset, steps: int) -> dict[str, object]:
    config = {**preset.config, "max_steps_per_s": 0, "steps": steps + 1}
    # Evaluations as often as the preset asks, scaled to the shorter run.
    a, b = parse_twin_configs(config, preset.compare)
    assert b is not None
    spec_a, spec_b = a.to_spec(), b.to_spec()
    rate_a, rate_b = rate([spec_a], steps), rate([spec_b], steps)
    twins = rate([spec_a, spec_b], steps)
    pace = preset.spec.max_steps_per_s or float("inf")
    effective = min(twins, pace)
    effect = preset.effect_step or 0
    size = (
        f"{spec_a.depth} blocks, d {spec_a.d_model}, T {2 * spec_a.seq_len}"
        if spec_a.arch == "transformer"
        else f"{spec_a.depth} x {spec_a.width}"
    )
    return {
        "preset": preset.id,
        "arch": spec_a.arch,
        "size": size,
        "batch": spec_a.batch_size,
        "a_steps_s": round(rate_a, 1),
        "b_steps_s": round(rate_b, 1),
        "twins_steps_s": round(twins, 1),
        "pace": None if pace == float("inf") else pace,
        "effect_step": effect,
        "to_effect_s": round(effect / effective, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--quick", action="store_true", help="3 steps each: a smoke run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--presets", nargs="*", help="preset ids (default: the architecture presets)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a run does in its worker
    keep_freed_memory()  # as a worker process does (app/allocator.py)
    steps = 3 if args.quick else args.steps
    chosen = [p for p in PRESETS if (p.id in args.presets if args.presets else p.group == "architectures")]
    started = time.time()
    rows = [measure(preset, steps) for preset in chosen]
    if args.json:
        print(json.dumps({"config": {"steps": steps, "threads": torch.get_num_threads()}, "rows": rows}))
        return
    columns = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    load = open("/proc/loadavg").read().split()[:3]
    print(
        f"\n{steps} timed steps per variant, process CPU clock, 1 thread; load {' '.join(load)}; "
        f"{time.time() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
