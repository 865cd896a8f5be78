"""Where a served Transformer's greedy decode spends its time: operators per step and their shares.

    python benchmarks/profile_decoder.py [--model de-en-transformer] [--batch 1 32] [--steps 18] [--ct2]

Decodes the 15-word sentence of ``bench_app.py`` (``--batch`` copies of it) with the app's
served form (``quantize_for_cpu``, fp16) on one thread, EOS suppressed so every row writes
exactly ``--steps`` tokens, as ``compare_engines.py`` does. For each batch size it prints the
top-level PyTorch operators per step (those that compute and the views), the least CPU time of
the decoding loop, the output projection and the encoder, and the operators'
shares of the profiled CPU time (``torch.profiler``, 5 decodes after 3 warm-ups, encoder
included). ``--ct2`` (with the benchmark-only dependencies of ``compare_engines.py``) times, in
turn in the same rounds, our decoding loop and encoder and CTranslate2 fp32's decodes of the same
batch forced to 2 and to ``--steps`` tokens, whose difference gives its time per step and the rest
(its encoder): which part of a decode is behind. ``docs/SPEED.md`` ("Against other engines") cites it.
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


def low_cpu_ms(runs: list[Callable[[], object]], rounds: int = 150) -> list[float]:
    """The 10th percentile of the CPU time of each of ``runs``, in ms, over ``rounds`` rounds that call each once in
    turn (after 5 warm-ups): steadier than a least time when two such times are subtracted."""
    times: list[list[float]] = [[] for _ in runs]
    for run in runs * 5:
        run()
    for _ in range(rounds):
        for run, kept in zip(runs, times, strict=True):
            start = time.process_time()
            run()
            kept.append(time.process_time() - start)
    return [1000 * sorted(kept)[rounds // 10] for kept in times]


def ct2_runs(src: torch.Tensor, model: torch.nn.Module) -> Callable[[int, int], None] | None:
    """A function decoding ``batch`` copies of ``src`` with CTranslate2 fp32 (``compare_engines.py``'s model of
    ``model``'s dimensions, one thread), forced to ``n`` tokens: ``run(batch, n)``; None when it is not installed."""
    try:
        import ctranslate2
        import transformers
    except ImportError:
        print("CTranslate2 not timed: pip install -r benchmarks/requirements.txt")
        return None
    import atexit
    import tempfile

    from benchmarks.compare_engines import ct2_translators, hf_model

    dims = {key: getattr(model.cfg, key) for key in ("d_model", "n_heads", "enc_layers", "dec_layers", "d_ff",
                                                      "max_positions", "tgt_vocab")}
    folder = tempfile.TemporaryDirectory()
    atexit.register(folder.cleanup)
    translators, tokens = ct2_translators(ctranslate2, hf_model(transformers, dims, "sdpa"), Path(folder.name))
    translator, source = translators["float32"], [tokens[i] for i in src[0].tolist()]
    torch.set_num_threads(1)

    def run(batch: int, n: int) -> None:
        translator.translate_batch([source] * batch, beam_size=1, max_batch_size=batch, min_decoding_length=n,
                                   max_decoding_length=n)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="de-en-transformer")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--steps", type=int, default=18)
    parser.add_argument("--ct2", action="store_true", help="also split CTranslate2 fp32's decode into steps and the rest")
    args = parser.parse_args()
    torch.set_num_threads(1)
    translator, _, model = load_ours("fp16", REPO / "checkpoints" / args.model)
    src = torch.tensor([translator.source_ids(SENTENCE)])
    cfg = DecodeConfig(max_len=args.steps)
    ct2 = ct2_runs(src, model) if args.ct2 else None
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
        if ct2 is not None:  # both engines' parts, in the same rounds
            with torch.inference_mode():
                ours_loop, ours_encode, short, full = low_cpu_ms([
                    lambda rows=rows, memory=memory: greedy_search(model, rows, cfg, memory=memory),
                    lambda rows=rows: model.encode(rows), lambda batch=batch: ct2(batch, 2),
                    lambda batch=batch: ct2(batch, args.steps)])
            step = (full - short) / (args.steps - 2)
            print(f"  in turn with CTranslate2 fp32 (10th percentiles of 150 rounds): a step {ours_loop / args.steps:.3f} ms "
                  f"here, {step:.3f} ms there (from its decodes of 2 and {args.steps} tokens); the encoder {ours_encode:.2f} ms "
                  f"here, the rest of its decode {short - 2 * step:.2f} ms there")
        total = sum(e.self_cpu_time_total for e in whole.key_averages())
        for e in sorted(whole.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:8]:
            print(f"  {100 * e.self_cpu_time_total / total:5.1f}%  {e.key}")


if __name__ == "__main__":
    main()
