"""What a run will cost, computed from its spec alone, before anything is allocated.

A run's work is its training steps, its evaluations (test passes in eval mode and with batch
statistics; the transformer's token-by-token generation) and its instruments (Santurkar et al.'s
ICS: one extra forward-backward pass per weight layer; the landscape probe: six; gradient
histograms on every frame). All of it is priced in FLOPs (2 per multiply-add; a backward pass is
twice a forward), plus a floor per layer call that prices many tiny batches (eval_batch_size 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.datasets.classification import SYNTHETIC_POINTS, TEST_FRACTION
from app.datasets.sequences import TEST_ROWS as SEQUENCE_TEST_ROWS
from app.datasets.upload import Table
from app.evaluation import GENERATION_ROWS
from app.instruments import LANDSCAPE_MULTIPLIERS
from app.nets.cnn import IMAGE_PIXELS  # the CNN's maps: an upper bound on positions per channel
from app.spec import RunSpec

# (input features, classes) of each dataset
DATASET_SHAPES = {"digits": (64, 10)}
TOY_SHAPE = (2, 2)
DIGITS_ROWS = 1797
# One layer called on one batch costs at least this many FLOP-equivalents, whatever its size:
# Python and kernel-launch overhead. Measured: a 24 x 512 net tested in batches of 1 takes
# ~1.5 ms a pass, ~60 us a layer, ~1.7e6 FLOPs at the budget's reference rate (5e13 FLOPs in
# ~30 min of one core, ~2.8e10 FLOP/s).
LAYER_CALL_FLOPS = 1.5e6
GRADIENT_PROBE_FLOPS = 30  # per parameter and frame: gradient histograms, norms, update ratios
REFERENCE_FLOPS_PER_S = 2.8e10  # the budget's reference rate: one core of this machine
# A frame's cost (histograms and statistics of every tap): a fixed part, a part per tap and a part
# per value kept. Measured on this machine, 1 thread: 10 x 100 at batch 64 1.28 ms a frame,
# 4 x 100 0.86 ms, 20 x 32 at batch 32 1.25 ms, 10 x 400 at batch 256 4.88 ms.
FRAME_FLOPS = 1.5e7
FRAME_VALUE_FLOPS = 100
# Many runs sharing few cores each pay more per step and frame than one alone (caches shared by
# tens of processes, context switches): bench/classroom.py measured 1.3x at 12 runs on 2 cores,
# 1.5x at 16 and 30. The floor is priced at the higher figure, so an admitted run keeps it.
CONTENTION = 1.5


@dataclass(frozen=True)
class DataShape:
    """An uploaded table's size, as pricing needs it (dataset "upload"): its shape decides the
    network's first and last layers and the test set every evaluation passes over."""

    features: int
    classes: int
    rows: int

    @property
    def test_rows(self) -> int:
        return int(self.rows * TEST_FRACTION)

    @classmethod
    def of(cls, table: Table | None) -> DataShape | None:
        return None if table is None else cls(table.features, table.classes, table.rows)


@dataclass(frozen=True)
class RunCost:
    """Parameters, values kept for the backward pass, and the FLOPs of one run's whole work."""

    parameters: int
    activation_values: int  # values per step that each kept tensor holds, summed over layers
    train_flops: float  # ~6 x (multiply-adds per example) x batch x steps: forward 2, backward 4
    sizes: str  # the fields that set the size, for the error message
    eval_flops: float = 0.0  # every evaluation of the run: test passes, generation
    instrument_flops: float = 0.0  # ICS, landscape and gradient probes over the run
    taps: int = 0  # the layers a frame reports (~ the weight layers)

    @property
    def total_flops(self) -> float:
        return self.train_flops + self.eval_flops + self.instrument_flops

    @staticmethod
    def of(spec: RunSpec, data: DataShape | None = None) -> RunCost:
        """`data`: the uploaded table's shape, for a run on dataset "upload"."""
        assert spec.dataset != "upload" or spec.arch == "transformer" or data is not None, (
            "price an upload by its shape"
        )
        if spec.arch == "transformer":
            shape = _transformer(spec)
        elif spec.arch == "cnn":
            shape = _cnn(spec, data)
        else:
            shape = _mlp(spec, data)
        return shape.priced(spec)


