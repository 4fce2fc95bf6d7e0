"""The small CNN for the 8x8 digits: 3x3 conv layers, one 2x2 max-pool, a Linear read-out.

Each layer is Conv -> Norm -> Act (before) or Conv -> Act -> Norm (after). The image norms follow
Wu & He (2018), all with per-channel gamma/beta: batch norm averages each channel over
(batch, H, W); group norm each example's (C/G, H, W); layer norm each example's (C, H, W), which
is group norm with one group. No I/O, no training.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from app.model import (
    BATCH_MOMENTUM,
    EPS,
    NOISE_SEED_OFFSET,
    Activation,
    BatchNorm,
    GroupNorm,
    NoisyShift,
    Tap,
    _init_linear,
)
from app.spec import RunSpec

IMAGE_SIDE = 8  # the digits are 8x8 grey images, flattened to 64 features
KERNEL = 3
POOL_AFTER = 2  # the max-pool follows this conv layer (8x8 -> 4x4), when the net is that deep
TAP_GROUPS = 4  # each conv layer is probed as this many channel groups


class ChannelBatchNorm(BatchNorm):
    """Batch norm of images: per channel, mean/variance over (batch, H, W), then gamma/beta."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, C, H, W)
        # One image still gives each channel H*W values, so torch's kernel takes every batch size;
        # the parent's batch-of-one shortcut would broadcast beta over W, not C.
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.gamma, self.beta, self.training, BATCH_MOMENTUM, EPS
        )


class ChannelNoisyShift(NoisyShift):
    """Santurkar et al.'s noise for images: one scale and shift per channel, over all of H, W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, C, H, W)
        return x * self.scale[:, None, None] + self.shift[:, None, None] if self.training else x


def build_image_norm(kind: str, channels: int, groups: int) -> nn.Module:
    """The norm layer `kind` for (batch, channels, H, W) inputs; rms is not offered for images."""
    if kind == "batch":
        return ChannelBatchNorm(channels)
    if kind == "group":
        return GroupNorm(channels, groups)
    if kind == "layer":
        return GroupNorm(channels, 1)  # Wu & He's layer norm for conv nets: over (C, H, W)
    assert kind == "none", f"no {kind!r} norm for the CNN"
    return nn.Identity()


class ConvLayer(nn.Module):
    """Conv -> Norm -> Activation (norm before), or Conv -> Activation -> Norm (after)."""

    def __init__(
        self,
        conv: nn.Conv2d,
        norm: nn.Module,
        act: Activation,
        norm_first: bool,
        noise: nn.Module | None = None,
    ) -> None:
        super().__init__()
        noise = noise if noise is not None else nn.Identity()
        # Registered in forward order (the ICS instrument reads "below" from registration order).
        self.conv = conv
        if norm_first:
            self.norm, self.noise, self.act = norm, noise, act
        else:
            self.act, self.norm, self.noise = act, norm, noise
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, C_in, H, W)
        x = self.conv(x)  # (batch, C, H, W)
        if self.norm_first:
            return self.act(self.noise(self.norm(x)))
        return self.noise(self.norm(self.act(x)))


class CNN(nn.Module):
    """Conv layers of one width on a (batch, 1, 8, 8) image, a max-pool after the second, flatten,
    Linear read-out."""

    def __init__(self, layers: list[ConvLayer], head: nn.Linear) -> None:
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
        for i, layer in enumerate(cast(list[ConvLayer], list(self.layers)), start=1):
            for a, b in channel_groups(layer.conv.out_channels):
                taps.append(
                    Tap(
                        f"conv{i}.ch{a}-{b - 1}",
                        layer.act,
                        activation=layer.act.kind,
                        weight=layer.conv.weight,
                        channels=(a, b),
                        norm=layer.norm,
                    )
                )
        return taps

    def resample_noise(self) -> None:
        for module in self.modules():
            if isinstance(module, NoisyShift):
                module.resample()


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
        _init_conv(nn.Conv2d(1 if i == 0 else width, width, KERNEL, padding=KERNEL // 2), spec, gen)
        for i in range(spec.depth)
    ]
    side = IMAGE_SIDE // 2 if spec.depth >= POOL_AFTER else IMAGE_SIDE
    head = _init_linear(nn.Linear(width * side * side, classes), spec, gen)
    noise_gen = torch.Generator().manual_seed(spec.seed + NOISE_SEED_OFFSET)
    layers = [
        ConvLayer(
            conv,
            build_image_norm(spec.norm, width, spec.groups),
            Activation(spec.activation),
            norm_first=spec.norm_position == "before",
            noise=ChannelNoisyShift(width, noise_gen) if spec.noisy_norm else None,
        )
        for conv in convs
    ]
    return CNN(layers, head)


@torch.no_grad()
def _init_conv(conv: nn.Conv2d, spec: RunSpec, gen: torch.Generator) -> nn.Conv2d:
    """_init_linear's schemes for a conv weight (out, in, k, k): fan_in = in*k*k, fan_out = out*k*k."""
    receptive = conv.weight[0, 0].numel()  # k*k
    fan_in = conv.weight.shape[1] * receptive
    fan_out = conv.weight.shape[0] * receptive
    bias = cast(torch.Tensor, conv.bias)
    if spec.init == "default":
        bound = 1 / math.sqrt(fan_in)  # what torch.nn.Conv2d draws by default
        conv.weight.uniform_(-bound, bound, generator=gen)
        bias.uniform_(-bound, bound, generator=gen)
        return conv
    if spec.init == "standard":
        bound = 1 / math.sqrt(fan_in)  # Glorot & Bengio's "standard" init: zero biases
        conv.weight.uniform_(-bound, bound, generator=gen)
    elif spec.init == "xavier":
        bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot & Bengio, with torch's conv fans
        conv.weight.uniform_(-bound, bound, generator=gen)
    elif spec.init == "kaiming":
        conv.weight.normal_(0, math.sqrt(2 / fan_in), generator=gen)  # He et al., for ReLU
    else:
        conv.weight.normal_(0, spec.init_std, generator=gen)
    bias.zero_()
    return conv
