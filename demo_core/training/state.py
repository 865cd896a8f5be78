"""Resumable training state: weights and Adam moments in safetensors, counters in JSON.

Every epoch writes ``<run-dir>/state.safetensors`` and ``state.json`` (atomically), so the
same training command resumes after an interruption. With ``average_last`` N > 1 each epoch
also keeps its weights in ``<run-dir>/epochs/`` (the last N only) for checkpoint averaging.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def save_state(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, info: dict[str, Any]) -> None:
    """Resumable state: weights and Adam moments (safetensors) + counters (JSON), written atomically.

    Tied weights (one embedding table for source, target and output) appear under several
    names in the state dict; safetensors refuses tensors that share memory, so each name
    gets its own copy (loading writes the same values back into the one shared table).
    """
    tensors = {f"model.{k}": v for k, v in model_tensors(model).items()}
    for idx, st in opt.state_dict()["state"].items():
        for name, value in st.items():
            tensors[f"opt.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous().clone()
    tmp = run_dir / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(run_dir / "state.safetensors")
    (run_dir / "state.json.tmp").write_text(json.dumps(info, indent=2))
    (run_dir / "state.json.tmp").replace(run_dir / "state.json")


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as separate CPU tensors (tied weights copied under each name)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def keep_snapshot(run_dir: Path, model: torch.nn.Module, epoch: int, keep: int) -> None:
    """Save ``epoch``'s fp32 weights to ``<run_dir>/epochs/<epoch>.safetensors`` and delete the
    snapshots of epochs before the last ``keep`` (``average_last``)."""
    folder = run_dir / "epochs"
    folder.mkdir(exist_ok=True)
    tmp = folder / f"{epoch}.safetensors.tmp"
    save_file(model_tensors(model), str(tmp))
    tmp.replace(folder / f"{epoch}.safetensors")
    for old in folder.glob("*.safetensors"):
        if old.stem.isdigit() and int(old.stem) <= epoch - keep:
            old.unlink()


def averaged_weights(run_dir: Path, epochs: list[int]) -> dict[str, torch.Tensor] | None:
    """The element-wise mean of the snapshots of ``epochs``; None when one of them is missing
    (a run that began before ``average_last`` was set, or resumed from an older state)."""
    paths = [run_dir / "epochs" / f"{e}.safetensors" for e in epochs]
    if not all(p.is_file() for p in paths):
        return None
    total = {k: v.double() for k, v in load_file(str(paths[0])).items()}
    for path in paths[1:]:
        for k, v in load_file(str(path)).items():
            total[k] += v.double()
    return {k: (v / len(paths)).float() for k, v in total.items()}


def load_state(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any] | None:
    if not (run_dir / "state.json").exists():
        return None
    tensors = load_file(str(run_dir / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state = opt.state_dict()
    states: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            states.setdefault(int(idx), {})[name] = value
    opt_state["state"] = states
    opt.load_state_dict(opt_state)
    return json.loads((run_dir / "state.json").read_text())
