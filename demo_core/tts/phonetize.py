"""English text -> words -> ARPAbet phones, with the checks that say why a text cannot be spoken.

Each word is looked up in CMUdict (first pronunciation, stress digits kept). A word CMUdict lacks
goes to the project's pronunciation model (``checkpoints/g2p-en-rnn-bahdanau``, letters ->
phones without stress digits) and is marked ``"model"``, so the page can show which phones were
guessed. Numbers are spelled out ("42" -> "forty two"); punctuation is dropped; any other
character gets a :class:`SynthesisError` naming it.

This is the one file of ``demo_core.tts`` that imports the rest of ``demo_core`` (the
pronunciation model's loader and espeak-ng's phone mapping), so a move of those modules is
fixed here alone.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from demo_core.tasks.phonemes import ARPABET_TO_ESPEAK, VOWELS
from demo_core.tasks.speech import SpeechError, render, to_espeak

REPO_ROOT = Path(__file__).resolve().parents[2]
G2P_DIR = REPO_ROOT / "checkpoints" / "g2p-en-rnn-bahdanau"
MAX_WORDS = 25
MAX_WORD_LETTERS = 30  # what the pronunciation model accepts
PAD, EOS = "<pad>", "<eos>"
# The model's input symbols: ARPAbet with stress (CMUdict) and without (pronunciation model),
# a word boundary and an end marker.
PHONE_SET: tuple[str, ...] = (PAD, EOS, " ") + tuple(sorted(
    [p for p in ARPABET_TO_ESPEAK if p not in VOWELS]
    + [v + s for v in VOWELS for s in ("", "0", "1", "2")]))

_DROPPED = set(".,;:!?\"()[]{}…–—“”‘«»")  # punctuation: not spoken, silently dropped
_SPLIT = set("-/_")  # joins words: "t-shirt" -> "t shirt"
_SPELLED = {"&": "and", "%": "percent", "+": "plus", "=": "equals", "@": "at"}
_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


class SynthesisError(ValueError):
    """Text that cannot be spoken: empty, too long, unknown symbols; the message says which."""


@dataclass(frozen=True)
class Pronunciation:
    """A text as words and their phones; ``sources[i]`` is "cmudict" or "model"."""

    words: tuple[str, ...]
    word_phones: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...]

    @property
    def phones(self) -> list[str]:
        """All phones with ``" "`` between words: the model's input (without the end marker)."""
        out: list[str] = []
        for i, phones in enumerate(self.word_phones):
            out.extend(([" "] if i else []) + list(phones))
        return out


