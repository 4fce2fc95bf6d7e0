"""The digits CNN: its image norms against torch.nn and their formulas, layers, seeding, taps, training."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, cast

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from app.datasets import load_dataset
from app.nets.cnn import CNN, build_cnn, channel_groups
from app.nets.layers import EPS, BatchNorm, GroupNorm, NoisyShift, NormedLayer, build_norm
from app.spec import RunSpec

NORMS = ("none", "batch", "layer", "group")


def _spec(**changes: Any) -> RunSpec:
    base = RunSpec(
        arch="cnn", depth=3, width=8, groups=4, norm="batch", norm_position="before", activation="relu"
    )
    return replace(base, **changes)


def _layers(model: CNN) -> list[NormedLayer]:
    return [layer for layer in model.layers if isinstance(layer, NormedLayer)]


def _affine(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    return cast(torch.Tensor, norm.gamma), cast(torch.Tensor, norm.beta)


def _randomise_affine(ours: nn.Module, ref: nn.BatchNorm2d | nn.GroupNorm, gen: torch.Generator) -> None:
    gamma, beta = _affine(ours)
    with torch.no_grad():
        gamma.copy_(torch.randn(gamma.shape, generator=gen))
        beta.copy_(torch.randn(beta.shape, generator=gen))
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)


def _images(gen: torch.Generator, batch: int = 6, channels: int = 8, side: int = 8) -> torch.Tensor:
    return torch.randn(batch, channels, side, side, generator=gen) * 3 + 1.5  # (batch, C, H, W)


def test_shapes_pool_and_head() -> None:
    for depth, side in [(1, 8), (2, 4), (5, 4)]:
        model = build_cnn(_spec(depth=depth, width=8), classes=10)
        assert model(torch.rand(3, 64)).shape == (3, 10)
        assert model.head.in_features == 8 * side * side
        convs = [layer.conv for layer in _layers(model)]
        assert [c.in_channels for c in convs] == [1] + [8] * (depth - 1)
        assert all(c.out_channels == 8 and c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)


def test_batch_norm_of_images_matches_torch_batch_norm_2d_in_training_and_eval() -> None:
    gen = torch.Generator().manual_seed(1)
    ours, ref = BatchNorm(8), nn.BatchNorm2d(8, eps=EPS, momentum=0.1)
    _randomise_affine(ours, ref, gen)
    for batch in (5, 2, 1, 7):  # running averages accumulate; one image is still H*W values
        x = _images(gen, batch)
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval()
    ref.eval()
    x = _images(gen, 3)
    torch.testing.assert_close(ours(x), ref(x))


def test_batch_norm_of_images_is_per_channel_over_batch_height_and_width() -> None:
    gen = torch.Generator().manual_seed(2)
    norm = build_norm("batch", 8, groups=4, images=True)
    gamma, beta = _affine(norm)
    with torch.no_grad():
        gamma.copy_(torch.randn(8, generator=gen))
        beta.copy_(torch.randn(8, generator=gen))
    x = _images(gen, 4)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + EPS) * gamma[:, None, None] + beta[:, None, None]
    torch.testing.assert_close(norm(x), expected)


def test_group_norm_matches_torch_group_norm() -> None:
    gen = torch.Generator().manual_seed(3)
    ours, ref = build_norm("group", 8, groups=4, images=True), nn.GroupNorm(4, 8, eps=EPS)
    _randomise_affine(ours, ref, gen)
    x = _images(gen)
    torch.testing.assert_close(ours(x), ref(x))
    # by hand: each example's (C/G, H, W) block
    gamma, beta = _affine(ours)
    grouped = x.view(6, 4, -1)  # (batch, groups, C/G * H * W)
    normed = (grouped - grouped.mean(2, keepdim=True)) / torch.sqrt(
        grouped.var(2, unbiased=False, keepdim=True) + EPS
    )
    torch.testing.assert_close(ours(x), normed.view_as(x) * gamma[:, None, None] + beta[:, None, None])


def test_layer_norm_is_group_norm_with_one_group_over_channels_height_width() -> None:
    gen = torch.Generator().manual_seed(4)
    ours, ref = build_norm("layer", 8, groups=4, images=True), nn.GroupNorm(1, 8, eps=EPS)
    assert isinstance(ours, GroupNorm) and ours.groups == 1
    _randomise_affine(ours, ref, gen)
    x = _images(gen)
    torch.testing.assert_close(ours(x), ref(x))
    gamma, beta = _affine(ours)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (batch, 1, 1, 1)
    var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + EPS) * gamma[:, None, None] + beta[:, None, None]
    torch.testing.assert_close(ours(x), expected)
    torch.testing.assert_close(ours(x[:2]), ours(x)[:2])  # no coupling between examples


def test_rms_norm_is_not_offered_for_images() -> None:
    with pytest.raises(AssertionError, match="rms"):
        build_norm("rms", 8, groups=4, images=True)
    with pytest.raises(AssertionError):
        build_cnn(_spec(norm="rms"), 10)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("position", ["before", "after"])
def test_forward_is_its_formula(norm: str, position: str) -> None:
    gen = torch.Generator().manual_seed(5)
    model = build_cnn(_spec(norm=norm, norm_position=position, depth=3, activation="tanh"), 10)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("gamma", "beta")):
                param.copy_(torch.randn(param.shape, generator=gen))
    x = torch.rand(6, 64, generator=gen)
    h = x.view(6, 1, 8, 8)
    for i, layer in enumerate(_layers(model), start=1):
        h = F.conv2d(h, layer.conv.weight, layer.conv.bias, padding=1)  # (batch, C, side, side)
        if position == "before":
            h = torch.tanh(_norm_formula(norm, layer.norm, h))
        else:
            h = _norm_formula(norm, layer.norm, torch.tanh(h))
        if i == 2:
            h = F.max_pool2d(h, 2)  # (batch, C, 4, 4)
    torch.testing.assert_close(model(x), F.linear(h.flatten(1), model.head.weight, model.head.bias))


def _norm_formula(kind: str, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The image norms by hand, in training mode; x: (batch, C, H, W)."""
    if kind == "none":
        return x
    dims = {"batch": (0, 2, 3), "layer": (1, 2, 3)}.get(kind)
    if dims is None:  # group: 4 groups
        grouped = x.view(x.shape[0], 4, -1)
        mean, var = grouped.mean(2, keepdim=True), grouped.var(2, unbiased=False, keepdim=True)
        normed = ((grouped - mean) / torch.sqrt(var + EPS)).view_as(x)
    else:
        mean, var = x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True)
        normed = (x - mean) / torch.sqrt(var + EPS)
    gamma, beta = _affine(norm)
    return normed * gamma[:, None, None] + beta[:, None, None]


