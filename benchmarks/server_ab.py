"""Server variants side by side under load: throughput, server CPU and time in Python's cycle collector per call.

Run from the repository root: ``python benchmarks/server_ab.py [--variants shipped no-walks stock-gc] [--rounds 3]
[--calls 30] [--clients 20] [--api gradio|plain] [--model M]``. For each round it starts ``python app.py`` once per variant, in
turn (so the machine's drift falls on every variant alike), warms it up, then lets ``--clients`` clients send
``--calls`` greedy ``/generate`` calls each (``de-en-rnn-bahdanau``, four short German sentences; another
``--model``, its card's examples). Variants:

- ``shipped``: the server as ``app.launch`` starts it;
- ``no-walks``: without ``demo_core.serving.file_walks`` (Gradio walks every reply for files twice; the wrapper
  reads ``S2S_AB_NO_WALKS=1``, so it combines with others: ``S2S_AB_NO_WALKS=1,S2S_GC_THRESHOLD=0``);
- ``no-routes``: without ``demo_core.serving.api_routes`` (Gradio's call routes matched in Gradio's order;
  ``S2S_AB_NO_ROUTES=1``);
- ``no-cancel``: without ``demo_core.serving.cancel_scopes`` (AnyIO's cancel scopes building task reprs;
  ``S2S_AB_NO_CANCEL=1``);
- ``no-login``: without ``demo_core.serving.login_checks`` (Gradio's login check handed to a worker thread per
  request; ``S2S_AB_NO_LOGIN=1``);
- ``sync-generate``: ``/generate`` given to Gradio as a plain function, run in its worker threads, instead of the
  coroutine ``Page.generate_async`` (``S2S_SYNC_GENERATE=1``);
- ``stock-gc``: without ``demo_core.serving.gc_tuning`` (``S2S_GC_THRESHOLD=0``: Python's collector as it is);
- ``stock-gradio``: ``S2S_STOCK_GRADIO=1`` (none of ``app.launch``'s cuts to Gradio's per-call work);
- ``NAME=VALUE[,NAME=VALUE]``: the shipped server with these environment variables (e.g. ``S2S_SHORT_WORKERS=1``).

The server runs under a small wrapper that times every collection of Python's cycle collector with ``gc.callbacks``
during the load (wall time, which the collecting thread spends holding the GIL). It prints one line per server and
the medians per variant. ``docs/SPEED.md`` ("Under load") cites it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.http_api import Api, app_server  # noqa: E402
from benchmarks.load import cpu_s  # noqa: E402
from demo_core.checkpoint import DEFAULT_ROOT, read_card  # noqa: E402

TEXTS = ["Ich habe heute keine Zeit.", "Das Wetter ist heute sehr schön und wir gehen spazieren.",
         "Wo ist der Bahnhof?", "Ein Mann fährt Fahrrad auf der Straße."]
MODEL = "de-en-rnn-bahdanau"
VARIANTS = {"shipped": {}, "no-walks": {"S2S_AB_NO_WALKS": "1"}, "no-routes": {"S2S_AB_NO_ROUTES": "1"},
            "no-cancel": {"S2S_AB_NO_CANCEL": "1"}, "no-login": {"S2S_AB_NO_LOGIN": "1"},
            "sync-generate": {"S2S_SYNC_GENERATE": "1"}, "stock-gc": {"S2S_GC_THRESHOLD": "0"},
            "stock-gradio": {"S2S_STOCK_GRADIO": "1"}}

# The server: app.launch with the collector timed; SIGUSR1 starts counting, SIGTERM writes the counts and exits.
WRAPPER = """
import gc, json, os, signal, sys, time
sys.path.insert(0, os.getcwd())
counts = {"collections": 0, "seconds": 0.0, "on": False}
started = [0.0]
def timed(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    elif counts["on"]:
        counts["collections"] += 1
        counts["seconds"] += time.perf_counter() - started[0]
gc.callbacks.append(timed)
def start(*_):
    counts["on"] = True
def stop(*_):
    with open(os.environ["S2S_AB_OUT"], "w") as f:
        json.dump(counts, f)
    os._exit(0)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGTERM, stop)
