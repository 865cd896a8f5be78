"""Named text normalisers that training data and user input share.

A config may name a normaliser per side (``"tokenizer": {"source_normalizer": "zh-hans"}``).
The data reader applies it to the training text and the tokenizer applies the same one to
what a user types, so the model never sees a script or casing it was not trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import opencc


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    """OpenCC's Traditional→Simplified converter (loaded once; its dictionaries ship in the wheel)."""
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese characters to Simplified (``這`` → ``这``); other text is unchanged."""
    return _t2s().convert(text)


def to_lower(text: str) -> str:
    """Lower-case (the G2P source side: CMUdict words are case-free)."""
    return text.lower()


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "zh-hans": to_simplified,
    "lower": to_lower,
}


def get_normalizer(name: str | None) -> Callable[[str], str]:
    """The normaliser called ``name``; ``None`` or ``""`` gives the identity."""
    if not name:
        return lambda text: text
    if name not in NORMALIZERS:
        raise ValueError(f"unknown normalizer {name!r}; known: {sorted(NORMALIZERS)}")
    return NORMALIZERS[name]
