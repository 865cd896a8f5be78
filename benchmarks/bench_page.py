"""How fast the page redraws its attention view in a real browser (issue #16: each settles in ≤ 300 ms).

    python benchmarks/bench_page.py [--runs 10] [--model de-en-transformer] [--text "..."]

Starts the app (``app.build_demo`` over the shipped models) on a free local port, drives Debian's
Chromium (``/usr/bin/chromium``, headless, through Playwright; no ``playwright install``) at
1400×900, runs ``--text`` (a 17-word German sentence: 23 source and 22 output pieces with the
Transformer) with beam search, and then times, ``--runs`` times each after one untimed warm-up:

- another hypothesis, chosen by a click on a row of the n-best table, and in the "Show attention of" menu;
- another layer (the Transformer's cross-attention has its 2 decoder layers: 1 and 2 in turn), another head
  (from the average of heads to head 1, 2, 3, 4 in turn), and from that head to the grid of every head;
- a hover onto a heatmap cell, until its row highlight (``.av-hl-row``) is drawn;
- a hover onto an output token of the token lines, until only that token's lines are shown.

How it is measured: a capturing listener in the page takes the ``timeStamp`` of the user's
``pointerdown`` (a click) or ``pointermove`` (a hover), and a ``MutationObserver`` notes
``performance.now()`` when the page shows the new state: a freshly rendered title whose text and
rows are the expected ones (the server redraws: menu or row, round trip to the Python server, new
value, client render) or the highlight (hovers, drawn by the page alone). "Painted" adds the next
frame: ``requestAnimationFrame`` and then a task, after the frame with the new state was produced.
Both clocks are the page's, so Playwright's own round trips (opening a menu, moving the pointer)
are not counted. Prints a Markdown table of medians and maxima in milliseconds, then the page's
main-thread work during each action (Chromium's ``Performance.getMetrics``: task, script, style and
layout time; Playwright's own calls included) and, for reference, the server's part of a redraw
(``app.viewer_value`` in this process). Takes about 70 s with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app  # noqa: E402
from demo_core.pipeline import ModelRegistry  # noqa: E402
from demo_core.serving import attention_view, catalogue, views  # noqa: E402
from demo_core.serving.requests import decode_defaults, decode_request  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
TEXT = "Eine Frau mit einem roten Hut liest im Park ein Buch, während zwei Kinder mit einem Hund spielen."
GOAL_MS = 300.0
METRICS = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration")  # CDP Performance metrics
TIMEOUT_MS = 30_000

# The in-page timer: arm(type, predicate, arg) waits for the first `type` event (capture phase, so before
# the viewer's own listeners), then for the first DOM mutation after which predicate(arg) holds.
PROBE = """
window.__bench = {
  arm(type, source, arg) {
    const pred = new Function('arg', 'return (' + source + ');');
    const b = window.__bench;
    b.result = new Promise((resolve, reject) => {
      let t0 = null, seen = null, done = false;
      const onEvent = ev => { if (t0 === null) { t0 = ev.timeStamp; seen = performance.now(); } };
      const finish = () => {
        if (done || t0 === null) return;
        let ok = false;
        try { ok = pred(arg); } catch (e) { ok = false; }
        if (!ok) return;
        done = true;
        const dom = performance.now();
        obs.disconnect(); clearTimeout(timer);
        window.removeEventListener(type, onEvent, true);
        requestAnimationFrame(() => setTimeout(() => resolve({t0, seen, dom, paint: performance.now()}), 0));
      };
      const obs = new MutationObserver(finish);
      obs.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
      window.addEventListener(type, onEvent, true);
      const timer = setTimeout(() => { obs.disconnect(); reject(new Error('no new state within 20 s: ' + source)); }, 20000);
    });
  },
};
"""
# A redraw by the server is over when a title rendered after the action (the old one is marked) shows the
# expected text and the rows (output tokens) are the expected ones.
REDRAWN = """(() => {
  const title = document.querySelector('#heatmap .av-title');
  if (!title || title.dataset.old || title.textContent !== arg.title) return false;
  if (arg.grid) return document.querySelectorAll('#heatmap .av-panel').length === arg.grid;
  const rows = [...document.querySelectorAll('#heatmap .av-rows .av-row')].map(t => t.textContent);
  return JSON.stringify(rows) === JSON.stringify(arg.rows);
})()"""
CELL_HIGHLIGHTED = """(() => {
  const on = document.querySelector('#heatmap .av-rows .av-row.av-on');
  return !!document.querySelector('#heatmap .av-hl-row') && !!on && +on.dataset.r === arg.r;
})()"""
LINES_FILTERED = """(() => {
  const shown = [...document.querySelectorAll('#heatmap .av-line')].filter(l => +l.getAttribute('stroke-opacity') > 0);
  return shown.length > 0 && shown.every(l => +l.dataset.r === arg.r) && !!document.querySelector('#heatmap .av-hl-row');
})()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    """One page at 1400×900 with a beam-search result shown, and the timers for its redraws."""

    def __init__(self, page, registry: ModelRegistry, model: str, text: str) -> None:
        self.page, self.registry, self.model, self.text = page, registry, model, text
        self.result = decode_request(registry, text, model, dict(decode_defaults(registry, model), strategy="beam"))
        self.times: dict[str, list[dict[str, float]]] = {}
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")

    # --- what the page must show --------------------------------------------------------------

    def expected(self, hypothesis: int = 0, layer: int | None = None, head: int = views.AVERAGE_HEADS) -> dict:
        p = attention_view.payload(self.result, hypothesis, layer, head)
        return {"title": p["title"], "rows": p["rows"], "grid": len(p["panels"]) if head == views.ALL_HEADS else 0}

    # --- timing -------------------------------------------------------------------------------

    def timed(self, name: str, event: str, predicate: str, arg: dict, action: Callable[[], None]) -> None:
        """Arm the in-page timer, do ``action`` (through Playwright) and keep the in-page times."""
        self.page.evaluate("() => { const t = document.querySelector('#heatmap .av-title'); if (t) t.dataset.old = '1'; }")
        self.page.evaluate("([e, s, a]) => window.__bench.arm(e, s, a)", [event, predicate, arg])
        before = self.metrics()
        action()
        t = self.page.evaluate("() => window.__bench.result")
        after = self.metrics()
        work = {key: (after[key] - before[key]) * 1000 for key in METRICS}
        self.times.setdefault(name, []).append({"dom": t["dom"] - t["t0"], "paint": t["paint"] - t["t0"],
                                                "dispatch": t["seen"] - t["t0"], **work})

    def metrics(self) -> dict[str, float]:
        """Chromium's running totals of the page's main-thread work, in seconds (CDP ``Performance.getMetrics``)."""
        got = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        return {key: got.get(key, 0.0) for key in METRICS}

    def choose(self, menu: str, label: str) -> Callable[[], None]:
        """The action of picking ``label`` in a Gradio dropdown (its list is opened before the timer counts)."""
        def act() -> None:
            self.page.get_by_role("option", name=label, exact=True).click()
        self.page.locator(menu).click()
        self.page.get_by_role("option", name=label, exact=True).wait_for()
        return act

    def settle(self) -> None:
        """Let the page go quiet between runs (no pending request, pointer off the viewer)."""
        self.page.mouse.move(5, 5)
        self.page.wait_for_function("() => !document.querySelector('#heatmap .av-hl-row')")
        self.page.wait_for_timeout(50)

    # --- the page -----------------------------------------------------------------------------

    def open(self, url: str) -> None:
        page = self.page
        page.add_init_script(PROBE)
        page.goto(url)
        page.wait_for_selector("#heatmap .av-matrix", timeout=3 * TIMEOUT_MS)  # the first picture, on a busy machine
        page.locator("#model input").click()
        page.get_by_role("option", name=catalogue.model_label(self.registry.entries[self.model]), exact=True).click()
        page.wait_for_function("() => (document.querySelector('#heatmap .av-title')?.textContent || '').includes('layer')")
        page.locator("#strategy label", has_text="Beam search").click()
        page.locator("#input-text textarea").fill(self.text)
        page.locator("#run").click()
        best = self.expected()
        page.wait_for_function("arg => " + REDRAWN, arg=best)
        page.locator("#hypotheses").wait_for(state="visible")
        page.locator("#heatmap").scroll_into_view_if_needed()
        page.wait_for_timeout(500)

    def hypothesis_menu(self) -> str:
        return "input[aria-label='Show attention of']"

    def run_all(self, runs: int) -> None:
        labels = views.hypothesis_choices(self.result)
        n = len(labels)
        layers, heads = views.view_choices(self.result)
        last = layers[-1][1]
        heads_only = [(lbl, v) for lbl, v in heads if v >= 0]
        average = next(lbl for lbl, v in heads if v == views.AVERAGE_HEADS)
        grid_label = next(lbl for lbl, v in heads if v == views.ALL_HEADS)
        state = {"hyp": 0, "layer": last, "head": views.AVERAGE_HEADS}

        def show(hyp: int | None = None, layer: int | None = None, head: int | None = None) -> dict:
            state.update({k: v for k, v in (("hyp", hyp), ("layer", layer), ("head", head)) if v is not None})
            return self.expected(state["hyp"], state["layer"], state["head"])

        for i in range(runs + 1):  # the first round is a warm-up, not kept
            tag = "" if i else "warm-up "
            # (a) another hypothesis: a row of the n-best table, then the menu
            j = (state["hyp"] + 1) % n
            cell = self.page.locator(f"#hypotheses [data-testid='cell-{j}-1']")
            self.timed(tag + "hypothesis (n-best table row)", "pointerdown", REDRAWN, show(hyp=j), cell.click)
            self.settle()
            j = (state["hyp"] + 1) % n
            act = self.choose(self.hypothesis_menu(), labels[j][0])
            self.timed(tag + "hypothesis (menu)", "pointerdown", REDRAWN, show(hyp=j), act)
            self.settle()
            # (b) another layer
            k = (state["layer"] + 1) % len(layers)
            act = self.choose("#layer input", layers[k][0])
            self.timed(tag + "layer (menu)", "pointerdown", REDRAWN, show(layer=k), act)
            self.settle()
            # (c) another head: from the average to head 1, 2, ... in turn; then to the grid of every head
            label, value = heads_only[i % len(heads_only)]
            act = self.choose("#head input", label)
            self.timed(tag + "head (menu)", "pointerdown", REDRAWN, show(head=value), act)
            self.settle()
            act = self.choose("#head input", grid_label)
            self.timed(tag + "all heads, grid (menu)", "pointerdown", REDRAWN, show(head=views.ALL_HEADS), act)
            self.settle()
            act = self.choose("#head input", average)  # back to the average for the hovers and the next round (not timed)
            self.page.evaluate("() => { const t = document.querySelector('#heatmap .av-title'); if (t) t.dataset.old = '1'; }")
            act()
            self.page.wait_for_function("arg => " + REDRAWN, arg=show(head=views.AVERAGE_HEADS))
            self.settle()
            # (d) hover onto a cell until its row is highlighted
            rows = len(self.expected(state["hyp"])["rows"])
            r = (3 + 5 * i) % rows
            self.page.locator("#heatmap .av-matrix").scroll_into_view_if_needed()
            box = self.page.locator("#heatmap .av-matrix rect").nth(r * len(self.result.source_pieces) + (2 * i) % 7).bounding_box()
            self.timed(tag + "hover a cell (row highlight)", "pointermove", CELL_HIGHLIGHTED, {"r": r},
                       lambda b=box: self.page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2))
            self.settle()
            # (e) hover onto an output token of the token lines until only its lines show
            token = self.page.locator("#heatmap .av-lines .av-row").nth(r)
            token.scroll_into_view_if_needed()
            box = token.bounding_box()
            self.timed(tag + "hover an output token (lines filtered)", "pointermove", LINES_FILTERED, {"r": r},
                       lambda b=box: self.page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2))
            self.settle()
            self.page.locator("#heatmap").scroll_into_view_if_needed()


