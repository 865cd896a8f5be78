"""The task and model menus: groups in a fixed order, German → English first, usable models first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from demo_core.serving import catalogue as logic
from demo_core.pipeline import ModelRegistry

CARDS = {  # id: card fields laid over the tiny RNN's card
    "dates": dict(task="normalisation", task_label="Any written date → ISO 8601", group="Dates"),
    "zh-en": dict(task_label="Translate Chinese → English", group="Translation", menu_order=3),
    "g2p": dict(task="g2p", task_label="English spelling → pronunciation", group="Speech"),
    "de-en": dict(task_label="Translate German → English", group="Translation", menu_order=1),
    "summ": dict(task="summarisation", task_label="Shorten an English description", group="Summarisation"),
    "odd": dict(task_label="Something else", group="Experiments"),
}


def catalogue(tiny_model_dir: Path, root: Path) -> ModelRegistry:
    for model_id, fields in CARDS.items():
        shutil.copytree(tiny_model_dir, root / model_id)
        config = root / model_id / "config.json"
        config.write_text(json.dumps(dict(json.loads(config.read_text()), id=model_id, **fields)))
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    return ModelRegistry(root)


def test_tasks_follow_the_group_order_and_menu_order(tiny_model_dir, tmp_path):
    registry = catalogue(tiny_model_dir, tmp_path)
    labels = [label for label, _ in logic.task_choices(registry)]
    assert labels == [
        "Translation › Translate German → English",
        "Translation › Translate Chinese → English",
        "Speech › English spelling → pronunciation",
        "Summarisation › Shorten an English description",
        "Dates › Any written date → ISO 8601",
        "Experiments › Something else",
        logic.UNAVAILABLE_TASK,
    ]
    assert logic.default_model(registry) == "de-en"
    assert [m for _, m in logic.compare_model_choices(registry)] == ["de-en", "zh-en", "g2p", "summ", "dates", "odd"]


def test_explanation_fits_the_task_and_the_model():
    """"How to read this" speaks of the model's task and language, and shows its own equations."""
    from demo_core.serving.explanations import explanation

    g2p = explanation({"task": "g2p", "source_lang": "en", "architecture": "rnn", "model": {"attention": "additive"}})
    assert "silent" in g2p and "v^\\top \\tanh" in g2p and "Chinese" not in g2p
    zh = explanation({"task": "translation", "source_lang": "zh", "architecture": "transformer", "model": {}})
    assert "reordering" in zh and "Chinese character is its own token" in zh and "sqrt{d_k}" in zh
    dates = explanation({"task": "normalisation", "architecture": "rnn", "model": {"attention": "general"}})
    assert "year-month-day" in dates and "W h_i" in dates
