"""A speech-synthesis result as the page and the API show it: phones with their source, the
decoder step in words, and JSON with the audio as a WAV file in base64.

Speech is decoded greedily: each decoder step writes continuous spectrogram frames, so there is
no distribution over a vocabulary to search (beam) or to sample from; the only randomness is
the prenet's dropout, which stays on as in Tacotron 2 and is fixed by the seed.
"""

from __future__ import annotations

import base64
import io
import wave
from typing import Any

import numpy as np

from demo_core.decoding import OPTION
from demo_core.decoding.config import coerce
from demo_core.pipeline import InputError
from demo_core.tasks.phonemes import ipa_string

STRATEGY_NOTE = ("**Decoding: greedy only.** Each decoder step writes continuous spectrogram frames, not a "
                 "token chosen from a vocabulary, so there is nothing for beam search to rank or for sampling "
                 "to draw from. The one random part is the prenet's dropout, kept on as in Tacotron 2: "
                 "change the seed to hear a slightly different reading.")


def phones_markdown(result: Any) -> str:
    """Each word with its ARPAbet phones and IPA; words the pronunciation model guessed are marked."""
    rows = []
    for word, phones, source in zip(result.words, result.word_phones, result.word_sources):
        mark = " *(guessed by the pronunciation model)*" if source == "model" else ""
        rows.append(f"**{word}** {' '.join(phones)} /{ipa_string(list(phones))}/{mark}")
    guessed = sum(s == "model" for s in result.word_sources)
    note = (f"\n\n<small>{guessed} word(s) not in CMUdict: their phones come from the pronunciation model "
            "(pick *English spelling → pronunciation* to see its attention).</small>") if guessed else ""
    return " · ".join(rows) + note


def summary(model_id: str, result: Any) -> str:
    """One line: model, size of the input and output, time, and whether the stop token ended the decode."""
    steps = result.attention.shape[0]
    parts = [f"**{model_id}**", "Greedy",
             f"{len(result.phones)} phones → {steps} decoder steps ({steps * result.frames_per_step} frames, "
             f"{result.duration_s:.2f} s of audio)", f"{result.elapsed_ms:.0f} ms"]
    if not result.stopped:
        parts.append("cut at the step limit: the stop token never fired")
    return " · ".join(parts)


def step_markdown(result: Any, step: int) -> str:
    """What decoder step ``step`` (1-based) read and wrote: its top phones by weight and its frames' time span."""
    steps = result.attention.shape[0]
    step = max(1, min(int(step), steps))
    row = result.attention[step - 1]
    top = np.argsort(row)[::-1][:3]
    r = result.frames_per_step
    hop_ms = 1000 * len(result.audio) / max(result.mel.shape[0], 1) / result.sample_rate if len(result.audio) else 0
    start, end = (step - 1) * r, step * r - 1
    attended = ", ".join(f"{i + 1}·{result.phones[i].strip() or '␣'} ({row[i]:.2f})" for i in top if row[i] >= 0.01)
    return (f"**Step {step} of {steps}.** Attention α_{step} peaks on {attended}. The context a_{step} = Σ_i "
            f"α_{step},i h_i is mostly those phones' encoder states; from it the decoder wrote frames "
            f"{start}–{end} (≈ {start * hop_ms:.0f}–{(end + 1) * hop_ms:.0f} ms of audio); stop probability "
            f"{result.stop_probs[step - 1]:.2f}.")


def wav_base64(rate: int, samples: np.ndarray) -> str:
    """int16 mono samples as a base64 WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def result_json(model_id: str, result: Any) -> dict[str, Any]:
    """A synthesis as JSON without the audio (what ``generate --json`` prints; the audio goes to ``--audio-out``)."""
    return {"model": model_id, "task": "tts", **result.to_json(), "attention_axes": ["decoder_step", "phone"],
            "mel_axes": ["frame", "mel_bin"]}


def api_json(model_id: str, result: Any) -> dict[str, Any]:
    """What ``/synthesize`` (and ``/generate`` for a speech model) returns: ``result_json`` and the audio as a WAV file."""
    return result_json(model_id, result) | {"audio_wav_base64": wav_base64(result.sample_rate, result.audio_int16)}


def synthesize(registry: Any, model_id: Any, text: Any, seed: Any = 0) -> tuple[Any, Any]:
    """(synthesizer, result) for ``text``; every problem with the text or the seed is an ``InputError``."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError("no model chosen: pick the speech-synthesis model")
    synth = registry.synthesizer(model_id.strip())
    if not isinstance(text, str):
        raise InputError("text must be a string")
    try:
        chosen_seed = coerce(OPTION["seed"], seed)
        OPTION["seed"].check(chosen_seed)
        return synth, synth.synthesize(text, seed=chosen_seed or 0)
    except ValueError as exc:  # SynthesisError included: empty, too long, unspeakable characters
        raise InputError(str(exc)) from exc


def check(registry: Any, model_id: Any, text: Any) -> None:
    """Refuse text the speech model cannot read, before synthesising (cheap: phonetises only)."""
    synth = registry.synthesizer(str(model_id).strip())
    if not isinstance(text, str):
        raise InputError("text must be a string")
    try:
        synth.phonetizer(text)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def reference_audio(synth: Any, result: Any) -> tuple[int, np.ndarray] | None:
    """espeak-ng's rendering of the same phones, or None where espeak-ng cannot run here."""
    try:
        return synth.espeak_reference(result)
    except (OSError, ValueError, RuntimeError):
        return None


def default_speech_model(registry: Any) -> str | None:
    """The first usable speech-synthesis model, if any."""
    return next((m for m in registry.available() if registry.is_speech(m)), None)
