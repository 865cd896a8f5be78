"""Read the shared data sets and cut them into length-bucketed batches.

Data never lives in the repository: every reader takes ``data_dir`` (the ``../shared/data``
folder) and the config's ``dataset_options`` and returns plain ``(source, target)`` string
pairs; the ``dates`` set is generated instead of read. Splits that the data does not ship
are cut by seeded hashes, so they are the same on every machine. Batches are built from token
counts, so a batch of short sentences holds more sentences than a batch of long ones.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from demo_core.tasks import dates
from demo_core.text.normalize import to_simplified
from demo_core.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

Pair = tuple[str, str]
Options = dict[str, Any]


def read_lines(path: Path) -> list[str]:
    """Lines of a (possibly gzip-compressed) UTF-8 text file, without newlines."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def multi30k_pairs(data_dir: Path, split: str, src_lang: str, tgt_lang: str, options: Options) -> list[Pair]:
    """Line-aligned Multi30k pairs; split is ``train``, ``val`` or ``test_2016_flickr``."""
    folder = Path(data_dir) / "multi30k"
    src = read_lines(folder / f"{split}.{src_lang}.gz")
    tgt = read_lines(folder / f"{split}.{tgt_lang}.gz")
    if len(src) != len(tgt):
        raise ValueError(f"multi30k {split}: {len(src)} {src_lang} lines vs {len(tgt)} {tgt_lang}")
    return list(zip(src, tgt))


