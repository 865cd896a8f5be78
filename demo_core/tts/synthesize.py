"""Text in, :class:`SynthesisResult` out: phones, attention, mel, stop probabilities and audio.

    synth = Synthesizer.from_dir(Path("checkpoints/tts-en-tacotron"))
    result = synth.synthesize("A dog runs on the beach.")   # raises SynthesisError on bad text
    rate, samples = result.sample_rate, result.audio_int16

Decoding is greedy: each step feeds the last predicted frame back through the prenet, whose
dropout stays on as in Tacotron 2 (the seed makes it reproducible); it stops when the stop
probability passes 0.5 or after a step limit derived from the phone count. The vocoder is
Griffin-Lim (:func:`demo_core.tts.audio.griffin_lim`). The pronunciation lexicon is CMUdict
from the project's data folder (``$S2S_DATA_DIR`` or ``../shared/data``); without it the
pronunciation model gives every word's phones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demo_core.card import ModelCard
from demo_core.checkpoint import CheckpointError, load_weights, read_card, verify_weights
from demo_core.models.registry import build_model
from demo_core.tts.audio import AudioConfig, griffin_lim, to_int16
from demo_core.tts.model import Tacotron, generate
from demo_core.tts.phonetize import (
    EOS,
    REPO_ROOT,
    Phonetizer,
    Pronunciation,
    SynthesisError,
    espeak_audio,
    espeak_input,
)

__all__ = ["SynthesisError", "SynthesisResult", "Synthesizer", "espeak_reference"]

DATA_LEXICON = Path("cmudict") / "cmudict.dict.gz"


@dataclass(frozen=True)
class SynthesisResult:
    """One synthesised text. ``phones`` are the attention's columns: each word's phones, ``" "``
    between words and ``"<eos>"`` at the end; ``attention`` is [decoder_steps, len(phones)]."""

    text: str
    words: tuple[str, ...]
    word_phones: tuple[tuple[str, ...], ...]
    word_sources: tuple[str, ...]  # "cmudict" or "model" (the pronunciation model guessed)
    phones: tuple[str, ...]
    attention: np.ndarray  # [steps, phones] float32, rows sum to 1
    mel: np.ndarray  # [frames, n_mels] natural-log mel magnitude
    stop_probs: np.ndarray  # [steps]
    audio: np.ndarray  # [samples] float32 in [-1, 1]
    sample_rate: int
    frames_per_step: int
    stopped: bool  # False when the step limit ended the decode
    elapsed_ms: float

    @property
    def audio_int16(self) -> np.ndarray:
        return to_int16(self.audio)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    def to_json(self, digits: int = 4) -> dict[str, Any]:
        """Everything but the audio samples, JSON-ready (the API sends audio as a file)."""
        return {
            "text": self.text, "words": list(self.words), "word_phones": [list(p) for p in self.word_phones],
            "word_sources": list(self.word_sources), "phones": list(self.phones),
            "attention": self.attention.round(digits).tolist(), "mel": self.mel.round(3).tolist(),
            "stop_probs": self.stop_probs.round(digits).tolist(), "sample_rate": self.sample_rate,
            "frames_per_step": self.frames_per_step, "stopped": self.stopped,
            "duration_s": round(self.duration_s, 3), "elapsed_ms": round(self.elapsed_ms, 1),
        }


def find_lexicon() -> Path | None:
    """CMUdict in ``$S2S_DATA_DIR`` or ``../shared/data`` beside the repo; None where neither has it.

    The dictionary is data and stays out of the repository; without it every word's phones come
    from the pronunciation model (marked as such on the page).
    """
    candidates = [Path(os.environ["S2S_DATA_DIR"]) / DATA_LEXICON] if os.environ.get("S2S_DATA_DIR") else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / DATA_LEXICON)
    return next((path for path in candidates if path.exists()), None)


def espeak_reference(word_phones: Sequence[Sequence[str]], voice: str = "en-us",
                     words_per_minute: int = 175) -> tuple[int, np.ndarray]:
    """espeak-ng saying the same phones the model read: ``(sample_rate, int16 [N])``.

    The model was trained to imitate exactly this rendering (same voice and rate), so the page
    can play the two side by side.
    """
    pron = Pronunciation(tuple("" for _ in word_phones), tuple(tuple(p) for p in word_phones),
                         tuple("" for _ in word_phones))
    return espeak_audio(espeak_input(pron), voice, words_per_minute)


def load_model_only(model_dir: Path) -> tuple[ModelCard, Tacotron]:
    """Card and model without a lexicon (evaluation feeds phones directly); the weights' SHA-256
    is checked against the card."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if card.speech is None:
        raise CheckpointError(f"{model_dir.name}/config.json: a speech model needs the field 'speech'")
    verify_weights(model_dir, card)
    model = build_model(card.architecture, card.model)
    load_weights(model, model_dir / "model.safetensors")
    return card, model.eval()


class Synthesizer:
    """A loaded Tacotron with its card, phonetiser and audio settings."""

    def __init__(self, card: ModelCard, model: Tacotron, phonetizer: Phonetizer) -> None:
        assert card.speech is not None
        self.card = card
        self.speech = card.speech
        self.id = card.id
        self.model = model.eval()
        self.phonetizer = phonetizer
        self.audio_cfg = AudioConfig(**card.speech.audio)
        self.symbol_id = {s: i for i, s in enumerate(card.speech.symbols)}
        self.threshold = card.speech.stop_threshold
        self.gl_iters = card.speech.griffin_lim_iters

    @classmethod
    def from_dir(cls, model_dir: Path, lexicon: Path | None = None) -> Synthesizer:
        """Load ``config.json`` + fp16 ``model.safetensors`` (as fp32) from a model folder."""
        card, model = load_model_only(model_dir)
        return cls(card, model, Phonetizer(lexicon or find_lexicon()))

    def phone_ids(self, pron: Pronunciation) -> list[int]:
        unknown = [p for p in pron.phones if p not in self.symbol_id]
        if unknown:
            raise SynthesisError(f"the speech model does not know the phones {', '.join(sorted(set(unknown)))}")
        return [self.symbol_id[p] for p in pron.phones] + [self.symbol_id[EOS]]

    def synthesize(self, text: str, seed: int = 0, vocoder: bool = True) -> SynthesisResult:
        """Speak ``text``; raises :class:`SynthesisError` with a specific message on bad text."""
        start = time.perf_counter()
        pron = self.phonetizer(text)
        out = generate(self.model, self.phone_ids(pron), seed=seed, threshold=self.threshold)
        mel = out.mel.numpy().astype(np.float32)
        audio = griffin_lim(mel, self.audio_cfg, n_iter=self.gl_iters, seed=seed) if vocoder \
            else np.zeros(0, dtype=np.float32)
        stop_probs = out.stop_probs.numpy().astype(np.float32)
        return SynthesisResult(
            text=text, words=pron.words, word_phones=pron.word_phones, word_sources=pron.sources,
            phones=tuple(pron.phones) + (EOS,), attention=out.attention.numpy().astype(np.float32),
            mel=mel, stop_probs=stop_probs, audio=audio, sample_rate=self.audio_cfg.sample_rate,
            frames_per_step=self.model.cfg.reduction, stopped=bool(stop_probs[-1] > self.threshold),
            elapsed_ms=(time.perf_counter() - start) * 1000,
        )

    def espeak_reference(self, result: SynthesisResult) -> tuple[int, np.ndarray]:
        """espeak-ng's own rendering of the result's phones, with the training voice and rate."""
        return espeak_reference(result.word_phones, self.speech.voice, self.speech.words_per_minute)
