"""Save and load shipped models: safetensors weights + JSON card + SentencePiece files.

A model folder ``checkpoints/<id>/`` holds

* ``config.json``  - the model card: id, task, languages, architecture, model config, tokenizer
  file names, examples, data licence and attribution, decoding defaults;
* ``model.safetensors`` - weights stored in fp16 (loaded back as fp32 for CPU inference);
* the tokenizer model(s) named in the card;
* ``metrics.json`` - measured metrics, parameter count, training time and hardware.

Only JSON and safetensors are read: no pickle, no ``torch.load``.
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from demo_core.models.registry import build_model
from demo_core.text.tokenizer import Tokenizer

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
REQUIRED_CARD_FIELDS = ("id", "task", "source_lang", "target_lang", "architecture", "model", "tokenizer")


class CheckpointError(RuntimeError):
    """A model folder is missing a file or holds something unreadable."""


@dataclass(frozen=True)
class ModelEntry:
    """A folder under checkpoints/: its card, and why it cannot be served if it cannot."""

    id: str
    path: Path
    card: dict[str, Any]
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
    card: dict[str, Any],
    tokenizer_files: dict[str, Path],
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a servable model folder. ``tokenizer_files`` maps card names to source files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [f for f in REQUIRED_CARD_FIELDS if f not in card]
    if missing:
        raise CheckpointError(f"model card lacks {missing}")
    weights = state_dict_fp16(model)
    # Tied modules appear under several names; safetensors stores each tensor once.
    seen: dict[int, str] = {}
    unique = {}
    for name, param in model.state_dict(keep_vars=True).items():
        if id(param) in seen:
            continue
        seen[id(param)] = name
        unique[name] = weights[name]
    save_file(unique, str(out_dir / "model.safetensors"), metadata={"format": "pt", "id": str(card["id"])})
    for target_name, source in tokenizer_files.items():
        if Path(source).resolve() != (out_dir / target_name).resolve():
            shutil.copyfile(source, out_dir / target_name)
    (out_dir / "config.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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


def read_card(model_dir: Path) -> dict[str, Any]:
    """The parsed config.json of a model folder, checked for required fields."""
    path = Path(model_dir) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{path} is missing")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    missing = [f for f in REQUIRED_CARD_FIELDS if f not in card]
    if missing:
        raise CheckpointError(f"{path} lacks fields {missing}")
    return card


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


def load_model_dir(model_dir: Path) -> tuple[dict[str, Any], nn.Module, Tokenizer, Tokenizer]:
    """Card, eval-mode fp32 model, source and target tokenizers of one model folder."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    try:
        model = build_model(card["architecture"], card["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{model_dir}/config.json: bad model config: {exc}") from exc
    load_weights(model, model_dir / "model.safetensors")
    model.eval()
    tokenizers = []
    for side in ("source", "target"):
        name = card["tokenizer"].get(side)
        path = model_dir / str(name)
        if not name or not path.exists():
            raise CheckpointError(f"{model_dir}: {side} tokenizer file {name!r} is missing")
        try:
            tokenizers.append(Tokenizer(path, card["tokenizer"].get(f"{side}_normalizer")))
        except (RuntimeError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable SentencePiece model: {exc}") from exc
    return card, model, tokenizers[0], tokenizers[1]


CPU_WEIGHTS = ("fp32", "fp16", "int8")
MIN_PACKED_WEIGHTS = 100_000  # a Linear layer with fewer weights stays fp32: see quantize_for_cpu


def quantize_for_cpu(model: nn.Module, weights: str = "fp16", min_packed: int = MIN_PACKED_WEIGHTS) -> nn.Module:
    """An inference-only copy of ``model`` whose Linear layers and tied output projection keep
    their weights in ``weights`` format: ``fp16`` or ``int8`` (``fp32`` returns ``model`` itself).

    Every decoding step reads every decoder weight once, so fewer bytes per weight make a large
    product faster (compare ``python benchmarks/bench_transformer.py --weights fp32`` and
    ``fp16``); the rest of a step's time is Python and per-operation overhead. A packed product
    also has a fixed cost of about 10 us a call, which outweighs the bytes it saves on a small
    layer: ``python benchmarks/bench_linear.py`` times both formats by layer size. So only
    layers with at least ``min_packed`` weights are packed (default 100,000: the output
    projections and the RNNs' larger layers; a width-128 Transformer's own projections, at most
    384 x 128, stay fp32 and take 4-6 instead of 13-15 us for one token).

    * ``fp16``: weights stored as float16 and widened to fp32 inside the matrix product
      (fbgemm), so the arithmetic stays fp32. Shipped weights are stored as fp16 already
      (``model.safetensors``), so this loses nothing: log-probs match the fp32 model to
      ~1e-5 (summation order), outputs are the same.
    * ``int8``: one scale per output row, and each input is quantised to 8 bits on the fly:
      a little faster still, but log-probabilities move (by up to 0.16 on reference tokens
      for de-en-rnn-bahdanau, whose BLEU on 200 test sentences stays within 0.2).

    Embedding lookups, layer norms, recurrent layers and attention stay fp32, and so do the
    recorded attention weights. A model that ties its output projection to ``tgt_embed``
    gets a packed copy of it in ``output_projection``; a Transformer also gets the fused
    decoding step of ``demo_core.transformer_fast`` (``pack_for_inference``). ``torch.ao.quantization`` is
    deprecated in favour of torchao (not a dependency here) but works in the pinned PyTorch;
    its deprecation warnings are silenced. The copy cannot be trained or saved.
    """
    if weights not in CPU_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(CPU_WEIGHTS)}, got {weights!r}")
    if weights == "fp32":
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_\w+.*deprecated", category=UserWarning)
        from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = float16_dynamic_qconfig if weights == "fp16" else per_channel_dynamic_qconfig
        model = copy.deepcopy(model).eval()
        if hasattr(model, "pack_for_inference"):
            model.pack_for_inference()  # fused decoder step (Transformer): fewer, larger products
        fused = getattr(model, "packed_decoder", None)
        if hasattr(model, "output_projection") and fused is None:
            vocab, dim = model.tgt_embed.weight.shape
            output = nn.Linear(dim, vocab)
            with torch.no_grad():
                output.weight.copy_(model.tgt_embed.weight)
                output.bias.copy_(model.output_bias)
            model.output_projection = output  # an nn.Linear, so quantize_dynamic converts it with the others
        large = {name: qconfig for name, module in model.named_modules()
                 if isinstance(module, nn.Linear) and module.weight.numel() >= min_packed}
        model = quantize_dynamic(model, large, inplace=True)
        if fused is not None:
            model.output_projection = model.packed_decoder.output  # one packed copy of the tied projection serves both paths
        return model


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
            needed = ["model.safetensors"] + [str(card["tokenizer"].get(s)) for s in ("source", "target")]
            absent = [n for n in needed if not (folder / n).is_file()]
            error = f"missing file(s): {', '.join(absent)}" if absent else None
            entries.append(ModelEntry(str(card["id"]), folder, card, error))
        except CheckpointError as exc:
            entries.append(ModelEntry(folder.name, folder, {"id": folder.name}, str(exc)))
    return entries
