"""Twin runs in lockstep and learning-rate sweeps: the runner directly and over the websocket."""

from __future__ import annotations

import threading

import orjson
import pytest
import torch

from app.loops import Sweep
from app.runner import Outbox, Run
from app.schemas import ProtocolError, parse_twin_configs
from app.spec import RunSpec
from app.training import Trainer
from tests.conftest import LiveServer
from tests.test_runner import Recorder
from tests.test_web import SMALL, _open, _send, _state, _until


def test_outbox_keeps_the_newest_frame_of_each_twin() -> None:
    outbox = Outbox(lambda: None)
    for step in range(5):
        outbox.put({"type": "frame", "run": "A", "step": step}, is_frame=True)
        outbox.put({"type": "frame", "run": "B", "step": step}, is_frame=True)
    assert [(slot, '"step":4' in text) for text, slot, _ in outbox.take_tagged()] == [
        ("A", True),
        ("B", True),
    ]


def test_twin_configs_differ_only_where_asked() -> None:
    first, second = parse_twin_configs({"depth": 4, "norm": "none"}, {"norm": "batch"})
    assert second is not None and first.norm == "none" and second.norm == "batch"
    assert {k for k, v in first.model_dump().items() if second.model_dump()[k] != v} == {"norm"}
    with pytest.raises(ProtocolError) as info:
        parse_twin_configs({}, {"norm": "weird", "depth": 99})
    assert sorted(e["field"] for e in info.value.errors) == ["compare.depth", "compare.norm"]
    with pytest.raises(ProtocolError) as info:
        parse_twin_configs({}, {"emit_every": 3})
    assert info.value.errors[0]["field"] == "compare.emit_every"


class RecordingOutbox(Outbox):
    """An outbox that also keeps every message put into it, coalesced or not."""

    def __init__(self) -> None:
        super().__init__(lambda: None)
        self.run_id = 1
        self.log: list[str] = []

    def put_text(
        self, text: str, slot: str | None = None, run_id: int | None = None, keep: bool = False
    ) -> None:
        self.log.append(text)
        super().put_text(text, slot, run_id, keep)


def test_twins_step_in_lockstep_from_the_same_initial_weights() -> None:
    rec = Recorder()
    rec.outbox = RecordingOutbox()
    rec.outbox._wake = rec._wake
    spec = RunSpec(depth=3, width=16, steps=30, emit_every=10, activation="relu")
    run = Run(spec, rec.outbox, 1, twin=RunSpec(**{**spec.__dict__, "norm": "batch"}))
    run.start()
    started = rec.wait_for(lambda m: m["type"] == "started")
    assert started["runs"] == ["A", "B"] and started["compare"] == {"norm": "batch"}
    done = rec.wait_for(lambda m: m.get("state") == "done")
    assert done["step"] == 30 and "run" not in done
    assert run.join(10)
    frames = [m for m in map(orjson.loads, rec.outbox.log) if m["type"] == "frame"]
    assert [(f["run"], f["step"]) for f in frames] == [(r, s) for s in (0, 10, 20, 30) for r in "AB"]
    # Same seed, same data, same initial Linear weights: step 0 differs only by the norm.
    a0, b0 = frames[0], frames[1]
    assert a0["layers"][0]["pre"]["mean"] != b0["layers"][0]["pre"]["mean"]


def test_a_diverging_twin_ends_alone() -> None:
    rec = Recorder()
    spec = RunSpec(activation="relu", init="kaiming", depth=10, width=100, lr=1.0, steps=60, emit_every=10)
    run = Run(spec, rec.outbox, 1, twin=RunSpec(**{**spec.__dict__, "norm": "batch"}))
    run.start()
    ended = rec.wait_for(lambda m: m["type"] == "state" and m.get("run") == "A")
    assert ended["state"] == "diverged" and ended["step"] < 60
    assert rec.wait_for(lambda m: m["type"] == "state" and m["state"] != "running" and "run" not in m)[
        "state"
    ] == ("done")
    assert run.join(10)


def test_twin_frames_match_solo_runs() -> None:
    spec = RunSpec(depth=2, width=8, steps=20, emit_every=10, dataset="moons")
    twin_spec = RunSpec(**{**spec.__dict__, "norm": "layer"})
    solo = [s.loss for s in Trainer(twin_spec).run(threading.Event())]
    rec = Recorder()
    run = Run(spec, rec.outbox, 1, twin=twin_spec)
    run.start()
    rec.wait_for(lambda m: m.get("state") == "done")
    b_losses = [m["loss"] for m in rec.messages if m["type"] == "frame" and m["run"] == "B"]
    assert b_losses == pytest.approx(solo, rel=1e-6)


