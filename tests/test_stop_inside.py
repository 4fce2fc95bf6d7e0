"""A stop is seen inside long measurements (hardening round 2, item 5).

Before: the stop flag was read only before each training step, so a stop during a test pass of
eval_batch_size 1, an ICS measurement (one extra pass per layer) or a transformer's token-by-token
generation waited for the whole measurement, and the watchdog killed the worker 5 s later. Now
each measurement checks the flag between its passes and the run ends `stopped` within one pass.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch
from torch import nn

from app.config import Settings
from app.evaluation import STOP_CHUNK_ROWS
from app.spec import RunSpec
from app.training import Trainer
from tests.conftest import serve
from tests.test_web import _open, _send, _until, eventually


def _stop_after(trainer: Trainer, calls: int, stop: threading.Event, when: Any) -> list[int]:
    """Set `stop` once the network has been called `calls` times while `when(model)` holds;
    returns the list the calls are counted in (all calls, while `when` holds)."""
    seen: list[int] = []

    def hook(module: nn.Module, args: Any) -> None:
        if when(module):
            seen.append(1)
            if len(seen) == calls:
                stop.set()

    assert isinstance(trainer.model, nn.Module)
    trainer.model.register_forward_pre_hook(hook)
    return seen


def test_a_stop_during_a_test_pass_ends_the_run_within_one_batch() -> None:
    # The digits' test split in batches of 1: hundreds of passes for one evaluation.
    spec = RunSpec(dataset="digits", depth=3, width=16, norm="batch", eval_batch_size=1, steps=50)
    trainer, stop = Trainer(spec), threading.Event()
    test_rows = len(trainer.x_test)
    seen = _stop_after(trainer, 3, stop, lambda model: not model.training)  # eval mode: the test pass
    frames = list(trainer.run(stop))
    assert trainer.outcome == "stopped"
    assert frames == []  # the step-0 frame's evaluation was the one interrupted
    assert len(seen) == 3 < test_rows  # the pass that saw the stop set was the last one


def test_a_stop_during_an_ics_measurement_ends_it_within_one_layer() -> None:
    depth = 12
    spec = RunSpec(dataset="digits", depth=depth, width=16, ics_every=1, eval_every=1000, steps=50)
    trainer, stop = Trainer(spec), threading.Event()
    armed = threading.Event()

    original = trainer._optimizer_step

    def step(*args: Any) -> None:
        armed.set()  # the passes inside the optimizer step are the instrument's
        try:
            original(*args)
        finally:
            armed.clear()

    trainer._optimizer_step = step  # type: ignore[method-assign]
    seen = _stop_after(trainer, 2, stop, lambda _: armed.is_set())
    frames = list(trainer.run(stop))
    assert trainer.outcome == "stopped"
    assert [f.step for f in frames] == [0]
    # G at `before` (1 pass) + one pass per layer: depth + 1 weights would take depth + 2 passes.
    assert len(seen) == 2 < depth + 2


def test_a_stop_during_generation_ends_it_within_one_token() -> None:
    spec = RunSpec(
        arch="transformer",
        depth=1,
        d_model=16,
        heads=2,
        seq_len=8,
        norm="layer",
        norm_position="pre",
        steps=20,
    )
    trainer, stop = Trainer(spec), threading.Event()
    # Generation calls the model on growing prefixes, the full pass on (rows, 2L + 1) tokens.
    seen = _stop_after(
        trainer, 2, stop, lambda model: not model.training and torch.is_grad_enabled() is False
    )
    frames = list(trainer.run(stop))
    assert trainer.outcome == "stopped" and frames == []
    assert len(seen) == 2 < 1 + spec.seq_len  # test pass, then a token or two, not all eight


def test_eval_mode_accuracy_does_not_depend_on_the_chunks_a_stop_can_come_between() -> None:
    spec = RunSpec(dataset="digits", depth=3, width=32, norm="batch", steps=30, eval_every=30)
    trainer = Trainer(spec)
    frames = list(trainer.run(threading.Event()))
    assert len(trainer.x_test) > STOP_CHUNK_ROWS  # the pass really is cut
    trainer.model.eval()
    with torch.no_grad():  # the oracle: one pass over the whole test set
        whole = (trainer.model(trainer.x_test).argmax(dim=1) == trainer.y_test).float().mean().item()
    trainer.model.train()
    assert frames[-1].test_acc == pytest.approx(whole, abs=1e-9)


def test_a_stop_during_a_long_evaluation_is_a_prompt_stop_not_a_kill() -> None:
    # The largest admitted transformer: its step-0 evaluation (a test pass over 512 sequences,
    # then 32 generation passes) took ~42 s on the 2-core CI machine. Before, a stop waited for
    # it and the watchdog killed the worker after 5 s; now it is seen within one chunk or token.
    config = {
        "arch": "transformer",
        "depth": 10,
        "d_model": 256,
        "heads": 16,
        "seq_len": 32,
        "batch_size": 6,
        "steps": 10,
        "eval_every": 1000,
    }
    with serve(Settings(max_runs=1)) as server, _open(server) as ws:
        pool = server.app.state.pool
        eventually(lambda: pool.idle_count == 1, timeout=60)
        (worker,) = pool.workers
        _send(ws, {"type": "start", "config": config})
        _until(ws, lambda m: m["type"] == "state" and m["state"] == "running", 60)
        _send(ws, {"type": "stop"})  # the step-0 frame's evaluation is under way
        assert (
            _until(ws, lambda m: m["type"] == "state" and m["state"] != "running", 60)["state"] == "stopped"
        )
        eventually(lambda: pool.idle_count == 1)
        assert pool.workers == [worker] and worker.alive  # it stopped by itself: not killed
