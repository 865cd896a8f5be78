"""The README's models table and docs/MODELS.md are exactly what the shipped cards and metrics say.

Both are generated: ``python -m demo_core.report --update README.md`` rewrites them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_core.card import DataCredit
from demo_core.checkpoint import write_metrics
from demo_core.report import TABLE_MARKER, headline, main, model_card, models_page, shipped_entries, table, update_readme
from tests.tiny import save_tiny_model

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MODELS = REPO / "docs" / "MODELS.md"
ENTRIES = shipped_entries()
FIX = "fix with: python -m demo_core.report --update README.md"
METRICS = {
    "parameters": 123_456, "best_epoch": 3, "training_seconds": 7200, "hardware": "CPU: test, 1 thread(s)",
    "date": "2026-12-01", "commit": "0123456789abcdef", "train_command": "python -m demo_core.train configs/tiny-rnn.json",
    "valid": {"split": "val", "decoding": "greedy", "bleu": 12.34, "bleu_lc": 13.0, "chrf": 40.0},
    "test": {"split": "test_2016_flickr", "decoding": {"strategy": "beam", "beam_size": 5}, "bleu": 11.0, "bleu_lc": 11.5,
             "chrf": 39.0, "command": "python -m demo_core.evaluate --model tiny-rnn --split test"},
}
DATA = DataCredit(name="Toy corpus", licence="CC0", attribution="Made up for the tests")


@pytest.fixture()
def tiny_root(tmp_path) -> Path:
    """A checkpoints folder with one tiny model whose metrics.json is METRICS."""
    folder = save_tiny_model(tmp_path / "checkpoints" / "tiny-rnn", description="A toy.", data=DATA)
    write_metrics(folder, METRICS)
    return tmp_path / "checkpoints"


def test_readme_table_matches_the_shipped_metrics():
    """Regenerating the README's table changes nothing: no number in it is stale or typed by hand."""
    text = README.read_text(encoding="utf-8")
    assert update_readme(text, ENTRIES) == text, FIX


def test_model_cards_match_the_shipped_metrics():
    """docs/MODELS.md is exactly the cards generated from checkpoints/, one per shipped model."""
    assert MODELS.read_text(encoding="utf-8") == models_page(ENTRIES), FIX
    for card, _ in ENTRIES:
        assert f"## `{card.id}`: {card.name}" in MODELS.read_text(encoding="utf-8")


def test_card_says_what_the_model_is_how_it_was_trained_and_how_it_scores(tiny_root):
    """A card names the model, its task and languages, its size, the training command, its data credit and
    each split's scores with the command that measured them."""
    ((card, metrics),) = shipped_entries(tiny_root)
    text = model_card(card, metrics)
    for part in ("`tiny-rnn`", card.name, "A toy.", "Toy (de → en)", "123,456 parameters", "2.00 h on CPU: test",
                 f"`{METRICS['train_command']}`", "Toy corpus", "Licence: CC0", "Made up for the tests",
                 f"{headline(METRICS['valid'])}; measured by `{METRICS['train_command']}`",
                 f"(`test_2016_flickr`, beam 5): {headline(METRICS['test'])}; measured by `{METRICS['test']['command']}`"):
        assert part in text, part


def test_update_rewrites_only_the_table_and_is_idempotent():
    """Updating with other entries replaces the table's rows and nothing else; a second update changes nothing."""
    text = README.read_text(encoding="utf-8")
    once = update_readme(text, ENTRIES[:1])
    assert update_readme(once, ENTRIES[:1]) == once
    assert table(ENTRIES[:1]) in once and once.count("\n| `") == 1
    before, after = text.split(table(ENTRIES))
    assert once.startswith(before) and once.endswith(after)


def test_update_refuses_a_readme_without_the_marker():
    """A README without the models table marker is an error, not a README with a table appended somewhere."""
    with pytest.raises(ValueError, match="marker"):
        update_readme("# A README without the table\n", ENTRIES)


def test_command_writes_both_files_then_finds_them_current(tiny_root, tmp_path):
    """``python -m demo_core.report --update README.md`` writes the cards and the table; ``--check`` then passes,
    and fails on a stale file."""
    readme, cards = tmp_path / "README.md", tmp_path / "docs" / "MODELS.md"
    readme.write_text(f"# Title\n\n{TABLE_MARKER} -->\n| old |\n\nMore prose.\n", encoding="utf-8")
    paths = ["--checkpoints", str(tiny_root), "--cards", str(cards), "--update", str(readme)]
    assert main([*paths, "--check"]) == 1
    assert main(paths) == 0
    assert main([*paths, "--check"]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "| `tiny-rnn` | Toy |" in text and "| old |" not in text and text.endswith("\n\nMore prose.\n")
    assert "## `tiny-rnn`" in cards.read_text(encoding="utf-8")
