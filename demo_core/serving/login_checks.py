"""Gradio's login check runs on the event loop, not in a worker thread and back.

Every route of Gradio's API and queue depends on ``login_check`` (``dependencies=[Depends(login_check)]``
in ``gradio.routes.App.create_app``), a plain function that reads two attributes of the app and
returns, or raises 401 when the app has a login and the request is not logged in. FastAPI runs a
plain function dependency with Starlette's ``run_in_threadpool``: an AnyIO worker thread, woken
and waited for, on every request. A raw API call is two requests (the ``POST`` that starts it and
the ``GET`` of its event stream), a page event two more (``/queue/join``, ``/queue/data``). Under
20 clients the hand-overs were a good part of the event loop's work per call (``python
benchmarks/profile_server.py``: ``solve_dependencies`` → ``run_in_threadpool`` → ``run_sync``).

``check_logins_inline`` replaces the ``run_in_threadpool`` that FastAPI's dependency solver calls
(``fastapi.dependencies.utils.run_in_threadpool``) with one that calls Gradio's ``login_check``
directly and hands every other function to Starlette's as before. The check does the same thing,
with the same result or the same exception; only the thread differs. Tied to one Gradio and one
FastAPI like ``api_routes.py``: applied only for the pinned versions, when the solver's
``run_in_threadpool`` is Starlette's.

    from fastapi.dependencies import utils
    check_logins_inline(utils, gr.__version__, fastapi.__version__)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from starlette import concurrency

from demo_core.serving.api_routes import PINNED_FASTAPI
from demo_core.serving.sessions import PINNED_GRADIO, restore_members

LOG = logging.getLogger("seq2seq_explorer")
MARK = "_s2s_stock_run_in_threadpool"  # set on the solver's module once replaced: {"run_in_threadpool": Starlette's}
LOGIN_CHECK = ("gradio.routes", "App.create_app.<locals>.login_check")  # where Gradio defines it: module, qualname


def is_login_check(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is Gradio's ``login_check`` (defined anew inside each ``create_app``)."""
    return (getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)) == LOGIN_CHECK


def check_logins_inline(solver: ModuleType, gradio_version: str, fastapi_version: str) -> bool:
    """Make ``solver`` (``fastapi.dependencies.utils``) call Gradio's ``login_check`` on the event loop. True once
    applied (a second call changes nothing); False, with a log line, when Gradio, FastAPI or the solver is not the
    one this was written for."""
    if MARK in vars(solver):
        return True
    stock = getattr(solver, "run_in_threadpool", None)
    why = (f"gradio {gradio_version} is not the pinned {PINNED_GRADIO}" if gradio_version != PINNED_GRADIO
           else f"fastapi {fastapi_version} is not the pinned {PINNED_FASTAPI}" if fastapi_version != PINNED_FASTAPI
           else "FastAPI's dependency solver does not call Starlette's run_in_threadpool"
           if stock is not concurrency.run_in_threadpool else None)
    if why:
        LOG.warning("Gradio's login check stays in a worker thread: %s", why)
        return False

    async def run_in_threadpool(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Starlette's ``run_in_threadpool``, except that Gradio's login check is called here, on the event loop."""
        if is_login_check(func):
            return func(*args, **kwargs)
        return await stock(func, *args, **kwargs)

    setattr(solver, MARK, {"run_in_threadpool": stock})
    solver.run_in_threadpool = run_in_threadpool
    LOG.info("Gradio's login check runs on the event loop")
    return True


def restore_run_in_threadpool(solver: ModuleType) -> None:
    """Undo ``check_logins_inline``: the solver hands every plain dependency to a worker thread again."""
    restore_members(solver, MARK)
