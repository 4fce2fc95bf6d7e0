"""What the story (and single-run) presets tell the learner, asserted on their own runs, seeds 0-2.

Each test starts the preset's config as the page sends it (with the page's changes where the text
says "press 2", i.e. another norm), unpaced and shortened to the steps the claim is about. Only
the frame cadence (emit_every, eval_every) is changed where a claim needs fewer frames: it sets
when the probes look, not what the net learns. A claim about the run's end reads the preset's own
frames (tests/test_presets.py's preset_frames, shared with its checks). The figures in the
comments were measured on the earlier 2-core CI machine and, where they differ ("here"), on the
current one, an AMD EPYC with AVX-512 whose kernels round differently (torch 2.13 CPU, one thread
a run as tests/conftest.py sets it); the margins hold the claim, not the number.
"""

from __future__ import annotations

import functools
import statistics
import threading
from typing import Any

import pytest
from test_presets import preset_frames

from app.presets import PRESETS
from app.schemas import parse_twin_configs
from app.training import Snapshot, Trainer

Run = tuple[Trainer, list[Snapshot]]
SEEDS = [0, 1, 2]


def _solo(preset_id: str, **changes: Any) -> Run:
    preset = next(p for p in PRESETS if p.id == preset_id)
    config, _ = parse_twin_configs({**preset.config, "max_steps_per_s": 0, **changes}, None)
    trainer = Trainer(config.to_spec())
    return trainer, list(trainer.run(threading.Event()))


def _at(frames: list[Snapshot], step: int) -> Snapshot:
    return next(frame for frame in frames if frame.step == step)


def _acc(frames: list[Snapshot], step: int) -> float:
    accuracy = _at(frames, step).test_acc
    assert accuracy is not None, f"no test accuracy at step {step}"
    return accuracy


@functools.cache
def _plain_sigmoid(seed: int) -> list[Snapshot]:
    # The deep sigmoid net without norm, shared by its own preset and by the batch-norm one's
    # "sooner than without norm".
    return _solo("sigmoid-saturation", seed=seed, steps=300, emit_every=100)[1]


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_saturation_spreads_saturates_and_stalls(seed: int) -> None:
    # Measured, seeds 0-2, step 100: pre-activation extremes of layers 2-10 13-27 in size; the
    # saturated fraction of layers 2-10 0.48-0.93 (layer 1 0.26-0.30); test accuracy 0.10-0.16
    # at steps 100-300. Here: extremes 17-27, saturated 0.47-0.90 (layer 1 0.27-0.29); test
    # accuracy 0.08-0.23 at step 100, 0.10-0.20 at 200, but 0.47, 0.17, 0.09 at 300: seed 0
    # breaks out sooner (0.85 at step 500), so the stall is asserted to step 200 and, looser, 300.
    frames = _plain_sigmoid(seed)
    layers = _at(frames, 100).layers
    assert len(layers) == 10
    extremes = [max(-layer.pre.lo, layer.pre.hi) for layer in layers[1:]]
    assert all(10 < extreme < 40 for extreme in extremes), extremes  # "about ±20"
    assert 15 < statistics.median(extremes) < 30, extremes
    saturated = [layer.saturated for layer in layers[1:]]
    assert min(saturated) > 0.4 and statistics.mean(saturated) > 0.5, saturated  # "about half or more"
    stalled = [_acc(frames, step) for step in (100, 200)]
    assert max(stalled) < 0.25, stalled  # chance is 0.1
    assert _acc(frames, 300) < 0.6, _acc(frames, 300)  # batch norm's 0.95-0.99 (the next test)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_batchnorm_keeps_one_band_and_learns_far_sooner(seed: int) -> None:
    # Measured, seeds 0-2: saturated at most 0.0005 in any layer; every layer's 15/85th
    # percentiles -1.1/1.1 at step 0, -1.3..-1.0/1.0..1.2 by step 300; test accuracy 0.93-0.97 at
    # step 100, 0.95-0.99 at step 300. Without norm: 0.10-0.16 at steps 100-300. Here: BN
    # 0.92-0.97 at step 100, 0.95-0.99 at 300; without norm 0.08-0.23 at step 100 and 0.47, 0.17,
    # 0.09 at 300 (BN - plain at 300: 0.50-0.89).
    _, frames = _solo("sigmoid-batchnorm", seed=seed, steps=300, emit_every=50)
    for frame in frames:
        assert max(layer.saturated for layer in frame.layers) < 0.01, frame.step
        for layer in frame.layers:
            assert layer.pre.p15 is not None and layer.pre.p85 is not None
            assert -1.6 < layer.pre.p15 < -0.7 and 0.7 < layer.pre.p85 < 1.6, (frame.step, layer.name)
    assert _acc(frames, 100) > 0.9 and _acc(frames, 300) > 0.93
    plain = _plain_sigmoid(seed)
    assert _acc(plain, 100) < 0.25  # "far sooner": near chance when batch norm has passed 0.9
    assert _acc(frames, 300) > _acc(plain, 300) + 0.4, (_acc(frames, 300), _acc(plain, 300))


