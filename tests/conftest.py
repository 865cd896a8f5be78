"""Shared fixtures: toy models trained once per session, and a tiny servable model folder."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from demo_core.checkpoint import save_checkpoint
from demo_core.models.registry import build_model
from demo_core.text.tokenizer import train_sentencepiece
from demo_core.tasks.toy import VOCAB, train_toy

torch.set_num_threads(1)  # tiny models: one thread is faster and stays fast on a busy machine

TINY_RNN = dict(emb_dim=32, enc_hidden=32, dec_hidden=64, attn_dim=32, dropout=0.0)


def tiny_rnn(attention: str = "additive", vocab: int = VOCAB, **overrides) -> torch.nn.Module:
    """An untrained RNN with tiny dimensions."""
    return build_model("rnn", dict(TINY_RNN, src_vocab=vocab, tgt_vocab=vocab, attention=attention, **overrides))


@pytest.fixture(scope="session")
def toy_models() -> "ToyModels":
    """RNNs trained on digit reversal (a few seconds each), trained on first use per attention kind."""
    return ToyModels()


class ToyModels(dict):
    def __missing__(self, kind: str) -> torch.nn.Module:
        self[kind] = train_toy(tiny_rnn(kind), steps=300)
        return self[kind]


@pytest.fixture(scope="session")
def toy_model(toy_models) -> torch.nn.Module:
    """The additive-attention (Bahdanau) toy model."""
    return toy_models["additive"]


def synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Sentences of made-up words, enough to train a small SentencePiece model."""
    rng = random.Random(seed)
    words = ["ein", "hund", "katze", "läuft", "über", "die", "straße", "zwei", "kinder", "spielen", "im", "schnee",
             "a", "dog", "cat", "runs", "across", "the", "street", "two", "children", "play", "in", "snow", "."]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A servable model folder (card, fp16 weights, tokenizers) holding an untrained tiny RNN."""
    root = tmp_path_factory.mktemp("checkpoints")
    work = tmp_path_factory.mktemp("spm")
    tok = train_sentencepiece(synthetic_corpus(), work / "joint.spm.model", vocab_size=320)
    model_cfg = dict(TINY_RNN, src_vocab=tok.vocab_size, tgt_vocab=tok.vocab_size, attention="additive")
    torch.manual_seed(0)
    model = build_model("rnn", model_cfg)
    card = {
        "id": "tiny-rnn", "display_name": "Tiny RNN", "task": "translation", "task_label": "Toy",
        "source_lang": "de", "target_lang": "en", "architecture": "rnn", "model": model_cfg,
        "tokenizer": {"source": "joint.spm.model", "target": "joint.spm.model"},
        "examples": ["zwei kinder spielen im schnee"], "max_source_tokens": 40,
    }
    save_checkpoint(model, root / "tiny-rnn", card, {"joint.spm.model": tok.path}, {"parameters": 0})
    return root / "tiny-rnn"
