"""Histograms and statistics against numpy; saturation and dead-unit fractions by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.model import build_model
from app.probes import ActivationProbe, dead_fraction, histogram_of, saturated_fraction
from app.spec import RunSpec

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
    model = build_model(RunSpec(depth=3, width=16, activation="tanh", norm="batch"), 2, 2)
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
    from app.probes import MAX_SUMMARY_VALUES

    model = build_model(RunSpec(depth=1, width=256, activation="relu"), 2, 2)
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
