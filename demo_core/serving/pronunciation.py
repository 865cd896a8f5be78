"""Pronunciation models' extras: the predicted phones as IPA, and spoken by espeak-ng."""

from __future__ import annotations

from typing import Any

from demo_core.pipeline import DecodeResult, ModelRegistry
from demo_core.serving.catalogue import card_of
from demo_core.serving.replies import DEFAULT_ATTENTION, result_json
from demo_core.serving.views import selected
from demo_core.tasks import speech
from demo_core.tasks.phonemes import UNKNOWN, ipa_string, unknown_phones


def speaks(registry: ModelRegistry, model_id: str | None) -> bool:
    """True for models whose output is a pronunciation (ARPAbet phones)."""
    card = card_of(registry, model_id)
    return card is not None and card.task == "g2p"


def unknown_note(unknown: list[str]) -> str:
    """What symbols without an IPA value are, e.g. "⟨7⟩ is not an ARPAbet phone ..."."""
    shown = ", ".join(UNKNOWN.format(p) for p in unknown)
    one = len(unknown) == 1
    return (f"{shown} {'is not an ARPAbet phone' if one else 'are not ARPAbet phones'}: the model wrote "
            f"{'a symbol' if one else 'symbols'} outside CMUdict's 39 phones, which has no IPA value and cannot be spoken.")


def pronunciation(result: DecodeResult, index: Any = 0) -> tuple[str, tuple[int, Any] | None]:
    """IPA of hypothesis ``index`` as Markdown and its audio (``(rate, samples)``), or None with
    the reason in the Markdown when it cannot be spoken (a symbol that is not a phone, espeak-ng
    missing, empty output); symbols without an IPA value show as ⟨7⟩ and a note says what they are."""
    i = selected(index, 0)
    hyp = result.hypotheses[i if 0 <= i < len(result.hypotheses) else 0]
    phones = hyp.text.split()
    if not phones:
        return "The model predicted no phones for this input.", None
    text = f"**IPA:** /{ipa_string(phones)}/ · **ARPAbet:** {' '.join(phones)}"
    unknown = unknown_phones(phones)
    notes = [unknown_note(unknown)] if unknown else []
    missing = speech.unavailable_reason()
    if missing:
        notes.append(missing)
    audio = None
    if not unknown and not missing:
        try:
            audio = speech.speak(phones)
        except speech.SpeechError as exc:
            notes.append(str(exc))
    return "\n\n".join([text, *(f"<small>{note}</small>" for note in notes)]), audio


def api_json(registry: ModelRegistry, result: DecodeResult, attention: str = DEFAULT_ATTENTION) -> dict[str, Any]:
    """What ``/generate`` returns: the result with the attention ``attention`` names
    (``replies.result_json``), plus each hypothesis's IPA for G2P models."""
    out = result_json(result, attention)
    if speaks(registry, result.model_id):
        for hyp in out["hypotheses"]:
            hyp["ipa"] = ipa_string(hyp["text"].split())
    return out
