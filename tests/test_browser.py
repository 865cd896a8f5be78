"""The page in a real browser: Playwright drives headless Chromium against the running app.

Expected outputs are computed in-process with the same model and options (greedy and beam
search are deterministic), so the checks compare the page with the truth, token by token.
The page is ``app.build_demo`` over the shipped models plus an untrained tiny Transformer
(same tokenizers), so the layer, head and encoder views have something to show, and an
untrained tiny pronunciation model, so the IPA and the spoken audio are checked on the page.
Chromium is the Debian package ``chromium`` at /usr/bin/chromium (no ``playwright install``);
without it these tests skip. Run: ``pytest tests/test_browser.py -q``.

``docs/screenshot.png`` (the README's picture) is rewritten only when asked:
``S2S_WRITE_SCREENSHOT=1 python -m pytest -q tests/test_browser.py -k screenshot``
(``tools/screenshot.sh``); otherwise the screenshot goes to a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from demo_core.pipeline import ModelRegistry
from demo_core.serving import catalogue, pronunciation, views
from demo_core.serving.requests import COMPARE_SHARED, compare_options, compare_request, decode_defaults, decode_request
from demo_core.text.labels import piece_labels
from tests.serving import CHROMIUM, chromium, demo_for, serving
from tests.tiny import save_tiny_model, tiny_rnn

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
WRITE_SCREENSHOT = os.environ.get("S2S_WRITE_SCREENSHOT") == "1"
SENTENCE = "Drei Kinder laufen mit einem Hund über die Wiese."
MODELS = ModelRegistry().available()
TRANSFORMER = "tiny-transformer"
G2P = "tiny-g2p"
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the Debian package chromium at {CHROMIUM} "
                                                     "(apt-get install chromium)"),
    pytest.mark.skipif(not MODELS, reason="no servable model under checkpoints/"),
]


def save_tiny_g2p(folder: Path) -> Path:
    """A servable pronunciation model: character input, ARPAbet output, untrained weights whose
    output layer can only emit phones (every other piece gets a -1e4 bias, EOS too, so each
    word comes out as a string of phones up to the length limit) and so can always be spoken."""
    import torch

    from demo_core.tasks.phonemes import ARPABET_TO_IPA
    from demo_core.text.tokenizer import train_sentencepiece

    phones = sorted(ARPABET_TO_IPA)
    words = ["knight", "attention", "phoneme", "sequence", "colonel", "abcdefghijklmnopqrstuvwxyz"]
    source = train_sentencepiece(words * 20, folder / "source.spm.model", vocab_size=300, model_type="char")
    target = train_sentencepiece([" ".join(phones)] * 20, folder / "target.spm.model", vocab_size=320, model_type="word")
    model = tiny_rnn(vocab=source.vocab_size, tgt_vocab=target.vocab_size, seed=0)
    phone_ids = [target.encode(p)[0] for p in phones]  # one word piece each ("▁AA")
    with torch.no_grad():
        model.output_bias.fill_(-1e4)
        model.output_bias[phone_ids] = 0.0
    return save_tiny_model(folder, model=model, source_spm=source.path, target_spm=target.path,
                           display_name="Tiny G2P (untrained)", task="g2p", group="Speech",
                           task_label="English spelling → pronunciation (toy)", source_lang="en", target_lang="arpabet",
                           examples=["knight"], example_notes=["An untrained model: random phones, spoken all the same."])


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> ModelRegistry:
    """The shipped models (linked), a tiny untrained Transformer (2 encoder, 3 decoder layers, 4 heads) with the
    default model's tokenizers, and a tiny untrained pronunciation model (``save_tiny_g2p``)."""
    shipped = ModelRegistry()
    root = tmp_path_factory.mktemp("browser-models")
    for model_id in MODELS:
        (root / model_id).symlink_to(shipped.entries[model_id].path, target_is_directory=True)
    first = shipped.entries[catalogue.default_model(shipped)]
    card = first.card
    save_tiny_model(root / TRANSFORMER, "transformer", model_config=dict(enc_layers=2, dec_layers=3),
                    source_spm=first.path / card.tokenizer.source, target_spm=first.path / card.tokenizer.target,
                    task_label=card.task_label, group=card.group, source_lang=card.source_lang)
    save_tiny_g2p(root / G2P)
    return ModelRegistry(root)


def expected(registry: ModelRegistry, strategy: str, model: str | None = None):
    """What the page must show for SENTENCE with its starting options and ``strategy``."""
    model = model or catalogue.default_model(registry)
    return decode_request(registry, SENTENCE, model, dict(decode_defaults(registry, model), strategy=strategy))


def options_after_switching(registry: ModelRegistry, model: str) -> dict:
    """The page's options once the model menu moves from the default model to ``model``: the options its card
    gives (``decode_defaults``) change, every other control keeps its value."""
    options = decode_defaults(registry, catalogue.default_model(registry))
    options.update({k: v for k, v in catalogue.card_of(registry, model).decode_defaults.items() if k in options})
    return options


