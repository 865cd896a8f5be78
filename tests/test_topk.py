"""``models.topk.top_k`` gives exactly ``torch.topk``'s answer, and takes its fast path where it may.

The TorchScript greedy loops of both architectures keep each step's top tokens through it, so a
difference would change a served model's output or alternatives. Values and indices are compared
with ``torch.equal`` over rows that make the chunked search unsure (ties across chunks, inside a
chunk and at the k-th place, NaN, -inf rows and too few finite scores) as well as ordinary ones,
compiled by TorchScript as the loops run it and in Python.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from demo_core.models.topk import chunked, top_chunk, top_k

with warnings.catch_warnings():  # TorchScript's deprecation notice (models.transformer_script.compiled silences it too)
    warnings.simplefilter("ignore")
    SCRIPTED = torch.jit.script(top_k)


def scores(rows: int, vocabulary: int, seed: int) -> torch.Tensor:
    """Log-softmax rows shaped like a decoder's: a few large scores over a long tail."""
    generator = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(rows, vocabulary, generator=generator) * 4, dim=-1)


def assert_topk(x: torch.Tensor, k: int, chunk: int) -> None:
    expected = x.topk(k, dim=-1)
    for run in (top_k, SCRIPTED):
        values, ids = run(x, k, chunk)
        assert torch.equal(ids, expected.indices)
        assert torch.allclose(values, expected.values, rtol=0, atol=0, equal_nan=True)  # exactly, NaN where topk has NaN


@pytest.mark.parametrize("rows", [1, 8, 11, 12, 32])
@pytest.mark.parametrize("k", [1, 2, 5, 10])
@pytest.mark.parametrize("vocabulary,chunk", [(8000, 64), (2500, 100), (6000, 75), (299, 0), (272, 68), (8000, 0)])
def test_ordinary_rows_give_topks_answer(rows: int, k: int, vocabulary: int, chunk: int) -> None:
    for seed in range(3):
        assert_topk(scores(rows, vocabulary, seed), k, chunk)


def test_the_chunked_search_answers_ordinary_batches() -> None:
    """Without ties the chunks decide: the fast path is taken, not the fallback."""
    for seed in range(5):
        assert chunked(scores(32, 8000, seed), 5, 64) is not None


@pytest.mark.parametrize("case", ["tie inside top", "tie at k", "tie across chunks", "same chunk max", "nan", "all -inf",
                                  "few finite", "one chunk holds all", "constant"])
def test_rows_the_chunks_cannot_decide_still_give_topks_answer(case: str) -> None:
    x = scores(16, 8000, 7)
    row = x[3]
    top = row.topk(6)
    if case == "tie inside top":
        row[top.indices[2]] = row[top.indices[1]]
    elif case == "tie at k":
        row[top.indices[5]] = row[top.indices[4]]  # the 5th and 6th best equal
    elif case == "tie across chunks":
        row[7000] = row[top.indices[0]]  # far from the best, in another chunk
    elif case == "same chunk max":
        row[top.indices[4] // 64 * 64 + (top.indices[4] + 1) % 64] = row[top.indices[4]]
    elif case == "nan":
        row[123] = float("nan")
    elif case == "all -inf":
        row.fill_(float("-inf"))
    elif case == "few finite":
        row.fill_(float("-inf"))
        row[[5, 900, 4000]] = torch.tensor([-1.0, -2.0, -3.0])
    elif case == "one chunk holds all":
        row[640:646] = torch.tensor([10.0, 9.0, 8.0, 7.0, 6.0, 5.0])
    elif case == "constant":
        row.fill_(-8.0)
    assert_topk(x, 5, 64)
    if case in ("tie inside top", "tie at k", "tie across chunks", "nan", "all -inf", "few finite", "constant"):
        assert chunked(x, 5, 64) is None  # unsure: the whole rows are searched


def test_chunk_widths() -> None:
    assert top_chunk(8000) == 64 and 8000 % top_chunk(8000) == 0
    assert top_chunk(2500) == 100 and top_chunk(3000) == 75
    assert top_chunk(299) == 0  # 13 x 23: no width from 32 to 128 divides it
    assert top_chunk(96) == 96  # one chunk: top_k falls back to topk for any k
    assert_topk(scores(8, 96, 0), 5, top_chunk(96))
