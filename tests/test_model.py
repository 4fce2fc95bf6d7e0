"""The hand-written norm layers against torch.nn, and the builder's seeding promises."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from app.model import EPS, RMS_EPS, Activation, BatchNorm, GroupNorm, LayerNorm, RMSNorm, build_model
from app.spec import RunSpec


def _randomise_affine(ours: nn.Module, ref: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        gamma = torch.randn(ours.gamma.shape, generator=gen)
        ours.gamma.copy_(gamma)
        ref.weight.copy_(gamma)
        if hasattr(ours, "beta"):
            beta = torch.randn(ours.beta.shape, generator=gen)
            ours.beta.copy_(beta)
            ref.bias.copy_(beta)


def test_batch_norm_matches_torch_in_training_and_eval() -> None:
    gen = torch.Generator().manual_seed(1)
    ours, ref = BatchNorm(12), nn.BatchNorm1d(12, eps=EPS, momentum=0.1)
    _randomise_affine(ours, ref, gen)
    for _ in range(5):  # running averages accumulate over several batches
        x = torch.randn(32, 12, generator=gen) * 3 + 1.5
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval()
    ref.eval()
    x = torch.randn(7, 12, generator=gen)
    torch.testing.assert_close(ours(x), ref(x))


def test_batch_norm_is_its_formula() -> None:
    gen = torch.Generator().manual_seed(6)
    norm = BatchNorm(5)
    with torch.no_grad():
        norm.gamma.copy_(torch.randn(5, generator=gen))
        norm.beta.copy_(torch.randn(5, generator=gen))
    x = torch.randn(40, 5, generator=gen) * 4 - 3
    mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + EPS) * norm.gamma + norm.beta
    torch.testing.assert_close(norm(x), expected)
    # running averages: 10% of the way to the batch mean and the unbiased batch variance
    torch.testing.assert_close(norm.running_mean, 0.1 * mean)
    torch.testing.assert_close(norm.running_var, 0.9 + 0.1 * x.var(dim=0, unbiased=True))


def test_batch_norm_of_one_example_gives_beta() -> None:
    norm = BatchNorm(4)
    with torch.no_grad():
        norm.beta.copy_(torch.tensor([1.0, -2.0, 0.5, 0.0]))
    x = torch.randn(1, 4, requires_grad=True)
    out = norm(x)
    torch.testing.assert_close(out, norm.beta.detach()[None])
    out.sum().backward()  # still part of the graph
    assert x.grad is not None and torch.count_nonzero(x.grad) == 0


def test_batch_norm_gradients_match_torch() -> None:
    gen = torch.Generator().manual_seed(2)
    ours, ref = BatchNorm(6), nn.BatchNorm1d(6, eps=EPS)
    _randomise_affine(ours, ref, gen)
    x = torch.randn(16, 6, generator=gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    weights = torch.randn(16, 6, generator=gen)
    (ours(x1) * weights).sum().backward()
    (ref(x2) * weights).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.gamma.grad, ref.weight.grad)


def test_layer_norm_matches_torch() -> None:
    gen = torch.Generator().manual_seed(3)
    ours, ref = LayerNorm(20), nn.LayerNorm(20, eps=EPS)
    _randomise_affine(ours, ref, gen)
    x = torch.randn(9, 20, generator=gen) * 5 - 2
    torch.testing.assert_close(ours(x), ref(x))


def test_layer_and_group_norm_are_their_formulas() -> None:
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(6, 12, generator=gen) * 2 + 1
    mean, var = x.mean(dim=1, keepdim=True), x.var(dim=1, unbiased=False, keepdim=True)
    torch.testing.assert_close(LayerNorm(12)(x), (x - mean) / torch.sqrt(var + EPS))
    grouped = x.reshape(6, 3, 4)  # 3 groups of 4 features
    g_mean, g_var = grouped.mean(dim=2, keepdim=True), grouped.var(dim=2, unbiased=False, keepdim=True)
    expected = ((grouped - g_mean) / torch.sqrt(g_var + EPS)).reshape(6, 12)
    torch.testing.assert_close(GroupNorm(12, 3)(x), expected)
    torch.testing.assert_close(GroupNorm(12, 1)(x), LayerNorm(12)(x))


def test_layer_norm_has_no_batch_coupling() -> None:
    norm = LayerNorm(8)
    x = torch.randn(4, 8)
    torch.testing.assert_close(norm(x)[:1], norm(x[:1]))


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_group_norm_matches_torch(groups: int) -> None:
    gen = torch.Generator().manual_seed(4)
    ours, ref = GroupNorm(16, groups), nn.GroupNorm(groups, 16, eps=EPS)
    _randomise_affine(ours, ref, gen)
    x = torch.randn(5, 16, generator=gen) * 2 + 0.7
    torch.testing.assert_close(ours(x), ref(x))


def test_rms_norm_matches_its_formula_and_torch() -> None:
    gen = torch.Generator().manual_seed(5)
    ours, ref = RMSNorm(10), nn.RMSNorm(10, eps=RMS_EPS)
    _randomise_affine(ours, ref, gen)
    x = torch.randn(6, 10, generator=gen) * 3 + 1
    by_formula = x / torch.sqrt((x**2).mean(dim=1, keepdim=True) + RMS_EPS) * ours.gamma
    torch.testing.assert_close(ours(x), by_formula)
    torch.testing.assert_close(ours(x), ref(x))
    # RMS norm does not re-centre: a shifted input keeps a non-zero mean.
    assert ours(torch.full((2, 10), 3.0)).mean().item() == pytest.approx(ours.gamma.mean().item(), rel=1e-4)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "gelu", "linear"])
def test_activation_module_applies_its_function(activation: str) -> None:
    x = torch.linspace(-4, 4, 33)
    expected = {
        "sigmoid": torch.sigmoid(x),
        "tanh": torch.tanh(x),
        "relu": torch.relu(x),
        "gelu": nn.functional.gelu(x),
        "linear": x,
    }[activation]
    torch.testing.assert_close(Activation(activation)(x), expected)


def _linear_weights(spec: RunSpec) -> list[torch.Tensor]:
    model = build_model(spec, features=64, classes=10)
    return [
        p.detach().clone() for m in model.modules() if isinstance(m, nn.Linear) for p in (m.weight, m.bias)
    ]


@pytest.mark.parametrize("init", ["default", "xavier", "kaiming", "normal"])
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
        model = build_model(RunSpec(init=init, init_std=0.37, depth=2, width=width), 64, 10)
        weight = model.hidden[1].linear.weight
        assert weight.std().item() == pytest.approx(expected_std, rel=0.03), init


@pytest.mark.parametrize("init", ["default", "standard", "xavier", "kaiming", "normal"])
def test_only_the_default_init_draws_biases(init: str) -> None:
    # Glorot & Bengio's "standard" init is PyTorch's weight draw with zero biases; PyTorch's
    # default also draws the biases from U(+-1/sqrt(fan_in)), which floors a deep tanh net's std.
    model = build_model(RunSpec(init=init, depth=3, width=64), 64, 10)
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
    before = build_model(RunSpec(norm="layer", norm_position="before", activation="relu", depth=1), 64, 10)
    after = build_model(RunSpec(norm="layer", norm_position="after", activation="relu", depth=1), 64, 10)
    layer_b, layer_a = before.hidden[0], after.hidden[0]
    torch.testing.assert_close(layer_b(x), torch.relu(layer_b.norm(layer_b.linear(x))))
    torch.testing.assert_close(layer_a(x), layer_a.norm(torch.relu(layer_a.linear(x))))
    # Norm after ReLU re-centres each example: its mean over features is 0.
    assert layer_a(x).mean(dim=1).abs().max().item() < 1e-5


def test_model_shapes_and_layer_names() -> None:
    model = build_model(RunSpec(depth=7, width=24), features=2, classes=2)
    assert model(torch.randn(5, 2)).shape == (5, 2)
    assert [tap.name for tap in model.taps()] == [f"layer{i}" for i in range(1, 8)]