@pytest.mark.parametrize("seed", SEEDS)
def test_high_lr_only_batch_norm_trains_and_layer_norm_stalls(seed: int) -> None:
    # Measured, seeds 0-2: no norm diverges at step 5; layer norm at chance at step 300
    # (0.07-0.10) and at every test to the run's end (0.07-0.11 at steps 300-1500; loss 2.29-2.31
    # at 1500). Batch norm (press 2) is bjorck-deep-relu's B: its 95% by step 300 is asserted in
    # tests/test_papers.py, over the same seeds.
    bjorck = next(p for p in PRESETS if p.id == "bjorck-deep-relu")
    high_lr = next(p for p in PRESETS if p.id == "high-lr")
    assert bjorck.config == high_lr.config and bjorck.compare == {"norm": "batch"}
    plain, _ = _solo("high-lr", seed=seed)
    assert plain.outcome == "diverged" and plain.step <= 10, (plain.outcome, plain.step)
    layer, layer_frames = _solo("high-lr", seed=seed, norm="layer", emit_every=300, eval_every=300)
    assert layer.outcome == "done" and layer_frames[-1].step == 1500
    stalled = [_acc(layer_frames, step) for step in range(300, 1501, 300)]
    assert max(stalled) < 0.2, stalled  # chance is 0.1
    loss = layer_frames[-1].loss
    assert loss is not None and loss > 2.0, loss


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_dying_dead_fraction_climbs_layer_by_layer(seed: int) -> None:
    # Measured, seeds 0-2: dead fraction at most 0.27 in any layer at step 0; at step 250
    # layer 1 0.36-0.53, layer 8 0.91-0.95, layers 5-8 0.20-0.27 above layers 1-4 on average.
    # Here: at most 0.27 at step 0; at step 250 layer 1 0.36, 0.61, 0.33, layer 8 0.91, 0.78,
    # 0.59 (0.55, 0.17, 0.27 above layer 1), layers 5-8 0.20, 0.12, 0.28 above layers 1-4.
    _, frames = _solo("relu-dying", seed=seed, steps=250, emit_every=250)
    start, later = (_at(frames, step).layers for step in (0, 250))
    assert len(later) == 8
    assert max(layer.dead for layer in start) < 0.35
    dead = [layer.dead for layer in later]
    assert dead[-1] > 0.5 and dead[0] < 0.65 and dead[-1] > dead[0] + 0.1, dead
    assert statistics.mean(dead[4:]) > statistics.mean(dead[:4]) + 0.1, dead


