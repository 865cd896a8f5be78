"""Cheap Gradio sessions: a new session works out its blocks' configs only when something asks.

Gradio 6.31 creates a ``SessionState`` for every new session, and every raw API call is a new
session (``POST /gradio_api/call/generate`` carries no session of its own). Its ``__init__``
computes ``config_for_block`` for every block of the page (144 of them) so that a deep link can
later restore the page as that session saw it: 16 ms of Python on the server's event loop per
call in process, 60% of the server's CPU per refused call under load (docs/SPEED.md, "Under
load"). Each ``gr.update`` an event returns costs two more (``__setitem__``, then
``_update_config``), each with the component's JSON schema: of the 25 ms Gradio spent
postprocessing one run of the page, 15 went there (``benchmarks/load.py`` prints both).
Nothing but that deep link reads those configs: in 6.31 ``config_values`` is read only by
``SessionState.components`` (the ``/gradio_api/deep_link`` route), and written by
``__setitem__``, ``_update_config`` and ``_update_value_in_config``. So
``make_sessions_lazy`` swaps five members of the class:

- ``__init__`` records which blocks the session starts with (the same ones, the same order)
  and computes none of their configs;
- ``__setitem__`` and ``_update_config`` do what they do, but leave a ``Pending`` entry holding
  the block stock Gradio would compute the config of (``__setitem__``: the block being replaced,
  as stock Gradio does; ``_update_config``: the new one). A stateful block's config (computed
  from the session's state value, which the app may change in place) is computed at once, as in
  stock Gradio;
- ``_update_value_in_config``, which Gradio calls for every input and output of every event
  (stock: computing the block's config first if it is missing, ~0.1 ms a block), keeps the value
  in the ``Pending`` entry (a new one, holding the block of the moment, if there was none);
- ``components`` computes the missing and pending ones (a pending value written in, as stock
  Gradio would have done), so a deep link yields exactly the configs, in exactly the order,
  that stock Gradio's would.

This holds because Gradio never changes a block in place once the page is built (an update
replaces it in the session through ``__setitem__``), so a config computed later from the same
block object is the one stock Gradio computed earlier.

The patch is tied to one Gradio: it is applied only when the version is the one
requirements.txt pins and the source of the members it replaces or relies on is the one read
when it was written; otherwise nothing changes and a log line says why. ``demo_core`` never imports gradio: the app
passes the class and the version in.

    from gradio.state_holder import SessionState
    make_sessions_lazy(SessionState, gr.__version__)  # once, before launch
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import logging
import os
from collections.abc import Iterator
from copy import copy
from types import ModuleType
from typing import Any

LOG = logging.getLogger("seq2seq_explorer")
PINNED_GRADIO = "6.31.0"  # requirements.txt
# sha256 of ``inspect.getsource`` of the members replaced, as shipped in Gradio 6.31.0 (first 16 hex digits)
EXPECTED_SOURCE = {"__init__": "1b2ea21dc42c45da", "components": "010247a9cb27797d",
                   "_update_value_in_config": "7e5b61f747b0dce7", "__setitem__": "49a413d82fc29603",
                   "_update_config": "4fbf595c7b71660c"}
# ... and of the members the lazy ones call
RELIED_ON_SOURCE = {"__getitem__": "f7eac2b204848b01", "__contains__": "816f69d2b6806d2a"}
MARK = "_s2s_lazy_configs"  # set on the class once patched, holding the stock members


def source_digest(member: Any) -> str | None:
    """The first 16 hex digits of the sha256 of ``member``'s source (a property: its getter); None if unreadable."""
    function = member.fget if isinstance(member, property) else member
    try:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        return None


def restore_members(owner: type | ModuleType, mark: str) -> None:
    """Undo a replacement of members of ``owner`` (a class or a module) that kept the stock ones under ``mark``
    as a dict of name to member, as stored on ``owner``; nothing when none was made."""
    stock: dict[str, Any] | None = vars(owner).get(mark)
    if stock is None:
        return
    for name, member in stock.items():
        setattr(owner, name, member)
    delattr(owner, mark)


def mismatch(session_class: type, version: str) -> str | None:
    """Why ``session_class`` of Gradio ``version`` is not the one this patch was written for; None if it is."""
    if version != PINNED_GRADIO:
        return f"gradio {version} is not the pinned {PINNED_GRADIO}"
    for name, digest in (EXPECTED_SOURCE | RELIED_ON_SOURCE).items():
        member = inspect.getattr_static(session_class, name, None)
        if member is None:
            return f"{session_class.__qualname__} has no {name}"
        if source_digest(member) != digest:
            return f"{session_class.__qualname__}.{name} is not the one of gradio {PINNED_GRADIO}"
    return None


UNSET = object()  # a Pending entry no value was written into


