"""The attention viewer and the page around it, in a real browser, at desktop and phone sizes, light and dark.

Each test drives Debian's Chromium (``/usr/bin/chromium``; these tests skip without it) against the
page over the shipped models and checks what a user sees: every column and the colour bar on
screen for long inputs, the answer on a phone's first screen, a tap showing what a hover shows,
the heatmap and the token lines highlighting together, colours that keep their contrast in both
themes, downloads, notes shown whole, and a model or task change replacing the old picture.
Run: ``pytest tests/test_browser_viewer.py -q``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from demo_core.pipeline import ModelRegistry
from demo_core.serving import catalogue
from demo_core.serving.attention_view import contrast
from demo_core.serving.requests import COMPARE_SHARED, compare_options, compare_request, decode_defaults, decode_request
from demo_core.text.labels import piece_labels
from tests.serving import CHROMIUM, chromium, demo_for, serving

REGISTRY = ModelRegistry()
MODELS = REGISTRY.available()
DEFAULT = catalogue.default_model(REGISTRY) if MODELS else None
LONG = ("Ein Mann in einem blauen Hemd und eine Frau mit einem roten Hut stehen vor einem großen Gebäude in der Stadt, "
        "während zwei kleine Kinder mit einem braunen Hund auf der Straße spielen und ein älterer Herr auf einer Bank "
        "sitzt, eine Zeitung liest und den vorbeifahrenden Autos zuschaut, die langsam durch die Straße fahren.")
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the Debian package chromium at {CHROMIUM}"),
    pytest.mark.skipif(DEFAULT is None, reason="no servable model under checkpoints/"),
]


@pytest.fixture(scope="module")
def url():
    with serving(demo_for(REGISTRY.root)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def open_page(browser, url, width=1400, height=900, theme="light", touch=False):
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=theme, has_touch=touch,
                                  is_mobile=touch, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + ("?__theme=dark" if theme == "dark" else ""))
    page.wait_for_selector("#heatmap .av-matrix")
    return page


@pytest.fixture()
def page(browser, url):
    page = open_page(browser, url)
    yield page
    page.context.close()


def run(page, text: str) -> None:
    page.locator("#input-text textarea").fill(text)
    page.locator("#run").click()


def truth(text: str, model: str | None = None):
    """What the page must show for ``text`` with the model's starting options."""
    model = model or DEFAULT
    return decode_request(REGISTRY, text, model, decode_defaults(REGISTRY, model))


def wait_for_rows(page, pieces: list[str], plot: str = "#heatmap") -> None:
    pieces = piece_labels(pieces)
    page.wait_for_function("([plot, want]) => JSON.stringify([...document.querySelectorAll(`${plot} .av-rows .av-row`)]"
                           ".map(t => t.textContent)) === JSON.stringify(want)", arg=[plot, pieces])


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_a_long_input_keeps_every_column_and_the_colour_bar_in_view(page):
    """A 59-word input: every source column is drawn, the colour bar and the p(token) strip stay inside the column,
    and the matrix scrolls sideways with a visible scrollbar and a hint saying so."""
    expected = truth(LONG)
    run(page, LONG)
    wait_for_rows(page, expected.best.pieces)
    assert page.locator("#heatmap .av-matrix .av-col").count() == len(expected.source_pieces) > 60
    column = box(page, "#heatmap")
    side = box(page, "#heatmap .av-side")
    assert side["x"] + side["width"] <= column["x"] + column["width"] + 1
    scroll = page.locator("#heatmap .av-scroll")
    overflow = scroll.evaluate("s => s.scrollWidth > s.clientWidth")
    if overflow:
        assert scroll.evaluate("s => getComputedStyle(s).overflowX") in ("auto", "scroll")
        assert "scroll sideways" in page.locator("#heatmap .av-hint").inner_text()
    page.locator("#heatmap .av-fit").click()  # actual size: wider cells, still every column
    assert page.locator("#heatmap .av-fit").inner_text() == "Actual size"
    assert scroll.evaluate("s => s.scrollWidth > s.clientWidth")
    assert page.locator("#heatmap .av-matrix .av-col").count() == len(expected.source_pieces)


