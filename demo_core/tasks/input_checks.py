"""Task-specific input checks: what a model can read, said before it reads something else.

Translation, summarisation and date models take any text (a German sentence sent to the Chinese
model still gets an output: that is instructive). The pronunciation model was trained on single
dictionary words spelled with letters and apostrophes, so a phrase, digits or punctuation get a
message saying what to type instead of a confident pronunciation of something it never saw.
"""

from __future__ import annotations

import re
import unicodedata

G2P_MAX_LETTERS = 30  # the longest CMUdict training word has 22 letters
_WORD = re.compile(r"[A-Za-z']+")


def input_problem(task: str, text: str) -> str | None:
    """None when ``text`` suits a model of ``task``, else a message saying what to type."""
    if task != "g2p":
        return None
    word = text.strip()
    if _WORD.fullmatch(word):
        if len(word) > G2P_MAX_LETTERS:
            return f"that word has {len(word)} letters; the pronunciation model takes at most {G2P_MAX_LETTERS}"
        return None
    if any(ch.isspace() for ch in word):
        return "the pronunciation model reads one English word at a time: type a single word, e.g. \"knight\""
    if any(ch.isdigit() for ch in word):
        return "the pronunciation model reads letters, not digits: spell the number out, e.g. \"seven\""
    odd = sorted({ch for ch in word if not (ch.isascii() and (ch.isalpha() or ch == "'"))})
    names = ", ".join(f"{ch!r} ({unicodedata.name(ch, 'unnamed')})" for ch in odd[:3])
    return f"the pronunciation model reads the letters a-z and apostrophes only; remove {names}"
