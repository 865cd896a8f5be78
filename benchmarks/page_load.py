"""A class at the page: many browsers pressing Run at once, against one browser alone, in one server.

Run from the repository root: ``python benchmarks/page_load.py [--users 20] [--runs 10] [--baseline 20]
[--text "..."]``. It starts ``python app.py`` on a free port (``S2S_STOCK_GRADIO=1`` in the environment leaves
Gradio's per-call work as shipped, for comparison) and speaks the page's own protocol, as a browser does: each
simulated user has a Gradio session of its own and sends the Explore run (the event the Run button triggers
once its input check passed) through Gradio's queue, ``POST /gradio_api/queue/join``, then reads the session's
event stream ``GET /gradio_api/queue/data`` until the run's ``process_completed``. The inputs are the page's
defaults (the default model, beam search) with ``--text``. The browser's drawing is not included; the reply
is the whole page update (the attention viewer's document, the tables, the menus).

Phases: one user, ``--baseline`` runs one after another; then ``--users`` users, ``--runs`` runs each, back to
back. It reports errors, latency p50/p95/p99, runs per second and the server's CPU per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.http_api import Api, app_server  # noqa: E402
from benchmarks.load import Phase, measured  # noqa: E402

TEXT = "Zwei junge Männer spielen am Strand mit einem roten Ball."


class PageUser:
    """One browser tab: its own Gradio session, sending the Explore run through Gradio's queue."""

    def __init__(self, api: Api, fn_index: int, trigger: int | None, values: list) -> None:
        self.api, self.fn_index, self.trigger, self.values = api, fn_index, trigger, values
        self.session = uuid.uuid4().hex[:11]

    def run(self, timeout_s: float = 120.0) -> tuple[bool, float, str | None]:
        """One run: (answered, seconds, error)."""
        start = time.perf_counter()
        body = json.dumps({"data": self.values, "event_data": None, "fn_index": self.fn_index,
                           "trigger_id": self.trigger, "session_hash": self.session}).encode()
        status, answer = self.api.request("POST", "/gradio_api/queue/join", body, timeout_s)
        if status != 200:
            return False, 0.0, f"join: HTTP {status}: {answer[:200].decode(errors='replace')}"
        event_id = json.loads(answer)["event_id"]
        status, stream = self.api.request("GET", f"/gradio_api/queue/data?session_hash={self.session}", None, timeout_s)
        seconds = time.perf_counter() - start
        for line in stream.decode(errors="replace").splitlines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                if message.get("success"):
                    return True, seconds, None
                return False, seconds, str((message.get("output") or {}).get("error") or "failed")
        return False, seconds, f"no completion in the stream (HTTP {status})"


def explore_event(url: str, text: str) -> tuple[int, int | None, list]:
    """The Explore run's event id (fn_index), the Run button's id and the inputs' default values, ``text`` as the input."""
    import urllib.request

    with urllib.request.urlopen(url + "config", timeout=30) as answer:
        config = json.loads(answer.read())
    event = next(d for d in config["dependencies"] if d.get("api_name") == "explore")
    components = {c["id"]: c for c in config["components"]}
    values = [components[i].get("props", {}).get("value") for i in event["inputs"]]
    texts = [n for n, i in enumerate(event["inputs"]) if components[i]["type"] == "textbox"]
    values[texts[0]] = text
    run = next((c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "run"), None)
    return event["id"], run, values


def users(api: Api, name: str, n_users: int, n_runs: int, event: tuple[int, int | None, list], pid: int,
          budget_s: float) -> Phase:
    """``n_users`` users, each sending ``n_runs`` runs back to back (stopping at ``budget_s``), measured."""
    phase, lock = Phase(name), threading.Lock()
    deadline = time.perf_counter() + budget_s

    def user(_: int) -> None:
        tab = PageUser(api, *event)
        for i in range(n_runs):
            if time.perf_counter() > deadline:
                with lock:
                    phase.unsent += n_runs - i
                return
            try:
                ok, seconds, error = tab.run()
            except OSError as exc:  # refused, reset or timed out: an error, not a crash of the benchmark
                ok, seconds, error = False, 0.0, f"{type(exc).__name__}: {exc}"
            with lock:
                phase.add(ok, seconds, error)

    def run() -> Phase:
        start = time.perf_counter()
        with ThreadPoolExecutor(n_users) as pool:
            list(pool.map(user, range(n_users)))
        phase.wall_s = time.perf_counter() - start
        return phase

    return measured(pid, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10, help="runs per user under load")
    parser.add_argument("--baseline", type=int, default=20, help="runs of the one-user baseline")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="the whole run's bound")
    args = parser.parse_args()
    with app_server() as (url, pid):
        api = Api(url)
        event = explore_event(url, args.text)
        warm = PageUser(api, *event)
        for _ in range(3):
            ok, _, error = warm.run()
            if not ok:
                raise SystemExit(f"the page's run failed: {error}")
        alone = users(api, "1 user (baseline)", 1, args.baseline, event, pid, args.max_seconds * 0.3)
        print(alone.line(), flush=True)
        load = users(api, f"{args.users} users x {args.runs}", args.users, args.runs, event, pid, args.max_seconds * 0.7)
        print(load.line(), flush=True)
    speedup = load.throughput / alone.throughput if alone.throughput else 0.0
    print(f"\nerrors: {len(alone.errors) + len(load.errors)}"
          f"{': ' + '; '.join(sorted(set(alone.errors + load.errors))[:5]) if alone.errors or load.errors else ''}")
    print(f"runs per second: {alone.throughput:.1f} alone, {load.throughput:.1f} with {args.users} users ({speedup:.2f}x); "
          f"p50 / p95 under load {load.quantile(0.5) * 1000:.0f} / {load.quantile(0.95) * 1000:.0f} ms, alone "
          f"{statistics.median(alone.seconds or [float('nan')]) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