def number_words(number: int) -> list[str]:
    """An integer 0..999,999 as English words: 342 -> three hundred forty two."""
    if number < 20:
        return [_ONES[number]]
    if number < 100:
        return [_TENS[number // 10]] + (number_words(number % 10) if number % 10 else [])
    if number < 1000:
        return [_ONES[number // 100], "hundred"] + (number_words(number % 100) if number % 100 else [])
    return number_words(number // 1000) + ["thousand"] + (number_words(number % 1000) if number % 1000 else [])


def words_of(text: str) -> list[str]:
    """Lower-case spoken words of ``text``; raises :class:`SynthesisError` for unspeakable text."""
    if not isinstance(text, str):
        raise SynthesisError("text must be a string")
    if not text.strip():
        raise SynthesisError("text is empty: type an English sentence to speak")
    text = text.replace("’", "'")  # typographic apostrophe: "man’s" is "man's"
    odd = sorted({ch for ch in text if not (ch.isascii() and (ch.isalnum() or ch.isspace() or ch == "'"))
                  and ch not in _DROPPED and ch not in _SPLIT and ch not in _SPELLED})
    if odd:
        names = ", ".join(f"{ch!r} ({unicodedata.name(ch, 'unnamed')})" for ch in odd[:4])
        raise SynthesisError(f"cannot speak {names}: use English letters, digits and punctuation only")
    cleaned = "".join(" " if ch in _DROPPED or ch in _SPLIT else f" {_SPELLED[ch]} " if ch in _SPELLED else ch
                      for ch in text.lower())
    words: list[str] = []
    for token in re.findall(r"[a-z']+|\d+", cleaned):
        if token.isdigit():
            words.extend(number_words(int(token)) if len(token) <= 6 else [_ONES[int(d)] for d in token])
        elif token.strip("'"):
            words.append(token.strip("'"))
    if not words:
        raise SynthesisError("text has no words to speak, only punctuation")
    if len(words) > MAX_WORDS:
        raise SynthesisError(f"text has {len(words)} words; the speech model speaks at most {MAX_WORDS} at a time")
    long = [w for w in words if len(w) > MAX_WORD_LETTERS]
    if long:
        raise SynthesisError(f"the word {long[0][:40]!r} has {len(long[0])} letters; at most {MAX_WORD_LETTERS}")
    return words


def load_cmudict(path: Path) -> dict[str, tuple[str, ...]]:
    """CMUdict's first pronunciation per word: ``{"knight": ("N", "AY1", "T")}``."""
    lexicon: dict[str, tuple[str, ...]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            entry = line.split("#", 1)[0].split()
            if len(entry) >= 2 and "(" not in entry[0]:
                lexicon.setdefault(entry[0], tuple(entry[1:]))
    return lexicon


@lru_cache(maxsize=2)
def _g2p(model_dir: Path) -> tuple[Any, Any]:
    """The pronunciation model and its decoding settings, loaded on first use.

    Imported here, not at the top: training and the data loader never need it, and the
    translation pipeline it comes with is much heavier than this module.
    """
    from demo_core.decoding import DecodeConfig
    from demo_core.pipeline import Translator

    translator = Translator.from_dir(model_dir, weights="fp32")
    return translator, DecodeConfig(**translator.card.decode_defaults)


class Phonetizer:
    """Text -> :class:`Pronunciation`: CMUdict first, the pronunciation model for the rest."""

    def __init__(self, lexicon_path: Path | None, g2p_dir: Path = G2P_DIR) -> None:
        """``lexicon_path`` None: no CMUdict here (e.g. a Space without the data folder), so every
        word's phones come from the pronunciation model."""
        self.lexicon = load_cmudict(Path(lexicon_path)) if lexicon_path is not None else {}
        self.g2p_dir = Path(g2p_dir)
        self._guesses: dict[str, tuple[str, ...]] = {}

    def guess(self, word: str) -> tuple[str, ...]:
        """Phones of a word CMUdict lacks, from the pronunciation model (no stress digits)."""
        if word not in self._guesses:
            if not (self.g2p_dir / "model.safetensors").exists():
                raise SynthesisError(f"{word!r} is not in CMUdict and the pronunciation model "
                                     f"{self.g2p_dir.name} is not installed")
            translator, cfg = _g2p(self.g2p_dir)
            phones = tuple(p for p in translator.run(word, cfg).best.text.upper().split() if p in PHONE_SET)
            if not phones:
                raise SynthesisError(f"the pronunciation model found no phones for {word!r}")
            self._guesses[word] = phones
        return self._guesses[word]

    def __call__(self, text: str) -> Pronunciation:
        words = words_of(text)
        word_phones, sources = [], []
        for word in words:
            known = self.lexicon.get(word)
            word_phones.append(known if known else self.guess(word))
            sources.append("cmudict" if known else "model")
        return Pronunciation(tuple(words), tuple(word_phones), tuple(sources))


def espeak_input(pron: Pronunciation) -> str:
    """espeak-ng phoneme input for a whole sentence: ``[[w1 w2 ...]]``, words separated by spaces."""
    try:
        return "[[" + " ".join(to_espeak(list(p))[2:-2] for p in pron.word_phones) + "]]"
    except SpeechError as exc:
        raise SynthesisError(str(exc)) from exc


def espeak_audio(espeak_text: str, voice: str = "en-us", words_per_minute: int = 175) -> tuple[int, np.ndarray]:
    """espeak-ng speaking phoneme input ``[[...]]``: ``(sample_rate, int16 samples [N])``.

    :func:`demo_core.tasks.speech.render` on a whole sentence (words separated by spaces inside
    the brackets), its errors as :class:`SynthesisError`.
    """
    try:
        return render(espeak_text, voice, words_per_minute)
    except SpeechError as exc:
        raise SynthesisError(str(exc)) from exc