def seeded_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``seed`` (SHA-256, so stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@lru_cache(maxsize=2)
def tatoeba_groups(path: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Distinct (English, Simplified Chinese) pairs of ``cmn.txt``, grouped into linked sets.

    Two pairs are linked when they share the English or the Chinese sentence, so neither an
    English sentence nor a Chinese one can appear in two splits. Groups are ordered by their
    key (their smallest English sentence).
    """
    pairs = dict.fromkeys((en.strip(), to_simplified(zh.strip())) for en, zh, *_ in
                          (line.split("\t") for line in read_lines(Path(path)) if line.strip()))
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for en, zh in pairs:
        a, b = root("en:" + en), root("zh:" + zh)
        if a != b:
            parent[a] = b
    groups: dict[str, list[tuple[str, str]]] = {}
    for en, zh in pairs:
        groups.setdefault(root("en:" + en), []).append((en, zh))
    return tuple(sorted((tuple(g) for g in groups.values()), key=lambda g: min(en for en, _ in g)))


def tatoeba_pairs(data_dir: Path, split: str, src_lang: str, tgt_lang: str, options: Options) -> list[Pair]:
    """Tatoeba English–Chinese pairs of split ``train``, ``valid`` or ``test`` (Chinese in Simplified script).

    Each group of linked pairs goes to one split by a seeded hash of its smallest English
    sentence; ``options`` may set ``seed``, ``valid_fraction`` and ``test_fraction`` (0.05 each).
    """
    if {src_lang, tgt_lang} != {"en", "zh"}:
        raise ValueError(f"tatoeba-cmn-eng has en and zh, not {src_lang}-{tgt_lang}")
    if split not in ("train", "valid", "test"):
        raise ValueError(f"tatoeba-cmn-eng: unknown split {split!r} (train, valid, test)")
    seed = int(options.get("seed", 1))
    test_fraction = float(options.get("test_fraction", 0.05))
    valid_fraction = float(options.get("valid_fraction", 0.05))
    out: list[Pair] = []
    for group in tatoeba_groups(str(Path(data_dir) / "tatoeba-cmn-eng" / "cmn.txt.gz")):
        u = seeded_fraction(min(en for en, _ in group), seed)
        group_split = "test" if u < test_fraction else "valid" if u < test_fraction + valid_fraction else "train"
        if group_split == split:
            out.extend(group if src_lang == "en" else [(zh, en) for en, zh in group])
    return out


def g014b2b_entries(data_dir: Path, part: str) -> list[Pair]:
    """``(word, phones)`` lines of ``g014b2b.<part>`` (words lower-cased; one line per pronunciation)."""
    lines = read_lines(Path(data_dir) / "cmudict" / f"g014b2b.{part}.gz")
    return [(word.lower(), phones.strip()) for word, phones in (line.split("\t") for line in lines if line.strip())]


def cmudict_pairs(data_dir: Path, split: str, src_lang: str, tgt_lang: str, options: Options) -> list[Pair]:
    """CMUdict G2P pairs (spelling → ARPAbet, no stress) of split ``train``, ``dev`` or ``test``.

    ``test`` is the standard g014b2b test file (12,000 words). ``dev`` is a seeded sample of
    ``dev_words`` training *words* (default 2,670, as in Yao & Zweig 2015) with all their
    pronunciations; ``train`` is the rest of the training file.
    """
    if split == "test":
        return g014b2b_entries(data_dir, "test")
    if split not in ("train", "dev"):
        raise ValueError(f"cmudict: unknown split {split!r} (train, dev, test)")
    entries = g014b2b_entries(data_dir, "train")
    words = sorted({w for w, _ in entries})
    dev = set(random.Random(int(options.get("seed", 1))).sample(words, int(options.get("dev_words", 2670))))
    return [(w, p) for w, p in entries if (w in dev) == (split == "dev")]


def caption_pairs(data_dir: Path, split: str, src_lang: str, tgt_lang: str, options: Options) -> list[Pair]:
    """Multi30k task-2 summarisation pairs: caption k (1 = longest) → caption m (5 = shortest) of each image.

    ``options["train_pairs"]`` lists the ``[k, m]`` pairings for the ``train`` split (default
    ``[[1, 5]]``); every other split uses ``options["eval_pairs"]`` (default ``[[1, 5]]``).
    """
    pairings = options.get("train_pairs" if split == "train" else "eval_pairs", [[1, 5]])
    folder = Path(data_dir) / "multi30k-captions"
    out: list[Pair] = []
    for k, m in pairings:
        src, tgt = read_lines(folder / f"{split}.{k}.en.gz"), read_lines(folder / f"{split}.{m}.en.gz")
        if len(src) != len(tgt):
            raise ValueError(f"multi30k-captions {split}: {len(src)} lines of caption {k} vs {len(tgt)} of {m}")
        out.extend(zip(src, tgt))
    return out


def date_pairs(data_dir: Path, split: str, src_lang: str, tgt_lang: str, options: Options) -> list[Pair]:
    """Generated date-normalisation pairs (``train``, ``valid``, ``test``); no files are read."""
    return dates.generate(split, dates.settings_from(options))


@dataclass(frozen=True)
class Dataset:
    """A registered data set: its reader and how evaluation treats it."""

    read: Callable[[Path, str, str, str, Options], list[Pair]]
    multi_reference: bool = False  # a source may repeat with other correct targets; evaluation groups them
    needs_files: bool = True


DATASETS: dict[str, Dataset] = {
    "multi30k": Dataset(multi30k_pairs),
    "tatoeba-cmn-eng": Dataset(tatoeba_pairs),
    "cmudict": Dataset(cmudict_pairs, multi_reference=True),
    "multi30k-captions": Dataset(caption_pairs),
    "dates": Dataset(date_pairs, needs_files=False),
}


def load_pairs(dataset: str, data_dir: Path, split: str, src_lang: str, tgt_lang: str,
               options: Options | None = None) -> list[Pair]:
    """Pairs of one split of a named data set; ``options`` is the config's ``dataset_options``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    data_dir = Path(data_dir)
    if DATASETS[dataset].needs_files and not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist (pass --data-dir)")
    return DATASETS[dataset].read(data_dir, split, src_lang, tgt_lang, dict(options or {}))


def group_references(pairs: list[Pair], multi_reference: bool) -> list[tuple[str, list[str]]]:
    """``(source, references)`` items: one per distinct source (first-seen order) when
    ``multi_reference``, else one per pair, so translation scores stay line-by-line."""
    if not multi_reference:
        return [(s, [t]) for s, t in pairs]
    grouped: dict[str, list[str]] = {}
    for s, t in pairs:
        refs = grouped.setdefault(s, [])
        if t not in refs:
            refs.append(t)
    return list(grouped.items())


def load_references(dataset: str, data_dir: Path, split: str, src_lang: str, tgt_lang: str,
                    options: Options | None = None) -> list[tuple[str, list[str]]]:
    """What evaluation scores: each source once with every correct target (see ``group_references``)."""
    pairs = load_pairs(dataset, data_dir, split, src_lang, tgt_lang, options)
    return group_references(pairs, DATASETS[dataset].multi_reference)


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
