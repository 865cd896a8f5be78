"""Time one Linear layer's product for one input row (greedy) and five (beam 5): fp32 against
packed fp16 weights, by layer size.

    python benchmarks/bench_linear.py [--threads 1] [--calls 3000]

A packed fp16 product (what ``quantize_for_cpu`` makes) reads half the bytes of an fp32 one
but has a fixed cost per call; on a small layer that cost is larger than the bytes it saves.
The crossover this prints is where ``demo_core.models.cpu.MIN_PACKED_WEIGHTS`` comes from:
layers with fewer weights stay fp32. The sizes are those of the shipped models: a width-128
Transformer's projections (128 x 128 to 384 x 128), the RNNs' layers and the output
projections onto 6,000-8,000 pieces. Prints microseconds per call, medians of 5 rounds.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_core.models.cpu import MIN_PACKED_WEIGHTS, pack_linears  # noqa: E402

SIZES = [(128, 128), (256, 128), (384, 128), (128, 256), (256, 256), (512, 256), (512, 512),
         (1536, 512), (8000, 128), (8000, 512)]  # (out_features, in_features)


def per_call_us(f, calls: int) -> float:
    """Median over 5 rounds of the mean microseconds of ``calls`` calls of ``f``."""
    for _ in range(100):
        f()
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            f()
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); microseconds per call; "
          f"packed by default from {MIN_PACKED_WEIGHTS:,} weights")
    print(f"{'out x in':>12} {'weights':>10} | {'1 row fp32':>10} {'fp16':>8} | {'5 rows fp32':>11} {'fp16':>8}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for out_features, in_features in SIZES:
            layer = nn.Linear(in_features, out_features).eval()
            packed = pack_linears(nn.Sequential(layer), "fp16", min_packed=0)[0]
            op = torch.ops.quantized.linear_dynamic_fp16.default
            params = packed._packed_params._packed_params
            weight, bias = layer.weight.detach(), layer.bias.detach()
            row = []
            for rows in (1, 5):
                x = torch.randn(rows, in_features)
                with torch.inference_mode():
                    row += [per_call_us(functools.partial(F.linear, x, weight, bias), args.calls),
                            per_call_us(functools.partial(op, x, params), args.calls)]
            print(f"{out_features:>5} x {in_features:<5} {weight.numel():>10,} | {row[0]:>10.1f} {row[1]:>8.1f} | "
                  f"{row[2]:>11.1f} {row[3]:>8.1f}")


if __name__ == "__main__":
    main()