def table(times: dict[str, list[dict[str, float]]]) -> str:
    lines = ["| redraw | runs | median ms (painted) | max ms (painted) | median ms (DOM shows it) | ≤ 300 ms |",
             "|---|---|---|---|---|---|"]
    for name, runs in times.items():
        if name.startswith("warm-up"):
            continue
        paint, dom = [t["paint"] for t in runs], [t["dom"] for t in runs]
        ok = "yes" if max(paint) <= GOAL_MS else "median" if statistics.median(paint) <= GOAL_MS else "no"
        lines.append(f"| {name} | {len(runs)} | {statistics.median(paint):.1f} | {max(paint):.1f} | "
                     f"{statistics.median(dom):.1f} | {ok} |")
    return "\n".join(lines)


def work_table(times: dict[str, list[dict[str, float]]]) -> str:
    """The page's main-thread work during each action (Playwright's own calls included), medians in ms."""
    lines = ["| redraw | main thread busy | of it script | style | layout |", "|---|---|---|---|---|"]
    for name, runs in times.items():
        if not name.startswith("warm-up"):
            lines.append(f"| {name} | " + " | ".join(f"{statistics.median(t[k] for t in runs):.1f}" for k in METRICS) + " |")
    return "\n".join(lines)


def server_work(result, runs: int) -> str:
    """For reference: the server's part of a redraw, ``app.viewer_value`` (the JSON the page gets), in this process."""
    parts = []
    for name, head in (("one head", 0), ("grid", views.ALL_HEADS)):
        times = []
        for i in range(runs + 1):
            start = time.perf_counter()
            app.viewer_value(result, i % len(result.hypotheses), None, head)
            times.append((time.perf_counter() - start) * 1000)
        parts.append(f"{name} {statistics.median(times[1:]):.1f} ms")
    return ", ".join(parts)


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--model", default="de-en-transformer")
    parser.add_argument("--text", default=TEXT)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    registry = ModelRegistry()
    demo = app.build_demo(ModelRegistry())
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_context(viewport=VIEWPORT).new_page()
                page.set_default_timeout(TIMEOUT_MS)
                bench = Bench(page, registry, args.model, args.text)
                bench.open(f"http://127.0.0.1:{port}/")
                bench.run_all(args.runs)
                dispatch = max(t["dispatch"] for runs in bench.times.values() for t in runs)
            finally:
                browser.close()
    finally:
        demo.close()
    result = bench.result
    print(f"{chromium_version()}, headless, viewport {VIEWPORT['width']}×{VIEWPORT['height']}; {os.cpu_count()} CPU cores, "
          f"load average {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"model {args.model}, beam search: {len(result.source_pieces)} source pieces, "
          f"{len(result.hypotheses)} hypotheses of {', '.join(str(len(h.pieces)) for h in result.hypotheses)} output pieces; "
          f"{args.runs} runs after a warm-up round")
    print("timed in the page from the pointerdown / pointermove event's timeStamp to the DOM showing the new state "
          "(MutationObserver), and to the next frame after it (requestAnimationFrame + a task: 'painted'); "
          f"Playwright's round trips are not counted (event dispatch lag at most {dispatch:.1f} ms)")
    print()
    print(table(bench.times))
    print()
    print("main-thread work of the page during each action (Chromium's Performance metrics; medians in ms):")
    print()
    print(work_table(bench.times))
    print()
    print(f"for reference, the server's part (app.viewer_value, in process, median): {server_work(result, args.runs)}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
