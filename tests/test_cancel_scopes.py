"""AnyIO's cancel scopes naming their task by name (``demo_core.serving.cancel_scopes``): they cancel as before.

Run: ``python -m pytest -q tests/test_cancel_scopes.py``.
"""

from __future__ import annotations

import asyncio
import logging
import types

import anyio
import pytest
from anyio._backends import _asyncio as backend
from starlette.requests import Request

from demo_core.serving import cancel_scopes


@pytest.fixture(autouse=True)
def applied() -> None:
    assert cancel_scopes.name_tasks_cheaply(backend)
    assert cancel_scopes.name_tasks_cheaply(backend)  # a second call changes nothing


def test_a_cancelled_scope_stops_its_body_and_names_the_task_by_name() -> None:
    async def main() -> tuple[bool, bool, str]:
        asyncio.current_task().set_name("the-caller")
        reached = False
        with anyio.CancelScope() as scope:
            scope.cancel("asked to")
            await anyio.sleep(5)
            reached = True
        return reached, scope.cancelled_caught, scope._cancel_reason

    reached, caught, reason = asyncio.run(main())
    assert not reached and caught
    assert reason.endswith(" by task the-caller; reason: asked to") and "<Task" not in reason


def test_a_deadline_still_cancels() -> None:
    async def main() -> bool:
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep(5)
        return scope.cancelled_caught

    assert asyncio.run(main())


def test_starlettes_disconnect_check_sees_both_answers() -> None:
    async def disconnected() -> dict:
        return {"type": "http.disconnect"}

    async def silent() -> dict:
        await asyncio.sleep(5)
        return {"type": "http.request"}

    async def main() -> tuple[bool, bool]:
        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        return (await Request(scope, disconnected).is_disconnected(), await Request(scope, silent).is_disconnected())

    assert asyncio.run(main()) == (True, False)


def test_restoring_gives_anyios_own_method_back() -> None:
    replaced = backend.CancelScope.cancel
    cancel_scopes.restore_cancel(backend)
    try:
        assert backend.CancelScope.cancel is not replaced
        assert cancel_scopes.source_digest(backend.CancelScope.cancel) == cancel_scopes.CANCEL_SOURCE
    finally:
        assert cancel_scopes.name_tasks_cheaply(backend)


def test_another_anyio_is_left_alone(caplog) -> None:  # noqa: ANN001
    class CancelScope:
        def cancel(self, reason: str | None = None) -> None:
            self.reason = reason

    fake = types.SimpleNamespace(CancelScope=CancelScope, current_task=asyncio.current_task)
    with caplog.at_level(logging.WARNING, logger="seq2seq_explorer"):
        assert not cancel_scopes.name_tasks_cheaply(fake)
    assert "keep their task reprs" in caplog.text
    assert not hasattr(CancelScope, cancel_scopes.MARK)
