"""Gradio's login check run on the event loop instead of in a worker thread.

Every Gradio route depends on ``login_check``, a plain function, and FastAPI runs a plain
dependency in a worker thread: a thread hop for every request, two for each call of Gradio's API
(the call, then its event stream), and each hop waits for Python's GIL behind the threads that
run Python (the handlers, the batcher). The check only compares a cookie with a dict, so
``inline`` swaps it, in every route's dependency tree, for a coroutine that calls it directly on
the event loop: same arguments, same result, same refusals (``tests/test_inline_checks.py``).
``lifespan`` does it when the server starts, before the first request.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

LOG = logging.getLogger("seq2seq_explorer")
CHECKS = ("login_check",)  # Gradio's plain dependencies that are cheap and never block
MARK = "_s2s_inline_of"  # the attribute a coroutine made here carries: the function it calls


def as_coroutine(function: Callable[..., Any]) -> Callable[..., Any]:
    """A coroutine function that calls ``function`` with the same arguments (FastAPI passes them by name).
    Not ``functools.wraps``: FastAPI would unwrap it and see the plain function again."""

    async def inline(**values: Any) -> Any:
        return function(**values)

    inline.__name__ = inline.__qualname__ = f"inline_{function.__name__}"
    setattr(inline, MARK, function)
    return inline


def inline(app: Any, names: tuple[str, ...] = CHECKS) -> int:
    """Swap the plain dependencies called ``names`` in every route of ``app`` (a FastAPI app) for
    coroutines; returns how many dependency entries were swapped."""
    made: dict[int, Callable[..., Any]] = {}

    def visit(dependant: Any) -> int:
        swapped = 0
        for sub in getattr(dependant, "dependencies", []):
            call = sub.call
            if getattr(call, "__name__", None) in names and not inspect.iscoroutinefunction(call):
                sub.call = made.setdefault(id(call), as_coroutine(call))
                swapped += 1
            swapped += visit(sub)
        return swapped

    def routes_of(route: Any) -> list[Any]:
        """``route`` and, for a router included in another (FastAPI keeps it whole), the routes it serves."""
        found = [route]
        for name in ("effective_candidates", "effective_low_priority_routes"):  # FastAPI >= 0.16x: built once, kept
            member = getattr(route, name, None)
            if callable(member):
                for inner in member():
                    found += routes_of(inner)
        return found

    every = [r for route in getattr(getattr(app, "router", None), "routes", []) for r in routes_of(route)]
    dependants = {id(d): d for d in (getattr(r, "dependant", None) for r in every) if d is not None}
    return sum(visit(d) for d in dependants.values())


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """A FastAPI lifespan that inlines the checks when the server starts (``app_kwargs["lifespan"]``)."""
    LOG.info("login checks run on the event loop in %d route dependencies", inline(app))
    yield
