"""What each instrument costs: training steps/s with it on against all off, and compare mode.

    .venv/bin/python bench/bench_instruments.py            # ~1 minute on 2 cores
    .venv/bin/python bench/bench_instruments.py --quick    # a few seconds

Method: every variant drives the real Trainer (one intra-op thread, as a run does) on the same
config, emitting a frame every `--emit-every` steps. Variants are measured in interleaved rounds
(order rotating) of a fixed number of steps, timed by the process CPU clock so other processes
on the machine hardly disturb them; each variant's rate is its best round. "compare" steps two
Trainers in lockstep, as compare mode does, and counts a step when both have taken it.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import torch

from app.allocator import keep_freed_memory
from app.spec import RunSpec
from app.training import Snapshot, Trainer

VARIANTS: dict[str, dict[str, object]] = {
    "all off": {},
    "probe_gradients": {"probe_gradients": True},
    "noisy_norm": {"noisy_norm": True},
    "ics_every=10": {"ics_every": 10},
    "ics_every=100": {"ics_every": 100},
    "landscape_every=20": {"landscape_every": 20},
    "landscape_every=100": {"landscape_every": 100},
}


def _lockstep(trainers: list[Trainer], stop: threading.Event) -> Iterator[Snapshot]:
    runs = [t.run(stop) for t in trainers]
    while True:
        snapshots = [next(run, None) for run in runs]
        if any(s is None for s in snapshots):
            return
        yield snapshots[0]  # type: ignore[misc]


def measure(spec: RunSpec, variant: str, steps: int, twins: bool) -> float:
    """CPU-clock steps/s over `steps` training steps (after the untimed step-0 frame)."""
    config = replace(spec, steps=steps + 1, **VARIANTS.get(variant, {}))  # type: ignore[arg-type]
    trainers = [Trainer(config)] + ([Trainer(replace(config, norm="batch"))] if twins else [])
    frames = _lockstep(trainers, threading.Event())
    next(frames)  # step 0, built before the clock starts
    start = time.process_time()
    for _ in frames:
        pass
    return steps / max(time.process_time() - start, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--emit-every", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 40, 1
    torch.set_num_threads(1)
    keep_freed_memory()  # as a worker process does (app/allocator.py)
    spec = RunSpec(
        dataset="digits",
        depth=args.depth,
        width=args.width,
        activation="relu",
        init="kaiming",
        norm="batch",
        lr=0.1,
        batch_size=args.batch,
        emit_every=args.emit_every,
        eval_every=10**6,
    )
    names = [*VARIANTS, "compare (A+B)"]
    best = dict.fromkeys(names, 0.0)
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            rate = measure(spec, name, args.steps, twins=name.startswith("compare"))
            best[name] = max(best[name], rate)
    base = best["all off"]
    rows = [
        {
            "variant": name,
            "steps_per_s": round(best[name], 1),
            "percent_of_off": round(100 * best[name] / base, 1),
        }
        for name in names
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "config": {
                        "depth": spec.depth,
                        "width": spec.width,
                        "batch": spec.batch_size,
                        "emit_every": spec.emit_every,
                    },
                    "rows": rows,
                }
            )
        )
        return
    print(
        f"{spec.depth} x {spec.width} ReLU, batch norm, batch {spec.batch_size}, "
        f"a frame every {spec.emit_every} steps, {args.rounds} rounds of {args.steps} steps, "
        "best round, CPU clock, 1 thread"
    )
    print(f"{'variant':<22}{'steps/s':>10}{'% of off':>10}")
    for row in rows:
        print(f"{row['variant']:<22}{row['steps_per_s']:>10}{row['percent_of_off']:>10}")


if __name__ == "__main__":
    main()