def test_sweep_reports_every_point_and_marks_divergence() -> None:
    rec = Recorder()
    spec = RunSpec(activation="relu", init="kaiming", depth=6, width=64)
    run = Run(
        spec,
        rec.outbox,
        1,
        twin=RunSpec(**{**spec.__dict__, "norm": "batch"}),
        sweep=Sweep(lrs=(0.01, 3.0), steps=40),
    )
    run.start()
    assert rec.wait_for(lambda m: m["type"] == "started")["sweep"]["runs"] == ["A", "B"]
    results = [rec.wait_for(lambda m: m["type"] == "sweep_result") for _ in range(4)]
    assert [(r["run"], r["lr"]) for r in results] == [("A", 0.01), ("B", 0.01), ("A", 3.0), ("B", 3.0)]
    assert [r["index"] for r in results] == [0, 1, 2, 3] and results[0]["total"] == 4
    high_plain = results[2]
    assert high_plain["diverged"] and high_plain["final_loss"] is None
    for r in results[:2]:
        assert not r["diverged"] and r["final_loss"] is not None and 0 <= r["train_acc"] <= 1
    assert rec.wait_for(lambda m: m.get("state") == "done")
    assert run.join(10)


def test_compare_and_sweep_over_the_websocket(live_server: LiveServer) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 20}, "compare": {"norm": "batch"}})
        started = _until(ws, lambda m: m["type"] == "started")
        assert started["configs"]["B"]["norm"] == "batch" and started["configs"]["A"]["norm"] == "none"
        runs = set()
        done = None
        while done is None:
            message = _until(ws, lambda m: m["type"] in ("frame", "state"))
            if message["type"] == "frame":
                runs.add(message["run"])
            elif message["state"] not in ("running",):
                done = message
        assert runs == {"A", "B"} and done["state"] == "done"
        _send(ws, {"type": "sweep", "config": {**SMALL}, "lrs": [0.01, 0.1], "steps": 20})
        results = [_until(ws, lambda m: m["type"] == "sweep_result") for _ in range(2)]
        assert [r["lr"] for r in results] == [0.01, 0.1]
        assert _until(ws, _state("done"))
        _send(ws, {"type": "sweep", "config": {}, "lrs": [], "steps": 20})
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "invalid_message" and error["errors"][0]["field"] == "lrs"


def test_compare_mode_costs_twice_the_budget() -> None:
    from app.budget import RunCost
    from app.config import Settings
    from app.session import check_budget

    spec = RunSpec(depth=4, width=64, steps=1000, batch_size=64)
    flops = RunCost.of(spec).total_flops  # its parts: tests/test_security.py::test_run_cost
    check_budget(spec, Settings(max_train_flops=flops * 1.5))
    with pytest.raises(ProtocolError):
        check_budget(spec, Settings(max_train_flops=flops * 1.5), twin=spec)
    with pytest.raises(ProtocolError):
        check_budget(spec, Settings(max_train_flops=flops * 1.5), runs=2)  # a sweep of 2 points
    assert torch.get_num_threads() >= 1


def test_run_b_is_priced_on_its_own_network_not_as_a_copy_of_a() -> None:
    """Hardening round 2, item 1: a tiny A and a huge B was accepted (B never priced)."""
    from app.config import Settings
    from app.schemas import parse_twin_configs
    from app.session import check_budget

    a, b = parse_twin_configs(
        {"arch": "transformer", "depth": 1, "d_model": 8, "heads": 1, "steps": 100000},
        {"depth": 10, "d_model": 256, "heads": 16, "batch_size": 1024},
    )
    assert b is not None
    check_budget(a.to_spec(), Settings())  # A alone is small
    with pytest.raises(ProtocolError) as caught:
        check_budget(a.to_spec(), Settings(), twin=b.to_spec())
    fields = {e["field"] for e in caught.value.errors}
    assert {"compare.batch_size", "steps"} <= fields, caught.value.errors  # 461 M values, 7.8e16 FLOPs
    assert "run B" in caught.value.message
    # A CNN twin over the activation limit (25 M values against 16 M) is refused by name too.
    a, b = parse_twin_configs({"arch": "cnn", "width": 8}, {"width": 64, "depth": 6, "batch_size": 1024})
    assert b is not None
    check_budget(a.to_spec(), Settings())
    with pytest.raises(ProtocolError) as caught:
        check_budget(a.to_spec(), Settings(), twin=b.to_spec())
    assert "compare.batch_size" in {e["field"] for e in caught.value.errors}


