"""The training objective every architecture shares: cross-entropy over the scored predictions.

Classifiers give logits (batch, classes) for labels (batch,); the transformer gives logits
(batch, T, vocab) for targets (batch, T) where positions that predict nothing hold IGNORE.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE = -100  # a target that is not scored (cross_entropy's default ignore_index)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the scored predictions."""
    if logits.dim() == 3:
        logits, y = logits.flatten(0, 1), y.flatten()  # (batch * T, vocab), (batch * T,)
    return F.cross_entropy(logits, y, ignore_index=IGNORE)


def correct_and_scored(logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """How many scored predictions are right, and how many were scored."""
    if logits.dim() == 3:
        logits, y = logits.flatten(0, 1), y.flatten()  # (batch * T, vocab), (batch * T,)
    scored = y != IGNORE
    right = (logits.argmax(dim=-1) == y) & scored
    return int(right.sum().item()), int(scored.sum().item())


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the scored predictions that are right."""
    right, scored = correct_and_scored(logits, y)
    return right / max(scored, 1)
