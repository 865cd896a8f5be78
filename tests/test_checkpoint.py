"""Checkpoints: safetensors + JSON round trip, fp16 storage, clear errors for broken folders."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from demo_core.checkpoint import CheckpointError, find_models, load_model_dir, save_checkpoint
from demo_core.decoding import DecodeConfig
from demo_core.pipeline import InputError, ModelRegistry, Translator
from demo_core.training.export import same_weights
from tests.tiny import copy_tiny_model, save_tiny_model


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_round_trip_gives_identical_outputs(tiny_model_dir, tmp_path, architecture):
    """Saving a loaded model and loading it again changes no output, attention or tied table (fp16 weights)."""
    if architecture == "rnn":
        first = tiny_model_dir
    else:  # source, target and output share one table
        first = save_tiny_model(tmp_path / "tiny-transformer", "transformer", model_config={"share_embeddings": True})
    card, model, src_tok, _ = load_model_dir(first)
    save_checkpoint(model, tmp_path / "copy", card, {card.tokenizer.source: src_tok.path})
    _, loaded, _, _ = load_model_dir(tmp_path / "copy")
    assert (loaded.src_embed.weight is loaded.tgt_embed.weight) == (architecture == "transformer")
    cfg = DecodeConfig(strategy="beam", beam_size=3)
    a = Translator.from_dir(first).run("zwei kinder spielen", cfg)
    b = Translator.from_dir(tmp_path / "copy").run("zwei kinder spielen", cfg)
    assert [h.ids for h in a.hypotheses] == [h.ids for h in b.hypotheses]
    assert torch.equal(a.best.attention, b.best.attention)


def test_weights_are_stored_in_fp16(tiny_model_dir):
    """Every floating tensor in model.safetensors is fp16."""
    with safe_open(str(tiny_model_dir / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (a safetensors file, not a dict) == {torch.float16}


def test_broken_folders_are_listed_as_unavailable_with_reason(tiny_model_dir, tmp_path):
    """A missing weight file, bad JSON, a card without its fields or corrupt weights make that model unavailable
    (a user-facing error naming the reason), not the app."""
    ok, missing, bad_json, empty_card, corrupt = (copy_tiny_model(tiny_model_dir, tmp_path / "root" / name)
                                                  for name in ("ok", "missing", "bad-json", "empty-card", "corrupt"))
    (missing / "model.safetensors").unlink()
    (bad_json / "config.json").write_text("{not json")
    (empty_card / "config.json").write_text("{}")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 100)
    entries = {e.id: e for e in find_models(ok.parent)}
    assert entries["ok"].available
    assert "model.safetensors" in entries["missing"].error
    assert "not valid JSON" in entries["bad-json"].error
    assert "missing field(s) 'id'" in entries["empty-card"].error
    registry = ModelRegistry(ok.parent)
    with pytest.raises(InputError, match="empty-card is unavailable: .*missing field"):
        registry.get("empty-card")
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
