"""A tiny causal transformer (GPT-style) with Pre-LN or Post-LN blocks, after Xiong et al. 2020.

Pre-LN:  x = x + attn(ln1(x));  x = x + ffn(ln2(x));  final norm before the read-out.
Post-LN: x = ln1(x + attn(x));  x = ln2(x + ffn(x));  no final norm (the stream is normalised).

The norm layers are app.nets.layers' (layer, rms or none). No I/O, no training.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from app.nets.layers import Activation, Tap, build_norm, fans, init_weight_and_bias, resample_noise
from app.spec import RunSpec

__all__ = [
    "TRANSFORMER_NORMS",
    "Block",
    "CausalSelfAttention",
    "FeedForward",
    "Transformer",
    "build_transformer",
]

TRANSFORMER_NORMS = ("layer", "rms", "none")
FFN_EXPANSION = 4  # the FFN is d -> 4d -> d, as in Vaswani et al.
# GPT-2's embedding init. The norms rescale the stream, so its scale at the bottom matters little:
# the init-time gradient trends of Post-LN and Pre-LN were the same with std 1.
EMBEDDING_STD = 0.02


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions <= t only."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        assert d_model % heads == 0, "heads must divide d_model"
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # query, key, value stacked along the output
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, T, d)
        batch, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # each (batch, T, d)
        q, k, v = (t.view(batch, T, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (batch, heads, T, d / heads)
        y = y.transpose(1, 2).reshape(batch, T, d)  # heads side by side again
        return cast(torch.Tensor, self.proj(y))  # (batch, T, d)


class FeedForward(nn.Module):
    """Position-wise d -> 4d -> d with the chosen nonlinearity in between."""

    def __init__(self, d_model: int, activation: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, FFN_EXPANSION * d_model)
        self.act = Activation(activation)
        self.fc2 = nn.Linear(FFN_EXPANSION * d_model, d_model)  # W_ffn2, whose gradient Xiong plots

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, T, d)
        return cast(torch.Tensor, self.fc2(self.act(self.fc1(x))))  # (batch, T, d)


class Block(nn.Module):
    """One transformer layer: attention then FFN, each a residual branch, norms pre or post."""

    def __init__(self, d_model: int, heads: int, activation: str, norm: str, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        # Submodules are registered in forward order: the ICS instrument takes every parameter
        # registered before a weight's module to be a layer below it.
        if pre_norm:
            self.ln1 = build_norm(norm, d_model, 1)
            self.attn = CausalSelfAttention(d_model, heads)
            self.ln2 = build_norm(norm, d_model, 1)
            self.ffn = FeedForward(d_model, activation)
        else:
            # A hook point for "what attention reads": in Post-LN that is the raw stream.
            self.attn_in = nn.Identity()
            self.attn = CausalSelfAttention(d_model, heads)
            self.ln1 = build_norm(norm, d_model, 1)
            self.ffn = FeedForward(d_model, activation)
            self.ln2 = build_norm(norm, d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, T, d)
        if self.pre_norm:
            x = x + self.attn(self.ln1(x))
            return x + self.ffn(self.ln2(x))  # (batch, T, d)
        x = self.ln1(x + self.attn(self.attn_in(x)))
        return cast(torch.Tensor, self.ln2(x + self.ffn(x)))  # (batch, T, d)

    @property
    def attn_input(self) -> nn.Module:
        """The module whose output is exactly what attention reads (its input: the stream)."""
        return cast(nn.Module, self.ln1 if self.pre_norm else self.attn_in)


class Transformer(nn.Module):
    """Token + learned position embeddings, `depth` blocks, a Linear read-out to the vocabulary."""

    def __init__(
        self, vocab_size: int, max_len: int, d_model: int, blocks: list[Block], norm: nn.Module
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm  # Pre-LN's final norm; Identity in Post-LN
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # tokens: (batch, T) int64
        T = tokens.shape[1]
        assert T <= self.max_len, f"sequence of {T} tokens exceeds max_len {self.max_len}"
        pos = torch.arange(T, device=tokens.device)  # (T,)
        x = self.tok_emb(tokens) + self.pos_emb(pos)  # (batch, T, d)
        for block in self.blocks:
            x = block(x)
        return cast(torch.Tensor, self.head(self.norm(x)))  # (batch, T, vocab_size)

    def taps(self) -> list[Tap]:
        """Per block: what attention reads (attn_in) and the residual stream out of it (resid)."""
        taps: list[Tap] = []
        for i, block in enumerate(cast(list[Block], list(self.blocks)), start=1):
            taps.append(Tap(f"block{i}.attn_in", block.attn_input, weight=block.attn.qkv.weight))
            taps.append(Tap(f"block{i}.resid", block, weight=block.ffn.fc2.weight))
        return taps

    def resample_noise(self) -> None:
        resample_noise(self)  # finds nothing: noisy norm is not offered for the transformer


def build_transformer(spec: RunSpec, vocab_size: int, max_len: int) -> Transformer:
    """Build on the CPU; the same seed gives the same weights whatever the norm and its position."""
    assert spec.norm in TRANSFORMER_NORMS, spec.norm
    assert spec.norm_position in ("pre", "post"), spec.norm_position
    pre_norm = spec.norm_position == "pre"
    blocks = [
        Block(spec.d_model, spec.heads, spec.activation, spec.norm, pre_norm) for _ in range(spec.depth)
    ]
    final_norm = build_norm(spec.norm, spec.d_model, 1) if pre_norm else nn.Identity()
    model = Transformer(vocab_size, max_len, spec.d_model, blocks, final_norm)
    _init_weights(model, blocks, spec.seed)
    return model


@torch.no_grad()
def _init_weights(model: Transformer, blocks: list[Block], seed: int) -> None:
    # One generator, a fixed order that no norm choice touches: Pre-LN and Post-LN runs of one
    # seed start from bit-identical weights, so only the placement of the norms differs.
    gen = torch.Generator().manual_seed(seed)
    model.tok_emb.weight.normal_(0, EMBEDDING_STD, generator=gen)
    model.pos_emb.weight.normal_(0, EMBEDDING_STD, generator=gen)
    for block in blocks:
        d = block.attn.proj.in_features
        # Xavier-uniform, the init Xiong et al.'s analysis assumes, with zero biases as in Vaswani
        # et al. (the stream starts unbiased). q, k and v are three d x d maps stacked into one
        # Linear, so each gets the d x d bound, not that of a d x 3d matrix.
        init_weight_and_bias(block.attn.qkv.weight, block.attn.qkv.bias, d, d, "xavier", gen)
        for linear in (block.attn.proj, block.ffn.fc1, block.ffn.fc2):
            init_weight_and_bias(linear.weight, linear.bias, *fans(linear.weight), "xavier", gen)
    init_weight_and_bias(model.head.weight, model.head.bias, *fans(model.head.weight), "xavier", gen)
