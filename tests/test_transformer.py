"""The tiny transformer: causality, incremental inference, references, taps, and Xiong et al. at init."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from app.datasets.sequences import IGNORE, load_task
from app.nets.layers import EPS, Tap
from app.nets.transformer import Block, Transformer, build_transformer
from app.spec import RunSpec

VOCAB, MAX_LEN = 11, 16
PLACEMENTS = [(norm, pos) for norm in ("layer", "rms", "none") for pos in ("pre", "post")]


def _build(norm: str = "layer", pos: str = "pre", depth: int = 2, seed: int = 0, **kw: Any) -> Transformer:
    spec = RunSpec(
        arch="transformer", norm=norm, norm_position=pos, depth=depth, activation="relu", seed=seed, **kw
    )
    return build_transformer(spec, VOCAB, MAX_LEN)


def _tokens(batch: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, T), generator=torch.Generator().manual_seed(seed))


def test_logits_have_one_row_per_position() -> None:
    model = _build(d_model=32, heads=4)
    for T in (1, 5, MAX_LEN):
        assert model(_tokens(3, T)).shape == (3, T, VOCAB)
    with pytest.raises(AssertionError):
        model(_tokens(1, MAX_LEN + 1))
    model.resample_noise()  # a no-op that the trainer may call for every architecture


def test_only_layer_rms_or_no_norm_and_pre_or_post() -> None:
    with pytest.raises(AssertionError):
        _build(norm="batch")
    with pytest.raises(AssertionError):
        _build(pos="before")


@pytest.mark.parametrize("norm,pos", PLACEMENTS)
def test_changing_a_token_leaves_earlier_logits_unchanged(norm: str, pos: str) -> None:
    model = _build(norm, pos, d_model=32)
    tokens = _tokens(4, 12)
    base = model(tokens)
    for t in (0, 5, 11):
        changed = tokens.clone()
        changed[:, t] = (changed[:, t] + 1) % VOCAB
        out = model(changed)
        torch.testing.assert_close(out[:, :t], base[:, :t], atol=1e-6, rtol=0)
        assert not torch.allclose(out[:, t], base[:, t])  # the changed token itself is read


@pytest.mark.parametrize("norm,pos", PLACEMENTS)
def test_one_token_at_a_time_matches_the_full_pass(norm: str, pos: str) -> None:
    model = _build(norm, pos, depth=3, d_model=32)
    tokens = _tokens(2, MAX_LEN, seed=1)
    full = model(tokens)  # (batch, T, vocab)
    for t in range(MAX_LEN):
        prefix = model(tokens[:, : t + 1])
        torch.testing.assert_close(prefix[:, -1], full[:, t], atol=1e-5, rtol=0)


def _drawn_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter the seed draws: all but the norms' gamma and beta."""
    return {name: p for name, p in model.named_parameters() if not name.endswith(("gamma", "beta"))}


def test_same_seed_same_weights_whatever_the_norm_and_its_position() -> None:
    reference = _drawn_weights(_build("layer", "pre", seed=7))
    for norm, pos in PLACEMENTS:
        weights = _drawn_weights(_build(norm, pos, seed=7))
        assert weights.keys() == reference.keys()
        for name, w in weights.items():
            assert torch.equal(w, reference[name]), (norm, pos, name)
    other = _drawn_weights(_build("layer", "pre", seed=8))
    assert not torch.equal(other["blocks.0.ffn.fc2.weight"], reference["blocks.0.ffn.fc2.weight"])


def test_init_is_xavier_with_zero_biases() -> None:
    model = _build(d_model=64, depth=1)
    block = model.blocks[0]
    assert isinstance(block, Block)
    fc1 = block.ffn.fc1.weight  # (256, 64): Xavier bound sqrt(6 / (64 + 256))
    assert fc1.abs().max() <= (6 / 320) ** 0.5 and fc1.abs().max() > 0.95 * (6 / 320) ** 0.5
    qkv = block.attn.qkv.weight  # q, k, v each d x d: bound sqrt(6 / 128)
    assert qkv.abs().max() <= (6 / 128) ** 0.5 and qkv.abs().max() > 0.95 * (6 / 128) ** 0.5
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert not p.any(), name