@pytest.fixture(scope="module")
def url(registry):
    """The page over ``registry``'s folder, served on a free port for this module."""
    with serving(demo_for(registry.root)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture()
def page(browser, url):
    """A fresh page whose first (on-load) run has finished."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#heatmap .av-matrix")
    yield page
    page.close()


def run(page, strategy_label: str, submit_with_enter: bool = False) -> None:
    """Type SENTENCE, pick a strategy and run it."""
    page.locator("#strategy").get_by_label(strategy_label).check()
    box = page.locator("#input-text textarea")
    box.fill(SENTENCE)
    if submit_with_enter:
        box.press("Enter")
    else:
        page.locator("#run").click()


AXIS = {"x": ".av-matrix .av-col", "y": ".av-rows .av-row"}  # the viewer's column and row labels


def tick_texts(page, axis: str) -> list[str]:
    return page.locator(f"#heatmap {AXIS[axis]}").all_text_contents()


def wait_for_ticks(page, pieces_x: list[str], pieces_y: list[str], plot: str = "#heatmap") -> None:
    """Wait until the heatmap's column and row labels are exactly the given pieces."""
    page.wait_for_function(
        """([plot, xs, ys, axis]) => {
            const text = a => [...document.querySelectorAll(`${plot} ${axis[a]}`)].map(t => t.textContent);
            return JSON.stringify(text("x")) === JSON.stringify(xs) && JSON.stringify(text("y")) === JSON.stringify(ys);
        }""",
        arg=[plot, piece_labels(pieces_x), piece_labels(pieces_y), AXIS],
    )


def wait_for_title(page, title: str) -> None:
    """Wait until the heatmap's title (which layer, head or average it shows) is ``title``."""
    page.wait_for_function("t => document.querySelector('#heatmap .av-title')?.textContent === t", arg=title)


def choose(page, dropdown: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown with elem_id ``dropdown``."""
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_enter_runs_and_shows_the_output(page, registry):
    """Pressing Enter in the input runs the model and shows its output text."""
    from playwright.sync_api import expect

    run(page, "Greedy", submit_with_enter=True)
    truth = expected(registry, "greedy")
    expect(page.locator("#output-text textarea")).to_have_value(truth.best.text, timeout=TIMEOUT_MS)


def test_heatmap_has_one_tick_per_token(page, registry):
    """The heatmap's x and y tick labels are the source and output pieces, repeats included."""
    truth = expected(registry, "greedy")
    run(page, "Greedy")
    wait_for_ticks(page, truth.source_pieces, truth.best.pieces)
    assert len(tick_texts(page, "x")) == len(truth.source_pieces)
    assert len(tick_texts(page, "y")) == len(truth.best.pieces)


def test_beam_search_shows_the_n_best_table(page, registry):
    """Switching to beam search and running fills the n-best table, best first."""
    truth = expected(registry, "beam")
    run(page, "Beam search")
    rows = page.locator("#hypotheses div[role=row]")
    page.wait_for_function(
        "t => document.querySelector('#hypotheses div[role=row]')?.innerText.includes(t)", arg=truth.best.text
    )
    assert rows.count() == len(truth.hypotheses) == truth.config.beam_size


def test_clicking_a_row_shows_its_attention(page, registry):
    """Clicking the second n-best row redraws the heatmap with that hypothesis's tokens."""
    truth = expected(registry, "beam")
    run(page, "Beam search")
    wait_for_ticks(page, truth.source_pieces, truth.hypotheses[0].pieces)
    page.locator("#hypotheses div[role=row]").nth(1).get_by_text(truth.hypotheses[1].text, exact=True).click()
    wait_for_ticks(page, truth.source_pieces, truth.hypotheses[1].pieces)


def test_strategy_shows_only_its_controls(page):
    """Choosing sampling shows the sampling controls and hides the beam controls."""
    page.locator("#strategy").get_by_label("Sampling").check()
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


def test_screenshot_for_the_readme(page, registry, tmp_path):
    """A full-page screenshot of a beam-search run is a real picture (docs/screenshot.png with S2S_WRITE_SCREENSHOT=1)."""
    truth = expected(registry, "beam")
    run(page, "Beam search")
    wait_for_ticks(page, truth.source_pieces, truth.best.pieces)
    page.mouse.move(0, 0)  # no hover highlight on the picture
    page.wait_for_timeout(300)
    path = SCREENSHOT if WRITE_SCREENSHOT else tmp_path / "screenshot.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 50_000


def test_rnn_shows_no_choice_it_does_not_have(page):
    """For an RNN there is nothing to choose: no view switch, no layer or head menu, no note about them, a plain title."""
    wait_for_title(page, "Cross-attention")
    for control in ("#view", "#layer", "#head", "#no-encoder"):
        assert not page.locator(control).is_visible()


def test_transformer_heads_can_be_chosen_one_by_one_or_as_a_grid(page, registry):
    """A Transformer run offers layers and heads; the title says which is shown, the grid has 4 panels."""
    choose(page, "model", catalogue.model_label(registry.entries[TRANSFORMER]))
    run(page, "Greedy")
    wait_for_title(page, "Cross-attention · layer 3 of 3 · average of 4 heads")
    choose(page, "head", "head 2")
    wait_for_title(page, "Cross-attention · layer 3 of 3 · head 2 of 4")
    choose(page, "layer", "layer 1")
    wait_for_title(page, "Cross-attention · layer 1 of 3 · head 2 of 4")
    choose(page, "head", "all heads (grid)")
    wait_for_title(page, "Cross-attention · layer 1 of 3 · all 4 heads")
    assert page.locator("#heatmap .av-panel").count() == 4


def test_transformer_encoder_view_is_source_by_source(page, registry):
    """The encoder view draws source pieces on both axes, with the encoder's own layer count."""
    truth = expected(registry, "greedy", TRANSFORMER)
    choose(page, "model", catalogue.model_label(registry.entries[TRANSFORMER]))
    run(page, "Greedy")
    wait_for_ticks(page, truth.source_pieces, truth.best.pieces)
    page.get_by_label(views.VIEW_LABELS[views.ENCODER]).check()
    wait_for_title(page, "Encoder self-attention · layer 2 of 2 · average of 4 heads")
    wait_for_ticks(page, truth.source_pieces, truth.source_pieces)


def test_compare_tab_shows_both_runs(page, registry):
    """The Compare tab runs its preset pair and shows each output and heatmap side by side."""
    from playwright.sync_api import expect

    model_a, strategy_a, model_b, strategy_b = catalogue.compare_defaults(registry)
    starts = decode_defaults(registry, catalogue.default_model(registry))
    shared = {name: starts[name] for name in COMPARE_SHARED}  # the Compare tab's starting options
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_function("() => document.querySelector('#output-b textarea')?.value")  # the preset comparison
    page.locator("#compare-text textarea").fill(SENTENCE)
    page.locator("#compare-run").click()
    a, b = compare_request(registry, SENTENCE, model_a, compare_options(strategy_a, shared),
                           model_b, compare_options(strategy_b, shared))
    expect(page.locator("#output-a textarea")).to_have_value(a.best.text, timeout=TIMEOUT_MS)
    expect(page.locator("#output-b textarea")).to_have_value(b.best.text, timeout=TIMEOUT_MS)
    wait_for_ticks(page, a.source_pieces, a.best.pieces, plot="#heatmap-a")
    wait_for_ticks(page, b.source_pieces, b.best.pieces, plot="#heatmap-b")
    assert f"score {b.best.score:.2f}" in page.locator("#summary-b").inner_text()


def test_choosing_a_task_lists_its_models_and_examples(page, registry):
    """Another task in the Task menu brings its model, its examples with their notes, and a click runs one."""
    from playwright.sync_api import expect

    default_task = catalogue.task_of(registry.entries[catalogue.default_model(registry)])
    other = [(label, task) for label, task in catalogue.task_choices(registry)
             if task not in (default_task, catalogue.UNAVAILABLE_TASK)]
    if not other:
        pytest.skip("only one task is shipped")
    label, task = other[-1]
    model = catalogue.model_choices(registry, task)[0][1]
    choose(page, "task", label)
    expect(page.locator("#model input")).to_have_value(catalogue.model_choices(registry, task)[0][0])
    example, note = catalogue.example_rows(registry, model)[0]
    if note:
        expect(page.locator("#examples")).to_contain_text(note[:30])
    page.locator("#examples").get_by_text(example, exact=True).click()
    truth = decode_request(registry, example, model, options_after_switching(registry, model))
    expect(page.locator("#output-text textarea")).to_have_value(truth.best.text, timeout=TIMEOUT_MS)
    wait_for_ticks(page, truth.source_pieces, truth.best.pieces)


def test_pronunciation_is_shown_in_ipa_and_spoken(page, registry):
    """The Speech task: a word's phones come with their IPA and an audio player (espeak-ng), or the page says why not."""
    from playwright.sync_api import expect

    label = next(label for label, task in catalogue.task_choices(registry) if task == catalogue.task_of(registry.entries[G2P]))
    choose(page, "task", label)
    page.locator("#examples").get_by_text("knight", exact=True).click()
    truth = decode_request(registry, "knight", G2P, options_after_switching(registry, G2P))
    expect(page.locator("#output-text textarea")).to_have_value(truth.best.text, timeout=TIMEOUT_MS)
    text, audio = pronunciation.pronunciation(truth)
    assert truth.best.text and "/" in text, text  # phones came out
    ipa = text.split("/")[1]  # the IPA between slashes, as the page shows it
    expect(page.locator("#pronunciation")).to_contain_text(ipa)
    if audio is None:
        expect(page.locator("#pronunciation")).to_contain_text("espeak-ng")
        expect(page.locator("#audio")).to_be_hidden()
    else:
        expect(page.locator("#audio")).to_be_visible()
        expect(page.locator("#audio audio, #audio [data-testid='waveform-x']").first).to_be_attached()
