"""Real-time factor of the shipped speech synthesiser on one CPU thread, vocoder included.

    python benchmarks/bench_tts.py [--model checkpoints/tts-en-tacotron] [--text "..."] [--repeats 3]

Times ``Synthesizer.synthesize`` (phonetise, greedy Tacotron decode, 32 Griffin-Lim iterations)
on a 10-word sentence, model loaded beforehand; prints the best of ``--repeats`` runs, the share
of the acoustic model, and RTF = compute seconds / audio seconds (goal: at most 0.3).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_core.tts.evaluate import BENCH_SENTENCE, real_time_factor
from demo_core.tts.synthesize import Synthesizer

GOAL_RTF = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(__file__).resolve().parent.parent / "checkpoints" / "tts-en-tacotron")
    parser.add_argument("--text", default=BENCH_SENTENCE)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    speed = real_time_factor(Synthesizer.from_dir(args.model), args.text, args.repeats)
    print(json.dumps(speed))
    verdict = "meets" if speed["rtf"] <= GOAL_RTF else "misses"
    print(f"{speed['words']} words, {speed['audio_seconds']:.2f} s of audio in {speed['seconds']:.3f} s "
          f"(acoustic model {speed['acoustic_model_seconds']:.3f} s): RTF {speed['rtf']:.3f}, "
          f"{verdict} the goal of {GOAL_RTF}")


if __name__ == "__main__":
    main()
