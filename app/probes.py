"""Probes: forward hooks on each activation, turned into per-layer histograms and statistics."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from app.nets import BatchNorm, Tap

PERCENTILES = (0.15, 0.50, 0.85)
# Histograms and their statistics summarise the first examples of the (shuffled) batch: at most
# MAX_SUMMARY_VALUES values per tensor, and at most FRAME_SUMMARY_VALUES over a frame's pre- and
# post-activations together, so a frame of a wide or deep net summarises as many values as an
# 8-layer one (bench/bench_training.py). Up to 8 taps each tensor gets 8192 values, 16 taps 4096 and
# 24 taps 2730 (at 24 layers this saves ~0.5 ms of a ~4.8 ms frame): percentiles of 2730 values
# are within ~0.03 std of the batch's, and the tallest bin of a 64-bin ridge row varies by ~8.5%
# from frame to frame (7% at 4096 values, 5% at 8192), about a pixel on a projector.
MAX_SUMMARY_VALUES = 8192
FRAME_SUMMARY_VALUES = 16 * MAX_SUMMARY_VALUES
MIN_SUMMARY_VALUES = 2048
SATURATION_FRACTION = 0.05  # saturated: derivative below 5% of its maximum
GELU_DEAD_BELOW = -3.0  # GELU(x) > -0.005 and its slope < 0.012 below this: effectively off


@dataclass(slots=True)
class Histogram:
    """Uniform-bin histogram of the finite values over their true range, with summary stats.

    A value: never changed once made (not frozen only because a frozen dataclass takes ~4x as
    long to build, and a frame builds two per layer)."""

    lo: float
    hi: float
    counts: list[int]
    mean: float | None
    std: float | None  # population std (ddof 0), as numpy.std
    p15: float | None
    p50: float | None
    p85: float | None
    n: int  # how many finite values were counted

    def to_wire(self) -> dict[str, Any]:
        return {
            "lo": self.lo,
            "hi": self.hi,
            "counts": self.counts,
            "mean": self.mean,
            "std": self.std,
            "p15": self.p15,
            "p50": self.p50,
            "p85": self.p85,
            "n": self.n,
        }


@dataclass(slots=True)
class LayerStats:
    """What one hidden layer's nonlinearity saw (pre) and produced (post) on one batch.

    Not frozen: the Trainer fills in the instrument fields of the frame it is building (a
    `dataclasses.replace` per layer cost ~15 us, 0.4 ms a frame at 24 layers)."""

    name: str
    pre: Histogram
    post: Histogram
    saturated: float  # fraction of unit-examples with derivative below 5% of its maximum
    dead: float  # fraction of units off for the whole batch
    nonfinite: int  # NaN/inf values in pre and post together, over the whole batch
    # Instruments, None when off (filled in by the Trainer):
    grad: Histogram | None = None  # dL/d(pre-activation)
    weight_grad: Histogram | None = None  # dL/dW of the layer's Linear
    grad_norm: float | None = None  # ||dL/dW||
    update_ratio: float | None = None  # ||W_after - W_before|| / ||W_before|| of this step
    drift: float | None = None  # W1 to the pre-activation `drift_lag` frames ago, / its std then
    batch_norm: dict[str, float] | None = None  # running averages against this batch's statistics

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pre": self.pre.to_wire(),
            "post": self.post.to_wire(),
            "saturated": self.saturated,
            "dead": self.dead,
            "nonfinite": self.nonfinite,
            "grad": self.grad.to_wire() if self.grad is not None else None,
            "weight_grad": self.weight_grad.to_wire() if self.weight_grad is not None else None,
            "grad_norm": self.grad_norm,
            "update_ratio": self.update_ratio,
            "drift": self.drift,
            "batch_norm": self.batch_norm,
        }


def histogram_of(values: torch.Tensor, bins: int) -> tuple[Histogram, int]:
    """Histogram and statistics of the finite entries of `values`; also returns the non-finite count."""
    flat = values.detach().reshape(-1).float()
    lo_t, hi_t = torch.aminmax(flat)
    lo, hi = lo_t.item(), hi_t.item()
    nonfinite = 0
    # NaN and inf reach the extremes, so finite extremes mean every value is finite: the mask
    # (a full extra pass) is needed only on the rare diverging steps.
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = torch.isfinite(flat)
        nonfinite = int(flat.numel() - finite.sum().item())
        flat = flat[finite]
        if flat.numel() == 0:
            return Histogram(0.0, 0.0, [0] * bins, None, None, None, None, None, 0), nonfinite
        lo_t, hi_t = torch.aminmax(flat)
        lo, hi = lo_t.item(), hi_t.item()
    if _too_narrow(lo, hi):
        # A constant tensor (a dead layer, say): a tiny range around the value keeps bins valid.
        pad = max(1e-6, abs(lo) * 1e-6)
        lo, hi = lo - pad, hi + pad
    counts = torch.histc(flat, bins=bins, min=lo, max=hi)
    mean = flat.mean()
    std = (flat - mean).pow(2).mean().sqrt()  # population std; ~2x faster than torch.std_mean here
    p15, p50, p85 = percentiles(flat)
    return (
        Histogram(
            lo=lo,
            hi=hi,
            counts=counts.to(torch.int64).tolist(),
            mean=mean.item(),
            std=std.item(),
            p15=p15,
            p50=p50,
            p85=p85,
            n=flat.numel(),
        ),
        nonfinite,
    )


def histograms_of(tensors: Sequence[torch.Tensor], bins: int) -> list[tuple[Histogram, int]]:
    """`histogram_of` of every tensor, in order, computed together: the same results, far fewer ops.

    Tensors holding the same number of values become the rows of one (k, n) matrix, summarised
    all at once: one sort, one histogram search and three host syncs per matrix instead of ~20 ops
    and ~6 syncs per tensor, which at a frame's sizes cost more than the arithmetic. Rows whose
    ends are not finite or that are (nearly) constant, both rare, are left to `histogram_of`.
    Results equal histogram_of's bit for bit on one intra-op thread, as runs use; with more, torch
    splits the sum of a tensor over 32k values, so its mean and std may differ in the last bit.
    """
    flats = [values.detach().reshape(-1) for values in tensors]
    flats = [flat if flat.dtype == torch.float32 else flat.float() for flat in flats]
    groups: dict[tuple[int, torch.device], list[int]] = {}
    for i, flat in enumerate(flats):
        groups.setdefault((flat.numel(), flat.device), []).append(i)
    done: dict[int, tuple[Histogram, int] | None] = {}
    for (n, _), members in groups.items():
        if n > 1:
            rows = torch.stack([flats[i] for i in members])
            mean, std = _moments(rows)
            done.update(zip(members, _summarise_sorted(_sort_rows(rows), mean, std, bins), strict=True))
    return [
        found if (found := done.get(i)) is not None else histogram_of(flats[i], bins)
        for i in range(len(flats))
    ]


def _moments(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's mean and population std, (k,) each: the same reductions, in the same order, as
    histogram_of's."""
    mean = rows.mean(dim=1)
    return mean, (rows - mean[:, None]).pow_(2).mean(dim=1).sqrt_()


