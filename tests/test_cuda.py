"""The CUDA path: runs where torch sees a GPU, skipped (visibly, with the reason) where none does."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from app.nets import BatchNorm
from app.probes import histogram_of
from app.spec import RunSpec
from app.training import Trainer, resolve_device

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not tested here"
    ),
]


def test_auto_picks_the_gpu_and_trains_there() -> None:
    assert resolve_device("auto").type == "cuda"
    trainer = Trainer(RunSpec(device="auto", norm="batch", depth=4, width=64, steps=40, emit_every=10))
    snaps = list(trainer.run(threading.Event()))
    assert trainer.outcome == "done" and next(trainer.model.parameters()).is_cuda
    assert [s.step for s in snaps] == [0, 10, 20, 30, 40]
    assert snaps[-1].test_acc is not None and snaps[-1].loss is not None


def test_gpu_and_cpu_runs_agree_at_the_first_frame() -> None:
    spec = RunSpec(depth=3, width=32, steps=1, emit_every=1, seed=4)
    cpu = next(iter(Trainer(RunSpec(**{**spec.__dict__, "device": "cpu"})).run(threading.Event())))
    gpu = next(iter(Trainer(RunSpec(**{**spec.__dict__, "device": "cuda"})).run(threading.Event())))
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-4)
    for a, b in zip(cpu.layers, gpu.layers, strict=True):
        assert a.pre.mean == pytest.approx(b.pre.mean, rel=1e-3, abs=1e-5)


def test_histogram_on_gpu_matches_cpu() -> None:
    values = torch.randn(256, 128) * 3 + 1
    on_cpu, _ = histogram_of(values, 32)
    on_gpu, _ = histogram_of(values.cuda(), 32)
    assert on_gpu.n == on_cpu.n and on_gpu.lo == on_cpu.lo and on_gpu.hi == on_cpu.hi
    assert sum(abs(a - b) for a, b in zip(on_gpu.counts, on_cpu.counts, strict=True)) <= 4
    assert on_gpu.p50 == pytest.approx(on_cpu.p50, abs=1e-5)


def test_batch_norm_matches_torch_on_gpu() -> None:
    ours, ref = BatchNorm(16).cuda(), torch.nn.BatchNorm1d(16).cuda()
    x = torch.randn(32, 16, device="cuda") * 2 + 1
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)


# Small nets of every architecture, as the schema would fill them in (no web imports here, so
# this file also runs on a GPU machine that has torch but not the server's packages).
ARCHS = {
    "mlp": RunSpec(arch="mlp", depth=3, width=16, norm="batch"),
    "resmlp": RunSpec(arch="resmlp", depth=3, width=16, norm="batch", norm_position="pre"),
    "cnn": RunSpec(arch="cnn", dataset="digits", depth=2, width=8, norm="batch", activation="relu"),
    "transformer": RunSpec(
        arch="transformer",
        depth=2,
        d_model=32,
        seq_len=4,
        vocab=6,
        norm="layer",
        norm_position="pre",
        activation="gelu",
        optimizer="adam",
        lr=3e-3,
    ),
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_architecture_trains_on_the_gpu_with_every_instrument(arch: str) -> None:
    spec = replace(
        ARCHS[arch],
        steps=12,
        emit_every=4,
        eval_every=4,
        probe_gradients=True,
        ics_every=4,
        landscape_every=4,
        drift_lag=1,
        seed=3,
    )
    gpu = Trainer(replace(spec, device="cuda"))
    snaps = list(gpu.run(threading.Event()))
    assert gpu.outcome == "done" and all(p.is_cuda for p in gpu.model.parameters())
    assert [s.step for s in snaps] == [0, 4, 8, 12]
    last = snaps[-1]
    assert all(s.loss is not None for s in snaps) and last.test_acc is not None
    assert last.ics is not None and last.landscape is not None
    for layer in last.layers:
        assert layer.pre.n > 0 and sum(layer.pre.counts) == layer.pre.n and layer.nonfinite == 0
        assert layer.grad_norm is not None and layer.grad_norm > 0 and layer.drift is not None
    # The same seed on the CPU: the same entries, and the same network at step 0.
    cpu = Trainer(replace(spec, device="cpu"))
    first = next(iter(cpu.run(threading.Event())))
    assert [layer.name for layer in first.layers] == [layer.name for layer in snaps[0].layers]
    assert snaps[0].loss == pytest.approx(first.loss, rel=1e-3)
    for a, b in zip(first.layers, snaps[0].layers, strict=True):
        assert b.pre.mean == pytest.approx(a.pre.mean, rel=1e-2, abs=1e-4)
        assert b.pre.std == pytest.approx(a.pre.std, rel=1e-2, abs=1e-4)
