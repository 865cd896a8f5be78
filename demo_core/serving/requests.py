"""A request from the page or an API client, checked and decoded.

Options arrive by name (``{"beam_size": "5", "seed": None, ...}``) as a browser or a client
sent them; ``demo_core.decoding.config`` types and checks them, so every mistake becomes an
``InputError`` that names the option. Nothing decodes before every check has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from demo_core.decoding import OPTION, OPTIONS, DecodeConfig
from demo_core.decoding.config import config_from
from demo_core.pipeline import DecodeResult, InputError, ModelRegistry, Translator
from demo_core.serving.catalogue import card_of

COMPARE_SHARED = ("beam_size", "length_penalty", "temperature", "top_p", "seed")  # Compare: both sides use these


def build_config(options: Mapping[str, Any]) -> DecodeConfig:
    """A checked ``DecodeConfig`` from option values by name; blank values take their defaults."""
    try:
        return config_from(dict(options))
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def decode_defaults(registry: ModelRegistry, model_id: str | None) -> dict[str, Any]:
    """Every option's starting value on the page, with the card's ``decode_defaults`` laid over it."""
    card = card_of(registry, model_id)
    given = {k: v for k, v in (card.decode_defaults if card else {}).items() if k in OPTION}
    return {opt.name: given.get(opt.name, opt.start) for opt in OPTIONS}


def prepare_request(registry: ModelRegistry, text: Any, model_id: Any,
                    options: Mapping[str, Any]) -> tuple[Translator, DecodeConfig]:
    """Every check a request needs, without decoding; each user mistake raises ``InputError``."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError("no model chosen: pick one from the model menu")
    cfg = build_config(options)
    translator = registry.get(model_id.strip())
    translator.source_ids(text)  # empty, too long, too many tokens
    return translator, cfg


def decode_request(registry: ModelRegistry, text: Any, model_id: Any, options: Mapping[str, Any]) -> DecodeResult:
    """Check, then decode ``text`` with the chosen model and options."""
    translator, cfg = prepare_request(registry, text, model_id, options)
    return translator.run(text, cfg)


def compare_options(strategy: Any, shared: Mapping[str, Any]) -> dict[str, Any]:
    """One Compare side's options: its strategy with the options both sides share; sampling draws one sample."""
    unknown = set(shared) - set(COMPARE_SHARED)
    if unknown:
        raise InputError(f"Compare does not take {', '.join(sorted(unknown))}")
    return dict(shared, strategy=strategy, num_samples=1)


def prepare_side(side: str, registry: ModelRegistry, text: Any, model_id: Any,
                 options: Mapping[str, Any]) -> tuple[Translator, DecodeConfig]:
    """``prepare_request`` for one Compare side; a refusal says which side and model it is about."""
    try:
        return prepare_request(registry, text, model_id, options)
    except InputError as exc:
        raise InputError(f"{side} ({model_id}): {exc}") from exc


def compare_request(registry: ModelRegistry, text: Any, model_a: Any, options_a: Mapping[str, Any], model_b: Any,
                    options_b: Mapping[str, Any]) -> tuple[DecodeResult, DecodeResult]:
    """Decode ``text`` twice: model A with options A, model B with options B (same source language)."""
    translator_a, cfg_a = prepare_side("A", registry, text, model_a, options_a)
    translator_b, cfg_b = prepare_side("B", registry, text, model_b, options_b)
    language_a, language_b = translator_a.card.source_lang, translator_b.card.source_lang
    if language_a != language_b:
        raise InputError(f"the models read different languages: {translator_a.id} reads {language_a}, "
                         f"{translator_b.id} reads {language_b}; pick two with the same source language")
    return translator_a.run(text, cfg_a), translator_b.run(text, cfg_b)
