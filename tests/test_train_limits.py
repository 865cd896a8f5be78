"""``demo_core.train`` stops cleanly at --time-limit and still exports the best epoch.

The config is a tiny character-level date normaliser: the ``dates`` data set is generated, so
these tests need no files from ../shared/data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from demo_core.card import ModelCard
from demo_core.training import loop as train
from tests.tiny import TINY_RNN, TINY_TRANSFORMER

# Char vocabularies hold 256 byte-fallback pieces and 4 specials besides the characters.
TINY_DATES = {
    "id": "tiny-dates",
    "task": "normalisation",
    "dataset": "dates",
    "dataset_options": {"train": 120, "valid": 20, "test": 20, "seed": 1},
    "splits": {"train": "train", "valid": "valid", "test": "test"},
    "source_lang": "mul",
    "target_lang": "iso8601",
    "metric": "exact",
    "architecture": "rnn",
    "model": dict(TINY_RNN, attention="additive"),
    "tokenizer": {"joint": False, "source_vocab": 400, "target_vocab": 280, "model_type": "char"},
    "training": {"max_tokens": 2000, "warmup_steps": 10, "max_epochs": 5, "patience": 5},
}


@pytest.fixture()
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-dates.json"
    path.write_text(json.dumps(TINY_DATES))
    return path


def run_train(config: Path, tmp_path: Path, *flags: str) -> tuple[dict, Path]:
    """Train with ``flags`` into tmp_path; returns the run's state.json and the exported folder."""
    run_dir, export_root = tmp_path / "run", tmp_path / "export"
    train.main([str(config), "--run-dir", str(run_dir), "--export-root", str(export_root), "--device", "cpu",
                "--threads", "1", "--limit", "60", *flags])
    return json.loads((run_dir / "state.json").read_text()), export_root / "tiny-dates"


def test_tiny_time_limit_stops_after_first_epoch_and_exports(tiny_config, tmp_path, capsys):
    """A limit shorter than one epoch ends training after epoch 1, says why, and exports that epoch."""
    state, exported = run_train(tiny_config, tmp_path, "--time-limit", "0.0001")
    assert state["epoch"] == 1 and state["best_epoch"] == 1
    assert "stopped by the time limit" in capsys.readouterr().err
    assert {"config.json", "model.safetensors", "metrics.json", "train_log.csv"} <= {p.name for p in exported.iterdir()}
    assert len((exported / "train_log.csv").read_text().splitlines()) == 2  # header + epoch 1


def test_generous_time_limit_changes_nothing(tiny_config, tmp_path, capsys):
    """With an hour to spare, training runs to --max-epochs as it would without the flag."""
    state, exported = run_train(tiny_config, tmp_path, "--time-limit", "60", "--max-epochs", "2")
    assert state["epoch"] == 2
    assert "time limit" not in capsys.readouterr().err
    assert (exported / "model.safetensors").is_file()


def test_time_limit_is_not_blamed_when_the_epoch_cap_ends_training(tiny_config, tmp_path, capsys):
    """At the last allowed epoch training ends by the cap, and the log says nothing about time."""
    state, _ = run_train(tiny_config, tmp_path, "--time-limit", "0.0001", "--max-epochs", "1")
    assert state["epoch"] == 1
    assert "time limit" not in capsys.readouterr().err


def test_stop_at_ends_training_once_the_metric_is_reached(tiny_config, tmp_path):
    """``stop_at`` 0 is reached by any first epoch: training ends there instead of at max_epochs."""
    config = json.loads(tiny_config.read_text())
    config["training"]["stop_at"] = 0.0
    tiny_config.write_text(json.dumps(config))
    state, exported = run_train(tiny_config, tmp_path)
    assert state["epoch"] == 1 and exported.is_dir()
    config["training"]["stop_at"] = 101.0  # unreachable: all 5 epochs run
    tiny_config.write_text(json.dumps(config))
    state, _ = run_train(tiny_config, tmp_path / "again")
    assert state["epoch"] == 5


