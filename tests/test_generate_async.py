"""/generate as Gradio's queue runs it (``Page.generate_async``, a coroutine on the event loop): the replies and
messages of the plain function, with the work kept off the event loop wherever it is not small."""

from __future__ import annotations

import asyncio
from typing import Any

import gradio as gr
import pytest

import app
from demo_core.pipeline import ModelRegistry

RNN, TRANSFORMER = "de-en-rnn-bahdanau", "de-en-transformer"
SENTENCE = "Zwei Hunde spielen im Schnee."
REGISTRY = ModelRegistry()
pytestmark = pytest.mark.skipif(not {RNN, TRANSFORMER} <= set(REGISTRY.available()), reason="shipped models missing")


@pytest.fixture()
def page():
    """A page over the shipped models with its own registry, so nothing is loaded yet."""
    return app.build_demo(ModelRegistry()).page


@pytest.fixture()
def threads(monkeypatch) -> list[str]:
    """The names of the functions ``generate_async`` hands to a worker thread, in order."""
    names: list[str] = []
    real = app.in_thread

    async def counted(fn, *args):
        names.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(app, "in_thread", counted)
    return names


def timeless(reply: Any) -> Any:
    """``reply`` without its timings (``elapsed_ms``), which differ between any two runs."""
    if isinstance(reply, dict):
        return {k: timeless(v) for k, v in reply.items() if k != "elapsed_ms"}
    if isinstance(reply, list):
        return [timeless(v) for v in reply]
    return reply


def both(page, text: str, model: str, **options: Any) -> tuple[dict, dict]:
    """The async endpoint's reply, then the plain function's, for the same call."""
    return asyncio.run(page.generate_async(text, model, **options)), page.generate(text, model, **options)


def test_async_generate_gives_the_plain_functions_replies(page, threads):
    """Every kind of request gets the reply the plain function gives; only loading a model, beam search, a prefix
    and the lab's steps go to a worker thread: a batched request of a loaded model is answered on the event loop."""
    first, plain = both(page, SENTENCE, RNN)  # the model is loaded by this call, in a thread
    assert timeless(first) == timeless(plain) and threads == ["_generate"]
    cases = [
        ({}, []),
        ({"strategy": "sample", "num_samples": 3, "seed": 11}, []),
        ({"attention": "none"}, []),
        ({"strategy": "beam", "beam_size": 4, "n_best": 2}, ["_generate_alone"]),
        ({"prefix": "Two"}, ["_generate_alone"]),
        ({"steps": True}, ["_generate_reply"]),
    ]
    for options, handed in cases:
        threads.clear()
        reply, plain = both(page, SENTENCE, RNN, **options)
        assert timeless(reply) == timeless(plain), options
        assert threads == handed, options
    page.generate("Ein Mann.", TRANSFORMER)  # loaded
    threads.clear()
    reply, plain = both(page, SENTENCE, TRANSFORMER, attention="all")  # every head, encoder too: still small
    assert timeless(reply) == timeless(plain) and reply["encoder_attention"] is not None and threads == []


def test_a_large_reply_is_built_off_the_event_loop(page, threads, monkeypatch):
    """A reply with more attention weights than ``INLINE_REPLY`` is built in a worker thread."""
    page.generate(SENTENCE, RNN)
    monkeypatch.setattr(app, "INLINE_REPLY", 10)
    reply, plain = both(page, SENTENCE, RNN)
    assert timeless(reply) == timeless(plain) and threads == ["_generate_reply"]


@pytest.mark.parametrize("text,model,options", [
    ("", RNN, {}),
    (SENTENCE, "no-such-model", {}),
    (SENTENCE, RNN, {"attention": "some"}),
    (SENTENCE, RNN, {"strategy": "sample", "temperature": 1e-40}),
    (SENTENCE, RNN, {"steps": "maybe"}),
    (SENTENCE, RNN, {"beam_size": 10**400}),
    ("x " * 90, TRANSFORMER, {"strategy": "beam", "n_best": 5, "attention": "all"}),  # over the reply budget
])
def test_async_generate_refuses_what_the_plain_function_refuses(page, text, model, options):
    """Bad input gets the same specific message from both (after the model is loaded, so the checks run on the
    event loop)."""
    page.generate(SENTENCE, RNN)
    page.generate(SENTENCE, TRANSFORMER)
    with pytest.raises(gr.Error) as plain:
        page.generate(text, model, **options)
    with pytest.raises(gr.Error) as loop:
        asyncio.run(page.generate_async(text, model, **options))
    assert str(loop.value) == str(plain.value) and str(plain.value)
