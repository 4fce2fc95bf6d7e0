"""The MLP: `depth` hidden layers Linear -> Norm -> Activation (or Linear -> Activation -> Norm),
then a Linear read-out to the class logits. No I/O, no training."""

from __future__ import annotations

from itertools import pairwise
from typing import cast

import torch
from torch import nn

from app.nets.layers import NormedLayer, Tap, initialised, normed_layers, resample_noise
from app.spec import RunSpec

__all__ = ["MLP", "build_mlp"]


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then a Linear read-out to the class logits."""

    def __init__(self, hidden: list[NormedLayer], head: nn.Linear) -> None:
        super().__init__()
        self.hidden = nn.ModuleList(hidden)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)  # (batch, classes)

    def taps(self) -> list[Tap]:
        """Each hidden layer's nonlinearity: pre-activation in, activation out."""
        return [
            Tap(
                f"layer{i + 1}",
                layer.act,
                activation=layer.act.kind,
                weight=layer.transform.weight,
                norm=layer.norm,
            )
            for i, layer in enumerate(cast(list[NormedLayer], list(self.hidden)))
        ]

    def resample_noise(self) -> None:
        resample_noise(self)


def build_mlp(spec: RunSpec, features: int, classes: int) -> MLP:
    """Build the MLP on the CPU; the same seed gives the same Linear weights for every norm."""
    gen = torch.Generator().manual_seed(spec.seed)
    sizes = [features] + [spec.width] * spec.depth + [classes]
    # All Linear layers are drawn first, in a fixed order, from their own generator: the norm
    # choice cannot change a single initial weight, which is what makes two runs comparable.
    linears = [initialised(nn.Linear(n_in, n_out), spec, gen) for n_in, n_out in pairwise(sizes)]
    return MLP(normed_layers("linear", linears[:-1], spec), linears[-1])
