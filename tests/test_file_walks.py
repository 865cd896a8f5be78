"""Gradio's walks over replies for files (``demo_core.serving.file_walks``): skipped only where they would find none.

Replies are real: the tiny models' ``/generate`` and ``/compare`` replies, the page's outputs (Plotly figures,
HTML) and a speech reply with its audio file. Run: ``python -m pytest -q tests/test_file_walks.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import types
from collections.abc import Callable

import gradio as gr
import numpy as np
import pytest
from gradio import data_classes, processing_utils
from gradio_client import utils as client_utils

import app
from demo_core.serving import file_walks
from tests.serving import demo_for, serving
from tests.tiny import copy_tiny_model, save_tiny_model

MODELS = (data_classes.GradioModel, data_classes.GradioRootModel)
EXAMPLE = "a man is riding a bike"


def stock() -> dict[str, Callable]:
    """Gradio's own two functions (the wrapped ones keep them; unwrapped, the module's)."""
    kept = getattr(processing_utils, file_walks.MARK, None)
    if kept is not None:
        return kept
    return {"async_move_files_to_cache": processing_utils.async_move_files_to_cache,
            "add_root_url": processing_utils.add_root_url}


@pytest.fixture(scope="module")
def wrapped() -> dict[str, Callable]:
    assert file_walks.skip_walks_without_files(processing_utils, client_utils, MODELS, gr.__version__)
    return {"async_move_files_to_cache": processing_utils.async_move_files_to_cache,
            "add_root_url": processing_utils.add_root_url}


@pytest.fixture(scope="module")
def page(tiny_model_dir, tmp_path_factory):
    """The page over a tiny RNN and a tiny Transformer."""
    root = tmp_path_factory.mktemp("walk-models")
    copy_tiny_model(tiny_model_dir, root / "tiny-rnn")
    save_tiny_model(root / "tiny-transformer", "transformer", model_config=dict(enc_layers=2, dec_layers=2))
    return demo_for(root).page


def both(wrapped: dict[str, Callable], value, block) -> tuple[list, list]:
    """``value`` through the wrapped and the stock walks (move to cache, then root URL), as Gradio's postprocessing does."""
    results = []
    for functions in (wrapped, stock()):
        moved = asyncio.run(functions["async_move_files_to_cache"](value, block, postprocess=True))
        results.append(functions["add_root_url"]([moved], "http://127.0.0.1:7860/x", None))
    return results[0], results[1]


def test_replies_of_every_kind_come_out_as_stock_gradio_makes_them(wrapped, page):
    """Text replies, not walked, are written to JSON (as Gradio's event stream writes them) exactly as the walked ones
    are: the walk's only change to them is copies, with tuples as lists, which JSON writes alike."""
    block = gr.JSON(render=False)
    replies = [page.generate(text=EXAMPLE, model="tiny-rnn"),
               page.generate(text=EXAMPLE, model="tiny-transformer", strategy="beam", beam_size=3, attention="all"),
               page.generate(text=EXAMPLE, model="tiny-rnn", strategy="sample", num_samples=3, seed=1),
               page.compare(text=EXAMPLE, model_a="tiny-rnn", model_b="tiny-transformer")]
    shipped = [m for m in app.demo.page.registry.available() if app.demo.page.registry.entries[m].card.task == "translation"]
    if shipped:  # a real model's reply too (real words, real attention), with every head
        replies.append(app.demo.page.generate(text="Zwei Männer spielen am Strand.", model=shipped[0], attention="all"))
    for reply in replies:
        assert file_walks.holds_no_file(reply)
        fast, slow = both(wrapped, reply, block)
        assert fast[0] is reply and json.dumps(fast) == json.dumps(slow)


def test_a_value_with_a_file_takes_gradios_walk(wrapped, tmp_path):
    """The page's audio (a wav in Gradio's cache) gets the URL stock Gradio gives it, through Gradio's own walk."""
    block = gr.Audio(type="numpy", render=False)
    audio = block.postprocess((16000, np.zeros(1600, dtype=np.int16)))
    assert isinstance(audio, MODELS) and not file_walks.holds_no_file(audio.model_dump())
    fast, slow = both(wrapped, audio, block)
    assert fast == slow
    assert fast[0]["url"].startswith("http://127.0.0.1:7860/x/gradio_api/file=")


