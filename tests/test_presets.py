"""The preset file: loaded through RunConfig, stating only what differs, refused loudly when bad."""

from __future__ import annotations

import functools
import threading
import tomllib
from typing import Any

import pytest

from app.loops import Say, Sweep, sweep_points
from app.presets import DEFAULT_PRESET, PRESETS, PRESETS_FILE, Check, Preset, PresetError, load_presets
from app.schemas import RunConfig, parse_run_config, parse_twin_configs
from app.training import Trainer

_GOOD = """
default = "a"

[base.deep]
depth = 10
activation = "relu"

[[preset]]
id = "a"
title = "A"
summary = "s"
look_for = "l"
question = "q?"
base = "deep"
[preset.config]
norm = "batch"
[preset.compare]
norm = "none"
"""


def test_the_shipped_file_loads_every_preset_with_its_default() -> None:
    raw = tomllib.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    assert [p.id for p in PRESETS] == [entry["id"] for entry in raw["preset"]]
    assert DEFAULT_PRESET.id == raw["default"] and DEFAULT_PRESET in PRESETS
    for preset in PRESETS:
        # What the page sends for a preset is what the server validated it as.
        assert parse_run_config(preset.config).to_spec() == preset.spec, preset.id


def test_each_entry_states_only_what_differs_from_its_defaults_and_base() -> None:
    raw = tomllib.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    bases = raw["base"]
    for name, base in bases.items():
        plain = RunConfig.model_validate({"arch": base.get("arch", "mlp")}).model_dump()
        restated = [k for k, v in base.items() if k != "arch" and plain[k] == v]
        assert not restated, (name, restated)
    used = set()
    for entry in raw["preset"]:
        start = dict(bases[entry["base"]]) if "base" in entry else {}
        used.add(entry.get("base"))
        config = entry.get("config", {})
        without = RunConfig.model_validate({**start, "arch": config.get("arch", start.get("arch", "mlp"))})
        restated = [k for k, v in config.items() if k != "arch" and getattr(without, k) == v]
        assert not restated, (entry["id"], restated)
    assert set(bases) <= used, "a base no preset uses"


