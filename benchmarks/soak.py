"""Memory soak: many API calls of mixed models and strategies, and the server's memory before and after.

Run from the repository root: ``python benchmarks/soak.py [--calls 1000] [--warmup 150] [--clients 2]
[--api gradio|plain] [--monitoring-only]``.
It starts ``python app.py`` on a free port and sends raw HTTP calls (each one a new Gradio
session, as a script without ``gradio_client`` makes): ``/generate`` on every text model with
greedy, beam 5 (n-best 5) and sampling (4 samples), each ``attention`` value now and then,
``/compare``, bad input that must be refused, and (with ``--speech``) ``/synthesize``. The warm-up
loads every model and fills Gradio's per-session store (``--api plain``: the same calls to
``POST /gradio_api/v1/NAME``, which make no session); the server's RSS is read after it,
every 100 calls and at the end. Goal: at most 50 MB of growth from the warm-up to the end. First, in process, it
measures what Gradio's monitoring records cost per event with the app's cap on them and with Gradio's default
(``--monitoring-only``: that alone).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.http_api import Api, app_server, rss_mb  # noqa: E402

GOAL_MB = 50.0
STRATEGIES = {"greedy": {}, "beam": {"beam_size": 5, "n_best": 5}, "sample": {"num_samples": 4}}


def models_and_inputs() -> dict[str, tuple[str, list[str]]]:
    """Every servable model: id -> (its task, its card's examples)."""
    from demo_core.pipeline import ModelRegistry

    registry = ModelRegistry()
    return {m: (registry.entries[m].card.task, list(registry.entries[m].card.examples)) for m in registry.available()}


def plan(calls: int, models: dict[str, tuple[str, list[str]]], speech: bool, seed: int = 0) -> list[tuple[str, dict]]:
    """``calls`` (endpoint, parameters) pairs: mostly /generate over every text model and strategy."""
    rng = random.Random(seed)
    text_models = [m for m, (task, _) in models.items() if task != "tts"]
    speech_models = [m for m, (task, _) in models.items() if task == "tts"] if speech else []
    translation = [m for m in text_models if models[m][0] == "translation"]
    out: list[tuple[str, dict]] = []
    for i in range(calls):
        model = text_models[i % len(text_models)]
        strategy = list(STRATEGIES)[(i // len(text_models)) % len(STRATEGIES)]
        params: dict[str, Any] = {"text": rng.choice(models[model][1]), "model": model, "strategy": strategy,
                                  **STRATEGIES[strategy]}
        if strategy == "sample":
            params["seed"] = rng.randrange(1000)
        if i % 7 == 3:
            params["attention"] = rng.choice(["all", "none"])
        if i % 10 == 9 and translation:  # one in ten compares two translation models reading the same language
            a = rng.choice(translation)
            b = rng.choice([m for m in translation if models[m][1] and m.split("-")[0] == a.split("-")[0]])
            out.append(("/compare", {"text": rng.choice(models[a][1]), "model_a": a, "strategy_a": "greedy",
                                     "model_b": b, "strategy_b": "beam"}))
        elif i % 25 == 12:  # refused: the server must answer with a message and keep nothing
            out.append(("/generate", {"text": "", "model": model}))
        elif speech_models and i % 50 == 25:
            out.append(("/synthesize", {"text": "The cat sat on the mat.", "model": speech_models[0]}))
        else:
            out.append(("/generate", params))
    return out


def monitoring_cost(kept: int, events: int = 2000) -> tuple[float, float]:
    """What Gradio's monitoring costs once ``kept`` events are held, in this process: CPU milliseconds per finished
    event and the records' megabytes. Gradio's queue keeps a record per event (at most ``GRADIO_ANALYTICS_MAX_EVENTS``,
    the oldest dropped first); each finished event copies the list of records and every ``ANALYTICS_EVERY`` of them
    (``app.py``) its summary becomes a pandas table of them. Here the app's own queue, filled with records shaped like
    Gradio's, takes ``events`` more events that way (only that work is timed)."""
    import tracemalloc

    import app

    app.demo.queue()
    queue = app.demo._queue
    queue.ANALYTICS_MAX_EVENTS, queue.ANAYLTICS_CACHE_FREQUENCY = kept, app.ANALYTICS_EVERY
    queue.event_analytics.clear()
    functions = ("generate", "explore", "check", "redraw")

    def record(i: int) -> None:  # what Queue.push and process_events store for an event
        queue.event_analytics[f"{i:032x}"] = {"time": time.time(), "status": "success", "process_time": 0.01 * (i % 7),
                                              "function": functions[i % 4], "session_hash": f"{i:011x}"}
        while len(queue.event_analytics) > queue.ANALYTICS_MAX_EVENTS:
            queue.event_analytics.pop(next(iter(queue.event_analytics)))

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(kept):
        record(i)
    megabytes = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    tracemalloc.stop()
    start = time.process_time()
    for i in range(kept, kept + events):
        record(i)
        queue.events_recorded += 1
        queue.compute_analytics_summary(list(queue.event_analytics.values()))
    per_event_ms = 1000 * (time.process_time() - start) / events
    queue.event_analytics.clear()
    return per_event_ms, megabytes


def run(api: Api, calls: list[tuple[str, dict]], clients: int) -> tuple[list[float], int, int]:
    """Send ``calls`` from ``clients`` threads: (seconds per call, unexpected errors, expected refusals)."""
    def one(call: tuple[str, dict]) -> tuple[float, bool, bool]:
        endpoint, params = call
        reply = api.call(endpoint, **params)
        expected_refusal = params.get("text") == ""
        if reply.ok == expected_refusal:
            print(f"  unexpected: {endpoint} {params.get('model', '')} {params.get('strategy', '')}: {reply.error}", flush=True)
        return reply.seconds, reply.ok == expected_refusal, not reply.ok and expected_refusal

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, calls))
    return [r[0] for r in results], sum(r[1] for r in results), sum(r[2] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients (the app decodes 2 at once)")
    parser.add_argument("--speech", action="store_true", help="also call /synthesize (the speech model), 1 call in 50")
    parser.add_argument("--log", type=Path, default=None, help="write the server's output to this file")
    parser.add_argument("--api", choices=["gradio", "plain"], default="gradio",
                        help="Gradio's API (each raw call a new session) or the plain /gradio_api/v1 routes")
    parser.add_argument("--monitoring-only", action="store_true",
                        help="only the in-process measure of Gradio's monitoring records, no server")
    args = parser.parse_args()
    import app

    for kept in (app.ANALYTICS_KEPT, 10_000):
        ms, mb = monitoring_cost(kept)
        print(f"in process, Gradio's monitoring with {kept:,} events kept"
              f"{' (as served)' if kept == app.ANALYTICS_KEPT else ' (Gradio default)'}: {ms:.2f} ms of CPU per event, "
              f"{mb:.1f} MB of records", flush=True)
    if args.monitoring_only:
        return
    models = models_and_inputs()
    calls = plan(args.warmup + args.calls, models, args.speech)
    counts: dict[str, int] = {}
    for endpoint, params in calls[args.warmup:]:
        key = endpoint if endpoint != "/generate" else f"/generate {params.get('strategy', 'refused')}"
        counts[key] = counts.get(key, 0) + 1
    print(f"{len(models)} models; {args.calls} calls after {args.warmup} warm-up calls, {args.clients} client(s): "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    with app_server(log=args.log) as (url, pid):
        api = Api(url, plain=args.api == "plain")
        start_mb = rss_mb(pid)
        run(api, calls[: args.warmup], args.clients)
        warm_mb = rss_mb(pid)
        print(f"RSS: {start_mb:.0f} MB when ready, {warm_mb:.0f} MB after warm-up")
        seconds: list[float] = []
        errors = refusals = 0
        started = time.perf_counter()
        for i in range(args.warmup, len(calls), 100):
            took, bad, refused = run(api, calls[i : i + 100], args.clients)
            seconds += took
            errors += bad
            refusals += refused
            print(f"  after {i - args.warmup + len(took):5d} calls: RSS {rss_mb(pid):6.0f} MB")
        end_mb = rss_mb(pid)
        wall = time.perf_counter() - started
    growth = end_mb - warm_mb
    print(f"RSS growth after warm-up: {growth:+.1f} MB over {len(seconds)} calls ({end_mb:.0f} MB at the end); "
          f"goal <= {GOAL_MB:.0f} MB: {'ok' if growth <= GOAL_MB else 'over'}")
    print(f"unexpected errors {errors}, refusals as expected {refusals}; {wall:.0f} s, median call "
          f"{statistics.median(seconds) * 1000:.0f} ms, slowest {max(seconds) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
