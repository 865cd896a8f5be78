"""Save and load shipped models: safetensors weights + JSON card + SentencePiece files.

A model folder ``checkpoints/<id>/`` holds

* ``config.json``  - the model card (``demo_core.card.ModelCard``): id, task, languages,
  architecture, model config, tokenizer file names, examples, data credit, decoding defaults;
* ``model.safetensors`` - weights stored in fp16 (loaded back as fp32 for CPU inference);
* the tokenizer model(s) named in the card;
* ``metrics.json`` - measured metrics, parameter count, training time and hardware.

Only JSON and safetensors are read: no pickle, no ``torch.load``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from demo_core.card import CardError, ModelCard
from demo_core.models.registry import build_model
from demo_core.text.tokenizer import Tokenizer

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"


class CheckpointError(RuntimeError):
    """A model folder is missing a file or holds something unreadable."""


@dataclass(frozen=True)
class ModelEntry:
    """A folder under checkpoints/: its card (None if unreadable), and why it cannot be served if it cannot."""

    id: str
    path: Path
    card: ModelCard | None
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.error is None


def state_dict_fp16(model: nn.Module) -> dict[str, torch.Tensor]:
    """Floating tensors as contiguous fp16 copies (shared tensors stored once by name)."""
    out = {}
    for name, tensor in model.state_dict(keep_vars=False).items():
        t = tensor.detach().cpu()
        out[name] = (t.half() if t.is_floating_point() else t).contiguous().clone()
    return out


def save_checkpoint(
    model: nn.Module,
    out_dir: Path,
    card: ModelCard,
    tokenizer_files: dict[str, Path],
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a servable model folder. ``tokenizer_files`` maps card names to source files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = state_dict_fp16(model)
    # Tied modules appear under several names; safetensors stores each tensor once.
    seen: dict[int, str] = {}
    unique = {}
    for name, param in model.state_dict(keep_vars=True).items():
        if id(param) in seen:
            continue
        seen[id(param)] = name
        unique[name] = weights[name]
    save_file(unique, str(out_dir / "model.safetensors"), metadata={"format": "pt", "id": card.id})
    for target_name, source in tokenizer_files.items():
        if Path(source).resolve() != (out_dir / target_name).resolve():
            shutil.copyfile(source, out_dir / target_name)
    card.write(out_dir / "config.json")
    if metrics is not None:
        write_metrics(out_dir, metrics)
    return out_dir


def write_metrics(model_dir: Path, metrics: dict[str, Any]) -> None:
    (Path(model_dir) / "metrics.json").write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def read_metrics(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def read_card(model_dir: Path) -> ModelCard:
    """The card of a model folder; a bad one raises CheckpointError naming the folder and field."""
    model_dir = Path(model_dir)
    try:
        return ModelCard.read(model_dir / "config.json")
    except CardError as exc:
        raise CheckpointError(f"{model_dir.name}/{exc}") from exc


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights (any float dtype) into ``model``; shapes and names must match."""
    if not Path(path).exists():
        raise CheckpointError(f"{path} is missing")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    own = model.state_dict()
    for name, value in tensors.items():
        if name not in own:
            raise CheckpointError(f"{path}: unexpected tensor {name}")
        if own[name].shape != value.shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(value.shape)}, model wants {tuple(own[name].shape)}")
    result = model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=False)
    params = model.state_dict(keep_vars=True)
    loaded = {id(params[k]) for k in tensors}
    missing = [k for k in result.missing_keys if id(params[k]) not in loaded]  # tied copies are fine
    if missing:
        raise CheckpointError(f"{path}: missing tensors {missing}")


def load_model_dir(model_dir: Path) -> tuple[ModelCard, nn.Module, Tokenizer, Tokenizer]:
    """Card, eval-mode fp32 model, source and target tokenizers of one model folder."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if card.tokenizer is None:
        raise CheckpointError(f"{model_dir.name}/config.json: field 'tokenizer' is needed for a text model")
    try:
        model = build_model(card.architecture, card.model)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{model_dir.name}/config.json: bad model config: {exc}") from exc
    load_weights(model, model_dir / "model.safetensors")
    model.eval()
    tokenizers = []
    for side in ("source", "target"):
        name = getattr(card.tokenizer, side)
        path = model_dir / name
        if not path.exists():
            raise CheckpointError(f"{model_dir.name}: {side} tokenizer file {name!r} is missing")
        try:
            tokenizers.append(Tokenizer(path, getattr(card.tokenizer, f"{side}_normalizer")))
        except (RuntimeError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable SentencePiece model: {exc}") from exc
    return card, model, tokenizers[0], tokenizers[1]


def find_models(root: Path = DEFAULT_ROOT) -> list[ModelEntry]:
    """Every folder under ``root`` with a config.json; unreadable ones carry the reason.

    Only the card and the presence of files are checked here (cheap, at app start); the
    weights are read when a model is first used.
    """
    root = Path(root)
    entries = []
    if not root.is_dir():
        return entries
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (folder / "config.json").exists():
            continue
        try:
            card = read_card(folder)
        except CheckpointError as exc:
            entries.append(ModelEntry(folder.name, folder, None, str(exc)))
            continue
        tokenizer = [] if card.tokenizer is None else [card.tokenizer.source, card.tokenizer.target]
        absent = [n for n in ["model.safetensors", *tokenizer] if not (folder / n).is_file()]
        entries.append(ModelEntry(card.id, folder, card, f"missing file(s): {', '.join(absent)}" if absent else None))
    return entries
