"""Instruments against independent computations: W1 on known histograms and samples, ICS against a
hand-written two-pass torch computation, the landscape probe leaving every weight bit-identical."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from app.instruments import (
    internal_covariate_shift,
    loss_landscape,
    parameters_of,
    relative_drift,
    wasserstein1,
)
from app.model import build_model
from app.probes import histogram_of
from app.spec import RunSpec


def test_w1_of_a_histogram_with_itself_is_zero_and_a_shift_is_the_shift() -> None:
    values = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    a, _ = histogram_of(values, 50)
    b, _ = histogram_of(values + 2.5, 50)
    assert wasserstein1(a, a) == pytest.approx(0, abs=1e-12)
    assert wasserstein1(a, b) == pytest.approx(2.5, rel=1e-6)
    assert relative_drift(b, a) == pytest.approx(2.5 / a.std, rel=1e-6)


def test_w1_matches_the_sample_formula() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5000, generator=gen)
    y = torch.randn(5000, generator=gen) * 2.0 + 0.7
    # For equal-size samples W1 is the mean gap between the sorted samples.
    exact = np.mean(np.abs(np.sort(x.numpy()) - np.sort(y.numpy())))
    ha, _ = histogram_of(x, 256)
    hb, _ = histogram_of(y, 256)
    bin_width = max(ha.hi - ha.lo, hb.hi - hb.lo) / 256
    assert wasserstein1(ha, hb) == pytest.approx(exact, abs=bin_width)


def test_w1_of_nothing_is_none() -> None:
    empty, _ = histogram_of(torch.full((4,), float("nan")), 8)
    full, _ = histogram_of(torch.randn(10), 8)
    assert wasserstein1(empty, full) is None and relative_drift(full, empty) is None


def _batch(features: int = 64, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.rand(n, features, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def _by_hand_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    model = copy.deepcopy(model)  # its own buffers: batch norm's running averages move
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return dict(model.named_parameters())[name].grad.detach().clone()


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_ics_matches_a_hand_written_two_pass_computation(norm: str) -> None:
    model = build_model(RunSpec(depth=4, width=16, activation="relu", init="kaiming", norm=norm), 64, 10)
    x, y = _batch()
    before = parameters_of(model)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.3 * p.grad  # one SGD step
    after = parameters_of(model)
    prefixes = [f"hidden.{i}." for i in range(4)]
    weights = [f"hidden.{i}.linear.weight" for i in range(4)]
    fresh = build_model(RunSpec(depth=4, width=16, activation="relu", init="kaiming", norm=norm), 64, 10)
    measured = internal_covariate_shift(fresh, before, after, x, y, weights)
    for i, weight in enumerate(weights):
        reference = copy.deepcopy(fresh)
        with torch.no_grad():
            for name, p in reference.named_parameters():
                p.copy_(after[name] if name.startswith(tuple(prefixes[:i])) and i > 0 else before[name])
        g = _by_hand_gradient(reference, x, y, weight)
        with torch.no_grad():
            for name, p in reference.named_parameters():
                p.copy_(before[name])
        g_before = _by_hand_gradient(reference, x, y, weight)
        assert measured[i].dist == pytest.approx((g - g_before).norm().item(), rel=1e-4, abs=1e-7)
        cos = F.cosine_similarity(g.flatten(), g_before.flatten(), dim=0).item()
        assert measured[i].cos == pytest.approx(cos, abs=1e-5)
    assert measured[0].dist == 0 and measured[0].cos == pytest.approx(1.0)


def test_landscape_leaves_every_weight_and_buffer_bit_identical() -> None:
    model = build_model(RunSpec(depth=3, width=16, activation="relu", norm="batch"), 64, 10)
    x, y = _batch()
    model(x)  # move the running averages away from their initial values
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    result = loss_landscape(model, parameters_of(model), x, y, lr=0.1)
    for name, p in model.named_parameters():
        assert torch.equal(p, params[name]) and p.grad is None
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name])
    assert result.loss_range >= 0 and result.grad_change > 0 and result.beta > 0


def test_landscape_matches_a_hand_computation() -> None:
    model = build_model(RunSpec(depth=2, width=8, activation="tanh"), 64, 10)
    x, y = _batch()
    lr = 0.5
    base = copy.deepcopy(model)
    base.zero_grad()
    F.cross_entropy(base(x), y).backward()
    g0 = {n: p.grad.clone() for n, p in base.named_parameters()}
    losses, changes, betas = [], [], []
    for m in (0.5, 1.0, 2.0, 3.0, 4.0):
        moved = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in moved.named_parameters():
                p -= m * lr * g0[n]
        loss = F.cross_entropy(moved(x), y)
        loss.backward()
        diff = torch.cat([(p.grad - g0[n]).flatten() for n, p in moved.named_parameters()]).norm().item()
        step = m * lr * torch.cat([g.flatten() for g in g0.values()]).norm().item()
        losses.append(loss.item())
        changes.append(diff)
        betas.append(diff / step)
    result = loss_landscape(model, parameters_of(model), x, y, lr=lr)
    assert result.loss_range == pytest.approx(max(losses) - min(losses), rel=1e-4)
    assert result.grad_change == pytest.approx(max(changes), rel=1e-4)
    assert result.beta == pytest.approx(max(betas), rel=1e-4)
