"""Hearing a pronunciation: ARPAbet → espeak-ng phoneme input → audio, and the app's G2P extras.

espeak-ng is a system package (``apt-get install espeak-ng``; ``.ci/run`` installs it). The
round-trip test asks espeak-ng itself which IPA it will say, so a wrong mnemonic fails here.
Run: ``pytest tests/test_speech.py -q``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from demo_core.serving import catalogue as logic
from demo_core.tasks import speech
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.tasks.phonemes import ARPABET_TO_ESPEAK, ARPABET_TO_IPA, VOWELS as VOWEL_SET, phone_to_ipa

VOWELS = sorted(VOWEL_SET)
CONSONANTS = sorted(set(ARPABET_TO_IPA) - VOWEL_SET)


def test_every_arpabet_phone_has_an_espeak_mnemonic():
    assert set(ARPABET_TO_ESPEAK) == set(ARPABET_TO_IPA) and len(ARPABET_TO_IPA) == 39
    assert len(VOWELS) == 15
    assert speech.to_espeak("N AY1 T") == "[[n'aIt]]"
    assert speech.to_espeak(["hh", "ah0", "l", "ow1"]) == "[[h@l'oU]]"


def test_unmarked_ah_and_er_are_reduced_unless_the_only_vowel():
    """g014b2b has no stress digits: 'but' keeps its full vowel, 'sofa' ends in schwa."""
    assert speech.to_espeak("B AH T") == "[[bVt]]"
    assert speech.to_espeak("S OW F AH") == "[[soUf@]]"
    assert speech.to_espeak("B ER D") == "[[b3:d]]"
    assert speech.to_espeak("B AH T ER") == "[[b@t3]]"


@pytest.mark.parametrize("phones", ["", "N XX T", " ".join(["AA"] * (speech.MAX_PHONES + 1))])
def test_unspeakable_phones_get_a_clear_error(phones):
    with pytest.raises(speech.SpeechError, match="empty|XX|Too long"):
        speech.to_espeak(phones)


def test_espeak_says_the_phones_the_ipa_shows():
    """For each phone, espeak-ng's own IPA equals the app's IPA (length marks and ɜ/ɝ aside)."""
    for phone in VOWELS:
        assert speech.espeak_ipa([phone + "1"]).replace("ː", "").replace("ɜ", "ɝ") == phone_to_ipa(phone + "1")
    for phone in CONSONANTS:
        said = speech.espeak_ipa(["AA1", phone, "AA1"]).replace("ː", "")
        assert said == f"ˈɑ{phone_to_ipa(phone)}ˈɑ", phone


def test_speak_returns_audio_whose_length_follows_the_word():
    rate, short = speech.speak("N AY T")
    _, long = speech.speak("IH N T ER N AE SH AH N AH L AY Z EY SH AH N")
    assert rate > 8000 and short.dtype == np.int16 and np.abs(short).max() > 1000
    assert 0.2 * rate < len(short) < 2 * rate
    assert len(long) > 1.5 * len(short)


@pytest.fixture(scope="module")
def g2p_registry(tiny_model_dir, tmp_path_factory) -> ModelRegistry:
    """The tiny RNN served twice: as a translation model and with a G2P card."""
    root = tmp_path_factory.mktemp("speech-models")
    shutil.copytree(tiny_model_dir, root / "tiny-rnn")
    shutil.copytree(tiny_model_dir, root / "tiny-g2p")
    config = root / "tiny-g2p" / "config.json"
    card = json.loads(config.read_text())
    config.write_text(json.dumps(dict(card, id="tiny-g2p", task="g2p", target_lang="arpabet")))
    return ModelRegistry(root)


def knight(registry: ModelRegistry, model_id: str):
    """A real decode result whose best output is replaced by the phones of 'knight'."""
    result = logic.decode_request(registry, "knight", model_id, logic.Settings())
    return replace(result, hypotheses=[replace(result.best, text="N AY T")])


def test_g2p_result_shows_ipa_and_audio(g2p_registry):
    assert logic.speaks(g2p_registry, "tiny-g2p") and not logic.speaks(g2p_registry, "tiny-rnn")
    text, audio = logic.pronunciation(knight(g2p_registry, "tiny-g2p"))
    assert "/naɪt/" in text and "N AY T" in text
    rate, samples = audio
    assert rate > 0 and len(samples) > 0.2 * rate


def test_without_espeak_the_page_says_why_and_keeps_the_ipa(g2p_registry, monkeypatch):
    monkeypatch.setattr(speech, "espeak_path", lambda: None)
    text, audio = logic.pronunciation(knight(g2p_registry, "tiny-g2p"))
    assert audio is None
    assert "/naɪt/" in text and "espeak-ng is not installed" in text


def test_unknown_phone_output_is_shown_not_spoken(g2p_registry):
    result = knight(g2p_registry, "tiny-g2p")
    result = replace(result, hypotheses=[replace(result.best, text="N 7 T")])
    text, audio = logic.pronunciation(result)
    assert audio is None and "not an ARPAbet phone" in text


def test_api_json_adds_ipa_only_for_g2p(g2p_registry):
    g2p = logic.api_json(g2p_registry, knight(g2p_registry, "tiny-g2p"))
    assert g2p["hypotheses"][0]["ipa"] == "naɪt"
    translation = logic.api_json(g2p_registry, knight(g2p_registry, "tiny-rnn"))
    assert "ipa" not in translation["hypotheses"][0]


def test_example_rows_pair_each_example_with_its_note(g2p_registry, tmp_path):
    assert logic.example_rows(g2p_registry, "tiny-rnn") == [["zwei kinder spielen im schnee", ""]]
    shutil.copytree(Path(g2p_registry.entries["tiny-rnn"].path), tmp_path / "noted")
    config = tmp_path / "noted" / "config.json"
    card = json.loads(config.read_text())
    config.write_text(json.dumps(dict(card, id="noted", examples=["a", "b"], example_notes=["first"])))
    rows = logic.example_rows(ModelRegistry(tmp_path), "noted")
    assert rows == [["a", "first"], ["b", ""]]


@pytest.mark.parametrize("text, message", [
    ("hello world", "one English word at a time"),
    ("42", "spell the number out"),
    ("café", "LATIN SMALL LETTER E WITH ACUTE"),
    ("x" * 31, "at most 30"),
])
def test_g2p_model_refuses_what_it_cannot_read_with_a_specific_message(g2p_registry, text, message):
    with pytest.raises(InputError, match=message):
        logic.prepare_request(g2p_registry, text, "tiny-g2p", logic.Settings())


@pytest.mark.parametrize("text", ["knight", "Knight", "don't", "  colonel "])
def test_g2p_model_reads_words_in_any_case(g2p_registry, text):
    logic.prepare_request(g2p_registry, text, "tiny-g2p", logic.Settings())


def test_other_tasks_take_any_text(g2p_registry):
    """A translation model gets digits and phrases (its output may be odd, but there is one)."""
    result = logic.decode_request(g2p_registry, "42 hello world", "tiny-rnn", logic.Settings())
    assert result.hypotheses
