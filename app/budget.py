"""What a run will cost, computed from its spec alone, before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from app.spec import RunSpec

# (input features, classes) of each dataset
DATASET_SHAPES = {"digits": (64, 10)}
TOY_SHAPE = (2, 2)


@dataclass(frozen=True)
class RunCost:
    """Parameters, values kept for the backward pass, and training FLOPs of one run."""

    parameters: int
    activation_values: int  # batch x width x depth: what each step holds per kept tensor
    train_flops: float  # ~6 x (Linear weights) x batch x steps: forward 2, backward 4

    @staticmethod
    def of(spec: RunSpec) -> RunCost:
        features, classes = DATASET_SHAPES.get(spec.dataset, TOY_SHAPE)
        sizes = [features] + [spec.width] * spec.depth + [classes]
        weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
        biases = sum(sizes[1:])
        norm_params = 0 if spec.norm == "none" else 2 * spec.width * spec.depth
        return RunCost(
            parameters=weights + biases + norm_params,
            activation_values=spec.batch_size * spec.width * spec.depth,
            train_flops=6.0 * weights * spec.batch_size * spec.steps,
        )
