"""Pack model folders into files the device machine can hand back, and unpack them here.

The device tool returns at most 8 files from ``$OUT``, each under 16 MiB, 64 MiB in all. So a
model folder travels as ``<id>.tar`` (weights are fp16 already: no compression), cut into
``<id>.tar.part00``, ``.part01``, ... when it is over 15 MiB; one call's batch takes whole
models while they fit, and the rest wait on the machine for a second call (``--fetch``).
Used by ``tools/device_train.py`` there and ``tools/unpack_device_out.py`` here.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MiB = 1 << 20
PART_BYTES = 15 * MiB
MAX_FILES = 8
MAX_BYTES = 63 * MiB  # the limit is 64 MiB; one spare MiB for anything else in $OUT
PACKED_NAME = re.compile(r"^(?P<id>[A-Za-z0-9_.-]+?)\.tar(?:\.part(?P<part>\d{2,}))?$")


def file_size(path: Path) -> int:
    return path.stat().st_size


def pack(folder: Path, model_id: str, staging: Path, extra: dict[str, Path] | None = None) -> list[Path]:
    """Tar ``folder`` as ``<model_id>/`` into ``staging``; split it when over PART_BYTES.

    ``extra`` maps file names to files added inside the folder when it lacks them (the
    training log of a run that never reached its final export). Returns the files written.
    """
    staging.mkdir(parents=True, exist_ok=True)
    for old in staging.glob(f"{model_id}.tar*"):
        old.unlink()
    tar_path = staging / f"{model_id}.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(folder, arcname=model_id)
        for name, path in (extra or {}).items():
            if not (folder / name).exists() and path.exists():
                tar.add(path, arcname=f"{model_id}/{name}")
    if tar_path.stat().st_size <= PART_BYTES:
        return [tar_path]
    parts = []
    with tar_path.open("rb") as whole:
        while chunk := whole.read(PART_BYTES):
            parts.append(staging / f"{model_id}.tar.part{len(parts):02d}")
            parts[-1].write_bytes(chunk)
    tar_path.unlink()
    return parts


def group_packed(paths: list[Path]) -> dict[str, list[Path]]:
    """Packed files by model id, parts in order; names that are not ours are left out."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in paths:
        match = PACKED_NAME.match(path.name)
        if match:
            groups.setdefault(match["id"], []).append((int(match["part"] or -1), path))
    return {mid: [p for _, p in sorted(files)] for mid, files in sorted(groups.items())}


def plan_batch(groups: dict[str, list[T]], size: Callable[[T], int] = file_size,
               used_files: int = 0, used_bytes: int = 0) -> list[T]:
    """The files of one return trip: whole models in order while they fit, skipping those that don't.

    A model too big for any single trip goes part by part instead. ``size`` gives a file's bytes
    (a stand-in for files not written yet, when planning ahead).
    """
    units: list[list[T]] = []
    for files in groups.values():
        whole_fits = len(files) <= MAX_FILES and sum(map(size, files)) <= MAX_BYTES
        units += [files] if whole_fits else [[f] for f in files]
    chosen: list[T] = []
    for unit in units:
        unit_bytes = sum(map(size, unit))
        if used_files + len(unit) <= MAX_FILES and used_bytes + unit_bytes <= MAX_BYTES:
            chosen += unit
            used_files, used_bytes = used_files + len(unit), used_bytes + unit_bytes
    return chosen


def count_trips(model_bytes: dict[str, int]) -> int:
    """How many return trips models of these packed sizes would take."""
    parts = {mid: [(mid, start, min(PART_BYTES, n - start)) for start in range(0, n, PART_BYTES)] if n > PART_BYTES
             else [(mid, 0, n)] for mid, n in model_bytes.items()}
    trips = 0
    while any(parts.values()):
        batch = plan_batch(parts, size=lambda part: part[2])
        parts = {mid: [p for p in ps if p not in batch] for mid, ps in parts.items()}
        trips += 1
    return trips


def move_batch(staging: Path, out: Path) -> tuple[list[Path], list[Path]]:
    """Move one trip's worth of packed files from ``staging`` to ``out``; returns (moved, left)."""
    out.mkdir(parents=True, exist_ok=True)
    present = [p for p in out.iterdir() if p.is_file()]
    groups = group_packed(sorted(staging.glob("*.tar*"))) if staging.is_dir() else {}
    batch = plan_batch(groups, used_files=len(present), used_bytes=sum(map(file_size, present)))
    moved = [Path(shutil.move(str(f), str(out / f.name))) for f in batch]
    left = [f for files in groups.values() for f in files if f not in batch]
    return moved, left


def unpack(files: list[Path], model_id: str, into: Path) -> Path:
    """Join ``files`` (one model's tar or its parts, in order) and extract them under ``into``.

    Raises ``ValueError`` when a part is missing or the archive holds anything outside ``<model_id>/``.
    """
    numbers = [PACKED_NAME.match(f.name)["part"] for f in files]
    if len(files) > 1 and [int(n or -1) for n in numbers] != list(range(len(files))):
        raise ValueError(f"{model_id}: parts missing (have {', '.join(f.name for f in files)})")
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / f"{model_id}.tar"
        with joined.open("wb") as out:
            for part in files:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out)
        try:
            with tarfile.open(joined) as tar:
                names = tar.getnames()
                if any(n != model_id and not n.startswith(f"{model_id}/") for n in names):
                    raise ValueError(f"{model_id}: archive holds files outside {model_id}/")
                tar.extractall(into, filter="data")
        except tarfile.TarError as exc:
            raise ValueError(f"{model_id}: incomplete or damaged archive ({len(files)} file(s)): {exc}") from exc
    return into / model_id