@pytest.mark.parametrize("pos", ["pre", "post"])
def test_parameters_are_registered_in_forward_order(pos: str) -> None:
    model = _build("layer", pos, depth=2)
    modules = []
    for name, _ in model.named_parameters():
        module = name.rsplit(".", 1)[0]
        if module not in modules:
            modules.append(module)
    block = {
        "pre": ["ln1", "attn.qkv", "attn.proj", "ln2", "ffn.fc1", "ffn.fc2"],
        "post": ["attn.qkv", "attn.proj", "ln1", "ffn.fc1", "ffn.fc2", "ln2"],
    }[pos]
    final = ["norm"] if pos == "pre" else []
    expected = (
        ["tok_emb", "pos_emb"] + [f"blocks.{i}.{m}" for i in range(2) for m in block] + final + ["head"]
    )
    assert modules == expected


def _record(taps: list[Tap], model: Transformer, tokens: torch.Tensor) -> dict[str, tuple[Any, Any]]:
    """Run `model` with a forward hook on every tap: name -> (pre, post)."""
    seen: dict[str, tuple[Any, Any]] = {}
    handles = [
        tap.module.register_forward_hook(
            lambda _m, inputs, output, name=tap.name: seen.__setitem__(name, (inputs[0], output))
        )
        for tap in taps
    ]
    try:
        model(tokens)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("norm,pos", PLACEMENTS)
def test_taps_are_what_attention_reads_and_the_stream_out_of_each_block(norm: str, pos: str) -> None:
    depth = 3
    model = _build(norm, pos, depth=depth, d_model=32)
    taps = model.taps()
    assert [t.name for t in taps] == [
        f"block{i}.{part}" for i in range(1, depth + 1) for part in ("attn_in", "resid")
    ]
    blocks = [b for b in model.blocks if isinstance(b, Block)]
    for i, block in enumerate(blocks):
        attn_in, resid = taps[2 * i], taps[2 * i + 1]
        assert attn_in.weight is block.attn.qkv.weight and resid.weight is block.ffn.fc2.weight
        assert resid.module is block
        assert attn_in.activation is None and resid.activation is None

    read: dict[int, torch.Tensor] = {}  # what each block's attention actually received
    hooks = [
        b.attn.register_forward_pre_hook(lambda _m, args, i=i: read.__setitem__(i, args[0]))
        for i, b in enumerate(blocks)
    ]
    tokens = _tokens(4, 10)
    seen = _record(taps, model, tokens)
    for h in hooks:
        h.remove()

    stream = model.tok_emb(tokens) + model.pos_emb(torch.arange(10))  # (batch, T, d)
    for i in range(depth):
        attn_pre, attn_post = seen[f"block{i + 1}.attn_in"]
        resid_pre, resid_post = seen[f"block{i + 1}.resid"]
        torch.testing.assert_close(resid_pre, stream)  # the stream entering the block
        torch.testing.assert_close(attn_pre, stream)  # ... is also what attn_in receives
        torch.testing.assert_close(attn_post, read[i], atol=0, rtol=0)  # exactly what attention reads
        if pos == "post" or norm == "none":
            assert torch.equal(attn_pre, attn_post)
        elif norm == "layer":  # zero mean, unit std per token (eps costs ~1% on the small embeddings)
            torch.testing.assert_close(attn_post.mean(-1), torch.zeros(4, 10), atol=1e-5, rtol=0)
            torch.testing.assert_close(
                attn_post.std(-1, unbiased=False), torch.ones(4, 10), atol=0.02, rtol=0
            )
        else:  # rms: unit root mean square per token
            torch.testing.assert_close(attn_post.pow(2).mean(-1).sqrt(), torch.ones(4, 10), atol=0.02, rtol=0)
        stream = resid_post
    torch.testing.assert_close(model.head(model.norm(stream)), model(tokens))


