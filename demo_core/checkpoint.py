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

import hashlib
import json
import shutil
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from demo_core.card import CardError, ModelCard
from demo_core.models.registry import ARCHITECTURES, build_model
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
    replace(card, weights_sha256=file_sha256(out_dir / "model.safetensors")).write(out_dir / "config.json")
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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_problem(path: Path) -> str | None:
    """None when ``path`` looks like a whole safetensors file, else what is wrong with it.

    Reads only the header (cheap enough for every folder at startup): the header must be
    JSON and the file exactly as long as the tensors it lists, so a truncated or empty file
    is caught before anyone asks the model for an output.
    """
    size = path.stat().st_size
    if size < 8:
        return f"{path.name} is empty or truncated ({size} bytes)"
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > size - 8:
            return f"{path.name} is truncated: its header alone needs {header_len:,} bytes"
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f"{path.name} is not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return f"{path.name} is not a safetensors file (its header is not a JSON object)"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f"{path.name} is {'truncated' if size < expected else 'longer than its tensors'}: {size:,} bytes, expected {expected:,}"
    return None


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights (any float dtype) into ``model``; shapes and names must match.

    Messages name the file as ``<folder>/<file>``, never a server path.
    """
    path = Path(path)
    where = f"{path.parent.name}/{path.name}"
    if not path.exists():
        raise CheckpointError(f"{where} is missing")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{where} is not a readable safetensors file: {exc}") from exc
    own = model.state_dict()
    for name, value in tensors.items():
        if name not in own:
            raise CheckpointError(f"{where}: unexpected tensor {name}")
        if own[name].shape != value.shape:
            raise CheckpointError(f"{where}: {name} has shape {tuple(value.shape)}, model wants {tuple(own[name].shape)}")
    result = model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=False)
    params = model.state_dict(keep_vars=True)
    loaded = {id(params[k]) for k in tensors}
    missing = [k for k in result.missing_keys if id(params[k]) not in loaded]  # tied copies are fine
    if missing:
        raise CheckpointError(f"{where}: missing tensors {missing}")


def verify_weights(model_dir: Path, card: ModelCard) -> None:
    """Raise CheckpointError when model.safetensors does not hash to the card's ``weights_sha256``."""
    if card.weights_sha256 is not None and file_sha256(model_dir / "model.safetensors") != card.weights_sha256:
        raise CheckpointError(f"{model_dir.name}/model.safetensors does not match the SHA-256 in its config.json "
                              "(changed or damaged since export)")


def load_model_dir(model_dir: Path) -> tuple[ModelCard, nn.Module, Tokenizer, Tokenizer]:
    """Card, eval-mode fp32 model, source and target tokenizers of one model folder."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    verify_weights(model_dir, card)
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
            raise CheckpointError(f"{model_dir.name}/{path.name} is not a readable SentencePiece model: {exc}") from exc
    return card, model, tokenizers[0], tokenizers[1]


def folder_problem(folder: Path, card: ModelCard) -> str | None:
    """Why a folder with a readable card cannot be served (None: it can), without loading it."""
    if card.architecture not in ARCHITECTURES:
        return f"unknown architecture {card.architecture!r} (known: {', '.join(sorted(ARCHITECTURES))})"
    tokenizer = [] if card.tokenizer is None else [card.tokenizer.source, card.tokenizer.target]
    absent = [n for n in dict.fromkeys(["model.safetensors", *tokenizer]) if not (folder / n).is_file()]
    if absent:
        return f"missing file(s): {', '.join(absent)}"
    try:
        return weights_problem(folder / "model.safetensors")
    except OSError as exc:
        return f"model.safetensors cannot be read: {exc.strerror}"


def find_models(root: Path = DEFAULT_ROOT) -> list[ModelEntry]:
    """Every folder under ``root`` with a config.json; unreadable ones carry the reason.

    The card, the files and the weights' safetensors header are checked here (cheap, at app
    start); the weights are read, and their SHA-256 checked, when a model is first used. One
    bad folder never stops the others from being listed.
    """
    root = Path(root)
    entries = []
    if not root.is_dir():
        return entries
    found: list[ModelEntry] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (folder / "config.json").exists():
            continue
        try:
            card = read_card(folder)
        except CheckpointError as exc:
            entries.append(ModelEntry(folder.name, folder, None, str(exc)))
            continue
        found.append(ModelEntry(card.id, folder, card, folder_problem(folder, card)))
    # Several folders with one id (a copied folder): the usable one whose folder is named after
    # the id keeps it, so a damaged copy never replaces the model it was copied from.
    for entry in sorted(found, key=lambda e: (not e.available, e.path.name != e.id, e.path.name)):
        owner = next((e for e in entries if e.card is not None and e.id == entry.id), None)
        if owner is None:
            entries.append(entry)
        else:
            entries.append(ModelEntry(entry.path.name, entry.path, None,
                                      f"its card's id {entry.id!r} is the id of {owner.path.name}/"))
    entries.sort(key=lambda e: e.path.name)
    return entries
