"""The README's models table and model cards are exactly what the shipped metrics say."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_core.checkpoint import DEFAULT_ROOT, find_models, read_metrics
from demo_core.report import update_readme

README = Path(__file__).resolve().parent.parent / "README.md"
ENTRIES = [(e.card, read_metrics(e.path)) for e in find_models(DEFAULT_ROOT) if e.available]


def test_readme_models_match_the_shipped_metrics():
    """Regenerating the table and cards changes nothing: no number in them is stale or typed by hand
    (fix with ``python -m demo_core.report --update README.md``)."""
    text = README.read_text(encoding="utf-8")
    assert update_readme(text, ENTRIES) == text
    for card, _ in ENTRIES:
        assert f"### Model card: `{card['id']}`" in text


def test_update_is_idempotent_and_refuses_a_readme_without_the_sections():
    text = README.read_text(encoding="utf-8")
    once = update_readme(text, ENTRIES[:1])
    assert update_readme(once, ENTRIES[:1]) == once
    assert "### Model card:" in once and once.count("### Model card:") == 1
    with pytest.raises(ValueError, match="Model cards"):
        update_readme("# A README without the sections\n", ENTRIES)