def _sort_rows(rows: torch.Tensor) -> torch.Tensor:
    """`rows` (k, n) sorted along each row: in place on the CPU."""
    if rows.device.type == "cpu":
        # numpy's SIMD sort of 8k floats takes ~25 us; np.partition with the six order
        # statistics the percentiles need falls back to a scalar introselect, ~170 us.
        rows.numpy().sort(axis=1)
        return rows
    return torch.sort(rows, dim=1).values


def _summarise_sorted(
    ordered: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, bins: int
) -> list[tuple[Histogram, int] | None]:
    """`histogram_of` of each sorted row of `ordered` (k, n), which it overwrites, given each row's
    mean and std; None for rows it leaves to histogram_of."""
    k, n = ordered.shape
    device = ordered.device
    # Sorted, -inf comes first and NaN or inf last: a row is finite exactly when its ends are.
    lo_t, hi_t = ordered[:, 0].clone(), ordered[:, -1].clone()  # (k,)
    lows, highs, means, stds = torch.stack([lo_t, hi_t, mean, std]).tolist()
    plain = [
        j
        for j in range(k)
        if math.isfinite(lows[j]) and math.isfinite(highs[j]) and not _too_narrow(lows[j], highs[j])
    ]
    g = len(plain)
    if g == 0:
        return [None] * k
    if g < k:
        keep = torch.tensor(plain, device=device)
        ordered, lo_t, hi_t = ordered[keep], lo_t[keep], hi_t[keep]
    if device.type == "cpu":
        quantiles = _interpolate(ordered.numpy()).tolist()  # (g, 3)
    else:
        qs = torch.tensor(PERCENTILES, device=device)
        quantiles = torch.quantile(ordered, qs, dim=1).T.tolist()  # as percentiles() does on a GPU
    # torch.histc's binning, in its float32 arithmetic: bin = floor((x - lo) * bins / (hi - lo)),
    # x == hi in the last bin. The position is monotonic in x, so along a sorted row bin b starts
    # where the first position >= b stands, and a bin's count is the gap to the next bin's start.
    position = ordered.sub_(lo_t[:, None]).mul_(bins).div_((hi_t - lo_t)[:, None])  # (g, n) in [0, bins]
    inner_edges = torch.arange(1, bins, dtype=position.dtype, device=device)
    starts = torch.searchsorted(position, inner_edges.repeat(g, 1))  # (g, bins - 1)
    bounds = torch.cat([starts.new_zeros(g, 1), starts, starts.new_full((g, 1), n)], dim=1)
    counts = bounds.diff(dim=1).tolist()  # (g, bins)
    out: list[tuple[Histogram, int] | None] = [None] * k
    for row, j in enumerate(plain):
        p15, p50, p85 = quantiles[row]
        out[j] = (
            Histogram(lows[j], highs[j], counts[row], means[j], stds[j], p15, p50, p85, n),
            0,
        )
    return out


