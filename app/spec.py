"""RunSpec: the typed, already-validated description of one training run.

The web boundary (`schemas.RunConfig`) validates untrusted JSON and turns it into a RunSpec;
everything below the runner takes a RunSpec and trusts it.

    spec = RunSpec(depth=10, activation="sigmoid", norm="batch", lr=0.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "upload": the table the session's user uploaded (app/datasets/upload.py); it travels beside
# the spec, never inside it (a spec stays a few plain values).
Dataset = Literal["spiral", "moons", "circles", "xor", "gaussian", "digits", "upload"]
Activation = Literal["sigmoid", "tanh", "relu", "gelu", "linear"]
Norm = Literal["none", "batch", "layer", "group", "rms"]
NormPosition = Literal["before", "after", "pre", "post"]
Arch = Literal["mlp", "resmlp", "transformer", "cnn"]
Task = Literal["copy", "reverse", "sort"]
Init = Literal["default", "standard", "xavier", "kaiming", "normal"]
Optimizer = Literal["sgd", "momentum", "adam"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class RunSpec:
    """One run: data, network, optimiser and probing cadence."""

    arch: Arch = "mlp"  # mlp | resmlp (residual blocks) | transformer (tiny causal) | cnn (digits)
    dataset: Dataset = "digits"  # mlp/resmlp; cnn: digits (or an upload of 8x8 images); transformer: `task`
    noise: float = 0.1  # std of the noise added to the 2-D sets
    depth: int = 8  # hidden layers
    width: int = 64  # units per hidden layer
    activation: Activation = "sigmoid"
    norm: Norm = "none"
    groups: int = 8  # group norm's groups; divides width
    # mlp/cnn: before (Linear -> Norm -> Act, Ioffe & Szegedy) | after (Linear -> Act -> Norm);
    # resmlp/transformer: pre (x + F(Norm(x))) | post (Norm(x + F(x)))
    norm_position: NormPosition = "before"
    init: Init = "default"  # default: PyTorch's U(+-1/sqrt(fan_in)) for weights and biases;
    # standard: Glorot & Bengio's "standard" init, the same weights with zero biases; xavier,
    # kaiming and normal draw the weights as named and zero the biases
    init_std: float = 1.0  # std of the "normal" init
    optimizer: Optimizer = "sgd"  # "momentum" is SGD with momentum 0.9
    lr: float = 0.1
    batch_size: int = 64
    steps: int = 2000
    seed: int = 0  # same seed: same data, data order and initial Linear weights
    device: Device = "auto"  # auto takes a GPU when torch sees one
    emit_every: int = 5  # training steps between frames
    bins: int = 64  # histogram bins
    eval_every: int = 100  # steps between test-accuracy measurements (eval mode)
    max_steps_per_s: int = 0  # pace the run for human eyes; 0 = as fast as the machine goes
    # Instruments (issue: twin runs and diagnostics); each costs time only when on.
    probe_gradients: bool = False  # per-layer gradient histograms, gradient norm, update ratio
    # drift compares each layer's distribution with this many frames ago; 0 = off (the page
    # switches it on with its panel: ~0.5-1 ms a frame at 24 layers)
    drift_lag: int = 0
    noisy_norm: bool = False  # Santurkar et al.: after each norm, a <- s*a + m with fresh noise
    ics_every: int = 0  # steps between internal-covariate-shift measurements (0 = off)
    landscape_every: int = 0  # steps between loss-landscape probes (0 = off)
    test_shift: float = 0.0  # added to test inputs: a test distribution that moved
    test_scale: float = 1.0  # multiplies test inputs (before the shift)
    eval_batch_size: int = 0  # test batches of this size (0 = the whole test set at once)
    # Architectures beyond the MLP (issue: residual nets, a tiny transformer, a small CNN).
    warmup_steps: int = 0  # the learning rate rises linearly from 0 over these steps (0 = none)
    task: Task = "copy"  # the transformer's sequence task: reproduce, reverse or sort the input
    seq_len: int = 8  # input tokens per sequence (the model also reads the answer, causally)
    vocab: int = 10  # distinct input symbols
    d_model: int = 64  # the transformer's residual-stream width; its FFN is 4x wider
    heads: int = 4  # attention heads; divides d_model
