"""Speak a predicted pronunciation with espeak-ng, so G2P output can be heard, not only read.

The G2P model writes ARPAbet phones; espeak-ng reads phoneme input between ``[[`` and ``]]``
in its own ASCII mnemonics, so each phone is mapped to the mnemonic espeak-ng's ``en-us`` voice
uses for the same sound (taken from ``espeak-ng -v en-us -x`` on words such as "father",
"bird", "vision"). Nothing is re-spelled: espeak-ng says exactly the predicted phones.

espeak-ng is a system program (Debian package ``espeak-ng``, listed in ``packages.txt`` for
Hugging Face Spaces). Where it is missing, :func:`unavailable_reason` says so and the app hides
its audio; everything else works without it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from demo_core.tasks.phonemes import ARPABET_TO_ESPEAK, VOWELS

VOICE = "en-us"  # CMUdict transcribes General American
MAX_PHONES = 60  # longer outputs are not a word; refuse rather than speak noise

_REDUCED = {"AH": "@", "ER": "3"}  # schwa and r-coloured schwa
_STRESS_MARK = {"1": "'", "2": ","}


class SpeechError(ValueError):
    """The phones cannot be spoken (unknown phone, too long, espeak-ng failed or is missing)."""


def espeak_path() -> str | None:
    """Where the espeak-ng program is, or None."""
    return shutil.which("espeak-ng")


def unavailable_reason() -> str | None:
    """None when speech works here, else a sentence for the page saying why there is no audio."""
    if espeak_path() is None:
        return ("No audio: the speech synthesiser espeak-ng is not installed on this server "
                "(Debian/Ubuntu: `apt-get install espeak-ng`). The pronunciation is still shown as text.")
    return None


def to_espeak(phones: str | list[str]) -> str:
    """ARPAbet phones as espeak-ng phoneme input, e.g. ``"N AY1 T"`` → ``"[[n'aIt]]"``.

    Stress digits become espeak's stress marks before the vowel. Without digits (the g014b2b
    split has none) AH and ER are reduced to schwa, except when they are the word's only vowel
    ("but", "bird"), and espeak-ng places the stress itself.
    """
    phones = phones.split() if isinstance(phones, str) else list(phones)
    if not phones:
        raise SpeechError("Nothing to speak: the pronunciation is empty.")
    if len(phones) > MAX_PHONES:
        raise SpeechError(f"Too long to speak: {len(phones)} phones (at most {MAX_PHONES}).")
    vowels = sum(p.upper().rstrip("012") in VOWELS for p in phones)
    out = []
    for phone in phones:
        phone = phone.upper()
        base, stress = (phone[:-1], phone[-1]) if phone[-1:].isdigit() else (phone, "")
        if base not in ARPABET_TO_ESPEAK:
            raise SpeechError(f"Cannot speak {phone!r}: not an ARPAbet phone.")
        reduced = base in _REDUCED and (stress == "0" or (stress == "" and vowels > 1))
        out.append(_STRESS_MARK.get(stress, "") + (_REDUCED[base] if reduced else ARPABET_TO_ESPEAK[base]))
    return "[[" + "".join(out) + "]]"


def speak(phones: str | list[str], words_per_minute: int = 140) -> tuple[int, np.ndarray]:
    """Synthesise the phones: ``(sample_rate, samples[int16, N])``, ready for ``gr.Audio``.

    Raises :class:`SpeechError` with a readable message on any failure.
    """
    text = to_espeak(phones)  # a phone it cannot say is the reason, whether or not espeak-ng is here
    return render(text, VOICE, words_per_minute)


def render(text: str, voice: str = VOICE, words_per_minute: int = 140, timeout: float = 30) -> tuple[int, np.ndarray]:
    """espeak-ng reading ``text`` (phoneme input ``[[...]]``, a word or a whole sentence) with
    ``voice``: ``(sample_rate, samples[int16, N])``; raises :class:`SpeechError` on any failure."""
    program = espeak_path()
    if program is None:
        raise SpeechError(unavailable_reason() or "espeak-ng is missing")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        try:
            subprocess.run([program, "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
                           check=True, capture_output=True, timeout=timeout)
            with wave.open(str(path), "rb") as wav:
                rate, width = wav.getframerate(), wav.getsampwidth()
                frames = wav.readframes(wav.getnframes())
        except (OSError, subprocess.SubprocessError, wave.Error) as exc:
            raise SpeechError(f"espeak-ng could not speak {text}: {exc}") from exc
    if width != 2 or not frames:
        raise SpeechError(f"espeak-ng returned no usable audio for {text}.")
    return rate, np.frombuffer(frames, dtype=np.int16).copy()


def espeak_ipa(phones: str | list[str]) -> str:
    """What espeak-ng will say, in its own IPA (``espeak-ng -q --ipa``): a check of the mapping."""
    program = espeak_path()
    if program is None:
        raise SpeechError(unavailable_reason() or "espeak-ng is missing")
    done = subprocess.run([program, "-v", VOICE, "-q", "--ipa", to_espeak(phones)],
                          check=True, capture_output=True, text=True, timeout=10)
    return done.stdout.strip()