def test_the_compare_preset_shows_its_verb_columns(page):
    """The sentence whose verb columns the Compare notes point at: both heatmaps draw every source column
    (the verb at the end included) with the colour bar inside the column."""
    sentence = "Eine Frau, die einen roten Hut trägt, hat gestern ein Buch gelesen."
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_function("() => document.querySelector('#output-b textarea')?.value")
    page.locator("#compare-text textarea").fill(sentence)
    page.locator("#compare-run").click()
    model_a, strategy_a, model_b, strategy_b = catalogue.compare_defaults(REGISTRY)
    starts = decode_defaults(REGISTRY, DEFAULT)
    shared = {name: starts[name] for name in COMPARE_SHARED}
    results = compare_request(REGISTRY, sentence, model_a, compare_options(strategy_a, shared), model_b,
                              compare_options(strategy_b, shared))
    for side, result in zip("ab", results, strict=True):
        page.wait_for_function("([s, want]) => JSON.stringify([...document.querySelectorAll(`#heatmap-${s} .av-matrix .av-col`)]"
                               ".map(t => t.textContent)) === JSON.stringify(want)", arg=[side, piece_labels(result.source_pieces)])
        column, bar = box(page, f"#heatmap-{side}"), box(page, f"#heatmap-{side} .av-side")
        assert bar["x"] + bar["width"] <= column["x"] + column["width"] + 1


def test_hovering_an_output_token_links_its_row_and_its_lines(page):
    """Hovering an output token in the token lines highlights its heatmap row and shows only its lines;
    hovering a source label highlights its column."""
    page.locator("#heatmap .av-lines .av-row").nth(1).hover()
    page.wait_for_selector("#heatmap .av-hl-row")
    assert page.locator("#heatmap .av-rows .av-row").nth(1).evaluate("n => n.classList.contains('av-on')")
    visible = page.locator("#heatmap .av-line").evaluate_all(
        "ls => ls.filter(l => +l.getAttribute('stroke-opacity') > 0).map(l => +l.dataset.r)")
    assert visible and set(visible) == {1}
    assert "output 2" in page.locator("#heatmap .av-tip").inner_text()
    page.locator("#heatmap .av-matrix .av-col").nth(2).hover()
    page.wait_for_selector("#heatmap .av-hl-col")
    assert "source 3" in page.locator("#heatmap .av-tip").inner_text()


def test_on_a_phone_the_answer_is_on_the_first_screen_and_a_tap_shows_the_weight(browser, url):
    """At 390×844 the output and the heatmap are on the first screen after Run, and tapping a cell pins the
    same text a hover shows."""
    page = open_page(browser, url, 390, 844, touch=True)
    try:
        sentence = "Zwei Hunde spielen im Schnee."
        expected = truth(sentence)
        run(page, sentence)
        wait_for_rows(page, expected.best.pieces)
        page.wait_for_timeout(300)
        for selector in ("#output-text", "#heatmap .av-matrix"):
            top = page.locator(selector).first.evaluate("e => e.getBoundingClientRect().top")
            assert 0 <= top < 844, (selector, top)
        cell = box(page, "#heatmap .av-matrix rect")
        page.touchscreen.tap(cell["x"] + cell["width"] / 2, cell["y"] + cell["height"] / 2)
        tip = page.locator("#heatmap .av-tip")
        tip.wait_for(state="visible")
        assert "weight" in tip.inner_text() and "pinned" in tip.inner_text()
        assert expected.source_pieces[0] in tip.inner_text()
    finally:
        page.context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_colours_keep_their_contrast_in_both_themes(browser, url, theme):
    """The strongest cell stands out from the page background (contrast ≥ 4.5) and the weakest recedes (≤ 1.5),
    in light and in dark mode; labels take the theme's text colour."""
    page = open_page(browser, url, theme=theme)
    try:
        background = page.evaluate("""() => { const c = getComputedStyle(document.querySelector('gradio-app') || document.body);
            const m = (c.backgroundColor || '').match(/\\d+/g); return m ? '#' + m.slice(0, 3).map(v => (+v).toString(16)
            .padStart(2, '0')).join('') : '#ffffff'; }""")
        fills = page.locator("#heatmap .av-matrix rect").evaluate_all("rs => rs.map(r => r.getAttribute('fill'))")
        weights = json.loads(page.locator("#heatmap").evaluate("e => e.querySelector('.av-host') && "
                                                                "JSON.stringify([...e.querySelectorAll('.av-matrix rect')].length)"))
        assert weights == len(fills)
        ratios = sorted(contrast(f, background) for f in fills)
        assert ratios[-1] >= 4.5 and ratios[0] <= 1.5, (theme, background, ratios[0], ratios[-1])
        ink = page.locator("#heatmap .av-rows .av-row").first.evaluate("t => getComputedStyle(t).fill")
        assert ink not in ("rgb(255, 255, 255)" if theme == "light" else "rgb(0, 0, 0)",)
    finally:
        page.context.close()


