"""A batch of API requests decoded next to a busy Python thread, as the server's batching workers decode next to
Gradio's event loop: how much longer each part takes when it has to win Python's lock (GIL) back.

    python benchmarks/bench_batch_lock.py [--model de-en-rnn-bahdanau] [--batch 8] [--rounds 15] [--strategy greedy|sample]

Each PyTorch operation called from Python lets go of the lock while it computes and must take it back when it
returns. Alone that costs nothing; next to a thread that runs Python all the time (the event loop under load), every
such return waits until that thread is made to let go: up to one switch interval (the server's, 0.5 ms). This times,
on one thread with the server's switch interval, the parts of ``batcher.run_together`` for ``--batch`` sentences of
``load.py``'s mix (greedy, or with ``--strategy sample`` one sample each at the default settings; the served
model): the encoder (``model.encode``), the decoder's first state (``model.init_state``), the decode
(``decode_batch`` given that memory) and the whole ``run_together`` (these three, plus each result's pieces and
checks), each alone and while another thread runs a pure-Python loop; medians of ``--rounds``. It also counts
the PyTorch operations Python calls in one ``run_together`` (top-level operators in ``torch.profiler``).
``docs/SPEED.md`` ("Under load") cites it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.load import sentences  # noqa: E402
from demo_core.decoding import DecodeConfig  # noqa: E402
from demo_core.decoding.search import decode_batch  # noqa: E402
from demo_core.pipeline import ModelRegistry  # noqa: E402
from demo_core.serving.batcher import run_together  # noqa: E402
from demo_core.tasks.datasets import pad  # noqa: E402

SWITCH_INTERVAL_S = 0.0005  # app.SWITCH_INTERVAL_S: the server's


class BusyThread:
    """A thread running a pure-Python loop (it never lets go of the lock on its own) while the block runs."""

    def __enter__(self) -> BusyThread:
        self.stop = False
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        return self

    def _spin(self) -> None:
        total = 0
        while not self.stop:
            for i in range(1000):
                total += i

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join()


def timed(parts: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median milliseconds of each part, run one after another ``rounds`` times on a fresh thread."""
    seconds: dict[str, list[float]] = {name: [] for name in parts}

    def work() -> None:
        with torch.inference_mode():
            for _ in range(rounds):
                for name, part in parts.items():
                    start = time.perf_counter()
                    part()
                    seconds[name].append(time.perf_counter() - start)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return {name: 1000 * statistics.median(values) for name, values in seconds.items()}


def python_calls(run: Callable[[], object]) -> int:
    """PyTorch operations called from Python in one ``run`` (top-level operators of ``torch.profiler``)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return sum(1 for event in prof.events() if event.cpu_parent is None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="de-en-rnn-bahdanau")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--strategy", choices=("greedy", "sample"), default="greedy")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    texts, _, _ = sentences(args.model)
    translator, cfg = ModelRegistry().get(args.model), DecodeConfig(strategy=args.strategy, seed=1)
    chosen = [texts[i % len(texts)] for i in range(args.batch)]
    ids = [translator.source_ids(t) for t in chosen]
    model = translator.model
    src = pad(sorted(ids, key=len, reverse=True))  # as run_together orders them
    with torch.inference_mode():
        memory = model.encode(src)
    parts: dict[str, Callable[[], object]] = {
        "encoder": lambda: model.encode(src),
        "first state": lambda: model.init_state(memory),
        "decode": lambda: decode_batch(model, src, cfg, seeds=[b + 1 for b in range(len(ids))], memory=memory),
        "run_together": lambda: run_together(translator, chosen, [cfg] * len(ids), ids),
    }
    timed(parts, 3)  # warm-up
    alone = timed(parts, args.rounds)
    with BusyThread():
        busy = timed(parts, args.rounds)
    with torch.inference_mode():
        calls = python_calls(parts["run_together"])
    print(f"{args.model}, {args.batch} sentences ({min(map(len, ids))}-{max(map(len, ids))} source tokens), {args.strategy}, "
          f"one thread, switch interval {SWITCH_INTERVAL_S * 1000:g} ms; medians of {args.rounds}")
    print(f"{'part':<14} {'alone':>9} {'busy thread':>12} {'extra':>8}")
    for name in parts:
        print(f"{name:<14} {alone[name]:>6.1f} ms {busy[name]:>9.1f} ms {busy[name] - alone[name]:>5.1f} ms")
    print(f"PyTorch operations called from Python in one run_together: {calls}")


if __name__ == "__main__":
    main()
