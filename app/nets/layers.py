"""The pieces every network is built from: taps, the nonlinearity, the norm layers, Santurkar et
al.'s noise, the weight inits and the normed layer that strings them together.

Each norm layer states its formula in its docstring and owns its parameters (gamma, beta,
running averages) so probes and instruments can read them; the arithmetic runs in torch's fused
kernels. Tests hold every layer to torch.nn's reference and to its formula. No I/O, no training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import torch
from torch import nn
from torch.nn import functional as F

from app.spec import Init, RunSpec

__all__ = [
    "ACTIVATIONS",
    "BATCH_MOMENTUM",
    "EPS",
    "NOISE_SEED_OFFSET",
    "RMS_EPS",
    "Activation",
    "BatchNorm",
    "GroupNorm",
    "LayerNorm",
    "NoisyShift",
    "NormedLayer",
    "RMSNorm",
    "Tap",
    "build_norm",
    "fans",
    "init_weight_and_bias",
    "initialised",
    "normed_layers",
    "resample_noise",
]

EPS = 1e-5
RMS_EPS = 1e-6
BATCH_MOMENTUM = 0.1  # weight of the newest batch in the running averages, as torch.nn
NOISE_SEED_OFFSET = 7919  # noisy norm draws from its own generator: initial weights stay the same


@dataclass(frozen=True, eq=False)
class Tap:
    """One probed tensor of a network: what `module` receives is the entry's `pre`, what it returns
    its `post`. Every architecture lists its taps; probes, frames and the page work from them alone.

    Tap("layer3", mlp.hidden[2].act, activation="sigmoid", weight=mlp.hidden[2].linear.weight)
    """

    name: str  # what the tensor is, as the page shows it: "layer3", "block2.resid", "conv1.ch0-7"
    module: nn.Module  # hooked: its first input is `pre`, its output `post`
    activation: str | None = None  # the nonlinearity `module` applies (saturated/dead fractions)
    weight: torch.Tensor | None = None  # whose gradient norm and update ratio the entry reports
    channels: tuple[int, int] | None = None  # summarise only channels [a, b) of dim 1 (CNN groups)
    norm: nn.Module | None = None  # the norm layer feeding this tensor (batch norm: train vs eval stats)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "gelu": F.gelu,
    "linear": lambda x: x,
}


class Activation(nn.Module):
    """The nonlinearity as a module of its own, so probes can hook its input and output."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.kind](x)

    def extra_repr(self) -> str:
        return self.kind


class BatchNorm(nn.Module):
    """Per-feature (or per-channel) batch mean/variance, normalise, then learned gamma/beta (Ioffe &
    Szegedy).

    Training: y = (x - mean_batch) / sqrt(var_batch + eps) * gamma + beta, and the running
    averages move 10% of the way to this batch's mean and (unbiased) variance. Eval: the running
    averages stand in for the batch, so one example's output no longer depends on the others.
    Images (batch, C, H, W) are averaged per channel over (batch, H, W), as Wu & He.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, features: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features) or (batch, C, H, W)
        if self.training and x.dim() == 2 and x.shape[0] == 1:
            # One example: its own mean, zero variance. torch refuses this batch; the formula
            # gives beta, which is what a learner should see (batch norm at batch size 1). One
            # image still gives each channel H*W values, so torch's kernel takes every batch.
            return self.beta.expand_as(x) + 0 * x
        # The fused kernel computes exactly the formula above, ~2.4x faster than spelling it out
        # in tensor ops (10 x 100 sigmoid net, 1 thread); tests hold it to the formula.
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.gamma, self.beta, self.training, BATCH_MOMENTUM, EPS
        )


class LayerNorm(nn.Module):
    """Mean/variance over the features of each example: no coupling between examples (Ba et al.).

    y = (x - mean_features) / sqrt(var_features + eps) * gamma + beta, the same in training and eval.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., features)
        return F.layer_norm(x, self.gamma.shape, self.gamma, self.beta, EPS)


class GroupNorm(nn.Module):
    """Layer norm within each of `groups` equal slices of the features or channels (Wu & He).

    groups = 1 is layer norm (for images: over each example's (C, H, W)); groups = features
    normalises every unit on its own.
    """

    def __init__(self, features: int, groups: int) -> None:
        super().__init__()
        assert features % groups == 0, "groups must divide the features"
        self.groups = groups
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features) or (batch, C, H, W)
        return F.group_norm(x, self.groups, self.gamma, self.beta, EPS)


