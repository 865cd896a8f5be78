"""Speech synthesis: a tiny Tacotron learns a monotonic toy alignment, the data generator's
phones, audio and frames agree, Griffin-Lim round-trips, bad text gets specific messages, and the
shipped model (if present) speaks with attention rows that sum to 1.

espeak-ng is a system package (``apt-get install espeak-ng``); the tests that need it skip
without it. Run: ``pytest tests/test_tts.py -q``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from demo_core.tts.audio import AudioConfig, griffin_lim, log_mel
from demo_core.tts.evaluate import alignment_ok, mcd
from demo_core.tts.model import Tacotron, TacotronConfig, generate
from demo_core.tts.phonetize import MAX_WORDS, SynthesisError, load_cmudict, words_of
from demo_core.tts.train import (
    TrainConfig,
    guided_attention_weights,
    load_optimizer,
    losses,
    optimizer_tensors,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("S2S_DATA_DIR") or ROOT.parent / "shared" / "data")
SHIPPED = ROOT / "checkpoints" / "tts-en-tacotron"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the Debian package espeak-ng")
needs_data = pytest.mark.skipif(not (DATA_DIR / "multi30k" / "train.en.gz").exists(),
                                reason=f"needs the Multi30k and CMUdict data in {DATA_DIR} (or $S2S_DATA_DIR)")

TINY = TacotronConfig(n_symbols=12, n_mels=8, reduction=2, emb_dim=16, enc_convs=1, prenet_dim=16, att_rnn_dim=32,
                      dec_rnn_dim=32, att_dim=16, loc_filters=4, loc_kernel=7, postnet_dim=8, postnet_layers=2,
                      dropout=0.1)
TOY_FRAMES_PER_PHONE = 4


def toy_example(patterns: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random phones 2..11 + end marker 1; each phone is its pattern held for 4 frames."""
    ids = torch.randint(2, 12, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g)
    return torch.cat([ids, torch.tensor([1])]), patterns[ids].repeat_interleave(TOY_FRAMES_PER_PHONE, 0)


def toy_batch(patterns: torch.Tensor, g: torch.Generator, size: int = 16) -> dict[str, torch.Tensor]:
    examples = [toy_example(patterns, g) for _ in range(size)]
    lengths = torch.tensor([len(p) for p, _ in examples])
    frames = torch.tensor([len(m) for _, m in examples])
    phones = torch.zeros(size, int(lengths.max()), dtype=torch.long)
    mel = torch.zeros(size, int(frames.max()), TINY.n_mels)
    for i, (p, m) in enumerate(examples):
        phones[i, :len(p)], mel[i, :len(m)] = p, m
    return {"phones": phones, "lengths": lengths, "mel": mel, "frames": frames}


@pytest.fixture(scope="module")
def toy_model() -> tuple[Tacotron, torch.Tensor, list[float]]:
    """A tiny Tacotron trained for 200 steps on the toy task (a few seconds)."""
    torch.manual_seed(0)
    patterns = torch.randn(12, TINY.n_mels)
    model = Tacotron(TINY)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    mel_losses = []
    for _ in range(200):
        parts = losses(model, toy_batch(patterns, g), TrainConfig())
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        mel_losses.append(float(parts["mel"].detach()))
    return model.eval(), patterns, mel_losses


def test_tiny_tacotron_learns_a_monotonic_alignment(toy_model):
    """Greedy decoding of unseen toy sequences: attention argmax moves forward, length and stop are right."""
    model, patterns, mel_losses = toy_model
    assert np.mean(mel_losses[-20:]) < 0.9 * np.mean(mel_losses[:20])
    g = torch.Generator().manual_seed(123)
    for _ in range(5):
        ids, mel = toy_example(patterns, g)
        out = generate(model, ids.tolist())
        path = out.attention.argmax(1)
        assert (path.diff() >= 0).all(), path.tolist()
        assert path[0] == 0 and path[-1] >= len(ids) - 2, path.tolist()
        assert abs(len(out.mel) - len(mel)) <= TINY.reduction
        assert out.stop_probs[-1] > 0.5 and (out.stop_probs[:-1] <= 0.5).all()
        assert alignment_ok(out.attention.numpy())
        assert torch.allclose(out.attention.sum(1), torch.ones(len(path)), atol=1e-5)


