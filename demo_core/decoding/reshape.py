"""What a strategy does to one step's next-token distribution, stage by stage.

The decoders apply ``adjust_log_probs`` (repetition penalty, no-repeat n-gram, forced prefix)
and, for sampling, temperature, top-k and top-p. ``reshape`` applies the very same functions,
in the same order, to one raw distribution, and keeps track of which stage cut each token,
so the decoding lab can show the raw distribution beside the one a token was drawn from and
redraw it as the user moves a slider, without decoding again:

    shaped = reshape(raw_log_probs, history, cfg, prefix)   # raw [V] -> Reshaped
    shaped.probs            # [V] the distribution the strategy chose from (sums to 1)
    shaped.cut_by           # [V] 0 = kept, else the index in CUT_REASONS of the stage that cut it
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from demo_core.decoding.config import DecodeConfig
from demo_core.decoding.processors import adjust_log_probs, top_k_filter, top_p_filter

CUT_REASONS = (None, "model", "no-repeat n-gram", "forced prefix", "top-k", "top-p")  # cut_by codes 0..5


@dataclass(frozen=True)
class Reshaped:
    """One step's distribution before and after the strategy. All tensors are [V]."""

    raw_log_probs: torch.Tensor  # the model's own
    adjusted_log_probs: torch.Tensor  # after repetition options and prefix forcing: what the decoders record and rank
    logits: torch.Tensor  # what the choice is made from: adjusted / temperature, top-k, top-p for sampling
    probs: torch.Tensor  # float64 softmax of ``logits``; 0 exactly where a stage cut (or, at extreme temperatures, underflowed)
    cut_by: torch.Tensor  # int8 code per token, an index into CUT_REASONS (0: not cut)

    @property
    def cut(self) -> torch.Tensor:
        """[V] bool: True where some stage (or the model itself) left the token no chance."""
        return self.cut_by != 0

    @property
    def argmax(self) -> int:
        """The token greedy decoding (and the first beam expansion) picks: the most likely after adjustment."""
        return int(self.logits.argmax())


def _newly_cut(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """[V] bool: finite before a stage, -inf after it."""
    return torch.isfinite(before) & torch.isneginf(after)


def reshape(raw_log_probs: torch.Tensor, history: list[int], cfg: DecodeConfig, prefix: list[int] | None = None) -> Reshaped:
    """The strategy ``cfg`` applied to the raw distribution ``raw_log_probs`` [V] after the tokens ``history``.

    ``history`` holds the tokens written so far, so this is step ``len(history)`` (0-based) of
    the decode and ``prefix[len(history)]`` is forced if the prefix reaches it. Temperature,
    top-k and top-p apply to sampling only, as in ``demo_core.decoding.search``.
    """
    raw = raw_log_probs.float()[None]  # [1, V]
    step = len(history)
    hist = torch.tensor([list(history)], dtype=torch.long) if cfg.uses_history else None
    repeated = adjust_log_probs(raw, hist, cfg, step, [])  # repetition penalty, then no-repeat n-gram
    plain = replace(cfg, repetition_penalty=1.0, no_repeat_ngram=0)
    adjusted = adjust_log_probs(repeated, None, plain, step, list(prefix or []))  # then the forced prefix, as one call does
    cut_by = torch.zeros(raw.size(1), dtype=torch.int8)
    cut_by[torch.isneginf(raw[0])] = 1
    cut_by[_newly_cut(raw, repeated)[0]] = 2
    cut_by[_newly_cut(repeated, adjusted)[0]] = 3
    logits = adjusted
    if cfg.strategy == "sample":
        scaled = adjusted / cfg.temperature
        by_k = top_k_filter(scaled, cfg.top_k)
        logits = top_p_filter(by_k, cfg.top_p)
        cut_by[_newly_cut(scaled, by_k)[0]] = 4
        cut_by[_newly_cut(by_k, logits)[0]] = 5
    return Reshaped(
        raw_log_probs=raw[0],
        adjusted_log_probs=adjusted[0],
        logits=logits[0],
        probs=logits[0].double().softmax(-1),
        cut_by=cut_by,
    )
