"""The shipped speech-synthesis model through the API, the command line and the real page.

Needs the shipped ``checkpoints/tts-en-tacotron`` (else these tests skip), and for the page the
Debian package ``chromium``. The model's own tests (toy alignment, audio round trip, data
generator) are in tests/test_tts.py.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving import synthesis
from tests.serving import demo_for, serving

ROOT = Path(__file__).resolve().parent.parent
MODEL = "tts-en-tacotron"
SHIPPED = ModelRegistry()
SENTENCE = "Two dogs are playing in the snow."
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(MODEL not in SHIPPED.available(), reason=f"{MODEL} is not shipped in checkpoints/")


@pytest.fixture(scope="module")
def spoken():
    """The synthesiser and its result for SENTENCE (seed 0)."""
    return synthesis.synthesize(SHIPPED, MODEL, SENTENCE, 0)


def test_attention_is_phones_by_steps_with_rows_summing_to_one(spoken):
    """Attention has one row per decoder step over the phones (EOS included), each row a distribution."""
    _, result = spoken
    steps, phones = result.attention.shape
    assert phones == len(result.phones) and result.phones[-1] == "<eos>"
    assert np.allclose(result.attention.sum(axis=1), 1.0, atol=1e-3)
    assert result.mel.shape == (steps * result.frames_per_step, 80)


def test_alignment_moves_forward_and_reaches_the_last_phone(spoken):
    """The attention's peak starts near the first phone, never runs backwards far, and ends near the last."""
    _, result = spoken
    peaks = result.attention.argmax(axis=1)
    assert peaks[0] <= 2 and peaks[-1] >= len(result.phones) - 3
    assert (np.diff(peaks) >= -1).all()
    assert result.stopped


def test_same_seed_same_audio_other_seed_other_audio(spoken):
    """The prenet's dropout is the one random part: a seed fixes it."""
    _, result = spoken
    again = synthesis.synthesize(SHIPPED, MODEL, SENTENCE, 0)[1]
    other = synthesis.synthesize(SHIPPED, MODEL, SENTENCE, 1)[1]
    assert np.array_equal(result.mel, again.mel) and not np.array_equal(result.mel, other.mel)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("word " * 30, "25"),
    ("snow ☃ man", "☃"),
])
def test_bad_text_gets_a_specific_message(text, message):
    """Empty, too long and unspeakable text are refused with a message that says which."""
    with pytest.raises(InputError, match=message):
        synthesis.synthesize(SHIPPED, MODEL, text, 0)


def test_a_text_model_refuses_to_synthesise():
    """Asking a translation model for speech names the mistake."""
    with pytest.raises(InputError, match="writes text, not speech"):
        SHIPPED.synthesizer("de-en-rnn-bahdanau")


def test_api_json_carries_phones_attention_spectrogram_and_a_wav(spoken):
    """/synthesize's reply: phones, attention [steps, phones], mel, and audio as a WAV at the stated rate."""
    _, result = spoken
    reply = json.loads(json.dumps(synthesis.api_json(MODEL, result)))
    assert reply["phones"] == list(result.phones) and len(reply["attention"][0]) == len(result.phones)
    with wave.open(io.BytesIO(base64.b64decode(reply["audio_wav_base64"]))) as wav:
        assert wav.getframerate() == reply["sample_rate"] and wav.getnframes() == len(result.audio)


def test_cli_prints_phones_and_attention_and_writes_the_wav(tmp_path):
    """`generate --model tts-en-tacotron --json --audio-out` prints the attention and writes a WAV."""
    out = tmp_path / "dogs.wav"
    done = subprocess.run([sys.executable, "-m", "demo_core.generate", "--model", MODEL, "--json", "--audio-out", str(out)],
                          input=SENTENCE + "\n", capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    reply = json.loads(done.stdout)
    assert np.asarray(reply["attention"]).shape[1] == len(reply["phones"])
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == reply["sample_rate"] and wav.getnframes() > 0


def test_generate_list_names_the_speech_task():
    """`generate --list` lists the model with a task naming speech synthesis."""
    done = subprocess.run([sys.executable, "-m", "demo_core.generate", "--list"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=True)
    entry = next(e for e in json.loads(done.stdout) if e["id"] == MODEL)
    assert entry["task"] == "tts" and "speech" in entry["task_label"].lower() and entry["available"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the Debian package chromium at {CHROMIUM}")
def test_page_synthesises_and_shows_attention_spectrogram_audio_and_steps(tmp_path):
    """On the page: pick speech synthesis, run, and see the figure, both players and a working step control."""
    from playwright.sync_api import expect, sync_playwright

    for model_id in (MODEL, "g2p-en-rnn-bahdanau", "de-en-rnn-bahdanau"):
        (tmp_path / model_id).symlink_to(SHIPPED.entries[model_id].path, target_is_directory=True)
    with serving(demo_for(tmp_path)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("#heatmap .av-matrix")
        page.locator("#task input").click()
        page.get_by_role("option", name="Speech › English text → speech (phones → mel spectrogram → audio)").click()
        expect(page.locator("#tts-strategy-note")).to_contain_text("greedy only")
        expect(page.locator("#input-text textarea")).not_to_have_value("")  # the model's first example
        page.locator("#input-text textarea").fill(SENTENCE)
        page.locator("#run").click()
        page.wait_for_selector("#tts-figure .main-svg")
        expect(page.locator("#tts-phones")).to_contain_text("dogs")
        expect(page.locator("#tts-step-text")).to_contain_text("Step 1 of")
        assert page.locator("#tts-audio audio, #tts-audio .waveform-container, #tts-audio button").count() > 0
        page.locator("#tts-step-next").click()
        expect(page.locator("#tts-step-text")).to_contain_text("Step 2 of")
        assert page.locator("#tts-figure .heatmaplayer").count() == 2  # attention and spectrogram
        page.screenshot(path=str(tmp_path / "speech.png"), full_page=True)
        browser.close()


def test_without_cmudict_the_pronunciation_model_gives_every_word(spoken):
    """Where the data folder is absent (a Space), every word's phones come from the pronunciation model, marked so."""
    from demo_core.tts.phonetize import Phonetizer

    synth, _ = spoken
    bare = Phonetizer(None)
    pron = bare(SENTENCE)
    assert set(pron.sources) == {"model"} and all(pron.word_phones)
    assert synth.phone_ids(pron)  # phones without stress digits are in the model's inventory
