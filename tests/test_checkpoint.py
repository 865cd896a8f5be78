"""Checkpoints: safetensors + JSON round trip, fp16 storage, clear errors for broken folders."""

import json
import shutil

import pytest
import torch
from safetensors import safe_open

from demo_core.checkpoint import CheckpointError, find_models, load_model_dir
from demo_core.decoding.search import DecodeConfig
from demo_core.pipeline import InputError, ModelRegistry, Translator


def test_round_trip_gives_identical_outputs(tiny_model_dir, tmp_path):
    """Saving a loaded model and loading it again changes no output."""
    card, model, src_tok, tgt_tok = load_model_dir(tiny_model_dir)
    from demo_core.checkpoint import save_checkpoint

    save_checkpoint(model, tmp_path / "copy", card, {card["tokenizer"]["source"]: src_tok.path})
    a = Translator.from_dir(tiny_model_dir).run("zwei kinder spielen", DecodeConfig(strategy="beam", beam_size=3))
    b = Translator.from_dir(tmp_path / "copy").run("zwei kinder spielen", DecodeConfig(strategy="beam", beam_size=3))
    assert [h.ids for h in a.hypotheses] == [h.ids for h in b.hypotheses]
    assert torch.equal(a.best.attention, b.best.attention)


def test_weights_are_stored_in_fp16(tiny_model_dir):
    """Every floating tensor in model.safetensors is fp16."""
    with safe_open(str(tiny_model_dir / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}


def broken_copy(tiny_model_dir, tmp_path, name):
    folder = tmp_path / "root" / name
    shutil.copytree(tiny_model_dir, folder)
    card = json.loads((folder / "config.json").read_text())
    card["id"] = name
    (folder / "config.json").write_text(json.dumps(card))
    return folder


def test_broken_folders_are_listed_as_unavailable_with_reason(tiny_model_dir, tmp_path):
    """A missing weight file, bad JSON or corrupt weights make that model unavailable, not the app."""
    ok = broken_copy(tiny_model_dir, tmp_path, "ok")
    missing = broken_copy(tiny_model_dir, tmp_path, "missing")
    (missing / "model.safetensors").unlink()
    bad_json = broken_copy(tiny_model_dir, tmp_path, "bad-json")
    (bad_json / "config.json").write_text("{not json")
    corrupt = broken_copy(tiny_model_dir, tmp_path, "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 100)
    entries = {e.id: e for e in find_models(ok.parent)}
    assert entries["ok"].available
    assert "model.safetensors" in entries["missing"].error
    assert "not valid JSON" in entries["bad-json"].error
    registry = ModelRegistry(ok.parent)
    with pytest.raises(InputError, match="corrupt is unavailable"):
        registry.get("corrupt")
    assert "corrupt" not in registry.available()
    assert registry.get("ok").run("ein hund", DecodeConfig()).best.pieces is not None
    with pytest.raises(CheckpointError):
        load_model_dir(corrupt)


def test_bad_input_gets_specific_messages(tiny_model_dir):
    """Empty, over-long and unknown-model requests raise InputError naming the problem."""
    translator = Translator.from_dir(tiny_model_dir)
    with pytest.raises(InputError, match="empty"):
        translator.run("   \n\t ", DecodeConfig())
    with pytest.raises(InputError, match="at most 40 tokens"):
        translator.run("hund " * 60, DecodeConfig())
    with pytest.raises(InputError, match="1000"):
        translator.run("a" * 1001, DecodeConfig())
    with pytest.raises(InputError, match="temperature"):
        translator.run("ein hund", DecodeConfig(strategy="sample", temperature=0))
    with pytest.raises(InputError, match="unknown model"):
        ModelRegistry(tiny_model_dir.parent).get("nope")


def test_result_json_has_attention_matching_tokens(tiny_model_dir):
    """The JSON result carries one attention row per output piece and one column per source piece."""
    result = Translator.from_dir(tiny_model_dir).run("zwei kinder 🐱 <b>", DecodeConfig(strategy="beam", beam_size=2))
    data = json.loads(json.dumps(result.to_json()))
    for hyp in data["hypotheses"]:
        attention = torch.tensor(hyp["attention"])
        assert attention.shape == (len(hyp["pieces"]), 1, 1, len(data["source_pieces"]))
        assert len(hyp["token_probs"]) == len(hyp["alternatives"]) == len(hyp["pieces"])
    assert data["beam_tree"][0]["parent"] is None


def test_same_weights_compares_tensors_not_bytes(tiny_model_dir, tmp_path):
    """Re-exporting unchanged weights must count as the same model (so shipping again refreshes
    only the card and keeps the measured metrics), whatever order the metadata is written in;
    one changed weight, or another metadata entry, must not."""
    from safetensors.torch import load_file, save_file

    from demo_core.training.loop import same_weights

    with safe_open(str(tiny_model_dir / "model.safetensors"), "pt") as f:
        metadata = f.metadata() or {}
    tensors = load_file(str(tiny_model_dir / "model.safetensors"))
    copy = tmp_path / "copy"
    copy.mkdir()
    save_file(tensors, str(copy / "model.safetensors"), metadata=dict(reversed(list(metadata.items()))) or None)
    assert same_weights(tiny_model_dir, copy)
    save_file(tensors, str(copy / "model.safetensors"), metadata={**metadata, "note": "x"})
    assert not same_weights(tiny_model_dir, copy)
    name = next(iter(tensors))
    flat = tensors[name].clone().flatten()
    flat[0] += 1
    save_file(dict(tensors, **{name: flat.view_as(tensors[name])}), str(copy / "model.safetensors"), metadata=metadata or None)
    assert not same_weights(tiny_model_dir, copy)
    assert not same_weights(tiny_model_dir, tmp_path / "missing")