def test_alignment_rule_rejects_jumps_and_early_ends():
    good = np.eye(6)[[0, 1, 1, 2, 3, 4, 5]]
    assert alignment_ok(good)
    assert not alignment_ok(np.eye(6)[[0, 1, 4, 5]])  # jumps 3 phones ahead
    assert not alignment_ok(np.eye(6)[[0, 1, 2, 1, 0, 5]])  # goes back 2
    assert not alignment_ok(np.eye(6)[[0, 1, 2]])  # stops half-way
    assert alignment_ok(np.eye(6)[[0, 3, 5]], ["AH0", " ", " ", "M", "N", "<eos>"])  # boundaries are not phones
    assert not alignment_ok(np.eye(6)[[0, 4, 5]], ["AH0", "M", " ", "N", "K", "<eos>"])  # M, N skipped


def test_guided_attention_penalises_off_diagonal_only():
    w = guided_attention_weights(torch.tensor([10]), torch.tensor([10]), 12, 12, sigma=0.2)[0]
    assert w[3, 3] == 0 and w[0, 9] > 0.9 and w[9, 0] > 0.9
    assert (w[10:] == 0).all() and (w[:, 10:] == 0).all()  # padding costs nothing


def test_optimizer_state_round_trips_through_named_tensors():
    model = Tacotron(TINY)
    opt = torch.optim.Adam(model.parameters())
    model(torch.tensor([[2, 3, 1]]), torch.tensor([3]), torch.zeros(1, 4, TINY.n_mels))[0].sum().backward()
    opt.step()
    tensors = optimizer_tensors(opt, model)
    fresh = torch.optim.Adam(model.parameters())
    load_optimizer(fresh, model, tensors)
    assert optimizer_tensors(fresh, model).keys() == tensors.keys()
    assert all(torch.equal(a, b) for a, b in zip(optimizer_tensors(fresh, model).values(), tensors.values(), strict=True))


def test_griffin_lim_round_trip_keeps_the_spectrogram():
    """Harmonic tone -> log-mel -> Griffin-Lim (32 iters) -> log-mel: mean error under 0.5 nats in the
    loud bins (top 8 nats), clearly better than random phase (about 0.75)."""
    cfg = AudioConfig()
    t = np.arange(cfg.sample_rate) / cfg.sample_rate
    phase = 2 * np.pi * np.cumsum(120 + 30 * t) / cfg.sample_rate
    tone = 0.1 * sum(np.sin(k * phase) / k for k in range(1, 30)) * np.hanning(len(t)) ** 0.3
    mel = log_mel(tone, cfg)

    def error(n_iter: int) -> float:
        audio = griffin_lim(mel, cfg, n_iter=n_iter)
        assert audio.dtype == np.float32 and len(audio) == (len(mel) - 1) * cfg.hop_length
        diff = mel - log_mel(audio, cfg)
        diff = diff - diff.mean()  # griffin_lim normalises the peak: compare shapes, not gain
        return float(diff[mel > mel.max() - 8].abs().mean())

    assert error(32) < 0.5 and error(32) < 0.8 * error(0)


def test_mcd_is_zero_for_identical_and_grows_with_distortion():
    mel = torch.randn(40, 80).numpy()
    assert mcd(mel, mel) == pytest.approx(0.0, abs=1e-9)
    assert mcd(np.repeat(mel, 2, axis=0), mel) == pytest.approx(0.0, abs=1e-9)  # DTW absorbs tempo
    noise = np.random.default_rng(0).normal(size=mel.shape)
    assert 0 < mcd(mel + 0.1 * noise, mel) < mcd(mel + 1.0 * noise, mel)
    assert mcd(mel + 1.0, mel) == pytest.approx(0.0, abs=1e-4)  # a gain change is c0 only, left out


@pytest.mark.parametrize("text, message", [
    ("", "text is empty"),
    ("   ", "text is empty"),
    ("?!", "no words to speak"),
    ("word " * (MAX_WORDS + 1), f"at most {MAX_WORDS}"),
    ("a ~ b", "'~' (TILDE)"),
    ("café", "LATIN SMALL LETTER E WITH ACUTE"),
    ("x" * 31, "at most 30"),
])
def test_bad_text_gets_a_specific_message(text, message):
    with pytest.raises(SynthesisError, match=re.escape(message)):
        words_of(text)


