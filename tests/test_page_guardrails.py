"""What a teacher would otherwise have to explain away: wrong-language input, caption-only summaries,
unmappable phones, paths in the credits, cut menu labels, empty selectors, tokenizer artefacts, seeds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from demo_core.card import DataCredit, ModelCard
from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.decoding import OPTION, DecodeConfig, Hypothesis
from demo_core.figures import confidence_strip, view_title
from demo_core.pipeline import DecodeResult, ModelRegistry
from demo_core.serving import catalogue, pronunciation, views
from demo_core.serving.explanations import task_notice
from demo_core.tasks import speech
from demo_core.tasks.datasets import load_pairs
from demo_core.tasks.input_checks import caption_problems, input_problem, input_warnings
from demo_core.tasks.input_language import language_mismatch
from demo_core.text.labels import piece_label, piece_labels, piece_note
from tests.tiny import TINY_TRANSFORMER, copy_tiny_model, tiny_card

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHIPPED = ModelRegistry()
TEXT_MODELS = [m for m in SHIPPED.available() if not SHIPPED.is_speech(m)]
needs_shipped = pytest.mark.skipif(not TEXT_MODELS, reason="no shipped text model under checkpoints/")
needs_data = pytest.mark.skipif(not (DATA / "multi30k" / "val.de.gz").is_file(), reason="../shared/data is absent")


# ---- defect 3: input that looks like another language than the model reads --------------------


@pytest.mark.parametrize("text, source_lang, looks", [
    ("我们明天去公园吧。", "en", "Chinese"),  # Chinese text left in the box for English → Chinese
    ("A man is riding a bicycle across a bridge.", "de", "English"),  # English typed into German → English
    ("Ein Mann fährt mit dem Fahrrad über eine Brücke.", "en", "German"),
    ("Let's go to the park tomorrow.", "zh", "English"),  # Latin text to a Chinese model
    ("こんにちは、お元気ですか。", "zh", "Japanese"),
])
def test_wrong_language_is_named(text, source_lang, looks):
    """Script and function words name what the text looks like when it is not the model's language."""
    assert language_mismatch(text, source_lang) == f"this looks like {looks}"


@pytest.mark.parametrize("text, source_lang", [
    ("我有一部iPhone。", "zh"), ("Tom ist müde.", "de"), ("Hallo", "de"), ("Berlin", "en"), ("2021", "en"),
    ("Zwei Hunde spielen im Schnee.", "de"), ("Do you speak English?", "en"),
])
def test_own_language_short_words_and_names_pass(text, source_lang):
    """A name inside Chinese, a single word or a number is no evidence of another language."""
    assert language_mismatch(text, source_lang) is None


@needs_shipped
@pytest.mark.parametrize("model_id", TEXT_MODELS)
def test_no_warning_on_a_shipped_models_own_examples(model_id):
    """Every example a card ships reads as its model's language and kind of text."""
    card = catalogue.card_of(SHIPPED, model_id)
    for text, _ in catalogue.example_rows(SHIPPED, model_id):
        assert input_warnings(card.task, card.source_lang, model_id, text) == [], text


@needs_data
def test_rates_on_multi30k_validation_sentences():
    """On 300 validation sentences per language: no false alarm for the right language, nearly every
    sentence of the other language caught (``benchmarks/bench_input_checks.py`` measures all of them)."""
    pairs = random.Random(0).sample(load_pairs("multi30k", DATA, "val", "de", "en"), 300)
    for language, other, texts in (("de", "en", [d for d, _ in pairs]), ("en", "de", [e for _, e in pairs])):
        assert sum(bool(language_mismatch(t, language)) for t in texts) == 0
        assert sum(bool(language_mismatch(t, other)) for t in texts) >= 0.95 * len(texts)
        assert all(language_mismatch(t, "zh") for t in texts)


def test_a_wrong_language_run_still_decodes_and_says_why(tiny_model_dir, tmp_path):
    """English sent to a German model decodes, and the result's warnings (summary, JSON) name both languages."""
    registry = ModelRegistry(tiny_model_dir.parent)
    result = registry.get("tiny-rnn").run("The dog and the cat are playing in the snow.", DecodeConfig(max_len=6))
    assert result.hypotheses and result.best.ids
    expected = "this looks like English, but tiny-rnn translates German: the output may be nonsense"
    assert result.warnings == [expected] and result.to_json()["warnings"] == [expected]
    assert expected in views.summary(result)
    assert registry.get("tiny-rnn").run("zwei kinder spielen im schnee", DecodeConfig(max_len=6)).warnings == []


def test_a_german_sentence_for_the_pronunciation_model_is_named():
    """The pronunciation model refuses a phrase, and says that it looks German."""
    message = input_problem("g2p", "Ein Mann fährt mit dem Fahrrad über eine Brücke.")
    assert message.startswith("this looks like German") and "one English word" in message
    assert not input_problem("g2p", "two words").startswith("this looks like")


def test_the_dates_model_gets_no_language_warning():
    """The dates model reads dates in many languages: no language check applies."""
    assert input_warnings("normalisation", "mul", "dates", "4. März 2021") == []


