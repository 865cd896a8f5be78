"""How much an API reply carries, and the most it may weigh.

A decode records every layer and head's attention for every hypothesis, and a Transformer's
encoder self-attention as well: for a 200-token input with beam 5 that is ~25 MB of JSON,
most of it never looked at. ``/generate`` and ``/compare`` therefore send, by their
``attention`` parameter:

- ``"best"`` (the default): the best hypothesis's cross-attention, every layer and head
  (``hypotheses[0].attention``, [T, layers, heads, S]): what the page's default view (last
  layer, heads averaged) and its layer and head menus show. Every other hypothesis has
  ``attention: null``, and ``encoder_attention`` is null.
- ``"all"``: every hypothesis's cross-attention and, for Transformers, the encoder
  self-attention [L_enc, H, S, S].
- ``"none"``: no attention at all (text, pieces, scores, token probabilities, alternatives and
  the beam tree stay).

Every reply also says which it carries (``attention_included``). Floats keep 4 decimals. A
reply over ``REPLY_BUDGET_BYTES`` of JSON is refused with an ``InputError`` that says what to
ask for instead; one that is surely over the budget is refused before it is built, so a huge
request never fills the server's memory. Pure functions: no gradio here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from demo_core.pipeline import DecodeResult, InputError

REPLY_BUDGET_BYTES = 5_000_000  # 5 MB of JSON (issue #17); the default reply at the 200-token limit is ~0.35 MB (bench_replies.py)
DIGITS = 4  # decimals of every attention weight and probability in a reply
MIN_FLOAT_BYTES = 4  # the shortest a float can be in a JSON list: "0.0,"


@dataclass(frozen=True)
class Scope:
    """Which attention a reply carries."""

    hypotheses: int | None  # how many hypotheses, from the best, carry their attention; None: all
    encoder: bool  # the encoder self-attention too
    meaning: str  # what it is, for docs and messages


SCOPES: dict[str, Scope] = {
    "best": Scope(1, False, "the best hypothesis's cross-attention, every layer and head"),
    "all": Scope(None, True, "every hypothesis's cross-attention and the encoder self-attention"),
    "none": Scope(0, False, "no attention"),
}
DEFAULT_ATTENTION = "best"
ATTENTION_DOC = ("``attention``: " + "; ".join(f"``{name}``{' (default)' if name == DEFAULT_ATTENTION else ''}: "
                                                f"{scope.meaning}" for name, scope in SCOPES.items())
                 + f". A reply over {REPLY_BUDGET_BYTES / 1e6:g} MB is refused with what to ask for instead.")


def attention_choice(value: Any) -> str:
    """The ``attention`` parameter checked: best, all or none (blank: the default)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_ATTENTION
    if isinstance(value, str) and value.strip().lower() in SCOPES:
        return value.strip().lower()
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise InputError(f"attention must be one of {', '.join(SCOPES)}, got {shown}")


def result_json(result: DecodeResult, attention: str) -> dict[str, Any]:
    """``result`` as JSON with the attention that ``attention`` names (see the module docstring)."""
    scope = SCOPES[attention]
    reply = result.to_json(DIGITS, attention_of=scope.hypotheses, encoder=scope.encoder)
    reply["attention_included"] = attention
    return reply


def attention_floats(result: DecodeResult, attention: str) -> int:
    """How many attention weights ``result_json(result, attention)`` holds."""
    scope = SCOPES[attention]
    hyps = result.hypotheses if scope.hypotheses is None else result.hypotheses[: scope.hypotheses]
    count = sum(h.attention.numel() for h in hyps)
    if scope.encoder and result.encoder_attention is not None:
        count += result.encoder_attention.numel()
    return count


def json_bytes(reply: Any) -> bytes:
    """``reply`` as compact UTF-8 JSON: orjson (several times faster than json on the replies' lists of floats),
    else json for what orjson does not write (an integer over 64 bits that a client sent and the config repeats)."""
    try:
        return orjson.dumps(reply, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def reply_bytes(reply: Any) -> int:
    """Size of ``reply`` as compact UTF-8 JSON (what the server sends, give or take the envelope)."""
    return len(json_bytes(reply))


def too_large(size: int, budget: int, results: Sequence[DecodeResult], attention: str, at_least: bool = False) -> InputError:
    """The refusal of a reply of ``size`` bytes: its size, the budget, and what to ask for instead."""
    asks = {"all": ['attention="best" (the best hypothesis\'s attention only) or "none"'],
            "best": ['attention="none"'], "none": []}[attention]
    if any(len(r.hypotheses) > 1 for r in results):
        asks.append("fewer hypotheses (a smaller n_best or num_samples)")
    asks.append("a shorter max_len or a shorter input")
    return InputError(f"the reply would be {'at least ' if at_least else ''}{size / 1e6:.1f} MB of JSON, over the "
                      f"{budget / 1e6:g} MB limit for one reply: ask for less: {'; '.join(asks)}")


def bounded(build: Callable[[], dict[str, Any]], results: Sequence[DecodeResult], attention: str,
            budget: int | None = None) -> dict[str, Any]:
    """``build()``'s reply if it fits ``budget`` bytes of JSON (default ``REPLY_BUDGET_BYTES``),
    else ``too_large``; a reply that cannot fit (its attention alone is over the budget) is
    refused without building it."""
    budget = REPLY_BUDGET_BYTES if budget is None else budget
    floor = MIN_FLOAT_BYTES * sum(attention_floats(r, attention) for r in results)
    if floor > budget:
        raise too_large(floor, budget, results, attention, at_least=True)
    reply = build()
    size = reply_bytes(reply)
    if size > budget:
        raise too_large(size, budget, results, attention)
    return reply