def test_numbers_are_spelled_out_and_punctuation_dropped():
    assert words_of("3 dogs, 42 cats & 115 birds!") == \
        ["three", "dogs", "forty", "two", "cats", "and", "one", "hundred", "fifteen", "birds"]
    assert words_of("A T-shirt’s colour.") == ["a", "t", "shirt's", "colour"]  # typographic apostrophe


@needs_data
@pytest.mark.skipif(not (ROOT / "checkpoints" / "g2p-en-rnn-bahdanau" / "model.safetensors").exists(),
                    reason="needs the shipped pronunciation model g2p-en-rnn-bahdanau")
def test_words_missing_from_cmudict_come_from_the_pronunciation_model():
    from demo_core.tts.phonetize import PHONE_SET, Phonetizer

    pron = Phonetizer(DATA_DIR / "cmudict" / "cmudict.dict.gz")("the xylophonix")
    assert pron.sources == ("cmudict", "model") and pron.word_phones[0] == ("DH", "AH0")
    assert pron.word_phones[1][0] == "Z" and set(pron.word_phones[1]) <= set(PHONE_SET)
    assert pron.phones == ["DH", "AH0", " ", *pron.word_phones[1]]


@needs_espeak
@needs_data
def test_generator_phones_audio_and_frames_agree(tmp_path):
    """A tiny generated set: CMUdict phones, frames = samples // hop + 1, mel shape, plausible durations."""
    from demo_core.tts.dataset import DataConfig, generate, load_split

    generate(DATA_DIR, tmp_path, DataConfig(train=3, valid=1, test=2, words=2), processes=1)
    lexicon = load_cmudict(DATA_DIR / "cmudict" / "cmudict.dict.gz")
    cfg = AudioConfig()
    texts = {}
    for split, count in (("train", 5), ("valid", 1), ("test", 2)):
        rows = list(load_split(tmp_path, split))
        assert len(rows) == count
        texts[split] = {row["text"] for row, _ in rows}
        for row, mel in rows:
            assert row["frames"] == cfg.frames_for(row["samples"]) == mel.shape[0] and mel.shape[1] == cfg.n_mels
            groups: list[list[str]] = [[]]
            for phone in row["phones"]:
                groups.append([]) if phone == " " else groups[-1].append(phone)
            assert len(groups) == len(row["words"]) == len(row["sources"])
            for word, source, phones in zip(row["words"], row["sources"], groups, strict=True):
                assert source == "model" or tuple(phones) == lexicon[word]
            n_phones = sum(p != " " for p in row["phones"])
            assert 0.03 < row["samples"] / cfg.sample_rate / n_phones < 0.3  # seconds per phone
            assert float(mel.max()) > -2  # not silence
    assert not texts["test"] & texts["train"]
    assert json.loads((tmp_path / "data.json").read_text())["sizes"] == {"train": 5, "valid": 1, "test": 2}


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="the tts-en-tacotron checkpoint is not shipped here")
def test_shipped_model_speaks_with_normalised_attention():
    from demo_core.tts.synthesize import Synthesizer

    synth = Synthesizer.from_dir(SHIPPED)
    result = synth.synthesize("Two dogs are playing in the snow.")
    steps = len(result.stop_probs)
    assert result.attention.shape == (steps, len(result.phones)) and result.phones[-1] == "<eos>"
    assert np.allclose(result.attention.sum(1), 1.0, atol=1e-4)
    assert result.mel.shape == (steps * result.frames_per_step, 80)
    assert len(result.audio) == (result.mel.shape[0] - 1) * 200 and result.sample_rate == 16000
    assert result.stopped and alignment_ok(result.attention)
    assert result.word_sources == ("cmudict",) * 7
    assert synth.synthesize("Two dogs are playing in the snow.").audio.tobytes() == result.audio.tobytes()
    with pytest.raises(SynthesisError, match="text is empty"):
        synth.synthesize(" ")
    if shutil.which("espeak-ng"):
        rate, samples = synth.espeak_reference(result)
        assert samples.dtype == np.int16 and 0.5 < len(samples) / rate / result.duration_s < 2