def _too_narrow(lo: float, hi: float) -> bool:
    """A range that histogram_of widens around the value (a constant tensor, say)."""
    return hi - lo < 1e-12 * max(1.0, abs(lo)) or hi == lo


def _interpolate(ordered: np.ndarray, qs: tuple[float, ...] = PERCENTILES) -> np.ndarray:
    """`percentiles` of each sorted row of `ordered` (k, n): the same order statistics, the same
    float64 interpolation."""
    n = ordered.shape[1]
    columns = []
    for q in qs:
        position = q * (n - 1)
        below = int(math.floor(position))
        lower = ordered[:, below].astype(np.float64)
        upper = ordered[:, min(below + 1, n - 1)].astype(np.float64)
        columns.append(lower + (position - below) * (upper - lower))
    return np.stack(columns, axis=1)


def percentiles(flat: torch.Tensor, qs: tuple[float, ...] = PERCENTILES) -> list[float]:
    """Exact percentiles with numpy's default (linear) interpolation between order statistics.

    On the CPU a partial sort that finds just the needed order statistics (numpy's introselect)
    is 4-6x faster than torch.quantile's full sort; on a GPU torch's sort is the fast path.
    """
    if flat.device.type != "cpu":
        return torch.quantile(flat, torch.tensor(qs, device=flat.device)).tolist()
    n = flat.numel()
    positions = [q * (n - 1) for q in qs]
    below = [int(math.floor(p)) for p in positions]
    ranks = sorted({k for b in below for k in (b, min(b + 1, n - 1))})
    picked = np.partition(flat.numpy(), ranks)
    order = {k: float(picked[k]) for k in ranks}
    return [
        order[b] + (p - b) * (order[min(b + 1, n - 1)] - order[b])
        for p, b in zip(positions, below, strict=True)
    ]


def saturated_fraction(activation: str | None, post: torch.Tensor) -> float:
    """Fraction of entries where the activation's derivative is below 5% of its maximum."""
    return _floats([_saturated_share(activation, post)])[0]


def dead_fraction(activation: str | None, pre: torch.Tensor, post: torch.Tensor) -> float:
    """Fraction of units that are off for every example of the batch.

    A unit is one feature of a (batch, features) tensor, or one channel-position of a conv map."""
    return _floats(_dead_shares([activation], [pre], [post]))[0]


def _saturated_share(activation: str | None, post: torch.Tensor) -> torch.Tensor | None:
    """`saturated_fraction` as a 0-d tensor, without a host sync; None where it is 0 by definition."""
    if activation == "sigmoid":
        slope = post * (1 - post)  # sigma' = sigma (1 - sigma), at most 1/4
        return (slope < SATURATION_FRACTION * 0.25).float().mean()
    if activation == "tanh":
        return (1 - post * post < SATURATION_FRACTION).float().mean()  # tanh' = 1 - tanh^2, at most 1
    return None