import app
if os.environ.get("S2S_AB_NO_WALKS") == "1":
    app.skip_walks_without_files = lambda *args, **kwargs: False
if os.environ.get("S2S_AB_NO_ROUTES") == "1":
    app.match_calls_first = lambda *args, **kwargs: False
if os.environ.get("S2S_AB_NO_CANCEL") == "1":
    app.name_tasks_cheaply = lambda *args, **kwargs: False
if os.environ.get("S2S_AB_NO_LOGIN") == "1":
    app.check_logins_inline = lambda *args, **kwargs: False
app.launch()
"""


def variant_name(given: str) -> str:
    """A named variant, or environment variables ``NAME=VALUE[,NAME=VALUE]`` (added to ``VARIANTS`` under that name)."""
    if given in VARIANTS:
        return given
    pairs = [pair.partition("=") for pair in given.split(",")]
    if not all(name and sep for name, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"{given!r} is neither a variant ({', '.join(VARIANTS)}) nor NAME=VALUE pairs")
    VARIANTS[given] = {name: value for name, _, value in pairs}
    return given


def one_server(variant: str, clients: int, calls: int, plain: bool, model: str = MODEL,
               texts: list[str] = TEXTS) -> dict[str, float]:
    """Start the server as ``variant``, load it with ``texts`` for ``model``, stop it: its throughput, CPU and
    collector time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gc.json"
        with app_server(env={"S2S_AB_OUT": str(out), **VARIANTS[variant]}, argv=[sys.executable, "-c", WRAPPER]) as (url, pid):
            api = Api(url, plain=plain)
            for i in range(2 * len(texts)):
                api.call("/generate", text=texts[i % len(texts)], model=model)
            errors: list[str] = []

            def client(c: int) -> None:
                for i in range(calls):
                    reply = api.call("/generate", timeout_s=60, text=texts[(c + i) % len(texts)], model=model)
                    if not reply.ok:
                        errors.append(reply.error or "error")

            os.kill(pid, signal.SIGUSR1)  # the wrapper starts counting collections
            time.sleep(0.2)
            cpu, start = cpu_s(pid), time.perf_counter()
            threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, cpu = time.perf_counter() - start, cpu_s(pid) - cpu
        # app_server stopped it (SIGTERM): the wrapper wrote its counts on the way out
        collected = json.loads(out.read_text()) if out.exists() else {"collections": 0, "seconds": float("nan")}
    n = clients * calls
    return {"req_s": n / wall, "cpu_ms": 1000 * cpu / n, "gc_ms": 1000 * collected["seconds"] / n,
            "collections": collected["collections"], "errors": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", type=variant_name, default=["shipped", "no-walks", "stock-gc"],
                        help=f"any of {', '.join(VARIANTS)}, or NAME=VALUE[,NAME=VALUE] (environment variables)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=30, help="calls per client")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--api", choices=["gradio", "plain"], default="gradio")
    parser.add_argument("--model", default=MODEL, help="another model is sent its card's examples")
    args = parser.parse_args()
    texts = TEXTS if args.model == MODEL else list(read_card(DEFAULT_ROOT / args.model).examples)
    results: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for variant in args.variants:
            got = one_server(variant, args.clients, args.calls, args.api == "plain", args.model, texts)
            results[variant].append(got)
            print(f"round {r + 1}, {variant}: {got['req_s']:.1f} requests/s, server CPU {got['cpu_ms']:.1f} ms a call, "
                  f"cycle collector {got['gc_ms']:.2f} ms a call ({got['collections']} collections), "
                  f"{got['errors']} errors", flush=True)
    print(f"\n{args.clients} clients x {args.calls} calls, {args.api} API, {args.model}, medians of {args.rounds} rounds:")
    for variant, runs in results.items():
        med = {key: statistics.median(run[key] for run in runs) for key in ("req_s", "cpu_ms", "gc_ms")}
        print(f"{variant}: {med['req_s']:.1f} requests/s, server CPU {med['cpu_ms']:.1f} ms a call, cycle collector "
              f"{med['gc_ms']:.2f} ms a call; errors {sum(run['errors'] for run in runs)}")


if __name__ == "__main__":
    main()
