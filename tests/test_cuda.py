"""The CUDA path: runs where torch sees a GPU, skipped (visibly, with the reason) where none does."""

from __future__ import annotations

import threading

import pytest
import torch

from app.model import BatchNorm
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
