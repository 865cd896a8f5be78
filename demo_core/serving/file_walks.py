"""Gradio's walks over every reply in search of files, skipped when a reply holds none.

Gradio 6.31 walks each output value twice in Python on its event loop, looking for file objects
(a dict whose ``meta`` is ``{"_type": "gradio.FileData"}``): ``async_move_files_to_cache`` (to copy
files into its cache) and ``add_root_url`` (to prefix their URLs). Each walk calls a Python function
per number of the reply and rebuilds every dict and list: for replies of attention weights and
alternatives, one of the largest costs of an API call on the event loop. Without this module the
server answered 86.6 calls/s under 20 clients, with it 107.7 (``python benchmarks/server_ab.py``,
docs/SPEED.md "Under load"). The app's text replies never hold a file; only the page's audio does.

``skip_walks_without_files`` wraps both functions in ``gradio.processing_utils``: a value is first
written by orjson (C, a few µs a kB), and if the text contains neither ``"meta"`` nor
``gradio.FileData`` no part of it can be a file object, so the value is returned as it is. Anything
else (a file, a ``"meta"`` anywhere, a value orjson cannot write: a Pydantic model, a non-string
key, an integer over 64 bits) takes Gradio's own walk. A skipped walk returns the value itself
where Gradio's returns a copy of its dicts and lists, with tuples made lists; Gradio 6.31 only
writes that result to JSON afterwards (its event message, its optional run history), where a tuple
and a list are written alike.

Why the text test is exact: Gradio's ``is_file_obj_with_meta`` needs a dict with the keys ``path``
and ``meta`` and ``meta["_type"] == "gradio.FileData"``; orjson writes every dict key and string as
JSON (escaping only quotes, backslashes and control characters), so such a dict always leaves both
``"meta"`` and ``gradio.FileData`` in the text. Without the key ``"meta"``, Gradio's test is False for
every dict without reading further, so the stock walk would find nothing and change nothing.

Tied to one Gradio like ``sessions.py``: applied only for the pinned version and when the source of
the wrapped functions and of the tests they rely on is the one read when this was written.
``demo_core`` never imports gradio: the app passes the modules in.

    from gradio import data_classes, processing_utils
    from gradio_client import utils as client_utils
    skip_walks_without_files(processing_utils, client_utils, (data_classes.GradioModel, data_classes.GradioRootModel),
                             gr.__version__)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson

from demo_core.serving.sessions import PINNED_GRADIO, restore_members, source_digest

LOG = logging.getLogger("seq2seq_explorer")
# sha256 of the source of the functions wrapped (in gradio.processing_utils) and relied on (gradio_client.utils), as
# shipped in Gradio 6.31.0 and gradio_client 2.7.2 (first 16 hex digits)
WRAPPED_SOURCE = {"async_move_files_to_cache": "135eed5a9a73e53a", "add_root_url": "515f2ca0c75a416c"}
RELIED_ON_SOURCE = {"traverse": "f28947e0bba40832", "async_traverse": "2c3974d6b09af4e2",
                    "is_file_obj_with_meta": "9020a636fb9b8bb3", "is_file_obj_with_url": "acc32f2d56cf4f63"}
MARK = "_s2s_stock_walks"  # set on gradio.processing_utils once wrapped, holding the stock functions
KEY = b'"meta"'
FILE_TYPE = b"gradio.FileData"
LEAVES = (str, int, float, bool)  # exactly these types: a subclass may be anything


def holds_no_file(value: Any) -> bool:
    """True when ``value`` is JSON that orjson can write and whose text has no ``"meta"`` and no ``gradio.FileData``:
    then no dict in it is a Gradio file object (see the module's docstring). False means "maybe": walk it.
    A string, number, bool or None, alone or in a flat list (the page's HTML outputs), is no file and is not written:
    Gradio's walk over those is cheaper than writing them."""
    if value is None or type(value) in LEAVES:
        return True
    if type(value) in (list, tuple) and all(item is None or type(item) in LEAVES for item in value):
        return True
    try:
        text = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a model, a non-string key, an integer over 64 bits, an unknown type
        return False
    return KEY not in text and FILE_TYPE not in text


def mismatch(processing_utils: ModuleType, client_utils: ModuleType, version: str) -> str | None:
    """Why these modules of Gradio ``version`` are not the ones this was written for; None if they are."""
    if version != PINNED_GRADIO:
        return f"gradio {version} is not the pinned {PINNED_GRADIO}"
    for module, expected in ((processing_utils, WRAPPED_SOURCE), (client_utils, RELIED_ON_SOURCE)):
        for name, digest in expected.items():
            function = getattr(module, name, None)
            if function is None:
                return f"{module.__name__} has no {name}"
            if source_digest(function) != digest:
                return f"{module.__name__}.{name} is not the one of gradio {PINNED_GRADIO}"
    return None


def skip_walks_without_files(processing_utils: ModuleType, client_utils: ModuleType, models: tuple[type, ...],
                             version: str) -> bool:
    """Wrap ``processing_utils.async_move_files_to_cache`` and ``add_root_url`` so that a value holding no file
    object is returned without Gradio's walk; ``models``: Gradio's model classes, which the first one turns into
    dicts before walking (``GradioModel``, ``GradioRootModel``). True once applied (a second call changes nothing);
    False, with a log line, when Gradio is not the one this was written for."""
    if hasattr(processing_utils, MARK):
        return True
    why = mismatch(processing_utils, client_utils, version)
    if why:
        LOG.warning("Gradio walks every reply for files: %s", why)
        return False
    stock_move: Callable = processing_utils.async_move_files_to_cache
    stock_root: Callable = processing_utils.add_root_url

    @functools.wraps(stock_move)
    async def async_move_files_to_cache(data: Any, block: Any, postprocess: bool = False,
                                        check_in_upload_folder: bool = False, keep_in_cache: bool = False) -> Any:
        plain = data.model_dump() if isinstance(data, models) else data  # what Gradio's own first step does
        if holds_no_file(plain):
            return plain
        return await stock_move(data, block, postprocess=postprocess, check_in_upload_folder=check_in_upload_folder,
                                keep_in_cache=keep_in_cache)

    @functools.wraps(stock_root)
    def add_root_url(data: Any, root_url: str, previous_root_url: str | None) -> Any:
        if holds_no_file(data):
            return data
        return stock_root(data, root_url, previous_root_url)

    setattr(processing_utils, MARK, {"async_move_files_to_cache": stock_move, "add_root_url": stock_root})
    processing_utils.async_move_files_to_cache = async_move_files_to_cache
    processing_utils.add_root_url = add_root_url
    LOG.info("Gradio walks a reply for files only when it may hold one")
    return True


def restore_walks(processing_utils: ModuleType) -> None:
    """Undo ``skip_walks_without_files``: Gradio's own functions again, for comparisons and tests."""
    restore_members(processing_utils, MARK)
