"""Pronunciation models' extras: the predicted phones as IPA, and spoken by espeak-ng."""

from __future__ import annotations

from typing import Any

from demo_core.pipeline import DecodeResult, ModelRegistry
from demo_core.serving.catalogue import card_of
from demo_core.serving.views import selected
from demo_core.tasks import speech
from demo_core.tasks.phonemes import ipa_string


def speaks(registry: ModelRegistry, model_id: str | None) -> bool:
    """True for models whose output is a pronunciation (ARPAbet phones)."""
    card = card_of(registry, model_id)
    return card is not None and card.task == "g2p"


def pronunciation(result: DecodeResult, index: Any = 0) -> tuple[str, tuple[int, Any] | None]:
    """IPA of hypothesis ``index`` as Markdown and its audio (``(rate, samples)``), or None with
    the reason in the Markdown when it cannot be spoken (espeak-ng missing, empty output)."""
    i = selected(index, 0)
    hyp = result.hypotheses[i if 0 <= i < len(result.hypotheses) else 0]
    phones = hyp.text.split()
    if not phones:
        return "The model predicted no phones for this input.", None
    text = f"**IPA:** /{ipa_string(phones)}/ · **ARPAbet:** {' '.join(phones)}"
    try:
        return text, speech.speak(phones)
    except speech.SpeechError as exc:
        return f"{text}\n\n<small>{exc}</small>", None


def api_json(registry: ModelRegistry, result: DecodeResult) -> dict[str, Any]:
    """What ``/generate`` returns: ``result.to_json()``, plus each hypothesis's IPA for G2P models."""
    out = result.to_json()
    if speaks(registry, result.model_id):
        for hyp in out["hypotheses"]:
            hyp["ipa"] = ipa_string(hyp["text"].split())
    return out
