"""Decode text from the command line, one input per line, streaming.

    python -m demo_core.generate --list
    echo "Zwei Hunde spielen im Schnee." | python -m demo_core.generate --model de-en-rnn-bahdanau --strategy beam --beam-size 5
    ... | python -m demo_core.generate --model ID --json      # one JSON object per line
    echo "Two dogs play." | python -m demo_core.generate --model tts-en-tacotron --json --audio-out dogs.wav

Each input line gives exactly one output line, in order. An input that cannot be decoded
(empty, too long) gives an empty line (or ``{"error": ...}`` with ``--json``) and a message on
stderr, so outputs stay aligned with inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
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


def build_parser() -> argparse.ArgumentParser:
    """The command's flags: model choice, output format, and one flag per decoding option."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the shipped models as a JSON array and exit")
    parser.add_argument("--model", help="model id (see --list)")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_ROOT, help="folder of model folders")
    parser.add_argument("--prefix", default="", help="target text the output must start with")
    parser.add_argument("--json", action="store_true", help="one JSON object per line (n-best, scores, attention)")
    parser.add_argument("--audio-out", type=Path, default=None, metavar="PATH",
                        help="speech models: write the audio of the first line to PATH (a WAV file), of line n to PATH-n")
    add_decoding_arguments(parser)
    return parser


def audio_path(base: Path, line: int) -> Path:
    """Where line ``line`` (1-based) of the input is written: ``base``, then ``base-2.wav``, ..."""
    return base if line == 1 else base.with_name(f"{base.stem}-{line}{base.suffix or '.wav'}")


def stream(answer: Callable[[int, str], tuple[dict[str, Any], str]], as_json: bool) -> int:
    """One output line per input line of stdin: ``answer(line_number, text)`` gives (JSON, plain
    text); an input it refuses gives an error line (JSON) or an empty line, and a message on stderr."""
    for number, line in enumerate(sys.stdin, start=1):
        text = line.rstrip("\n")
        try:
            as_dict, plain = answer(number, text)
            out = json.dumps(as_dict, ensure_ascii=False) if as_json else plain
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            out = json.dumps({"error": str(exc), "source": text}, ensure_ascii=False) if as_json else ""
        sys.stdout.write(out + "\n")
        sys.stdout.flush()
    return 0


def speak(registry: ModelRegistry, args: argparse.Namespace) -> Callable[[int, str], tuple[dict[str, Any], str]]:
    """The speech model's answer to a line: its phones (JSON: also the attention [decoder steps, phones],
    the spectrogram and the sample rate), the audio written to ``--audio-out``."""
    from demo_core.serving import synthesis
    from demo_core.tts.audio import write_wav

    def answer(number: int, text: str) -> tuple[dict[str, Any], str]:
        _, result = synthesis.synthesize(registry, args.model, text, args.seed)
        if args.audio_out is not None:
            write_wav(audio_path(args.audio_out, number), result.sample_rate, result.audio_int16)
        return synthesis.result_json(args.model, result), " | ".join(" ".join(p) for p in result.word_phones)

    return answer


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps(list_models(args.checkpoints), ensure_ascii=False, indent=2))
        return 0
    if not args.model:
        parser.error("--model is required (or --list)")
    registry = ModelRegistry(args.checkpoints)
    speech = registry.is_speech(args.model)
    if args.audio_out is not None and not speech:
        parser.error("--audio-out is for speech-synthesis models (see --list)")
    try:
        cfg = decode_config(args)
        model = registry.synthesizer(args.model) if speech else registry.get(args.model)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if speech:
        return stream(speak(registry, args), args.json)
    translator = model

    def translate(number: int, text: str) -> tuple[dict[str, Any], str]:
        result = translator.run(text, cfg, prefix=args.prefix)
        return result.to_json(), result.best.text

    return stream(translate, args.json)


if __name__ == "__main__":
    sys.exit(main())
