"""The shared layers: the norms against torch.nn and their formulas, the noise, the inits."""

from __future__ import annotations

import math
from typing import cast

import pytest
import torch
from torch import nn

from app.nets.layers import (
    EPS,
    RMS_EPS,
    Activation,
    BatchNorm,
    GroupNorm,
    LayerNorm,
    NoisyShift,
    RMSNorm,
    build_norm,
    fans,
    init_weight_and_bias,
    initialised,
    resample_noise,
)
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


def test_build_norm_gives_each_kind_and_the_image_variants() -> None:
    assert isinstance(build_norm("batch", 8, 4), BatchNorm)
    assert isinstance(build_norm("layer", 8, 4), LayerNorm)
    group = build_norm("group", 8, 4)
    assert isinstance(group, GroupNorm) and group.groups == 4
    assert isinstance(build_norm("rms", 8, 4), RMSNorm)
    assert isinstance(build_norm("none", 8, 4), nn.Identity)
    assert isinstance(build_norm("batch", 8, 4, images=True), BatchNorm)
    image_layer = build_norm("layer", 8, 4, images=True)  # Wu & He: over each example's (C, H, W)
    assert isinstance(image_layer, GroupNorm) and image_layer.groups == 1
    with pytest.raises(AssertionError, match="rms"):
        build_norm("rms", 8, 4, images=True)


def test_batch_norm_of_one_image_normalises_its_pixels() -> None:
    """The batch-of-one shortcut is for (batch, features) only: one image has H*W values per channel."""
    norm, ref = BatchNorm(3), nn.BatchNorm2d(3, eps=EPS)
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(norm(x), ref(x))
    torch.testing.assert_close(norm.running_var, ref.running_var)


def test_noisy_shift_is_one_scale_and_shift_per_feature_or_channel_in_training_only() -> None:
    noise = NoisyShift(3, torch.Generator().manual_seed(1))
    noise.resample()
    scale, shift = noise.scale, noise.shift
    assert not torch.equal(scale, torch.ones(3)) and not torch.equal(shift, torch.zeros(3))
    features = torch.randn(5, 3)
    torch.testing.assert_close(noise(features), features * scale + shift)
    images = torch.randn(5, 3, 4, 4)  # (batch, C, H, W): the channel's noise over all its pixels
    torch.testing.assert_close(noise(images), images * scale[:, None, None] + shift[:, None, None])
    noise.eval()
    assert noise(images) is images


def test_noisy_shift_draws_santurkar_et_al_s_distributions() -> None:
    noise = NoisyShift(20_000, torch.Generator().manual_seed(2))
    noise.resample()
    mu, sigma = noise.shift.mean().item(), noise.scale.mean().item()
    assert -0.5 <= mu <= 0.5 and 1.0 <= sigma <= 1.25
    assert (noise.shift - mu).abs().max().item() <= 0.1 + 1e-3  # m ~ U(mu - 0.1, mu + 0.1)
    assert noise.scale.std().item() == pytest.approx(0.1, rel=0.05)  # s ~ N(sigma, 0.1)


def test_resample_noise_redraws_every_noisy_shift_in_registration_order() -> None:
    def layers() -> nn.Sequential:
        gen = torch.Generator().manual_seed(3)
        return nn.Sequential(NoisyShift(4, gen), nn.Sequential(nn.ReLU(), NoisyShift(4, gen)))

    net, by_hand = layers(), layers()
    resample_noise(net)
    first, second = cast(NoisyShift, by_hand[0]), cast(NoisyShift, by_hand[1][1])
    first.resample()
    second.resample()
    for ours, expected in zip(net.buffers(), by_hand.buffers(), strict=True):
        assert torch.equal(ours, expected)
    resample_noise(nn.Linear(2, 2))  # nothing to redraw: no error


def test_fans_count_the_receptive_field() -> None:
    assert fans(nn.Linear(5, 7).weight) == (5, 7)
    assert fans(nn.Conv2d(3, 8, 3).weight) == (3 * 9, 8 * 9)


def _drawn(init: str, fan_in: int, fan_out: int, std: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    weight, bias = torch.empty(fan_out, fan_in), torch.empty(fan_out)
    init_weight_and_bias(weight, bias, fan_in, fan_out, init, torch.Generator().manual_seed(4), std)
    return weight, bias


@pytest.mark.parametrize(
    "init,fan_in,fan_out,bound,std",
    [
        ("default", 400, 300, 1 / math.sqrt(400), 1 / math.sqrt(3 * 400)),
        ("standard", 400, 300, 1 / math.sqrt(400), 1 / math.sqrt(3 * 400)),
        ("xavier", 400, 300, math.sqrt(6 / 700), math.sqrt(2 / 700)),
        ("kaiming", 400, 300, None, math.sqrt(2 / 400)),
        ("normal", 400, 300, None, 0.37),
    ],
)
def test_init_schemes_draw_their_distributions_from_the_fans_given(
    init: str, fan_in: int, fan_out: int, bound: float | None, std: float
) -> None:
    weight, bias = _drawn(init, fan_in, fan_out, std=0.37)
    assert weight.std().item() == pytest.approx(std, rel=0.02)
    if bound is not None:
        assert bound * 0.99 < weight.abs().max().item() <= bound
    if init == "default":  # PyTorch's default draws the bias as the weight
        assert 0 < bias.abs().max().item() <= 1 / math.sqrt(fan_in)
    else:
        assert torch.count_nonzero(bias).item() == 0


def test_initialised_uses_torch_s_fans_and_the_spec_s_scheme() -> None:
    spec = RunSpec(init="xavier", seed=5)
    conv = initialised(nn.Conv2d(4, 6, 3), spec, torch.Generator().manual_seed(5))
    weight, bias = torch.empty(6, 4, 3, 3), torch.empty(6)
    init_weight_and_bias(weight, bias, 4 * 9, 6 * 9, "xavier", torch.Generator().manual_seed(5))
    assert torch.equal(conv.weight, weight) and torch.equal(conv.bias, bias)
