"""The cycle collector as the server runs it (``demo_core.serving.gc_tuning``): startup frozen, a higher first threshold.

Run: ``python -m pytest -q tests/test_gc_tuning.py``.
"""

from __future__ import annotations

import gc
import logging

import pytest

from demo_core.serving import gc_tuning
from tests.serving import demo_for, serving


@pytest.fixture
def threshold():
    """The collector's thresholds and freeze state put back after the test."""
    saved, frozen = gc.get_threshold(), gc_tuning._frozen
    yield
    gc.set_threshold(*saved)
    gc_tuning._frozen = frozen


def test_the_served_app_runs_with_the_tuned_collector(tiny_model_dir, threshold, monkeypatch):
    monkeypatch.delenv("S2S_GC_THRESHOLD", raising=False)
    gc.set_threshold(700, 10, 10)
    with serving(demo_for(tiny_model_dir.parent)):
        assert gc.get_threshold() == (gc_tuning.GC_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0


def test_freezing_happens_once_and_zero_leaves_python_alone(threshold):
    gc_tuning._frozen = False
    gc.set_threshold(700, 10, 10)
    assert gc_tuning.tune_gc(0) == 0 and gc.get_threshold() == (700, 10, 10)
    frozen = gc_tuning.tune_gc(5000)
    assert frozen == gc.get_freeze_count() > 0 and gc.get_threshold() == (5000, 10, 10)
    assert gc_tuning.tune_gc(8000) == 0 and gc.get_threshold() == (8000, 10, 10)  # set again, not frozen again
    assert gc.get_freeze_count() >= frozen


@pytest.mark.parametrize(("given", "expected"), [("", gc_tuning.GC_THRESHOLD), ("0", 0), ("700", 700),
                                                 (" 20000 ", 20000), ("-1", gc_tuning.GC_THRESHOLD),
                                                 ("1e4", gc_tuning.GC_THRESHOLD), ("many", gc_tuning.GC_THRESHOLD),
                                                 ("99999999999", gc_tuning.GC_THRESHOLD)])
def test_the_threshold_setting_falls_back_on_bad_values(monkeypatch, caplog, given, expected):
    monkeypatch.setenv("S2S_GC_THRESHOLD", given)
    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert gc_tuning.gc_threshold() == expected
    assert ("S2S_GC_THRESHOLD" in caplog.text) == (given.strip() not in ("", "0", "700", "20000"))