@dataclass(frozen=True)
class _Shape:
    """What pricing needs of a network: its size, and the cost of its passes."""

    parameters: int
    activation_values: int
    sizes: str
    example_macs: float  # multiply-adds of one forward pass of one example (a whole sequence)
    weight_layers: int  # the layers ICS measures, and the layer calls of a pass
    test_rows: int
    generation_macs: float = 0.0  # the transformer: writing the test answers one token at a time

    def priced(self, spec: RunSpec) -> RunCost:
        step = 6.0 * self.example_macs * spec.batch_size  # forward 2, backward 4
        calls = LAYER_CALL_FLOPS * self.weight_layers
        train = (step + calls) * spec.steps
        # Evaluations: at step 0, every eval_every steps and at the end.
        evaluations = spec.steps // spec.eval_every + 2
        passes = 2 if spec.norm == "batch" else 1  # eval mode, and batch statistics
        batch = spec.eval_batch_size or self.test_rows
        batches = -(-self.test_rows // batch)
        one_eval = passes * (2.0 * self.example_macs * self.test_rows + batches * calls)
        if self.generation_macs:  # one pass per answer token
            one_eval += 2.0 * self.generation_macs + spec.seq_len * calls
        instruments = 0.0
        if spec.ics_every > 0:  # G at the step's start, then one pass per layer with those below moved
            instruments += (spec.steps // spec.ics_every) * (self.weight_layers + 1) * (step + calls)
        if spec.landscape_every > 0:
            probes = spec.steps // spec.landscape_every
            instruments += probes * (1 + len(LANDSCAPE_MULTIPLIERS)) * (step + calls)
        if spec.probe_gradients:
            frames = spec.steps // spec.emit_every + 1
            instruments += frames * GRADIENT_PROBE_FLOPS * self.parameters
        return RunCost(
            parameters=self.parameters,
            activation_values=self.activation_values,
            train_flops=train,
            sizes=self.sizes,
            eval_flops=evaluations * one_eval,
            instrument_flops=instruments,
            taps=self.weight_layers,
        )


def _test_rows(dataset: str) -> int:
    return int((DIGITS_ROWS if dataset == "digits" else SYNTHETIC_POINTS) * TEST_FRACTION)


def _mlp(spec: RunSpec, data: DataShape | None) -> _Shape:
    if spec.dataset == "upload" and data is not None:
        features, classes = data.features, data.classes
    else:
        features, classes = DATASET_SHAPES.get(spec.dataset, TOY_SHAPE)
    # A residual net: a stem Linear, then two width x width Linears per block; a final norm.
    residual = spec.arch == "resmlp"
    hidden = [spec.width] * (2 * spec.depth + 1 if residual else spec.depth)
    sizes = [features, *hidden, classes]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
    biases = sum(sizes[1:])
    norm_params = 0 if spec.norm == "none" else 2 * spec.width * (spec.depth + residual)
    return _Shape(
        parameters=weights + biases + norm_params,
        activation_values=spec.batch_size * spec.width * len(hidden),
        sizes="batch_size x width x depth",
        example_macs=weights,
        weight_layers=len(sizes) - 1,
        test_rows=data.test_rows
        if spec.dataset == "upload" and data is not None
        else _test_rows(spec.dataset),
    )


def _cnn(spec: RunSpec, data: DataShape | None) -> _Shape:
    upload = data if spec.dataset == "upload" else None
    classes = upload.classes if upload is not None else 10
    channels = [1] + [spec.width] * spec.depth
    kernels = sum(9 * a * b for a, b in zip(channels, channels[1:], strict=False))
    head = spec.width * IMAGE_PIXELS * classes
    return _Shape(
        parameters=kernels + spec.width * spec.depth * 3 + head + classes,
        activation_values=spec.batch_size * spec.width * IMAGE_PIXELS * spec.depth,
        sizes="batch_size x width (channels) x 64 pixels x depth",
        example_macs=kernels * IMAGE_PIXELS + head,
        weight_layers=spec.depth + 1,
        test_rows=upload.test_rows if upload is not None else _test_rows("digits"),
    )


def _transformer(spec: RunSpec) -> _Shape:
    d, tokens = spec.d_model, 2 * spec.seq_len
    vocab = spec.vocab + 1
    per_block = 12 * d * d + 13 * d  # qkv 3d^2, out-proj d^2, FFN 8d^2, biases and norms
    weights = vocab * d + tokens * d + spec.depth * per_block + d * vocab
    # Per token and block: the FFN's 4d, the attention's qkv 3d, and the T x heads scores.
    per_token = spec.depth * (10 * d + spec.heads * tokens)
    attention = spec.depth * 2 * tokens * d  # scores and the weighted sum, per token
    token_macs = spec.depth * 12 * d * d + attention + d * vocab
    # Generation: for each answer token, a pass over the prompt and the answer so far (no cache).
    length = spec.seq_len
    generated_tokens = sum(range(length + 1, 2 * length + 1))
    return _Shape(
        parameters=weights,
        activation_values=spec.batch_size * tokens * per_token,
        sizes="batch_size x 2·seq_len x d_model x depth",
        example_macs=token_macs * tokens,
        weight_layers=4 * spec.depth + 1,  # qkv, out-projection, two FFN layers per block; the head
        test_rows=SEQUENCE_TEST_ROWS,
        generation_macs=token_macs * GENERATION_ROWS * generated_tokens,
    )


def floor_load(
    spec: RunSpec,
    frames_per_s: float,
    steps_per_s: float,
    twin: RunSpec | None = None,
    sweep_steps: int | None = None,
    data: DataShape | None = None,
) -> float:
    """The share of one core (CPU seconds per second) a run needs to keep the floor: steps_per_s
    training steps and frames_per_s frames a second. A frame is taken at a step, so the floor
    needs max(steps, frames) steps a second; a run paced below the floor needs only its pace.
    Twins cost both; a sweep takes no frames. Admission (app/workers.py) sums these."""
    if sweep_steps is not None:
        spec = replace(spec, steps=sweep_steps)
        frames_per_s = 0.0
        twin = replace(twin, steps=sweep_steps) if twin is not None else None
    steps = max(steps_per_s, frames_per_s)
    if spec.max_steps_per_s > 0:
        steps = min(steps, float(spec.max_steps_per_s))
    frames = min(frames_per_s, steps)
    total = 0.0
    for one in (spec, twin):
        if one is None:
            continue
        cost = RunCost.of(one, data)
        step_flops = cost.total_flops / max(1, one.steps)  # evaluations and instruments included
        frame_flops = FRAME_FLOPS + LAYER_CALL_FLOPS * cost.taps + FRAME_VALUE_FLOPS * cost.activation_values
        total += steps * step_flops + frames * frame_flops
    return CONTENTION * total / REFERENCE_FLOPS_PER_S
