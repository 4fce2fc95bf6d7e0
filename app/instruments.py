"""Instruments that test the covariate-shift story: distribution drift, Santurkar et al.'s internal
covariate shift (Def. 2.1) and their loss-landscape smoothness probe (Fig. 4).

Every function here is pure: it reads parameters and a batch and leaves the model, its buffers
and its optimizer exactly as it found them (the extra passes run through `functional_call` on
copies of the buffers). Given the run's stop flag, the multi-pass ones raise
lifecycle.Interrupted between passes once it is set.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from app.lifecycle import stop_point
from app.nets import Network
from app.objective import cross_entropy
from app.probes import Histogram

Params = dict[str, torch.Tensor]
LANDSCAPE_MULTIPLIERS = (0.5, 1.0, 2.0, 3.0, 4.0)


def wasserstein1(a: Histogram, b: Histogram) -> float | None:
    """1-Wasserstein distance between two histograms, each uniform within its bins (see
    `wasserstein1_many`)."""
    return wasserstein1_many([a], [b])[0]


def relative_drift(now: Histogram, before: Histogram) -> float | None:
    """How far a distribution moved, in units of its earlier spread: W1(now, before) / std(before)."""
    return relative_drifts([now], [before])[0]


def relative_drifts(now: Sequence[Histogram], before: Sequence[Histogram]) -> list[float | None]:
    """`relative_drift` of each pair, computed together (one frame's layers in a few array ops)."""
    distances = wasserstein1_many(now, before)
    return [d / b.std if d is not None and b.std else None for d, b in zip(distances, before, strict=True)]


def wasserstein1_many(a: Sequence[Histogram], b: Sequence[Histogram]) -> list[float | None]:
    """W1(a[i], b[i]) for each pair; None where either histogram is empty.

    W1 = integral of |F_a(x) - F_b(x)| dx. A histogram uniform within its bins has a CDF that is
    linear between its bin edges, so on the merged edges of both, F_a - F_b is linear on every
    interval and the integral of its absolute value is exact: h (|g0| + |g1|) / 2 where the gap
    keeps its sign, h (g0^2 + g1^2) / (2 (|g0| + |g1|)) where it crosses zero. Pairs with the same
    number of bins (a frame's layers) are computed as one (pairs, edges) array.
    """
    out: list[float | None] = [None] * len(a)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.n > 0 and y.n > 0:
            groups.setdefault((len(x.counts), len(y.counts)), []).append(i)
    for members in groups.values():
        xs, ys = _Binned([a[i] for i in members]), _Binned([b[i] for i in members])
        grid = np.sort(np.concatenate([xs.edges(), ys.edges()], axis=1), axis=1)  # (pairs, edges)
        gap = xs.cdf(grid) - ys.cdf(grid)
        g0, g1, h = gap[:, :-1], gap[:, 1:], np.diff(grid, axis=1)
        size = np.abs(g0) + np.abs(g1)
        crossing = g0 * g1 < 0
        # Where the gap crosses zero, size > 0; elsewhere the first form is used (and is exact).
        area = np.where(crossing, (g0 * g0 + g1 * g1) / np.where(crossing, size, 1.0), size)
        for i, distance in zip(members, (h * area).sum(axis=1) / 2, strict=True):
            out[i] = float(distance)
    return out


class _Binned:
    """Histograms with the same number of bins as arrays: lo, hi and n (k, 1), counts (k, bins)."""

    def __init__(self, histograms: Sequence[Histogram]) -> None:
        ends = np.array([(h.lo, h.hi, h.n) for h in histograms], dtype=np.float64)
        self.lo, self.hi, self.n = ends[:, 0:1], ends[:, 1:2], ends[:, 2:3]
        self.counts = np.array([h.counts for h in histograms], dtype=np.float64)
        self.bins = self.counts.shape[1]

    def edges(self) -> np.ndarray:
        """Each histogram's bin edges, (k, bins + 1)."""
        return self.lo + (self.hi - self.lo) * (np.arange(self.bins + 1) / self.bins)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Each histogram's CDF at its row of points `x` (k, points), values uniform within bins."""
        position = np.clip((x - self.lo) / (self.hi - self.lo) * self.bins, 0.0, self.bins)  # 0 at lo
        index = np.minimum(position.astype(np.int64), self.bins - 1)
        below = np.cumsum(self.counts, axis=1) - self.counts  # values in the bins before each bin
        picked = np.take_along_axis
        return (
            picked(below, index, axis=1) + (position - index) * picked(self.counts, index, axis=1)
        ) / self.n


def _loss_and_grads(
    model: Network,
    params: Params,
    buffers: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    wanted: Sequence[str],
) -> tuple[float, list[torch.Tensor]]:
    """Loss and gradients w.r.t. the `wanted` parameters at `params`, leaving the model untouched."""
    leaves = {name: value.detach().requires_grad_(name in wanted) for name, value in params.items()}
    # A fresh copy of the buffers per pass: batch norm updates its running averages in place.
    state = {**leaves, **{name: b.clone() for name, b in buffers.items()}}
    assert isinstance(model, nn.Module)  # every Network is one
    logits = functional_call(model, state, (x,))
    loss = cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, [leaves[name] for name in wanted])
    return loss.item(), [g.detach() for g in grads]


