"""How often the input-language and caption warnings fire, on validation sentences (never a test split).

Run from the repository root: ``python benchmarks/bench_input_checks.py [--n 500] [--data-dir ../shared/data]``.
For each sample (Multi30k val German and English, Tatoeba valid English and Chinese, Multi30k
task 2 val captions 1 and 2) it prints how often ``language_mismatch`` fires against a model of
each source language: false positives where the model reads the sample's own language, true
positives elsewhere; then how often the summariser's caption checks fire on real captions.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_core.card import ModelCard
from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.tasks.datasets import load_pairs, read_lines
from demo_core.tasks.input_checks import caption_problems
from demo_core.tasks.input_language import language_mismatch


def samples(data_dir: Path, n: int, seed: int = 0) -> dict[tuple[str, str], list[str]]:
    """(name, language) -> up to ``n`` validation sentences, drawn with a fixed seed."""
    rng = random.Random(seed)
    multi30k = load_pairs("multi30k", data_dir, "val", "de", "en")
    options = ModelCard.read(DEFAULT_ROOT / "zh-en-rnn-bahdanau" / "config.json").dataset_options
    tatoeba = load_pairs("tatoeba-cmn-eng", data_dir, "valid", "en", "zh", options)
    found = {("multi30k val", "de"): [d for d, _ in multi30k], ("multi30k val", "en"): [e for _, e in multi30k],
             ("tatoeba valid", "en"): [e for e, _ in tatoeba], ("tatoeba valid", "zh"): [z for _, z in tatoeba]}
    return {key: rng.sample(texts, min(n, len(texts))) for key, texts in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="sentences per sample")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--show", type=int, default=0, help="print this many misfires per row")
    args = parser.parse_args()
    for (name, language), texts in samples(args.data_dir, args.n).items():
        for model_lang in ("de", "en", "zh"):
            fired = [t for t in texts if language_mismatch(t, model_lang)]
            own = model_lang == language
            kind = "false positives" if own else "true positives"
            print(f"{name} {language} ({len(texts)}) -> a model reading {model_lang}: {kind} "
                  f"{len(fired)}/{len(texts)} = {len(fired) / len(texts):.1%}")
            for text in (fired if own else [t for t in texts if t not in fired])[: args.show]:
                print(f"    {'fired' if own else 'missed'}: {text}")
    for k in (1, 2):  # the summariser's inputs: the longest and second-longest caption of each image
        captions = read_lines(args.data_dir / "multi30k-captions" / f"val.{k}.en.gz")
        flagged = [c for c in captions if caption_problems(c)]
        print(f"multi30k-captions val.{k}.en ({len(captions)}): caption warnings {len(flagged)} = "
              f"{len(flagged) / len(captions):.1%}")
        for text in flagged[: args.show]:
            print(f"    fired: {text}")


if __name__ == "__main__":
    main()
