"""The interface every architecture shares, and the typed memory and state it passes around.

Decoders drive any model through three calls::

    memory = model.encode(src)                               # src [B, S]
    state = model.init_state(memory)
    log_probs, state, attn = model.decode_step(memory, state, prev_tokens)
    #        [B, V]                     [B, layers, heads, S]

``memory`` and ``state`` are frozen dataclasses whose tensor fields have the hypothesis as
their first dimension, so a decoder reorders or copies hypotheses with ``select`` and never
asks which architecture it drives. Every memory has a ``mask`` [B, S] (True = a real source
token) and may offer the encoder's self-attention. ``decode_step`` may update the state it is
given in place (a key/value cache): decoders only continue from the state a step returns.

A model may also offer plain greedy decoding in one call, which ``decoding.search`` uses when
no logits processor or forced prefix needs the Python loop: ``greedy_trace(memory, first,
limit, k)`` -> ``GreedyTrace`` (one source or a batch decoded to the end) and ``batch_paths(memory,
first, limits, k, alternatives, lengths, draw)`` -> a ``GreedyPath`` per row (a batch whose rows leave at their
end, for ``decode_batch``: greedy, or sampling as ``draw`` says). Either returns None where the model cannot, and
must give what the three calls above give.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Protocol, TypeVar

import torch
from torch import nn

R = TypeVar("R", bound="Rows")


class Rows:
    """A dataclass of per-hypothesis tensors (first dimension) and shared plain values."""

    def select(self: R, index: torch.Tensor) -> R:
        """The rows ``index`` [N] of every tensor field; other fields are shared as they are."""
        picked = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                picked[f.name] = value.index_select(0, index)
        return replace(self, **picked)  # type: ignore[type-var]


@dataclass(frozen=True)
class Memory(Rows):
    """What ``encode`` returns; architectures add their own fields."""

    mask: torch.Tensor  # [B, S] True where the source has a token

    def encoder_attention(self) -> torch.Tensor | None:
        """Encoder self-attention [B, L_enc, H, S, S], or None for an encoder without it."""
        return None


@dataclass(frozen=True)
class State(Rows):
    """The decoder's state between steps; architectures add their own fields."""


@dataclass(frozen=True)
class GreedyTrace:
    """Plain greedy decoding run by a model in one call (its optional ``greedy_trace``), per step t
    and row b, as a decoder's Python loop would record it."""

    tokens: torch.Tensor  # [T, B] PAD after a row's EOS
    logprobs: torch.Tensor  # [T, B] log-prob of each token (up to the row's EOS)
    top_ids: torch.Tensor  # [T, B, k] the k most likely tokens ...
    top_logprobs: torch.Tensor  # [T, B, k] ... and their log-probs
    attention: torch.Tensor  # [T, B, L, H, S] (L = 0 when not recorded)


@dataclass(frozen=True)
class Draw:
    """How a batch's rows sample in a model's ``batch_paths`` (``decoding.draw.draw_rows``): ``per`` consecutive rows
    a source, each source drawing from its own generator (``generators[b]``)."""

    per: int
    temperature: float
    top_k: int  # 0: off
    top_p: float  # 1.0: off
    generators: list[torch.Generator]

    @staticmethod
    def greedy() -> "Draw":
        """No draw: each row takes its best token (what the loops do when ``generators`` is empty)."""
        return Draw(1, 1.0, 0, 1.0, [])


@dataclass(frozen=True)
class GreedyPath:
    """One row of a batch's greedy or sampling decode run by a model in one call (its optional ``batch_paths``), as
    ``decoding.search.decode_batch``'s own loop records it: one entry per step the row wrote."""

    ids: list[int]  # [T] its tokens, EOS included where it ended there
    logprobs: list[float]  # [T] each token's log-prob
    alt_ids: list[list[int]]  # [T][alternatives] the most likely tokens ...
    alt_probs: list[list[float]]  # [T][alternatives] ... and their probabilities
    attention: torch.Tensor  # [T, L, H, S_b] cut to the row's own source length


M = TypeVar("M", bound=Memory)
S = TypeVar("S", bound=State)


class Seq2SeqModel(Protocol[M, S]):
    """An attention encoder-decoder as decoding, training and serving use it."""

    def encode(self, src: torch.Tensor) -> M:
        """src [B, S] ids, PAD-padded on the right -> memory."""
        ...

    def init_state(self, memory: M) -> S:
        """The decoder state before the first output token."""
        ...

    def decode_step(self, memory: M, state: S, prev_tokens: torch.Tensor) -> tuple[torch.Tensor, S, torch.Tensor]:
        """prev_tokens [B] -> log_probs [B, V], next state, cross-attention [B, layers, heads, S]."""
        ...

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing for training: src [B, S], tgt_in [B, T] -> logits [B, T, V]."""
        ...

    def prepare_for_cpu(self, weights: str, min_packed: int) -> nn.Module:
        """Turn this inference-only copy into its fast CPU form (see ``demo_core.models.cpu``)."""
        ...
