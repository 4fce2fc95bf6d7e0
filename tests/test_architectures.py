"""Every architecture through the real Trainer and the schema: frames, instruments, warmup, limits."""

from __future__ import annotations

import threading

import pytest
import torch

from app.budget import RunCost
from app.config import Settings
from app.schemas import ARCHS, ProtocolError, RunConfig, parse_run_config, parse_twin_configs
from app.session import check_budget
from app.spec import RunSpec
from app.training import Snapshot, Trainer

SMALL = {
    "mlp": {"arch": "mlp", "depth": 3, "width": 16},
    "resmlp": {"arch": "resmlp", "depth": 3, "width": 16, "norm": "batch"},
    "cnn": {"arch": "cnn", "depth": 2, "width": 8, "norm": "batch"},
    "transformer": {
        "arch": "transformer",
        "depth": 2,
        "d_model": 32,
        "seq_len": 4,
        "vocab": 6,
        "norm": "layer",
    },
}
NAMES = {
    "mlp": ["layer1", "layer2", "layer3"],
    "resmlp": ["block1.act", "block1.resid", "block2.act", "block2.resid", "block3.act", "block3.resid"],
    "cnn": [f"conv{i}.ch{a}-{a + 1}" for i in (1, 2) for a in (0, 2, 4, 6)],
    "transformer": ["block1.attn_in", "block1.resid", "block2.attn_in", "block2.resid"],
}


def _spec(arch: str, **fields: object) -> RunSpec:
    return parse_run_config({**SMALL[arch], **fields}).to_spec()


def _run(spec: RunSpec) -> tuple[Trainer, list[Snapshot]]:
    trainer = Trainer(spec)
    return trainer, list(trainer.run(threading.Event()))


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_every_architecture_streams_named_frames_with_every_instrument(arch: str) -> None:
    spec = _spec(
        arch, steps=12, emit_every=4, eval_every=4, probe_gradients=True, ics_every=4, landscape_every=4
    )
    trainer, snaps = _run(spec)
    assert trainer.outcome == "done"
    assert [s.step for s in snaps] == [0, 4, 8, 12]
    last = snaps[-1]
    assert [layer.name for layer in last.layers] == NAMES[arch]
    wire = last.to_wire()
    for layer in wire["layers"]:
        assert {"name", "pre", "post", "grad_norm", "update_ratio", "grad", "weight_grad"} <= set(layer)
        assert layer["pre"]["n"] > 0 and sum(layer["pre"]["counts"]) == layer["pre"]["n"]
        assert layer["grad_norm"] is not None and layer["grad_norm"] > 0
        assert layer["update_ratio"] is not None and layer["update_ratio"] > 0
    assert last.ics is not None and len(last.ics) == len(NAMES[arch])
    assert all(m is not None and 0 <= m.dist and -1 <= m.cos <= 1 for m in last.ics)
    assert last.landscape is not None and last.test_acc is not None
    assert (last.test_acc_generated is not None) == (arch == "transformer")


def test_cnn_channel_groups_summarise_their_own_channels_and_share_the_layer_readings() -> None:
    trainer, snaps = _run(_spec("cnn", steps=4, emit_every=4, probe_gradients=True))
    layers = snaps[-1].layers
    first_layer = [layer for layer in layers if layer.name.startswith("conv1.")]
    assert len({layer.grad_norm for layer in first_layer}) == 1, "one conv weight behind the groups"
    assert len({layer.pre.mean for layer in first_layer}) == 4, "each group its own channels"
    # batch norm's train-vs-eval reading is per channel group too
    assert all(layer.batch_norm is not None for layer in layers)


def test_warmup_raises_the_rate_linearly_then_holds_it() -> None:
    spec = _spec("mlp", lr=0.4, warmup_steps=8, steps=12, emit_every=2)
    trainer, snaps = _run(spec)
    rates = {s.step: s.lr for s in snaps if s.step > 0}
    assert rates == pytest.approx({2: 0.1, 4: 0.2, 6: 0.3, 8: 0.4, 10: 0.4, 12: 0.4})


def test_a_live_rate_change_during_warmup_scales_the_new_rate() -> None:
    trainer = Trainer(_spec("mlp", lr=0.4, warmup_steps=10, steps=10, emit_every=1))
    frames = trainer.run(threading.Event())
    for _ in range(3):  # steps 0..2
        next(frames)
    trainer.set_lr(0.8)
    assert next(frames).lr == pytest.approx(0.8 * 3 / 10)