def _final(spec: RunSpec) -> tuple[float | None, float | None]:
    snaps = list(Trainer(spec).run(threading.Event()))
    return snaps[-1].loss, snaps[-1].test_acc


@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_batch_norm_still_trains_nearly_as_fast(seed: int) -> None:
    """Santurkar et al. Fig. 2: inputs that shift every step do not stop batch norm."""
    spec = RunSpec(
        depth=6, width=100, activation="relu", init="kaiming", lr=0.1, batch_size=128, steps=300,
        emit_every=300, norm="batch", seed=seed,
    )  # fmt: skip
    loss, accuracy = _final(spec)
    noisy_loss, noisy_accuracy = _final(RunSpec(**{**spec.__dict__, "noisy_norm": True}))
    assert loss is not None and noisy_loss is not None and accuracy and noisy_accuracy
    assert noisy_loss < 0.1 and noisy_accuracy > 0.85
    assert noisy_accuracy > accuracy - 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_norm_fails_at_batch_size_two_while_group_and_layer_norm_hold(seed: int) -> None:
    """Wu & He 2018: at 2 examples per batch, batch norm's running averages are poor estimates."""
    spec = RunSpec(
        depth=3, width=128, activation="relu", optimizer="momentum", lr=0.00625, batch_size=2,
        steps=1500, emit_every=1500, seed=seed,
    )  # fmt: skip
    _, batch = _final(RunSpec(**{**spec.__dict__, "norm": "batch"}))
    _, group = _final(RunSpec(**{**spec.__dict__, "norm": "group", "groups": 8}))
    _, layer = _final(RunSpec(**{**spec.__dict__, "norm": "layer"}))
    assert batch is not None and group is not None and layer is not None
    assert group > 0.85 and layer > 0.85
    assert batch < min(group, layer) - 0.3


def test_frames_with_measurements_survive_a_slow_client() -> None:
    outbox = Outbox(lambda: None)
    outbox.run_id = 1
    run = Run(RunSpec(dataset="xor", depth=2, width=8, steps=200, emit_every=1, eval_every=50), outbox, 1)
    run.start()
    assert run.join(60)
    # A client that read nothing until the end: plain frames coalesced to the newest, but every
    # frame carrying a test-accuracy reading is still there, in order.
    frames = [m for m in map(orjson.loads, outbox.take()) if m["type"] == "frame"]
    assert [f["step"] for f in frames if f["test_acc"] is not None] == [0, 50, 100, 150, 200]
    assert len(frames) <= 10 and outbox.frames_dropped > 150  # plus the frame just before each


def test_kept_frames_are_capped() -> None:
    from app.runner import MAX_KEPT_FRAMES

    outbox = Outbox(lambda: None)
    for step in range(MAX_KEPT_FRAMES + 50):
        outbox.put({"type": "frame", "step": step, "test_acc": 0.5}, is_frame=True, keep=True)
    pending = outbox.take_tagged()
    assert sum(kept for _, _, kept in pending) == MAX_KEPT_FRAMES
    assert len(pending) == MAX_KEPT_FRAMES + 1  # and the newest as an ordinary frame


def test_a_huge_twin_or_sweep_twin_is_refused_over_the_websocket(live_server: LiveServer) -> None:
    """The attack of hardening round 2, item 1, through the real server: refused, nothing runs."""
    tiny = {"arch": "transformer", "depth": 1, "d_model": 8, "heads": 1, "steps": 100000}
    huge_b = {"depth": 10, "d_model": 256, "heads": 16, "batch_size": 1024}
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": tiny, "compare": huge_b})
        error = _until(ws, lambda m: m["type"] in ("error", "started"))
        assert error["type"] == "error" and error["code"] == "over_budget", error
        assert "compare.batch_size" in {e["field"] for e in error["errors"]}
        _send(
            ws,
            {"type": "sweep", "config": {**tiny, "steps": 10}, "compare": huge_b, "lrs": [0.1], "steps": 10},
        )
        error = _until(ws, lambda m: m["type"] in ("error", "started"))
        assert error["type"] == "error" and error["code"] == "over_budget", error
        assert "compare.batch_size" in {e["field"] for e in error["errors"]}
        # The connection survives: a small run still trains.
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 5}})
        assert _until(ws, _state("done"))
