"""Lazy Gradio sessions (``demo_core.serving.sessions``): the same deep link as stock Gradio, for less work.

The page is the real one (``app.demo``, every shipped model) for the in-process checks and the tiny
RNN's page for the served deep link. Run: ``python -m pytest -q tests/test_sessions.py``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import orjson
import pytest
from gradio.state_holder import SessionState

import app
from demo_core.serving import sessions
from tests.serving import demo_for, serving

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def patched(lazy: bool) -> Iterator[None]:
    """``SessionState`` lazy (or stock) inside the block, as it was before after it."""
    was_lazy = sessions.MARK in vars(SessionState)
    if lazy:
        assert sessions.make_sessions_lazy(SessionState, gr.__version__)
    else:
        sessions.make_sessions_eager(SessionState)
    try:
        yield
    finally:
        if was_lazy:
            sessions.make_sessions_lazy(SessionState, gr.__version__)
        else:
            sessions.make_sessions_eager(SessionState)


def session(blocks: gr.Blocks, lazy: bool) -> SessionState:
    with patched(lazy):
        return SessionState(blocks)


def components(state: SessionState) -> list[dict]:
    """What the deep link route serialises, as JSON text for a strict comparison."""
    return [orjson.dumps(c, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode() for c in state.components]


@pytest.fixture(scope="module")
def page() -> gr.Blocks:
    app.demo.queue()  # as launch does: the page's default config, load events included
    return app.demo


def test_patch_fits_the_installed_gradio():
    """The installed Gradio is the pinned one and its SessionState is the one the patch was written for."""
    pinned = [line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("gradio==")]
    assert pinned == [f"gradio=={sessions.PINNED_GRADIO}"]
    with patched(lazy=False):
        assert sessions.mismatch(SessionState, gr.__version__) is None


def test_new_session_computes_no_config(page):
    """A lazy session starts with no block config; stock Gradio computes all of them."""
    assert session(page, lazy=True).config_values == {}
    assert len(session(page, lazy=False).config_values) > 100


def test_components_equal_stock(page):
    """A lazy session's deep link holds exactly stock Gradio's configs, in its order."""
    lazy, stock = session(page, lazy=True), session(page, lazy=False)
    with patched(lazy=True):
        lazy_components = components(lazy)
    with patched(lazy=False):
        stock_components = components(stock)
    assert len(stock_components) > 100
    assert lazy_components == stock_components


def test_writes_show_in_components(page):
    """Values and updates written into a session show in its deep link as in stock Gradio's."""
    text, model = page.page.text._id, page.page.model._id
    results = {}
    for lazy in (True, False):
        state = session(page, lazy=lazy)
        with patched(lazy=lazy):
            state._update_value_in_config(text, "Zwei Hunde spielen im Schnee.")
            state[model] = gr.Dropdown(["a", "b"], value="b", label="Model", render=False)
            state._update_config(model)
            state._update_value_in_config(model, "b")
            results[lazy] = components(state)
    assert results[True] == results[False]
    written = [json.loads(c) for c in results[True] if json.loads(c)["id"] == text]
    assert written[0]["props"]["value"] == "Zwei Hunde spielen im Schnee."


def test_unexpected_version_changes_nothing(caplog):
    """On another Gradio version the patch does nothing and says so in the log."""
    class Probe(SessionState):
        pass

    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert not sessions.make_sessions_lazy(Probe, "6.32.0")
    assert "__init__" not in vars(Probe) and "components" not in vars(Probe) and sessions.MARK not in vars(Probe)
    assert "gradio 6.32.0 is not the pinned" in caplog.text


def test_changed_member_changes_nothing(caplog):
    """When a member the patch replaces or relies on is not the one it was written for, nothing changes."""
    class Probe(SessionState):
        @property
        def components(self):  # a Gradio whose deep link reads something else
            return iter(())

    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert not sessions.make_sessions_lazy(Probe, sessions.PINNED_GRADIO)
    assert "__init__" not in vars(Probe) and sessions.MARK not in vars(Probe)
    assert "sessions stay eager" in caplog.text


