"""The residual MLP: a stem, `depth` blocks x + F(x) with F(h) = W2 act(W1 h), a read-out.

Pre-norm blocks compute x + F(Norm(x)) and end with one more Norm before the read-out; post-norm
blocks compute Norm(x + F(x)). At init the pre-norm stream adds one roughly equal F per block and
grows with depth; the post-norm stream is renormalised after every block and stays put. No I/O,
no training.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from app.nets.layers import (
    NOISE_SEED_OFFSET,
    Activation,
    NoisyShift,
    Tap,
    build_norm,
    initialised,
    resample_noise,
)
from app.spec import RunSpec

__all__ = ["ResBlock", "ResMLP", "build_resmlp"]


class ResBlock(nn.Module):
    """x + W2 act(W1 Norm(x)) (pre-norm), or Norm(x + W2 act(W1 x)) (post-norm)."""

    def __init__(
        self,
        fc1: nn.Linear,
        fc2: nn.Linear,
        norm: nn.Module,
        act: Activation,
        pre_norm: bool,
        noise: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        noise = noise if noise is not None else nn.Identity()
        # Parameters register in forward order: the ICS instrument counts every parameter
        # registered before W_i's module as "the layers below" it.
        if pre_norm:
            self.norm, self.noise = norm, noise
        self.fc1, self.act, self.fc2 = fc1, act, fc2
        if not pre_norm:
            self.norm, self.noise = norm, noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, width)
        if self.pre_norm:
            return x + self.fc2(self.act(self.fc1(self.noise(self.norm(x)))))
        return self.noise(self.norm(x + self.fc2(self.act(self.fc1(x)))))


class ResMLP(nn.Module):
    """Stem Linear, residual blocks of one width, (pre-norm: a final Norm), Linear read-out."""

    def __init__(
        self,
        stem: nn.Linear,
        blocks: list[ResBlock],
        head: nn.Linear,
        final_norm: nn.Module | None = None,
        final_noise: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        # Pre-norm only: the stream is never normalised inside the blocks, so it is here.
        self.final_norm = final_norm if final_norm is not None else nn.Identity()
        self.final_noise = final_noise if final_noise is not None else nn.Identity()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        x = self.stem(x)  # (batch, width)
        for block in self.blocks:
            x = block(x)  # (batch, width)
        return self.head(self.final_noise(self.final_norm(x)))  # (batch, classes)

    def taps(self) -> list[Tap]:
        """Per block: its nonlinearity (W1's output in, act out), then the stream in and out."""
        taps: list[Tap] = []
        for i, block in enumerate(cast(list[ResBlock], list(self.blocks)), start=1):
            taps.append(Tap(f"block{i}.act", block.act, activation=block.act.kind, weight=block.fc1.weight))
            taps.append(Tap(f"block{i}.resid", block, weight=block.fc2.weight, norm=block.norm))
        return taps

    def resample_noise(self) -> None:
        resample_noise(self)


def build_resmlp(spec: RunSpec, features: int, classes: int) -> ResMLP:
    """Build the residual MLP on the CPU; the same seed gives the same Linear weights for every norm
    and placement."""
    assert spec.norm_position in ("pre", "post"), spec.norm_position
    gen = torch.Generator().manual_seed(spec.seed)
    width = spec.width
    # Every Linear is drawn first, in a fixed order (stem, W1 and W2 of each block, head), from
    # its own generator: norm, placement and noise cannot change one initial weight. W2 keeps
    # spec.init (no zero or 1/sqrt(depth) scaling) so the learner sees the untamed stream: it
    # grows block by block in pre-norm and is held at unit scale in post-norm.
    stem = initialised(nn.Linear(features, width), spec, gen)
    pairs = [
        (initialised(nn.Linear(width, width), spec, gen), initialised(nn.Linear(width, width), spec, gen))
        for _ in range(spec.depth)
    ]
    head = initialised(nn.Linear(width, classes), spec, gen)
    noise_gen = torch.Generator().manual_seed(spec.seed + NOISE_SEED_OFFSET)
    pre_norm = spec.norm_position == "pre"

    def noise() -> NoisyShift | None:
        # As the MLP: the noise follows every norm slot, "none" included.
        return NoisyShift(width, noise_gen) if spec.noisy_norm else None

    blocks = [
        ResBlock(
            fc1,
            fc2,
            build_norm(spec.norm, width, spec.groups),
            Activation(spec.activation),
            pre_norm=pre_norm,
            noise=noise(),
        )
        for fc1, fc2 in pairs
    ]
    if not pre_norm:
        return ResMLP(stem, blocks, head)
    return ResMLP(stem, blocks, head, build_norm(spec.norm, width, spec.groups), noise())