def test_downloads_carry_tokens_weights_and_settings(page):
    """CSV and JSON downloads hold the drawn tokens and weights (JSON also model and settings); SVG and PNG are pictures."""
    rows = page.locator("#heatmap .av-rows .av-row").all_text_contents()
    cols = page.locator("#heatmap .av-matrix .av-col").all_text_contents()
    got = {}
    for kind in ("csv", "json", "svg", "png"):
        with page.expect_download() as info:
            page.locator(f"#heatmap [data-export={kind}]").click()
        got[kind] = Path(info.value.path()).read_bytes()
        assert info.value.suggested_filename.endswith("." + kind)
    table = list(csv.reader(io.StringIO(got["csv"].decode())))
    assert [r[0] for r in table[1:]] == rows and len(table[0]) == len(cols) + 1
    document = json.loads(got["json"])
    assert document["model"] == DEFAULT and document["rows"] == rows and document["columns"] == cols
    weights = document["panels"][0]["weights"]
    assert len(weights) == len(rows) and all(abs(sum(r) - 1) < 0.02 for r in weights)  # each row is a softmax
    assert document["settings"]["strategy"] == document["strategy"]
    assert got["svg"].startswith(b"<svg") and b"</svg>" in got["svg"]
    assert got["png"][:8] == b"\x89PNG\r\n\x1a\n" and len(got["png"]) > 2000


def test_example_notes_are_shown_whole(page):
    """Every "What to look for" note of the default model is on the page in full, never cut with "…"."""
    table = page.locator("#examples").inner_text()
    for example, note in catalogue.example_rows(REGISTRY, DEFAULT):
        assert example in table and note in table


def test_changing_task_or_model_replaces_input_output_and_picture(page):
    """Another task loads its model's first example and runs it: input, output, heatmap rows and the summary's
    model name all belong to the new model; nothing of the old picture stays."""
    from playwright.sync_api import expect

    default_task = catalogue.task_of(REGISTRY.entries[DEFAULT])
    others = [(label, task) for label, task in catalogue.task_choices(REGISTRY)
              if task not in (default_task, catalogue.UNAVAILABLE_TASK)
              and not REGISTRY.is_speech(catalogue.model_choices(REGISTRY, task)[0][1])]
    if not others:
        pytest.skip("one text task only")
    label, task = others[0]
    model = catalogue.model_choices(REGISTRY, task)[0][1]
    example = catalogue.examples_of(REGISTRY, model)[0]
    page.locator("#task input").click()
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.locator("#input-text textarea")).to_have_value(example)
    expected = decode_request(REGISTRY, example, model, dict(decode_defaults(REGISTRY, DEFAULT),
                                                             **catalogue.card_of(REGISTRY, model).decode_defaults))
    expect(page.locator("#output-text textarea")).to_have_value(expected.best.text)
    wait_for_rows(page, expected.best.pieces)
    assert catalogue.model_label(REGISTRY.entries[model]) in page.locator("#summary").inner_text()


