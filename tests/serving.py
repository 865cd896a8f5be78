"""Serve a page for a test module: ``app.build_demo`` over any checkpoint folder, on a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr

import app
from demo_core.pipeline import ModelRegistry


def demo_for(root: Path) -> gr.Blocks:
    """The page and API over the model folders under ``root`` (the module-level ``app.demo`` is left alone)."""
    return app.build_demo(ModelRegistry(root))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo: gr.Blocks) -> Iterator[str]:
    """Launch ``demo`` (as ``app.launch`` does: theme and CSS) on a free local port; yields its URL, closes it after."""
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
