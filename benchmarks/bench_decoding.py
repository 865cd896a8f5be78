"""Median decoding latency of every shipped model, attention recorded: translation models on one
sentence (17 words in German, 18 in English), the others (dates, pronunciation, summarisation)
on their card's first example.

    python benchmarks/bench_decoding.py [--runs 20] [--threads 2]

Prints one line per model and strategy: median and 90th percentile in milliseconds, model
loaded beforehand (loading is not timed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_core.decoding import DecodeConfig  # noqa: E402
from demo_core.pipeline import ModelRegistry  # noqa: E402

SENTENCES = {
    "de": "Ein kleines Mädchen in einem roten Kleid spielt mit ihrem Hund auf einer grünen Wiese im Park.",
    "en": "A little girl in a red dress is playing with her dog on a green meadow in the park.",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = ModelRegistry()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for model_id in registry.available():
        if registry.is_speech(model_id):  # no text decoding: benchmarks/bench_tts.py times it
            continue
        translator = registry.get(model_id)
        card = translator.card
        text = SENTENCES.get(card.source_lang) if card.task == "translation" else None
        text = text or card.examples[0]
        for name, cfg in (("greedy", DecodeConfig()), ("beam 5", DecodeConfig(strategy="beam", beam_size=5))):
            translator.run(text, cfg)  # warm-up
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                translator.run(text, cfg)
                times.append((time.perf_counter() - start) * 1000)
            p90 = sorted(times)[int(0.9 * (len(times) - 1))]
            print(f"{model_id:28s} {name:7s} median {statistics.median(times):7.1f} ms   p90 {p90:7.1f} ms")


if __name__ == "__main__":
    main()
