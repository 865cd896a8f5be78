"""Decode a data split with a shipped model and measure it; results go to metrics.json.

    python -m demo_core.evaluate --model de-en-rnn-bahdanau --split test

``--split`` is ``test`` or ``valid`` (the card's names for them) or a raw split name. The
default decoding is beam search of width 5. Printed and stored: the card's metric (sacreBLEU
BLEU and chrF with signatures; G2P WER/PER; ROUGE with the lead baseline; exact match), plus
the decoding settings and the command. Each distinct source is decoded once and scored
against all its references where the data set has several (CMUdict pronunciations).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from demo_core.checkpoint import DEFAULT_ROOT, read_metrics, write_metrics
from demo_core.decoding.cli import add_decoding_arguments, decode_config
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.tasks import datasets as data
from demo_core.tasks.metrics import lead_baseline, score

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--split", default="test", help="test | valid | a split name of the data set")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs (quick check; not stored)")
    parser.add_argument("--output", type=Path, default=None, help="write the hypotheses here, one per line")
    add_decoding_arguments(parser)
    parser.set_defaults(strategy="beam", beam_size=5)
    args = parser.parse_args(argv)
    try:
        cfg = decode_config(args)
        registry = ModelRegistry(args.checkpoints)
        translator = registry.get(args.model)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    card = translator.card
    if card.dataset is None:
        print(f"error: model {card.id} names no data set to evaluate on (card field 'dataset')", file=sys.stderr)
        return 2
    key = {"valid": "valid", "val": "valid", "test": "test"}.get(args.split, args.split)
    split = card.split(key, args.split)
    items = data.load_references(card.dataset, args.data_dir, split, card.source_lang, card.target_lang,
                                 card.dataset_options)
    items = items[: args.limit] if args.limit else items
    sources, references = [s for s, _ in items], [refs for _, refs in items]
    start = time.time()
    if cfg.strategy == "greedy":
        hyps = translator.translate_batch(sources, cfg)
    else:
        hyps = [translator.run(s, cfg).best.text for s in tqdm(sources, desc=f"{args.model} {split}", file=sys.stderr, mininterval=5)]
    seconds = time.time() - start
    metric = card.metric
    headline, values = score(metric, hyps, references)
    if metric == "rouge":  # a summariser must beat simply keeping the first words
        values.update(lead_baseline(sources, references))
    report = {
        "split": split,
        "sentences": len(items),
        "decoding": {k: v for k, v in asdict(cfg).items() if k in ("strategy", "beam_size", "length_penalty", "max_len_a", "max_len_b")},
        **values,
        "decode_seconds": round(seconds, 1),
        "command": "python -m demo_core.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.output:
        args.output.write_text("\n".join(hyps) + "\n", encoding="utf-8")
    if args.limit is None:
        model_dir = registry.entries[args.model].path
        metrics = read_metrics(model_dir)
        metrics[key] = report
        write_metrics(model_dir, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
