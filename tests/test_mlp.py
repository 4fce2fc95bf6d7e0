"""The MLP: seeding, init scales and biases, the order of norm and activation, taps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from app.nets.layers import NoisyShift, NormedLayer
from app.nets.mlp import build_mlp
from app.spec import RunSpec


def _linear_weights(spec: RunSpec) -> list[torch.Tensor]:
    model = build_mlp(spec, features=64, classes=10)
    return [
        p.detach().clone() for m in model.modules() if isinstance(m, nn.Linear) for p in (m.weight, m.bias)
    ]


@pytest.mark.parametrize("init", ["default", "standard", "xavier", "kaiming", "normal"])
def test_same_seed_same_initial_linear_weights_whatever_the_norm(init: str) -> None:
    base = _linear_weights(RunSpec(seed=11, init=init, norm="none", depth=5, width=32))
    for norm in ["batch", "layer", "group", "rms"]:
        for position in ["before", "after"]:
            other = _linear_weights(
                RunSpec(seed=11, init=init, norm=norm, norm_position=position, depth=5, width=32)
            )
            assert len(other) == len(base)
            for a, b in zip(base, other, strict=True):
                assert torch.equal(a, b), (norm, position)
    different_seed = _linear_weights(RunSpec(seed=12, init=init, depth=5, width=32))
    assert not torch.equal(base[0], different_seed[0])


def test_init_schemes_have_their_scales() -> None:
    width = 512
    for init, expected_std in [
        ("xavier", math.sqrt(2 / (width + width))),  # U(+-a) has std a/sqrt(3)
        ("kaiming", math.sqrt(2 / width)),
        ("normal", 0.37),
        ("default", 1 / math.sqrt(3 * width)),
        ("standard", 1 / math.sqrt(3 * width)),
    ]:
        model = build_mlp(RunSpec(init=init, init_std=0.37, depth=2, width=width), 64, 10)
        weight = model.hidden[1].linear.weight
        assert weight.std().item() == pytest.approx(expected_std, rel=0.03), init


@pytest.mark.parametrize("init", ["default", "standard", "xavier", "kaiming", "normal"])
def test_only_the_default_init_draws_biases(init: str) -> None:
    # Glorot & Bengio's "standard" init is PyTorch's weight draw with zero biases; PyTorch's
    # default also draws the biases from U(+-1/sqrt(fan_in)), which floors a deep tanh net's std.
    model = build_mlp(RunSpec(init=init, depth=3, width=64), 64, 10)
    for layer in model.hidden:
        bias, fan_in = layer.linear.bias, layer.linear.weight.shape[1]
        if init == "default":
            assert bias.abs().max().item() <= 1 / math.sqrt(fan_in) and bias.abs().min().item() > 0
        else:
            assert torch.count_nonzero(bias).item() == 0, init
        if init in ("default", "standard"):
            assert layer.linear.weight.abs().max().item() <= 1 / math.sqrt(fan_in)


def test_norm_position_orders_the_layer() -> None:
    x = torch.randn(32, 64)
    before = build_mlp(RunSpec(norm="layer", norm_position="before", activation="relu", depth=1), 64, 10)
    after = build_mlp(RunSpec(norm="layer", norm_position="after", activation="relu", depth=1), 64, 10)
    layer_b, layer_a = before.hidden[0], after.hidden[0]
    torch.testing.assert_close(layer_b(x), torch.relu(layer_b.norm(layer_b.linear(x))))
    torch.testing.assert_close(layer_a(x), layer_a.norm(torch.relu(layer_a.linear(x))))
    # Norm after ReLU re-centres each example: its mean over features is 0.
    assert layer_a(x).mean(dim=1).abs().max().item() < 1e-5


def test_model_shapes_and_layer_names() -> None:
    model = build_mlp(RunSpec(depth=7, width=24), features=2, classes=2)
    assert model(torch.randn(5, 2)).shape == (5, 2)
    assert [tap.name for tap in model.taps()] == [f"layer{i}" for i in range(1, 8)]


@pytest.mark.parametrize("position", ["before", "after"])
def test_parameters_register_in_forward_order(position: str) -> None:
    model = build_mlp(RunSpec(depth=2, width=8, norm="batch", norm_position=position, noisy_norm=True), 2, 2)
    assert [name for name, _ in model.named_parameters()] == [
        "hidden.0.linear.weight", "hidden.0.linear.bias", "hidden.0.norm.gamma", "hidden.0.norm.beta",
        "hidden.1.linear.weight", "hidden.1.linear.bias", "hidden.1.norm.gamma", "hidden.1.norm.beta",
        "head.weight", "head.bias",
    ]  # fmt: skip
    layer = model.hidden[0]
    assert isinstance(layer, NormedLayer) and layer.transform is layer.linear
    forward = {"before": ["linear", "norm", "noise", "act"], "after": ["linear", "act", "norm", "noise"]}
    assert [name for name, _ in layer.named_children()] == forward[position]


def test_noisy_norm_follows_every_norm_in_training_only() -> None:
    spec = RunSpec(depth=3, width=16, norm="layer", activation="tanh", noisy_norm=True)
    model = build_mlp(spec, 2, 2)
    noises = [m for m in model.modules() if isinstance(m, NoisyShift)]
    assert len(noises) == 3
    model.resample_noise()
    layer = model.hidden[0]
    x = torch.randn(5, 2)
    expected = torch.tanh(layer.norm(layer.linear(x)) * noises[0].scale + noises[0].shift)
    torch.testing.assert_close(layer(x), expected)
    layer.eval()
    torch.testing.assert_close(layer(x), torch.tanh(layer.norm(layer.linear(x))))
