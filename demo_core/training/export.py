"""From a trained model to a shipped folder: card, fp16 weights, metrics with provenance.

``export`` writes a servable folder (``demo_core.checkpoint.save_checkpoint``) whose
metrics.json records the validation scores, parameter count, training time, hardware, date,
commit and training command. ``ship`` copies the chosen export to ``checkpoints/<id>/``.
"""

from __future__ import annotations

import datetime as dt
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from demo_core.card import ModelCard
from demo_core.checkpoint import save_checkpoint
from demo_core.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """The repository's current commit, recorded with every export."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays
    (docs/SPEED.md, ``python benchmarks/bench_training.py``); elsewhere bf16 would be emulated."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def hardware(device: torch.device) -> str:
    """The device in words, for metrics.json (CPU model and threads, or the GPU's name)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        name = names[0] if names else name
    return f"CPU: {name}, {torch.get_num_threads()} thread(s)"


CARD_TEXT = ("display_name", "description", "task_label", "group", "menu_order", "examples", "example_notes", "data",
             "decode_defaults")  # what a card may say differently after training: words for the reader, defaults


def ship(folder: Path, target: Path, card: ModelCard, log_path: Path, label: str) -> None:
    """Copy the exported ``folder`` to ``target`` with ``card`` as its config.json and the whole
    training curve.

    The card's words come from the config file as it is when training ends, since a long run
    may see it edited. When ``target`` holds the same weights already, only its card is
    replaced: the metrics ``evaluate`` measured on those weights stay.
    """
    card.write(folder / "config.json")
    if same_weights(folder, target):
        shutil.copyfile(folder / "config.json", target / "config.json")
        print(f"{label} is already in {target}: its card was refreshed, its metrics.json kept", file=sys.stderr)
        return
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    shutil.copyfile(log_path, target / "train_log.csv")
    print(f"exported {label} to {target}", file=sys.stderr)


def same_weights(a: Path, b: Path) -> bool:
    """True when folders a and b hold model.safetensors files with the same tensors and metadata.

    Tensors and metadata are compared, not bytes: safetensors writes the metadata's keys in an
    order that changes from one process to the next, so two exports of the same weights can
    differ byte for byte."""
    fa, fb = a / "model.safetensors", b / "model.safetensors"
    if not (fa.is_file() and fb.is_file()):
        return False
    with safe_open(str(fa), "pt") as x, safe_open(str(fb), "pt") as y:
        if x.metadata() != y.metadata() or set(x.keys()) != set(y.keys()):
            return False
        for key in x.keys():  # noqa: SIM118 (a safetensors handle, not a dict: keys() is its API)
            ta, tb = x.get_tensor(key), y.get_tensor(key)
            if ta.dtype != tb.dtype or not torch.equal(ta, tb):
                return False
    return True


def export(model: torch.nn.Module, out_dir: Path, cfg: TrainConfig, model_cfg: dict[str, Any], tok_files: dict[str, str],
           run_dir: Path, info: dict[str, Any], n_params: int, device: torch.device, amp: bool = False) -> None:
    """Write ``model`` as a servable folder with its card and the validation metrics of ``info``."""
    metrics = {
        "valid": {"split": cfg.card.split("valid", "val"), "decoding": "greedy", **info.get("best_values", {})},
        "parameters": n_params,
        "epochs_trained": info["epoch"],
        "best_epoch": info["best_epoch"],
        **({"averaged_epochs": info["averaged_epochs"]} if "averaged_epochs" in info else {}),
        "training_seconds": round(info["train_seconds"], 1),
        "hardware": hardware(device),
        "training_precision": "bf16 autocast, fp32 weights" if amp else "fp32",
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "train_command": f"python -m demo_core.train configs/{cfg.id}.json --data-dir ../shared/data",
    }
    save_checkpoint(model, out_dir, cfg.shipped_card(model_cfg, tok_files),
                    {name: run_dir / name for name in set(tok_files.values())}, metrics)
