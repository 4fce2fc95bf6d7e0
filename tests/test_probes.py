"""Histograms and statistics against numpy; saturation and dead-unit fractions by hand."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from app.nets import Tap
from app.nets.cnn import build_cnn
from app.nets.mlp import build_mlp
from app.probes import (
    FRAME_SUMMARY_VALUES,
    GELU_DEAD_BELOW,
    MAX_SUMMARY_VALUES,
    SATURATION_FRACTION,
    ActivationProbe,
    dead_fraction,
    histogram_of,
    histograms_of,
    saturated_fraction,
    summary_values,
)
from app.spec import RunSpec
from app.training import Trainer

DISTRIBUTIONS = {
    "normal": lambda g: torch.randn(128, 64, generator=g),
    "drifted-wide": lambda g: torch.randn(64, 100, generator=g) * 40 + 250,
    "tight": lambda g: torch.randn(64, 32, generator=g) * 1e-3 - 0.5,
    "skewed": lambda g: torch.rand(256, 16, generator=g) ** 6,
    "saturated-sigmoid": lambda g: torch.sigmoid(torch.randn(64, 50, generator=g) * 12),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("bins", [8, 40, 64])
def test_histogram_matches_numpy(name: str, bins: int) -> None:
    values = DISTRIBUTIONS[name](torch.Generator().manual_seed(bins))
    hist, nonfinite = histogram_of(values, bins)
    ref = values.double().numpy().ravel()
    assert nonfinite == 0
    assert hist.lo == pytest.approx(ref.min(), rel=1e-6, abs=1e-6)
    assert hist.hi == pytest.approx(ref.max(), rel=1e-6, abs=1e-6)
    expected, _ = np.histogram(values.numpy().ravel(), bins=bins, range=(hist.lo, hist.hi))
    assert sum(hist.counts) == ref.size == hist.n
    # Float32 bin edges may place a value on the other side of an edge: allow a handful.
    assert np.abs(np.array(hist.counts) - expected).sum() <= 4
    np.testing.assert_allclose(
        [hist.p15, hist.p50, hist.p85], np.percentile(ref, [15, 50, 85]), rtol=1e-5, atol=1e-6
    )
    assert hist.mean == pytest.approx(ref.mean(), rel=1e-5, abs=1e-6)
    assert hist.std == pytest.approx(ref.std(), rel=1e-4, abs=1e-7)
    assert hist.lo <= hist.p15 <= hist.p50 <= hist.p85 <= hist.hi


def test_histogram_skips_and_counts_non_finite_values() -> None:
    values = torch.tensor([1.0, 2.0, float("nan"), 3.0, float("inf"), -float("inf"), 4.0])
    hist, nonfinite = histogram_of(values, 4)
    assert nonfinite == 3
    assert hist.n == 4 and sum(hist.counts) == 4
    assert (hist.lo, hist.hi) == (1.0, 4.0)
    assert hist.counts == np.histogram([1, 2, 3, 4], bins=4, range=(1, 4))[0].tolist()
    assert hist.mean == pytest.approx(2.5)


def test_histogram_of_nothing_finite_is_empty_not_an_error() -> None:
    hist, nonfinite = histogram_of(torch.full((3, 3), float("nan")), 10)
    assert nonfinite == 9 and hist.n == 0 and hist.counts == [0] * 10
    assert hist.mean is None and hist.p50 is None


def test_constant_tensor_gets_a_tiny_range_around_its_value() -> None:
    hist, _ = histogram_of(torch.zeros(16, 8), 20)
    assert hist.lo < 0 < hist.hi and hist.hi - hist.lo < 1e-5
    assert sum(hist.counts) == 128 and max(hist.counts) == 128
    assert hist.std == 0 and hist.p15 == hist.p85 == 0


def test_saturated_fraction_by_hand() -> None:
    pre = torch.tensor([[-10.0, -2.0, 0.0, 2.0, 10.0]])
    # sigmoid' = s(1-s) < 0.0125 only at |x| > ~4.37; tanh' = 1 - tanh^2 < 0.05 at |x| > ~2.18
    assert saturated_fraction("sigmoid", torch.sigmoid(pre)) == pytest.approx(2 / 5)
    assert saturated_fraction("tanh", torch.tanh(pre)) == pytest.approx(2 / 5)
    assert saturated_fraction("tanh", torch.tanh(torch.tensor([[2.3, 2.1]]))) == pytest.approx(1 / 2)
    assert saturated_fraction("relu", torch.relu(pre)) == 0.0


def test_dead_fraction_counts_units_off_for_the_whole_batch() -> None:
    pre = torch.tensor([[-1.0, 2.0, -3.0, -5.0], [-2.0, -1.0, 0.5, -4.0]])  # (batch 2, units 4)
    assert dead_fraction("relu", pre, torch.relu(pre)) == pytest.approx(2 / 4)  # units 0 and 3
    assert dead_fraction("gelu", pre, torch.nn.functional.gelu(pre)) == pytest.approx(1 / 4)  # unit 3
    assert dead_fraction("tanh", pre, torch.tanh(pre)) == 0.0


def test_probe_sees_the_activation_input_and_output() -> None:
    model = build_mlp(RunSpec(depth=3, width=16, activation="tanh", norm="batch"), 2, 2)
    probe = ActivationProbe(model.taps())
    x = torch.randn(32, 2)
    probe.armed = True
    model(x)
    layers = probe.collect(bins=16)
    assert [layer.name for layer in layers] == ["layer1", "layer2", "layer3"]
    # By hand: layer 1's pre-activation is BN(Linear(x)), its post-activation tanh of that.
    first = model.hidden[0]
    with torch.no_grad():
        pre = first.norm(first.linear(x))
    expected, _ = histogram_of(pre, 16)
    assert layers[0].pre == expected
    assert layers[0].post == histogram_of(torch.tanh(pre), 16)[0]
    # Batch norm before the activation: each layer's pre-activation has mean ~0, std ~1.
    for layer in layers:
        assert abs(layer.pre.mean) < 1e-5 and layer.pre.std == pytest.approx(1, abs=1e-3)
    assert not probe.armed
    probe.remove()
    probe.armed = True
    model(x)
    assert probe._captured == [None, None, None], "a removed probe must hook nothing"


def test_wide_layers_are_summarised_from_their_first_examples() -> None:
    model = build_mlp(RunSpec(depth=1, width=256, activation="relu"), 2, 2)
    probe = ActivationProbe(model.taps())
    x = torch.randn(128, 2)
    probe.armed = True
    model(x)
    (layer,) = probe.collect(bins=32)
    rows = MAX_SUMMARY_VALUES // 256
    with torch.no_grad():
        pre = model.hidden[0].linear(x)
    assert layer.pre.n == rows * 256 == MAX_SUMMARY_VALUES
    assert layer.pre == histogram_of(pre[:rows], 32)[0]
    # the fractions still see the whole batch
    assert layer.dead == dead_fraction("relu", pre, torch.relu(pre))


def test_a_deep_net_shares_the_frame_budget_between_its_layers() -> None:
    """16 layers x 128 units: each tensor is summarised from 4096 values (32 examples), so the
    frame's pre- and post-activations hold FRAME_SUMMARY_VALUES values in all; the fractions
    still see the whole batch."""
    assert [summary_values(taps) for taps in (1, 8, 12, 16, 24, 64)] == [8192, 8192, 5461, 4096, 2730, 2048]
    model = build_mlp(RunSpec(depth=16, width=128, activation="tanh"), 2, 2)
    taps = model.taps()
    probe = ActivationProbe(taps)
    x = torch.randn(128, 2, generator=torch.Generator().manual_seed(4))
    probe.armed = True
    model(x)
    layers = probe.collect(bins=32)
    assert {layer.pre.n for layer in layers} == {layer.post.n for layer in layers} == {4096}
    assert sum(layer.pre.n + layer.post.n for layer in layers) == FRAME_SUMMARY_VALUES
    with torch.no_grad():
        pre = model.hidden[0].linear(x)
    assert layers[0].pre == histogram_of(pre[:32], 32)[0]
    assert layers[0].post == histogram_of(torch.tanh(pre[:32]), 32)[0]
    assert layers[0].saturated == saturated_fraction("tanh", torch.tanh(pre))  # the whole batch


def _mixed_rows(g: torch.Generator) -> list[torch.Tensor]:
    """Tensors of several sizes, shapes and dtypes: plain, wide, tight, shifted, constant, non-finite."""
    with_nan = torch.randn(32, 16, generator=g)
    with_nan[3, 5] = float("nan")
    with_inf = torch.randn(512, generator=g) * 3
    with_inf[7], with_inf[9] = float("inf"), -float("inf")
    nothing_finite = torch.full((512,), float("nan"))
    return [
        torch.randn(32, 16, generator=g),  # 512 values, as every tensor of the first group
        torch.randn(32, 16, generator=g) * 500,  # wide
        torch.randn(512, generator=g) * 1e-4 + 3,  # tight
        torch.randn(16, 32, generator=g) * 40 + 250,  # shifted
        torch.relu(torch.randn(512, generator=g)),  # half exact zeros (a ReLU's output)
        torch.zeros(512),  # constant: histogram_of's tiny range around it
        (torch.rand(512, generator=g) + 1) * 1e-20,  # a range too narrow to bin: widened as a constant
        with_nan,
        with_inf,
        nothing_finite,
        torch.round(torch.randn(512, generator=g) * 4) / 4,  # many ties, values on bin edges
        torch.randn(100, generator=g),  # other lengths, a group of their own
        torch.randn(100, generator=g).double() * 7,  # float64 in, summarised in float32 as histogram_of
        torch.randn(64, 24, generator=g).t(),  # not contiguous
        torch.randn(2, generator=g),
        torch.randn(1, generator=g),
        torch.randn(4096, generator=g).exp(),  # skewed, long right tail
    ]


@pytest.mark.parametrize("bins", [8, 40, 64, 256])
def test_histograms_of_equals_histogram_of_tensor_by_tensor(bins: int) -> None:
    tensors = _mixed_rows(torch.Generator().manual_seed(bins))
    assert histograms_of(tensors, bins) == [histogram_of(t, bins) for t in tensors]


@pytest.mark.parametrize("bins", [8, 40, 64])
def test_histograms_of_matches_numpy(bins: int) -> None:
    tensors = _mixed_rows(torch.Generator().manual_seed(100 + bins))
    for values, (hist, nonfinite) in zip(tensors, histograms_of(tensors, bins), strict=True):
        ref = values.float().double().numpy().ravel()
        assert nonfinite == int((~np.isfinite(ref)).sum())
        ref = ref[np.isfinite(ref)]
        assert hist.n == ref.size == sum(hist.counts)
        if ref.size == 0:
            assert hist.mean is None and hist.counts == [0] * bins
            continue
        assert hist.lo <= ref.min() and hist.hi >= ref.max()
        if (hist.lo, hist.hi) == (ref.min(), ref.max()):
            expected, _ = np.histogram(ref, bins=bins, range=(hist.lo, hist.hi))
            assert np.abs(np.array(hist.counts) - expected).sum() <= 4  # float32 edges vs float64 ones
        else:  # widened around a (near-)constant: the middle edge, on the values, may go either way
            assert hist.counts[bins // 2 - 1] + hist.counts[bins // 2] == ref.size
        np.testing.assert_allclose(
            [hist.p15, hist.p50, hist.p85], np.percentile(ref, [15, 50, 85]), rtol=1e-5, atol=1e-6
        )
        assert hist.mean == pytest.approx(ref.mean(), rel=1e-5, abs=1e-6)
        assert hist.std == pytest.approx(ref.std(), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("bins", [8, 40, 64])
def test_histograms_of_bins_as_torch_histc_on_and_beside_every_edge(bins: int) -> None:
    g = torch.Generator().manual_seed(bins)
    rows = []
    for lo, hi in [(0.0, 1.0), (-3.7, 11.3), (250.0, 250.001), (-1e-3, 0.0)]:
        edges = torch.linspace(lo, hi, bins + 1)  # exactly where torch.histc's bins meet
        beside = [edges, torch.nextafter(edges, edges - 1), torch.nextafter(edges, edges + 1)]
        inside = torch.cat(beside + [torch.empty(200).uniform_(lo, hi, generator=g)])
        rows.append(inside.clamp(edges[0], edges[-1]))  # x == hi must land in the last bin
    for values, (hist, _) in zip(rows, histograms_of(rows, bins), strict=True):
        expected = torch.histc(values, bins, hist.lo, hist.hi).to(torch.int64).tolist()
        assert (hist.lo, hist.hi) == (values.min().item(), values.max().item())
        assert hist.counts == expected


def _fractions_as_first_written(
    activation: str | None, pre: torch.Tensor, post: torch.Tensor
) -> tuple[float, float]:
    """Saturated and dead fractions as masks over the whole batch, one mean and one sync each."""
    saturated = dead = 0.0
    if activation == "sigmoid":
        saturated = (post * (1 - post) < SATURATION_FRACTION * 0.25).float().mean().item()
    if activation == "tanh":
        saturated = (1 - post * post < SATURATION_FRACTION).float().mean().item()
    if activation == "relu":
        dead = (post.flatten(1) == 0).all(dim=0).float().mean().item()
    if activation == "gelu":
        dead = (pre.flatten(1) < GELU_DEAD_BELOW).all(dim=0).float().mean().item()
    return saturated, dead


def _nonfinite_in(values: torch.Tensor) -> int:
    """How many NaN/inf values the whole tensor holds, by numpy."""
    return int((~np.isfinite(values.detach().numpy())).sum())


def _by_hand(taps: list[Tap], model: torch.nn.Module, x: torch.Tensor, bins: int) -> list[dict[str, object]]:
    """What collect should report for each tap, from hooks of our own and the single-tensor path."""
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        inputs[0].retain_grad()
        seen[id(module)] = (inputs[0], output)

    handles = [tap.module.register_forward_hook(keep) for tap in taps]
    model.zero_grad()
    model(x).logsumexp(dim=1).sum().backward()
    for handle in handles:
        handle.remove()
    out = []
    for tap in taps:
        pre, post = seen[id(tap.module)]
        grad = pre.grad
        assert grad is not None
        if tap.channels is not None:
            a, b = tap.channels
            pre, post, grad = pre[:, a:b], post[:, a:b], grad[:, a:b]
        pre, post = pre.detach(), post.detach()
        rows = max(1, summary_values(len(taps)) // pre[0].numel())
        pre_hist, _ = histogram_of(pre[:rows], bins)
        post_hist, _ = histogram_of(post[:rows], bins)
        saturated, dead = _fractions_as_first_written(tap.activation, pre, post)
        out.append(
            {
                "name": tap.name,
                "pre": pre_hist,
                "post": post_hist,
                "nonfinite": _nonfinite_in(pre) + _nonfinite_in(post),  # the whole batch
                "saturated": saturated,
                "dead": dead,
                "grad": histogram_of(grad[:rows], bins)[0],
            }
        )
    return out


def _collected(
    taps: list[Tap], model: torch.nn.Module, x: torch.Tensor, bins: int
) -> list[dict[str, object]]:
    probe = ActivationProbe(taps, capture_grads=True)
    probe.armed = True
    model.zero_grad()
    model(x).logsumexp(dim=1).sum().backward()
    layers = probe.collect(bins)
    probe.remove()
    keys = ("name", "pre", "post", "nonfinite", "saturated", "dead", "grad")
    return [{key: getattr(layer, key) for key in keys} for layer in layers]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "gelu"])
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_mlp_probe_reports_what_histogram_of_gives_tap_by_tap(activation: str, norm: str) -> None:
    model = build_mlp(RunSpec(depth=4, width=96, activation=activation, norm=norm, init="normal"), 64, 10)
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(3)) * 2
    x[:, :40] -= 1.5  # push some units off or into saturation
    taps = model.taps()
    assert _collected(taps, model, x, 40) == _by_hand(taps, model, x, 40)


@pytest.mark.parametrize("width", [8, 10])  # 10 channels: groups of 2, 2, 2 and 4, so several lengths
def test_cnn_probe_reports_what_histogram_of_gives_channel_group_by_group(width: int) -> None:
    model = build_cnn(RunSpec(arch="cnn", depth=3, width=width, activation="relu", norm="batch"), 10)
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(width))
    taps = model.taps()
    assert len(taps) == 12 and len({tap.module for tap in taps}) == 3
    assert _collected(taps, model, x, 32) == _by_hand(taps, model, x, 32)


def test_probe_of_a_diverging_step_still_reports_what_histogram_of_gives() -> None:
    """Non-finite inputs at the first, a middle and the last example of a batch wider than the
    summary: the histograms summarise the first examples, nonfinite counts the whole batch."""
    model = build_mlp(RunSpec(depth=3, width=96, activation="relu"), 2, 2)
    x = torch.randn(128, 2, generator=torch.Generator().manual_seed(6))
    assert summary_values(3) // 96 < 100  # examples 100 and 127 are not summarised
    x[0, 0], x[100, 1], x[127, 0] = float("nan"), float("inf"), -float("inf")
    taps = model.taps()
    collected, by_hand = _collected(taps, model, x, 16), _by_hand(taps, model, x, 16)
    assert all(layer["nonfinite"] for layer in collected)
    assert collected == by_hand


def _fed_probe(activations: list[str], batches: list[torch.Tensor]) -> list[int]:
    """nonfinite of probes on standalone nonlinearities, each fed its own pre-activation."""
    modules = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    taps = [Tap(f"t{i}", modules[a](), activation=a) for i, a in enumerate(activations)]
    probe = ActivationProbe(taps)
    probe.armed = True
    for tap, pre in zip(taps, batches, strict=True):
        tap.module(pre)
    layers = probe.collect(bins=32)
    probe.remove()
    return [layer.nonfinite for layer in layers]


def _whole_batch_nonfinite(activation: str, pre: torch.Tensor) -> int:
    """The protocol's nonfinite, from numpy alone: NaN/inf values of the pre- and post-activation."""
    x = pre.numpy().astype(np.float64)
    with np.errstate(all="ignore"):
        post = {
            "relu": np.maximum(x, 0.0),  # NaN stays NaN, -inf becomes 0
            "tanh": np.tanh(x),  # +-inf becomes +-1
            "sigmoid": 1.0 / (1.0 + np.exp(-x)),  # +-inf becomes 1 or 0
        }[activation]
    return int((~np.isfinite(x)).sum() + (~np.isfinite(post)).sum())


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("example", [0, 64, 127])
def test_nonfinite_counts_the_whole_batch_wherever_the_bad_value_sits(activation: str, example: int) -> None:
    """128 x 256 is four times the summary budget: examples 32 on are not summarised."""
    pre = torch.randn(128, 256, generator=torch.Generator().manual_seed(example))
    assert pre.numel() > MAX_SUMMARY_VALUES
    pre[example, 3], pre[example, 7], pre[example, 200] = float("nan"), float("inf"), -float("inf")
    (nonfinite,) = _fed_probe([activation], [pre])
    assert nonfinite == _whole_batch_nonfinite(activation, pre)
    assert nonfinite == {"relu": 5, "tanh": 4, "sigmoid": 4}[activation]


