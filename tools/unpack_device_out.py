"""Install the models a device run sent back: join parts, untar, check, move into checkpoints/.

    python tools/unpack_device_out.py /work/.device/<files_at> [/work/.device/<second fetch>] [--force]

Takes folders (or files) holding ``<id>.tar`` or ``<id>.tar.partNN``, from one call or several
(parts of one model may come back in two calls). Each model is extracted to a scratch folder
beside the target, loaded once as the app would load it, and only then moved to
``<checkpoints>/<id>/``. An existing model folder is kept unless ``--force``. Exits 1 if any
model was refused, incomplete or unreadable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from device_packing import MiB, group_packed, unpack

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_core.checkpoint import CheckpointError, load_model_dir, read_card, read_metrics  # noqa: E402


def packed_files(paths: list[Path]) -> list[Path]:
    """The files named, and the files directly inside the folders named."""
    out: list[Path] = []
    for path in paths:
        out += sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return out


def describe(model_dir: Path) -> str:
    """One line from metrics.json: the best epoch, its validation scores, training time, hardware, size."""
    m = read_metrics(model_dir)
    scores = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in m.get("valid", {}).items() if isinstance(v, (int, float)))
    size = sum(f.stat().st_size for f in model_dir.iterdir()) / MiB
    return (f"best epoch {m.get('best_epoch', '?')} ({scores}); {m.get('training_seconds', '?')} s of training "
            f"on {m.get('hardware', '?')}; {size:.1f} MiB")


def install(model_id: str, files: list[Path], root: Path, force: bool) -> bool:
    """Unpack one model into ``root/<model_id>``; prints what happened; False when it was not installed."""
    target = root / model_id
    if target.exists() and not force:
        print(f"{model_id}: refused, {target} exists (use --force to replace it)")
        return False
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".unpack-") as scratch:
        try:
            folder = unpack(files, model_id, Path(scratch))
            card = read_card(folder)
            if card.tokenizer is not None:  # a text model: its weights must load into its architecture
                load_model_dir(folder)
            elif not (folder / "model.safetensors").is_file():
                raise CheckpointError(f"{model_id}: model.safetensors is missing")
        except (ValueError, CheckpointError, OSError, RuntimeError) as exc:
            print(f"{model_id}: not installed: {exc}")
            return False
        if card.id != model_id:
            print(f"{model_id}: not installed: its config.json says id {card.id!r}")
            return False
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    print(f"{model_id}: installed in {target}: {describe(target)}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="fetched folders or files")
    parser.add_argument("--checkpoints", type=Path, default=Path(os.environ.get("S2S_CHECKPOINTS") or REPO / "checkpoints"),
                        help="where model folders go (default $S2S_CHECKPOINTS, else checkpoints/)")
    parser.add_argument("--force", action="store_true", help="replace model folders that already exist")
    args = parser.parse_args(argv)
    groups = group_packed(packed_files(args.paths))
    if not groups:
        print("no <id>.tar or <id>.tar.partNN files found")
        return 1
    results = [install(model_id, files, args.checkpoints, args.force) for model_id, files in groups.items()]
    print(json.dumps({"installed": [m for m, ok in zip(groups, results) if ok],
                      "not_installed": [m for m, ok in zip(groups, results) if not ok]}))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
