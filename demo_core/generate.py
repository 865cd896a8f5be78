"""Decode text from the command line, one input per line, streaming.

    python -m demo_core.generate --list
    echo "Zwei Hunde spielen im Schnee." | python -m demo_core.generate --model de-en-rnn-bahdanau --strategy beam --beam-size 5
    ... | python -m demo_core.generate --model ID --json      # one JSON object per line

Each input line gives exactly one output line, in order. An input that cannot be decoded
(empty, too long) gives an empty line (or ``{"error": ...}`` with ``--json``) and a message on
stderr, so outputs stay aligned with inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from demo_core.checkpoint import DEFAULT_ROOT, find_models
from demo_core.decoding.search import STRATEGIES, DecodeConfig
from demo_core.pipeline import InputError, ModelRegistry


def list_models(root: Path) -> list[dict[str, Any]]:
    """One object per model folder: id, task, languages, architecture, availability."""
    out = []
    for entry in find_models(root):
        card = entry.card
        out.append({
            "id": entry.id,
            "task": card.get("task"),
            "task_label": card.get("task_label"),
            "source_lang": card.get("source_lang"),
            "target_lang": card.get("target_lang"),
            "architecture": card.get("architecture"),
            "attention": card.get("model", {}).get("attention", "multi-head" if card.get("architecture") == "transformer" else None),
            "display_name": card.get("display_name", entry.id),
            "available": entry.available,
            "error": entry.error,
        })
    return out


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """The DecodeConfig knobs as command-line flags (shared with evaluate)."""
    d = DecodeConfig()
    parser.add_argument("--strategy", choices=STRATEGIES, default=d.strategy)
    parser.add_argument("--beam-size", type=int, default=d.beam_size)
    parser.add_argument("--length-penalty", type=float, default=d.length_penalty, help="GNMT alpha")
    parser.add_argument("--n-best", type=int, default=None, help="beam hypotheses to return (default: beam size)")
    parser.add_argument("--temperature", type=float, default=d.temperature)
    parser.add_argument("--top-k", type=int, default=d.top_k, help="0 = off")
    parser.add_argument("--top-p", type=float, default=d.top_p)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--num-samples", type=int, default=d.num_samples)
    parser.add_argument("--max-len", type=int, default=None, help="most output tokens (default: 2 x source + 10)")
    parser.add_argument("--no-repeat-ngram", type=int, default=d.no_repeat_ngram, help="0 = off")
    parser.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty, help="1 = off")


def decode_config(args: argparse.Namespace) -> DecodeConfig:
    """DecodeConfig from parsed flags; raises ValueError naming a bad parameter."""
    cfg = DecodeConfig(
        strategy=args.strategy, beam_size=args.beam_size, length_penalty=args.length_penalty, n_best=args.n_best,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
        num_samples=args.num_samples, max_len=args.max_len, no_repeat_ngram=args.no_repeat_ngram,
        repetition_penalty=args.repetition_penalty,
    )
    cfg.validate()
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the shipped models as a JSON array and exit")
    parser.add_argument("--model", help="model id (see --list)")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_ROOT, help="folder of model folders")
    parser.add_argument("--prefix", default="", help="target text the output must start with")
    parser.add_argument("--json", action="store_true", help="one JSON object per line (n-best, scores, attention)")
    add_decoding_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps(list_models(args.checkpoints), ensure_ascii=False, indent=2))
        return 0
    if not args.model:
        parser.error("--model is required (or --list)")
    try:
        cfg = decode_config(args)
        translator = ModelRegistry(args.checkpoints).get(args.model)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in sys.stdin:
        text = line.rstrip("\n")
        try:
            result = translator.run(text, cfg, prefix=args.prefix)
            out = json.dumps(result.to_json(), ensure_ascii=False) if args.json else result.best.text
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            out = json.dumps({"error": str(exc), "source": text}, ensure_ascii=False) if args.json else ""
        sys.stdout.write(out + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