def test_a_good_file_merges_base_config_and_compare() -> None:
    presets, default = load_presets(_GOOD)
    (preset,) = presets
    assert default is preset
    assert (preset.spec.depth, preset.spec.activation, preset.spec.norm) == (10, "relu", "batch")
    assert preset.compare == {"norm": "none"} and preset.group == "story" and preset.view == "layers"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('norm = "batch"', 'norm = "batch"\ndepth = 99'), "preset 'a': config.depth: depth must be ≤ 24"),
        (
            ('norm = "batch"', 'norm = "batch"\nwidht = 3'),
            "preset 'a': config.widht: widht is not a known field",
        ),
        (('norm = "none"', "lr = 99.0"), "preset 'a': compare.lr"),
        (('norm = "batch"', 'norm = "batch"\nd_model = 32'), "arch=mlp does not read d_model"),
        (('base = "deep"', 'base = "deeper"'), "preset 'a': base: no [base.deeper]"),
        (('question = "q?"', 'question = "q?"\nview = "3d"'), "preset 'a': view must be one of"),
        (('question = "q?"', 'question = "q?"\ngroup = "extras"'), "preset 'a': group must be one of"),
        (('question = "q?"', 'question = "q?"\ncolour = "red"'), "preset 'a': colour is not a known field"),
        (('title = "A"\n', ""), "preset 'a': title is required"),
        (('default = "a"', 'default = "b"'), "default: no preset has id 'b'"),
        (("depth = 10", "depth = 10\ndepth = 11"), "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_preset_and_the_field(change: tuple[str, str], words: str) -> None:
    old, new = change
    assert old in _GOOD
    with pytest.raises(PresetError) as caught:
        load_presets(_GOOD.replace(old, new, 1), "my.toml")
    assert str(caught.value).startswith("my.toml: ") and words in str(caught.value), str(caught.value)


def test_preset_ids_are_unique() -> None:
    twice = _GOOD + _GOOD[_GOOD.index("[[preset]]") :]
    with pytest.raises(PresetError, match=r"\(a used more than once\)"):
        load_presets(twice)


def preset_frames(preset: Preset, seed: int, steps: int) -> list[dict[str, Any]]:
    """Wire frames of the preset's own run (A, and B in compare mode), unpaced, to `steps`."""
    assert preset in PRESETS, "the runs are cached by preset id: a shipped preset only"
    return list(_preset_frames(preset.id, seed, steps))


@functools.cache
def _preset_frames(preset_id: str, seed: int, steps: int) -> tuple[dict[str, Any], ...]:
    # Shared by the check tests and the paper tests that read the same run (tests/test_papers.py):
    # the frames are only read.
    preset = next(p for p in PRESETS if p.id == preset_id)
    changes = {"max_steps_per_s": 0, "seed": seed, "steps": max(steps, 1)}
    a, b = parse_twin_configs({**preset.config, **changes}, preset.compare)
    frames = []
    for label, config in (("A", a), ("B", b)):
        if config is None:
            continue
        for snapshot in Trainer(config.to_spec()).run(threading.Event()):
            frame = snapshot.to_wire()
            frames.append({**frame, "run": label})
    return tuple(frames)


CHECKED = [p for p in PRESETS if p.checks]


def test_presets_that_quote_figures_carry_checks_the_page_can_read() -> None:
    assert {p.id for p in CHECKED} >= {
        "glorot-init",
        "xiong-init-gradients",
        "xiong-warmup",
        "sigmoid-saturation",
        "sigmoid-batchnorm",
        "relu-dying",
        "ioffe-fig1",
        "compare-bn",
        "gradients",
        "santurkar-ics",
        "santurkar-ics-he",
        "noisy-bn",
        "landscape",
        "bn-eval",
        "layernorm-nobatch",
        "small-batch",
        "transformer-one-token",
        "resmlp-pre-post",
        "cnn-small-batch",
        "bjorck-deep-relu",
        "xiong-preln",
        "high-lr",
        "lr-sweep",
    }
    for preset in CHECKED:
        wire = preset.to_wire()["checks"]
        assert [c["says"] for c in wire] == [c.says for c in preset.checks]
        assert all(c["range"][0] <= c["range"][1] for c in wire)


def preset_messages(preset: Preset, seed: int) -> list[dict[str, Any]]:
    """What the page reads a preset's checks from: its run's frames to the last step a check
    reads, or, for a sweep's checks, the sweep's results (the page's sweep path)."""
    if any(check.lr is not None for check in preset.checks):
        return list(_sweep_results(preset.id, seed))
    if any(check.measure == "diverged_at" for check in preset.checks):  # to the end, if need be
        return preset_frames(preset, seed, preset.spec.steps)
    return preset_frames(preset, seed, max(max(c.step, c.until or 0) for c in preset.checks))


@functools.cache
def _sweep_results(preset_id: str, seed: int) -> tuple[dict[str, Any], ...]:
    preset = next(p for p in PRESETS if p.id == preset_id)
    assert preset.sweep_lrs is not None
    a, b = parse_twin_configs({**preset.config, "seed": seed}, preset.compare)
    bases = {"A": a.to_spec(), **({"B": b.to_spec()} if b is not None else {})}
    events = sweep_points(bases, Sweep(preset.sweep_lrs, preset.spec.steps), threading.Event())
    return tuple(event.message for event in events if isinstance(event, Say))


@pytest.mark.parametrize("preset", CHECKED, ids=[p.id for p in CHECKED])
def test_every_quoted_figure_holds_for_the_presets_own_run_over_three_seeds(preset: Preset) -> None:
    for seed in (0, 1, 2):
        messages = preset_messages(preset, seed)
        for check in preset.checks:
            value = check.read(messages)
            assert value is not None, (preset.id, seed, check.says)
            assert check.holds(value), (preset.id, seed, check.says, value, (check.low, check.high))


# A frame of run B at step 5, as the wire carries it: what the check tests read (the page's too,
# tests/test_browser_checks.py).
SYNTHETIC_FRAME = {
    "step": 5,
    "run": "B",
    "test_acc": 0.5,
    "test_acc_batch_stats": 0.75,
    "landscape": {"loss_range": 0.25, "grad_change": 1.5, "beta": 6.0},
    "layers": [
        {"name": "block1.attn_in", "grad_norm": 9.0, "post": {"std": 1.0}},
        {"name": "block1.resid", "grad_norm": 2.0, "post": {"std": 2.0}},
        {"name": "block2.resid", "grad_norm": 1.0, "post": {"std": 4.0}},
    ],
    # One entry per layer, null where a layer has no weight (Trainer._tap_weight).
    "ics": [None, {"dist": 0.5, "cos": 0.9}, {"dist": 1.5, "cos": 0.6}],
}


def test_a_check_reads_the_first_frame_at_its_step_of_its_run() -> None:
    frame = SYNTHETIC_FRAME
    ratio = Check("r", "grad_norm", 5, 0, 1, run="B", of="last/first", layers=".resid")
    assert ratio.reading(frame) == 0.5
    assert Check("m", "post.std", 0, 0, 9, run="B", of="max").reading(frame) == 4.0
    assert Check("m", "post.std", 0, 0, 9, run="B", of="min", layers=".resid").reading(frame) == 2.0
    assert Check("a", "test_acc", 5, 0, 1, run="B").reading(frame) == 0.5
    assert Check("s", "test_acc_batch_stats", 5, 0, 1, run="B").reading(frame) == 0.75
    assert Check("b", "landscape.beta", 5, 0, 9, run="B").reading(frame) == 6.0
    # ICS: the layers without a weight are left out, the others line up with `layers`.
    assert Check("d", "ics.dist", 5, 0, 9, run="B", of="mean").reading(frame) == 1.0
    assert Check("c", "ics.cos", 5, 0, 1, run="B", of="first", layers=".resid").reading(frame) == 0.9
    assert Check("d", "ics.dist", 5, 0, 9, run="B", of="mean").reading({**frame, "ics": None}) is None
    assert Check("b", "landscape.beta", 5, 0, 9, run="B").reading({**frame, "landscape": None}) is None
    assert Check("a", "test_acc", 6, 0, 1, run="B").reading(frame) is None  # before its step
    assert Check("a", "test_acc", 0, 0, 1, run="A").reading(frame) is None  # the other run
    assert (
        Check("g", "grad_norm", 0, 0, 1, run="B", of="first").reading({**frame, "layers": [{"name": "x"}]})
        is None
    )


# A frame of run A whose loss was not finite (the run diverged at step 7), and a sweep's point.
DIVERGED_FRAME = {"type": "frame", "step": 7, "run": "A", "loss": None, "layers": []}
SWEEP_RESULT = {
    "type": "sweep_result",
    "run": "B",
    "lr": 0.3,
    "final_loss": 0.25,
    "test_acc": 0.9,
    "diverged": False,
}


def test_divergence_and_sweep_points_are_read_from_their_own_messages() -> None:
    diverged = Check("d", "diverged_at", 0, 0, 99)
    assert diverged.reading(DIVERGED_FRAME) == 7.0
    assert diverged.reading({**DIVERGED_FRAME, "loss": 2.3}) is None  # a finite step
    assert diverged.reading(SWEEP_RESULT) is None
    assert Check("s", "sweep.test_acc", 0, 0, 1, run="B", lr=0.3).reading(SWEEP_RESULT) == 0.9
    assert Check("s", "sweep.diverged", 0, 0, 1, run="B", lr=0.3).reading(SWEEP_RESULT) == 0.0
    assert Check("s", "sweep.test_acc", 0, 0, 1, run="B", lr=1.0).reading(SWEEP_RESULT) is None  # other rate
    assert Check("s", "sweep.test_acc", 0, 0, 1, run="A", lr=0.3).reading(SWEEP_RESULT) is None  # other run
    assert Check("s", "sweep.test_acc", 0, 0, 1, run="B", lr=0.3).reading(SYNTHETIC_FRAME) is None


def test_a_check_with_until_averages_its_readings_over_the_window() -> None:
    def frame(step: int, value: float | None, run: str = "A") -> dict[str, Any]:
        return {"type": "frame", "step": step, "run": run, "test_acc": value, "layers": []}

    window = Check("w", "test_acc", 10, 0, 1, until=30)
    messages = [
        frame(0, 0.9),
        frame(10, 0.2),
        frame(15, None),
        frame(20, 0.4),
        frame(20, 0.8, "B"),
        frame(30, 0.6),
    ]
    assert window.read([*messages, frame(40, 0.99)]) == pytest.approx(0.4)  # 0.2, 0.4, 0.6
    assert window.read(messages[:2]) == pytest.approx(0.2)  # the run ended early: as far as it went
    assert window.read(messages[:1]) is None


@pytest.mark.parametrize(
    ("check", "words"),
    [
        ('says = "x"\nstep = 1\nmeasure = "grad_norm"\nrange = [0.0, 1.0]', "is per layer: say `of`"),
        (
            'says = "x"\nstep = 1\nmeasure = "test_acc"\nof = "last"\nrange = [0.0, 1.0]',
            "one number per frame",
        ),
        ('says = "x"\nstep = 1\nmeasure = "test_acc"\nrange = [1.0, 0.0]', "range must be [low, high]"),
        ('says = "x"\nstep = 99999\nmeasure = "test_acc"\nrange = [0.0, 1.0]', "past steps="),
        ('says = "x"\nstep = 1\nmeasure = "colour"\nrange = [0.0, 1.0]', "measure"),
        ('says = "x"\nstep = 0\nmeasure = "sweep.test_acc"\nrange = [0.0, 1.0]', "a sweep measure needs it"),
        (
            'says = "x"\nstep = 0\nmeasure = "test_acc"\nlr = 0.1\nrange = [0.0, 1.0]',
            "a sweep measure needs it",
        ),
        ('says = "x"\nstep = 9\nuntil = 5\nmeasure = "test_acc"\nrange = [0.0, 1.0]', "must not come before"),
    ],
)
def test_a_bad_check_is_refused_naming_the_preset(check: str, words: str) -> None:
    text = _GOOD + "[[preset.checks]]\n" + check + "\n"
    with pytest.raises(PresetError) as caught:
        load_presets(text)
    assert "preset 'a'" in str(caught.value) and words in str(caught.value), str(caught.value)
    # Run B needs a compare: the same check on B of a preset without one is refused too.
    single = _GOOD[: _GOOD.index("[preset.compare]")]
    b_check = '[[preset.checks]]\nsays = "x"\nrun = "B"\nstep = 1\nmeasure = "test_acc"\nrange = [0.0, 1.0]\n'
    with pytest.raises(PresetError, match="reads run B, but the preset has no compare"):
        load_presets(single + b_check)
