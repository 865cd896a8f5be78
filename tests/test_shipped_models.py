"""The models in checkpoints/: they load, translate their examples and report measured metrics."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from demo_core.checkpoint import DEFAULT_ROOT, find_models, read_metrics
from demo_core.decoding import DecodeConfig
from demo_core.pipeline import ModelRegistry

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
ENTRIES = find_models(DEFAULT_ROOT)
IDS = [e.id for e in ENTRIES]
TEXT_IDS = [e.id for e in ENTRIES if e.card is not None and e.card.task != "tts"]  # speech: tests/test_speech_synthesis.py


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(DEFAULT_ROOT)


def test_the_first_model_is_shipped():
    """German -> English with Bahdanau attention is in checkpoints/ and servable."""
    assert "de-en-rnn-bahdanau" in IDS
    assert all(e.available for e in ENTRIES), [(e.id, e.error) for e in ENTRIES if not e.available]


@pytest.mark.parametrize("model_id", TEXT_IDS)
def test_model_translates_its_examples(registry, model_id):
    """Every example of a model's card gives a non-empty output whose attention matches its tokens."""
    translator = registry.get(model_id)
    assert translator.card.examples
    for text in translator.card.examples:
        result = translator.run(text, DecodeConfig(strategy="beam", beam_size=3))
        best = result.best
        assert best.text.strip()
        assert best.attention.shape[0] == len(best.pieces)
        assert best.attention.shape[-1] == len(result.source_pieces)


@pytest.mark.parametrize("model_id", IDS)
def test_model_card_reports_measured_metrics(model_id):
    """metrics.json holds validation (text models) or test (speech) numbers with their command, parameter
    count, hardware and the training command."""
    entry = next(e for e in ENTRIES if e.id == model_id)
    metrics = read_metrics(entry.path)
    assert metrics["parameters"] > 0 and metrics["hardware"] and metrics["train_command"]
    assert "valid" in metrics if model_id in TEXT_IDS else metrics["test"]["command"].startswith("python -m demo_core")
    card = entry.card
    assert card.data is not None and card.data.licence and card.data.attribution


def test_cli_lists_shipped_models():
    """generate --list on the real checkpoints names every shipped model."""
    out = subprocess.run([sys.executable, "-m", "demo_core.generate", "--list"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert {m["id"] for m in json.loads(out.stdout)} == set(IDS)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the repository")
def test_evaluate_cli_scores_a_few_test_sentences(tmp_path):
    """evaluate decodes part of the test split and prints BLEU and chrF with signatures (not stored with --limit)."""
    out = subprocess.run(
        [sys.executable, "-m", "demo_core.evaluate", "--model", "de-en-rnn-bahdanau", "--split", "test", "--limit", "8",
         "--data-dir", str(DATA), "--output", str(tmp_path / "hyp.txt")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["sentences"] == 8 and "bleu_lc" in report and "case:lc" in report["bleu_lc_signature"]
    assert len((tmp_path / "hyp.txt").read_text().splitlines()) == 8
