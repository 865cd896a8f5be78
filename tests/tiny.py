"""Tiny models, tokenizers and model cards for the tests: every small model a test builds comes from here.

    from tests.tiny import TINY_RNN, tiny_rnn, tiny_transformer, tiny_card, save_tiny_model

* ``tiny_rnn(attention)`` / ``tiny_transformer()``: untrained models with tiny dimensions
  (``TINY_RNN``, ``TINY_TRANSFORMER``), seeded, so a test gets the same weights every run;
* ``tiny_card(**fields)``: a valid ``ModelCard`` of a toy German → English model, fields overridden;
* ``save_tiny_model(folder, architecture, **card_fields)``: a servable model folder (card, fp16
  weights, SentencePiece model trained once per process on ``synthetic_corpus()``);
* ``copy_tiny_model(folder, to, **card_fields)``: a copy of a folder whose card says something else;
* ``synthetic_corpus()``, ``shared_tokenizer()``, ``fp16_representable(model)``: the pieces of the above.

Nothing here is written inside the repository: the shared tokenizer lives in a temporary folder.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from demo_core.card import ModelCard
from demo_core.checkpoint import save_checkpoint
from demo_core.models.registry import build_model
from demo_core.tasks.toy import VOCAB
from demo_core.text.tokenizer import Tokenizer, train_sentencepiece

TINY_RNN = dict(emb_dim=32, enc_hidden=32, dec_hidden=64, attn_dim=32, dropout=0.0)
TINY_TRANSFORMER = dict(d_model=32, n_heads=4, enc_layers=2, dec_layers=2, d_ff=64, dropout=0.0, attention_dropout=0.0,
                        max_positions=128)
EXAMPLE = "zwei kinder spielen im schnee"  # the tiny card's example, in the synthetic corpus's words
JOINT_SPM = "joint.spm.model"


def tiny_rnn(attention: str = "additive", vocab: int = VOCAB, seed: int | None = None, **overrides: Any) -> nn.Module:
    """An untrained RNN with ``TINY_RNN`` dimensions (``seed``: seeded first; None: the caller's RNG state)."""
    if seed is not None:
        torch.manual_seed(seed)
    return build_model("rnn", {**TINY_RNN, "src_vocab": vocab, "tgt_vocab": vocab, "attention": attention, **overrides})


def tiny_transformer(vocab: int = VOCAB, seed: int = 0, **overrides: Any) -> nn.Module:
    """An untrained Transformer with ``TINY_TRANSFORMER`` dimensions (2 + 2 layers, 4 heads, d_model 32)."""
    torch.manual_seed(seed)
    return build_model("transformer", {**TINY_TRANSFORMER, "src_vocab": vocab, "tgt_vocab": vocab, **overrides})


def fp16_representable(model: nn.Module) -> nn.Module:
    """``model`` with every weight rounded to fp16 and back, as a shipped checkpoint holds them."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Sentences of made-up German and English words, enough to train a small SentencePiece model."""
    rng = random.Random(seed)
    words = ["ein", "hund", "katze", "läuft", "über", "die", "straße", "zwei", "kinder", "spielen", "im", "schnee",
             "a", "dog", "cat", "runs", "across", "the", "street", "two", "children", "play", "in", "snow", "."]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@functools.cache
def shared_tokenizer() -> Path:
    """A 320-piece SentencePiece model of ``synthetic_corpus()``, trained once per process in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="s2s-tiny-spm-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return train_sentencepiece(synthetic_corpus(), folder / JOINT_SPM, vocab_size=320).path


def _as_json(value: Any) -> Any:
    """A card field as config.json holds it (dataclasses as objects, tuples as lists)."""
    if dataclasses.is_dataclass(value):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    return list(value) if isinstance(value, tuple) else value


def tiny_card(**fields: Any) -> ModelCard:
    """A valid card of an untrained toy German → English RNN; ``fields`` replace or add card fields."""
    values = {
        "id": "tiny-rnn", "display_name": "Tiny RNN", "task": "translation", "task_label": "Toy",
        "source_lang": "de", "target_lang": "en", "architecture": "rnn",
        "model": dict(TINY_RNN, src_vocab=VOCAB, tgt_vocab=VOCAB, attention="additive"),
        "tokenizer": {"source": JOINT_SPM, "target": JOINT_SPM},
        "examples": [EXAMPLE], "max_source_tokens": 40,
    }
    values.update({name: _as_json(value) for name, value in fields.items()})
    return ModelCard.from_json(values, "tiny_card")


def save_tiny_model(folder: Path, architecture: str = "rnn", *, model: nn.Module | None = None,
                    model_config: dict[str, Any] | None = None, source_spm: Path | None = None,
                    target_spm: Path | None = None, **card_fields: Any) -> Path:
    """A servable model folder at ``folder``, whose name is the card's id; returns ``folder``.

    The model is ``model``, or an untrained ``tiny_rnn`` / ``tiny_transformer`` (seed 0, with the
    ``model_config`` overrides) sized to the tokenizers: ``source_spm`` / ``target_spm``, by
    default the shared tiny SentencePiece model for both sides. ``card_fields`` go to ``tiny_card``.
    """
    folder = Path(folder)
    source_spm = Path(source_spm or shared_tokenizer())
    target_spm = Path(target_spm or source_spm)
    if model is None:
        build = tiny_rnn if architecture == "rnn" else tiny_transformer
        model = build(vocab=Tokenizer(source_spm).vocab_size, tgt_vocab=Tokenizer(target_spm).vocab_size, seed=0,
                      **(model_config or {}))
    joint = source_spm == target_spm
    names = {"source": JOINT_SPM if joint else "source.spm.model", "target": JOINT_SPM if joint else "target.spm.model"}
    card = tiny_card(**{
        "id": folder.name, "display_name": f"Tiny {'RNN' if architecture == 'rnn' else 'Transformer'} (untrained)",
        "architecture": architecture, "model": dataclasses.asdict(model.cfg), "tokenizer": names, **card_fields,
    })
    files = {names["source"]: source_spm, names["target"]: target_spm}
    return save_checkpoint(model, folder, card, files)


def copy_tiny_model(folder: Path, to: Path, **card_fields: Any) -> Path:
    """A copy of the model folder ``folder`` at ``to`` whose card has id ``to.name`` and ``card_fields``."""
    shutil.copytree(folder, to)
    card = ModelCard.read(to / "config.json")
    values = {**card.to_json(), "id": to.name, **{name: _as_json(v) for name, v in card_fields.items()}}
    ModelCard.from_json(values, str(to)).write(to / "config.json")
    return to