def test_attention_matches_torch_multihead_attention_with_a_causal_mask() -> None:
    d, heads, T = 32, 4, 9
    model = _build(d_model=d, heads=heads, depth=1)
    block = model.blocks[0]
    assert isinstance(block, Block)
    ref = nn.MultiheadAttention(d, heads, batch_first=True)
    with torch.no_grad():
        for p in block.attn.parameters():  # non-zero biases, so their wiring is checked too
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        ref.in_proj_weight.copy_(block.attn.qkv.weight)
        ref.in_proj_bias.copy_(block.attn.qkv.bias)
        ref.out_proj.weight.copy_(block.attn.proj.weight)
        ref.out_proj.bias.copy_(block.attn.proj.bias)
    x = torch.randn(3, T, d, generator=torch.Generator().manual_seed(2))
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True: may not attend
    expected, _ = ref(x, x, x, attn_mask=future, need_weights=False)
    torch.testing.assert_close(block.attn(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pos", ["pre", "post"])
def test_block_is_its_formula(pos: str) -> None:
    d, heads, T = 16, 2, 5
    model = _build("layer", pos, d_model=d, heads=heads, depth=1)
    block = model.blocks[0]
    assert isinstance(block, Block)
    with torch.no_grad():  # move gamma/beta off 1/0 so the formula's norms are really exercised
        for name, p in block.named_parameters():
            if name.startswith("ln"):
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    x = torch.randn(2, T, d, generator=torch.Generator().manual_seed(3))  # (batch, T, d)

    def ln(v: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        mean, var = v.mean(-1, keepdim=True), v.var(-1, unbiased=False, keepdim=True)
        return (v - mean) / torch.sqrt(var + EPS) * norm.gamma + norm.beta

    def attn(v: torch.Tensor) -> torch.Tensor:
        q, k, w = (
            v @ W.T + b
            for W, b in zip(block.attn.qkv.weight.split(d), block.attn.qkv.bias.split(d), strict=True)
        )
        out = []
        for h in range(heads):  # each head on its own slice of the features
            s = slice(h * d // heads, (h + 1) * d // heads)
            scores = q[..., s] @ k[..., s].transpose(1, 2) / (d // heads) ** 0.5  # (batch, T, T)
            scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            out.append(scores.softmax(-1) @ w[..., s])
        return torch.cat(out, -1) @ block.attn.proj.weight.T + block.attn.proj.bias

    def ffn(v: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(v @ block.ffn.fc1.weight.T + block.ffn.fc1.bias)
        return hidden @ block.ffn.fc2.weight.T + block.ffn.fc2.bias

    if pos == "pre":
        h = x + attn(ln(x, block.ln1))
        expected = h + ffn(ln(h, block.ln2))
    else:
        h = ln(x + attn(x), block.ln1)
        expected = ln(h + ffn(h), block.ln2)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def _ffn2_grad_norms(pos: str, seed: int, depth: int) -> list[float]:
    data = load_task("copy", seq_len=8, vocab=VOCAB - 1, seed=seed)
    model = _build("layer", pos, depth=depth, seed=seed, d_model=64, heads=4)
    x, y = data.x_train[:64], data.y_train[:64]  # one batch of 64
    F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
    return [float(b.ffn.fc2.weight.grad.norm()) for b in model.blocks if isinstance(b, Block)]


@pytest.mark.parametrize("seed", [0, 1])
def test_xiong_post_ln_gradients_grow_with_depth_pre_ln_gradients_do_not(seed: int) -> None:
    # Xiong et al. 2020, Fig. 3 / Thm 1, at init: Post-LN's ||grad W_ffn2|| rises with the layer
    # index, Pre-LN's does not. Depth 12, d 64, copy: last/first was 3.0-3.4 (Post) and
    # 0.22-0.28 (Pre) for seeds 0 and 1; the bounds below leave a wide margin.
    post = _ffn2_grad_norms("post", seed, depth=12)
    pre = _ffn2_grad_norms("pre", seed, depth=12)
    assert post[-1] > 1.5 * post[0], post
    assert sum(post[6:]) > 1.5 * sum(post[:6]), post  # the upper half carries more, not one outlier
    assert pre[-1] < 0.6 * pre[0], pre
    assert sum(pre[6:]) < sum(pre[:6]), pre


def test_pre_ln_learns_to_copy() -> None:
    seq_len, vocab = 6, 8
    data = load_task("copy", seq_len, vocab, seed=0)
    spec = RunSpec(
        arch="transformer", norm="layer", norm_position="pre", depth=2, d_model=32, heads=4, activation="relu"
    )
    model = build_transformer(spec, data.classes, 2 * seq_len)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(150):  # it solves copy in ~50 steps (seeds 0, 1); 150 keeps a margin
        idx = torch.randint(0, len(data.x_train), (64,), generator=gen)
        x, y = data.x_train[idx], data.y_train[idx]  # (64, 2L)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        pred = model(data.x_test).argmax(-1)  # (rows, 2L)
    scored = data.y_test != IGNORE
    accuracy = (pred[scored] == data.y_test[scored]).float().mean()
    assert sum(losses[-10:]) / 10 < 0.1 * losses[0], (losses[:3], losses[-3:])  # ~2.7 -> ~0.003 seen
    assert accuracy > 0.9, accuracy  # chance is 1/8; 1.00 seen