def test_the_lab_steps_with_the_keyboard_picks_a_tree_node_and_branches(page):
    """Step through: arrow keys move the step (heatmap row, output-so-far and distribution follow), a tree node shows
    its path's attention and selects its step, a candidate branches into a second picture, an unwritable word is refused."""
    expected = truth(catalogue.examples_of(REGISTRY, DEFAULT)[0])
    page.locator("#heatmap .av-lab-toggle").click()
    page.wait_for_selector("#heatmap .av-step-range")
    page.locator("#heatmap .av-lab").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('#heatmap .av-step-label b')?.textContent === '3'")
    pieces = piece_labels(expected.best.pieces)
    assert page.locator("#heatmap .av-rows .av-row").nth(2).evaluate("n => n.classList.contains('av-on')")
    assert page.locator("#heatmap .av-sofar .av-cur").inner_text() == pieces[2]
    assert page.locator("#heatmap table.av-dist tr.av-chosen .av-dist-tok").inner_text() == pieces[2]
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('#heatmap .av-step-label b')?.textContent === '2'")
    assert page.locator("#heatmap table.av-dist tr.av-chosen .av-dist-tok").inner_text() == pieces[1]
    if expected.config.strategy == "beam":  # the default model's default strategy: the tree is drawn
        node = page.locator("#heatmap .av-node-kept").nth(3)
        step = int(node.get_attribute("data-node"))
        depth = next(n.step for n in expected.beam_tree if n.id == step)
        node.locator("circle").click()
        page.wait_for_function("n => document.querySelectorAll('#heatmap .av-rows .av-row').length === n", arg=depth)
        assert page.locator("#heatmap .av-step-label b").inner_text() == str(depth)
    page.locator("#heatmap table.av-dist .av-branch").nth(1).click()
    page.wait_for_selector("#branch-view .av-branch-box")
    assert "Branch at step" in page.locator("#branch-view .av-branch-box").inner_text()
    assert page.locator("#branch-view .av-matrix rect").count() > 0  # the branch's own attention, same 0–1 scale
    page.locator("#heatmap .av-word").fill("猫")
    page.locator("#heatmap .av-branch-go").click()
    toast = page.locator("[data-testid=toast-text]").first
    toast.wait_for()
    assert "cannot be written" in toast.inner_text()


def test_moving_the_temperature_reshapes_the_step_without_decoding(page):
    """Sampling, lab open: a new temperature changes the strategy's column of the distribution, not the model's,
    and not the output."""
    page.locator("#strategy").get_by_label("Sampling").check()
    run(page, "Zwei Hunde spielen im Schnee.")
    page.wait_for_function("() => document.querySelector('#summary')?.innerText.includes('Sampling')")
    output = page.locator("#output-text textarea").input_value()
    page.locator("#heatmap .av-lab-toggle").click()
    page.wait_for_selector("#heatmap table.av-dist")
    read = "() => [...document.querySelectorAll('#heatmap table.av-dist tbody tr')].map(r => [r.cells[1].innerText, r.cells[2].innerText])"
    before = page.evaluate(read)
    slider = page.locator("#option-temperature input[type=number]")
    slider.fill("0.3")
    slider.press("Enter")
    page.wait_for_function(f"b => JSON.stringify(({read})().map(r => r[1])) !== JSON.stringify(b.map(r => r[1]))", arg=before)
    after = page.evaluate(read)
    assert [r[0] for r in after] == [r[0] for r in before]
    assert page.locator("#output-text textarea").input_value() == output


def test_compare_menus_read_apart_and_a_refusal_names_its_side(page):
    """Every entry of Compare's model menu reads differently (task first), and a model B that cannot read A's
    input is refused with a message naming side B and that model."""
    page.get_by_role("tab", name="Compare").click()
    page.locator("#model-a input").click()
    options = page.get_by_role("option").all_inner_texts()
    page.locator("#compare-text textarea").click()  # closes the menu
    page.wait_for_function("() => !document.querySelector('[role=option]')")
    assert len(options) == len(set(options)) == len(catalogue.compare_model_choices(REGISTRY))
    other = next((label, model) for label, model in catalogue.compare_model_choices(REGISTRY)
                 if catalogue.card_of(REGISTRY, model) and catalogue.card_of(REGISTRY, model).source_lang == "zh")
    page.locator("#model-b input").click()
    page.get_by_role("option", name=other[0], exact=True).click()
    page.locator("#compare-text textarea").fill("Zwei Hunde spielen im Schnee.")
    page.locator("#compare-run").click()
    toast = page.locator("[data-testid=toast-text]").first
    toast.wait_for()
    assert "different languages" in toast.inner_text() or f"B ({other[1]})" in toast.inner_text()


def test_input_in_the_wrong_language_runs_with_a_visible_warning(page):
    """English typed into the German → English model still runs, and the summary says it looks like English."""
    run(page, "A man is riding a bicycle over the bridge and the children are playing.")
    page.wait_for_function("() => document.querySelector('#summary')?.innerText.includes('looks like English')")
    assert page.locator("#output-text textarea").input_value()


def test_compare_viewers_offer_no_step_through(page):
    """Compare's heatmaps have no lab behind them, so they show no "Step through" button (no dead control)."""
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_selector("#heatmap-b .av-matrix")
    assert page.locator("#heatmap-a .av-lab-toggle, #heatmap-b .av-lab-toggle").count() == 0
    assert page.locator("#heatmap .av-lab-toggle").count() == 1