@pytest.mark.parametrize("flags", [(), ("--fp32",)], ids=["default", "fp32"])
def test_precision_is_recorded_and_fp32_turns_autocast_off(tiny_config, tmp_path, capsys, flags):
    """On a CPU with native bf16 the default trains under bf16 autocast, --fp32 never does; metrics.json says which."""
    _, exported = run_train(tiny_config, tmp_path, "--max-epochs", "1", *flags)
    metrics = json.loads((exported / "metrics.json").read_text())
    autocast = train.cpu_has_bf16() and not flags
    assert metrics["training_precision"] == ("bf16 autocast, fp32 weights" if autocast else "fp32")
    assert ("bf16 autocast" in capsys.readouterr().err) == autocast


def test_transformer_with_shared_embeddings_saves_and_resumes(tiny_config, tmp_path):
    """A Transformer whose source, target and output share one table (joint vocabulary) writes its
    resumable state every epoch and resumes from it (safetensors refuses shared memory)."""
    config = json.loads(tiny_config.read_text())
    config["architecture"] = "transformer"
    config["model"] = dict(TINY_TRANSFORMER, share_embeddings=True)
    config["tokenizer"] = {"joint": True, "vocab_size": 400, "model_type": "char"}
    tiny_config.write_text(json.dumps(config))
    state, exported = run_train(tiny_config, tmp_path, "--max-epochs", "1")
    assert state["epoch"] == 1 and (exported / "model.safetensors").is_file()
    state, _ = run_train(tiny_config, tmp_path, "--max-epochs", "2")  # resumes from epoch 1
    assert state["epoch"] == 2


def test_plateau_factor_lowers_the_learning_rate_after_an_epoch_without_progress(tiny_config, tmp_path):
    """With no learning at all the second epoch cannot beat the first: the rate is then halved for epoch 3."""
    config = json.loads(tiny_config.read_text())
    config["training"].update(lr=1e-12, warmup_steps=1, plateau_factor=0.5)
    tiny_config.write_text(json.dumps(config))
    state, exported = run_train(tiny_config, tmp_path, "--max-epochs", "3")
    assert state["best_epoch"] == 1 and state["bad_epochs"] == 2 and state["lr_scale"] == 0.25
    rows = (exported / "train_log.csv").read_text().splitlines()[1:]
    lrs = [float(row.split(",")[5]) for row in rows]
    steps = [int(row.split(",")[1]) for row in rows]
    expected = [1e-12 * (1 / s) ** 0.5 * scale for s, scale in zip(steps, (1.0, 1.0, 0.5), strict=True)]
    assert lrs == pytest.approx(expected, rel=0.01, abs=0)


def test_rerun_with_the_same_best_epoch_refreshes_the_card_and_keeps_measured_metrics(tiny_config, tmp_path, capsys):
    """Re-running a finished run (e.g. with --max-epochs to ship it) must not throw away the test
    numbers ``evaluate`` stored, and the shipped card's examples follow the config as edited since."""
    _, exported = run_train(tiny_config, tmp_path, "--max-epochs", "1")
    metrics = json.loads((exported / "metrics.json").read_text())
    metrics["test"] = {"exact": 12.5, "command": "python -m demo_core.evaluate --model tiny-dates --split test"}
    (exported / "metrics.json").write_text(json.dumps(metrics))
    config = json.loads(tiny_config.read_text())
    config["examples"], config["example_notes"] = ["4 March 2021"], ["A day, a month, a year."]
    tiny_config.write_text(json.dumps(config))
    state, exported = run_train(tiny_config, tmp_path, "--max-epochs", "1")
    assert state["epoch"] == 1
    assert json.loads((exported / "metrics.json").read_text())["test"]["exact"] == 12.5
    card = ModelCard.read(exported / "config.json")
    assert card.examples == ("4 March 2021",) and card.example_notes == ("A day, a month, a year.",)
    assert "metrics.json kept" in capsys.readouterr().err


