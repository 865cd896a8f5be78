"""What each shipped task model must do for a user, beyond translating its examples.

Each test runs for every shipped model of its task (and is skipped while no such model is in
``checkpoints/``): Chinese input in either script, Chinese output without spaces and with
readable labels, exact ISO dates in five languages, a silent letter in a pronunciation,
summaries shorter than their inputs.
"""

from __future__ import annotations

import re

import pytest

from demo_core.checkpoint import DEFAULT_ROOT, find_models
from demo_core.decoding import DecodeConfig
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.tasks.input_checks import output_problem

ENTRIES = [e for e in find_models(DEFAULT_ROOT) if e.available]
CJK = re.compile(r"[\u4e00-\u9fff]")
GREEDY, BEAM = DecodeConfig(), DecodeConfig(strategy="beam", beam_size=5)


def models(**card) -> list[str]:
    """Ids of the shipped models whose card has these values (a parameter list for a test)."""
    ids = [e.id for e in ENTRIES if all(getattr(e.card, k) == v for k, v in card.items())]
    return ids or [pytest.param(None, marks=pytest.mark.skip(reason=f"no shipped model with {card}"))]


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(DEFAULT_ROOT)


@pytest.mark.parametrize("model_id", models(source_lang="zh"))
def test_traditional_and_simplified_input_translate_alike(registry, model_id):
    """Traditional characters are converted to Simplified before the model reads them."""
    translator = registry.get(model_id)
    for traditional, simplified in (("這是我的書。", "这是我的书。"), ("我們明天見。", "我们明天见。")):
        a, b = translator.run(traditional, GREEDY), translator.run(simplified, GREEDY)
        assert a.source_ids == b.source_ids and a.best.text == b.best.text


@pytest.mark.parametrize("model_id", models(source_lang="zh") + models(target_lang="zh"))
def test_chinese_pieces_are_readable_characters(registry, model_id):
    """No byte-fallback piece (<0xE4>) reaches a label for common characters, on either side."""
    translator = registry.get(model_id)
    text = "我们明天去公园吧。" if translator.card.source_lang == "zh" else "We will go to the park tomorrow."
    result = translator.run(text, BEAM)
    for piece in result.source_pieces + result.best.pieces:
        assert not piece.startswith("<0x"), piece


@pytest.mark.parametrize("model_id", models(target_lang="zh"))
def test_chinese_output_has_no_spaces_between_characters(registry, model_id):
    translator = registry.get(model_id)
    for text in translator.card.examples:
        out = translator.run(text, BEAM).best.text
        assert CJK.search(out), out
        assert not re.search(r"[\u4e00-\u9fff] +[\u4e00-\u9fff]", out), out


DATES = {
    "Thursday, March 4th, 2021": "2021-03-04",
    "4. März 2021": "2021-03-04",
    "le 1er mai 1999": "1999-05-01",
    "2008年8月8日星期五": "2008-08-08",
    "12 de octubre de 1992": "1992-10-12",
    "03/04/2021": None,  # ambiguous order: any valid ISO date is acceptable
}


@pytest.mark.parametrize("model_id", models(task="normalisation"))
def test_dates_in_five_languages_become_iso(registry, model_id):
    translator = registry.get(model_id)
    for text, iso in DATES.items():
        out = translator.run(text, GREEDY).best.text
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", out), (text, out)
        if iso:
            assert out == iso, (text, out)


@pytest.mark.parametrize("model_id", models(task="normalisation"))
@pytest.mark.parametrize("text, message", [("hello world", "no date found"), ("31 February 2020", "has no 31st"),
                                           ("ééé", "no date found"), ("yesterday", "relative dates")])
def test_non_dates_get_a_message_not_an_invented_date(registry, model_id, text, message):
    """Text with no date, an impossible date or a relative date is refused with a specific message."""
    with pytest.raises(InputError, match=message):
        registry.get(model_id).run(text, BEAM)


@pytest.mark.parametrize("model_id", models(task="normalisation"))
def test_digits_that_are_no_date_get_an_output_and_a_warning_if_it_is_no_date(registry, model_id):
    """A long run of digits still gets an output (cut at the length limit if need be), flagged when not a real date."""
    result = registry.get(model_id).run("1234567890" * 5, BEAM)
    assert result.hypotheses and result.best.attention.shape[0] == len(result.best.pieces)
    assert bool(result.warnings) == (output_problem("normalisation", result.best.text) is not None)


@pytest.mark.parametrize("model_id", models(task="g2p"))
def test_pronunciation_drops_silent_letters(registry, model_id):
    """"knight" starts with N (silent k), and every output token is an ARPAbet phone."""
    from demo_core.tasks.phonemes import ARPABET_TO_IPA

    translator = registry.get(model_id)
    phones = translator.run("knight", BEAM).best.text.split()
    assert phones[0] == "N" and phones[-1] == "T"
    for word in translator.card.examples:
        assert all(p.rstrip("012") in ARPABET_TO_IPA for p in translator.run(word, BEAM).best.text.split())


@pytest.mark.parametrize("model_id", models(task="summarisation"))
def test_summaries_are_shorter_and_keep_a_content_word(registry, model_id):
    """Each example comes out shorter than it went in, and shares at least one content word with it."""
    translator = registry.get(model_id)
    for text in translator.card.examples:
        summary = translator.run(text, BEAM).best.text
        words = lambda s: set(re.findall(r"[a-z]{4,}", s.lower()))  # noqa: E731
        assert 0 < len(summary.split()) < len(text.split()), summary
        assert words(summary) & words(text), summary
