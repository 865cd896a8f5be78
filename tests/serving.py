"""Serve a page for a test module: ``app.build_demo`` over any checkpoint folder, on a free port."""

from __future__ import annotations

import socket
import threading
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


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never ``playwright install``
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright; closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(demo: gr.Blocks) -> Iterator[str]:
    """Launch ``demo`` (as ``app.launch`` does: theme and CSS) on a free local port; yields its URL, closes it after."""
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        close(demo)


def close(demo: gr.Blocks) -> None:
    """``demo.close()``, with the server's stop event set on the server's own event loop first. Gradio sets that
    asyncio event from the calling thread, which races with the loop ending event streams, each a waiter on it
    ("RuntimeError: deque mutated during iteration"), more often with the 0.5 ms GIL switch interval ``app.launch``
    sets than with Python's 5 ms."""
    event = getattr(getattr(demo, "app", None), "stop_event", None)
    loop = getattr(event, "_loop", None)  # bound when a stream first waited on it
    if event is not None and loop is not None and loop.is_running():
        done = threading.Event()

        def stop() -> None:
            event.set()
            done.set()

        loop.call_soon_threadsafe(stop)
        done.wait(5)
    demo.close()
