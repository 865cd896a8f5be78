"""Logits processors: what a strategy does to the model's next-token distribution.

Each takes log-probabilities or logits [N, V] for N rows and returns the changed tensor:
top-k and top-p cut tokens (their logit becomes -inf), the repetition penalty and the
no-repeat n-gram rule read the tokens written so far, a forced prefix leaves one token.
``length_penalty`` ranks finished beam hypotheses.
"""

from __future__ import annotations

import torch

from demo_core.decoding.config import DecodeConfig


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + |Y|) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass is >= p; others get -inf. logits [N, V]."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    mass_before = probs.cumsum(-1) - probs  # mass of strictly more likely tokens
    remove_sorted = mass_before >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k most likely tokens; logits [N, V]."""
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1)[0][:, -1:]  # [0]: the values (TorchScript has no ``.values`` here)
    return logits.masked_fill(logits < kth, float("-inf"))


def adjust_log_probs(
    log_probs: torch.Tensor, history: torch.Tensor | None, cfg: DecodeConfig, step: int, prefix: list[int]
) -> torch.Tensor:
    """Apply repetition penalty, no-repeat-n-gram and a forced prefix. log_probs [N, V].

    history [N, t] holds the tokens so far; it may be None when ``cfg.uses_history`` is False.
    """
    if cfg.repetition_penalty != 1.0 and history.size(1) > 0:
        seen = torch.zeros_like(log_probs, dtype=torch.bool).scatter(1, history, True)
        log_probs = torch.where(seen, log_probs * cfg.repetition_penalty, log_probs).log_softmax(-1)
    n = cfg.no_repeat_ngram
    if n > 0 and history.size(1) >= n - 1:
        log_probs = log_probs.clone()
        for row, seq in enumerate(history.tolist()):
            context = tuple(seq[len(seq) - n + 1 :]) if n > 1 else ()
            for i in range(len(seq) - n + 1):
                if tuple(seq[i : i + n - 1]) == context:
                    log_probs[row, seq[i + n - 1]] = float("-inf")
    if step < len(prefix):
        forced = torch.full_like(log_probs, float("-inf"))
        forced[:, prefix[step]] = log_probs[:, prefix[step]].clamp(min=-1e4)
        log_probs = forced
    return log_probs
