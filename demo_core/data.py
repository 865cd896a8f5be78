"""Read the shared data sets and cut them into length-bucketed batches.

Data never lives in the repository: every reader takes ``data_dir`` (the ``../shared/data``
folder) and returns plain ``(source, target)`` string pairs. Batches are built from token
counts, so a batch of short sentences holds more sentences than a batch of long ones.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Callable, Iterator

import torch

from demo_core.tokenizer import BOS_ID, EOS_ID, PAD_ID

Pair = tuple[str, str]


def read_lines(path: Path) -> list[str]:
    """Lines of a (possibly gzip-compressed) UTF-8 text file, without newlines."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def multi30k_pairs(data_dir: Path, split: str, src_lang: str, tgt_lang: str) -> list[Pair]:
    """Line-aligned Multi30k pairs; split is ``train``, ``val`` or ``test_2016_flickr``."""
    folder = Path(data_dir) / "multi30k"
    src = read_lines(folder / f"{split}.{src_lang}.gz")
    tgt = read_lines(folder / f"{split}.{tgt_lang}.gz")
    if len(src) != len(tgt):
        raise ValueError(f"multi30k {split}: {len(src)} {src_lang} lines vs {len(tgt)} {tgt_lang}")
    return list(zip(src, tgt))


DATASETS: dict[str, Callable[[Path, str, str, str], list[Pair]]] = {
    "multi30k": multi30k_pairs,
}


def load_pairs(dataset: str, data_dir: Path, split: str, src_lang: str, tgt_lang: str) -> list[Pair]:
    """Pairs of one split of a named data set."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist (pass --data-dir)")
    return DATASETS[dataset](data_dir, split, src_lang, tgt_lang)


def token_batches(
    examples: list[tuple[list[int], list[int]]],
    max_tokens: int,
    shuffle: bool,
    seed: int = 0,
) -> list[list[int]]:
    """Group example indices into batches of similar length, each under ``max_tokens``.

    Examples are sorted by (source, target) length so padding stays small; the order of the
    batches (not their content) is shuffled when ``shuffle`` is set.
    """
    rng = random.Random(seed)
    order = list(range(len(examples)))
    if shuffle:
        rng.shuffle(order)  # random tie-breaking between equal lengths
    order.sort(key=lambda i: (len(examples[i][0]), len(examples[i][1])))
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for i in order:
        length = max(len(examples[i][0]), len(examples[i][1])) + 2
        if batch and max(longest, length) * (len(batch) + 1) > max_tokens:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(i)
        longest = max(longest, length)
    if batch:
        batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    return batches


def pad(seqs: list[list[int]]) -> torch.Tensor:
    """Right-pad id lists with PAD_ID into a [B, T] long tensor."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for row, s in enumerate(seqs):
        out[row, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(examples: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source ``[B, S]`` (ids + EOS), decoder input ``[B, T]`` (BOS + ids) and output ``[B, T]`` (ids + EOS)."""
    src = pad([s + [EOS_ID] for s, _ in examples])
    tgt_in = pad([[BOS_ID] + t for _, t in examples])
    tgt_out = pad([t + [EOS_ID] for _, t in examples])
    return src, tgt_in, tgt_out


def iterate(
    examples: list[tuple[list[int], list[int]]], batches: list[list[int]]
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    for batch in batches:
        yield collate([examples[i] for i in batch])
