"""The plain routes (``POST /gradio_api/v1/generate`` and the others): Gradio's replies and messages in one request, bounded.

The app's module-level page is served once for the module; the bounds are checked on routes of
their own over a function that waits, in process (httpx's ASGI transport), so no test waits on
timing. Run: ``pytest tests/test_rest.py -q``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from starlette.applications import Starlette

from demo_core.pipeline import MAX_INPUT_CHARS, ModelRegistry
from demo_core.serving import rest
from tests.serving import serving

REGISTRY = ModelRegistry()
TRANSLATORS = [m for m in REGISTRY.available() if REGISTRY.entries[m].card.task == "translation"]
SENTENCE = "Zwei junge Männer spielen am Strand mit einem roten Ball."
needs_model = pytest.mark.skipif(not TRANSLATORS, reason="no translation model under checkpoints/")


@pytest.fixture(scope="module")
def served():
    """The app's page running: its URL and a gradio_client connected to it."""
    import app

    with serving(app.demo) as url:
        yield url, Client(url, verbose=False, analytics_enabled=False)


def post(url: str, path: str, body: object, raw: bytes | None = None) -> tuple[int, dict, dict]:
    """POST ``body`` as JSON (or ``raw`` bytes); (status, the JSON reply, the headers)."""
    request = urllib.request.Request(url + path, data=raw if raw is not None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@needs_model
@pytest.mark.parametrize("settings", [{"strategy": "greedy"}, {"strategy": "beam", "beam_size": 3, "n_best": 2},
                                      {"strategy": "sample", "num_samples": 2, "seed": 5}, {"attention": "all"}],
                         ids=["greedy", "beam", "sample", "all-attention"])
def test_plain_route_returns_what_gradios_api_returns(served, settings):
    """/gradio_api/v1/generate and Gradio's /generate give the same reply for the same parameters (the timing aside)."""
    url, client = served
    model = TRANSLATORS[0]
    status, plain, headers = post(url, "gradio_api/v1/generate", {"text": SENTENCE, "model": model, **settings})
    via_gradio = client.predict(SENTENCE, model, **settings, api_name="/generate")
    assert status == 200 and headers["content-type"] == "application/json"
    for reply in (plain, via_gradio):
        reply.pop("elapsed_ms", None)
    assert plain == via_gradio


@needs_model
def test_compare_and_synthesize_have_plain_routes(served):
    """/gradio_api/v1/compare answers like /compare; /gradio_api/v1/synthesize refuses what /synthesize refuses, with its message."""
    url, client = served
    model = TRANSLATORS[0]
    status, plain, _ = post(url, "gradio_api/v1/compare", {"text": SENTENCE, "model_a": model, "strategy_a": "greedy",
                                                "model_b": model, "strategy_b": "beam"})
    via_gradio = client.predict(SENTENCE, model, "greedy", model, "beam", api_name="/compare")
    assert status == 200 and plain["a"]["text"] == via_gradio["a"]["text"] and plain["b"]["text"] == via_gradio["b"]["text"]
    status, refused, _ = post(url, "gradio_api/v1/synthesize", {"text": "", "model": "no-such-voice"})
    with pytest.raises(AppError) as raised:
        client.predict("", "no-such-voice", api_name="/synthesize")
    assert status == 400 and refused["error"] == str(raised.value)


@needs_model
@pytest.mark.parametrize("body,message", [
    ({"text": "   "}, "text is empty"),
    ({"text": "x" * (MAX_INPUT_CHARS + 1)}, f"the limit is {MAX_INPUT_CHARS}"),
    ({"text": SENTENCE, "model": "no-such-model"}, "unknown model 'no-such-model'"),
    ({"text": SENTENCE, "strategy": "sample", "temperature": 1e-40}, "temperature must be"),
    ({"text": SENTENCE, "seed": 2**64}, "seed must be"),
    ({"text": SENTENCE, "beam_size": "wide"}, "beam_size must be a whole number"),
    ({"text": SENTENCE, "widht": 3}, "/generate has no parameter 'widht'"),
    ({"model": "x"}, "text is required"),
    ([SENTENCE], "must be a JSON object of parameters by name"),
    ({"text": SENTENCE, "model": ["x"]}, "model must be a single value"),
    ({"text": {"de": SENTENCE}}, "text must be a single value"),
], ids=["empty", "too-long", "unknown-model", "temperature", "seed", "not-a-number", "unknown-name", "no-text", "a-list",
        "model-array", "text-object"])
def test_bad_input_gets_400_with_a_message_naming_it(served, body, message):
    """Each refusal is 400 with {"error": ...} naming the problem, as Gradio's API words it; the next call works."""
    url, _ = served
    status, reply, _ = post(url, "gradio_api/v1/generate", body)
    assert status == 400 and message in reply["error"]
    assert post(url, "gradio_api/v1/generate", {"text": SENTENCE, "model": TRANSLATORS[0], "strategy": "greedy"})[0] == 200


def test_a_body_that_is_not_json_or_too_large_is_refused(served):
    url, _ = served
    status, reply, _ = post(url, "gradio_api/v1/generate", None, raw=b"{text: 1")
    assert status == 400 and "not JSON" in reply["error"]
    status, reply, _ = post(url, "gradio_api/v1/generate", None, raw=b" " * (rest.MAX_BODY + 1))
    assert status == 413 and "larger than" in reply["error"]


def test_a_body_nested_too_deeply_is_refused_and_a_huge_integer_still_answered(served):
    """JSON nested beyond Python's recursion limit is a 400, not a crash; an integer over 64 bits that the reply's
    config repeats is written (orjson cannot: the reply falls back to json)."""
    url, _ = served
    status, reply, _ = post(url, "gradio_api/v1/generate", None, raw=b"[" * 20000 + b"]" * 20000)
    assert status == 400 and "nests too deeply" in reply["error"]
    if TRANSLATORS:
        status, reply, _ = post(url, "gradio_api/v1/generate", {"text": SENTENCE, "model": TRANSLATORS[0], "no_repeat_ngram": 2**70})
        assert status == 200 and reply["config"]["no_repeat_ngram"] == 2**70


def test_gradios_direct_route_that_skips_the_queue_is_closed(served):
    """/gradio_api/run/generate would skip the queue's bounds: it is refused, as on Spaces."""
    url, _ = served
    status, _, _ = post(url, "gradio_api/run/generate", {"data": [SENTENCE]})
    assert status == 404


def waiting_app(concurrency: int, queue_size: int):
    """A Starlette app with one plain route over a function that waits until released, and what it records."""
    release, started = threading.Event(), threading.Semaphore(0)

    def work(text: str, fail: str = "") -> dict:
        if fail == "user":
            raise gr.Error(f"text {text!r} is refused")
        if fail == "internal":
            raise InternalForTest("internal error (KeyError)")
        if fail == "bug":
            raise KeyError(text)
        started.release()
        release.wait(30)
        return {"text": text.upper()}

    errors = {InternalForTest: 500, gr.Error: 400}
    return Starlette(routes=rest.routes({"work": work}, errors, concurrency, queue_size)), release, started


class InternalForTest(gr.Error):
    pass


def test_calls_beyond_running_and_waiting_are_refused_at_once_with_retry_after():
    """With 1 running and 1 waiting, a third call gets 503 and Retry-After at once; the first two are answered."""
    app, release, started = waiting_app(concurrency=1, queue_size=1)

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            first = asyncio.create_task(client.post("/gradio_api/v1/work", json={"text": "a"}))
            await asyncio.to_thread(started.acquire, timeout=30)  # the first one runs
            second = asyncio.create_task(client.post("/gradio_api/v1/work", json={"text": "b"}))
            await asyncio.sleep(0.05)  # the second one waits for the first's place
            third = await client.post("/gradio_api/v1/work", json={"text": "c"})
            release.set()
            return [await first, await second, third]

    first, second, third = asyncio.run(scenario())
    assert (first.status_code, first.json()) == (200, {"text": "A"})
    assert (second.status_code, second.json()) == (200, {"text": "B"})
    assert third.status_code == 503 and "busy" in third.json()["error"] and third.headers["retry-after"] == str(rest.RETRY_AFTER_S)


@pytest.mark.parametrize("fail,status,message", [("user", 400, "text 'x' is refused"), ("internal", 500, "internal error (KeyError)"),
                                                 ("bug", 500, "internal error (KeyError).")])
def test_errors_map_to_their_status(fail, status, message):
    """A user's mistake is 400 with its message, an internal error 500 with its own, anything else 500 with its type."""
    app, release, _ = waiting_app(concurrency=1, queue_size=0)
    release.set()

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post("/gradio_api/v1/work", json={"text": "x", "fail": fail})

    answer = asyncio.run(scenario())
    assert answer.status_code == status and answer.json() == {"error": message}