def test_relu_dying_some_units_come_back_later_and_how_many_depends_on_the_seed() -> None:
    # The preset's whole run (2000 steps), read at its end: step 2000, or the last frame before
    # the loss blew up where the run diverged late. Measured, layer 8's dead fraction at step 250
    # -> step 2000: seed 0 0.91 -> 0.59, seed 1 0.95 -> 1.00, seed 2 0.94 -> 0.48 (mean over the
    # layers 0.62 -> 0.40, 0.71 -> 0.77, 0.70 -> 0.43). Here seeds 0 and 1 diverge at steps 1427
    # and 1572: seed 0 0.91 -> 0.50 (step 1420), seed 1 0.78 -> 0.77 (step 1565), seed 2 0.59 ->
    # 0.88 (step 2000: its units came back, to 0.31 by step 875, and died again).
    preset = next(p for p in PRESETS if p.id == "relu-dying")
    assert preset.spec.steps == 2000
    revived = []
    for seed in SEEDS:
        frames = preset_frames(preset, seed, 2000)
        # Chance's loss is 2.3: past 10 the weights are blowing up, the dead fractions with them.
        sane = [frame for frame in frames if frame["loss"] is not None and frame["loss"] < 10]
        assert sane[-1]["step"] > 1000, (seed, sane[-1]["step"])  # "later in the run"
        at_250 = next(frame for frame in sane if frame["step"] == 250)
        revived.append(at_250["layers"][-1]["dead"] - sane[-1]["layers"][-1]["dead"])
    assert max(revived) > 0.2, revived  # "some may come back"
    assert min(revived) < 0.1, revived  # "how many depends on the seed": for one, none do


@functools.cache
def _pairs(seed: int, norm: str) -> list[dict[str, Any]]:
    # The whole runs at batch 2 (3000 steps) as the page's frames, shared with the presets'
    # checks (tests/test_presets.py): layer norm is layernorm-nobatch's run, batch norm (its
    # "press 2") small-batch's A, group norm small-batch's B.
    preset_id, run = {"layer": ("layernorm-nobatch", "A"), "batch": ("small-batch", "A")}.get(
        norm, ("small-batch", "B")
    )
    preset = next(p for p in PRESETS if p.id == preset_id)
    return [frame for frame in preset_frames(preset, seed, 3000) if frame["run"] == run]


def _mean_loss(frames: list[dict[str, Any]], first: int, last: int) -> float:
    losses = [frame["loss"] for frame in frames if first <= frame["step"] <= last]
    assert len(losses) > 10 and all(loss is not None for loss in losses)
    return statistics.mean(losses)


def _wire_acc(frames: list[dict[str, Any]], step: int, measure: str = "test_acc") -> float:
    accuracy = next(frame[measure] for frame in frames if frame["step"] == step)
    assert accuracy is not None, f"no {measure} at step {step}"
    return float(accuracy)


@pytest.mark.parametrize("seed", SEEDS)
def test_layernorm_nobatch_trains_at_batch_two_and_batch_norm_does_not(seed: int) -> None:
    # Measured, seeds 0-2 (batches of 2): mean training loss over steps 250-500 layer norm
    # 0.7-1.3, batch norm 2.2-2.4; test accuracy at step 500 layer norm 0.76-0.91, batch norm
    # 0.28-0.35 in eval mode and 0.30-0.35 normalising the test set by its own statistics. At
    # the run's end (step 3000): layer norm 0.92-0.98, batch norm 0.32-0.49; mean loss over steps
    # 2500-3000 layer norm 0.15-0.20, batch norm 2.06-2.09 (still above 2). Here: loss over
    # 250-500 layer norm 0.70-1.29, batch norm 2.22-2.34; at step 500 layer norm 0.76-0.93, batch
    # norm 0.29-0.42 in eval mode, 0.27-0.50 with its own statistics; at step 3000 layer norm
    # 0.92-0.97, batch norm 0.33-0.47; loss over 2500-3000 layer norm 0.17-0.24, batch norm
    # 1.89-2.23 (near chance's 2.3, no longer above 2 for every seed).
    layer, batch = _pairs(seed, "layer"), _pairs(seed, "batch")
    early = _mean_loss(layer, 250, 500), _mean_loss(batch, 250, 500)
    assert early[0] < 1.6 and early[1] > 1.9, early
    assert _wire_acc(layer, 500) > 0.65 and _wire_acc(batch, 500) < 0.5
    assert _wire_acc(layer, 500) > _wire_acc(batch, 500) + 0.3
    # Not only the running averages: the weights themselves are poor.
    assert _wire_acc(batch, 500, "test_acc_batch_stats") < 0.6
    late = _mean_loss(layer, 2500, 3000), _mean_loss(batch, 2500, 3000)
    assert late[0] < 0.6 and late[1] > 1.7, late
    assert _wire_acc(layer, 3000) > 0.85 and _wire_acc(batch, 3000) < 0.6
    assert _wire_acc(layer, 3000) > _wire_acc(batch, 3000) + 0.3