@dataclass(frozen=True)
class ShiftMeasure:
    """Santurkar et al.'s ICS of one layer: ||G - G'|| and cos(G, G')."""

    dist: float
    cos: float

    def to_wire(self) -> dict[str, float]:
        return {"dist": self.dist, "cos": self.cos}


def internal_covariate_shift(
    model: Network,
    before: Params,
    after: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    weight_names: Sequence[str],
    stop: threading.Event | None = None,
) -> list[ShiftMeasure]:
    """Santurkar et al. (2018), Def. 2.1, for each weight W_i on the same batch (x, y):
    G = dL/dW_i at the parameters `before` this step; G' = dL/dW_i once the layers below W_i
    have taken their step to `after`. "Below" is every parameter registered before W_i's module
    (networks register their modules in forward order), so W_i's own bias and norm stay put."""
    buffers = dict(model.named_buffers())
    order = list(before)
    _, grads = _loss_and_grads(model, before, buffers, x, y, weight_names)
    out = []
    for weight_name, grad in zip(weight_names, grads, strict=True):
        stop_point(stop)  # one extra pass per layer: a stop is seen within one
        owner = weight_name.rsplit(".", 1)[0] + "."
        first = next(i for i, name in enumerate(order) if name.startswith(owner))
        below = set(order[:first])
        shifted = {name: (after[name] if name in below else value) for name, value in before.items()}
        _, (shifted_grad,) = _loss_and_grads(model, shifted, buffers, x, y, [weight_name])
        g, g_shift = grad.flatten(), shifted_grad.flatten()
        dist = (g - g_shift).norm().item()
        denominator = g.norm().item() * g_shift.norm().item()
        # Rounding can carry a cosine of parallel vectors a hair past 1.
        cos = min(1.0, max(-1.0, (g @ g_shift).item() / denominator)) if denominator > 0 else 1.0
        out.append(ShiftMeasure(dist=dist, cos=cos))
    return out


@dataclass(frozen=True)
class Landscape:
    """Santurkar et al. Fig. 4 along the gradient: loss range, largest gradient change, effective beta."""

    loss_range: float
    grad_change: float
    beta: float

    def to_wire(self) -> dict[str, float]:
        return {"loss_range": self.loss_range, "grad_change": self.grad_change, "beta": self.beta}


def loss_landscape(
    model: Network,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    multipliers: Sequence[float] = LANDSCAPE_MULTIPLIERS,
    stop: threading.Event | None = None,
) -> Landscape:
    """Step from `params` along -gradient by m x lr for each multiplier m; at each point record the
    loss and how much the gradient changed. beta = max ||grad(w') - grad(w)|| / ||w' - w||."""
    buffers = dict(model.named_buffers())
    names = [name for name, value in params.items() if value.dtype.is_floating_point]
    _, grads = _loss_and_grads(model, params, buffers, x, y, names)
    g0 = torch.cat([g.flatten() for g in grads])
    losses, changes, betas = [], [], []
    for m in multipliers:
        stop_point(stop)
        moved = dict(params)
        for name, g in zip(names, grads, strict=True):
            moved[name] = params[name] - m * lr * g
        loss, moved_grads = _loss_and_grads(model, moved, buffers, x, y, names)
        change = (torch.cat([g.flatten() for g in moved_grads]) - g0).norm().item()
        distance = m * lr * g0.norm().item()
        losses.append(loss)
        changes.append(change)
        betas.append(change / distance if distance > 0 else 0.0)
    return Landscape(loss_range=max(losses) - min(losses), grad_change=max(changes), beta=max(betas))


def parameters_of(model: Network) -> Params:
    """A detached copy of every parameter, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}
