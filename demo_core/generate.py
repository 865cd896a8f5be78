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
from demo_core.decoding.cli import add_decoding_arguments, decode_config
from demo_core.pipeline import InputError, ModelRegistry


def list_models(root: Path) -> list[dict[str, Any]]:
    """One object per model folder: id, task, languages, architecture, availability."""
    out = []
    for entry in find_models(root):
        card = entry.card
        out.append({
            "id": entry.id,
            "task": card.task if card else None,
            "task_label": card.task_label if card else None,
            "source_lang": card.source_lang if card else None,
            "target_lang": card.target_lang if card else None,
            "architecture": card.architecture if card else None,
            "attention": card.attention if card else None,
            "display_name": card.name if card else entry.id,
            "available": entry.available,
            "error": entry.error,
        })
    return out


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
