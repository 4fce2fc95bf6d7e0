"""The door to every architecture: one registry entry per `spec.arch`, each honouring Network."""

from __future__ import annotations

from typing import get_args

import pytest
import torch
from torch import nn

from app.nets import ARCHITECTURES, build_network, load_data
from app.spec import Arch, RunSpec

SMALL = {
    "mlp": RunSpec(arch="mlp", depth=2, width=8),
    "resmlp": RunSpec(arch="resmlp", depth=2, width=8, norm_position="pre"),
    "cnn": RunSpec(arch="cnn", depth=2, width=4, activation="relu"),
    "transformer": RunSpec(arch="transformer", depth=1, d_model=8, heads=2, seq_len=3, vocab=4, norm="layer",
                           norm_position="pre"),
}  # fmt: skip


def test_every_arch_the_spec_names_has_one_registry_entry() -> None:
    assert sorted(ARCHITECTURES) == sorted(get_args(Arch)) == sorted(SMALL)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_every_network_is_a_module_with_taps_sized_for_its_data(arch: str) -> None:
    spec = SMALL[arch]
    data = load_data(spec)
    net = build_network(spec, data)
    assert isinstance(net, nn.Module)
    taps = net.taps()
    assert taps and len({tap.name for tap in taps}) == len(taps)
    modules = set(net.modules())
    assert all(tap.module in modules for tap in taps)
    parameters = {id(p) for p in net.parameters()}
    assert all(id(tap.weight) in parameters for tap in taps if tap.weight is not None)
    logits = net(data.x_train[:3])
    assert logits.shape[0] == 3 and logits.shape[-1] == data.classes
    net.resample_noise()  # every network answers it, noisy or not
    assert net.eval() is net and net.train() is net and net.to(torch.device("cpu")) is net


def test_the_transformer_reads_a_sequence_task_the_others_a_dataset() -> None:
    assert load_data(SMALL["transformer"]).name == "copy"
    assert load_data(SMALL["mlp"]).name == "digits"
