"""SentencePiece tokenisation with fixed special ids and readable display pieces.

Every model in the project uses the same four special ids, so decoding code can stop on
``EOS_ID`` and mask ``PAD_ID`` without asking which tokenizer it holds. ``byte_fallback`` is
on: a character the model never saw is spelled as UTF-8 byte pieces instead of collapsing
into an unknown token, so any input round-trips.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from demo_core.text.normalize import get_normalizer

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def normalize_text(text: str) -> str:
    """NFKC-normalise and drop control characters (tabs and newlines become spaces)."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def train_sentencepiece(
    sentences: Iterable[str],
    model_path: Path,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    split_digits: bool = True,
) -> "Tokenizer":
    """Train a SentencePiece model on ``sentences`` and write it to ``model_path``."""
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=(normalize_text(s) for s in sentences),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        byte_fallback=True,
        split_digits=split_digits,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,
        normalization_rule_name="identity",
        num_threads=2,
        minloglevel=2,
    )
    model_path.write_bytes(buffer.getvalue())
    return Tokenizer(model_path)


def _byte_value(piece: str) -> int | None:
    """Return the byte of a fallback piece such as ``<0xE4>``, else None."""
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return int(piece[3:5], 16)
    return None


class Tokenizer:
    """A loaded SentencePiece model: text <-> ids, plus labels for plots."""

    def __init__(self, model_path: Path, normalizer: str | None = None) -> None:
        """``normalizer`` names a text normalisation applied before encoding (e.g. ``zh-hans``)."""
        self.path = Path(model_path)
        self.prenormalize = get_normalizer(normalizer)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (
            PAD_ID,
            UNK_ID,
            BOS_ID,
            EOS_ID,
        ):
            raise ValueError(f"{self.path}: special ids differ from pad=0 unk=1 bos=2 eos=3")
        self._pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]  # id -> piece, read per token

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Text to ids, without BOS/EOS."""
        return self.sp.encode(normalize_text(self.prenormalize(text)), out_type=int)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text; special ids are skipped."""
        return self.sp.decode([i for i in ids if i > EOS_ID])

    def piece(self, token_id: int) -> str:
        token_id = int(token_id)
        if 0 <= token_id < len(self._pieces):
            return self._pieces[token_id]
        return self.sp.id_to_piece(token_id)  # out of range: SentencePiece's own error

    def display_pieces(self, ids: list[int]) -> list[str]:
        """One readable label per id.

        Runs of byte-fallback pieces are decoded back to the characters they spell; the
        first byte of a character carries the character and later bytes carry ``·`` plus the
        character, so the label count always equals the token count (one attention row or
        column per label).
        """
        labels = [self.piece(i) for i in ids]
        i = 0
        while i < len(labels):
            if _byte_value(labels[i]) is None:
                i += 1
                continue
            j = i
            raw = bytearray()
            while j < len(labels) and _byte_value(labels[j]) is not None:
                raw.append(_byte_value(labels[j]))  # type: ignore[arg-type]
                j += 1
            self._label_byte_run(labels, i, bytes(raw))
            i = j
        return labels

    @staticmethod
    def _label_byte_run(labels: list[str], start: int, raw: bytes) -> None:
        """Replace labels[start:start+len(raw)] with the characters the bytes spell."""
        pos = 0
        while pos < len(raw):
            lead = raw[pos]
            width = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
            chunk = raw[pos : pos + width]
            char = chunk.decode("utf-8", errors="replace")
            for k in range(len(chunk)):
                labels[start + pos + k] = char if k == 0 else f"·{char}"
            pos += len(chunk)
