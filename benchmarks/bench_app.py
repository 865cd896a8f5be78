"""Latency of the app: one request (decode + figures + tables) and the time until the server answers.

Run from the repository root: ``python benchmarks/bench_app.py [--runs 20] [--model ID]``.
Targets: greedy <= 150 ms, beam 5 <= 300 ms (median, 15-word sentence), ready <= 15 s.
Numbers depend on the machine and on what else is using its cores; the script prints both.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SENTENCE = "Ein kleines Mädchen in einem rosa Kleid spielt mit ihrem Hund auf der grünen Wiese."  # 15 words
TARGETS_MS = {"greedy": 150.0, "beam": 300.0}
READY_TARGET_S = 15.0


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn`` over ``runs`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def request_latency(model: str, runs: int) -> None:
    """Median latency of the page's run (``explore``: decode, figures, tables) and of the API (``/generate``) per strategy."""
    import app
    from demo_core.serving.requests import decode_defaults

    page = app.demo.page
    starts = decode_defaults(page.registry, model)
    print(f"sentence: {SENTENCE!r} ({len(SENTENCE.split())} words), model {model}, {runs} runs each")
    for strategy, extra in (("greedy", {}), ("beam", {"beam_size": 5, "n_best": 5})):
        options = dict(starts, strategy=strategy, **extra)  # the page's controls, by option name
        values = {page.text: SENTENCE, page.model: model, **{page.controls[name]: v for name, v in options.items()}}
        page_ms = median_ms(functools.partial(page.explore, values), runs)
        api_ms = median_ms(functools.partial(page.generate, SENTENCE, model, strategy, **extra), runs)
        verdict = "ok" if page_ms <= TARGETS_MS[strategy] else "over target"
        print(f"  {strategy:6s} page run (decode + figures) {page_ms:7.1f} ms   API /generate {api_ms:7.1f} ms   "
              f"target {TARGETS_MS[strategy]:.0f} ms: {verdict}")


def startup_seconds(timeout_s: float = 120.0) -> float:
    """Seconds from ``python app.py`` until the server answers HTTP 200."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout_s:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"app.py did not answer within {timeout_s:.0f} s")
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--model", default=None, help="model id (default: the app's default model)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} (other jobs inflate the numbers)")
    ready = startup_seconds()
    print(f"  startup: python app.py answers after {ready:.1f} s   target {READY_TARGET_S:.0f} s: "
          f"{'ok' if ready <= READY_TARGET_S else 'over target'}")
    import app

    model = args.model or app.demo.page.default_model
    if model is None:
        sys.exit("no servable model under checkpoints/")
    request_latency(model, args.runs)


if __name__ == "__main__":
    main()
