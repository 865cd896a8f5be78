"""``torch.topk`` over a batch of vocabulary rows: faster from 12 rows up, with the same answer.

A greedy step keeps each row's top k tokens (the token and the page's alternatives). For one
row ``topk`` is quick, but for a batch (32 rows of 8,000 scores) it walks every number of every
row through a partial sort and costs as much as the log-softmax before it or more
(``python benchmarks/bench_topk.py``). Searching only the chunks that can hold the answer does
a fraction of that work. The TorchScript loops (``models.transformer_script``,
``models.rnn_script``) call ``top_k``, so it is written in TorchScript's subset of Python.
"""

from __future__ import annotations

import torch


def top_k(x: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.topk(k, dim=-1)`` of x [B, V]: values and indices [B, k], the largest first.

    ``chunked`` finds them where that is certain; otherwise (tied scores, NaN, rows of -inf), for
    fewer than 12 rows (where ``topk`` is as fast: ``bench_topk.py``) and where ``chunk`` is 0 or
    does not fit, ``topk`` runs on the whole rows, so the result is always the one ``topk`` gives.
    """
    if x.size(0) >= 12:
        found = chunked(x, k, chunk)
        if found is not None:
            return found
    return x.topk(k, dim=-1)


def chunked(x: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``top_k`` of x [B, V] searched in chunks of ``chunk`` columns, or None where that answer
    might differ from ``topk``'s.

    A row's top k lie in the k chunks with the largest maxima (a chunk's maximum is at least
    each of its numbers), so only those chunks are searched. The answer found is returned when
    it is the only possible one: in every row, its k values strictly decreasing, strictly above
    the next candidate and above the maximum of every chunk not searched.
    """
    B, V = x.size(0), x.size(1)
    if chunk <= 0 or V % chunk != 0 or V // chunk <= k:
        return None
    n = V // chunk  # chunks a row
    maxima = x.view(B, n, chunk).amax(dim=2).topk(k + 1, dim=1)  # [B, k+1] the largest chunk maxima
    picked = maxima.indices.narrow(1, 0, k)  # [B, k] the chunks searched
    rows = torch.arange(0, B * n, n, device=x.device).unsqueeze(1)  # [B, 1] each row's first chunk
    candidates = x.view(B * n, chunk).index_select(0, (picked + rows).view(-1)).view(B, k * chunk)
    top = candidates.topk(k + 1, dim=1)  # [B, k+1]
    values = top.values
    if not (bool((values.narrow(1, 0, k) > values.narrow(1, 1, k)).all())
            and bool((values.select(1, k - 1) > maxima.values.select(1, k)).all())):
        return None
    where = top.indices.narrow(1, 0, k)  # [B, k] positions among the candidates
    ids = picked.gather(1, torch.div(where, chunk, rounding_mode="floor")) * chunk + torch.remainder(where, chunk)
    return values.narrow(1, 0, k), ids


def top_chunk(vocabulary: int) -> int:
    """The chunk width ``top_k`` searches a vocabulary by: a divisor of it from 64 to 128 columns,
    else from 63 down to 32, else 0 (no chunks: plain ``topk``)."""
    for width in [*range(64, 129), *range(63, 31, -1)]:
        if vocabulary % width == 0:
            return width
    return 0
