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
    relative_drifts,
    wasserstein1,
    wasserstein1_many,
)
from app.nets.mlp import build_mlp
from app.probes import Histogram, histogram_of
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


def _w1_by_dense_integration(a: Histogram, b: Histogram, points: int = 400_001) -> float:
    """The integral of |F_a - F_b| on a fine uniform grid, each CDF by interpolation at its edges."""
    grid = np.linspace(min(a.lo, b.lo), max(a.hi, b.hi), points)

    def cdf(h: Histogram) -> np.ndarray:
        edges = np.linspace(h.lo, h.hi, len(h.counts) + 1)
        return np.interp(grid, edges, np.concatenate([[0.0], np.cumsum(h.counts)]) / h.n)

    return float(np.trapezoid(np.abs(cdf(a) - cdf(b)), grid))


def test_w1_is_exact_where_the_cdfs_cross_and_batched_equals_one_at_a_time() -> None:
    gen = torch.Generator().manual_seed(2)
    # Same centre, different spreads: the CDFs cross; different bin counts and ranges too.
    pairs = [
        (
            histogram_of(torch.randn(3000, generator=gen), 64)[0],
            histogram_of(torch.randn(3000, generator=gen) * 3, 64)[0],
        ),
        (
            histogram_of(torch.rand(2000, generator=gen), 64)[0],
            histogram_of(torch.rand(500, generator=gen) * 0.5 + 0.2, 64)[0],
        ),
        (
            histogram_of(torch.randn(1000, generator=gen) - 4, 16)[0],
            histogram_of(torch.randn(4000, generator=gen) * 0.1 + 4, 16)[0],
        ),
        (
            histogram_of(torch.randn(100, generator=gen), 16)[0],
            histogram_of(torch.randn(100, generator=gen), 8)[0],
        ),
    ]
    together = wasserstein1_many([a for a, _ in pairs], [b for _, b in pairs])
    for (a, b), batched in zip(pairs, together, strict=True):
        assert batched == wasserstein1(a, b)
        assert batched == pytest.approx(_w1_by_dense_integration(a, b), rel=1e-6, abs=1e-9)
        assert wasserstein1(b, a) == pytest.approx(batched, rel=1e-12)
    drifts = relative_drifts([a for a, _ in pairs], [b for _, b in pairs])
    assert drifts == [relative_drift(a, b) for a, b in pairs]
    assert drifts[0] == pytest.approx(together[0] / pairs[0][1].std, rel=1e-12)


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
    model = build_mlp(RunSpec(depth=4, width=16, activation="relu", init="kaiming", norm=norm), 64, 10)
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
    fresh = build_mlp(RunSpec(depth=4, width=16, activation="relu", init="kaiming", norm=norm), 64, 10)
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
    model = build_mlp(RunSpec(depth=3, width=16, activation="relu", norm="batch"), 64, 10)
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
    model = build_mlp(RunSpec(depth=2, width=8, activation="tanh"), 64, 10)
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
