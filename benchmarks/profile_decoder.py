"""Where a served Transformer's greedy decode spends its time: operators per step and their shares.

    python benchmarks/profile_decoder.py [--model de-en-transformer] [--batch 1 32] [--steps 18]

Decodes the 15-word sentence of ``bench_app.py`` (``--batch`` copies of it) with the app's
served form (``quantize_for_cpu``, fp16) on one thread, EOS suppressed so every row writes
exactly ``--steps`` tokens, as ``compare_engines.py`` does. For each batch size it prints the
top-level PyTorch operators per step (those that compute and the views), the least CPU time of
the decoding loop, the output projection and the encoder, and the operators'
shares of the profiled CPU time (``torch.profiler``, 5 decodes after 3 warm-ups, encoder
included). ``docs/SPEED.md`` ("Against other engines") cites it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.compare_engines import SENTENCE, load_ours  # noqa: E402
from demo_core.decoding import DecodeConfig, greedy_search  # noqa: E402

VIEWS = {"aten::view", "aten::select", "aten::slice", "aten::as_strided", "aten::transpose", "aten::unsqueeze",
         "aten::squeeze", "aten::t", "aten::expand", "aten::alias", "aten::split", "aten::narrow", "aten::unbind"}


def is_op(name: str) -> bool:
    return name.startswith(("aten::", "quantized::"))


def best_cpu_ms(run: Callable[[], object], rounds: int = 60) -> float:
    """The least CPU time of ``rounds`` calls of ``run`` (after 5 warm-ups), in ms: what the machine's other jobs add least to."""
    for _ in range(5):
        run()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="de-en-transformer")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--steps", type=int, default=18)
    args = parser.parse_args()
    torch.set_num_threads(1)
    translator, _, model = load_ours("fp16", REPO / "checkpoints" / args.model)
    src = torch.tensor([translator.source_ids(SENTENCE)])
    cfg = DecodeConfig(max_len=args.steps)
    for batch in args.batch:
        rows = src.expand(batch, -1).contiguous()
        with torch.inference_mode():
            for _ in range(3):
                greedy_search(model, rows, cfg, memory=model.encode(rows))
            with profile(activities=[ProfilerActivity.CPU]) as steps:  # the decoding loop alone
                memory = model.encode(rows)
                with torch.profiler.record_function("decode"):
                    greedy_search(model, rows, cfg, memory=memory)
            with profile(activities=[ProfilerActivity.CPU]) as whole:
                for _ in range(5):
                    greedy_search(model, rows, cfg, memory=model.encode(rows))
        decode = next(e for e in steps.events() if e.name == "decode")
        inside = [e for e in steps.events() if is_op(e.name) and decode.time_range.start <= e.time_range.start
                  and e.time_range.end <= decode.time_range.end]
        top = [e for e in inside if e.cpu_parent is None or not is_op(e.cpu_parent.name)]
        views = sum(e.name in VIEWS for e in top)
        print(f"batch {batch}: {len(top) / args.steps:.0f} top-level operators per step "
              f"({(len(top) - views) / args.steps:.0f} computing, {views / args.steps:.0f} views)")
        with torch.inference_mode():
            memory = model.encode(rows)
            loop = best_cpu_ms(lambda rows=rows, memory=memory: greedy_search(model, rows, cfg, memory=memory))
            encode = best_cpu_ms(lambda rows=rows: model.encode(rows))
            normed = torch.randn(batch, model.cfg.d_model)
            output = best_cpu_ms(lambda normed=normed: model.packed_decoder.output(normed), rounds=200)
        print(f"  decoding alone (encoder not included): {loop:.2f} ms of CPU, best of 60, {loop / args.steps:.3f} ms a step; "
              f"the output projection alone {output:.3f} ms a step; the encoder alone {encode:.2f} ms")
        total = sum(e.self_cpu_time_total for e in whole.key_averages())
        for e in sorted(whole.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:8]:
            print(f"  {100 * e.self_cpu_time_total / total:5.1f}%  {e.key}")


if __name__ == "__main__":
    main()
