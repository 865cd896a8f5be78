"""Shared fixtures: toy models trained once per session, and a tiny servable model folder.

The models, cards and tokenizers themselves come from ``tests/tiny.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from demo_core.tasks.toy import train_toy
from tests.tiny import save_tiny_model, tiny_rnn

torch.set_num_threads(1)  # tiny models: one thread is faster and stays fast on a busy machine


class ToyModels(dict):
    """RNNs trained on digit reversal, one per attention kind, each trained on first use."""

    def __missing__(self, kind: str) -> nn.Module:
        self[kind] = train_toy(tiny_rnn(kind, seed=0), steps=300)
        return self[kind]


@pytest.fixture(scope="session")
def toy_models() -> ToyModels:
    """RNNs trained on digit reversal (a few seconds each), trained on first use per attention kind."""
    return ToyModels()


@pytest.fixture(scope="session")
def toy_model(toy_models) -> nn.Module:
    """The additive-attention (Bahdanau) toy model."""
    return toy_models["additive"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A servable model folder ``tiny-rnn`` (card, fp16 weights, tokenizer) holding an untrained tiny RNN."""
    return save_tiny_model(tmp_path_factory.mktemp("checkpoints") / "tiny-rnn")
