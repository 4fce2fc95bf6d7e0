"""The small CNN for the 8x8 digits: 3x3 conv layers, one 2x2 max-pool, a Linear read-out.

Each layer is Conv -> Norm -> Act (before) or Conv -> Act -> Norm (after). The image norms follow
Wu & He (2018), all with per-channel gamma/beta: batch norm averages each channel over
(batch, H, W); group norm each example's (C/G, H, W); layer norm each example's (C, H, W), which
is group norm with one group. No I/O, no training.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from app.nets.layers import NormedLayer, Tap, initialised, normed_layers, resample_noise
from app.spec import RunSpec

__all__ = ["CNN", "IMAGE_PIXELS", "build_cnn", "channel_groups"]

IMAGE_SIDE = 8  # the digits are 8x8 grey images, flattened to 64 features
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE  # what the CNN reads: an uploaded table needs this many features
KERNEL = 3
POOL_AFTER = 2  # the max-pool follows this conv layer (8x8 -> 4x4), when the net is that deep
TAP_GROUPS = 4  # each conv layer is probed as this many channel groups


class CNN(nn.Module):
    """Conv layers of one width on a (batch, 1, 8, 8) image, a max-pool after the second, flatten,
    Linear read-out."""

    def __init__(self, layers: list[NormedLayer], head: nn.Linear) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.pool = nn.MaxPool2d(2)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, 64)
        x = x.view(x.shape[0], 1, IMAGE_SIDE, IMAGE_SIDE)  # (batch, 1, 8, 8)
        for i, layer in enumerate(self.layers, start=1):
            x = layer(x)  # (batch, C, 8, 8), or (batch, C, 4, 4) after the pool
            if i == POOL_AFTER:
                x = self.pool(x)  # (batch, C, 4, 4)
        # Flatten, not global average pooling: where a stroke lies tells digits apart, and a
        # few 3x3 layers see too little of the image to encode position in their channels.
        return self.head(x.flatten(1))  # (batch, classes)

    def taps(self) -> list[Tap]:
        """Each conv layer's nonlinearity, in up to four channel groups: pre-activation in, out."""
        taps: list[Tap] = []
        for i, layer in enumerate(cast(list[NormedLayer], list(self.layers)), start=1):
            for a, b in channel_groups(layer.transform.weight.shape[0]):  # its output channels
                taps.append(
                    Tap(
                        f"conv{i}.ch{a}-{b - 1}",
                        layer.act,
                        activation=layer.act.kind,
                        weight=layer.transform.weight,
                        channels=(a, b),
                        norm=layer.norm,
                    )
                )
        return taps

    def resample_noise(self) -> None:
        resample_noise(self)


def channel_groups(channels: int) -> list[tuple[int, int]]:
    """Up to four [a, b) ranges of channels/4 channels each; the last takes any remainder."""
    count = min(TAP_GROUPS, channels)
    size = channels // count
    bounds = [i * size for i in range(count)] + [channels]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def build_cnn(spec: RunSpec, classes: int) -> CNN:
    """Build the CNN on the CPU; the same seed gives the same conv and Linear weights for every norm."""
    assert spec.depth >= 1, spec.depth
    assert spec.norm_position in ("before", "after"), spec.norm_position
    width = spec.width
    gen = torch.Generator().manual_seed(spec.seed)
    # Every conv and the read-out are drawn first, in a fixed order, from their own generator:
    # the norm choice cannot change one initial weight.
    convs = [
        initialised(nn.Conv2d(1 if i == 0 else width, width, KERNEL, padding=KERNEL // 2), spec, gen)
        for i in range(spec.depth)
    ]
    side = IMAGE_SIDE // 2 if spec.depth >= POOL_AFTER else IMAGE_SIDE
    head = initialised(nn.Linear(width * side * side, classes), spec, gen)
    return CNN(normed_layers("conv", convs, spec, images=True), head)
