"""Sampling's draw for a batch's rows, written in TorchScript's subset of Python.

``decoding.search.decode_batch`` samples several sources at once, each with its own generator,
and each source must draw exactly what ``search.sample`` draws for it alone. ``draw_rows`` is
that draw for one step. The same function runs in ``decode_batch``'s Python loop and inside the
models' TorchScript loops (``models.rnn_script``, ``models.transformer_script``), which call it
through ``pick``. The two therefore make the same operator calls on the same generators, and they
draw the same tokens (``tests/test_rnn_script.py``, ``tests/test_transformer_script.py``).
"""

from __future__ import annotations

import torch

from demo_core.decoding.processors import top_k_filter, top_p_filter


def draw_rows(log_probs: torch.Tensor, rows: torch.Tensor, per: int, temperature: float, top_k: int, top_p: float,
              generators: list[torch.Generator], pad: int) -> torch.Tensor:
    """One sampled token per row still writing: log_probs [n, V] of the rows ``rows`` [n] (ascending; source b owns
    rows b * per to b * per + per - 1) -> tokens [n].

    Each source draws with its own generator for all of its ``per`` rows at once, as ``sample`` does alone. A draw
    takes as many random numbers as it has rows, and never depends on the other rows' probabilities. So the rows of
    a source that have finished draw from a dummy distribution (all mass on ``pad``), and their draws are thrown
    away. A source with no row left draws nothing, as ``sample`` stops drawing once its rows have all ended."""
    probs = top_p_filter(top_k_filter(log_probs / temperature, top_k), top_p).softmax(-1)  # [n, V]
    tokens = torch.empty(log_probs.size(0), dtype=torch.long)
    counts: list[int] = torch.bincount(torch.div(rows, per, rounding_mode="floor"), minlength=len(generators)).tolist()
    start = 0
    for b, n in enumerate(counts):
        if n == 0:
            continue
        end = start + n
        if n == per:  # every row of source b still writes
            tokens[start:end] = torch.multinomial(probs[start:end], 1, generator=generators[b]).squeeze(1)
        else:
            full = torch.zeros(per, probs.size(1))  # [per, V]
            full[:, pad] = 1.0
            offsets = rows[start:end] - b * per
            full[offsets] = probs[start:end]
            tokens[start:end] = torch.multinomial(full, 1, generator=generators[b]).squeeze(1)[offsets]
        start = end
    return tokens


def pick(log_probs: torch.Tensor, ids: torch.Tensor, values: torch.Tensor, rows: torch.Tensor, per: int,
         temperature: float, top_k: int, top_p: float, generators: list[torch.Generator],
         pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A step's tokens [n] and their log-probs [n] from log_probs [n, V] and its top ids and log-probs [n, k]: the
    best token where ``generators`` is empty (greedy), else ``draw_rows``'s draw."""
    if len(generators) == 0:
        return ids.select(1, 0), values.select(1, 0)
    token = draw_rows(log_probs, rows, per, temperature, top_k, top_p, generators, pad)
    return token, log_probs.gather(1, token.unsqueeze(1)).squeeze(1)