@pytest.mark.parametrize("init", ["default", "xavier", "kaiming", "normal"])
def test_same_seed_same_weights_whatever_the_norm(init: str) -> None:
    def weights(spec: RunSpec) -> list[torch.Tensor]:
        model = build_cnn(spec, 10)
        return [p for name, p in model.named_parameters() if "norm" not in name]

    reference = weights(_spec(norm="none", init=init, init_std=0.1, seed=21))
    assert len(reference) == 2 * 3 + 2  # three convs and the head, weight and bias each
    for norm in NORMS:
        for position in ("before", "after"):
            for noisy in (False, True):
                spec = _spec(
                    norm=norm, norm_position=position, noisy_norm=noisy, init=init, init_std=0.1, seed=21
                )
                assert all(torch.equal(a, b) for a, b in zip(reference, weights(spec), strict=True))
    assert not torch.equal(reference[2], weights(_spec(norm="none", init=init, init_std=0.1, seed=22))[2])


def test_conv_init_schemes_use_fan_in_of_channels_times_kernel() -> None:
    width = 64
    fan_in, fan_out = width * 9, width * 9  # a hidden conv: 64 channels x 3 x 3 in and out
    convs = {init: _layers(build_cnn(_spec(width=width, init=init, init_std=0.3), 10))[1].conv for init in
             ("default", "xavier", "kaiming", "normal")}  # fmt: skip
    bound = 1 / math.sqrt(fan_in)
    assert convs["default"].weight.abs().max() <= bound
    assert convs["default"].weight.abs().max() > 0.95 * bound
    assert cast(torch.Tensor, convs["default"].bias).abs().max() <= bound
    xavier = math.sqrt(6 / (fan_in + fan_out))
    assert 0.95 * xavier < convs["xavier"].weight.abs().max() <= xavier
    assert convs["kaiming"].weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert convs["normal"].weight.std().item() == pytest.approx(0.3, rel=0.05)
    for init in ("xavier", "kaiming", "normal"):
        assert torch.equal(cast(torch.Tensor, convs[init].bias), torch.zeros(width))


