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
    group: str = "story"  # story | instruments | architectures: where the page lists it
    view: str = "layers"  # the stage view that tells its story: layers, drift, gradients, ics, ...
    effect_step: int | None = None  # paper presets: the step by which the claim is plain to see

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
            "group": self.group,
            "view": self.view,
            "effect_step": self.effect_step,
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
        paper="Ioffe & Szegedy 2015, Sec. 4.1, Fig. 1",
        claim="On MNIST (3 × 100 sigmoid, batch 60) the last layer's input percentiles drift without "
        "batch norm and stay put with it, and the BN net reaches high accuracy much sooner. Toy "
        "version here: the median moves ~1.4 without BN vs ~0.07 with; test accuracy at step 600 "
        "~0.67 vs ~0.98.",
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
        group="instruments",
        title="Side by side: no norm vs batch norm",
        summary="The deep sigmoid network twice, in lockstep: A without normalization, B with batch "
        "norm. Same seed, same data order, same initial weights.",
        look_for="Read the two ridge plots row by row: A's layers spread and saturate, B's stay in one "
        "band. The drift strip shows how far each layer's distribution moves between frames.",
        question="If B's layers barely drift, is that why it learns faster? The next presets test it.",
        spec=replace(_DEEP_SIGMOID, probe_gradients=True, drift_lag=10),
        compare={"norm": "batch"},
    ),
    Preset(
        id="gradients",
        group="instruments",
        view="gradients",
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
        group="instruments",
        view="ics",
        title="Does batch norm reduce covariate shift? (Santurkar et al.)",
        summary="Internal covariate shift as Santurkar et al. define it: how much layer i's gradient "
        "changes when the layers below it take their step, on the same batch. A: no norm, PyTorch's "
        "default init; B: batch norm.",
        look_for="B's ||G − G′|| (about 0.1) dwarfs A's (about 0), as the paper reports — but A is not "
        "learning at all (its loss stays at 2.30). The next preset gives A He init, where both learn.",
        question="The paper says batch norm does not reduce this shift. What does the measure track, "
        "and which comparison is fair?",
        spec=replace(_SANTURKAR_RELU, init="default", ics_every=10),
        compare={"norm": "batch"},
        paper="Santurkar, Tsipras, Ilyas & Madry 2018, Def. 2.1 and Fig. 3",
        claim="Batch norm networks show as much or more internal covariate shift, measured by the "
        "change of each layer's gradient, while training far faster. Measured here over the first "
        "100 steps, seeds 0–2: A (default init) ||G − G′|| ≈ 0.000 with its loss stuck at 2.30, B "
        "0.11–0.13: more shift with batch norm, but against a network that does not learn.",
    ),
    Preset(
        id="santurkar-ics-he",
        group="instruments",
        view="ics",
        title="Covariate shift when both nets learn: He init vs batch norm",
        summary="The same measure as the previous preset, but A starts from He init, so both nets "
        "learn. A: no norm, He init; B: batch norm.",
        look_for="Now A's ||G − G′|| is several times B's and its cos(G, G′) far below B's: with both "
        "nets learning, the one without batch norm shows the larger shift.",
        question="Which of the two comparisons tests the claim that batch norm does not reduce "
        "internal covariate shift?",
        spec=replace(_SANTURKAR_RELU, ics_every=10),
        compare={"norm": "batch"},
        paper="Santurkar, Tsipras, Ilyas & Madry 2018, Def. 2.1 and Fig. 3",
        claim="Measured here over the first 100 steps, seeds 0–2: A (no norm, He init) ||G − G′|| "
        "0.75–1.04 with cos(G, G′) 0.34–0.39; B (batch norm) 0.09–0.10 with cos 0.94–0.95. With "
        "both learning, batch norm's shift by this measure is about a tenth of the plain net's.",
    ),
    Preset(
        id="noisy-bn",
        group="instruments",
        view="drift",
        title="Noisy batch norm still trains (Santurkar et al.)",
        summary="After every batch norm, noise shifts and scales each unit, fresh every step: "
        "a ← s·a + m. The layers' inputs now move all the time, on purpose. B is plain batch norm.",
        look_for="A's distributions jitter from frame to frame (high drift), yet its loss falls almost as "
        "fast as B's and its test accuracy ends within a few points of B's.",
        question="If covariate shift were what batch norm removes, how could noisy batch norm train?",
        spec=replace(_SANTURKAR_RELU, norm="batch", noisy_norm=True, steps=400, drift_lag=10),
        compare={"noisy_norm": False},
        paper="Santurkar, Tsipras, Ilyas & Madry 2018, Fig. 2",
        claim="Injecting distributional instability after batch norm barely changes how well it trains.",
    ),
    Preset(
        id="landscape",
        group="instruments",
        view="landscape",
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
        group="instruments",
        view="eval",
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
        group="instruments",
        view="eval",
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
        group="instruments",
        view="sweep",
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

_TRANSFORMER = RunSpec(
    arch="transformer",
    task="copy",
    seq_len=8,
    vocab=10,
    d_model=32,  # small enough that twins step ~4x faster than at 64; the effects hold (measured)
    heads=4,
    depth=6,
    activation="gelu",
    norm="layer",
    norm_position="post",
    optimizer="adam",
    lr=1e-2,
    batch_size=32,
    steps=400,
    emit_every=5,
    eval_every=50,
)
_RESMLP = RunSpec(
    arch="resmlp",
    dataset="digits",
    depth=12,
    width=64,
    activation="relu",
    norm="layer",
    norm_position="post",
    init="kaiming",
    optimizer="sgd",
    lr=0.1,
    batch_size=64,
    steps=1500,
    emit_every=5,
    max_steps_per_s=150,
)

ARCHITECTURE_PRESETS: tuple[Preset, ...] = (
    Preset(
        id="xiong-warmup",
        group="architectures",
        effect_step=250,
        title="Transformer, Post-LN: warmup or fail (Xiong et al.)",
        summary="A six-block causal transformer (d 32, 4 heads) learns to copy a string of 8 symbols, "
        "layer norm after each residual add (Post-LN, the original transformer), Adam at 1e-2. "
        "A starts at full rate; B warms the rate up over its first 100 steps.",
        look_for="A's loss stalls near where it started while B's falls to near zero and its test "
        "accuracy passes 90%. Watch the resid rows: A's stream is renormalised every sublayer, yet "
        "its top blocks get the largest gradients at the start.",
        question="Nothing differs but the first 100 steps. Why would a large early step hurt Post-LN "
        "so much more than a large step later on?",
        spec=_TRANSFORMER,
        compare={"warmup_steps": 100},
        paper="Xiong et al. 2020, On Layer Normalization in the Transformer Architecture, Fig. 2–3",
        claim="Post-LN transformers need a learning-rate warmup: without it training fails (their "
        "IWSLT BLEU 8.45 vs ~34 with warmup). Toy version measured here (6 blocks, d 32, Adam 1e-2, "
        "batch 32, 300 steps): Post-LN without warmup stays at chance (loss 2.31, accuracy 0.11); "
        "with a 100-step warmup it reaches 0.98 test accuracy by step 200.",
        view="layers",
    ),
    Preset(
        id="xiong-preln",
        group="architectures",
        effect_step=200,
        title="Transformer: Pre-LN trains without warmup (Xiong et al.)",
        summary="The same copy task and transformer, no warmup for either: A puts layer norm after "
        "each residual add (Post-LN), B inside each branch, before attention and the FFN (Pre-LN, "
        "what GPT-2 and most transformers since use). Gradient probes on.",
        look_for="B trains from the first steps while A stalls. In the gradient view, A's per-layer "
        "gradient norm grows toward the top blocks at the start; B's stays flat or shrinks.",
        question="In Pre-LN the residual stream is never normalised inside the blocks. What does that "
        "give the gradient on its way down?",
        spec=replace(_TRANSFORMER, probe_gradients=True),
        compare={"norm_position": "pre"},
        paper="Xiong et al. 2020, Thm 1 and Fig. 3",
        claim="At initialisation Post-LN's expected gradient of the last layers is large and grows "
        "with depth, so warmup is needed; Pre-LN's is well behaved and trains without warmup. Toy "
        "version measured here (6 blocks, d 32, batch 32): Pre-LN without warmup reaches 100% test "
        "accuracy by step 200 while Post-LN stays at chance; in the first frames Post-LN's FFN "
        "gradient norm rises steeply from block 1 to block 6 (~1000× at d 64), Pre-LN's stays flat.",
        view="gradients",
    ),
    Preset(
        id="xiong-init-gradients",
        group="architectures",
        effect_step=1,
        title="Transformer at initialisation: gradient norm by layer",
        summary="Twelve blocks, Post-LN (A) vs Pre-LN (B), with gradient probes, at a slow pace: the "
        "first frames show each block's FFN weight-gradient norm at the untrained weights.",
        look_for="B's (Pre-LN) gradient norm falls block by block toward the top, to about a third; "
        "A's (Post-LN) top blocks get two to four times B's. Whether A's own norms rise toward the top "
        "depends on the seed: try a few.",
        question="Which blocks would a large early learning rate move most in A?",
        spec=replace(
            _TRANSFORMER,
            depth=12,
            d_model=64,
            batch_size=64,
            probe_gradients=True,
            emit_every=1,
            steps=200,
            max_steps_per_s=10,
        ),
        compare={"norm_position": "pre"},
        paper="Xiong et al. 2020, Fig. 3",
        claim="At initialisation Post-LN's per-layer gradient norm of W_ffn2 grows with the layer "
        "index while Pre-LN's stays flat. Toy figures (L = 12): Post-LN ~0.48 → 0.76 across layers, "
        "Pre-LN ~0.59 → 0.32. Measured here at step 1 over seeds 0–5: Pre-LN's last block gets "
        "0.24–0.37 × its first block's gradient norm, and Post-LN's top three blocks get 2.1–4.4 × "
        "Pre-LN's, for every seed; Post-LN's own last/first ratio varies by seed (0.8–2.4).",
        view="gradients",
    ),
    Preset(
        id="transformer-one-token",
        group="architectures",
        effect_step=300,
        title="Layer norm vs RMS norm in a transformer, one token at a time",
        summary="A Pre-LN transformer reverses strings of 6 symbols: A with layer norm, B with RMS norm "
        "(no re-centring). Test accuracy is measured twice: in one pass, and writing the answer one "
        "token at a time, each pass seeing only the prompt and its own earlier answers.",
        look_for="Both learn the task at about the same pace. The two test accuracies agree: a norm "
        "that works within each token needs no batch and no future tokens, so generating one token "
        "at a time gives the same answers.",
        question="Batch norm would average over the batch and the positions. What would generating "
        "one token at a time then see at test time?",
        spec=replace(_TRANSFORMER, task="reverse", seq_len=6, depth=2, norm_position="pre", steps=600),
        compare={"norm": "rms"},
        paper="Ba et al. 2016; Zhang & Sennrich 2019",
        claim="Layer norm normalises each example (each token) on its own, so training and inference "
        "behave the same; RMS norm drops the mean and matches layer norm's quality at lower cost.",
    ),
    Preset(
        id="resmlp-pre-post",
        group="architectures",
        effect_step=0,
        title="Residual MLP: Post-norm vs Pre-norm at depth",
        summary="Twelve residual blocks x + F(x) of 64 ReLU units on the digits, layer norm, He init. "
        "A normalises after each add (post), B inside each branch (pre).",
        look_for="In the resid rows A's stream is renormalised every block and stays one width; B's "
        "grows block by block, since every branch adds to it — yet B keeps an identity path "
        "for the gradient from the top to the bottom.",
        question="Pre-norm lets the stream grow. Why does that not saturate or blow anything up here?",
        spec=_RESMLP,
        compare={"norm_position": "pre"},
        paper="Xiong et al. 2020; He et al. 2016",
        claim="Putting the norm inside the residual branch (pre-norm) keeps an unnormalised identity "
        "path through the whole net, which is why it became the default for deep residual models.",
    ),
    Preset(
        id="cnn-small-batch",
        group="architectures",
        effect_step=600,
        title="Conv net at batch size 2: batch norm pools over pixels (Wu & He)",
        summary="A small conv net (3 × 16 channels, 3×3, ReLU) on the 8×8 digits, trained on batches "
        "of 2 images: A with batch norm per channel, B with group norm (4 groups of 4 channels).",
        look_for="Unlike the MLP at batch 2 (the 'Small batches' preset), both train and both test "
        "well: a conv net's batch norm averages each channel over batch × height × width — 128 values "
        "per channel here even at batch 2 — so its running averages stay sound (see train vs eval). "
        "Wu & He's 50-layer ResNet still lost 11 points at 2 images per GPU: depth compounds the noise.",
        question="Where would this conv net's batch norm start to fail: fewer pixels, or more layers?",
        spec=RunSpec(
            arch="cnn",
            dataset="digits",
            depth=3,
            width=16,
            activation="relu",
            norm="batch",
            groups=4,
            optimizer="momentum",
            lr=0.00625,
            batch_size=2,
            steps=2000,
            emit_every=10,
            eval_every=100,
            max_steps_per_s=300,
        ),
        compare={"norm": "group"},
        paper="Wu & He 2018, Table 2",
        claim="ResNet-50 on ImageNet: batch norm's error rises from 23.6% to 34.7% as images per GPU "
        "fall from 32 to 2; group norm's stays at 24.1%. This 3-layer toy does not reproduce the "
        "collapse (measured: eval accuracy 0.93–0.97 for both at batch 2, and at batch 1); the MLP "
        "preset 'Small batches' does (batch norm 0.46 at batch 2).",
        view="eval",
    ),
    Preset(
        id="glorot-init",
        group="architectures",
        effect_step=400,
        title="Deep tanh net: standard vs Xavier init (Glorot & Bengio)",
        summary="Sixteen tanh layers of 128 units, no norm. A draws weights from the 'standard' "
        "U[−1/√n, 1/√n]; B from Glorot & Bengio's normalised (Xavier) U[±√6/√(n_in+n_out)].",
        look_for="At step 0 A's post-activations shrink layer by layer toward 0 (tiny signal, tiny "
        "gradients at the top); B's keep a usable spread all the way up. Then B learns, A crawls.",
        question="Each layer multiplies the spread by about √n · std(w). What std keeps it at 1?",
        spec=RunSpec(
            dataset="digits",
            depth=16,
            width=128,
            activation="tanh",
            norm="none",
            init="standard",
            optimizer="sgd",
            lr=0.1,
            batch_size=64,
            steps=1500,
            emit_every=5,
            max_steps_per_s=150,
        ),
        compare={"init": "xavier"},
        paper="Glorot & Bengio 2010, Fig. 3–6",
        claim="With the standard init (zero biases) the activations (and back-propagated gradients) "
        "shrink with depth; the normalised init keeps their variance across layers. Measured here at "
        "step 0 over seeds 0–2: activation std 0.25–0.28 in layer 1 → ~6e-5 in layer 16 with the "
        "standard init, 0.34–0.38 → ~0.16 with Xavier. (PyTorch's `default` init also draws the "
        "biases from U[±1/√n], which floors the deep std near 0.06.)",
    ),
    Preset(
        id="bjorck-deep-relu",
        group="architectures",
        effect_step=24,
        title="Deep ReLU at learning rate 1: no norm diverges, batch norm trains (Bjorck et al.)",
        summary="Ten ReLU layers of 100, He init, plain SGD at learning rate 1, side by side: A "
        "without normalization, B with batch norm.",
        look_for="A's upper layers blow up within a few dozen steps and the run diverges (a loud "
        "DIVERGED pill); B trains to high accuracy at the same rate.",
        question="Bjorck et al. argue batch norm's benefit is mostly the larger rate it allows. What "
        "happens to B at lr 0.01?",
        spec=_DEEP_RELU,
        compare={"norm": "batch"},
        paper="Bjorck, Gomes, Selman & Weinberger 2018, Understanding Batch Normalization",
        claim="Without batch norm, deep nets diverge at learning rates BN trains at: the activations' "
        "moments explode in the upper layers. Toy figures: no norm trains at 0.1, diverges by step "
        "~4–24 at 1; BN trains to ≥ 0.99 at 1 and up to 3.",
    ),
)

PRESETS = PRESETS + INSTRUMENT_PRESETS + ARCHITECTURE_PRESETS
DEFAULT_PRESET = PRESETS[0]
