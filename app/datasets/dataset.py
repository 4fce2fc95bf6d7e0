"""Dataset: a train/test split as torch tensors, whatever made it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split of inputs (float32, or int64 tokens) and integer class labels."""

    name: str
    x_train: torch.Tensor  # (n_train, features)
    y_train: torch.Tensor  # (n_train,) int64, or (n_train, T) targets of a sequence task
    x_test: torch.Tensor  # (n_test, features)
    y_test: torch.Tensor  # (n_test,) int64, or (n_test, T)
    classes: int

    @property
    def features(self) -> int:
        return self.x_train.shape[1]
