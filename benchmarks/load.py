"""Load test: many clients calling ``/generate`` at once, against one client in the same run.

Run from the repository root: ``python benchmarks/load.py [--clients 20] [--requests 50]
[--model de-en-rnn-bahdanau] [--max-seconds 600] [--api both|gradio|plain] [--strategy greedy|sample]``. It starts ``python app.py`` on a free port
(in the environment, for comparison: ``S2S_MAX_BATCH=1`` turns batching off; ``S2S_STOCK_GRADIO=1`` leaves
Gradio's per-call work as shipped: eager sessions, the monitoring summary after every event, two failed imports per
event, every reply walked twice for files, the call routes matched 37th to 45th, a task's repr built per
event-stream message: see ``app.launch``; ``S2S_SWITCH_INTERVAL=0.005`` runs the server with
Python's default GIL switch interval instead of 0.5 ms; ``S2S_SHORT_WORKERS=1`` decodes one batch of short requests at a time instead of two;
``S2S_GC_THRESHOLD=0`` leaves Python's cycle collector as it is: see ``demo_core.serving.gc_tuning``) and sends raw
HTTP calls (``benchmarks/http_api.py``), greedy decoding (``--strategy sample``: one sample at the default settings, in
the baseline and the load) of a mix of sentence lengths (the card's examples, 7-22 source
tokens with EOS for de-en-rnn-bahdanau, and pairs of them, 17-41). Phases 1-4 run against Gradio's API
(``POST /gradio_api/call/generate``, then its event stream: what a script without ``gradio_client`` sends), then again
against the plain route (``POST /gradio_api/v1/generate``, one request), each with half of ``--max-seconds``:

0. in process: 16 of these requests decoded one by one and together (``batcher.run_together``), what
   Gradio spends building the state of a new session (each raw API call is one) and postprocessing one run of
   the page, as shipped and with ``demo_core.serving.sessions`` (what the server does unless
   ``S2S_STOCK_GRADIO=1``);
1. baseline: one client, ``--baseline`` calls one after another, half of them before phase 2 and half after it,
   pooled (the machine's speed drifts within a run);
2. load: ``--clients`` clients, each ``--requests`` calls back to back;
3. the server's ceiling: the same load of empty texts, refused before any decoding;
4. a small request while long ones run: ``--long`` clients send 190-token greedy requests (and
   one of them beam 5, which is not batched) in a loop while one client sends the shortest
   example every 0.25 s; its latency is compared with the same request alone.

Every phase stops at its share of ``--max-seconds`` (calls not sent by then are counted). It
reports errors, latency p50/p95/p99 and throughput. Goals: 0 errors, load throughput >= 3x
the baseline, p95 <= 600 ms under load, a small request never waiting more than 1 s longer
than alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.http_api import Api, app_server  # noqa: E402
from demo_core.serving.batcher import SHORT_WORKERS  # noqa: E402

GOALS = {"speedup": 3.0, "p95_s": 0.6, "small_wait_s": 1.0}
LONG_TOKENS = 190


@dataclass
class Phase:
    """What one phase measured: seconds per answered call, errors, calls left unsent at the deadline."""

    name: str
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unsent: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0  # CPU time the server process spent during the phase (user + system)
    client_cpu_s: float = 0.0  # ... and this benchmark's own process (the clients)
    busiest_threads_s: list[float] = field(default_factory=list)  # the server's two busiest threads' CPU seconds

    def add(self, ok: bool, seconds: float, error: str | None) -> None:
        if ok:
            self.seconds.append(seconds)
        else:
            self.errors.append(error or "error")

    def quantile(self, q: float) -> float:
        values = sorted(self.seconds)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.seconds) / self.wall_s if self.wall_s else 0.0

    def line(self) -> str:
        return (f"{self.name}: {len(self.seconds)} answered, {len(self.errors)} errors, {self.unsent} unsent in "
                f"{self.wall_s:.1f} s; p50 {self.quantile(0.5) * 1000:.0f} ms, p95 {self.quantile(0.95) * 1000:.0f} ms, "
                f"p99 {self.quantile(0.99) * 1000:.0f} ms, max {max(self.seconds, default=0) * 1000:.0f} ms; "
                f"{self.throughput:.1f} requests/s; CPU per answered call: server {self.cpu_ms(self.server_cpu_s):.1f} ms, "
                f"clients {self.cpu_ms(self.client_cpu_s):.1f} ms" + self.busy())

    def busy(self) -> str:
        """How busy the server was (cores, its two busiest threads' shares), for a phase that measured it."""
        if not self.wall_s or not self.busiest_threads_s:
            return ""
        shares = ", ".join(f"{100 * t / self.wall_s:.0f}%" for t in self.busiest_threads_s)
        return f"; server cores busy {self.server_cpu_s / self.wall_s:.2f}, its busiest threads {shares} of the time"

    def cpu_ms(self, seconds: float) -> float:
        return 1000 * seconds / len(self.seconds) if self.seconds else float("nan")


def pooled(name: str, *phases: Phase) -> Phase:
    """One phase made of ``phases`` run at different times: their calls, errors, wall and CPU times added up."""
    whole = Phase(name)
    for phase in phases:
        whole.seconds += phase.seconds
        whole.errors += phase.errors
        whole.unsent += phase.unsent
        whole.wall_s += phase.wall_s
        whole.server_cpu_s += phase.server_cpu_s
        whole.client_cpu_s += phase.client_cpu_s
    return whole


def cpu_s(pid: int, stat: str | None = None) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; ``stat``: another stat file, a thread's)."""
    fields = Path(stat or f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[str, float]:
    """User + system CPU seconds of each thread of process ``pid`` so far, by thread id."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds[task.name] = cpu_s(int(task.name), f"/proc/{pid}/task/{task.name}/stat")
        except (OSError, ValueError):  # a thread that ended meanwhile
            continue
    return seconds


def measured(pid: int, run: Callable[[], Phase]) -> Phase:
    """``run()``'s phase with the server's and the clients' CPU time during it, and the server's two busiest
    threads' (under load: the event loop, HTTP and Gradio's queue, and the batcher's lane)."""
    server, client, threads = cpu_s(pid), time.process_time(), thread_cpu_s(pid)
    phase = run()
    phase.server_cpu_s, phase.client_cpu_s = cpu_s(pid) - server, time.process_time() - client
    after = thread_cpu_s(pid)
    phase.busiest_threads_s = sorted((after[t] - threads.get(t, 0.0) for t in after), reverse=True)[:2]
    return phase


def sentences(model: str) -> tuple[list[str], str, str]:
    """The mix of inputs (card examples and pairs of them), the shortest example, and a long input of 190 tokens."""
    from benchmarks.bench_replies import input_of_tokens
    from demo_core.pipeline import ModelRegistry

    translator = ModelRegistry().get(model)
    examples = list(translator.card.examples)
    pairs = [f"{a} {b}" for a, b in zip(examples, examples[1:] + examples[:1])]
    shortest = min(examples, key=lambda t: len(translator.src_tok.encode(t)))
    return examples + pairs, shortest, input_of_tokens(translator, LONG_TOKENS)


def in_process(model: str, texts: list[str], batch: int = 16, rounds: int = 5) -> tuple[float, float]:
    """Milliseconds per request of ``batch`` of ``texts`` decoded one by one (``Translator.run``) and together
    (``batcher.run_together``), greedy, in this process on one thread; the faster of ``rounds`` rounds each."""
    import torch

    from demo_core.decoding import DecodeConfig
    from demo_core.pipeline import ModelRegistry
    from demo_core.serving.batcher import run_together

    torch.set_num_threads(1)
    translator, cfg = ModelRegistry().get(model), DecodeConfig()
    chosen = [texts[i % len(texts)] for i in range(batch)]
    ids = [translator.source_ids(t) for t in chosen]
    alone = together = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for text in chosen:
            translator.run(text, cfg)
        middle = time.perf_counter()
        run_together(translator, chosen, [cfg] * batch, ids)
        alone, together = min(alone, middle - start), min(together, time.perf_counter() - middle)
    return 1000 * alone / batch, 1000 * together / batch


def session_ms(rounds: int = 20) -> tuple[float, float]:
    """Milliseconds Gradio spends creating the session state of one new session of the app's page (every raw API
    call is one): all of it and the share of its ``gr.HTML`` blocks; the faster of ``rounds`` each."""
    import gradio as gr
    from gradio.state_holder import SessionState

    import app

    app.demo.queue()
    config = app.demo.default_config
    html = [(k, b) for k, b in config.blocks.items() if k in app.demo.blocks and isinstance(b, gr.HTML)]
    whole = part = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        SessionState(app.demo)
        middle = time.perf_counter()
        for k, block in html:
            config.config_for_block(k, [], block)
        whole, part = min(whole, middle - start), min(part, time.perf_counter() - middle)
    return 1000 * whole, 1000 * part


@contextmanager
def sessions_as(lazy: bool) -> Iterator[bool]:
    """Inside the block, new Gradio sessions are lazy (``demo_core.serving.sessions``) or stock; yields False when
    the lazy ones cannot be had (another Gradio). The class is left as it was found."""
    import gradio as gr
    from gradio.state_holder import SessionState

    from demo_core.serving import sessions

    was_lazy = sessions.MARK in vars(SessionState)
    applied = sessions.make_sessions_lazy(SessionState, gr.__version__) if lazy else True
    if not lazy:
        sessions.make_sessions_eager(SessionState)
    try:
        yield applied
    finally:
        if was_lazy:
            sessions.make_sessions_lazy(SessionState, gr.__version__)
        else:
            sessions.make_sessions_eager(SessionState)


def lazy_session_ms(rounds: int = 20) -> float:
    """Milliseconds a new session of the app's page costs with ``demo_core.serving.sessions`` (the faster of
    ``rounds``)."""
    from gradio.state_holder import SessionState

    import app

    app.demo.queue()
    with sessions_as(lazy=True) as applied:
        if not applied:
            return float("nan")
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            SessionState(app.demo)
            best = min(best, time.perf_counter() - start)
    return 1000 * best


def page_run_postprocess_ms(lazy: bool, rounds: int = 10) -> float:
    """Milliseconds of Gradio's postprocessing (``Blocks.postprocess_data``, on the event loop) of one Explore run of the
    page (the card's default model and text, ``gr.update``s among the outputs) in a session of stock Gradio or of
    ``demo_core.serving.sessions`` (``lazy``); the faster of ``rounds`` (outputs made afresh each time, decoding not
    timed)."""
    import asyncio

    from gradio.state_holder import SessionState

    import app

    app.demo.queue()
    explore = next(fn for fn in app.demo.fns.values() if fn.api_name == "explore")
    values = {block: getattr(block, "value", None) for block in explore.inputs}
    with sessions_as(lazy) as applied:
        if not applied:
            return float("nan")
        state, best = SessionState(app.demo), float("inf")
        for _ in range(rounds):
            out = app.demo.page.explore(values)  # afresh: Gradio consumes the updates it postprocesses
            start = time.perf_counter()
            asyncio.run(app.demo.postprocess_data(explore, out, state))
            best = min(best, time.perf_counter() - start)
    return 1000 * best


def call(api: Api, phase: Phase, lock: threading.Lock, text: str, model: str, **options: object) -> float | None:
    """One greedy ``/generate`` call recorded in ``phase``; its seconds, None on error."""
    try:
        reply = api.call("/generate", timeout_s=60, text=text, model=model, **options)
        ok, seconds, error = reply.ok, reply.seconds, reply.error
    except OSError as exc:  # refused, reset or timed out: an error, not a crash of the benchmark
        ok, seconds, error = False, 0.0, f"{type(exc).__name__}: {exc}"
    with lock:
        phase.add(ok, seconds, error)
    return seconds if ok else None


def clients(api: Api, name: str, n_clients: int, n_requests: int, texts: list[str], model: str, budget_s: float,
            refused: bool = False, strategy: str = "greedy") -> Phase:
    """``n_clients`` threads, each sending ``n_requests`` calls of ``strategy`` back to back (stopping at ``budget_s``);
    ``refused``: empty texts, which the server refuses before decoding (what the call costs without a decode)."""
    phase, lock = Phase(name), threading.Lock()
    deadline = time.perf_counter() + budget_s

    def client(c: int) -> None:
        for i in range(n_requests):
            if time.perf_counter() > deadline:
                with lock:
                    phase.unsent += n_requests - i
                return
            if refused:
                reply = api.call("/generate", timeout_s=60, text="", model=model)
                with lock:  # the expected refusal is this phase's answer
                    phase.add(not reply.ok, reply.seconds, None if not reply.ok else "an empty text was decoded")
            else:
                call(api, phase, lock, texts[(c * 7 + i) % len(texts)], model, strategy=strategy)

    start = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(client, range(n_clients)))
    phase.wall_s = time.perf_counter() - start
    return phase


def small_while_long(api: Api, model: str, small: str, long_text: str, n_long: int, budget_s: float) -> tuple[Phase, Phase, Phase]:
    """The small request alone, then while ``n_long`` clients send long requests: (alone, while long, the long ones)."""
    lock = threading.Lock()
    alone = Phase("small request alone")
    for _ in range(10):
        call(api, alone, lock, small, model, strategy="greedy")
    during, longs = Phase("small request while long ones run"), Phase("the long requests")
    stop = threading.Event()

    def long_client(c: int) -> None:
        options = {"strategy": "beam", "beam_size": 5} if c == 0 else {"strategy": "greedy"}
        while not stop.is_set():
            call(api, longs, lock, long_text, model, **options)

    start = time.perf_counter()
    with ThreadPoolExecutor(n_long) as pool:
        futures = [pool.submit(long_client, c) for c in range(n_long)]
        time.sleep(1.0)  # the long ones are decoding
        deadline = time.perf_counter() + budget_s - 1.0
        while len(during.seconds) + len(during.errors) < 20 and time.perf_counter() < deadline:
            call(api, during, lock, small, model, strategy="greedy")
            time.sleep(0.25)
        stop.set()
        for f in futures:
            f.result()
    during.wall_s = longs.wall_s = time.perf_counter() - start
    return alone, during, longs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="de-en-rnn-bahdanau")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="calls per client under load")
    parser.add_argument("--baseline", type=int, default=100, help="calls of the one-client baseline")
    parser.add_argument("--long", type=int, default=8, help="clients sending long requests in phase 3")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="the whole run's bound (all phases)")
    parser.add_argument("--strategy", choices=["greedy", "sample"], default="greedy",
                        help="what the baseline and the load send (sample: one sample, default settings, no seed)")
    parser.add_argument("--api", choices=["both", "gradio", "plain"], default="both",
                        help="Gradio's API, the plain /gradio_api/v1 routes, or both (each its own phases, one after the other)")
    args = parser.parse_args()

    texts, small, long_text = sentences(args.model)
    alone_ms, together_ms = in_process(args.model, texts)
    print(f"in process, 16 requests: {alone_ms:.1f} ms each one by one, {together_ms:.1f} ms each decoded together", flush=True)
    whole_ms, html_ms = session_ms()
    print(f"in process, Gradio's state for one new session of the page: {whole_ms:.1f} ms, {html_ms:.1f} ms of it for "
          "its gr.HTML blocks", flush=True)
    print(f"in process, the same with demo_core.serving.sessions (lazy configs): {lazy_session_ms():.2f} ms; the server runs "
          f"{'stock Gradio (S2S_STOCK_GRADIO=1)' if os.environ.get('S2S_STOCK_GRADIO') == '1' else 'lazy sessions'}", flush=True)
    print(f"in process, Gradio's postprocessing of one run of the page: {page_run_postprocess_ms(lazy=False):.1f} ms in a "
          f"stock session, {page_run_postprocess_ms(lazy=True):.1f} ms in a lazy one (demo_core.serving.sessions)", flush=True)
    print(f"the server decodes short requests with {os.environ.get('S2S_SHORT_WORKERS', SHORT_WORKERS)} batching workers "
          "(S2S_SHORT_WORKERS)", flush=True)
    apis = {"gradio": False, "plain": True} if args.api == "both" else {args.api: args.api == "plain"}
    with app_server() as (url, pid):
        outcomes = [run_phases(Api(url, plain), name, pid, args, texts, small, long_text, args.max_seconds / len(apis))
                    for name, plain in apis.items()]
    for outcome in outcomes:
        print(outcome)


