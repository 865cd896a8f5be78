"""Train a model from its JSON config; resumable, with early stopping on the task metric.

    python -m demo_core.train configs/de-en-rnn-bahdanau.json --data-dir ../shared/data
    python -m demo_core.train configs/tts-en-tacotron.json --data-dir ../shared/data

Rerun the same command to resume. Text models train in ``demo_core.training`` (the loop, its
resumable state and the export); the speech-synthesis model (a config whose task is ``tts``)
in ``demo_core.tts.train``. ``--help`` after the config lists each one's flags.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = next((Path(a) for a in argv if a.endswith(".json")), None)
    task = None
    if config is not None and config.is_file():
        try:
            task = json.loads(config.read_text(encoding="utf-8")).get("task")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            task = None  # the trainer reports what is wrong with the file
    if task == "tts":
        from demo_core.tts.train import main as train_speech

        train_speech(argv)
    else:
        from demo_core.training.loop import main as train_text

        train_text(argv)


if __name__ == "__main__":
    main()
