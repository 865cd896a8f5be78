"""Packing models for the device machine's return trip, and installing them back here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import device_packing as packing

REPO = Path(__file__).resolve().parent.parent
RECORD = 10240  # tar files grow in records of this size: one holds a folder with a file under ~8.5 KB


@pytest.fixture()
def small_parts(monkeypatch):
    """Parts of one tar record (10 KiB) and trips of 3 files / 3 records, so tiny folders exercise every rule."""
    monkeypatch.setattr(packing, "PART_BYTES", RECORD)
    monkeypatch.setattr(packing, "MAX_FILES", 3)
    monkeypatch.setattr(packing, "MAX_BYTES", 3 * RECORD)


def model_folder(root: Path, model_id: str, n_bytes: int) -> Path:
    folder = root / model_id
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(os.urandom(n_bytes))
    return folder


def test_split_parts_join_back_to_the_same_files(tmp_path, small_parts):
    """A folder over PART_BYTES becomes numbered parts that unpack to identical files."""
    folder = model_folder(tmp_path / "src", "m", 15000)
    files = packing.pack(folder, "m", tmp_path / "staging", {"train_log.csv": tmp_path / "absent.csv"})
    assert [f.name for f in files] == ["m.tar.part00", "m.tar.part01"]
    restored = packing.unpack(packing.group_packed(files[::-1])["m"], "m", tmp_path / "back")
    assert (restored / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


def test_a_missing_part_is_refused(tmp_path, small_parts):
    """Joining parts 00 and 02 without 01 raises instead of extracting half a model."""
    files = packing.pack(model_folder(tmp_path / "src", "m", 25000), "m", tmp_path / "staging")  # 3 parts
    with pytest.raises(ValueError, match="parts missing"):
        packing.unpack([files[0], files[2]], "m", tmp_path / "back")


def test_trips_take_whole_models_within_the_limits(tmp_path, small_parts):
    """Each trip stays within the file and byte limits, keeps models whole, and the rest follow."""
    staging, out = tmp_path / "staging", tmp_path / "out"
    for model_id, size in (("a", 15000), ("b", 15000), ("c", 500)):  # a and b: 2 parts each; c: one tar
        packing.pack(model_folder(tmp_path / "src", model_id, size), model_id, staging)
    first, left = packing.move_batch(staging, out)
    assert [f.name for f in first] == ["a.tar.part00", "a.tar.part01", "c.tar"]  # b's 2 parts would make 4 files
    assert [f.name for f in left] == ["b.tar.part00", "b.tar.part01"]
    for f in first:
        f.unlink()  # the device tool empties $OUT before the next call
    second, left = packing.move_batch(staging, out)
    assert [f.name for f in second] == ["b.tar.part00", "b.tar.part01"] and not left
    assert packing.count_trips({"a": 2 * RECORD, "b": 2 * RECORD, "c": RECORD}) == 2


def test_unpack_tool_installs_then_refuses_to_overwrite(tmp_path, tiny_model_dir):
    """unpack_device_out installs a servable model, refuses a second copy, and replaces it with --force."""
    packing.pack(tiny_model_dir, "tiny-rnn", tmp_path / "fetched")
    root = tmp_path / "checkpoints"

    def unpack_tool(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "tools" / "unpack_device_out.py"), str(tmp_path / "fetched"),
                               "--checkpoints", str(root), *flags], capture_output=True, text=True, timeout=120)

    first = unpack_tool()
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout.splitlines()[-1])["installed"] == ["tiny-rnn"]
    assert (root / "tiny-rnn" / "model.safetensors").is_file()
    again = unpack_tool()
    assert again.returncode == 1 and "refused" in again.stdout
    assert unpack_tool("--force").returncode == 0
