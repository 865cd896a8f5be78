"""How fast the decoding lab answers on the page: a step, a tree node, a temperature change, a branch.

Starts the app on a free port, opens it in Debian's Chromium at 1400×900, runs a ~20-token
German sentence with beam search on the Transformer, opens "Step through", then times each
action from the user's input to the moment the page shows its result, measured inside the page
(``performance.now()`` before the action and when a ``MutationObserver`` sees the new state),
so Playwright's own round trips are not counted. Prints a Markdown table (median and max).

    python benchmarks/bench_lab_page.py --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCE = "Eine Frau mit einem roten Hut liest im Park ein Buch, während zwei Kinder mit einem Hund spielen."
MODEL = "de-en-transformer"

# Run ``act`` (a JS statement) and resolve with the ms until ``done`` (a JS expression) holds after a DOM change.
TIMED = """([act, done]) => new Promise(resolve => {
  const start = performance.now();
  const check = () => { try { return eval(done); } catch (e) { return false; } };
  const observer = new MutationObserver(() => { if (check()) { observer.disconnect(); resolve(performance.now() - start); } });
  observer.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  eval(act);
  if (check()) { observer.disconnect(); resolve(performance.now() - start); }
  setTimeout(() => { observer.disconnect(); resolve(NaN); }, 15000);
})"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    import app
    from demo_core.pipeline import ModelRegistry
    from demo_core.serving import catalogue
    from tests.serving import free_port

    registry = ModelRegistry()
    demo = app.build_demo(registry)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    times: dict[str, list[float]] = {"step (arrow key)": [], "tree node (server: path attention)": [],
                                     "temperature (server: reshape)": [], "branch (server: re-decode)": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/?model={MODEL}&strategy=beam&text={SENTENCE}")
            page.wait_for_selector("#heatmap .av-matrix")
            page.wait_for_function("m => document.querySelector('#summary')?.innerText.includes(m)",
                                   arg=catalogue.model_label(registry.entries[MODEL]))
            rows = page.locator("#heatmap .av-rows .av-row").count()
            page.locator("#heatmap .av-lab-toggle").click()
            page.wait_for_selector("#heatmap .av-step-range")
            for i in range(args.runs):
                target = 2 + i % (rows - 3)
                ms = page.evaluate(TIMED, [
                    "document.querySelector('#heatmap .av-lab').dispatchEvent(new KeyboardEvent('keydown', "
                    "{key: 'ArrowRight', bubbles: true}))",
                    "document.querySelector('#heatmap .av-step-label b').textContent !== '" + str(target - 1) + "'"])
                times["step (arrow key)"].append(ms)
                if page.locator("#heatmap .av-step-label b").inner_text() == str(rows):
                    page.locator("#heatmap .av-tok").first.click()
            nodes = page.locator("#heatmap .av-node-kept").count()
            for i in range(args.runs):
                node = page.locator("#heatmap .av-node-kept").nth(1 + (i * 7) % max(nodes - 1, 1))
                node_id = node.get_attribute("data-node")
                ms = page.evaluate(TIMED, [
                    f"document.querySelector('#heatmap .av-node[data-node=\"{node_id}\"] circle').dispatchEvent("
                    "new MouseEvent('click', {bubbles: true}))",
                    f"!!document.querySelector('#heatmap .av-node-on[data-node=\"{node_id}\"]')"])
                times["tree node (server: path attention)"].append(ms)
            page.locator("#strategy").get_by_label("Sampling").check()
            page.locator("#run").click()
            page.wait_for_function("() => document.querySelector('#summary')?.innerText.includes('Sampling')")
            page.wait_for_selector("#heatmap table.av-dist")
            box = page.locator("#option-temperature input[type=number]")
            for i in range(args.runs):
                before = page.locator("#heatmap table.av-dist tbody").inner_text()
                value = f"{(0.3, 1.6)[i % 2]:.1f}"  # far apart, so every step's table changes
                box.fill(value)
                page.evaluate("() => { window.__t0 = performance.now(); }")
                box.press("Enter")  # Playwright's key press: the page's clock started just before it
                ms = page.wait_for_function(
                    "b => document.querySelector('#heatmap table.av-dist tbody')?.innerText !== b && "
                    "performance.now() - window.__t0", arg=before, polling="raf").json_value()
                times["temperature (server: reshape)"].append(ms)
            for i in range(max(3, args.runs // 3)):
                page.evaluate("() => document.querySelector('#branch-view .av-branch-box')?.remove()")
                ms = page.evaluate(TIMED, [
                    f"document.querySelectorAll('#heatmap table.av-dist .av-branch')[{1 + i % 3}].click()",
                    "!!document.querySelector('#branch-view .av-branch-box')"])
                times["branch (server: re-decode)"].append(ms)
            browser.close()
    finally:
        demo.close()
    print(f"{rows}-token output, {MODEL}, beam 5 (sampling for the temperature row), 1400×900, {args.runs} runs\n")
    print("| action | median ms | max ms |\n|---|---|---|")
    for name, values in times.items():
        good = [v for v in values if v == v]
        if good:
            print(f"| {name} | {statistics.median(good):.0f} | {max(good):.0f} |")
        else:
            print(f"| {name} | timed out | |")


if __name__ == "__main__":
    main()
