"""The app's ``generate`` and ``compare`` endpoints end to end: the real server, the real client, every shipped model.

One server is launched for the module on a free port; models come from ``checkpoints/``.
Run: ``pytest tests/test_app_api.py -q``.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo_core.decoding import OPTION
from demo_core.pipeline import MAX_INPUT_CHARS, ModelRegistry
from demo_core.serving import catalogue
from tests.serving import serving

REGISTRY = ModelRegistry()
MODELS = [m for m in REGISTRY.available() if not REGISTRY.is_speech(m)]  # speech: tests/test_speech_synthesis.py
TRANSLATORS = [m for m in MODELS if REGISTRY.entries[m].card.task == "translation"] or MODELS  # read SENTENCE
STRATEGIES = ("greedy", "beam", "sample")
SENTENCE = "Zwei junge Männer spielen am Strand mit einem roten Ball."
PRONUNCIATION = [m for m in MODELS if REGISTRY.entries[m].card.task == "g2p"]


def input_for(model: str) -> str:
    """What each run below sends: the German sentence, or the card's first example for a model
    that reads something else (one word for pronunciation, a date for dates)."""
    return REGISTRY.entries[model].card.examples[0] if REGISTRY.entries[model].card.task in ("g2p", "normalisation") else SENTENCE


SETTINGS = {"greedy": {}, "beam": {"beam_size": 4, "n_best": 3}, "sample": {"num_samples": 3, "seed": 7}}

needs_model = pytest.mark.skipif(not MODELS, reason="no servable model under checkpoints/")


@pytest.fixture(scope="module")
def client():
    """The app's module-level page (what Spaces serves) running, and a gradio_client connected to it."""
    import app

    with serving(app.demo) as url:
        yield Client(url, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def results(client) -> dict:
    """Memoised ``generate`` answers keyed by (model, strategy), so checks share one call; each
    carries every hypothesis's attention (``attention="all"``; the default: tests/test_replies.py)."""
    cache: dict = {}

    def get(model: str, strategy: str) -> dict:
        if (model, strategy) not in cache:
            cache[model, strategy] = client.predict(input_for(model), model, strategy, **SETTINGS[strategy], attention="all",
                                                    api_name="/generate")
        return cache[model, strategy]

    return get


def generate(client: Client, text: str, model: str | None = None, **settings) -> dict:
    return client.predict(text, model or (TRANSLATORS[0] if MODELS else "none"), **settings, api_name="/generate")


every_run = pytest.mark.parametrize("model,strategy", [(m, s) for m in MODELS for s in STRATEGIES])


@needs_model
@every_run
def test_attention_shape_matches_tokens(results, model, strategy):
    """Each hypothesis's attention is [len(output pieces), layers, heads, len(source pieces)]."""
    answer = results(model, strategy)
    for hyp in answer["hypotheses"]:
        shape = torch.tensor(hyp["attention"]).shape
        assert shape[0] == len(hyp["pieces"]) and shape[3] == len(answer["source_pieces"])
        assert shape[1] >= 1 and shape[2] >= 1


@needs_model
@every_run
def test_attention_rows_sum_to_one(results, model, strategy):
    """Every output token's attention over the source is a distribution (rows sum to 1)."""
    for hyp in results(model, strategy)["hypotheses"]:
        sums = torch.tensor(hyp["attention"]).sum(-1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=2e-3)


@needs_model
@every_run
def test_text_is_the_best_hypothesis(results, model, strategy):
    """The top-level text is the first hypothesis's text and every hypothesis has pieces and probs."""
    answer = results(model, strategy)
    assert answer["text"] == answer["hypotheses"][0]["text"]
    assert all(len(h["pieces"]) == len(h["token_probs"]) > 0 for h in answer["hypotheses"])


@needs_model
@pytest.mark.parametrize("model", MODELS)
def test_beam_returns_n_best_in_score_order(results, model):
    """Beam search returns n_best hypotheses sorted by length-normalised score."""
    scores = [h["normalized_score"] for h in results(model, "beam")["hypotheses"]]
    assert len(scores) == SETTINGS["beam"]["n_best"] and scores == sorted(scores, reverse=True)


@needs_model
@pytest.mark.parametrize("model", MODELS)
def test_sampling_returns_num_samples(results, model):
    """Sampling returns one hypothesis per requested sample."""
    assert len(results(model, "sample")["hypotheses"]) == SETTINGS["sample"]["num_samples"]


@needs_model
def test_sampling_with_a_seed_is_reproducible(client, results):
    """The same seed gives the same samples."""
    again = generate(client, SENTENCE, strategy="sample", **SETTINGS["sample"])
    assert [h["text"] for h in again["hypotheses"]] == [h["text"] for h in results(TRANSLATORS[0], "sample")["hypotheses"]]


@needs_model
def test_defaults_make_a_greedy_run(client):
    """Text alone is enough: the default model (first in the menu: German → English) decodes greedily."""
    answer = client.predict(SENTENCE, api_name="/generate")
    assert answer["strategy"] == "greedy" and answer["model"] == catalogue.default_model(REGISTRY)


@needs_model
def test_html_input_comes_back_literally(client):
    """HTML-looking input is data: the source and its pieces return unescaped."""
    text = "Der <b>Hund</b> & die <script>alert(1)</script> Katze"
    answer = generate(client, text)
    assert answer["source"] == text
    assert "<script>" in "".join(answer["source_pieces"]) and "&lt;" not in json.dumps(answer["source_pieces"])


@pytest.mark.parametrize(
    "text,settings,message",
    [
        ("   ", {}, "text is empty"),
        ("x" * (MAX_INPUT_CHARS + 1), {}, f"the limit is {MAX_INPUT_CHARS}"),
        (SENTENCE, {"model": "no-such-model"}, "unknown model 'no-such-model'"),
        (SENTENCE, {"strategy": "beam", "beam_size": 0}, f"beam_size must be {OPTION['beam_size'].range_text()}, got 0"),
        (SENTENCE, {"strategy": "sample", "temperature": 0}, f"temperature must be {OPTION['temperature'].range_text()}, got 0"),
        (SENTENCE, {"strategy": "sample", "top_p": 1.5}, f"top_p must be {OPTION['top_p'].range_text()}, got 1.5"),
        (SENTENCE, {"beam_size": "wide"}, "beam_size must be a whole number"),
        (SENTENCE, {"strategy": "nucleus"}, "strategy must be one of greedy, beam, sample"),
    ],
    ids=["empty", "too-long", "unknown-model", "beam-0", "temperature-0", "top-p-1.5", "beam-not-a-number", "strategy"],
)
def test_bad_input_is_a_specific_error(client, text, settings, message):
    """Bad input raises gr.Error with a message that names the problem."""
    if not MODELS and "model" not in settings:
        pytest.skip("no servable model under checkpoints/")
    with pytest.raises(AppError, match=re.escape(message)):
        generate(client, text, **settings)


@pytest.mark.parametrize("model", PRONUNCIATION or [pytest.param(None, marks=pytest.mark.skip(reason="no pronunciation model"))])
def test_pronunciation_model_explains_what_it_reads(client, model):
    """A sentence, digits or a letter outside a-z sent to the one-word pronunciation model are
    refused with what to type instead; a capitalised word with an apostrophe is read."""
    with pytest.raises(AppError, match="one English word at a time"):
        generate(client, SENTENCE, model)
    with pytest.raises(AppError, match="spell the number out"):
        generate(client, "2024", model)
    with pytest.raises(AppError, match="remove 'é'"):
        generate(client, "café", model)
    answer = generate(client, "O'Brien", model, strategy="beam")
    best = answer["hypotheses"][0]
    assert answer["text"] == best["text"] and len(best["attention"]) == len(best["pieces"]) > 1


@needs_model
def test_server_keeps_serving_after_errors(client):
    """After a rejected request the next good one still succeeds."""
    with pytest.raises(AppError):
        generate(client, "")
    assert generate(client, SENTENCE)["text"]


def test_generate_compare_and_synthesize_are_the_only_public_endpoints(client):
    """The API lists exactly three named endpoints, /generate, /compare and /synthesize; UI events are private."""
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert sorted(endpoints) == ["/compare", "/generate", "/synthesize"]


@needs_model
def test_compare_matches_two_generate_calls(client, results):
    """/compare of one model, greedy against beam, returns what /generate returns for each side."""
    model = TRANSLATORS[0]
    answer = client.predict(SENTENCE, model, "greedy", model, "beam", 4, api_name="/compare")
    assert answer["a"]["text"] == results(model, "greedy")["text"]
    assert answer["b"]["text"] == results(model, "beam")["text"]
    assert answer["b"]["hypotheses"][0]["score"] == results(model, "beam")["hypotheses"][0]["score"]


def test_the_served_app_runs_with_a_short_gil_switch_interval(client):
    """``app.launch`` sets the interval that keeps the event loop from queueing behind Python threads under load."""
    import sys

    import app

    assert sys.getswitchinterval() == pytest.approx(app.switch_interval())


@needs_model
def test_the_served_app_keeps_a_bounded_monitoring_record(client):
    """Gradio's queue keeps one monitoring record per event; the served app keeps at most ``ANALYTICS_KEPT`` of them,
    not Gradio's 10,000 (which cost four times the CPU per event: ``benchmarks/soak.py --monitoring-only``), and a
    call still adds its record."""
    import app

    queue = app.demo._queue
    assert queue.ANALYTICS_MAX_EVENTS == app.ANALYTICS_KEPT < 10_000
    recorded = queue.events_recorded
    client.predict(input_for(TRANSLATORS[0]), TRANSLATORS[0], api_name="/generate")
    assert queue.events_recorded == recorded + 1 and len(queue.event_analytics) <= app.ANALYTICS_KEPT


@pytest.mark.parametrize(("given", "expected"), [("", 0.0005), ("0.005", 0.005), ("1e-4", 1e-4), ("fast", 0.0005),
                                                 ("0", 0.0005), ("nan", 0.0005), ("-1", 0.0005), ("5", 0.0005)])
def test_the_switch_interval_setting_falls_back_on_bad_values(monkeypatch, caplog, given, expected):
    import app

    monkeypatch.setenv("S2S_SWITCH_INTERVAL", given)
    assert app.switch_interval() == pytest.approx(expected)
    bad = given not in ("", "0.005", "1e-4")
    assert ("S2S_SWITCH_INTERVAL" in caplog.text) == bad