class Pending(dict):
    """A block's place in ``config_values`` whose config is not computed yet: the block to compute it from and the
    value written for it since (``UNSET`` if none). An empty dict, so stock Gradio's members (after
    ``make_sessions_eager``) skip it instead of failing."""

    def __init__(self, block: Any, value: Any = UNSET) -> None:
        super().__init__()
        self.block, self.value = block, value


def lazy_setitem(self: Any, key: int, value: Any) -> None:
    """Stock ``__setitem__`` with the config (of the block being replaced, as stock Gradio computes it) left pending."""
    from gradio.components import State  # called by Gradio only, so gradio is loaded (as stock Gradio imports it)

    block = self.blocks_config.blocks.get(key)
    if isinstance(block, State):
        self._state_ttl[key] = (block.time_to_live, datetime.datetime.now())
        self.state_data[key] = value
    else:
        self.blocks_config.blocks[key] = value
    if block:
        self.config_values[key] = Pending(block)


def lazy_update_config(self: Any, key: int) -> None:
    """Stock ``_update_config`` with the config of a (stateless) block left pending."""
    item = self[key]  # as stock: for a stateful block this also creates its state
    if item is None:
        return
    block = self.blocks_config.blocks.get(key)
    if block is not None and block.stateful:  # the config of a state value the app may change in place: now
        self.config_values[key] = self.blocks_config.config_for_block(key, [], item)
    else:
        self.config_values[key] = Pending(item)


def lazy_update_value_in_config(self: Any, key: int, value: Any) -> None:
    """Stock ``_update_value_in_config`` without computing a missing config now: the value waits in a ``Pending``
    entry (the latest one wins, as stock Gradio's last write does) until ``components`` needs the config."""
    config = self.config_values.get(key)
    if config is None:
        self.config_values[key] = Pending(self.blocks_config.blocks[key], value)
    elif isinstance(config, Pending):
        config.value = value
    elif "props" in config:
        config["props"]["value"] = value


def resolved(self: Any, key: int) -> Any:
    """The config at ``key``, computed now (its pending value written in) if it is ``Pending``."""
    config = self.config_values[key]
    if isinstance(config, Pending):
        pending = config
        config = self.config_values[key] = self.blocks_config.config_for_block(key, [], pending.block)
        if pending.value is not UNSET and "props" in config:
            config["props"]["value"] = pending.value
    return config


def lazy_init(self: Any, blocks: Any) -> None:
    """Stock ``SessionState.__init__`` without computing any block's config (``config_values`` starts empty)."""
    self.blocks_config = copy(blocks.default_config)
    self.config_values = {}
    # The blocks whose configs stock Gradio computes here, in its order: ``components`` computes them when asked.
    self._initial_blocks = {k: v for k, v in self.blocks_config.blocks.items() if k in blocks.blocks}
    self.state_data = {}
    self._state_ttl = {}
    self.is_closed = False
    # When a session is closed, stock Gradio keeps its state for an hour (1 s in its end-to-end tests).
    self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600


def lazy_components(self: Any) -> Iterator[dict]:
    """Every block's config as stock ``components`` yields it: the initial blocks first (computed now if no
    writer did it yet), then the blocks added since, in the order they were added; pending ones computed now."""
    initial: dict = getattr(self, "_initial_blocks", {})  # {} for a session created before the patch
    configs = self.config_values
    for key, block in initial.items():
        if key not in configs:
            configs[key] = self.blocks_config.config_for_block(key, [], block)
    later = [key for key in configs if key not in initial]
    for key in [*initial, *later]:
        config = resolved(self, key)
        if config:
            yield config


def make_sessions_lazy(session_class: type, version: str) -> bool:
    """Make new sessions of ``session_class`` (``gradio.state_holder.SessionState``) compute their blocks'
    configs only when asked; ``version``: ``gradio.__version__``. True once applied (a second call changes
    nothing); False, with a log line, when Gradio is not the one this was written for."""
    if MARK in vars(session_class):
        return True
    why = mismatch(session_class, version)
    if why:
        LOG.warning("new Gradio sessions stay eager (each API call computes every block's config): %s", why)
        return False
    setattr(session_class, MARK, {name: inspect.getattr_static(session_class, name) for name in EXPECTED_SOURCE})
    session_class.__init__ = lazy_init
    session_class.__setitem__ = lazy_setitem
    session_class._update_config = lazy_update_config
    session_class._update_value_in_config = lazy_update_value_in_config
    session_class.components = property(lazy_components, doc=lazy_components.__doc__)
    LOG.info("new Gradio sessions compute their blocks' configs only when a deep link asks")
    return True


def make_sessions_eager(session_class: type) -> None:
    """Undo ``make_sessions_lazy``: stock Gradio again, for comparisons and tests (a session created while the
    patch was on still needs the lazy ``components`` for a complete deep link)."""
    restore_members(session_class, MARK)
