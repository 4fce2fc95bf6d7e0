"""What a run will cost, computed from its spec alone, before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from app.spec import RunSpec

# (input features, classes) of each dataset
DATASET_SHAPES = {"digits": (64, 10)}
TOY_SHAPE = (2, 2)
DIGIT_PIXELS = 64  # the CNN's 8x8 maps: an upper bound on positions per channel


@dataclass(frozen=True)
class RunCost:
    """Parameters, values kept for the backward pass, and training FLOPs of one run."""

    parameters: int
    activation_values: int  # values per step that each kept tensor holds, summed over layers
    train_flops: float  # ~6 x (multiply-adds per example) x batch x steps: forward 2, backward 4
    sizes: str  # the fields that set the size, for the error message

    @staticmethod
    def of(spec: RunSpec) -> RunCost:
        if spec.arch == "transformer":
            return _transformer(spec)
        if spec.arch == "cnn":
            return _cnn(spec)
        return _mlp(spec)


def _mlp(spec: RunSpec) -> RunCost:
    features, classes = DATASET_SHAPES.get(spec.dataset, TOY_SHAPE)
    # A residual net: a stem Linear, then two width x width Linears per block; a final norm.
    residual = spec.arch == "resmlp"
    hidden = [spec.width] * (2 * spec.depth + 1 if residual else spec.depth)
    sizes = [features, *hidden, classes]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
    biases = sum(sizes[1:])
    norm_params = 0 if spec.norm == "none" else 2 * spec.width * (spec.depth + residual)
    return RunCost(
        parameters=weights + biases + norm_params,
        activation_values=spec.batch_size * spec.width * len(hidden),
        train_flops=6.0 * weights * spec.batch_size * spec.steps,
        sizes="batch_size x width x depth",
    )


def _cnn(spec: RunSpec) -> RunCost:
    channels = [1] + [spec.width] * spec.depth
    kernels = sum(9 * a * b for a, b in zip(channels, channels[1:], strict=False))
    head = spec.width * DIGIT_PIXELS * 10
    return RunCost(
        parameters=kernels + spec.width * spec.depth * 3 + head + 10,
        activation_values=spec.batch_size * spec.width * DIGIT_PIXELS * spec.depth,
        train_flops=6.0 * (kernels * DIGIT_PIXELS + head) * spec.batch_size * spec.steps,
        sizes="batch_size x width (channels) x 64 pixels x depth",
    )


def _transformer(spec: RunSpec) -> RunCost:
    d, tokens = spec.d_model, 2 * spec.seq_len
    vocab = spec.vocab + 1
    per_block = 12 * d * d + 13 * d  # qkv 3d^2, out-proj d^2, FFN 8d^2, biases and norms
    weights = vocab * d + tokens * d + spec.depth * per_block + d * vocab
    # Per token and block: the FFN's 4d, the attention's qkv 3d, and the T x heads scores.
    per_token = spec.depth * (10 * d + spec.heads * tokens)
    attention = spec.depth * 2 * tokens * d  # scores and the weighted sum, per token
    return RunCost(
        parameters=weights,
        activation_values=spec.batch_size * tokens * per_token,
        train_flops=6.0
        * (spec.depth * 12 * d * d + attention + d * vocab)
        * tokens
        * spec.batch_size
        * spec.steps,
        sizes="batch_size x 2·seq_len x d_model x depth",
    )
