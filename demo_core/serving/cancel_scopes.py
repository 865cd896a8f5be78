"""AnyIO's cancel scopes name the cancelling task by its name, not by its full ``repr``.

Starlette's ``Request.is_disconnected`` asks "is a message waiting?" by opening an AnyIO cancel
scope, cancelling it at once and awaiting the next message. Gradio's event streams (the
``/gradio_api/call/NAME/EVENT`` replies, the page's queue) ask it before every message. AnyIO 4.16
writes a reason into every cancelled scope, ``"Cancelled via cancel scope 7f… by <Task …>"``, and the
``<Task …>`` part is the task's ``repr``: its name, its coroutine and the coroutine's source line,
built by asyncio's ``reprlib`` machinery each time. Under 20 clients ``CancelScope.cancel`` was 3%
of the event loop's samples, most of it that ``repr`` (``python benchmarks/profile_server.py``).
The reason is only ever read as the message of the ``CancelledError`` it causes.

``name_tasks_cheaply`` replaces ``CancelScope.cancel`` with the same method that names the task
by ``Task.get_name()`` (``"… by task Task-123"``). Everything else the method does is unchanged.
Tied to one AnyIO like ``sessions.py`` is to one Gradio: applied only when the method's source is
the one read when this was written (AnyIO 4.16.0, pinned in requirements.txt).

    from anyio._backends import _asyncio
    name_tasks_cheaply(_asyncio)
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from demo_core.serving.sessions import restore_members, source_digest

LOG = logging.getLogger("seq2seq_explorer")
PINNED_ANYIO = "4.16.0"  # requirements.txt
CANCEL_SOURCE = "bfd0f0a712be8930"  # sha256 of ``inspect.getsource(CancelScope.cancel)`` in AnyIO 4.16.0 (16 hex digits)
MARK = "_s2s_stock_cancel"  # set on the CancelScope class once replaced: {"cancel": the stock method}


def name_tasks_cheaply(backend: ModuleType) -> bool:
    """Replace ``backend.CancelScope.cancel`` (``anyio._backends._asyncio``) with one that names the cancelling
    task by its name. True once applied (a second call changes nothing); False, with a log line, when the method
    is not the one this was written for."""
    scope = backend.CancelScope
    if hasattr(scope, MARK):
        return True
    stock = scope.cancel
    if source_digest(stock) != CANCEL_SOURCE:
        LOG.warning("AnyIO's cancel scopes keep their task reprs: CancelScope.cancel is not the one of anyio %s",
                    PINNED_ANYIO)
        return False
    current_task = backend.current_task

    def cancel(self: Any, reason: str | None = None) -> None:
        """AnyIO 4.16's ``CancelScope.cancel``, the task named by ``get_name()`` instead of its ``repr``."""
        if not self._cancel_called:
            if self._timeout_handle:
                self._timeout_handle.cancel()
                self._timeout_handle = None

            self._cancel_called = True
            self._cancel_reason = f"Cancelled via cancel scope {id(self):x}"
            if task := current_task():
                self._cancel_reason += f" by task {task.get_name()}"

            if reason:
                self._cancel_reason += f"; reason: {reason}"

            if self._host_task is not None:
                self._deliver_cancellation(self)

    cancel.__qualname__ = stock.__qualname__
    setattr(scope, MARK, {"cancel": stock})
    scope.cancel = cancel
    LOG.info("AnyIO's cancel scopes name tasks by name")
    return True


def restore_cancel(backend: ModuleType) -> None:
    """Undo ``name_tasks_cheaply``: AnyIO's own method again, for comparisons and tests."""
    restore_members(backend.CancelScope, MARK)
