"""Readable labels for two tokenizer artefacts that otherwise puzzle a reader of the figures.

* A lone ``▁``: SentencePiece marks the start of a word with ``▁`` glued to its first piece,
  but where the word starts with a piece the vocabulary only has without the marker (a Chinese
  character, a digit, a single letter), the marker becomes a token of its own. It is shown as
  ``␣`` (a word boundary), since a bare ``▁`` reads as an underscore or as nothing.
* Byte pieces: a character the vocabulary lacks (an emoji) is spelled as its UTF-8 bytes, one
  token each. ``Tokenizer.display_pieces`` gives the first byte the character and later ones
  ``·`` plus the character; here they read "😀 byte F0", "byte 9F", ..., and a raw piece such as
  ``<0xF0>`` (an alternative in the confidence strip) reads "byte F0".

``piece_note`` says in a sentence what these labels mean, for the page to show when they occur.
"""

from __future__ import annotations

import re

WORD_START = "▁"
WORD_BOUNDARY = "␣"
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def piece_label(piece: str) -> str:
    """One piece as the figures show it: a lone ``▁`` as ``␣``, a byte piece ``<0xF0>`` as "byte F0"."""
    if piece == WORD_START:
        return WORD_BOUNDARY
    match = _BYTE_PIECE.fullmatch(piece)
    return f"byte {match[1].upper()}" if match else piece


def _byte_run(pieces: list[str], start: int) -> bytes | None:
    """The UTF-8 bytes of the character that ``display_pieces`` spread over pieces[start:], or None."""
    char = pieces[start]
    if len(char) != 1 or char.startswith("·"):
        return None
    raw = char.encode("utf-8")
    follow = pieces[start + 1 : start + len(raw)]
    return raw if len(raw) > 1 and follow == [f"·{char}"] * (len(raw) - 1) else None


def piece_labels(pieces: list[str]) -> list[str]:
    """Display pieces (``Tokenizer.display_pieces``) as labels, one per piece (see the module docstring)."""
    labels: list[str] = []
    i = 0
    while i < len(pieces):
        raw = _byte_run(pieces, i)
        if raw is None:
            labels.append(piece_label(pieces[i]))
            i += 1
            continue
        labels.append(f"{pieces[i]} byte {raw[0]:02X}")
        labels += [f"byte {b:02X}" for b in raw[1:]]
        i += len(raw)
    return labels


def piece_note(*piece_lists: list[str]) -> str | None:
    """A sentence on the artefacts among the given display pieces (source, outputs), or None when there are none."""
    pieces = [p for plist in piece_lists for p in plist]
    notes = []
    if WORD_START in pieces:
        notes.append(f"{WORD_BOUNDARY} is SentencePiece's word-start mark {WORD_START} standing alone: the next piece "
                     "(a character, digit or letter) exists in the vocabulary only without the mark, so the word "
                     "boundary got a token of its own")
    spelled = sorted({pieces[i] for i in range(len(pieces)) if _byte_run(pieces, i)})
    if spelled or any(_BYTE_PIECE.fullmatch(p) for p in pieces):
        which = " ".join(spelled) if spelled else "a character"
        notes.append(f"\"byte …\" pieces spell {which} that the vocabulary lacks, one UTF-8 byte per token "
                     "(SentencePiece byte fallback), so nothing becomes an unknown token")
    return "; ".join(notes) + "." if notes else None
