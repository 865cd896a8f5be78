"""The Transformer decoder's key/value caches: the module path's and the fused step's.

``TransformerSeq2Seq.decode_step`` keeps keys and values apart, [B, L, H, capacity, d] each
(``TransformerState``), and doubles them when full (``grow_cache``). The fused step
(``models.transformer_fast``) keeps one tensor [L, B, 2, H, capacity, d] (``PackedState``), so
a step writes each layer's key and value in one copy and beam search reorders every layer in one
``index_select``; it reads a ``TransformerState`` too, and reads back as one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from demo_core.models.interface import State


@dataclass(frozen=True)
class TransformerState(State):
    """Key/value cache [B, L_dec, H, capacity, d] whose first ``length`` positions are filled."""

    self_k: torch.Tensor
    self_v: torch.Tensor
    length: int


@dataclass(frozen=True)
class PackedState(State):
    """The fused step's key/value cache [L, B, 2, H, capacity, d]: layers first, then hypotheses,
    keys and values side by side; the first ``length`` positions are filled."""

    cache: torch.Tensor
    length: int

    @classmethod
    def of(cls, state: State) -> "PackedState":
        """``state`` as a PackedState (a TransformerState's cache is copied once)."""
        if isinstance(state, PackedState):
            return state
        cache = torch.stack([state.self_k, state.self_v], dim=2).transpose(0, 1).contiguous()  # [L, B, 2, H, C, d]
        return cls(cache=cache, length=state.length)

    @property
    def self_k(self) -> torch.Tensor:
        """The keys as ``TransformerState`` holds them, [B, L, H, capacity, d] (a view)."""
        return self.cache[:, :, 0].transpose(0, 1)

    @property
    def self_v(self) -> torch.Tensor:
        """The values, [B, L, H, capacity, d] (a view)."""
        return self.cache[:, :, 1].transpose(0, 1)

    def select(self, index: torch.Tensor) -> "PackedState":
        """Hypotheses ``index`` [N]: one ``index_select`` of the cache's hypothesis dimension."""
        return replace(self, cache=self.cache.index_select(1, index))


def grow_cache(keys: torch.Tensor, values: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The self-attention cache [B, L, H, C, d] with room for position t: doubled when t == C."""
    if t < keys.size(3):
        return keys, values
    return torch.cat([keys, torch.zeros_like(keys)], dim=3), torch.cat([values, torch.zeros_like(values)], dim=3)
