"""``models.topk.top_k`` against ``torch.topk`` on a decoder's log-probabilities, paired.

    python benchmarks/bench_topk.py [--vocabulary 8000] [--rows 1 4 8 16 32] [--k 5] [--pairs 200]

A greedy step keeps each row's top ``k`` tokens. This times both ways on rows shaped like the
shipped Transformer's log-softmax output (8,000 scores, a few large ones over a long tail), one
thread, alternating call by call so the machine's drift falls on both alike, together with
the log-softmax itself for scale, and prints medians in microseconds. Both return the same
values and indices (``tests/test_topk.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_core.models.topk import top_chunk, top_k  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary", type=int, default=8000)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--k", type=int, default=5, help="tokens kept a step (the page's alternatives)")
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scripted = torch.jit.script(top_k)  # as the TorchScript loops run it
    chunk = top_chunk(args.vocabulary)
    print(f"vocabulary {args.vocabulary}, k {args.k}, chunk {chunk}; medians of {args.pairs} pairs, one thread")
    print("| rows | torch.topk | top_k | log_softmax (for scale) |")
    print("|---|---|---|---|")
    for rows in args.rows:
        logits = torch.randn(rows, args.vocabulary, generator=torch.Generator().manual_seed(rows)) * 4
        scores = torch.log_softmax(logits, dim=-1)
        runs = {"topk": partial(torch.topk, scores, args.k, dim=-1), "top_k": partial(scripted, scores, args.k, chunk),
                "log_softmax": partial(torch.log_softmax, logits, dim=-1)}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(10):
            for run in runs.values():
                run()
        for i in range(args.pairs):
            for name in (runs if i % 2 == 0 else reversed(list(runs))):
                start = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - start)
        us = {name: statistics.median(t) * 1e6 for name, t in times.items()}
        print(f"| {rows} | {us['topk']:.0f} µs | {us['top_k']:.0f} µs | {us['log_softmax']:.0f} µs |")


if __name__ == "__main__":
    main()
