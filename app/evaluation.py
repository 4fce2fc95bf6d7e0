"""Evaluation of a network being trained: test accuracy in eval mode and with batch statistics,
the transformer's answers written one token at a time, and a sweep point's final train metrics.

Every measurement leaves the network as it found it (train mode, batch-norm buffers untouched),
and checks the run's stop flag between its passes (lifecycle.Interrupted).

    evaluator = Evaluator(spec, model, data_on_device)
    evaluator.measure()  # Measurement(test_acc=0.93, test_acc_batch_stats=..., ...)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from app.lifecycle import stop_point
from app.nets import BatchNorm, Network, NoisyShift
from app.objective import IGNORE, accuracy, correct_and_scored, cross_entropy
from app.spec import RunSpec

__all__ = ["GENERATION_ROWS", "STOP_CHUNK_ROWS", "Evaluator", "Measurement", "Split"]

# Generating one token at a time costs ~L passes over growing prefixes: on the first rows of the
# test set it costs about one full test pass and the estimate is still within a few points.
GENERATION_ROWS = 128
# An eval-mode test pass (no batch coupling) runs in chunks of at most this many rows, whatever
# eval_batch_size says, so a stop is seen within one chunk: the largest admitted transformer
# takes ~0.9 s per 64 rows, ~7 s for its whole test set at once (2-core CI machine).
STOP_CHUNK_ROWS = 64


@dataclass(frozen=True)
class Split:
    """The train and test tensors, on the run's device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class Measurement:
    test_acc: float
    test_acc_batch_stats: float | None  # only for a network with batch norm
    test_acc_generated: float | None  # only for the transformer


class Evaluator:
    """Measures one network on its run's data, as the spec asks (test shift, scale, batch size)."""

    def __init__(
        self, spec: RunSpec, model: Network, split: Split, stop: threading.Event | None = None
    ) -> None:
        self.spec, self.model, self.split = spec, model, split
        self.stop = stop  # set: the next pass raises Interrupted
        self.has_batch_norm = any(isinstance(m, BatchNorm) for m in model.modules())

    def measure(self) -> Measurement:
        return Measurement(
            test_acc=self.test_accuracy(),
            test_acc_batch_stats=self.test_accuracy_batch_stats() if self.has_batch_norm else None,
            test_acc_generated=self.generated_accuracy() if self.spec.arch == "transformer" else None,
        )

    def _test_batches(self, uncoupled: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The test set, moved and scaled as asked, in batches of eval_batch_size (0: all at once).
        `uncoupled`: the rows do not see each other (eval mode), so any chunking gives the same
        answers and the pass is cut into chunks a stop can come between."""
        x = self.split.x_test
        if x.is_floating_point():  # token ids are not moved or scaled
            x = x * self.spec.test_scale + self.spec.test_shift
        size = self.spec.eval_batch_size or len(x)
        if uncoupled:
            size = min(size, STOP_CHUNK_ROWS)
        for start in range(0, len(x), size):
            stop_point(self.stop)
            yield x[start : start + size], self.split.y_test[start : start + size]

    def _accuracy(self, uncoupled: bool) -> float:
        correct = scored = 0
        for x, y in self._test_batches(uncoupled):
            right, count = correct_and_scored(self.model(x), y)
            correct, scored = correct + right, scored + count
        return correct / max(scored, 1)

    @torch.no_grad()
    def train_metrics(self) -> tuple[float | None, float]:
        """Loss and accuracy on the whole training split, in eval mode (a sweep's final point)."""
        self.model.eval()
        try:
            logits = self.model(self.split.x_train)
            loss = cross_entropy(logits, self.split.y_train).item()
            return (loss if math.isfinite(loss) else None), accuracy(logits, self.split.y_train)
        finally:
            self.model.train()

    @torch.no_grad()
    def generated_accuracy(self) -> float:
        """Transformer: the test answers written greedily one token at a time, each pass reading
        only the prompt and the model's own earlier answers (no batch statistics, no peeking).
        Token-level norms make this agree with the full pass; see tests/test_transformer.py."""
        self.model.eval()
        try:
            length, rows = self.spec.seq_len, GENERATION_ROWS
            tokens = self.split.x_test[:rows, : length + 1]  # (n, L + 1): the input and the separator
            answer = self.split.y_test[:rows, length:]  # (n, L): what each answer position should be
            assert bool((answer != IGNORE).all())
            written = []
            for _ in range(length):
                stop_point(self.stop)
                next_token = self.model(tokens)[:, -1].argmax(dim=-1)  # (n,)
                written.append(next_token)
                tokens = torch.cat([tokens, next_token[:, None]], dim=1)  # feeds its own answer back
            return (torch.stack(written, dim=1) == answer).float().mean().item()
        finally:
            self.model.train()

    @torch.no_grad()
    def test_accuracy(self) -> float:
        """Accuracy on the held-out split in eval mode: batch norm uses its running averages."""
        self.model.eval()
        try:
            return self._accuracy(uncoupled=True)
        finally:
            self.model.train()

    @torch.no_grad()
    def test_accuracy_batch_stats(self) -> float:
        """Accuracy with batch norm normalising each test batch by that batch's own statistics."""
        buffers = [b.clone() for b in self.model.buffers()]
        noise = [m for m in self.model.modules() if isinstance(m, NoisyShift)]
        for module in noise:
            module.eval()  # no training noise at test time
        try:
            return self._accuracy(uncoupled=False)  # batch statistics: each batch as asked
        finally:
            for module in noise:
                module.train()
            for saved, live in zip(buffers, self.model.buffers(), strict=True):
                live.copy_(saved)
