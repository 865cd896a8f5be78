"""Gradio's call routes matched first (``demo_core.serving.api_routes``): every request goes where it went before.

Run: ``python -m pytest -q tests/test_api_routes.py``.
"""

from __future__ import annotations

import logging
import types

import fastapi
import gradio as gr
import pytest
from fastapi import routing as fastapi_routing
from gradio import routes
from starlette.routing import Match

from demo_core.serving import api_routes


def gen(text: str) -> str:
    return text


def build_app(create_app) -> fastapi.FastAPI:  # noqa: ANN001
    """An app of a page with one API endpoint, as ``create_app`` builds it."""
    with gr.Blocks() as demo:
        gr.Textbox()
        gr.api(gen, api_name="generate")
    demo.queue()
    return create_app(demo)


def stock_create_app():  # noqa: ANN201
    kept = routes.App.__dict__.get(api_routes.MARK)
    return kept["create_app"].__func__ if kept else routes.App.create_app


def resolve(route_list: list, method: str, path: str) -> object | None:
    """The route Starlette chooses for ``method path``: the first full match, else the first partial one."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    partial = None
    for route in route_list:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial


@pytest.fixture(scope="module")
def apps() -> tuple[fastapi.FastAPI, fastapi.FastAPI]:
    """The same page's app built by Gradio's ``create_app`` and by the wrapped one."""
    assert api_routes.match_calls_first(routes, fastapi_routing, gr.__version__, fastapi.__version__)
    return build_app(stock_create_app()), build_app(routes.App.create_app)


def test_the_call_and_queue_routes_come_first_in_their_own_order(apps) -> None:  # noqa: ANN001
    stock, wrapped = (api_routes.gradio_router(app, fastapi_routing) for app in apps)
    before, after = [r.path for r in stock.routes], [r.path for r in wrapped.routes]
    hot = [p for p in before if p.startswith(api_routes.HOT)]
    assert hot and before.index(hot[0]) > 20  # Gradio has them far down
    assert after[:len(hot)] == hot
    assert after[len(hot):] == [p for p in before if not p.startswith(api_routes.HOT)]


def test_every_path_and_method_reaches_the_route_it_reached_before(apps) -> None:  # noqa: ANN001
    stock, wrapped = (api_routes.gradio_router(app, fastapi_routing) for app in apps)
    paths = {api_routes.sample_path(r) for r in stock.routes} | {
        "/gradio_api/call/generate", "/gradio_api/call/generate/abc123", "/gradio_api/call/v2/generate",
        "/gradio_api/call/v2/generate/abc", "/gradio_api/queue/join", "/gradio_api/queue/data",
        "/gradio_api/call/", "/gradio_api/call/a/b/c", "/gradio_api/queue/unknown", "/gradio_api/upload",
        "/gradio_api/file=x/y.png", "/gradio_api/info"}
    checked = 0
    for path in sorted(paths):
        for method in ("GET", "POST", "HEAD", "PUT"):
            a, b = resolve(stock.routes, method, path), resolve(wrapped.routes, method, path)
            if a is None:
                assert b is None, (method, path)
                continue
            assert b is not None, (method, path)
            assert (a.path, a.methods, a.endpoint.__name__) == (b.path, b.methods, b.endpoint.__name__), (method, path)
            checked += 1
    assert checked > 60


def test_a_route_that_could_take_a_call_path_keeps_the_order(caplog) -> None:  # noqa: ANN001
    router = fastapi.APIRouter()
    router.add_api_route("/gradio_api/{anything:path}", gen, methods=["POST"])
    router.add_api_route("/gradio_api/call/{api_name}", gen, methods=["POST"])
    before = list(router.routes)
    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert api_routes.calls_first(router) == 0
    assert router.routes == before
    assert "could match one path" in caplog.text


def test_routes_already_first_or_absent_move_nothing() -> None:
    router = fastapi.APIRouter()
    router.add_api_route("/gradio_api/call/{api_name}", gen, methods=["POST"])
    router.add_api_route("/gradio_api/info", gen, methods=["GET"])
    assert api_routes.calls_first(router) == 0
    empty = fastapi.APIRouter()
    empty.add_api_route("/gradio_api/info", gen, methods=["GET"])
    assert api_routes.calls_first(empty) == 0


def test_moving_tells_fastapi_to_rebuild_its_view() -> None:
    router = fastapi.APIRouter()
    router.add_api_route("/gradio_api/info", gen, methods=["GET"])
    router.add_api_route("/gradio_api/call/{api_name}", gen, methods=["POST"])
    version = router._routes_version
    assert api_routes.calls_first(router) == 1
    assert router._routes_version == version + 1
    assert [r.path for r in router.routes] == ["/gradio_api/call/{api_name}", "/gradio_api/info"]


@pytest.mark.parametrize("gradio_version, fastapi_version", [("6.32.0", api_routes.PINNED_FASTAPI),
                                                             (api_routes.PINNED_GRADIO, "0.166.0")])
def test_other_versions_are_left_alone(gradio_version: str, fastapi_version: str, caplog) -> None:  # noqa: ANN001
    fake = types.SimpleNamespace(App=type("App", (), {"create_app": staticmethod(gen)}))
    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert not api_routes.match_calls_first(fake, fastapi_routing, gradio_version, fastapi_version)
    assert fake.App.create_app is gen
    assert "is not the pinned" in caplog.text


def test_restoring_gives_gradios_own_create_app_back(apps) -> None:  # noqa: ANN001
    wrapped = routes.App.create_app
    api_routes.restore_create_app(routes)
    try:
        assert routes.App.create_app is not wrapped and api_routes.MARK not in routes.App.__dict__
        stock = api_routes.gradio_router(build_app(routes.App.create_app), fastapi_routing)
        assert not stock.routes[0].path.startswith(api_routes.HOT)
    finally:
        assert api_routes.match_calls_first(routes, fastapi_routing, gr.__version__, fastapi.__version__)


def test_a_router_without_a_routes_version_is_left_alone(caplog) -> None:  # noqa: ANN001
    router = types.SimpleNamespace(routes=[])
    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert api_routes.calls_first(router) == 0
    assert "keeps no routes version" in caplog.text