@pytest.mark.parametrize("seed", SEEDS)
def test_small_batch_group_norm_trains_where_batch_norm_does_not(seed: int) -> None:
    # The 'small-batch' preset is layernorm-nobatch with batch norm (A) and group norm (B).
    small = next(p for p in PRESETS if p.id == "small-batch")
    nobatch = next(p for p in PRESETS if p.id == "layernorm-nobatch")
    assert {**nobatch.config, "norm": "batch"} == small.config
    assert small.compare == {"norm": "group", "groups": 8}
    # Measured, seeds 0-2: group norm's mean training loss over steps 250-500 0.8-1.1, test
    # accuracy at step 500 0.78-0.91; at the run's end (step 3000) 0.93-0.98, mean loss over
    # steps 2500-3000 0.09-0.30 (batch norm's: above). Here: 0.84-0.98, 0.81-0.91, 0.93-0.96,
    # 0.07-0.27; batch norm's mean loss over steps 2500-3000 1.89-2.23 (2.06-2.09 before).
    group, batch = _pairs(seed, "group"), _pairs(seed, "batch")
    assert _mean_loss(group, 250, 500) < 1.6 < 1.9 < _mean_loss(batch, 250, 500)
    assert _wire_acc(group, 500) > 0.65 and _wire_acc(group, 500) > _wire_acc(batch, 500) + 0.3
    assert _mean_loss(group, 2500, 3000) < 0.6 < 1.7 < _mean_loss(batch, 2500, 3000)
    assert _wire_acc(group, 3000) > 0.85 and _wire_acc(group, 3000) > _wire_acc(batch, 3000) + 0.3


@pytest.mark.parametrize("seed", SEEDS)
def test_ioffe_fig1_median_drifts_without_batch_norm_and_stays_with_it(seed: int) -> None:
    # Measured, seeds 0-2, steps 0-600: the last layer's median moves (max - min over frames)
    # 1.42-1.56 without norm, 0.07-0.09 with batch norm; its 15-85 band width 0.31-1.89 without
    # (max/min 4.5-5.6), 2.13-3.17 with (max/min 1.46-1.49); test accuracy at step 600
    # 0.57-0.63 without, 0.94-0.99 with.
    _, plain = _solo("ioffe-fig1", seed=seed, steps=600)
    _, normed = _solo("ioffe-fig1", seed=seed, norm="batch", steps=600)
    moves, widths = [], []
    for frames in (plain, normed):
        assert len(frames) == 61
        last = [frame.layers[-1].pre for frame in frames]
        medians = [pre.p50 for pre in last if pre.p50 is not None]
        bands = [pre.p85 - pre.p15 for pre in last if pre.p85 is not None and pre.p15 is not None]
        assert len(medians) == len(bands) == 61
        moves.append(max(medians) - min(medians))
        widths.append(max(bands) / min(bands))
    assert moves[0] > 1.0 and moves[1] < 0.2 and moves[0] > 8 * moves[1], moves
    assert widths[0] > 3 and widths[1] < 2, widths
    assert 0.45 < _acc(plain, 600) < 0.75 and _acc(normed, 600) > 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_bn_eval_running_averages_fall_behind_on_shifted_inputs(seed: int) -> None:
    # Measured, seeds 0-2, step 300: at the preset's test shift 0.5 eval mode 0.75-0.84, each
    # test batch's own statistics 0.97-0.99; unshifted both 0.97-0.99, within 0.01 of each other.
    _, shifted = _solo("bn-eval", seed=seed, steps=300, emit_every=300, eval_every=300)
    _, unshifted = _solo("bn-eval", seed=seed, test_shift=0.0, steps=300, emit_every=300, eval_every=300)
    moved, same = _at(shifted, 300), _at(unshifted, 300)
    assert moved.test_acc is not None and moved.test_acc_batch_stats is not None
    assert same.test_acc is not None and same.test_acc_batch_stats is not None
    assert same.test_acc > 0.93 and abs(same.test_acc - same.test_acc_batch_stats) < 0.03
    assert moved.test_acc_batch_stats > 0.93 and moved.test_acc < moved.test_acc_batch_stats - 0.1