def test_parameters_register_in_forward_order() -> None:
    before = [name for name, _ in build_cnn(_spec(depth=2, norm="batch"), 10).named_parameters()]
    assert before == [
        "layers.0.conv.weight", "layers.0.conv.bias", "layers.0.norm.gamma", "layers.0.norm.beta",
        "layers.1.conv.weight", "layers.1.conv.bias", "layers.1.norm.gamma", "layers.1.norm.beta",
        "head.weight", "head.bias",
    ]  # fmt: skip
    after = [name for name, _ in build_cnn(_spec(depth=2, norm_position="after"), 10).named_parameters()]
    assert after == before


def test_channel_groups_split_into_four_with_the_remainder_last() -> None:
    assert channel_groups(16) == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert channel_groups(6) == [(0, 1), (1, 2), (2, 3), (3, 6)]
    assert channel_groups(10) == [(0, 2), (2, 4), (4, 6), (6, 10)]
    assert channel_groups(3) == [(0, 1), (1, 2), (2, 3)]
    assert channel_groups(1) == [(0, 1)]


def test_taps_name_each_layers_channel_groups() -> None:
    model = build_cnn(_spec(depth=3, width=8, activation="sigmoid"), 10)
    taps = model.taps()
    assert [t.name for t in taps] == [
        f"conv{i}.ch{a}-{b}" for i in (1, 2, 3) for a, b in ((0, 1), (2, 3), (4, 5), (6, 7))
    ]
    for i, layer in enumerate(_layers(model)):
        for tap, channels in zip(taps[4 * i : 4 * i + 4], [(0, 2), (2, 4), (4, 6), (6, 8)], strict=True):
            assert tap.module is layer.act and tap.activation == "sigmoid"
            assert tap.weight is layer.conv.weight and tap.channels == channels
    assert [t.name for t in build_cnn(_spec(depth=1, width=3), 10).taps()] == [
        "conv1.ch0-0",
        "conv1.ch1-1",
        "conv1.ch2-2",
    ]


@pytest.mark.parametrize("position", ["before", "after"])
def test_tap_hooks_see_each_layers_pre_activation_and_activation(position: str) -> None:
    model = build_cnn(_spec(depth=3, width=8, norm="group", norm_position=position, activation="tanh"), 10)
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [
        layer.act.register_forward_hook(lambda _m, inputs, out, i=i: seen.__setitem__(i, (inputs[0], out)))
        for i, layer in enumerate(_layers(model))
    ]
    assert {id(t.module) for t in model.taps()} == {id(layer.act) for layer in _layers(model)}
    x = torch.rand(5, 64)
    model(x)
    for handle in handles:
        handle.remove()
    h = x.view(5, 1, 8, 8)
    for i, layer in enumerate(_layers(model)):
        pre, post = seen[i]
        assert pre.shape == (5, 8, 8 if i < 2 else 4, 8 if i < 2 else 4)
        conv = layer.conv(h)
        torch.testing.assert_close(pre, layer.norm(conv) if position == "before" else conv)
        torch.testing.assert_close(post, torch.tanh(pre))
        h = layer(h)
        if i == 1:
            h = F.max_pool2d(h, 2)