class RMSNorm(nn.Module):
    """Divide by the root mean square of the features; no re-centring (Zhang & Sennrich).

    y = x / sqrt(mean(x^2) + eps) * gamma
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., features)
        return F.rms_norm(x, self.gamma.shape, self.gamma, RMS_EPS)


def build_norm(kind: str, features: int, groups: int, *, images: bool = False) -> nn.Module:
    """The norm layer `kind` for `features` units, or with `images` for (batch, features, H, W)
    maps, where layer norm is group norm with one group and rms is not offered."""
    if kind == "batch":
        return BatchNorm(features)
    if kind == "group":
        return GroupNorm(features, groups)
    if kind == "layer":
        # Wu & He's layer norm for conv nets: over each example's (C, H, W).
        return GroupNorm(features, 1) if images else LayerNorm(features)
    if kind == "rms":
        assert not images, f"no {kind!r} norm for images"
        return RMSNorm(features)
    assert kind == "none", kind
    return nn.Identity()


class NoisyShift(nn.Module):
    """Santurkar et al. (2018), Fig. 2: a <- s*a + m after a norm layer, redrawn every step.

    Per layer and step: mu ~ U(-0.5, 0.5), sigma ~ U(1, 1.25); per unit: m ~ U(mu - 0.1, mu + 0.1),
    s ~ N(sigma, 0.1). The layer's inputs now shift all the time, on purpose. A unit is a feature
    of (batch, features), or a channel of (batch, C, H, W), one scale and shift over all its H, W.
    Training mode only; `resample` draws the next step's noise, so extra passes of one step see the
    same noise.
    """

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, features: int, gen: torch.Generator) -> None:
        super().__init__()
        self.gen = gen
        self.register_buffer("scale", torch.ones(features), persistent=False)
        self.register_buffer("shift", torch.zeros(features), persistent=False)

    @torch.no_grad()
    def resample(self) -> None:
        features = self.scale.numel()
        mu = torch.rand((), generator=self.gen) - 0.5
        sigma = 1 + 0.25 * torch.rand((), generator=self.gen)
        shift = mu + 0.2 * torch.rand(features, generator=self.gen) - 0.1
        scale = sigma + 0.1 * torch.randn(features, generator=self.gen)
        self.shift.copy_(shift)
        self.scale.copy_(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features, *spatial)
        if not self.training:
            return x
        units = (-1,) + (1,) * (x.dim() - 2)  # (features, 1, ...): broadcast over the spatial dims
        return x * self.scale.view(units) + self.shift.view(units)


def resample_noise(network: nn.Module) -> None:
    """Draw the next step's noise in every NoisyShift of `network`, in registration order."""
    for module in network.modules():
        if isinstance(module, NoisyShift):
            module.resample()


class NormedLayer(nn.Module):
    """transform -> Norm -> Noise -> Activation (norm first), or transform -> Activation -> Norm ->
    Noise (norm after); the transform is a Linear or a Conv2d.

    It is registered under `name` ("linear", "conv"), so parameters read `hidden.0.linear.weight`;
    the rest in forward order (the ICS instrument reads "the layers below" from registration order).
    """

    def __init__(
        self,
        name: str,
        transform: nn.Linear | nn.Conv2d,
        norm: nn.Module,
        act: Activation,
        norm_first: bool,
        noise: nn.Module | None = None,
    ) -> None:
        super().__init__()
        noise = noise if noise is not None else nn.Identity()
        self.transform_name = name
        self.add_module(name, transform)
        if norm_first:
            self.norm, self.noise, self.act = norm, noise, act
        else:
            self.act, self.norm, self.noise = act, norm, noise
        self.norm_first = norm_first

    @property
    def transform(self) -> nn.Linear | nn.Conv2d:
        return cast(nn.Linear | nn.Conv2d, self._modules[self.transform_name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features) or (batch, C, H, W)
        x = self.transform(x)
        if self.norm_first:
            return self.act(self.noise(self.norm(x)))
        return self.noise(self.norm(self.act(x)))


def normed_layers(
    name: str, transforms: list[nn.Linear] | list[nn.Conv2d], spec: RunSpec, *, images: bool = False
) -> list[NormedLayer]:
    """A NormedLayer around each of `transforms` (already initialised), `spec.width` units or
    channels wide, with the spec's norm, placement, activation and noise. The noise of every layer
    comes from one generator of its own, so switching it on cannot change an initial weight."""
    noise_gen = torch.Generator().manual_seed(spec.seed + NOISE_SEED_OFFSET)
    return [
        NormedLayer(
            name,
            transform,
            build_norm(spec.norm, spec.width, spec.groups, images=images),
            Activation(spec.activation),
            norm_first=spec.norm_position == "before",
            noise=NoisyShift(spec.width, noise_gen) if spec.noisy_norm else None,
        )
        for transform in transforms
    ]


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or conv (out, in, k, k) weight, as torch counts
    them: in*k*k and out*k*k."""
    receptive = math.prod(weight.shape[2:])  # k*k, or 1 for a Linear
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def init_weight_and_bias(
    weight: torch.Tensor,
    bias: torch.Tensor,
    fan_in: int,
    fan_out: int,
    init: Init,
    gen: torch.Generator,
    std: float = 1.0,
) -> None:
    """Draw `weight` (and `bias`) in place by the scheme `init`, from `gen`.

    default: U(+-1/sqrt(fan_in)) for both, what torch.nn.Linear and Conv2d draw. The others zero
    the bias: standard, Glorot & Bengio's "standard" U(+-1/sqrt(fan_in)); xavier, their
    normalised U(+-sqrt(6 / (fan_in + fan_out))); kaiming, He et al.'s N(0, 2 / fan_in) for ReLU;
    normal, N(0, std^2).
    """
    if init == "default":
        bound = 1 / math.sqrt(fan_in)
        weight.uniform_(-bound, bound, generator=gen)
        bias.uniform_(-bound, bound, generator=gen)
        return
    if init == "standard":
        bound = 1 / math.sqrt(fan_in)
        weight.uniform_(-bound, bound, generator=gen)
    elif init == "xavier":
        bound = math.sqrt(6 / (fan_in + fan_out))
        weight.uniform_(-bound, bound, generator=gen)
    elif init == "kaiming":
        weight.normal_(0, math.sqrt(2 / fan_in), generator=gen)
    else:
        assert init == "normal", init
        weight.normal_(0, std, generator=gen)
    bias.zero_()


Layer = TypeVar("Layer", nn.Linear, nn.Conv2d)


def initialised(layer: Layer, spec: RunSpec, gen: torch.Generator) -> Layer:
    """`layer` with its weight and bias drawn by `spec.init` from `gen` (torch's fans)."""
    init_weight_and_bias(
        layer.weight, cast(torch.Tensor, layer.bias), *fans(layer.weight), spec.init, gen, spec.init_std
    )
    return layer