def _dead_shares(
    activations: Sequence[str | None], pres: Sequence[torch.Tensor], posts: Sequence[torch.Tensor]
) -> list[torch.Tensor | None]:
    """`dead_fraction` of every tap as 0-d tensors, without a host sync; None where it is 0 by
    definition.

    A unit is off for the whole batch exactly when its largest value is: 0 for ReLU, whose output
    is never negative, below GELU_DEAD_BELOW for GELU's input (NaN, which a column max keeps,
    counts as on either way). A column max is several times faster than `(x == 0).all(dim=0)`;
    taps with the same activation and number of units (every layer of an MLP) then share one
    comparison and one mean."""
    columns: dict[tuple[str, int], list[tuple[int, torch.Tensor]]] = {}
    for i, activation in enumerate(activations):
        if activation in ("relu", "gelu"):
            values = posts[i] if activation == "relu" else pres[i]
            top = values.flatten(1).amax(dim=0)  # (units,)
            columns.setdefault((activation, top.numel()), []).append((i, top))
    out: list[torch.Tensor | None] = [None] * len(activations)
    for (activation, _), members in columns.items():
        tops = torch.stack([top for _, top in members])  # (taps, units)
        off = tops == 0 if activation == "relu" else tops < GELU_DEAD_BELOW
        for (i, _), share in zip(members, off.float().mean(dim=1), strict=True):
            out[i] = share
    return out


def _floats(shares: list[torch.Tensor | None]) -> list[float]:
    """Each share as a float, 0 for None or NaN (an empty tensor), with one host sync for all."""
    return _floats_and_values(shares, [])[0]


def _floats_and_values(
    shares: list[torch.Tensor | None], raw: list[torch.Tensor]
) -> tuple[list[float], list[float]]:
    """`_floats` of `shares` and the 0-d tensors `raw` as they are (NaN stays NaN): one host sync."""
    present = [share for share in shares if share is not None]
    stacked = present + raw
    values = iter(torch.stack(stacked).tolist() if stacked else [])
    out = []
    for share in shares:
        value = next(values) if share is not None else 0.0
        out.append(0.0 if math.isnan(value) else value)
    return out, list(values)


def summary_values(taps: int) -> int:
    """How many values a probe of `taps` taps summarises per tensor (see FRAME_SUMMARY_VALUES)."""
    share = FRAME_SUMMARY_VALUES // max(1, 2 * taps)
    return max(MIN_SUMMARY_VALUES, min(MAX_SUMMARY_VALUES, share))


def _summarised_rows(values: torch.Tensor, limit: int) -> int:
    """How many first examples of a (batch, ...) tensor hold at most `limit` values (at least one)."""
    return max(1, limit // max(1, math.prod(values.shape[1:])))


def _first_examples(values: torch.Tensor, limit: int) -> torch.Tensor:
    """The first examples of a (batch, ...) tensor holding at most `limit` values (at least one)."""
    rows = _summarised_rows(values, limit)
    return values if rows >= values.shape[0] else values[:rows]


def _nonfinite_count(values: torch.Tensor) -> int:
    return int((~torch.isfinite(values)).sum().item())


def _select(values: torch.Tensor, tap: Tap) -> torch.Tensor:
    return values if tap.channels is None else values[:, tap.channels[0] : tap.channels[1]]


class ActivationProbe:
    """Forward hooks on every tap's module that keep its input and output while armed.

    Arm it before the forward pass of a step you want to look at; `collect` then turns what the
    hooks kept into one LayerStats per tap and disarms. Call `remove` when the run ends.
    """

    def __init__(self, taps: list[Tap], capture_grads: bool = False) -> None:
        self.armed = False
        self.capture_grads = capture_grads  # also keep dL/d(pre) from the backward pass
        self.taps = taps
        self.names = [tap.name for tap in taps]
        self.summary_values = summary_values(len(taps))
        # Several taps may read one module (a conv layer's channel groups): hook each module once.
        self._modules: list[nn.Module] = []
        self._slot: list[int] = []
        for tap in taps:
            found = next((i for i, m in enumerate(self._modules) if m is tap.module), None)
            if found is None:
                self._modules.append(tap.module)
                found = len(self._modules) - 1
            self._slot.append(found)
        self._captured: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self._modules)
        self._grads: list[torch.Tensor | None] = [None] * len(self._modules)
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self._modules)]

    def _hook(self, index: int) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def keep_grad(grad: torch.Tensor) -> None:
            self._grads[index] = grad.detach()

        def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if self.armed:
                self._captured[index] = (inputs[0].detach(), output.detach())
                if self.capture_grads and inputs[0].requires_grad:
                    inputs[0].register_hook(keep_grad)  # fires during this pass's backward only

        return keep

    def collect(self, bins: int) -> list[LayerStats]:
        self.armed = False
        pres, posts, grads = [], [], []
        for tap, slot in zip(self.taps, self._slot, strict=True):
            captured, grad = self._captured[slot], self._grads[slot]
            assert captured is not None, "collect() needs an armed forward pass first"
            pres.append(_select(captured[0], tap))
            posts.append(_select(captured[1], tap))
            grads.append(_select(grad, tap) if grad is not None else None)
        # Every tap's tensors in one call: per tensor, the ops and syncs cost more than the arithmetic.
        limit = self.summary_values
        summarised = [_first_examples(values, limit) for values in pres + posts]
        summarised += [_first_examples(grad, limit) for grad in grads if grad is not None]
        hists = iter(histograms_of(summarised, bins))
        pre_hists = [next(hists) for _ in self.taps]
        post_hists = [next(hists) for _ in self.taps]
        # The fractions and the non-finite counts see the whole batch, with one host sync for all.
        taps = len(self.taps)
        shares = [_saturated_share(tap.activation, posts[i]) for i, tap in enumerate(self.taps)]
        shares += _dead_shares([tap.activation for tap in self.taps], pres, posts)
        # The histograms counted the non-finite values of the first `rows` examples; the examples
        # they left out are counted only where the whole tensor's sum is not finite (NaN and inf
        # make a sum non-finite; a sum is ~10x cheaper than torch.isfinite(...).all() on the CPU).
        # An activation tap's post is its nonlinearity of pre, value by value, finite wherever pre
        # is: only its pre is summed. (MLP 24 x 256, batch 128: ~0.1-0.5 ms a frame.)
        tensors = pres + posts  # tensor i < taps is tap i's pre, taps + i its post
        left_out = [
            (i, rows)
            for i, values in enumerate(tensors)
            if (rows := _summarised_rows(values, limit)) < len(values)
        ]
        summed = [i for i, _ in left_out if i < taps or self.taps[i - taps].activation is None]
        fractions, totals = _floats_and_values(shares, [tensors[i].sum(dtype=torch.float32) for i in summed])
        saturated, dead = fractions[:taps], fractions[taps:]
        finite = dict(zip(summed, map(math.isfinite, totals), strict=True))
        uncounted = [0] * (2 * taps)
        for i, rows in left_out:
            if not (finite[i] if i in finite else finite.get(i - taps, False)):
                uncounted[i] = _nonfinite_count(tensors[i][rows:])
        layers = []
        for i, tap in enumerate(self.taps):
            (pre_hist, pre_bad), (post_hist, post_bad) = pre_hists[i], post_hists[i]
            layers.append(
                LayerStats(
                    name=tap.name,
                    pre=pre_hist,
                    post=post_hist,
                    saturated=saturated[i],
                    dead=dead[i],
                    nonfinite=pre_bad + uncounted[i] + post_bad + uncounted[taps + i],
                    grad=next(hists)[0] if grads[i] is not None else None,
                )
            )
        self._captured = [None] * len(self._modules)
        self._grads = [None] * len(self._modules)
        return layers

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._captured = [None] * len(self._modules)
        self._grads = [None] * len(self._modules)