def test_export_last_ships_the_latest_epoch_not_the_best(tiny_config, tmp_path, capsys):
    """Three steps of training leave the tiny model at 0% exact match, so epoch 1 stays the best
    while the weights move on: ``--export last`` ships epoch 3's weights (those of the resumable
    state), scored on validation again, and says so."""
    from safetensors.torch import load_file

    state, exported = run_train(tiny_config, tmp_path, "--max-epochs", "3", "--export", "last")
    metrics = json.loads((exported / "metrics.json").read_text())
    assert state["epoch"] == 3 and state["best_epoch"] == 1
    assert metrics["best_epoch"] == 3 and metrics["epochs_trained"] == 3 and "exact_match" in metrics["valid"]
    assert "epoch 3 (last)" in capsys.readouterr().err
    shipped, latest = load_file(str(exported / "model.safetensors")), load_file(str(tmp_path / "run" / "state.safetensors"))
    best = load_file(str(tmp_path / "run" / "best" / "model.safetensors"))
    assert any(not torch.equal(shipped[name], best[name]) for name in shipped)
    for name, tensor in shipped.items():
        torch.testing.assert_close(tensor.float(), latest[f"model.{name}"].half().float())


def test_card_text_edited_during_a_run_reaches_the_export(tiny_config, tmp_path, monkeypatch):
    """Examples written into the config while a run is going (here: during its validation) are
    in the shipped card at the end; the model section of the card stays the one that was trained."""
    measure = train.evaluate_valid

    def edit_then_measure(*args, **kwargs):
        config = json.loads(tiny_config.read_text())
        config["examples"], config["model"] = ["1 May 1990"], dict(config["model"], enc_hidden=TINY_RNN["enc_hidden"] + 1)
        tiny_config.write_text(json.dumps(config))
        return measure(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate_valid", edit_then_measure)
    _, exported = run_train(tiny_config, tmp_path, "--max-epochs", "1")
    card = ModelCard.read(exported / "config.json")
    assert card.examples == ("1 May 1990",) and card.model["enc_hidden"] == TINY_RNN["enc_hidden"]


def test_average_last_keeps_n_snapshots_and_ships_their_mean_only_when_it_scores_higher(tiny_config, tmp_path, capsys,
                                                                                        monkeypatch):
    """With ``average_last`` 2 the run keeps the last two epochs' weights. At the end their mean is
    scored on validation: shipped (and named in metrics.json) when it beats the best epoch, and
    the best epoch shipped otherwise."""
    from safetensors.torch import load_file

    config = json.loads(tiny_config.read_text())
    config["training"]["average_last"] = 2
    tiny_config.write_text(json.dumps(config))
    scores = iter([10.0, 20.0, 30.0, 99.0])  # epochs 1-3, then the mean of epochs 2-3
    real = train.evaluate_valid
    monkeypatch.setattr(train, "evaluate_valid", lambda *a, **k: (next(scores), real(*a, **k)[1]))
    state, exported = run_train(tiny_config, tmp_path, "--max-epochs", "3")
    run_dir = tmp_path / "run"
    assert sorted(p.name for p in (run_dir / "epochs").iterdir()) == ["2.safetensors", "3.safetensors"]
    metrics = json.loads((exported / "metrics.json").read_text())
    assert state["best_epoch"] == 3 and metrics["averaged_epochs"] == [2, 3] and metrics["best_epoch"] == 3
    assert "the mean of epochs 2-3 scores 99.00" in capsys.readouterr().err
    two, three = (load_file(str(run_dir / "epochs" / f"{e}.safetensors")) for e in (2, 3))
    shipped = load_file(str(exported / "model.safetensors"))
    assert any(not torch.equal(two[name], three[name]) for name in shipped)
    for name, tensor in shipped.items():
        torch.testing.assert_close(tensor.float(), ((two[name] + three[name]) / 2).half().float())

    scores = iter([5.0])  # the re-run scores the same mean lower than the best epoch's 30: epoch 3 ships
    state, exported = run_train(tiny_config, tmp_path, "--max-epochs", "3")
    metrics = json.loads((exported / "metrics.json").read_text())
    assert "averaged_epochs" not in metrics and metrics["best_epoch"] == 3
    for name, tensor in load_file(str(exported / "model.safetensors")).items():
        torch.testing.assert_close(tensor.float(), three[name].half().float())
