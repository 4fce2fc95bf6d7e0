"""Presets: named configs that tell the normalization story one step at a time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from app.spec import RunSpec


@dataclass(frozen=True)
class Preset:
    """A config plus what to look for and a question to think about before pressing play."""

    id: str
    title: str
    summary: str  # what the preset sets up, one or two sentences
    look_for: str  # what the learner should watch
    question: str  # asked before play
    spec: RunSpec = field(default_factory=RunSpec)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "look_for": self.look_for,
            "question": self.question,
            "config": asdict(self.spec),
        }


_DEEP_SIGMOID = RunSpec(
    dataset="digits",
    depth=10,
    width=100,
    activation="sigmoid",
    norm="none",
    init="normal",
    init_std=1.0,
    optimizer="sgd",
    lr=0.5,
    batch_size=64,
    steps=3000,
    emit_every=5,
    max_steps_per_s=300,  # ten seconds to watch the layers drift apart
)
_DEEP_RELU = RunSpec(
    dataset="digits",
    depth=10,
    width=100,
    activation="relu",
    init="kaiming",
    optimizer="sgd",
    lr=1.0,
    batch_size=64,
    steps=1500,
    emit_every=5,
    max_steps_per_s=150,
)

PRESETS: tuple[Preset, ...] = (
    Preset(
        id="sigmoid-saturation",
        title="Deep sigmoid, no norm: saturation",
        summary="Ten sigmoid layers of 100 units, weights drawn from N(0, 1), no normalization, "
        "learning the 8×8 digits.",
        look_for="The pre-activations spread to about ±20, far past the narrow band where the sigmoid "
        "has slope. After it (post) most units sit pinned near 0 or 1: half or more of each deep layer "
        "is saturated, and the loss stalls for hundreds of steps.",
        question="Which layer saturates first, and why does the top of the network learn so slowly?",
        spec=_DEEP_SIGMOID,
    ),
    Preset(
        id="sigmoid-batchnorm",
        title="Same, with batch norm",
        summary="The same network, the same seed and the same initial weights, with batch norm "
        "before every sigmoid.",
        look_for="Every layer's pre-activations sit in the same band around 0, inside the sigmoid's "
        "working range, and stay there while the weights change. Nothing saturates, and test accuracy "
        "passes 95% within about 300 steps — several times sooner than without norm.",
        question="Batch norm subtracts the batch mean and divides by the batch std. What do gamma "
        "and beta then give back to the network?",
        spec=replace(_DEEP_SIGMOID, norm="batch"),
    ),
    Preset(
        id="high-lr",
        title="10× learning rate: only batch norm survives",
        summary="Ten ReLU layers with He init and plain SGD at learning rate 1 — ten times the rate "
        "this network trains at without normalization.",
        look_for="Without norm the activations blow up and the run diverges within a few steps. Press 2 "
        "(batch norm) and play again: it trains to about 98%. Then try 3 (layer norm): no divergence, "
        "but it stalls — not every normalization buys the same tolerance.",
        question="Ioffe & Szegedy trained with 5–30× higher rates. What stops one big step from "
        "blowing up the next layer's input when batch norm is there?",
        spec=_DEEP_RELU,
    ),
    Preset(
        id="relu-dying",
        title="ReLU without norm: dying units",
        summary="Eight ReLU layers, Xavier init, SGD at learning rate 0.5, no normalization.",
        look_for="The dead fraction climbs layer by layer: units whose pre-activation went negative "
        "for every example output 0, get no gradient, and never come back.",
        question="Why can a dead ReLU unit not recover by itself? Would batch norm's beta help?",
        spec=RunSpec(
            dataset="digits",
            depth=8,
            width=64,
            activation="relu",
            init="xavier",
            optimizer="sgd",
            lr=0.5,
            steps=2000,
            emit_every=5,
            max_steps_per_s=200,
        ),
    ),
    Preset(
        id="layernorm-nobatch",
        title="Layer norm: no batch needed",
        summary="Three ReLU layers of 128 units trained on batches of just 2 examples, with layer "
        "norm, which normalizes each example over its own features.",
        look_for="Layer norm trains and its test accuracy (eval mode) holds. Press 2 for batch norm at "
        "the same batch of 2: training looks fine, but eval mode with running averages does not.",
        question="With 2 examples in a batch, how good an estimate of the mean is the batch mean?",
        spec=RunSpec(
            dataset="digits",
            depth=3,
            width=128,
            activation="relu",
            norm="layer",
            optimizer="momentum",
            lr=0.00625,
            batch_size=2,
            steps=3000,
            emit_every=10,
            eval_every=100,
            max_steps_per_s=300,
        ),
    ),
    Preset(
        id="ioffe-fig1",
        title="Ioffe & Szegedy, Fig. 1: the drifting band",
        summary="The batch-norm paper's set-up at toy scale: 3 sigmoid layers of 100, weights from "
        "N(0, 0.1²), batch 60, SGD at 0.5.",
        look_for="Watch the last layer's 15/50/85th percentile band: without norm its centre and width "
        "drift as training goes; with batch norm (press 2) it stays put and accuracy rises sooner.",
        question="If a layer's input keeps moving, what must the layer above keep doing?",
        spec=RunSpec(
            dataset="digits",
            depth=3,
            width=100,
            activation="sigmoid",
            init="normal",
            init_std=0.1,
            optimizer="sgd",
            lr=0.5,
            batch_size=60,
            steps=3000,
            emit_every=10,
            max_steps_per_s=200,
        ),
    ),
)

DEFAULT_PRESET = PRESETS[0]
