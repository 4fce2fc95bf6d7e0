"""Each paper preset's claim, asserted on what the probes report, at a small size.

Every test runs the preset's own config (A, and B from its `compare`), shortened, unpaced, with
fixed seeds and margins wide enough to hold on any machine: the claim, not a number, is tested.
The figures in the comments were measured on the 2-core CI machine (torch 2.13 CPU).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.presets import PRESETS
from app.schemas import parse_twin_configs
from app.training import Snapshot, Trainer

Run = tuple[Trainer, list[Snapshot]]


def _twins(preset_id: str, **changes: Any) -> tuple[Run, Run]:
    preset = next(p for p in PRESETS if p.id == preset_id)
    a, b = parse_twin_configs({**preset.config, "max_steps_per_s": 0, **changes}, preset.compare)
    assert b is not None, "paper presets run in compare mode"
    out = []
    for config in (a, b):
        trainer = Trainer(config.to_spec())
        out.append((trainer, list(trainer.run(threading.Event()))))
    return out[0], out[1]


def _resid(snapshot: Snapshot) -> list[Any]:
    return [layer for layer in snapshot.layers if layer.name.endswith(".resid")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xiong_pre_ln_gradient_falls_with_depth_and_post_ln_top_blocks_get_more(seed: int) -> None:
    # The contrast the preset quotes, which holds for every seed (step 1: gradients taken at the
    # initial weights). Measured, seeds 0-5: Pre-LN last/first 0.24-0.37; Post-LN's top three
    # blocks 2.1-4.4x Pre-LN's. Post-LN's own last/first (0.8-2.4) varies by seed: not asserted.
    (_, post), (_, pre) = _twins("xiong-init-gradients", seed=seed, steps=1, eval_every=1000)
    assert post[1].step == pre[1].step == 1
    post_norms = [layer.grad_norm for layer in _resid(post[1])]
    pre_norms = [layer.grad_norm for layer in _resid(pre[1])]
    assert len(post_norms) == len(pre_norms) == 12
    assert pre_norms[-1] < 0.6 * pre_norms[0], pre_norms
    assert sum(post_norms[-3:]) > 1.5 * sum(pre_norms[-3:]), (post_norms, pre_norms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_glorot_standard_init_collapses_deep_tanh_activations_xavier_keeps_them(seed: int) -> None:
    # Measured, step 0, seeds 0-2: standard 0.25-0.28 -> ~6e-5 across 16 layers, Xavier
    # 0.34-0.38 -> ~0.16, as the preset quotes.
    preset = next(p for p in PRESETS if p.id == "glorot-init")
    assert preset.spec.init == "standard" and preset.compare == {"init": "xavier"}
    (_, standard), (_, xavier) = _twins("glorot-init", seed=seed, steps=1, eval_every=1000)
    first, last = standard[0].layers[0].post.std, standard[0].layers[-1].post.std
    x_first, x_last = xavier[0].layers[0].post.std, xavier[0].layers[-1].post.std
    assert standard[0].step == 0 and len(standard[0].layers) == 16
    assert first is not None and last is not None and x_first is not None and x_last is not None
    assert 0.15 < first < 0.4 and last < 1e-3, (first, last)
    assert 0.25 < x_first < 0.5 and 0.08 < x_last < 0.3, (x_first, x_last)


def test_xiong_post_ln_fails_without_warmup_and_trains_with_it() -> None:
    # Measured, depth 6, Adam 1e-2, 400 steps: no warmup loss 2.30 (chance), warmup 100 -> 0.7, acc 0.9.
    (_, cold), (_, warm) = _twins("xiong-warmup", steps=300, eval_every=300)
    assert cold[-1].loss is None or cold[-1].loss > 1.5, cold[-1].loss
    assert warm[-1].loss is not None and warm[-1].loss < 1.2, warm[-1].loss
    assert warm[-1].test_acc is not None and cold[-1].test_acc is not None
    assert warm[-1].test_acc > cold[-1].test_acc + 0.3


def test_resmlp_post_norm_keeps_the_stream_at_one_width_pre_norm_lets_it_grow() -> None:
    (_, post), (_, pre) = _twins("resmlp-pre-post", steps=1, eval_every=1000)
    post_std = [layer.post.std for layer in _resid(post[0])]
    pre_std = [layer.post.std for layer in _resid(pre[0])]
    assert all(abs(std - 1) < 0.05 for std in post_std), post_std  # layer norm after every add
    assert pre_std[-1] > 1.5 * pre_std[0], pre_std  # every branch adds to the stream


def test_glorot_standard_init_shrinks_the_signal_with_depth_xavier_keeps_it() -> None:
    # After 400 steps the standard init (zero biases) is still near chance, Xavier far above it.
    (_, standard), (_, xavier) = _twins("glorot-init", steps=400, eval_every=400)
    std_a = [layer.post.std for layer in standard[0].layers]
    std_b = [layer.post.std for layer in xavier[0].layers]
    assert std_a[-1] < 0.4 * std_a[0] and std_a[-1] < 0.6 * std_b[-1], (std_a, std_b)
    assert xavier[-1].test_acc is not None and standard[-1].test_acc is not None
    assert xavier[-1].test_acc > standard[-1].test_acc + 0.3


def test_bjorck_deep_relu_diverges_without_norm_and_trains_with_batch_norm() -> None:
    # Measured: no norm diverges at step 5; batch norm reaches 0.99 test accuracy.
    (plain_trainer, _), (bn_trainer, bn) = _twins("bjorck-deep-relu", steps=200, eval_every=200)
    assert plain_trainer.outcome == "diverged" and plain_trainer.step < 100
    assert bn_trainer.outcome == "done"
    assert bn[-1].loss is not None and bn[-1].loss < 0.5 * bn[0].loss  # type: ignore[operator]


def test_token_level_norms_answer_the_same_one_token_at_a_time() -> None:
    (_, layer_norm), (_, rms_norm) = _twins("transformer-one-token", steps=300, eval_every=300)
    for frames in (layer_norm, rms_norm):
        last = frames[-1]
        assert last.test_acc is not None and last.test_acc > 0.8, last.test_acc
        assert last.test_acc_generated == pytest.approx(last.test_acc, abs=0.05)


def test_conv_batch_norm_pools_pixels_and_holds_up_at_batch_two() -> None:
    # Measured (batch 2, 2000 steps): eval accuracy BN 0.93-0.97, GN 0.94-0.96. Not Wu & He's
    # collapse (see the preset's claim): each channel's statistics pool 2 x 8 x 8 values.
    (_, bn), (_, gn) = _twins("cnn-small-batch", steps=600, eval_every=600)
    for frames in (bn, gn):
        assert frames[-1].test_acc is not None and frames[-1].test_acc > 0.8, frames[-1].test_acc
    last = bn[-1]
    assert last.test_acc_batch_stats is not None and last.test_acc is not None
    assert abs(last.test_acc - last.test_acc_batch_stats) < 0.1


def _mean_ics(snapshots: list[Snapshot]) -> tuple[float, float]:
    readings = [m for s in snapshots if s.ics for m in s.ics if m is not None]
    assert readings, "ics_every is on in both Santurkar presets"
    return sum(m.dist for m in readings) / len(readings), sum(m.cos for m in readings) / len(readings)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_santurkar_ics_both_comparisons_as_quoted(seed: int) -> None:
    # Measured, 100 steps: default init A dist 0.000 (loss 2.30), B 0.11-0.13; He init A dist
    # 0.75-1.04 cos 0.34-0.39, B dist 0.09-0.10 cos 0.94-0.95.
    (_, stalled), (_, bn) = _twins("santurkar-ics", seed=seed, steps=100, eval_every=100)
    assert stalled[-1].loss is not None and stalled[-1].loss > 2.2  # the plain net does not learn
    assert _mean_ics(bn)[0] > 10 * _mean_ics(stalled)[0]
    (_, plain), (_, bn_he) = _twins("santurkar-ics-he", seed=seed, steps=100, eval_every=100)
    assert plain[-1].loss is not None and plain[-1].loss < 1.5  # now both learn
    (plain_dist, plain_cos), (bn_dist, bn_cos) = _mean_ics(plain), _mean_ics(bn_he)
    assert plain_dist > 3 * bn_dist, (plain_dist, bn_dist)
    assert plain_cos < bn_cos - 0.3, (plain_cos, bn_cos)


def _ffn_grad_norms(snapshot: Snapshot) -> list[float]:
    norms = [layer.grad_norm for layer in _resid(snapshot)]
    assert all(norm is not None for norm in norms), "probe_gradients is on in the preset"
    return [norm for norm in norms if norm is not None]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xiong_pre_ln_trains_without_warmup_post_ln_gradients_climb_the_blocks(seed: int) -> None:
    # Measured, seeds 0-2 (6 blocks, d 32): test accuracy at step 100 Post-LN 0.10-0.11, Pre-LN
    # 1.00. FFN W2 gradient norm, block 6 / block 1: Post-LN 17-102x at step 5 and 640-1900x at
    # step 10, rising block by block; Pre-LN 0.74-1.06 and 0.79-1.11, max/min over blocks < 1.8.
    (_, post), (_, pre) = _twins("xiong-preln", seed=seed, steps=100, eval_every=100)
    assert post[-1].step == pre[-1].step == 100
    assert post[-1].test_acc is not None and post[-1].test_acc < 0.2  # chance is 0.1
    assert pre[-1].test_acc is not None and pre[-1].test_acc > 0.95
    for step, rise in ((5, 10), (10, 100)):
        post_norms = _ffn_grad_norms(next(s for s in post if s.step == step))
        pre_norms = _ffn_grad_norms(next(s for s in pre if s.step == step))
        assert len(post_norms) == len(pre_norms) == 6
        assert post_norms[-1] > rise * post_norms[0], (step, post_norms)
        assert all(low < high for low, high in zip(post_norms, post_norms[1:], strict=False)), post_norms
        assert 0.5 < pre_norms[-1] / pre_norms[0] < 2 and max(pre_norms) < 2.5 * min(pre_norms), pre_norms
