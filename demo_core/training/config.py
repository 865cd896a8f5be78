"""A training config (``configs/<id>.json``): the model card to ship, how to build the
tokenizers, and the training settings, each checked field by field.

The file holds the card's fields (``demo_core.card.ModelCard``; ``model`` without vocabulary
sizes, which come from the trained tokenizers) plus a ``tokenizer`` section
(:class:`TokenizerSpec`) and a ``training`` section (:class:`TrainSettings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from demo_core.card import CardError, ModelCard, TokenizerFiles, build_checked


@dataclass(frozen=True)
class TokenizerSpec:
    """How to train the SentencePiece model(s): one joint vocabulary or one per side."""

    joint: bool = False
    vocab_size: int | None = None  # joint vocabulary
    source_vocab: int | None = None  # separate vocabularies
    target_vocab: int | None = None
    model_type: str = "unigram"
    source_model_type: str | None = None  # per side, overriding model_type
    target_model_type: str | None = None
    character_coverage: float = 1.0
    source_normalizer: str | None = None  # demo_core.text.normalize names
    target_normalizer: str | None = None

    def side_vocab(self, side: str) -> int | None:
        return getattr(self, f"{side}_vocab")

    def side_model_type(self, side: str) -> str:
        return getattr(self, f"{side}_model_type") or self.model_type

    def files(self, source: str, target: str) -> TokenizerFiles:
        """The card's tokenizer entry once the files are written."""
        return TokenizerFiles(source, target, self.source_normalizer, self.target_normalizer)


@dataclass(frozen=True)
class TrainSettings:
    """The ``training`` section of a config."""

    max_tokens: int = 3000  # padded tokens per batch
    lr: float = 1e-3
    warmup_steps: int = 800
    max_epochs: int = 40
    patience: int = 6  # epochs without a better validation metric before stopping
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    weight_decay: float = 0.0
    seed: int = 1
    max_train_len: int = 100  # drop training pairs longer than this many tokens
    valid_max_len_a: float = 1.5
    stop_at: float | None = None  # stop once the validation metric reaches this (e.g. 100% exact match)
    plateau_factor: float = 1.0  # multiply the learning rate by this after each epoch that does not improve (1: never)
    average_last: int = 1  # at the end, also try the mean weights of the last N epochs (1: never)


@dataclass(frozen=True)
class TrainConfig:
    """One training config, parsed."""

    card: ModelCard  # model: the architecture config without vocabulary sizes; tokenizer: None
    tokenizer: TokenizerSpec
    training: TrainSettings = field(default_factory=TrainSettings)

    @property
    def id(self) -> str:
        return self.card.id

    def shipped_card(self, model: dict[str, Any], tokenizer_files: dict[str, str]) -> ModelCard:
        """The card shipped with the weights: the model config with its vocabulary sizes and
        the tokenizer files written for this run."""
        return replace(self.card, model=model, tokenizer=self.tokenizer.files(tokenizer_files["source"],
                                                                              tokenizer_files["target"]))

    @classmethod
    def read(cls, path: Path) -> "TrainConfig":
        """Parse ``path``; a missing, unknown or mistyped field raises ValueError naming the file and field."""
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the config: {exc}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"{path}: the config must be a JSON object")
        values = dict(values)
        try:
            tokenizer = build_checked(TokenizerSpec, values.pop("tokenizer", {}), f"{path}: section 'tokenizer'")
            training = build_checked(TrainSettings, values.pop("training", {}), f"{path}: section 'training'")
            card = ModelCard.from_json(values, str(path))
        except CardError as exc:
            raise ValueError(str(exc)) from exc
        if card.dataset is None:
            raise ValueError(f"{path}: config lacks 'dataset'")
        return cls(card, tokenizer, training)
