"""Gradio's login check on the event loop (``demo_core.serving.inline_checks``): no thread hop, same answers.

Run: ``pytest tests/test_inline_checks.py -q``.
"""

from __future__ import annotations

import asyncio
import threading

import fastapi
import fastapi.dependencies.utils as fastapi_utils
import httpx
import pytest
from fastapi import Depends, HTTPException

from demo_core.serving import inline_checks


def guarded_app() -> tuple[fastapi.FastAPI, list[str]]:
    """A FastAPI app shaped like Gradio's: a plain ``login_check`` on a route of the app and on the routes of an
    included router; it refuses a request without the ``x-user`` header, and records the thread it ran on."""
    ran_on: list[str] = []

    def user(request: fastapi.Request) -> str | None:
        return request.headers.get("x-user")

    def login_check(name: str | None = Depends(user)) -> None:
        ran_on.append(threading.current_thread().name)
        if name is None:
            raise HTTPException(status_code=401, detail="Not authenticated")

    app = fastapi.FastAPI()
    router = fastapi.APIRouter(prefix="/api")

    @app.get("/top", dependencies=[Depends(login_check)])
    async def top() -> dict:
        return {"where": "top"}

    @router.get("/inner", dependencies=[Depends(login_check)])
    async def inner() -> dict:
        return {"where": "inner"}

    app.include_router(router)
    return app, ran_on


def get(app: fastapi.FastAPI, path: str, **headers: str) -> httpx.Response:
    async def one() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(one())


@pytest.mark.parametrize("path", ["/top", "/api/inner"])
def test_the_check_still_refuses_and_admits_but_on_the_event_loop(path):
    """After ``inline`` the check answers as before (401 without a user, the route's reply with one), and it runs on
    the thread of the event loop, not in FastAPI's worker threads."""
    app, ran_on = guarded_app()
    get(app, path, **{"x-user": "ana"})  # before: in a worker thread
    assert ran_on[-1] != threading.current_thread().name
    assert inline_checks.inline(app) >= 2
    assert inline_checks.inline(app) == 0  # already swapped: nothing more to do
    refused, admitted = get(app, path), get(app, path, **{"x-user": "ana"})
    assert (refused.status_code, refused.json()) == (401, {"detail": "Not authenticated"})
    assert admitted.status_code == 200 and admitted.json()["where"] in path
    assert ran_on[-2:] == [threading.current_thread().name] * 2  # asyncio.run's loop runs in this thread


def test_the_served_app_makes_no_thread_hop_for_its_login_check(monkeypatch):
    """A call of Gradio's API on the launched app runs no dependency in FastAPI's worker threads (there were two:
    the call and its event stream) and is answered as before."""
    import app
    from benchmarks.http_api import Api
    from demo_core.pipeline import ModelRegistry
    from tests.serving import serving

    registry = ModelRegistry()
    models = [m for m in registry.available() if not registry.is_speech(m)]
    if not models:
        pytest.skip("no servable model under checkpoints/")
    in_threads: list[str] = []
    original = fastapi_utils.run_in_threadpool

    def spy(function, *args, **kwargs):
        in_threads.append(getattr(function, "__name__", repr(function)))
        return original(function, *args, **kwargs)

    monkeypatch.setattr(fastapi_utils, "run_in_threadpool", spy)
    with serving(app.demo) as url:
        reply = Api(url).call("/generate", text=registry.entries[models[0]].card.examples[0], model=models[0],
                             strategy="greedy")
    assert reply.ok and reply.data["text"]
    assert "login_check" not in in_threads