@pytest.mark.parametrize("value", [
    {"file": {"path": "a.wav", "meta": {"_type": "gradio.FileData"}}},  # a file object, nested
    [{"path": "a.wav", "meta": 5}],  # a "meta" key: Gradio's test reads it (and fails on it): walked as stock
    {"note": "gradio.FileData"},  # the name in a dict: walked (it finds nothing)
    {1: "a non-string key"},  # orjson cannot write it: walked
    {"n": [2 ** 70]},  # an integer over 64 bits inside a dict: orjson cannot write it, walked
])
def test_anything_that_may_hold_a_file_is_walked(value):
    assert not file_walks.holds_no_file(value)


@pytest.mark.parametrize("value", [None, 0.5, "text", [], {}, {"a": [[1, 2.5], ["x", None, True]]}, ("a", 1),
                                   ["<div>page HTML</div>", "**Markdown**", None],  # flat: not written at all
                                   "gradio.FileData", [2 ** 70],  # a string or a number is never a file object
                                   {"path": "a.wav", "url": "/file=a.wav"}])  # no "meta": not a file object for Gradio
def test_plain_json_holds_no_file(value):
    assert file_walks.holds_no_file(value)
    assert stock()["add_root_url"](value, "http://h/", None) == (list(value) if isinstance(value, tuple) else value)


def test_a_nan_is_kept_as_gradio_keeps_it(wrapped):
    """orjson writes NaN as null, but only the test reads that text: the value returned is the reply itself."""
    reply = {"scores": [float("nan"), -float("inf")]}
    moved = asyncio.run(wrapped["async_move_files_to_cache"](reply, gr.JSON(render=False), postprocess=True))
    assert moved is reply and np.isnan(moved["scores"][0]) and moved["scores"][1] == -float("inf")


def test_another_gradio_is_left_alone(caplog):
    """A version other than the pinned one, or a wrapped function whose source changed: no wrapping, a log line why."""
    fake = types.ModuleType("gradio.processing_utils")
    fake.async_move_files_to_cache = processing_utils.async_move_files_to_cache
    fake.add_root_url = lambda data, root_url, previous_root_url: data  # a different source
    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert not file_walks.skip_walks_without_files(fake, client_utils, MODELS, "6.32.0")
        assert not file_walks.skip_walks_without_files(fake, client_utils, MODELS, gr.__version__)
    assert "6.32.0 is not the pinned" in caplog.text
    assert "add_root_url is not the one of gradio" in caplog.text
    assert not hasattr(fake, file_walks.MARK)


def test_wrapping_twice_and_restoring(wrapped):
    """A second call changes nothing; ``restore_walks`` brings Gradio's functions back (and the wrap can be redone)."""
    assert file_walks.skip_walks_without_files(processing_utils, client_utils, MODELS, gr.__version__)
    assert processing_utils.add_root_url is wrapped["add_root_url"]
    kept = stock()
    file_walks.restore_walks(processing_utils)
    try:
        assert processing_utils.add_root_url is kept["add_root_url"]
        assert not hasattr(processing_utils, file_walks.MARK)
    finally:
        assert file_walks.skip_walks_without_files(processing_utils, client_utils, MODELS, gr.__version__)


def test_the_served_app_skips_walks_and_answers_as_before(tiny_model_dir):
    """``app.launch`` wraps the walks; a raw API call's reply is the one the endpoint function returns."""
    from benchmarks.http_api import Api

    demo = demo_for(tiny_model_dir.parent)
    with serving(demo) as url:
        assert hasattr(processing_utils, file_walks.MARK) == (not app.STOCK_GRADIO)
        reply = Api(url).call("/generate", text=EXAMPLE, model="tiny-rnn")
    assert reply.ok
    expected = demo.page.generate(text=EXAMPLE, model="tiny-rnn")
    reply.data.pop("elapsed_ms"), expected.pop("elapsed_ms")
    assert reply.data == json.loads(json.dumps(expected))
