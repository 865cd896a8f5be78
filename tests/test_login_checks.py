"""Gradio's login check on the event loop (``demo_core.serving.login_checks``): same answers, no worker thread."""

from __future__ import annotations

import asyncio

import fastapi
import gradio as gr
import pytest
from fastapi.dependencies import utils

from demo_core.serving import login_checks


def test_only_gradios_login_check_skips_the_thread_pool(monkeypatch):
    """The replacement calls a function named as Gradio's login check directly and hands others to Starlette's."""
    handed: list[str] = []

    async def stock(func, *args, **kwargs):
        handed.append(func.__name__)
        return func(*args, **kwargs)

    monkeypatch.setattr(login_checks.concurrency, "run_in_threadpool", stock)
    monkeypatch.setattr(utils, "run_in_threadpool", stock)
    monkeypatch.delattr(utils, login_checks.MARK, raising=False)
    assert login_checks.check_logins_inline(utils, gr.__version__, fastapi.__version__)
    try:
        def login_check(user=None):
            if user is None:
                raise PermissionError("not logged in")
            return user
        login_check.__module__, login_check.__qualname__ = login_checks.LOGIN_CHECK

        def other(x):
            return x + 1

        assert asyncio.run(utils.run_in_threadpool(login_check, user="u")) == "u"
        with pytest.raises(PermissionError):
            asyncio.run(utils.run_in_threadpool(login_check))
        assert asyncio.run(utils.run_in_threadpool(other, 1)) == 2
        assert handed == ["other"]
    finally:
        login_checks.restore_run_in_threadpool(utils)
    assert utils.run_in_threadpool is stock


def test_other_versions_are_left_alone(monkeypatch):
    monkeypatch.delattr(utils, login_checks.MARK, raising=False)
    before = utils.run_in_threadpool
    assert not login_checks.check_logins_inline(utils, "0.0.1", fastapi.__version__)
    assert utils.run_in_threadpool is before