def test_nonfinite_counts_first_middle_and_last_examples_together_tap_by_tap() -> None:
    g = torch.Generator().manual_seed(8)
    pres = [torch.randn(128, 256, generator=g) for _ in range(4)]
    pres[0][0, 0] = float("nan")
    pres[0][64, 1] = float("inf")
    pres[0][127, 255] = -float("inf")
    pres[1][127, :10] = float("nan")  # only the last example
    # pres[2] stays finite
    pres[3][50:60, 5] = float("inf")  # a middle block only
    activations = ["relu", "tanh", "relu", "sigmoid"]
    counts = _fed_probe(activations, pres)
    assert counts == [_whole_batch_nonfinite(a, p) for a, p in zip(activations, pres, strict=True)]
    assert counts == [5, 20, 0, 10]


class _Log(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)


@pytest.mark.parametrize("example", [0, 64, 127])
def test_nonfinite_counts_what_a_tap_without_a_nonlinearity_makes_of_finite_inputs(example: int) -> None:
    """A residual stream or a norm's output can overflow from finite inputs: unlike an
    activation's, such a tap's post is checked on its own (here log(0) = -inf, log(-1) = NaN)."""
    pre = torch.rand(128, 256, generator=torch.Generator().manual_seed(10)) + 0.5
    pre[example, 4], pre[example, 9] = 0.0, -1.0
    log = _Log()
    probe = ActivationProbe([Tap("stream", log)])
    probe.armed = True
    post = log(pre)
    (layer,) = probe.collect(bins=16)
    probe.remove()
    assert layer.nonfinite == _nonfinite_in(pre) + _nonfinite_in(post) == 2


