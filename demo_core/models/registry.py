"""Build a model from its architecture name and a plain config dict.

This is the one place that maps names to classes; decoding, evaluation and the app only
ever call ``encode`` / ``init_state`` / ``decode_step`` on what it returns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from demo_core.models.rnn import RNNConfig, RNNSeq2Seq
from demo_core.models.transformer import TransformerConfig, TransformerSeq2Seq
from demo_core.tts.model import Tacotron, TacotronConfig

ARCHITECTURES: dict[str, tuple[type, type]] = {
    "rnn": (RNNConfig, RNNSeq2Seq),
    "transformer": (TransformerConfig, TransformerSeq2Seq),
    "tacotron2-lsa": (TacotronConfig, Tacotron),  # speech synthesis: phones -> mel frames (demo_core.tts)
}


def build_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` with the fields of ``config`` (unknown fields are an error)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    config_cls, model_cls = ARCHITECTURES[architecture]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"{architecture} config has unknown fields: {sorted(unknown)}")
    return model_cls(config_cls(**config))


def count_parameters(model: nn.Module) -> int:
    """Distinct trainable parameters (tied tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
