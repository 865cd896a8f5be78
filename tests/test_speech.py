"""Hearing a pronunciation: ARPAbet → espeak-ng phoneme input → audio, and the app's G2P extras.

espeak-ng is a system package (``apt-get install espeak-ng``; ``.ci/run`` installs it); the
tests that run it skip, naming the package, where it is missing. The round-trip test asks
espeak-ng itself which IPA it will say, so a wrong mnemonic fails here.
Run: ``pytest tests/test_speech.py -q``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving import pronunciation
from demo_core.serving.requests import decode_request, prepare_request
from demo_core.tasks import speech
from demo_core.tasks.phonemes import ARPABET_TO_ESPEAK, ARPABET_TO_IPA, phone_to_ipa
from demo_core.tasks.phonemes import VOWELS as VOWEL_SET
from tests.tiny import copy_tiny_model

VOWELS = sorted(VOWEL_SET)
CONSONANTS = sorted(set(ARPABET_TO_IPA) - VOWEL_SET)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="needs the Debian package espeak-ng (apt-get install espeak-ng)")


def test_every_arpabet_phone_has_an_espeak_mnemonic():
    """All 39 phones (15 vowels) have an espeak-ng mnemonic, and stress digits become stress marks."""
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
    """Empty, unknown or overlong phone strings raise SpeechError saying which."""
    with pytest.raises(speech.SpeechError, match="empty|XX|Too long"):
        speech.to_espeak(phones)


@needs_espeak
def test_espeak_says_the_phones_the_ipa_shows():
    """For each phone, espeak-ng's own IPA equals the app's IPA (length marks and ɜ/ɝ aside)."""
    for phone in VOWELS:
        assert speech.espeak_ipa([phone + "1"]).replace("ː", "").replace("ɜ", "ɝ") == phone_to_ipa(phone + "1")
    for phone in CONSONANTS:
        said = speech.espeak_ipa(["AA1", phone, "AA1"]).replace("ː", "")
        assert said == f"ˈɑ{phone_to_ipa(phone)}ˈɑ", phone


@needs_espeak
def test_speak_returns_audio_whose_length_follows_the_word():
    """Speech is 16-bit audio, audible, between 0.2 and 2 s for a short word, and longer for a long one."""
    rate, short = speech.speak("N AY T")
    _, long = speech.speak("IH N T ER N AE SH AH N AH L AY Z EY SH AH N")
    assert rate > 8000 and short.dtype == np.int16 and np.abs(short).max() > 1000
    assert 0.2 * rate < len(short) < 2 * rate
    assert len(long) > 1.5 * len(short)


@pytest.fixture(scope="module")
def g2p_registry(tiny_model_dir, tmp_path_factory) -> ModelRegistry:
    """The tiny RNN served twice: as a translation model and with a G2P card."""
    root = tmp_path_factory.mktemp("speech-models")
    copy_tiny_model(tiny_model_dir, root / "tiny-rnn")
    copy_tiny_model(tiny_model_dir, root / "tiny-g2p", task="g2p", source_lang="en", target_lang="arpabet")
    return ModelRegistry(root)


def knight(registry: ModelRegistry, model_id: str):
    """A real decode result whose best output is replaced by the phones of 'knight'."""
    result = decode_request(registry, "knight", model_id, {})
    return replace(result, hypotheses=[replace(result.best, text="N AY T")])


@needs_espeak
def test_g2p_result_shows_ipa_and_audio(g2p_registry):
    """A G2P result shows its IPA and ARPAbet and comes with audio; a translation model does not speak."""
    assert pronunciation.speaks(g2p_registry, "tiny-g2p") and not pronunciation.speaks(g2p_registry, "tiny-rnn")
    text, audio = pronunciation.pronunciation(knight(g2p_registry, "tiny-g2p"))
    assert "/naɪt/" in text and "N AY T" in text
    rate, samples = audio
    assert rate > 0 and len(samples) > 0.2 * rate


def test_without_espeak_the_page_says_why_and_keeps_the_ipa(g2p_registry, monkeypatch):
    """Without espeak-ng there is no audio, and the text keeps the IPA and says what is missing."""
    monkeypatch.setattr(speech, "espeak_path", lambda: None)
    text, audio = pronunciation.pronunciation(knight(g2p_registry, "tiny-g2p"))
    assert audio is None
    assert "/naɪt/" in text and "espeak-ng is not installed" in text


def test_unknown_phone_output_is_shown_not_spoken(g2p_registry):
    """An output that is not ARPAbet is shown with the reason, never sent to espeak-ng."""
    result = knight(g2p_registry, "tiny-g2p")
    result = replace(result, hypotheses=[replace(result.best, text="N 7 T")])
    text, audio = pronunciation.pronunciation(result)
    assert audio is None and "not an ARPAbet phone" in text


def test_api_json_adds_ipa_only_for_g2p(g2p_registry):
    """/generate answers of a G2P model carry each hypothesis's IPA; other models' answers do not."""
    g2p = pronunciation.api_json(g2p_registry, knight(g2p_registry, "tiny-g2p"))
    assert g2p["hypotheses"][0]["ipa"] == "naɪt"
    translation = pronunciation.api_json(g2p_registry, knight(g2p_registry, "tiny-rnn"))
    assert "ipa" not in translation["hypotheses"][0]


@pytest.mark.parametrize("text, message", [
    ("hello world", "one English word at a time"),
    ("42", "spell the number out"),
    ("café", "LATIN SMALL LETTER E WITH ACUTE"),
    ("x" * 31, "at most 30"),
])
def test_g2p_model_refuses_what_it_cannot_read_with_a_specific_message(g2p_registry, text, message):
    """A phrase, digits, a letter outside a-z or an overlong word gets a message saying what to type."""
    with pytest.raises(InputError, match=message):
        prepare_request(g2p_registry, text, "tiny-g2p", {})


@pytest.mark.parametrize("text", ["knight", "Knight", "don't", "  colonel "])
def test_g2p_model_reads_words_in_any_case(g2p_registry, text):
    """Capitals, an apostrophe and surrounding spaces are all fine in a word."""
    prepare_request(g2p_registry, text, "tiny-g2p", {})


def test_other_tasks_take_any_text(g2p_registry):
    """A translation model gets digits and phrases (its output may be odd, but there is one)."""
    result = decode_request(g2p_registry, "42 hello world", "tiny-rnn", {})
    assert result.hypotheses
