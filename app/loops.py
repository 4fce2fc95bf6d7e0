"""What a run does between its first and its last state, as plain generators of events: twin
trainers in lockstep, and a learning-rate sweep. They know nothing of threads, pauses or the
outbox: runner.Run drives them, says each `Say`, and may pause (or hold its pace) at a `Boundary`.

    for event in lockstep({"": trainer}, stop):
        ...  # Say(frame) per snapshot, Boundary(step) after each round
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from app.datasets.upload import Table
from app.spec import RunSpec
from app.training import Trainer

__all__ = ["Boundary", "Event", "Say", "Sweep", "lockstep", "started_message", "sweep_points"]


@dataclass(frozen=True)
class Sweep:
    """A learning-rate sweep: short runs of the config (and its twin) at each rate."""

    lrs: tuple[float, ...]
    steps: int


@dataclass(frozen=True)
class Say:
    """A message for the client: a frame (kept: it carries a measurement) or a control message."""

    message: dict[str, Any]
    is_frame: bool = False
    keep: bool = False


@dataclass(frozen=True)
class Boundary:
    """Between two frames: the run may pause here; a paced loop holds to max_steps_per_s."""

    step: int
    paced: bool


Event = Say | Boundary


def started_message(spec: RunSpec, twin: RunSpec | None, trainers: dict[str, Trainer]) -> dict[str, Any]:
    """The `started` of a run (compare mode: of twins A and B)."""
    first = next(iter(trainers.values()))
    started: dict[str, Any] = {
        "type": "started",
        "config": asdict(spec),
        "layers": first.layer_names,
        "device": str(first.device),
        "params": first.parameter_count,
    }
    if twin is not None:
        a, b = asdict(spec), asdict(twin)
        started["runs"] = list(trainers)
        started["configs"] = {"A": a, "B": b}
        started["layers_by_run"] = {label: trainer.layer_names for label, trainer in trainers.items()}
        started["compare"] = {key: value for key, value in b.items() if a[key] != value}
    return started


def lockstep(trainers: dict[str, Trainer], stop: threading.Event) -> Iterator[Event]:
    """Each round asks every live trainer for its next snapshot, so step k of A and step k of B
    go out together; a trainer that ends (diverges, say) leaves its twin going. Labels: "" for a
    single run, "A" and "B" for twins."""
    live = {label: trainer.run(stop) for label, trainer in trainers.items()}
    while live:
        step, ended = None, []
        for label in list(live):
            snapshot = next(live[label], None)
            if snapshot is None:
                del live[label]
                ended.append(label)
                continue
            frame = snapshot.to_wire()
            if label:
                frame["run"] = label
            # A frame that carries a measurement (test accuracy, ICS, landscape) is not
            # coalesced away by a slow client: it queues like a control message.
            yield Say(frame, is_frame=True, keep=snapshot.has_measurement)
            step = snapshot.step
        if step is None:
            return
        for label in ended:  # its twin carries on: say which run ended, and how
            trainer = trainers[label]
            yield Say({"type": "state", "state": trainer.outcome, "step": trainer.step, "run": label})
        yield Boundary(step, paced=True)


def sweep_points(
    bases: dict[str, RunSpec],
    sweep: Sweep,
    stop: threading.Event,
    on_trainer: Callable[[Trainer], None] = lambda trainer: None,
    table: Table | None = None,
) -> Generator[Event, None, bool]:
    """Train each base ("A", and "B" in compare mode) for `sweep.steps` at each rate, unpaced and
    with the instruments off, and say each point's result; returns whether every point ran."""
    points = [(label, lr) for lr in sweep.lrs for label in bases]
    for index, (label, lr) in enumerate(points):
        if stop.is_set():
            return False
        spec = replace(
            bases[label],
            lr=lr,
            steps=sweep.steps,
            emit_every=sweep.steps,
            eval_every=sweep.steps,
            max_steps_per_s=0,
            probe_gradients=False,
            ics_every=0,
            landscape_every=0,
        )
        trainer = Trainer(spec, table)
        on_trainer(trainer)
        last = None
        for snapshot in trainer.run(stop):
            last = snapshot
        if trainer.outcome == "stopped":
            return False
        diverged = trainer.outcome == "diverged"
        loss, accuracy = (None, None) if diverged else trainer.evaluator.train_metrics()
        yield Say(
            {
                "type": "sweep_result",
                "run": label,
                "lr": lr,
                "final_loss": loss,
                "train_acc": accuracy,
                "test_acc": None if diverged or last is None else last.test_acc,
                "diverged": diverged,
                "step": trainer.step,
                "index": index,
                "total": len(points),
            }
        )
        yield Boundary(index + 1, paced=False)
    return True
