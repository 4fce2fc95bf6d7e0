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
    compare: dict[str, Any] | None = None  # run B's differing fields: the preset opens in compare mode
    paper: str | None = None  # the paper whose claim it tests
    claim: str | None = None  # that claim, with the paper's numbers
    sweep_lrs: tuple[float, ...] | None = None  # suggested rates for the learning-rate sweep

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "look_for": self.look_for,
            "question": self.question,
            "config": asdict(self.spec),
            "compare": self.compare,
            "paper": self.paper,
            "claim": self.claim,
            "sweep_lrs": list(self.sweep_lrs) if self.sweep_lrs else None,
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

_SANTURKAR_RELU = RunSpec(
    dataset="digits",
    depth=6,
    width=100,
    activation="relu",
    init="kaiming",
    optimizer="sgd",
    lr=0.1,
    batch_size=128,
    steps=600,
    emit_every=10,
    max_steps_per_s=60,
)

INSTRUMENT_PRESETS: tuple[Preset, ...] = (
    Preset(
        id="compare-bn",
        title="Side by side: no norm vs batch norm",
        summary="The deep sigmoid network twice, in lockstep: A without normalization, B with batch "
        "norm. Same seed, same data order, same initial weights.",
        look_for="Read the two ridge plots row by row: A's layers spread and saturate, B's stay in one "
        "band. The drift strip shows how far each layer's distribution moves between frames.",
        question="If B's layers barely drift, is that why it learns faster? The next presets test it.",
        spec=replace(_DEEP_SIGMOID, probe_gradients=True),
        compare={"norm": "batch"},
    ),
    Preset(
        id="gradients",
        title="Gradients: what each layer learns from",
        summary="Gradient probes on the deep sigmoid net: the gradient reaching each layer's "
        "pre-activation, its weight-gradient norm, and how much each step changes the weights.",
        look_for="Without norm the gradient shrinks toward the input layers and the update-to-weight "
        "ratio sits far below the 1e-3 line; with batch norm (B) every layer gets a usable signal.",
        question="Saturated units pass back almost no gradient. Which layers starve first?",
        spec=replace(_DEEP_SIGMOID, probe_gradients=True, steps=1500),
        compare={"norm": "batch"},
    ),
    Preset(
        id="santurkar-ics",
        title="Does batch norm reduce covariate shift? (Santurkar et al.)",
        summary="Internal covariate shift as Santurkar et al. define it: how much layer i's gradient "
        "changes when the layers below it take their step, on the same batch. A: no norm, PyTorch's "
        "default init; B: batch norm.",
        look_for="At first B's ||G − G′|| (0.2–0.4) dwarfs A's (about 0), as the paper reports — but A "
        "is not learning at all. Now give A He init (More settings → Init: He) and run again: A "
        "learns, and its shift is far larger than B's, with cos(G, G′) even negative.",
        question="The paper says batch norm does not reduce this shift. What does the measure track, "
        "and which comparison is fair?",
        spec=replace(_SANTURKAR_RELU, init="default", ics_every=10),
        compare={"norm": "batch"},
        paper="Santurkar, Tsipras, Ilyas & Madry 2018, Def. 2.1 and Fig. 3",
        claim="Batch norm networks show as much or more internal covariate shift, measured by the "
        "change of each layer's gradient, while training far faster.",
    ),
    Preset(
        id="noisy-bn",
        title="Noisy batch norm still trains (Santurkar et al.)",
        summary="After every batch norm, noise shifts and scales each unit, fresh every step: "
        "a ← s·a + m. The layers' inputs now move all the time, on purpose. B is plain batch norm.",
        look_for="A's distributions jitter from frame to frame (high drift), yet its loss falls almost as "
        "fast as B's and its test accuracy ends within a few points of B's.",
        question="If covariate shift were what batch norm removes, how could noisy batch norm train?",
        spec=replace(_SANTURKAR_RELU, norm="batch", noisy_norm=True, steps=400),
        compare={"noisy_norm": False},
        paper="Santurkar, Tsipras, Ilyas & Madry 2018, Fig. 2",
        claim="Injecting distributional instability after batch norm barely changes how well it trains.",
    ),
    Preset(
        id="landscape",
        title="A smoother loss landscape (Santurkar et al.)",
        summary="Every 20 steps, step along the gradient by 0.5–4× the learning rate and see how much "
        "the loss and the gradient change: the landscape's smoothness, for A (no norm) and B (batch).",
        look_for="B's loss range, gradient change and effective β stay well below A's: the gradient "
        "is a more reliable guide, so larger steps are safe.",
        question="Why would a smoother landscape allow a larger learning rate?",
        spec=replace(_SANTURKAR_RELU, landscape_every=20, steps=400),
        compare={"norm": "batch"},
        paper="Santurkar, Tsipras, Ilyas & Madry 2018, Fig. 4",
        claim="With batch norm the loss changes less along the gradient and the gradient is more "
        "predictive (smaller effective β-smoothness).",
    ),
    Preset(
        id="bn-eval",
        title="Batch norm at test time: running averages",
        summary="Batch norm trains with batch statistics but tests with running averages. Compare the "
        "two test accuracies, then move the test inputs with the test shift control.",
        look_for="On the training distribution both agree. Shift or scale the test inputs: eval mode "
        "(running averages) collapses, while normalising each test batch by its own statistics holds.",
        question="What does a model deployed on one example at a time do with batch statistics?",
        spec=RunSpec(
            dataset="digits",
            depth=3,
            width=64,
            activation="relu",
            norm="batch",
            lr=0.5,
            steps=1500,
            emit_every=10,
            eval_every=50,
            max_steps_per_s=200,
            test_shift=0.5,
        ),
    ),
    Preset(
        id="small-batch",
        title="Batches of 2: batch norm vs group norm (Wu & He)",
        summary="Three ReLU layers of 128 trained on batches of 2 examples: A with batch norm, B with "
        "group norm (8 groups), which never looks across examples.",
        look_for="Training loss looks similar, but A's eval-mode test accuracy falls far behind B's: "
        "its running averages are estimated from pairs.",
        question="Wu & He's table: BN's error grows from 23.6% to 34.7% as images per GPU fall from 32 "
        "to 2, GN's stays at 24%. Why does GN not care?",
        spec=RunSpec(
            dataset="digits",
            depth=3,
            width=128,
            activation="relu",
            norm="batch",
            optimizer="momentum",
            lr=0.00625,
            batch_size=2,
            steps=3000,
            emit_every=10,
            eval_every=100,
            max_steps_per_s=300,
        ),
        compare={"norm": "group", "groups": 8},
        paper="Wu & He 2018, Table 2",
        claim="Batch norm's error rises sharply at small batches; group norm's does not.",
    ),
    Preset(
        id="lr-sweep",
        title="Learning-rate sweep: batch norm tolerates larger rates",
        summary="Ten ReLU layers with He init, trained for 300 steps at each rate from 0.01 to 3, "
        "without norm (A) and with batch norm (B). Press “Sweep”.",
        look_for="A's final loss is fine at small rates and diverges (marked ✕) from about 1; B trains "
        "across the whole range.",
        question="Ioffe & Szegedy trained 5–30× faster rates with batch norm. Where does A give up?",
        spec=replace(_DEEP_RELU, lr=0.1, steps=300, max_steps_per_s=0),
        compare={"norm": "batch"},
        paper="Ioffe & Szegedy 2015, Sec. 4.2; Bjorck et al. 2018",
        claim="Batch norm allows much higher learning rates; without it deep nets diverge.",
        sweep_lrs=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    ),
)

PRESETS = PRESETS + INSTRUMENT_PRESETS
DEFAULT_PRESET = PRESETS[0]
