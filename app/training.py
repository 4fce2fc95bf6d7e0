"""Trainer: one run as a plain synchronous generator of Snapshots. Knows nothing of the web."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from app.data import Dataset, load_dataset
from app.model import MLP, build_model
from app.probes import ActivationProbe, LayerStats
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

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "frame",
            "step": self.step,
            "loss": self.loss,
            "train_acc": self.train_acc,
            "test_acc": self.test_acc,
            "lr": self.lr,
            "steps_per_s": self.steps_per_s,
            "t": self.wall_time,
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


class Trainer:
    """Trains one RunSpec; `run(stop)` yields a Snapshot every `emit_every` steps.

    The generator is lazy: whoever iterates it decides the pace (pause is simply not asking
    for the next snapshot). `stop` is checked before every step, so stopping is prompt.
    """

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        data = load_dataset(spec.dataset, spec.noise, spec.seed)
        self.data: Dataset = data
        self.model: MLP = build_model(spec, data.features, data.classes).to(self.device)
        self.x_train, self.y_train = data.x_train.to(self.device), data.y_train.to(self.device)
        self.x_test, self.y_test = data.x_test.to(self.device), data.y_test.to(self.device)
        self.optimizer = build_optimizer(spec, self.model.parameters())
        self.sampler = BatchSampler(len(data.x_train), min(spec.batch_size, len(data.x_train)), spec.seed)
        self.layer_names = self.model.layer_names
        self.step = 0
        self.outcome: Outcome | None = None
        self._lr = spec.lr
        self._pending_lr: float | None = None

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def set_lr(self, lr: float) -> None:
        """Change the learning rate from the next step on (safe to call from another thread)."""
        self._pending_lr = lr

    def run(self, stop: threading.Event) -> Iterator[Snapshot]:
        probe = ActivationProbe(self.model, self.layer_names)
        try:
            yield from self._train(probe, stop)
        finally:
            probe.remove()

    def _train(self, probe: ActivationProbe, stop: threading.Event) -> Iterator[Snapshot]:
        spec = self.spec
        yield self._initial_snapshot(probe)
        clock, steps_since = time.perf_counter(), 0
        while self.step < spec.steps:
            if stop.is_set():
                self.outcome = "stopped"
                return
            self._apply_pending_lr()
            self.step += 1
            steps_since += 1
            probing = self.step % spec.emit_every == 0 or self.step == spec.steps
            idx = self.sampler.next_indices().to(self.device)
            x, y = self.x_train[idx], self.y_train[idx]  # (batch, features), (batch,)
            probe.armed = probing
            logits = self.model(x)  # (batch, classes)
            loss = F.cross_entropy(logits, y)
            # One host sync per step: the price of naming the exact step a run diverged at.
            finite = bool(torch.isfinite(loss).item())
            if finite:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            if probing or not finite:
                probe.armed = True  # a diverging step is always shown, whatever the cadence
                if not probing:
                    with torch.no_grad():
                        self.model(x)
                now = time.perf_counter()
                rate = steps_since / max(now - clock, 1e-9)
                yield self._snapshot(probe, loss, logits, y, rate, evaluate=finite and self._eval_due())
                clock, steps_since = time.perf_counter(), 0
            if not finite:
                self.outcome = "diverged"
                return
        self.outcome = "done"

    def _eval_due(self) -> bool:
        return self.step % self.spec.eval_every == 0 or self.step == self.spec.steps

    def _apply_pending_lr(self) -> None:
        lr, self._pending_lr = self._pending_lr, None
        if lr is not None:
            self._lr = lr
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    @torch.no_grad()
    def _initial_snapshot(self, probe: ActivationProbe) -> Snapshot:
        """Step 0: the untrained network on the first batch, leaving no trace in any buffer."""
        buffers = [b.clone() for b in self.model.buffers()]
        idx = self.sampler.peek_indices().to(self.device)
        x, y = self.x_train[idx], self.y_train[idx]
        probe.armed = True
        logits = self.model(x)
        for saved, live in zip(buffers, self.model.buffers(), strict=True):
            live.copy_(saved)
        loss = F.cross_entropy(logits, y)
        return self._snapshot(probe, loss, logits, y, 0.0, evaluate=True)

    def _snapshot(
        self,
        probe: ActivationProbe,
        loss: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
        rate: float,
        evaluate: bool,
    ) -> Snapshot:
        layers = probe.collect(self.spec.bins)
        loss_value = loss.item()
        return Snapshot(
            step=self.step,
            loss=loss_value if torch.isfinite(loss).item() else None,
            train_acc=(logits.argmax(dim=1) == y).float().mean().item(),
            test_acc=self.test_accuracy() if evaluate else None,
            lr=self._lr,
            steps_per_s=rate,
            layers=layers,
        )

    @torch.no_grad()
    def test_accuracy(self) -> float:
        """Accuracy on the held-out split in eval mode: batch norm uses its running averages."""
        self.model.eval()
        try:
            logits = self.model(self.x_test)
            return (logits.argmax(dim=1) == self.y_test).float().mean().item()
        finally:
            self.model.train()
