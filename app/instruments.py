"""Instruments that test the covariate-shift story: distribution drift, Santurkar et al.'s internal
covariate shift (Def. 2.1) and their loss-landscape smoothness probe (Fig. 4).

Every function here is pure: it reads parameters and a batch and leaves the model, its buffers
and its optimizer exactly as it found them (the extra passes run through `functional_call` on
copies of the buffers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from app.objective import cross_entropy
from app.probes import Histogram

Params = dict[str, torch.Tensor]
LANDSCAPE_MULTIPLIERS = (0.5, 1.0, 2.0, 3.0, 4.0)


def wasserstein1(a: Histogram, b: Histogram) -> float | None:
    """1-Wasserstein distance between two histograms, each uniform within its bins.

    W1 = integral of |F_a(x) - F_b(x)| dx; both CDFs are piecewise linear between their bin
    edges, so integrating on the union of the edges is exact but where the CDFs cross.
    """
    if a.n == 0 or b.n == 0:
        return None
    edges_a = np.linspace(a.lo, a.hi, len(a.counts) + 1)
    edges_b = np.linspace(b.lo, b.hi, len(b.counts) + 1)
    grid = np.union1d(np.union1d(edges_a, edges_b), np.linspace(min(a.lo, b.lo), max(a.hi, b.hi), 513))
    cdf_a = np.interp(grid, edges_a, np.concatenate([[0.0], np.cumsum(a.counts)]) / a.n)
    cdf_b = np.interp(grid, edges_b, np.concatenate([[0.0], np.cumsum(b.counts)]) / b.n)
    gap = np.abs(cdf_a - cdf_b)
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(grid)) / 2)


def relative_drift(now: Histogram, before: Histogram) -> float | None:
    """How far a distribution moved, in units of its earlier spread: W1(now, before) / std(before)."""
    distance = wasserstein1(now, before)
    if distance is None or not before.std:
        return None
    return distance / before.std


def _loss_and_grads(
    model: nn.Module,
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
    model: nn.Module,
    before: Params,
    after: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    weight_names: Sequence[str],
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
    model: nn.Module,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    multipliers: Sequence[float] = LANDSCAPE_MULTIPLIERS,
) -> Landscape:
    """Step from `params` along -gradient by m x lr for each multiplier m; at each point record the
    loss and how much the gradient changed. beta = max ||grad(w') - grad(w)|| / ||w' - w||."""
    buffers = dict(model.named_buffers())
    names = [name for name, value in params.items() if value.dtype.is_floating_point]
    _, grads = _loss_and_grads(model, params, buffers, x, y, names)
    g0 = torch.cat([g.flatten() for g in grads])
    losses, changes, betas = [], [], []
    for m in multipliers:
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


def parameters_of(model: nn.Module) -> Params:
    """A detached copy of every parameter, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}