def test_deep_link_of_a_served_page(tiny_model_dir):
    """``app.launch`` makes sessions lazy, and the deep link route saves stock Gradio's configs."""
    demo = demo_for(tiny_model_dir.parent)
    with serving(demo) as url:
        assert sessions.MARK in vars(SessionState)
        holder = demo.state_holder
        holder["lazy-session"]._update_value_in_config(demo.page.text._id, "12345")
        with urllib.request.urlopen(f"{url}gradio_api/deep_link?session_hash=lazy-session", timeout=30) as answer:
            link = json.loads(answer.read())
        saved = json.loads((Path(demo.server_app.uploaded_file_dir) / "deep_links" / link / "state.json").read_bytes())
        stock = session(demo, lazy=False)
        with patched(lazy=False):
            stock._update_value_in_config(demo.page.text._id, "12345")
            expected = json.loads(orjson.dumps(list(stock.components), option=orjson.OPT_SERIALIZE_NUMPY, default=str))
    assert saved == expected


def counting(config_for_block, computed: list[int]):
    """``config_for_block`` that notes each block id it computes in ``computed``."""
    def count(key, *args):
        computed.append(key)
        return config_for_block(key, *args)
    return count


def test_value_writes_compute_no_config_until_a_deep_link_asks(page, monkeypatch):
    """Gradio writes every event's inputs and outputs into the session; a lazy session keeps them without computing
    a config, and its deep link still equals stock Gradio's: the last value written, a later replacement winning."""
    text, model = page.page.text._id, page.page.model._id
    results = {}
    for lazy in (True, False):
        state = session(page, lazy=lazy)
        with patched(lazy=lazy):
            computed: list[int] = []
            monkeypatch.setattr(state.blocks_config, "config_for_block", counting(state.blocks_config.config_for_block, computed))
            state._update_value_in_config(text, "Ein Hund.")
            state._update_value_in_config(text, "Zwei Hunde spielen im Schnee.")  # the last write wins
            state._update_value_in_config(model, "a")
            state[model] = gr.Dropdown(["a", "b"], value="b", label="Model", render=False)  # replaces the pending one
            assert computed == ([] if lazy else [model])  # stock: the replacement's (the rest when it began)
            assert isinstance(state.config_values[text], sessions.Pending) == lazy
            results[lazy] = components(state)
    assert results[True] == results[False]
    shown = {json.loads(c)["id"]: json.loads(c) for c in results[True]}
    assert shown[text]["props"]["value"] == "Zwei Hunde spielen im Schnee."
    assert shown[model]["props"]["value"] != "a"  # the pending value was replaced by __setitem__'s config


def test_a_page_run_leaves_the_deep_link_of_stock_gradio(page, monkeypatch):
    """A real Explore run (its outputs, ``gr.update``s among them, through Gradio's own postprocessing, twice: the
    second replaces the first's updates) computes no config in a lazy session, and its deep link equals stock's."""
    import asyncio

    explore = next(fn for fn in page.fns.values() if fn.api_name == "explore")
    values = {block: getattr(block, "value", None) for block in explore.inputs}
    results, counts = {}, {}
    for lazy in (True, False):
        state = session(page, lazy=lazy)
        with patched(lazy=lazy):
            computed: list[int] = []
            monkeypatch.setattr(state.blocks_config, "config_for_block", counting(state.blocks_config.config_for_block, computed))
            for text in ("Zwei junge Männer spielen am Strand mit einem roten Ball.", "Ein Hund rennt."):
                out = page.page.explore(values | {page.page.text: text})  # afresh: Gradio consumes its updates
                asyncio.run(page.postprocess_data(explore, out, state))
            counts[lazy] = len(computed)
            monkeypatch.undo()
            results[lazy] = [re.sub(r"\d+ ms", "N ms", c) for c in components(state)]  # the run summary's time
    assert counts[True] == 0 < counts[False]
    assert results[True] == results[False]