# ---- defect 14: summarisation knows image captions only -----------------------------------------


def test_summarisation_says_what_it_was_trained_on():
    """The summariser's notice names image captions and its data; other tasks have none."""
    data = DataCredit("Multi30k task 2 (five English captions per image)", "Flickr30K terms", "Elliott et al.")
    notice = task_notice(tiny_card(task="summarisation", source_lang="en", target_lang="en", data=data))
    assert "image captions" in notice and "Multi30k task 2" in notice
    assert task_notice(tiny_card()) is None and task_notice(None) is None


def test_text_unlike_a_caption_is_flagged():
    """Several sentences, a question or a long text get a caption warning; one caption gets none."""
    caption = "A young man in a red shirt is riding a bicycle across a wooden bridge over a small river."
    assert caption_problems(caption) == []
    assert caption_problems('A man holds a sign that says "Stop. Go home?" at the J.P. Morgan race.') == []
    assert "3 sentences" in caption_problems("The economy grew. Rates rose. Analysts were surprised.")[0]
    assert "question" in caption_problems("What is the capital of France?")[0]
    assert "100 words" in caption_problems(" ".join(["word"] * 100))[0]
    assert input_warnings("summarisation", "en", "summ", caption + " " + caption)  # two sentences


# ---- defect 15: phones without an IPA value --------------------------------------------------


def g2p_result(text: str) -> DecodeResult:
    """A pronunciation result whose best output is ``text`` (phones), as if a G2P model wrote it."""
    hyp = Hypothesis(ids=[4, 3], token_logprobs=[-0.1, -0.1], alt_ids=[], alt_probs=[], attention=None, score=-0.2,
                     normalized_score=-0.1, finished=True, text=text)
    return DecodeResult("g2p", "nit", [4, 3], ["▁nit", "</s>"], [hyp], DecodeConfig())


def test_a_symbol_that_is_not_a_phone_is_marked_and_explained():
    """"N 7 T" shows ⟨7⟩ in the IPA, a note says it is not an ARPAbet phone, and nothing is spoken."""
    text, audio = pronunciation.pronunciation(g2p_result("N 7 T"))
    assert "/n⟨7⟩t/" in text and "⟨7⟩ is not an ARPAbet phone" in text and "?" not in text.split("/")[1]
    assert audio is None


def test_missing_espeak_is_said_next_to_the_ipa(monkeypatch):
    """Without espeak-ng the IPA is still shown and the note says audio needs espeak-ng."""
    monkeypatch.setattr(speech, "espeak_path", lambda: None)
    text, audio = pronunciation.pronunciation(g2p_result("N AY T"))
    assert "/naɪt/" in text and "espeak-ng is not installed" in text and audio is None


# ---- defects 13 and 16: credits without paths, menu labels that fit --------------------------


def test_credits_name_data_licence_and_attribution_never_a_path(tiny_model_dir, tmp_path):
    """A card's attribution that points into a local folder is credited by file name only."""
    data = DataCredit("Tatoeba pairs; seeded 90/5/5 split", "CC BY 2.0 France",
                      "www.manythings.org/anki and tatoeba.org; contributors in ../shared/data/tatoeba/cmn.txt.gz (column 3)")
    copy_tiny_model(tiny_model_dir, tmp_path / "zh", data=data)
    (line,) = catalogue.attributions(ModelRegistry(tmp_path))
    assert line == ("Tatoeba pairs; seeded 90/5/5 split. CC BY 2.0 France. www.manythings.org/anki and tatoeba.org; "
                    "contributors in cmn.txt.gz (column 3).")


@needs_shipped
def test_shipped_credits_hold_no_path():
    """No footer credit of a shipped model shows a folder."""
    for line in catalogue.attributions(SHIPPED):
        assert "shared/data" not in line and "../" not in line, line


def test_menu_labels_are_short_and_name_the_architecture():
    """A Transformer reads "Transformer · 2+2 layers · 4 heads"; an RNN names its attention; all stay short."""
    transformer = tiny_card(architecture="transformer", model=dict(TINY_TRANSFORMER, src_vocab=8, tgt_vocab=8),
                            display_name="Transformer (2 encoder + 2 decoder layers, 4 heads, d_model 32)")
    assert catalogue.short_name(transformer) == "Transformer · 2+2 layers · 4 heads"
    assert catalogue.short_name(tiny_card()) == "RNN · Bahdanau (additive) attention"
    for entry in SHIPPED.entries.values():
        assert len(catalogue.model_label(entry)) <= 42, catalogue.model_label(entry)


# ---- defect 8: nothing to choose, nothing said ----------------------------------------------


def test_titles_name_a_layer_or_head_only_when_there_are_several():
    """One layer and one head: just the kind; several: which one."""
    assert view_title("Cross-attention", 0, 1, None, 1) == "Cross-attention"
    assert view_title("Cross-attention", 0, 1, None, 4) == "Cross-attention · average of 4 heads"
    assert view_title("Cross-attention", 1, 2, None, 1) == "Cross-attention · layer 2 of 2"