def run_phases(api: Api, name: str, pid: int, args: argparse.Namespace, texts: list[str], small: str, long_text: str,
               budget_s: float) -> str:
    """Every phase against one API (``name``: gradio, Gradio's queue; plain, the /gradio_api/v1 routes); its summary lines."""
    title = {"gradio": "Gradio's API (POST /gradio_api/call/generate, then its event stream)",
             "plain": "the plain route (POST /gradio_api/v1/generate)"}[name]
    print(f"\n== {title}", flush=True)
    warm = Phase("warm-up")
    for text in texts * 2:
        call(api, warm, threading.Lock(), text, args.model, strategy="greedy")
    # The baseline's calls are split around the load phase, half before and half after, and pooled: the machine's speed
    # drifts within a run (other jobs on the host), and a baseline taken at one moment alone moved the ratio by +-20%.
    before = measured(pid, lambda: clients(api, "1 client (baseline), before the load", 1, args.baseline // 2, texts,
                                           args.model, budget_s * 0.1, strategy=args.strategy))
    print(before.line(), flush=True)
    load = measured(pid, lambda: clients(api, f"{args.clients} clients x {args.requests}", args.clients, args.requests,
                                         texts, args.model, budget_s * 0.5, strategy=args.strategy))
    print(load.line(), flush=True)
    after = measured(pid, lambda: clients(api, "1 client (baseline), after the load", 1, args.baseline - args.baseline // 2,
                                          texts, args.model, budget_s * 0.1, strategy=args.strategy))
    print(after.line(), flush=True)
    baseline = pooled("1 client (baseline), both halves", before, after)
    print(baseline.line(), flush=True)
    ceiling = measured(pid, lambda: clients(api, f"{args.clients} clients x {args.requests}, refused (no decode)",
                                            args.clients, args.requests, texts, args.model, budget_s * 0.1, refused=True))
    print(ceiling.line(), flush=True)
    alone, during, longs = small_while_long(api, args.model, small, long_text, args.long, budget_s * 0.25)
    for phase in (alone, during, longs):
        print(phase.line(), flush=True)

    errors = warm.errors + baseline.errors + load.errors + ceiling.errors + alone.errors + during.errors + longs.errors
    speedup = load.throughput / baseline.throughput if baseline.throughput else 0.0
    wait = max(during.seconds, default=float("inf")) - statistics.median(alone.seconds or [0.0])
    return "\n".join([
        f"\n{title}:",
        f"errors: {len(errors)} (goal 0){': ' + '; '.join(sorted(set(errors))[:5]) if errors else ''}",
        f"throughput: {speedup:.2f}x the one-client baseline (goal >= {GOALS['speedup']:g}x); the server's ceiling without "
        f"decoding (refused calls): {ceiling.throughput:.1f} requests/s, {ceiling.throughput / baseline.throughput:.2f}x the "
        "baseline",
        f"p95 under load: {load.quantile(0.95) * 1000:.0f} ms (goal <= {GOALS['p95_s'] * 1000:.0f} ms)",
        f"small request's longest wait beyond its time alone, while long ones ran: {wait * 1000:.0f} ms "
        f"(goal <= {GOALS['small_wait_s'] * 1000:.0f} ms)",
        f"unsent at the deadline: {baseline.unsent + load.unsent}",
    ])


if __name__ == "__main__":
    main()
