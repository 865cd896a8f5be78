"""Damaged model folders and hostile input: listed or refused with a specific message, never a crash."""

from __future__ import annotations

import json
import re
import shutil
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_core.decoding import OPTIONS
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving.catalogue import default_model
from demo_core.serving.requests import prepare_request
from tests.tiny import copy_tiny_model


def damaged(tiny_model_dir: Path, root: Path, name: str, damage) -> ModelRegistry:
    """A registry over the healthy tiny model and a damaged copy of it called ``name``."""
    shutil.copytree(tiny_model_dir, root / tiny_model_dir.name)
    copy = copy_tiny_model(tiny_model_dir, root / name)
    damage(copy)
    return ModelRegistry(root)


def truncate(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def empty(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"")


def unknown_architecture(folder: Path) -> None:
    card = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(card, architecture="lstm-9000")))


def string_tokenizer(folder: Path) -> None:
    card = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(card, tokenizer="joint.spm.model")))


def unknown_field(folder: Path) -> None:
    card = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(card, colour="blue")))


@pytest.mark.parametrize("damage, reason", [
    (truncate, "truncated"),
    (empty, "empty or truncated (0 bytes)"),
    (unknown_architecture, "unknown architecture 'lstm-9000'"),
    (string_tokenizer, "field 'tokenizer' must hold a JSON object"),
    (unknown_field, "unknown field(s) 'colour'"),
])
def test_a_damaged_folder_is_listed_unavailable_with_its_reason(tiny_model_dir, tmp_path, damage, reason):
    """Each damage is found at startup, named in the model's error, and the healthy model stays the default."""
    registry = damaged(tiny_model_dir, tmp_path, "broken", damage)
    assert reason in (registry.error("broken") or "")
    assert str(tmp_path) not in registry.error("broken")  # no server paths in messages
    assert registry.available() == ["tiny-rnn"] and default_model(registry) == "tiny-rnn"


def test_a_copied_folder_with_the_same_id_never_replaces_the_original(tiny_model_dir, tmp_path):
    """A copy whose card keeps the original's id (and names an unknown architecture) cannot take its place."""
    shutil.copytree(tiny_model_dir, tmp_path / "tiny-rnn")
    shutil.copytree(tiny_model_dir, tmp_path / "aaa-copy")  # sorts first
    unknown_architecture(tmp_path / "aaa-copy")
    registry = ModelRegistry(tmp_path)
    assert "its card's id 'tiny-rnn' is the id of tiny-rnn/" in (registry.error("aaa-copy") or "")
    assert default_model(registry) == "tiny-rnn" and registry.get("tiny-rnn").id == "tiny-rnn"


def test_weights_changed_after_export_fail_the_hash_check_on_first_use(tiny_model_dir, tmp_path):
    """Flipping bytes inside a tensor keeps the header valid, but the SHA-256 in the card catches it."""
    def flip(folder: Path) -> None:
        data = bytearray((folder / "model.safetensors").read_bytes())
        data[-4:] = bytes(255 - b for b in data[-4:])
        (folder / "model.safetensors").write_bytes(bytes(data))

    registry = damaged(tiny_model_dir, tmp_path, "flipped", flip)
    assert "flipped" in registry.available()  # the header is fine: found only when loaded
    with pytest.raises(InputError, match="does not match the SHA-256"):
        registry.get("flipped")
    assert "flipped" not in registry.available()


def test_no_usable_model_means_no_default(tiny_model_dir, tmp_path):
    """With only damaged folders there is no default model to open the page with."""
    copy = copy_tiny_model(tiny_model_dir, tmp_path / "only")
    empty(copy)
    assert default_model(ModelRegistry(tmp_path)) is None


@pytest.mark.parametrize("text, message", [
    ("zwei \ud800 kinder", "unpaired surrogate character (U+D800) at position 6"),
    ("", "text is empty"),
    ("x" * 1001, "the limit is 1000"),
])
def test_unusable_text_gets_a_specific_message(tiny_model_dir, text, message):
    """Lone surrogates, empty and over-long text are refused before tokenising, naming the problem."""
    registry = ModelRegistry(tiny_model_dir.parent)
    with pytest.raises(InputError, match=re.escape(message)):
        prepare_request(registry, text, "tiny-rnn", {})


@pytest.mark.parametrize("option, value, message", [
    ("seed", 2**64, "seed must be between 0 and 9223372036854775807"),
    ("seed", -1, "seed must be between 0 and"),
    ("temperature", 1e-40, "temperature must be between 0.01 and 100"),
    ("top_p", 1e-46, "top_p must be between 0.01 and 1"),
    ("beam_size", "9" * 400, "(400 characters)"),
    ("top_k", "1e400", "top_k must be a whole number"),
])
def test_extreme_option_values_name_the_option(tiny_model_dir, option, value, message):
    """Values found by fuzzing the API get a message naming the option, cut to a readable length."""
    registry = ModelRegistry(tiny_model_dir.parent)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        prepare_request(registry, "zwei kinder", "tiny-rnn", {option: value})
    assert len(str(caught.value)) < 200


VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=30), st.sampled_from(["greedy", "beam", "sample", "", " 3 ", "1e3", "-0"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40), options=st.dictionaries(st.sampled_from([o.name for o in OPTIONS]), VALUES, max_size=4))
def test_any_text_and_option_values_give_a_result_or_a_message_naming_the_problem(tiny_model_dir, text, options):
    """For arbitrary Unicode text and arbitrary values of any API parameter, a request is accepted
    or refused with an InputError that names the bad parameter (or says what is wrong with the text)."""
    registry = ModelRegistry(tiny_model_dir.parent)
    try:
        prepare_request(registry, text, "tiny-rnn", options)
    except InputError as exc:
        message = str(exc)
        assert message.startswith(tuple(options) + ("text", "n_best")), message
        assert all(ch in string.printable or ord(ch) > 127 for ch in message)


def test_a_compare_refusal_names_the_side_and_its_model(tiny_model_dir):
    """When only one Compare side is wrong, the message says which side (and model) it is."""
    from demo_core.serving.requests import compare_request

    registry = ModelRegistry(tiny_model_dir.parent)
    with pytest.raises(InputError, match=re.escape("B (tiny-rnn): strategy must be one of")):
        compare_request(registry, "zwei kinder", "tiny-rnn", {"strategy": "greedy"}, "tiny-rnn", {"strategy": "bogus"})
