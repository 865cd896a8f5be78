"""What a decode recorded: per step tokens, log-probs, alternatives and attention.

``Recorder`` keeps every step and assembles a ``Hypothesis`` by walking parent rows back
from its last token, so nothing is copied when beam search reorders its hypotheses.
``BeamNode`` is one node of the beam-search tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from demo_core.decoding.processors import length_penalty
from demo_core.text.tokenizer import EOS_ID


@dataclass
class Hypothesis:
    """One output sequence; ``ids`` ends with EOS when ``finished``."""

    ids: list[int]
    token_logprobs: list[float]  # model log-probability of each id
    alt_ids: list[list[int]]  # per step: top alternatives (ids) ...
    alt_probs: list[list[float]]  # ... and their probabilities
    attention: torch.Tensor  # [T, layers, heads, S]
    score: float  # sum of token_logprobs
    normalized_score: float  # score / GNMT length penalty (beam) or score / T
    finished: bool  # False when cut at the length limit
    pieces: list[str] = field(default_factory=list)
    text: str = ""
    alternatives: list[list[tuple[str, float]]] = field(default_factory=list)  # (piece, prob)


@dataclass(frozen=True)
class BeamNode:
    """A node of the beam-search tree; node 0 is the BOS root."""

    id: int
    parent: int | None
    token: int
    score: float  # cumulative log-probability
    step: int
    status: str  # kept | pruned | finished


@dataclass
class Step:
    """What one decoding step recorded.

    The step ran on n live rows and recorded m new rows, each a token appended to one of the
    live rows (its parent). Alternatives and attention belong to the parent rows, since they
    describe the distribution each new token was drawn from.
    """

    tokens: list[int]  # [m]
    logprobs: list[float]  # [m] log-probability of each token
    parents: list[int] | None  # [m] parent row of each new row; None: row i extends row i
    alt_ids: list[list[int]]  # [n][alternatives] most likely tokens of each parent row ...
    alt_probs: list[list[float]]  # ... and their probabilities
    attention: torch.Tensor  # [n, L, H, S]


class Recorder:
    """Every step's tokens, log-probs, alternatives and attention, read back along parent rows.

    Nothing recorded is copied when beam search reorders its hypotheses: a hypothesis is
    assembled from its last token back to its first only when it is read.
    """

    def __init__(self, alternatives: int, track_history: bool = False) -> None:
        self.k = alternatives
        self.steps: list[Step] = []
        self.track_history = track_history  # keep every row's tokens so far (repetition options)
        self._history: torch.Tensor | None = None  # [rows of the last step, steps so far]

    def add(
        self,
        tokens: torch.Tensor,
        log_probs: torch.Tensor,
        attn: torch.Tensor,
        parents: list[int] | None = None,
        top: Any = None,
    ) -> None:
        """Record tokens [m], each appended to row ``parents[i]`` (None: row i) of this step.

        log_probs [n, V] and attn [n, L, H, S] are what the step computed for its n rows;
        ``top`` is ``log_probs.topk(c)`` with c >= alternatives when the caller has it already.
        """
        if parents is None:  # row i extends row i: one gather, no index tensor
            rows, chosen = None, log_probs.gather(1, tokens[:, None])[:, 0]
        else:
            rows = torch.tensor(parents, dtype=torch.long)
            chosen = log_probs[rows, tokens]
        if self.track_history:
            before = self._history if self._history is not None else tokens.new_zeros(log_probs.size(0), 0)
            self._history = torch.cat([before if rows is None else before.index_select(0, rows), tokens[:, None]], dim=1)
        if top is None:
            top = log_probs.topk(min(self.k, log_probs.size(-1)), dim=-1)
        self.steps.append(Step(
            tokens=tokens.tolist(),
            logprobs=chosen.tolist(),
            parents=parents,
            alt_ids=top.indices[:, : self.k].tolist(),
            alt_probs=top.values[:, : self.k].exp().tolist(),
            attention=attn.float(),
        ))

    def history(self, n: int) -> torch.Tensor | None:
        """Tokens so far of rows 0..n-1 of the last step, [n, t] (for ``adjust_log_probs``);
        None when the recorder does not track them (no repetition option is on).

        Kept up to date by ``add`` (one gather per step) when ``track_history`` is on.
        """
        if not self.track_history:
            return None
        if self._history is None:
            return torch.zeros(n, 0, dtype=torch.long)
        return self._history[:n]

    def _path(self, row: int) -> tuple[list[int], list[float], list[list[int]], list[list[float]], list[torch.Tensor]]:
        """Tokens, log-probs, alternatives and attention rows from the first step to ``row`` of the last."""
        ids, logprobs, alt_ids, alt_probs, attention = [], [], [], [], []
        for step in reversed(self.steps):
            parent = row if step.parents is None else step.parents[row]
            ids.append(step.tokens[row])
            logprobs.append(step.logprobs[row])
            alt_ids.append(step.alt_ids[parent])
            alt_probs.append(step.alt_probs[parent])
            attention.append(step.attention[parent])
            row = parent
        return ids[::-1], logprobs[::-1], alt_ids[::-1], alt_probs[::-1], attention[::-1]

    def hypothesis(self, row: int, alpha: float | None) -> Hypothesis:
        """Hypothesis of ``row`` of the last step, cut after its first EOS. alpha None: normalise by length."""
        ids, logprobs, alt_ids, alt_probs, attention = self._path(row)
        length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
        score = float(sum(logprobs[:length]))
        norm = length_penalty(length, alpha) if alpha is not None else max(length, 1)
        return Hypothesis(
            ids=ids[:length],
            token_logprobs=logprobs[:length],
            alt_ids=alt_ids[:length],
            alt_probs=alt_probs[:length],
            attention=torch.stack(attention[:length]) if length else torch.zeros(0),  # [T, L, H, S]
            score=score,
            normalized_score=score / norm,
            finished=EOS_ID in ids[:length],
        )
