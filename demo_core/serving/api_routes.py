"""Gradio's API call routes matched first among its own.

A request's path is matched against the app's routes one by one, in order. Gradio 6.31 keeps its
63 ``/gradio_api/...`` routes in one router, after 21 routes of its own page, and the ones every
API call takes, ``/gradio_api/call/...`` (the ``POST`` that starts a call and the ``GET`` of its
event stream) and ``/gradio_api/queue/...`` (the page's and ``gradio_client``'s), come 37th to
45th in it; FastAPI 0.165 looks a request's route up twice (once to choose it, once to run it).
Under 20 clients that matching was about a tenth of the event loop's samples (``python
benchmarks/profile_server.py``).

``match_calls_first`` wraps Gradio's ``App.create_app`` so that in every app it builds, those
routes come first in that router, in their own order, and the others follow in theirs. No request
changes hands: before moving, it checks that none of the routes they pass could match a path of
theirs, nor they a path of the passed routes (each path parameter filled in with a sample
value), and leaves the order alone if one could. Tied to one Gradio and one FastAPI like
``sessions.py``: applied only for the pinned versions, and when the router is where it was.

    from fastapi import routing as fastapi_routing
    from gradio import routes
    match_calls_first(routes, fastapi_routing, gr.__version__, fastapi.__version__)
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from demo_core.serving.sessions import PINNED_GRADIO, restore_members

LOG = logging.getLogger("seq2seq_explorer")
PINNED_FASTAPI = "0.165.0"  # requirements.txt
HOT = ("/gradio_api/call/", "/gradio_api/queue/")  # the routes every API call and page event takes
MARK = "_s2s_stock_create_app"  # set on gradio.routes.App once wrapped: {"create_app": the stock staticmethod}
PARAMETER = re.compile(r"{[^}]*}")


def sample_path(route: Any) -> str:
    """A path that ``route`` matches: its path format with every parameter filled in (``{api_name}`` -> ``p``)."""
    return PARAMETER.sub("p", route.path_format)


def calls_first(router: Any) -> int:
    """Move ``router``'s (a FastAPI ``APIRouter``) ``HOT`` routes before its others, each group in its order.
    Returns how many moved; 0 when none would move, or when one of them and a route it passes could match a
    path of the other (then the order is left alone)."""
    if not isinstance(getattr(router, "_routes_version", None), int):
        LOG.warning("Gradio's call routes keep their place: the router keeps no routes version")
        return 0
    routes = list(router.routes)
    hot_ids = {id(route) for route in routes if str(getattr(route, "path", "")).startswith(HOT)}
    hot = [route for route in routes if id(route) in hot_ids]
    rest = [route for route in routes if id(route) not in hot_ids]
    if not hot or all(a is b for a, b in zip(routes, hot)):
        return 0
    for position, route in enumerate(routes):
        if id(route) not in hot_ids:
            continue
        for other in routes[:position]:
            if id(other) not in hot_ids and (other.path_regex.match(sample_path(route))
                                             or route.path_regex.match(sample_path(other))):
                LOG.warning("Gradio's call routes keep their place: %s and %s could match one path", other.path,
                            route.path)
                return 0
    router.routes[:] = hot + rest
    router._routes_version += 1  # FastAPI rebuilds its cached view of an included router when this changes
    return len(hot)


def gradio_router(app: Any, fastapi_routing: ModuleType) -> Any | None:
    """The router of Gradio's ``/gradio_api`` routes in ``app``: FastAPI 0.165 keeps an included router whole."""
    for route in app.router.routes:
        if isinstance(route, fastapi_routing._IncludedRouter):
            routes = getattr(route.original_router, "routes", [])
            if any(str(getattr(r, "path", "")).startswith(HOT) for r in routes):
                return route.original_router
    return None


def mismatch(gradio_version: str, fastapi_version: str, fastapi_routing: ModuleType) -> str | None:
    """Why these are not the Gradio and FastAPI this was written for; None if they are."""
    if gradio_version != PINNED_GRADIO:
        return f"gradio {gradio_version} is not the pinned {PINNED_GRADIO}"
    if fastapi_version != PINNED_FASTAPI:
        return f"fastapi {fastapi_version} is not the pinned {PINNED_FASTAPI}"
    if not hasattr(fastapi_routing, "_IncludedRouter"):
        return "fastapi.routing has no _IncludedRouter"
    return None


def match_calls_first(routes_module: ModuleType, fastapi_routing: ModuleType, gradio_version: str,
                      fastapi_version: str) -> bool:
    """Wrap ``routes_module.App.create_app`` (``gradio.routes``) so that every app it builds matches ``HOT``
    routes first (``calls_first``). True once applied (a second call changes nothing); False, with a log line,
    when Gradio or FastAPI is not the one this was written for."""
    cls = routes_module.App
    if MARK in cls.__dict__:
        return True
    why = mismatch(gradio_version, fastapi_version, fastapi_routing)
    if why:
        LOG.warning("Gradio's call routes keep their place: %s", why)
        return False
    stock: Callable = cls.create_app  # a staticmethod, read through the class: the plain function

    @functools.wraps(stock)
    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = stock(*args, **kwargs)
        router = gradio_router(app, fastapi_routing)
        if router is None:
            LOG.warning("Gradio's call routes keep their place: no router of /gradio_api routes")
        else:
            calls_first(router)
        return app

    setattr(cls, MARK, {"create_app": cls.__dict__["create_app"]})
    cls.create_app = staticmethod(create_app)
    LOG.info("Gradio's call routes are matched first")
    return True


def restore_create_app(routes_module: ModuleType) -> None:
    """Undo ``match_calls_first`` for apps built from now on: Gradio's own ``create_app`` again."""
    restore_members(routes_module.App, MARK)
