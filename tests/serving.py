"""Start the app for a test module: a fresh copy reading any checkpoint folder, on a free port."""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

APP = Path(__file__).resolve().parent.parent / "app.py"


def load_app(root: Path) -> ModuleType:
    """A fresh copy of ``app.py`` whose registry reads ``root`` (the imported ``app`` is left alone)."""
    before = os.environ.get("S2S_CHECKPOINTS")
    os.environ["S2S_CHECKPOINTS"] = str(root)
    try:
        spec = importlib.util.spec_from_file_location(f"app_at_{root.name}", APP)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        if before is None:
            os.environ.pop("S2S_CHECKPOINTS")
        else:
            os.environ["S2S_CHECKPOINTS"] = before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app: ModuleType) -> Iterator[str]:
    """Launch ``app`` on a free local port; yields its URL and closes the server afterwards."""
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.demo.close()
