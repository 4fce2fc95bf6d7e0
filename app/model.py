"""The network: an MLP of Linear -> Norm -> Activation blocks, and the four norm layers.

Each norm layer states its formula in its docstring and owns its parameters (gamma, beta,
running averages) so probes and instruments can read them; the arithmetic runs in torch's fused
kernels. Tests hold every layer to torch.nn's reference and to its formula. No I/O, no training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from app.spec import RunSpec

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


class BatchNorm(nn.Module):
    """Per-feature batch mean/variance, normalise, then learned gamma/beta (Ioffe & Szegedy).

    Training: y = (x - mean_batch) / sqrt(var_batch + eps) * gamma + beta, and the running
    averages move 10% of the way to this batch's mean and (unbiased) variance. Eval: the running
    averages stand in for the batch, so one example's output no longer depends on the others.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, features: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        if self.training and x.shape[0] == 1:
            # One example: its own mean, zero variance. torch refuses this batch; the formula
            # gives beta, which is what a learner should see (batch norm at batch size 1).
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        return F.layer_norm(x, self.gamma.shape, self.gamma, self.beta, EPS)


class GroupNorm(nn.Module):
    """Layer norm within each of `groups` equal slices of the features (Wu & He).

    groups = 1 is layer norm; groups = features normalises every unit on its own.
    """

    def __init__(self, features: int, groups: int) -> None:
        super().__init__()
        assert features % groups == 0, "groups must divide the features"
        self.groups = groups
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        return F.group_norm(x, self.groups, self.gamma, self.beta, EPS)


class RMSNorm(nn.Module):
    """Divide by the root mean square of the features; no re-centring (Zhang & Sennrich).

    y = x / sqrt(mean(x^2) + eps) * gamma
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        return F.rms_norm(x, self.gamma.shape, self.gamma, RMS_EPS)


class NoisyShift(nn.Module):
    """Santurkar et al. (2018), Fig. 2: a <- s*a + m after a norm layer, redrawn every step.

    Per layer and step: mu ~ U(-0.5, 0.5), sigma ~ U(1, 1.25); per unit: m ~ U(mu - 0.1, mu + 0.1),
    s ~ N(sigma, 0.1). The layer's inputs now shift all the time, on purpose. Training mode only;
    `resample` draws the next step's noise, so extra passes of one step see the same noise.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        return x * self.scale + self.shift if self.training else x


class Activation(nn.Module):
    """The nonlinearity as a module of its own, so probes can hook its input and output."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ACTIVATIONS[self.kind](x)

    def extra_repr(self) -> str:
        return self.kind


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "gelu": F.gelu,
    "linear": lambda x: x,
}


def build_norm(kind: str, features: int, groups: int) -> nn.Module:
    if kind == "batch":
        return BatchNorm(features)
    if kind == "layer":
        return LayerNorm(features)
    if kind == "group":
        return GroupNorm(features, groups)
    if kind == "rms":
        return RMSNorm(features)
    assert kind == "none", kind
    return nn.Identity()


class HiddenLayer(nn.Module):
    """Linear -> Norm -> Activation (norm before), or Linear -> Activation -> Norm (after).

    With noisy norm, the noise follows the norm: Linear -> Norm -> Noise -> Activation.
    """

    def __init__(
        self,
        linear: nn.Linear,
        norm: nn.Module,
        act: Activation,
        norm_first: bool,
        noise: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.linear, self.norm, self.act = linear, norm, act
        self.noise = noise if noise is not None else nn.Identity()
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        if self.norm_first:
            return self.act(self.noise(self.norm(x)))
        return self.noise(self.norm(self.act(x)))


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then a Linear read-out to the class logits."""

    def __init__(self, hidden: list[HiddenLayer], head: nn.Linear) -> None:
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
                weight=layer.linear.weight,
                norm=layer.norm,
            )
            for i, layer in enumerate(cast(list[HiddenLayer], list(self.hidden)))
        ]

    def resample_noise(self) -> None:
        for module in self.modules():
            if isinstance(module, NoisyShift):
                module.resample()


def build_model(spec: RunSpec, features: int, classes: int) -> MLP:
    """Build the MLP on the CPU; the same seed gives the same Linear weights for every norm."""
    gen = torch.Generator().manual_seed(spec.seed)
    sizes = [features] + [spec.width] * spec.depth + [classes]
    # All Linear layers are drawn first, in a fixed order, from their own generator: the norm
    # choice cannot change a single initial weight, which is what makes two runs comparable.
    linears = [_init_linear(nn.Linear(n_in, n_out), spec, gen) for n_in, n_out in pairwise(sizes)]
    noise_gen = torch.Generator().manual_seed(spec.seed + NOISE_SEED_OFFSET)
    hidden = [
        HiddenLayer(
            linear,
            build_norm(spec.norm, spec.width, spec.groups),
            Activation(spec.activation),
            norm_first=spec.norm_position == "before",
            noise=NoisyShift(spec.width, noise_gen) if spec.noisy_norm else None,
        )
        for linear in linears[:-1]
    ]
    return MLP(hidden, linears[-1])


@torch.no_grad()
def _init_linear(linear: nn.Linear, spec: RunSpec, gen: torch.Generator) -> nn.Linear:
    fan_out, fan_in = linear.weight.shape
    if spec.init == "default":
        bound = 1 / math.sqrt(fan_in)  # what torch.nn.Linear draws by default
        linear.weight.uniform_(-bound, bound, generator=gen)
        linear.bias.uniform_(-bound, bound, generator=gen)
        return linear
    if spec.init == "standard":
        bound = 1 / math.sqrt(fan_in)  # Glorot & Bengio's "standard" init: zero biases
        linear.weight.uniform_(-bound, bound, generator=gen)
    elif spec.init == "xavier":
        bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot & Bengio's normalised init
        linear.weight.uniform_(-bound, bound, generator=gen)
    elif spec.init == "kaiming":
        linear.weight.normal_(0, math.sqrt(2 / fan_in), generator=gen)  # He et al., for ReLU
    else:
        linear.weight.normal_(0, spec.init_std, generator=gen)
    linear.bias.zero_()
    return linear
