"""The page in a real browser: Playwright drives headless Chromium against the running app.

Expected outputs are computed in-process with the same model and settings (greedy and beam
search are deterministic), so the checks compare the page with the truth, token by token.
Also writes ``docs/screenshot.png`` for the README. Run: ``pytest tests/test_browser.py -q``.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from demo_core import app_logic as logic
from demo_core.inference import ModelRegistry

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
SENTENCE = "Drei Kinder laufen mit einem Hund über die Wiese."
REGISTRY = ModelRegistry()
MODELS = REGISTRY.available()
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
    pytest.mark.skipif(not MODELS, reason="no servable model under checkpoints/"),
]


def expected(strategy: str):
    """What the page must show for SENTENCE with the page's default settings for ``strategy``."""
    model = logic.default_model(REGISTRY)
    defaults = logic.decode_defaults(REGISTRY, model)
    settings = logic.Settings(strategy=strategy, beam_size=defaults.beam_size, length_penalty=defaults.length_penalty,
                              n_best=defaults.beam_size)  # the page shows the whole beam
    return logic.decode_request(REGISTRY, SENTENCE, model, settings)


@pytest.fixture(scope="module")
def url():
    """The app served on a free port for this module."""
    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, url):
    """A fresh page whose first (on-load) run has finished."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#heatmap .xtick")
    yield page
    page.close()


def run(page, strategy_label: str, submit_with_enter: bool = False) -> None:
    """Type SENTENCE, pick a strategy and run it."""
    page.get_by_label(strategy_label).check()
    box = page.locator("#input-text textarea")
    box.fill(SENTENCE)
    if submit_with_enter:
        box.press("Enter")
    else:
        page.locator("#run").click()


def tick_texts(page, axis: str) -> list[str]:
    return page.locator(f"#heatmap .{axis}tick text").all_text_contents()


def wait_for_ticks(page, pieces_x: list[str], pieces_y: list[str]) -> None:
    """Wait until the heatmap's tick labels are exactly the given pieces."""
    page.wait_for_function(
        """([xs, ys]) => {
            const text = axis => [...document.querySelectorAll(`#heatmap .${axis}tick text`)].map(t => t.textContent);
            return JSON.stringify(text("x")) === JSON.stringify(xs) && JSON.stringify(text("y")) === JSON.stringify(ys);
        }""",
        arg=[pieces_x, pieces_y],
    )


def test_enter_runs_and_shows_the_output(page):
    """Pressing Enter in the input runs the model and shows its output text."""
    from playwright.sync_api import expect

    run(page, "Greedy", submit_with_enter=True)
    expect(page.locator("#output-text textarea")).to_have_value(expected("greedy").best.text, timeout=TIMEOUT_MS)


def test_heatmap_has_one_tick_per_token(page):
    """The heatmap's x and y tick labels are the source and output pieces, repeats included."""
    truth = expected("greedy")
    run(page, "Greedy")
    wait_for_ticks(page, truth.source_pieces, truth.best.pieces)
    assert len(tick_texts(page, "x")) == len(truth.source_pieces)
    assert len(tick_texts(page, "y")) == len(truth.best.pieces)


def test_beam_search_shows_the_n_best_table(page):
    """Switching to beam search and running fills the n-best table, best first."""
    truth = expected("beam")
    run(page, "Beam search")
    rows = page.locator("#hypotheses div[role=row]")
    page.wait_for_function(
        "t => document.querySelector('#hypotheses div[role=row]')?.innerText.includes(t)", arg=truth.best.text
    )
    assert rows.count() == len(truth.hypotheses) == truth.config.beam_size


def test_clicking_a_row_shows_its_attention(page):
    """Clicking the second n-best row redraws the heatmap with that hypothesis's tokens."""
    truth = expected("beam")
    run(page, "Beam search")
    wait_for_ticks(page, truth.source_pieces, truth.hypotheses[0].pieces)
    page.locator("#hypotheses div[role=row]").nth(1).get_by_text(truth.hypotheses[1].text, exact=True).click()
    wait_for_ticks(page, truth.source_pieces, truth.hypotheses[1].pieces)


def test_strategy_shows_only_its_controls(page):
    """Choosing sampling shows the sampling controls and hides the beam controls."""
    page.get_by_label("Sampling").check()
    page.get_by_label("Temperature", exact=False).first.wait_for(state="visible")
    assert not page.get_by_text("Beam width").is_visible()


def test_empty_input_shows_a_message_not_a_traceback(page):
    """Running empty text shows the validation message and no traceback."""
    page.locator("#input-text textarea").fill("")
    page.locator("#run").click()
    toast = page.locator("[data-testid=toast-text]").first
    toast.wait_for()
    assert "text is empty" in toast.inner_text()
    assert "Traceback" not in page.content()


def test_screenshot_for_the_readme(page):
    """A full-page screenshot of a beam-search run is saved to docs/screenshot.png."""
    truth = expected("beam")
    run(page, "Beam search")
    wait_for_ticks(page, truth.source_pieces, truth.best.pieces)
    page.mouse.move(0, 0)  # no hover highlight on the picture
    page.wait_for_timeout(500)  # let Plotly finish its transition
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000