def test_nonfinite_counts_the_whole_batch_of_each_channel_group() -> None:
    """A conv map's channel groups: each group counts only its own channels, over every example."""
    pre = torch.randn(256, 8, 8, 8, generator=torch.Generator().manual_seed(9))
    pre[0, 1, 0, 0] = float("nan")  # group 0, summarised example
    pre[200, 2, 3, 3] = float("inf")  # group 0, left out of the summary
    pre[255, 6, 7, 7] = float("nan")  # group 1, the last example
    relu = torch.nn.ReLU()
    taps = [Tap(f"g{a}", relu, activation="relu", channels=(a, a + 4)) for a in (0, 4)]
    probe = ActivationProbe(taps)
    probe.armed = True
    relu(pre)
    layers = probe.collect(bins=16)
    probe.remove()
    assert layers[0].pre.n < pre[:, :4].numel()  # the histograms summarise the first examples only
    expected = [_whole_batch_nonfinite("relu", pre[:, a : a + 4]) for a in (0, 4)]
    assert [layer.nonfinite for layer in layers] == expected == [4, 2]


def test_weight_gradient_histograms_are_histogram_of_each_gradient() -> None:
    spec = RunSpec(dataset="digits", depth=3, width=16, steps=5, emit_every=5, probe_gradients=True)
    trainer = Trainer(spec)
    last = list(trainer.run(threading.Event()))[-1]
    # Plain SGD: the gradients of the last step are still in .grad.
    for layer, w in zip(last.layers, [layer.linear.weight for layer in trainer.model.hidden], strict=True):
        assert w.grad is not None
        assert layer.weight_grad == histogram_of(w.grad, spec.bins)[0]
        assert layer.grad_norm == w.grad.norm().item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not tested here")
def test_histograms_of_on_a_gpu_equals_histogram_of_there() -> None:
    tensors = [t.cuda() for t in _mixed_rows(torch.Generator().manual_seed(5))]
    for ours, ref in zip(histograms_of(tensors, 40), [histogram_of(t, 40) for t in tensors], strict=True):
        assert (ours[0].lo, ours[0].hi, ours[0].counts, ours[0].n, ours[1]) == (
            ref[0].lo,
            ref[0].hi,
            ref[0].counts,
            ref[0].n,
            ref[1],
        )
        for a, b in [(ours[0].p50, ref[0].p50), (ours[0].mean, ref[0].mean), (ours[0].std, ref[0].std)]:
            assert a == pytest.approx(b, rel=1e-6, abs=1e-7) if b is not None else a is None
