"""Trainer: one run as a plain synchronous generator of Snapshots. Knows nothing of the web."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from app.datasets import Dataset
from app.datasets.upload import Table
from app.evaluation import Evaluator, Split
from app.instruments import (
    Landscape,
    ShiftMeasure,
    internal_covariate_shift,
    loss_landscape,
    parameters_of,
    relative_drifts,
)
from app.lifecycle import Interrupted
from app.nets import Network, build_network, load_data
from app.objective import accuracy, cross_entropy
from app.probes import ActivationProbe, BatchNormProbe, Histogram, LayerStats, histograms_of
from app.spec import RunSpec

Outcome = Literal["done", "stopped", "diverged"]


@dataclass(frozen=True)
class Snapshot:
    """The network's state at one step: loss, accuracies and every hidden layer's statistics."""

    step: int
    loss: float | None  # None when it was not finite
    train_acc: float
    test_acc: float | None  # measured every eval_every steps and at the end, else None
    lr: float
    steps_per_s: float
    layers: list[LayerStats]
    wall_time: float = field(default_factory=time.time)  # when it was taken: latency measurements
    test_acc_batch_stats: float | None = None  # batch norm normalising test batches by their own stats
    test_acc_generated: float | None = None  # transformer: answers written one token at a time
    ics: list[ShiftMeasure | None] | None = None  # newest since the last snapshot; None: tap has no weight
    ics_step: int | None = None
    landscape: Landscape | None = None
    landscape_step: int | None = None

    @property
    def has_measurement(self) -> bool:
        """Carries a reading that later frames do not repeat (so it must reach the client)."""
        return self.test_acc is not None or self.ics is not None or self.landscape is not None

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "frame",
            "step": self.step,
            "loss": self.loss,
            "train_acc": self.train_acc,
            "test_acc": self.test_acc,
            "test_acc_batch_stats": self.test_acc_batch_stats,
            "test_acc_generated": self.test_acc_generated,
            "lr": self.lr,
            "steps_per_s": self.steps_per_s,
            "t": self.wall_time,
            "ics": [m.to_wire() if m else None for m in self.ics] if self.ics is not None else None,
            "ics_step": self.ics_step,
            "landscape": self.landscape.to_wire() if self.landscape is not None else None,
            "landscape_step": self.landscape_step,
            "layers": [layer.to_wire() for layer in self.layers],
        }


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def build_optimizer(spec: RunSpec, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr)
    momentum = 0.9 if spec.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=spec.lr, momentum=momentum)


class BatchSampler:
    """Seeded epochs of shuffled minibatch indices: the same seed gives the same data order."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self._order = torch.randperm(n, generator=self.gen)
        self._at = 0

    def next_indices(self) -> torch.Tensor:
        if self._at + self.batch_size > self.n:
            self._order = torch.randperm(self.n, generator=self.gen)
            self._at = 0
        batch = self._order[self._at : self._at + self.batch_size]
        self._at += self.batch_size
        return batch

    def peek_indices(self) -> torch.Tensor:
        """The batch the next call will return, without consuming it."""
        if self._at + self.batch_size > self.n:
            return self._order[: self.batch_size]  # stands in for the next epoch's first batch
        return self._order[self._at : self._at + self.batch_size]


FASTEST_FRAME_S = 1 / 30  # a watched run takes a frame at most this often...
SLOWEST_FRAME_S = 1 / 15  # ...and at least this often, while its steps come faster than that
TARGET_FRAME_S = 1 / 24  # off the emit_every cadence, a frame comes once the next step would pass this