class BatchNormProbe:
    """While armed, compares each batch norm's running averages with the statistics of its batch.

    Reports per tap fed by a batch norm the RMS gap between running and batch means, and the mean
    ratio of running to batch variances (1 when they agree), over the tap's features or channels.
    The running averages already include this batch's 10%.
    """

    def __init__(self, taps: list[Tap]) -> None:
        self.armed = False
        self.taps = taps
        self.norms: list[BatchNorm] = []
        for tap in taps:
            if isinstance(tap.norm, BatchNorm) and all(tap.norm is not m for m in self.norms):
                self.norms.append(tap.norm)
        self._gaps: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.norms)
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.norms)]

    def _hook(self, index: int) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if not (self.armed and module.training):
                return
            assert isinstance(module, BatchNorm)
            with torch.no_grad():
                x = inputs[0]
                dims = [d for d in range(x.dim()) if d != 1]  # all but the features/channels
                mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)  # (features,)
                squared_gap = (module.running_mean - mean).pow(2)
                ratio = module.running_var / (var + 1e-5)
                self._gaps[index] = (squared_gap, ratio)

        return keep

    def collect(self) -> list[dict[str, float] | None]:
        """One reading per tap: None where no batch norm feeds it (or it saw no training batch)."""
        self.armed = False
        out: list[dict[str, float] | None] = []
        for tap in self.taps:
            index = next((i for i, m in enumerate(self.norms) if m is tap.norm), None)
            gaps = self._gaps[index] if index is not None else None
            if gaps is None:
                out.append(None)
                continue
            squared_gap, ratio = gaps
            if tap.channels is not None:
                a, b = tap.channels
                squared_gap, ratio = squared_gap[a:b], ratio[a:b]
            out.append({"mean_gap": squared_gap.mean().sqrt().item(), "var_ratio": ratio.mean().item()})
        self._gaps = [None] * len(self.norms)
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
