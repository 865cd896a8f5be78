"""The task and model menus: groups in a fixed order, German → English first, usable models first; model texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_core.pipeline import ModelRegistry
from demo_core.serving import catalogue
from demo_core.serving.explanations import explanation
from tests.tiny import EXAMPLE, copy_tiny_model, tiny_card

CARDS = {  # id: card fields laid over the tiny RNN's card
    "dates": dict(task="normalisation", task_label="Any written date → ISO 8601", group="Dates"),
    "zh-en": dict(task_label="Translate Chinese → English", group="Translation", menu_order=3),
    "g2p": dict(task="g2p", task_label="English spelling → pronunciation", group="Speech"),
    "de-en": dict(task_label="Translate German → English", group="Translation", menu_order=1),
    "summ": dict(task="summarisation", task_label="Shorten an English description", group="Summarisation"),
    "odd": dict(task_label="Something else", group="Experiments"),
}


def broken(root: Path) -> Path:
    """A model folder whose config.json is not JSON."""
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    return root / "broken"


def test_tasks_follow_the_group_order_and_menu_order(tiny_model_dir, tmp_path):
    """Tasks are listed by group (Translation, Speech, Summarisation, Dates, others), then by menu order; German →
    English comes first and is the default; unreadable models come last."""
    for model_id, fields in CARDS.items():
        copy_tiny_model(tiny_model_dir, tmp_path / model_id, **fields)
    broken(tmp_path)
    registry = ModelRegistry(tmp_path)
    labels = [label for label, _ in catalogue.task_choices(registry)]
    assert labels == [
        "Translation › Translate German → English",
        "Translation › Translate Chinese → English",
        "Speech › English spelling → pronunciation",
        "Summarisation › Shorten an English description",
        "Dates › Any written date → ISO 8601",
        "Experiments › Something else",
        catalogue.UNAVAILABLE_TASK,
    ]
    assert catalogue.default_model(registry) == "de-en"
    assert [m for _, m in catalogue.compare_model_choices(registry)] == ["de-en", "zh-en", "g2p", "summ", "dates", "odd"]


def test_unreadable_model_is_listed_as_unavailable(tmp_path):
    """A model folder with a broken card shows up in the menu as unavailable, and its summary says why."""
    broken(tmp_path)
    registry = ModelRegistry(tmp_path)
    task = catalogue.task_choices(registry)[0][1]
    assert catalogue.model_choices(registry, task) == [("⚠ broken (unavailable)", "broken")]
    assert "not valid JSON" in catalogue.model_summary(registry, "broken")


def test_example_rows_pair_each_example_with_its_note(tiny_model_dir, tmp_path):
    """Each example of a card sits beside its note, or beside nothing when the card has fewer notes."""
    copy_tiny_model(tiny_model_dir, tmp_path / "plain")
    copy_tiny_model(tiny_model_dir, tmp_path / "noted", examples=["a", "b"], example_notes=["first"])
    registry = ModelRegistry(tmp_path)
    assert catalogue.example_rows(registry, "plain") == [[EXAMPLE, ""]]
    assert catalogue.example_rows(registry, "noted") == [["a", "first"], ["b", ""]]
    assert catalogue.example_rows(registry, "no-such-model") == []


def test_explanation_fits_the_task_and_the_model():
    """"How to read this" speaks of the model's task and language, and shows its own equations."""
    g2p = explanation(tiny_card(task="g2p", source_lang="en", model={"attention": "additive"}))
    assert "silent" in g2p and "v^\\top \\tanh" in g2p and "Chinese" not in g2p
    zh = explanation(tiny_card(task="translation", source_lang="zh", architecture="transformer", model={}))
    assert "reordering" in zh and "Chinese character is its own token" in zh and "sqrt{d_k}" in zh
    dates = explanation(tiny_card(task="normalisation", model={"attention": "general"}))
    assert "year-month-day" in dates and "W h_i" in dates


def test_compare_menu_labels_are_unique_and_name_the_task(catalogue_registry_for_labels):
    """Every Compare menu entry is distinct and starts with its task, so two RNNs of different tasks never read alike."""
    registry = catalogue_registry_for_labels
    labels = [label for label, _ in catalogue.compare_model_choices(registry)]
    assert len(set(labels)) == len(labels)
    for label, model_id in catalogue.compare_model_choices(registry):
        assert label.startswith(registry.entries[model_id].card.task_label + " · ")


@pytest.fixture()
def catalogue_registry_for_labels() -> ModelRegistry:
    """The shipped models: several share the display name "RNN + Bahdanau (additive) attention"."""
    registry = ModelRegistry()
    if len(registry.available()) < 2:
        pytest.skip("needs two shipped models")
    return registry
