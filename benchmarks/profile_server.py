"""Who holds Python's interpreter lock while the server is under load: py-spy over ``python app.py``.

    pip install py-spy   # benchmark-only (benchmarks/requirements.txt); the script says so when it is missing
    python benchmarks/profile_server.py [--clients 20] [--seconds 25] [--api gradio|plain] [--model de-en-rnn-bahdanau]
                                        [--inclusive N] [--raw FILE]

Starts the app on a free port, warms it up, then lets ``--clients`` threads send greedy
``/generate`` calls back to back (the texts of ``load.py``'s mix: the card's examples) for
``--seconds`` while ``py-spy record --gil`` samples the server at 200 Hz, keeping only samples of
the thread that holds the lock. It prints the calls answered per second (py-spy slows the server
a little), each thread's share of those samples, and the functions most often on top. Only one
thread runs Python at a time, so these shares say where the server's Python time goes under
load: Gradio's event loop, the endpoint's worker threads, or the batching workers. ``--inclusive N``
also prints the N functions most often anywhere on the event loop's stacks (a function with all it
calls); ``--raw FILE`` keeps py-spy's output.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.http_api import Api, app_server  # noqa: E402
from demo_core.checkpoint import DEFAULT_ROOT, read_card  # noqa: E402


def shares(raw: Path) -> tuple[int, collections.Counter, collections.Counter, collections.Counter]:
    """py-spy's raw output (one ``thread;frame;...;frame count`` line per stack) -> samples, per thread, per top
    frame, and per function anywhere on the event loop's stacks (each function counted once per stack)."""
    threads: collections.Counter = collections.Counter()
    tops: collections.Counter = collections.Counter()
    loop: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        name = frames[0].split(":", 1)[-1].strip()  # "thread (id): NAME"
        if name.startswith("AnyIO worker"):
            name = "the endpoint's worker threads (AnyIO)"
        elif name.endswith("(run)"):  # the thread Gradio starts uvicorn in
            name = f"the event loop (Gradio's server thread, {name})"
        threads[name] += int(count)
        tops[frames[-1]] += int(count)
        total += int(count)
        if name.startswith("the event loop"):
            for function in {frame.split(" (", 1)[0] for frame in frames[1:]}:
                loop[function] += int(count)
    return total, threads, tops, loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=25)
    parser.add_argument("--api", choices=("gradio", "plain"), default="gradio")
    parser.add_argument("--model", default="de-en-rnn-bahdanau")
    parser.add_argument("--inclusive", type=int, default=0, metavar="N",
                        help="also print the N functions most often anywhere on the event loop's stacks")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output (a stack and its count per line) here")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("this benchmark needs py-spy, which the app does not need: pip install py-spy")
    texts = read_card(DEFAULT_ROOT / args.model).examples
    answered = [0]
    lock = threading.Lock()
    with app_server() as (url, pid), tempfile.TemporaryDirectory() as folder:
        api = Api(url, plain=args.api == "plain")
        for i in range(10):
            api.call("/generate", text=texts[i % len(texts)], model=args.model, strategy="greedy")
        raw = Path(folder) / "gil.txt"
        spy = subprocess.Popen(["py-spy", "record", "-p", str(pid), "-d", str(args.seconds), "-r", "200", "-f", "raw",
                                "-o", str(raw), "--threads", "--gil", "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = time.perf_counter() + args.seconds

        def client(c: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                reply = api.call("/generate", text=texts[(c + i) % len(texts)], model=args.model, strategy="greedy")
                i += 1
                with lock:
                    answered[0] += reply.ok

        start = time.perf_counter()
        workers = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        rate = answered[0] / (time.perf_counter() - start)
        spy.wait(timeout=args.seconds + 60)
        total, threads, tops, loop = shares(raw)
        if args.raw:
            shutil.copyfile(raw, args.raw)
    print(f"{args.api} API, {args.clients} clients, {args.model}: {answered[0]} calls answered, {rate:.1f} per second "
          f"under py-spy; {total} samples with the interpreter lock held")
    for name, count in threads.most_common(6):
        print(f"  {100 * count / max(total, 1):5.1f}%  {name}")
    print("most often on top:")
    for frame, count in tops.most_common(12):
        print(f"  {100 * count / max(total, 1):5.1f}%  {frame}")
    if args.inclusive:
        print("most often anywhere on the event loop's stacks (shares of all samples with the lock held):")
        for function, count in loop.most_common(args.inclusive):
            print(f"  {100 * count / max(total, 1):5.1f}%  {function}")


if __name__ == "__main__":
    main()
