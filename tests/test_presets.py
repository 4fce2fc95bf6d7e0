"""The preset file: loaded through RunConfig, stating only what differs, refused loudly when bad."""

from __future__ import annotations

import tomllib

import pytest

from app.presets import DEFAULT_PRESET, PRESETS, PRESETS_FILE, PresetError, load_presets
from app.schemas import RunConfig, parse_run_config

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
