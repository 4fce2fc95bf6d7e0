"""Every architecture behind one door: `load_data` and `build_network` dispatch on `spec.arch`.

A network is an nn.Module honouring `Network`: `taps()` lists the tensors the probes summarise,
in forward order, and `resample_noise()` draws the next step's noisy-norm noise. It registers its
modules in forward order, which the internal-covariate-shift instrument relies on to tell which
layers lie below a weight. A new architecture is a module here and one entry in ARCHITECTURES.

    data = load_data(spec)
    net = build_network(spec, data)  # on the CPU
    names = [tap.name for tap in net.taps()]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, Self

import torch
from torch import nn

from app.datasets import Dataset, load_dataset, load_task
from app.datasets.upload import Table
from app.nets.cnn import build_cnn
from app.nets.layers import BatchNorm, NoisyShift, Tap
from app.nets.mlp import build_mlp
from app.nets.resmlp import build_resmlp
from app.nets.transformer import build_transformer
from app.spec import RunSpec

__all__ = [
    "ARCHITECTURES",
    "BatchNorm",
    "Network",
    "NoisyShift",
    "Tap",
    "build_network",
    "load_data",
]


class Network(Protocol):
    """What the trainer, probes and instruments ask of every architecture (all nn.Modules)."""

    def __call__(self, inputs: torch.Tensor, /) -> torch.Tensor: ...

    def taps(self) -> list[Tap]:
        """The probed tensors, in forward order."""
        ...

    def resample_noise(self) -> None:
        """Draw this step's noisy-norm noise (nothing where there is none)."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]: ...

    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]: ...

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, torch.Tensor]]: ...

    def modules(self) -> Iterator[nn.Module]: ...

    def train(self, mode: bool = True) -> Self: ...

    def eval(self) -> Self: ...

    def to(self, device: torch.device) -> Self: ...


# spec.arch -> the network it names, sized for the run's data.
ARCHITECTURES: dict[str, Callable[[RunSpec, Dataset], Network]] = {
    "mlp": lambda spec, data: build_mlp(spec, data.features, data.classes),
    "resmlp": lambda spec, data: build_resmlp(spec, data.features, data.classes),
    "cnn": lambda spec, data: build_cnn(spec, data.classes),
    "transformer": lambda spec, data: build_transformer(spec, vocab_size=data.classes, max_len=data.features),
}


def load_data(spec: RunSpec, table: Table | None = None) -> Dataset:
    """The run's train/test split: a sequence task for the transformer, the uploaded `table` for
    dataset "upload", else `spec.dataset`."""
    if spec.arch == "transformer":
        return load_task(spec.task, spec.seq_len, spec.vocab, spec.seed)
    if spec.dataset == "upload":
        assert table is not None, "dataset upload needs the session's table (schemas/session check it)"
        return table.dataset(spec.seed)
    return load_dataset(spec.dataset, spec.noise, spec.seed)


def build_network(spec: RunSpec, data: Dataset) -> Network:
    """The network `spec.arch` names, sized for `data`, on the CPU."""
    return ARCHITECTURES[spec.arch](spec, data)
