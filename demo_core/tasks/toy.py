"""A toy task that trains in seconds: reverse a string of digits.

Its right answer has a known alignment (output position j reads source position L-1-j),
so a test can check that attention learned *where* to look, not only what to write. Ids
0-3 are the special tokens; digit d is id ``4 + d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from demo_core.decoding import DecodeConfig, greedy_search
from demo_core.tasks.datasets import collate, pad
from demo_core.text.tokenizer import EOS_ID, PAD_ID

VOCAB = 14  # 4 specials + 10 digits


def toy_batch(batch: int, generator: torch.Generator, min_len: int = 3, max_len: int = 8) -> list[tuple[list[int], list[int]]]:
    """``batch`` random (digits, reversed digits) id pairs."""
    pairs = []
    for _ in range(batch):
        n = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
        seq = (torch.randint(0, 10, (n,), generator=generator) + 4).tolist()
        pairs.append((seq, seq[::-1]))
    return pairs


def train_toy(model: nn.Module, steps: int = 400, batch: int = 64, lr: float = 3e-3, seed: int = 0) -> nn.Module:
    """Teacher-forced training on the reversal task; returns the model in eval mode."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        src, tgt_in, tgt_out = collate(toy_batch(batch, generator))
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model.eval()


def toy_sources(n: int, seed: int = 123) -> list[list[int]]:
    """``n`` held-out digit strings (ids, EOS appended)."""
    generator = torch.Generator().manual_seed(seed)
    return [s + [EOS_ID] for s, _ in toy_batch(n, generator)]


def alignment_accuracy(model: nn.Module, sources: list[list[int]], layer: int = -1) -> tuple[float, float]:
    """(exact-match accuracy, share of output rows whose attention argmax is the mirrored source position).

    Attention is averaged over heads of ``layer``; only rows of correctly placed digits count,
    EOS rows are skipped.
    """
    hyps = greedy_search(model, pad(sources), DecodeConfig(strategy="greedy", alternatives=1))
    exact, rows, aligned = 0, 0, 0
    for src, hyp in zip(sources, hyps):
        digits = src[:-1]
        exact += hyp.ids == digits[::-1] + [EOS_ID]
        attn = hyp.attention[:, layer].mean(1)  # [T, S]
        for j in range(min(len(digits), len(hyp.ids))):
            rows += 1
            aligned += int(attn[j].argmax()) == len(digits) - 1 - j
    return exact / len(sources), aligned / max(rows, 1)