class FrameClock:
    """When a watched (paced) run takes its frames: by the clock, not by the step count alone.

    A person needs 15-30 frames/s whatever the step rate, and a run's step rate changes as it
    shares the CPU with other runs (app/workers.py). No frame comes sooner than FASTEST_FRAME_S
    after the last. Past that, a step that is a multiple of `emit_every` is a frame, and so is
    any step once waiting for the next would pass TARGET_FRAME_S (~24 frames/s whatever the
    step rate; steps slower than FASTEST_FRAME_S are each a frame). Steps that carry a
    measurement (an evaluation, ICS, the landscape, the last step) always are. Twins in
    lockstep share one clock: the first to reach a step decides it, the other follows, so A
    and B keep frames at the same steps. While single-stepping (`by_steps`) a requested step
    takes emit_every steps from the last frame, as on an unpaced run.

    `hold(step)` holds the run to its pace before each new step is decided (a frame every few
    dozen steps must not mean the steps between run flat out and then wait).
    """

    def __init__(
        self, hold: Callable[[int], None] | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._hold = hold
        self._clock = clock
        self._last: float | None = None  # when the last frame was decided
        self._previous: float | None = None  # when the last step was decided
        self._decided_to = 0  # every step up to this one has been decided
        self._last_step = 0  # the last frame's step
        self._frames: deque[int] = deque(maxlen=64)  # recent frame steps, for a twin that trails
        self.by_steps = False

    def due(self, step: int, every: int, forced: bool = False) -> bool:
        if step <= self._decided_to:  # the twin ahead decided this step
            while self._frames and self._frames[0] < step:
                self._frames.popleft()
            return forced or (bool(self._frames) and self._frames[0] == step)
        self._decided_to = step
        if self._hold is not None and not self.by_steps:
            self._hold(step)
        now = self._clock()
        since = float("inf") if self._last is None else now - self._last
        step_s = 0.0 if self._previous is None else now - self._previous  # the last step's time
        self._previous = now
        on_cadence = step % every == 0
        if self.by_steps:  # a requested step: emit_every steps on from the last frame
            take = forced or step - self._last_step >= every
        else:
            late = since + step_s >= TARGET_FRAME_S  # one more step would make the gap too long
            take = forced or (since >= FASTEST_FRAME_S and (on_cadence or late))
        if take:
            self._last, self._last_step = now, step
            self._frames.append(step)
        return take


class Trainer:
    """Trains one RunSpec; `run(stop)` yields a Snapshot every `emit_every` steps (or, with a
    `frame_clock`, at the steps the clock picks).

    The generator is lazy: whoever iterates it decides the pace (pause is simply not asking
    for the next snapshot). `stop` is checked before every step, so stopping is prompt.
    """

    def __init__(self, spec: RunSpec, table: Table | None = None) -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        data = load_data(spec, table)  # table: the uploaded data, for dataset "upload"
        self.data: Dataset = data
        self.model: Network = build_network(spec, data).to(self.device)
        self.taps = self.model.taps()
        self.x_train, self.y_train = data.x_train.to(self.device), data.y_train.to(self.device)
        self.x_test, self.y_test = data.x_test.to(self.device), data.y_test.to(self.device)
        self.optimizer = build_optimizer(spec, self.model.parameters())
        self.sampler = BatchSampler(len(data.x_train), min(spec.batch_size, len(data.x_train)), spec.seed)
        self.layer_names = [tap.name for tap in self.taps]
        # The weights whose gradients and updates the frames report, each once, by name.
        names = {id(p): name for name, p in self.model.named_parameters()}
        self._weights: dict[str, torch.Tensor] = {}
        for tap in self.taps:
            if tap.weight is not None:
                self._weights.setdefault(names[id(tap.weight)], tap.weight)
        self._tap_weight = [names[id(tap.weight)] if tap.weight is not None else None for tap in self.taps]
        self.step = 0
        self.outcome: Outcome | None = None
        self._stop: threading.Event | None = None  # the run's stop flag, once it runs
        self._base_lr = spec.lr  # the rate asked for; warmup scales it down early on
        self._lr = spec.lr  # the rate the optimizer uses now
        self._pending_lr: float | None = None
        self._history: deque[list[Histogram]] = deque(maxlen=spec.drift_lag)  # pre histograms per frame
        self._ics: tuple[int, list[ShiftMeasure | None]] | None = None  # (step, result) not yet sent
        self._landscape: tuple[int, Landscape] | None = None
        split = Split(self.x_train, self.y_train, self.x_test, self.y_test)
        self.evaluator = Evaluator(spec, self.model, split)  # test accuracy, sweep metrics
        self.frame_clock: FrameClock | None = None  # a watched run's frames by the clock

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def set_lr(self, lr: float) -> None:
        """Change the learning rate from the next step on (safe to call from another thread)."""
        self._pending_lr = lr

    def run(self, stop: threading.Event) -> Iterator[Snapshot]:
        probe = ActivationProbe(self.taps, capture_grads=self.spec.probe_gradients)
        norm_probe = BatchNormProbe(self.taps)
        self._stop = self.evaluator.stop = stop  # long measurements look at it between passes
        try:
            yield from self._train(probe, norm_probe, stop)
        except Interrupted:  # stopped inside an evaluation or an instrument's extra passes
            self.outcome = "stopped"
        finally:
            probe.remove()
            norm_probe.remove()

    def _train(
        self, probe: ActivationProbe, norm_probe: BatchNormProbe, stop: threading.Event
    ) -> Iterator[Snapshot]:
        spec = self.spec
        yield self._initial_snapshot(probe, norm_probe)
        clock, steps_since = time.perf_counter(), 0
        while self.step < spec.steps:
            if stop.is_set():
                self.outcome = "stopped"
                return
            self._apply_pending_lr()
            self.step += 1
            steps_since += 1
            probing = self._frame_due()
            idx = self.sampler.next_indices().to(self.device)
            x, y = self.x_train[idx], self.y_train[idx]  # (batch, features), (batch,)
            if spec.noisy_norm:
                self.model.resample_noise()  # this step's noise, the same for any extra pass
            probe.armed = norm_probe.armed = probing
            logits = self.model(x)  # (batch, classes)
            loss = cross_entropy(logits, y)
            # One host sync per step: the price of naming the exact step a run diverged at.
            finite = bool(torch.isfinite(loss).item())
            # Per-layer instrument readings, filled only on steps that emit a frame.
            extras: list[dict[str, Any]] = [{} for _ in self.layer_names] if probing or not finite else []
            if finite:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._optimizer_step(x, y, extras if probing and spec.probe_gradients else None)
            if probing or not finite:
                probe.armed = True  # a diverging step is always shown, whatever the cadence
                if not probing:
                    with torch.no_grad():
                        self.model(x)
                now = time.perf_counter()
                rate = steps_since / max(now - clock, 1e-9)
                evaluate = finite and self._eval_due()
                yield self._snapshot(probe, norm_probe, loss, logits, y, rate, evaluate, extras)
                clock, steps_since = time.perf_counter(), 0
            if not finite:
                self.outcome = "diverged"
                return
        self.outcome = "done"

    def _optimizer_step(self, x: torch.Tensor, y: torch.Tensor, extras: list[dict[str, Any]] | None) -> None:
        """The optimizer's step, with the instruments that must look before and after it."""
        spec, step = self.spec, self.step
        ics_due = spec.ics_every > 0 and step % spec.ics_every == 0
        if spec.landscape_every > 0 and step % spec.landscape_every == 0:
            landscape = loss_landscape(self.model, parameters_of(self.model), x, y, self._lr, stop=self._stop)
            self._landscape = (step, landscape)
        before = parameters_of(self.model) if ics_due else None
        readings: dict[str, dict[str, Any]] = {}
        if extras is not None:
            saved = {name: w.detach().clone() for name, w in self._weights.items()}
            # An unused weight has no gradient: zeros. All weights at once: a few ops per shape.
            grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self._weights.values()]
            hists = histograms_of(grads, spec.bins)
            norms = torch.stack([grad.norm() for grad in grads]).tolist() if grads else []  # one sync
            for name, (hist, _), norm in zip(self._weights, hists, norms, strict=True):
                readings[name] = {"weight_grad": hist, "grad_norm": norm}
        self.optimizer.step()
        if extras is not None:
            with torch.no_grad():
                for name, w in self._weights.items():
                    size = saved[name].norm().item()
                    moved = (w.detach() - saved[name]).norm().item()
                    readings[name]["update_ratio"] = moved / size if size > 0 else None
            for extra, weight_name in zip(extras, self._tap_weight, strict=True):
                if weight_name is not None:
                    extra.update(readings[weight_name])
        if before is not None:
            names = list(self._weights)
            after = parameters_of(self.model)
            measured = internal_covariate_shift(self.model, before, after, x, y, names, stop=self._stop)
            by_weight = dict(zip(names, measured, strict=True))
            self._ics = (step, [by_weight[w] if w is not None else None for w in self._tap_weight])

    def _frame_due(self) -> bool:
        spec, step = self.spec, self.step
        last = step == spec.steps
        if self.frame_clock is not None:
            # A step that measures (an evaluation; ICS, the landscape: they report in this
            # step's frame) is a frame, as it is on the emit_every cadence of an unpaced run.
            measures = (spec.ics_every > 0 and step % spec.ics_every == 0) or (
                spec.landscape_every > 0 and step % spec.landscape_every == 0
            )
            return self.frame_clock.due(step, spec.emit_every, last or self._eval_due() or measures)
        return last or step % spec.emit_every == 0

    def _eval_due(self) -> bool:
        return self.step % self.spec.eval_every == 0 or self.step == self.spec.steps

    def _apply_pending_lr(self) -> None:
        """This step's rate: the newest one asked for, scaled down during warmup."""
        lr, self._pending_lr = self._pending_lr, None
        if lr is not None:
            self._base_lr = lr
        warmup = self.spec.warmup_steps
        # Linear warmup: step s of the first `warmup` trains at s/warmup of the rate.
        effective = self._base_lr * min(1.0, (self.step + 1) / warmup) if warmup > 0 else self._base_lr
        if effective != self._lr or lr is not None:
            self._lr = effective
            for group in self.optimizer.param_groups:
                group["lr"] = effective

    @torch.no_grad()
    def _initial_snapshot(self, probe: ActivationProbe, norm_probe: BatchNormProbe) -> Snapshot:
        """Step 0: the untrained network on the first batch, leaving no trace in any buffer."""
        buffers = [b.clone() for b in self.model.buffers()]
        idx = self.sampler.peek_indices().to(self.device)
        x, y = self.x_train[idx], self.y_train[idx]
        probe.armed = norm_probe.armed = True
        if self.spec.noisy_norm:
            self.model.resample_noise()
        logits = self.model(x)
        for saved, live in zip(buffers, self.model.buffers(), strict=True):
            live.copy_(saved)
        loss = cross_entropy(logits, y)
        return self._snapshot(probe, norm_probe, loss, logits, y, 0.0, True, [{} for _ in self.layer_names])

    def _snapshot(
        self,
        probe: ActivationProbe,
        norm_probe: BatchNormProbe,
        loss: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
        rate: float,
        evaluate: bool,
        extras: list[dict[str, Any]],
    ) -> Snapshot:
        layers = probe.collect(self.spec.bins)
        batch_norms = norm_probe.collect()
        for extra, stats in zip(extras, batch_norms, strict=True):
            if stats is not None:
                extra["batch_norm"] = stats
        past = None
        if self.spec.drift_lag > 0:  # drift is on: keep each frame's histograms that long
            past = self._history[0] if len(self._history) == self.spec.drift_lag else None
            self._history.append([layer.pre for layer in layers])
        drifts = relative_drifts([layer.pre for layer in layers], past) if past else [None] * len(layers)
        for layer, drift, extra in zip(layers, drifts, extras, strict=True):
            layer.drift = drift
            for key, value in extra.items():
                setattr(layer, key, value)
        loss_value = loss.item()
        measured = self.evaluator.measure() if evaluate else None
        ics, self._ics = self._ics, None
        landscape, self._landscape = self._landscape, None
        return Snapshot(
            step=self.step,
            loss=loss_value if torch.isfinite(loss).item() else None,
            train_acc=accuracy(logits, y),
            test_acc=measured.test_acc if measured else None,
            test_acc_batch_stats=measured.test_acc_batch_stats if measured else None,
            test_acc_generated=measured.test_acc_generated if measured else None,
            lr=self._lr,
            steps_per_s=rate,
            layers=layers,
            ics=ics[1] if ics else None,
            ics_step=ics[0] if ics else None,
            landscape=landscape[1] if landscape else None,
            landscape_step=landscape[0] if landscape else None,
        )