def test_the_transformer_writes_its_answers_one_token_at_a_time_as_well_as_in_one_pass() -> None:
    spec = _spec("transformer", steps=150, emit_every=150, eval_every=150, seed=1)
    trainer, snaps = _run(spec)
    last = snaps[-1]
    assert last.test_acc is not None and last.test_acc > 0.9, last.test_acc
    # Generation sees only its own earlier answers; once the model is right they agree.
    assert last.test_acc_generated == pytest.approx(last.test_acc, abs=0.05)


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"arch": "transformer", "norm": "batch"}, "norm", "for arch=transformer"),
        ({"arch": "transformer", "d_model": 64, "heads": 5}, "heads", "divide d_model"),
        ({"arch": "transformer", "test_shift": 1.0}, "test_shift", "reads tokens"),
        ({"arch": "transformer", "noisy_norm": True}, "noisy_norm", "does not read"),
        ({"arch": "transformer", "noisy_norm": False}, "noisy_norm", "leave it out"),
        ({"arch": "transformer", "init": "kaiming"}, "init", "Xavier"),
        ({"arch": "mlp", "d_model": 64}, "d_model", "arch=mlp does not read"),
        ({"arch": "cnn", "noise": 0.2}, "noise", "arch=cnn does not read"),
        ({"arch": "transformer", "depth": 13}, "depth", "≤ 12"),
        ({"arch": "resmlp", "norm_position": "before"}, "norm_position", "pre or post"),
        ({"arch": "mlp", "norm_position": "pre"}, "norm_position", "before or after"),
        ({"arch": "cnn", "dataset": "spiral"}, "dataset", "digits"),
        ({"arch": "cnn", "norm": "rms"}, "norm", "for arch=cnn"),
        ({"arch": "cnn", "width": 128}, "width", "≤ 64"),
        ({"arch": "gpt"}, "arch", "one of"),
    ],
)
def test_unsupported_combinations_name_their_fields(config: dict, field: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_run_config(config)
    fields = {e["field"]: e["message"] for e in caught.value.errors}
    assert field in fields and words in fields[field], fields


def test_fields_an_architecture_does_not_read_are_refused_by_name() -> None:
    # Accepted and silently ignored before: now each field is named, with the architecture.
    with pytest.raises(ProtocolError) as caught:
        parse_run_config({"arch": "transformer", "init": "kaiming", "width": 7, "dataset": "spiral"})
    named = {e["field"]: e["message"] for e in caught.value.errors}
    assert set(named) == {"init", "width", "dataset"}
    assert all("arch=transformer does not read" in message for message in named.values()), named
    # Every field some architecture does not read is refused for it, whatever its value.
    for arch, rules in ARCHS.items():
        for name in rules.unread:
            value = RunConfig.model_fields[name].default
            with pytest.raises(ProtocolError) as caught:
                parse_run_config({"arch": arch, name: value})
            assert [e["field"] for e in caught.value.errors] == [name], (arch, name)
    # A value an architecture requires is filled in when left out.
    assert parse_run_config({"arch": "cnn"}).dataset == "digits"


def test_twin_b_of_another_architecture_leaves_out_what_b_does_not_read() -> None:
    a, b = parse_twin_configs({"arch": "mlp", "width": 32, "dataset": "moons"}, {"arch": "transformer"})
    assert b is not None and b.arch == "transformer" and a.width == 32
    a, b = parse_twin_configs({"arch": "transformer", "d_model": 32}, {"arch": "mlp"})
    assert b is not None and b.arch == "mlp" and a.d_model == 32
    # B = CNN takes the digits it requires; B = MLP from a CNN keeps the digits A trained on.
    _, b = parse_twin_configs({"arch": "mlp", "dataset": "spiral"}, {"arch": "cnn"})
    assert b is not None and b.dataset == "digits"
    _, b = parse_twin_configs({"arch": "cnn"}, {"arch": "mlp"})
    assert b is not None and b.dataset == "digits"


def test_architecture_defaults_fill_only_what_the_client_left_out() -> None:
    assert parse_run_config({"arch": "transformer"}).norm_position == "pre"
    assert parse_run_config({"arch": "resmlp", "norm_position": "post"}).norm_position == "post"
    cnn = parse_run_config({"arch": "cnn", "depth": 4})
    assert (cnn.depth, cnn.width, cnn.norm_position) == (4, 16, "before")
    # Twin B is built from what A's client sent, so it may change the architecture.
    a, b = parse_twin_configs({"arch": "mlp", "norm": "layer"}, {"arch": "resmlp"})
    assert b is not None and (b.arch, b.norm_position, b.norm) == ("resmlp", "pre", "layer")


def test_the_budget_prices_each_architecture_and_names_the_limit() -> None:
    settings = Settings()
    small = RunCost.of(_spec("transformer"))
    trainer = Trainer(_spec("transformer"))
    assert small.parameters == pytest.approx(trainer.parameter_count, rel=0.05)
    for arch in ("resmlp", "cnn"):
        cost, real = RunCost.of(_spec(arch)), Trainer(_spec(arch)).parameter_count
        assert real <= cost.parameters <= 4 * real, (arch, cost.parameters, real)
    huge = parse_run_config(
        {
            "arch": "transformer",
            "d_model": 256,
            "depth": 12,
            "seq_len": 32,
            "batch_size": 1024,
            "steps": 100_000,
        }
    ).to_spec()
    with pytest.raises(ProtocolError) as caught:
        check_budget(huge, settings)
    assert {e["field"] for e in caught.value.errors} >= {"batch_size", "steps"}
    assert "2·seq_len" in caught.value.message


def test_ics_skips_nothing_and_leaves_the_transformer_untouched() -> None:
    trainer = Trainer(_spec("transformer", steps=3, emit_every=3, ics_every=3))
    frames = list(trainer.run(threading.Event()))
    again = Trainer(_spec("transformer", steps=3, emit_every=3))
    plain = list(again.run(threading.Event()))
    assert frames[-1].loss == plain[-1].loss, "the extra passes must not change training"
    for a, b in zip(trainer.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_twin_b_on_another_architecture_takes_its_defaults_unless_compare_names_them() -> None:
    # The page sends every field A reads; A's mlp placement must not follow B into the transformer.
    unread = set(ARCHS["mlp"].unread)
    full_a = {**{k: v for k, v in RunSpec().__dict__.items() if k not in unread}, "norm": "layer"}
    _, b = parse_twin_configs(full_a, {"arch": "transformer"})
    assert b is not None and (b.arch, b.norm_position, b.activation, b.optimizer) == (
        "transformer",
        "pre",
        "gelu",
        "adam",
    )
    _, b = parse_twin_configs(full_a, {"arch": "transformer", "norm_position": "post", "lr": 0.01})
    assert b is not None and (b.norm_position, b.lr, b.norm) == ("post", 0.01, "layer")
