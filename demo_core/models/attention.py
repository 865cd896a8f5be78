"""Attention for RNN decoders: additive (Bahdanau) and multiplicative (Luong dot, general).

Each module scores one decoder query against every encoder state,

    e_{t,i} = score(s, h_i),   alpha_{t,i} = softmax_i(e_{t,i}),   a_t = sum_i alpha_{t,i} h_i,

with padding masked so that its weight is exactly 0 and every row sums to 1. The key-side
projection depends only on the encoder output, so it is computed once per sentence
(``prepare``) and reused at every decoder step.
"""

from __future__ import annotations

import torch
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim where ``mask`` is True; masked positions get exactly 0.

    scores: [..., S] float; mask: broadcastable to scores, bool (True = real token).
    """
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights.masked_fill(~mask, 0.0)  # rows with no real token stay 0, not NaN


def attend(scores: torch.Tensor, mask: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scores [B, S], mask [B, S], values [B, S, K] -> context [B, K] and weights [B, S]: what every kind returns."""
    weights = masked_softmax(scores, mask)
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015): e = v^T tanh(W_q s + W_k h)."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        """keys: [B, S, K] -> projected keys [B, S, A]."""
        return self.key_proj(keys)

    def forward(
        self, query: torch.Tensor, prepared: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], prepared [B, S, A], values [B, S, K], mask [B, S] -> context [B, K], weights [B, S]."""
        scores = self.v(torch.tanh(prepared + self.query_proj(query).unsqueeze(1))).squeeze(-1)  # [B, S]
        return attend(scores, mask, values)


class SigmoidAdditiveAttention(nn.Module):
    """``AdditiveAttention`` for inference, its tanh written as a sigmoid: tanh(z) = 2 sigmoid(2z) - 1, so

        e = v^T tanh(W_q s + W_k h + b) = (2v)^T sigmoid(2 W_q s + 2 W_k h + 2b) - sum(v).

    The 2s are folded into the projections (doubling a float is exact) and -sum(v) into a bias of
    v, so a step runs the same operations with a sigmoid, in place, where the tanh was: PyTorch's CPU
    tanh is a slow, accurate polynomial and a step computes it over all of [B, S, A]. The scores move
    only by rounding (``tests/test_attention.py``); ``python benchmarks/bench_rnn_step.py
    --attention`` times decodes both ways. The served RNNs take it in ``RNNSeq2Seq.prepare_for_cpu``."""

    def __init__(self, attention: AdditiveAttention) -> None:
        super().__init__()
        self.query_proj = nn.Linear(attention.query_proj.in_features, attention.query_proj.out_features, bias=False)
        self.key_proj = nn.Linear(attention.key_proj.in_features, attention.key_proj.out_features)
        self.v = nn.Linear(attention.v.in_features, 1)
        with torch.no_grad():
            self.query_proj.weight.copy_(2 * attention.query_proj.weight)
            self.key_proj.weight.copy_(2 * attention.key_proj.weight)
            self.key_proj.bias.copy_(2 * attention.key_proj.bias)
            self.v.weight.copy_(2 * attention.v.weight)
            self.v.bias.copy_(-attention.v.weight.double().sum().float().view(1))

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        """keys: [B, S, K] -> projected keys, doubled: [B, S, A]."""
        return self.key_proj(keys)

    def forward(
        self, query: torch.Tensor, prepared: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``AdditiveAttention.forward``: query [B, Q], prepared [B, S, A], values [B, S, K], mask [B, S] -> context
        [B, K], weights [B, S]."""
        scores = self.v((prepared + self.query_proj(query).unsqueeze(1)).sigmoid_()).squeeze(-1)  # [B, S]
        return attend(scores, mask, values)


class MultiplicativeAttention(nn.Module):
    """Luong et al. (2015): ``dot`` e = s^T h, or ``general`` e = s^T W h."""

    def __init__(self, query_dim: int, key_dim: int, kind: str) -> None:
        super().__init__()
        if kind not in ("dot", "general"):
            raise ValueError(f"multiplicative attention kind must be 'dot' or 'general', got {kind!r}")
        if kind == "dot" and query_dim != key_dim:
            raise ValueError(f"dot attention needs query_dim == key_dim, got {query_dim} and {key_dim}")
        self.kind = kind
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False) if kind == "general" else None

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        """keys: [B, S, K] -> [B, S, Q] (W h for general, h itself for dot)."""
        return self.key_proj(keys) if self.key_proj is not None else keys

    def forward(
        self, query: torch.Tensor, prepared: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], prepared [B, S, Q], values [B, S, K], mask [B, S] -> context [B, K], weights [B, S]."""
        scores = torch.bmm(prepared, query.unsqueeze(-1)).squeeze(-1)  # [B, S]
        return attend(scores, mask, values)


def build_attention(kind: str, query_dim: int, key_dim: int, attn_dim: int) -> nn.Module:
    """``additive`` | ``dot`` | ``general``."""
    if kind == "additive":
        return AdditiveAttention(query_dim, key_dim, attn_dim)
    if kind in ("dot", "general"):
        return MultiplicativeAttention(query_dim, key_dim, kind)
    raise ValueError(f"unknown attention {kind!r}; choose additive, dot or general")


__all__ = ["masked_softmax", "attend", "AdditiveAttention", "SigmoidAdditiveAttention", "MultiplicativeAttention", "build_attention"]
