"""Tokenisation: fixed special ids, any Unicode round-trips, one display label per token."""

import pytest

from demo_core.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, normalize_text, train_sentencepiece
from tests.tiny import synthetic_corpus


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    return train_sentencepiece(synthetic_corpus(), tmp_path_factory.mktemp("tok") / "t.model", vocab_size=320)


def test_special_ids_are_fixed(tok):
    """pad, unk, bos and eos are 0, 1, 2, 3 in every trained model."""
    assert (tok.sp.pad_id(), tok.sp.unk_id(), tok.sp.bos_id(), tok.sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


@pytest.mark.parametrize("text", ["猫が好き 🐱🚀", "Ελληνικά ünd Ärger",
                                  "tab\tand\x00control\x07chars", "<script>alert(1)</script>",
                                  "​zero‍width"])
def test_any_unicode_encodes_without_unknown_tokens(tok, text):
    """Unseen characters fall back to bytes: no exception, no unknown token, text survives the round trip."""
    ids = tok.encode(text)
    assert UNK_ID not in ids
    assert tok.decode(ids) == normalize_text(text)


def test_display_pieces_merge_bytes_into_characters(tok):
    """Byte pieces are shown as the character they spell, one label per token."""
    ids = tok.encode("猫")
    labels = tok.display_pieces(ids)
    assert len(labels) == len(ids)
    assert "猫" in labels
    assert not any(label.startswith("<0x") for label in labels)


def test_normalize_text_strips_controls_and_collapses_space():
    """Control characters vanish and runs of whitespace become one space."""
    assert normalize_text("  a\t\tb\n\x00c  ") == "a b c"
