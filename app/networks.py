"""Every architecture behind one door: `load_data` and `build_network` dispatch on `spec.arch`.

Each network is an nn.Module with `taps()` (the tensors the probes summarise, in forward order)
and `resample_noise()`; it registers its modules in forward order, which the
internal-covariate-shift instrument relies on to tell which layers lie below a weight.
"""

from __future__ import annotations

from app.cnn import CNN, build_cnn
from app.data import Dataset, load_dataset
from app.model import MLP, build_model
from app.resmlp import ResMLP, build_resmlp
from app.spec import RunSpec
from app.tasks import load_task
from app.transformer import Transformer, build_transformer

Network = MLP | ResMLP | CNN | Transformer


def load_data(spec: RunSpec) -> Dataset:
    """The run's train/test split: a sequence task for the transformer, else `spec.dataset`."""
    if spec.arch == "transformer":
        return load_task(spec.task, spec.seq_len, spec.vocab, spec.seed)
    return load_dataset(spec.dataset, spec.noise, spec.seed)


def build_network(spec: RunSpec, data: Dataset) -> Network:
    """The network `spec.arch` names, sized for `data`, on the CPU."""
    if spec.arch == "resmlp":
        return build_resmlp(spec, data.features, data.classes)
    if spec.arch == "cnn":
        return build_cnn(spec, data.classes)
    if spec.arch == "transformer":
        return build_transformer(spec, vocab_size=data.classes, max_len=data.features)
    return build_model(spec, data.features, data.classes)