def test_an_rnn_has_no_menus_and_no_note(tiny_model_dir):
    """An RNN result offers no view, layer or head menu: nothing to choose, so nothing to show or explain."""
    result = ModelRegistry(tiny_model_dir.parent).get("tiny-rnn").run("zwei kinder", DecodeConfig(max_len=5))
    menus = views.menus(result)
    assert (menus.views, menus.layers, menus.heads, menus.layer) == (None, None, None, 0)


# ---- defect 9: tokenizer artefacts ----------------------------------------------------------


def test_artefact_pieces_get_readable_labels_and_a_note():
    """A lone ▁ reads ␣, an emoji's bytes read "😀 byte F0", "byte 9F", ...; a note explains both."""
    pieces = ["▁Ein", "▁", "😀", "·😀", "·😀", "·😀", "▁", "4", "</s>"]
    assert piece_labels(pieces) == ["▁Ein", "␣", "😀 byte F0", "byte 9F", "byte 98", "byte 80", "␣", "4", "</s>"]
    assert piece_label("<0xF0>") == "byte F0" and piece_label("▁the") == "▁the"
    note = piece_note(pieces)
    assert "␣" in note and "byte" in note and "😀" in note
    assert piece_note(["▁Ein", "▁Hund", "</s>"]) is None


def test_figures_and_result_notes_use_the_labels(tiny_model_dir):
    """The heatmap's ticks and the confidence strip show ␣ for a lone ▁; ``pieces_note`` explains it."""
    result = ModelRegistry(tiny_model_dir.parent).get("tiny-rnn").run("zwei 7", DecodeConfig(max_len=5))
    assert "▁" in result.source_pieces  # "7" is not in the tiny vocabulary with a word-start mark
    fig = views.attention_figure(result)
    assert list(fig.layout.xaxis.ticktext) == [t.replace("<", "&lt;").replace(">", "&gt;")
                                               for t in piece_labels(result.source_pieces)]
    assert "␣" in fig.layout.xaxis.ticktext and "␣" in views.pieces_note(result)
    assert "▁" not in confidence_strip(result.best).layout.xaxis.ticktext


# ---- defect 6: sampling seeds, the best sample, comparable scores --------------------------------


def test_the_seed_starts_blank_on_the_page_but_not_in_the_api():
    """The page's seed box starts blank (a new seed each Run); the API's default stays 0."""
    assert OPTION["seed"].start is None and OPTION["seed"].default == 0


def test_a_blank_seed_is_drawn_reported_and_reproduces(tiny_model_dir):
    """A blank seed becomes a concrete one in the result and the summary; that seed gives the same samples."""
    translator = ModelRegistry(tiny_model_dir.parent).get("tiny-rnn")
    cfg = DecodeConfig(strategy="sample", seed=None, num_samples=4, temperature=2.0, max_len=8)
    first = translator.run("zwei kinder", cfg)
    seed = first.config.seed
    assert isinstance(seed, int) and f"seed {seed}" in views.summary(first)
    assert first.to_json()["config"]["seed"] == seed
    again = translator.run("zwei kinder", DecodeConfig(strategy="sample", seed=seed, num_samples=4, temperature=2.0,
                                                       max_len=8))
    assert [h.ids for h in again.hypotheses] == [h.ids for h in first.hypotheses]
    scores = [h.score for h in first.hypotheses]
    assert scores == sorted(scores, reverse=True)  # the Output box shows the most likely sample
    assert "most likely" in views.summary(first)


def test_compare_scores_share_one_scale(tiny_model_dir):
    """Compare shows the per-token mean for every strategy, and beam's length-penalised score under that name."""
    translator = ModelRegistry(tiny_model_dir.parent).get("tiny-rnn")
    greedy = translator.run("zwei kinder", DecodeConfig(max_len=8))
    beam = translator.run("zwei kinder", DecodeConfig(strategy="beam", beam_size=3, max_len=8))
    for result in (greedy, beam):
        mean = result.best.score / len(result.best.token_logprobs)
        assert f"{mean:.2f} per token" in views.summary(result, compared=True)
    assert "length-penalised" in views.summary(beam, compared=True)
    assert "length-penalised" not in views.summary(greedy, compared=True)


def test_wrong_language_in_compare_is_warned_on_each_side(tiny_model_dir, tmp_path):
    """Both Compare summaries carry the language warning of their own model."""
    copy_tiny_model(tiny_model_dir, tmp_path / "other")
    registry = ModelRegistry(tmp_path)
    result = registry.get("other").run("The dog is in the snow with the cat.", DecodeConfig(max_len=5))
    assert "looks like English" in views.summary(result, compared=True)


@pytest.mark.skipif(not list(DEFAULT_ROOT.glob("*/config.json")), reason="no shipped model cards")
def test_no_shipped_cards_example_is_refused_or_warned():
    """No example of a shipped card (also the unloadable ones) is refused or gets a warning."""
    for path in sorted(DEFAULT_ROOT.glob("*/config.json")):
        card = ModelCard.read(path)
        if card.task == "tts":
            continue
        for text in card.examples:
            assert input_problem(card.task, text) is None, text
            assert input_warnings(card.task, card.source_lang, card.id, text) == [], text
