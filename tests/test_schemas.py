"""The boundary: every bad config or message is refused with the field and its limit named."""

from __future__ import annotations

import pytest

from app.presets import PRESETS
from app.schemas import (
    ProtocolError,
    RunConfig,
    SetMessage,
    StartMessage,
    config_schema,
    parse_client_message,
    parse_run_config,
    parse_twin_configs,
)
from app.spec import RunSpec


def _refusal(config: dict) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_run_config(config)
    assert info.value.code == "invalid_config"
    return info.value


def test_omitted_fields_take_the_defaults() -> None:
    assert parse_run_config({}).to_spec() == RunSpec()
    assert parse_run_config({"depth": 3, "norm": "rms"}).to_spec() == RunSpec(depth=3, norm="rms")


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"depth": 99}, "depth", "≤ 24"),
        ({"depth": 0}, "depth", "≥ 1"),
        ({"width": 1000}, "width", "≤ 512"),
        ({"batch_size": 0}, "batch_size", "≥ 1"),
        ({"lr": 0.0}, "lr", "≥ 1e-05"),
        ({"lr": 50}, "lr", "≤ 10"),
        ({"norm": "weight"}, "norm", "'none', 'batch', 'layer', 'group' or 'rms'"),
        ({"activation": "swish"}, "activation", "one of"),
        ({"depth": "8"}, "depth", "integer"),
        ({"depth": 8.5}, "depth", "integer"),
        ({"seed": True}, "seed", "integer"),
        ({"colour": "red"}, "colour", "not a known field"),
        ({"norm": "group", "width": 30, "groups": 8}, "groups", "groups must divide width"),
    ],
)
def test_bad_configs_name_the_field_and_the_limit(config: dict, field: str, words: str) -> None:
    refusal = _refusal(config)
    assert [e["field"] for e in refusal.errors] == [field]
    assert words in refusal.errors[0]["message"], refusal.errors[0]["message"]
    assert field in refusal.errors[0]["message"] or field in refusal.message


def test_every_bad_field_is_reported_at_once() -> None:
    refusal = _refusal({"depth": 99, "width": 1, "optimizer": "lion"})
    assert sorted(e["field"] for e in refusal.errors) == ["depth", "optimizer", "width"]


def test_non_finite_numbers_are_refused() -> None:
    refusal = _refusal({"lr": float("nan")})
    assert refusal.errors[0]["field"] == "lr" and "finite" in refusal.errors[0]["message"]
    assert _refusal({"noise": float("inf")}).errors[0]["field"] == "noise"
    # The JSON parser refuses NaN/Infinity literals and numbers that overflow to infinity.
    for text in ['{"type":"set","lr":NaN}', '{"type":"set","lr":Infinity}', '{"type":"set","lr":1e999}']:
        with pytest.raises(ProtocolError) as info:
            parse_client_message(text)
        assert info.value.code == "bad_json"


def test_messages_parse_to_their_types() -> None:
    start = parse_client_message('{"type":"start","config":{"depth":3}}')
    assert isinstance(start, StartMessage) and start.config == {"depth": 3}
    assert isinstance(parse_client_message('{"type":"start"}'), StartMessage)
    message = parse_client_message('{"type":"set","lr":0.01}')
    assert isinstance(message, SetMessage) and message.lr == 0.01


@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        ("not json", "bad_json", None),
        ("[1, 2]", "bad_json", None),
        ('{"type":"explode"}', "invalid_message", "type"),
        ("{}", "invalid_message", "type"),
        ('{"type":"pause","now":true}', "invalid_message", "now"),
        ('{"type":"set"}', "invalid_message", "lr"),
        ('{"type":"set","lr":100}', "invalid_message", "lr"),
        ('{"type":"set","lr":"fast"}', "invalid_message", "lr"),
        ('{"type":"start","config":[]}', "invalid_message", "config"),
    ],
)
def test_bad_messages_are_refused_with_a_code(text: str, code: str, field: str | None) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text)
    assert info.value.code == code
    if field is not None:
        assert field in [e["field"] for e in info.value.errors], info.value.errors
    wire = info.value.to_wire()
    assert wire["type"] == "error" and wire["message"]


def test_schema_carries_bounds_choices_and_defaults() -> None:
    props = config_schema()["properties"]
    assert props["depth"]["minimum"] == 1 and props["depth"]["maximum"] == 24
    assert props["norm"]["enum"] == ["none", "batch", "layer", "group", "rms"]
    assert props["lr"]["default"] == RunSpec().lr
    assert set(props) == set(RunConfig.model_fields)


def test_every_preset_is_a_valid_config() -> None:
    assert len(PRESETS) >= 5 and len({p.id for p in PRESETS}) == len(PRESETS)
    for preset in PRESETS:
        wire = preset.to_wire()
        assert parse_run_config(wire["config"]).to_spec() == preset.spec
        assert wire["title"] and wire["look_for"] and wire["question"]
        first, second = parse_twin_configs(wire["config"], wire["compare"])
        assert (second is None) == (preset.compare is None)


def test_paper_presets_name_their_paper_claim_group_and_view() -> None:
    views = {"layers", "drift", "gradients", "ics", "landscape", "eval", "sweep"}
    for preset in PRESETS:
        wire = preset.to_wire()
        assert wire["group"] in {"story", "instruments", "architectures"} and wire["view"] in views
        if wire["group"] == "architectures":
            assert {"id", "title", "paper", "claim", "config", "compare"} <= set(wire)
            assert wire["paper"] and wire["claim"] and wire["compare"], preset.id
    assert {p.spec.arch for p in PRESETS} == {"mlp", "resmlp", "transformer", "cnn"}
    # A preset told in an instrument's view switches that instrument on (they are off by default).
    needs = {
        "drift": lambda spec: spec.drift_lag > 0,
        "gradients": lambda spec: spec.probe_gradients,
        "ics": lambda spec: spec.ics_every > 0,
        "landscape": lambda spec: spec.landscape_every > 0,
    }
    for preset in PRESETS:
        if preset.view in needs:
            assert needs[preset.view](preset.spec), preset.id
    papers = " ".join(p.paper or "" for p in PRESETS)
    for author in ("Ioffe", "Glorot", "Santurkar", "Wu & He", "Xiong", "Bjorck"):
        assert author in papers, author