def test_noisy_norm_is_one_scale_and_shift_per_channel_in_training_only() -> None:
    model = build_cnn(_spec(depth=3, width=8, norm="batch", noisy_norm=True), 10)
    noises = [m for m in model.modules() if isinstance(m, NoisyShift)]
    assert len(noises) == 3
    model.resample_noise()
    layer = _layers(model)[0]
    noise = cast(NoisyShift, layer.noise)
    assert not torch.equal(noise.scale, torch.ones(8)) and not torch.equal(noise.shift, torch.zeros(8))
    x = torch.rand(4, 1, 8, 8)
    normed = layer.norm(layer.conv(x))
    expected = F.relu(normed * noise.scale.view(1, 8, 1, 1) + noise.shift.view(1, 8, 1, 1))
    torch.testing.assert_close(layer(x), expected)
    plain = build_cnn(_spec(depth=3, width=8, norm="batch"), 10)
    plain.load_state_dict(model.state_dict())
    model.eval()
    plain.eval()
    images = torch.rand(4, 64)
    torch.testing.assert_close(model(images), plain(images))  # eval: no noise


def _train(spec: RunSpec, batch: int, steps: int, optimiser: str, lr: float) -> tuple[float, float]:
    """Eval-mode and train-mode test accuracy after `steps` steps on the digits."""
    data = load_dataset("digits", 0.1, spec.seed)
    model = build_cnn(spec, data.classes)
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimiser == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    )
    gen = torch.Generator().manual_seed(spec.seed)
    for _ in range(steps):
        idx = torch.randint(0, len(data.x_train), (batch,), generator=gen)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        model.eval()
        eval_mode = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
        model.train()  # batch statistics of the test set itself (running averages already read)
        train_mode = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    return eval_mode, train_mode


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_trains_on_digits(norm: str) -> None:
    spec = _spec(depth=2, width=16, norm=norm)
    accuracy, _ = _train(spec, batch=64, steps=300, optimiser="adam", lr=1e-3)
    assert accuracy > 0.9  # chance is 0.1; measured 0.955-0.992 on seeds 0 and 1


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_norm_survives_a_batch_of_two_in_a_conv_net(seed: int) -> None:
    """Wu & He's set-up at toy size: SGD momentum 0.9, lr 0.1 * B / 32, eval mode. Unlike the MLP
    (BN 0.46 at B = 2 there), this CNN's batch norm does not collapse at B = 2: each channel's
    statistics pool batch x H x W = 128 or 32 values, not 2. Measured (depth 2, width 16, B = 32
    for 200 steps, B = 2 for 800; seeds 0/1): BN 0.96/0.97 at B = 32 and 0.97/0.95 at B = 2,
    GN 0.98/0.89 at B = 2; BN's train-mode and eval-mode accuracy within 0.01 of each other."""
    spec = _spec(depth=2, width=16, seed=seed)
    bn_32, _ = _train(replace(spec, norm="batch"), batch=32, steps=200, optimiser="sgd", lr=0.1)
    bn_2, bn_2_train_mode = _train(
        replace(spec, norm="batch"), batch=2, steps=800, optimiser="sgd", lr=0.1 * 2 / 32
    )
    gn_2, _ = _train(replace(spec, norm="group"), batch=2, steps=800, optimiser="sgd", lr=0.1 * 2 / 32)
    assert min(bn_32, bn_2, gn_2) > 0.8
    assert bn_2 > bn_32 - 0.08
    assert bn_2 > gn_2 - 0.08
    assert abs(bn_2 - bn_2_train_mode) < 0.05
