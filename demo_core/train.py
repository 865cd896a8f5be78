"""Train a model from its JSON config; resumable, with early stopping on the task metric.

    python -m demo_core.train configs/de-en-rnn-bahdanau.json --data-dir ../shared/data

Rerun the same command to resume. ``demo_core.training`` holds the loop, its resumable state
and the export; ``--help`` lists the flags.
"""

from demo_core.training.loop import main

if __name__ == "__main__":
    main()
