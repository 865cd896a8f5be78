"""A batch's greedy or sampling decode, run in TorchScript, handed back to Python row by row.

``decoding.search.decode_batch`` records a batch's steps per row: each row's tokens, their
log-probs, the alternatives and the attention cut to the row's source length. Read step by step
from Python that is several tensor operations per step and row (about 800 for eight sentences),
and on a busy server each of them waits for Python's lock again while the web server's event loop
holds it. The models' TorchScript loops (``models.rnn_script``, ``models.transformer_script``)
pick each step's tokens with ``decoding.draw.pick``, record them with ``record``, drop finished
rows where ``leaving`` says, and call ``by_row`` at the end; Python reads the result with ``paths``: five ``tolist`` calls.
``by_row`` is written in TorchScript's subset of Python; it only moves numbers, so every value is
the one the loop computed.
"""

from __future__ import annotations

import torch

from demo_core.models.interface import GreedyPath


def step_lists() -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor],
                        list[torch.Tensor], list[torch.Tensor]]:
    """Empty lists for ``record``: each step's rows, tokens, their log-probs, top ids, top log-probs and attention."""
    return [], [], [], [], [], []


def record(steps: list[torch.Tensor], tokens: list[torch.Tensor], logprobs: list[torch.Tensor],
           top_ids: list[torch.Tensor], top_values: list[torch.Tensor], attention: list[torch.Tensor],
           rows: torch.Tensor, token: torch.Tensor, logprob: torch.Tensor, ids: torch.Tensor, values: torch.Tensor,
           weights: torch.Tensor) -> None:
    """Append one step to the lists ``by_row`` reads: the rows still writing [n], their tokens and those tokens'
    log-probs [n] (``decoding.draw.pick``), their top ids and log-probs [n, k], attention [n, ...]."""
    steps.append(rows)
    tokens.append(token)
    logprobs.append(logprob)
    top_ids.append(ids)
    top_values.append(values)
    attention.append(weights)


def leaving(token: torch.Tensor, limits: torch.Tensor, eos: int, written: int) -> tuple[bool, torch.Tensor | None]:
    """After ``written`` steps: whether any row still writes (not at its EOS, under its limit) and, when some
    ended, the positions [n'] of those that go on (None when every row goes on)."""
    keep = (token != eos) & (limits > written)
    if bool(keep.all()):
        return True, None
    if not bool(keep.any()):
        return False, None
    return True, keep.nonzero().squeeze(1)


def by_row(
    steps: list[torch.Tensor], tokens: list[torch.Tensor], logprobs: list[torch.Tensor], top_ids: list[torch.Tensor],
    top_values: list[torch.Tensor], attention: list[torch.Tensor], rows: int, alternatives: int, lengths: list[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """A loop's steps (per step t: the rows still writing [n_t], their tokens and log-probs [n_t], top ids and
    log-probs [n_t, k], attention [n_t, L, H, S]) regrouped by row: each row's step count [rows], then row after row, and
    step after step within a row, the tokens [N], their log-probs [N], the ``alternatives`` top ids and their
    probabilities [N, alternatives], and per row its attention [T_b, L, H, lengths[b]]. The probabilities are
    each step's ``exp`` of its own top log-probs, as ``decode_batch``'s Python loop takes them."""
    written = torch.cat(steps)  # [N] the row of each entry, step after step
    order = torch.sort(written, stable=True)[1]  # [N] row by row, each row's steps in order
    counts = torch.bincount(written, minlength=rows)  # [rows]
    ids = torch.cat(tokens).index_select(0, order)
    chosen = torch.cat(logprobs).index_select(0, order)
    alt_ids = torch.cat([i[:, :alternatives] for i in top_ids]).index_select(0, order)
    alt_probs = torch.cat([v[:, :alternatives].exp() for v in top_values]).index_select(0, order)
    sizes: list[int] = counts.tolist()
    per_row = torch.cat(attention).index_select(0, order).split(sizes)  # [T_b, L, H, S] each
    cut = [a[:, :, :, : lengths[b]].contiguous() for b, a in enumerate(per_row)]
    return counts, ids, chosen, alt_ids, alt_probs, cut


def paths(counts: torch.Tensor, ids: torch.Tensor, logprobs: torch.Tensor, alt_ids: torch.Tensor,
          alt_probs: torch.Tensor, attention: list[torch.Tensor]) -> list[GreedyPath]:
    """``by_row``'s result as one ``GreedyPath`` per row."""
    ids_, logprobs_, alt_ids_, alt_probs_ = ids.tolist(), logprobs.tolist(), alt_ids.tolist(), alt_probs.tolist()
    out, start = [], 0
    for n, weights in zip(counts.tolist(), attention, strict=True):
        end = start + n
        out.append(GreedyPath(ids_[start:end], logprobs_[start:end], alt_ids_[start:end], alt_probs_[start:end], weights))
        start = end
    return out
