"""Timing of the decoding lab's data (demo_core/serving/lab.py) on a ~20-token output.

    python benchmarks/bench_lab.py [--runs 30] [--threads 1] [--models de-en-transformer de-en-rnn-bahdanau]

Per model, medians in milliseconds (model loaded and the decode done beforehand, not timed):
(1) the step distributions of the best greedy hypothesis (teacher forcing, once per result);
(2) one reshape call, what a slider move costs: ``step_view`` of the middle step under a new
sampling temperature / top-k / top-p; then, for beam search (beam 5): the tree replay (once per
result), one ``beam_step`` view, one ``node_path``, and ``steps_json`` of the greedy result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_core.decoding import DecodeConfig  # noqa: E402
from demo_core.pipeline import ModelRegistry, Translator  # noqa: E402
from demo_core.serving import beam_view  # noqa: E402
from demo_core.serving.lab import DecodeLab, step_distributions, step_view, tree_replay  # noqa: E402
from demo_core.serving.lab_json import steps_json  # noqa: E402

TEXT = "Ein kleines Mädchen in einem roten Kleid spielt mit ihrem Hund auf einer grünen Wiese im Park."  # bench_decoding's


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["de-en-transformer", "de-en-rnn-bahdanau"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = ModelRegistry()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.runs} runs, weights {registry.weights}")
    for model_id in args.models:
        bench_model(model_id, registry.get(model_id), args.runs)


def bench_model(model_id: str, translator: Translator, runs: int) -> None:
    """Print the medians of one model."""
    greedy = translator.run(TEXT, DecodeConfig())
    steps = step_distributions(translator, greedy)
    middle = steps.steps // 2
    sliders = [replace(greedy.config, strategy="sample", temperature=t, top_k=k, top_p=p)
               for t, k, p in ((0.7, 0, 0.9), (1.3, 40, 1.0), (1.0, 0, 0.5))]
    moves = iter(range(10**9))
    beam = translator.run(TEXT, DecodeConfig(strategy="beam", beam_size=5))
    replay = DecodeLab(translator, beam).replay()
    pruned = next(n.id for n in reversed(beam.beam_tree) if n.status == "pruned")
    rows = [
        ("for reference: the greedy decode (Translator.run)", median_ms(lambda: translator.run(TEXT, DecodeConfig()), runs)),
        (f"step distributions ({steps.steps} steps, V={steps.raw_log_probs.size(1)})",
         median_ms(lambda: step_distributions(translator, greedy), runs)),
        ("one reshape (step_view, new sampling settings)",
         median_ms(lambda: step_view(translator, steps, middle, sliders[next(moves) % 3]), runs)),
        (f"beam 5 tree replay ({len(beam.beam_tree)} nodes)", median_ms(lambda: tree_replay(translator, beam), runs)),
        ("beam_step view (with replay)", median_ms(lambda: beam_view.beam_step(translator, beam, 3, replay), runs)),
        ("node_path of a pruned node (with replay)", median_ms(lambda: beam_view.node_path(translator, beam, pruned, replay), runs)),
        ("steps_json of the greedy result (k=10)", median_ms(lambda: steps_json(greedy, translator), runs)),
    ]
    print(f"{model_id}: greedy output {len(greedy.best.ids)} tokens, beam 5 output {len(beam.best.ids)} tokens")
    for name, ms in rows:
        print(f"  {name:55s} {ms:7.2f} ms")

if __name__ == "__main__":
    main()
