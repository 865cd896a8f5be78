"""The app's API over raw HTTP, for the benchmarks: start ``python app.py``, call an endpoint, read the server's memory.

Raw calls (``POST /gradio_api/call/NAME``, then the event stream) are what a script without
``gradio_client`` sends; each one is a new Gradio session, the case that used to leak memory.
Parameters go by name: ``Api.values`` fills the rest with the defaults ``/gradio_api/info`` lists.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Reply:
    """One call's outcome: ``data`` (the endpoint's return value) or ``error`` (the server's message)."""

    ok: bool
    data: Any
    error: str | None
    bytes: int  # the event stream's size, envelope included
    seconds: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(timeout_s: float = 180.0, env: dict[str, str] | None = None,
               log: Path | None = None) -> Iterator[tuple[str, int]]:
    """``python app.py`` on a free local port; yields (its URL, its process id) once it answers, stops it after.
    ``log``: a file for the server's output (default: discarded)."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
               **(env or {}))
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        start = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.perf_counter() - start > timeout_s:
                    raise RuntimeError(f"app.py did not start (exit code {server.poll()})") from None
                time.sleep(0.2)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
        if log:
            out.close()


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Api:
    """The named endpoints of the app at ``url``, called over raw HTTP: Gradio's API (two requests: the call,
    then its event stream), or with ``plain`` the app's plain routes (one request: ``POST /gradio_api/v1/NAME``)."""

    def __init__(self, url: str, plain: bool = False) -> None:
        self.url, self.plain = url, plain
        with urllib.request.urlopen(url + "gradio_api/info", timeout=30) as answer:
            info = json.loads(answer.read())
        self.params = {name: [(p["parameter_name"], p.get("parameter_default")) for p in spec["parameters"]]
                       for name, spec in info["named_endpoints"].items()}

    def values(self, endpoint: str, **given: Any) -> list:
        """Every parameter of ``endpoint`` in order: ``given`` by name, else its default."""
        names = [name for name, _ in self.params[endpoint]]
        unknown = set(given) - set(names)
        if unknown:
            raise ValueError(f"{endpoint} has no parameter {', '.join(sorted(unknown))}")
        return [given.get(name, default) for name, default in self.params[endpoint]]

    def call(self, endpoint: str, timeout_s: float = 120.0, **given: Any) -> Reply:
        """One call of ``endpoint`` (e.g. "/generate") with parameters by name."""
        if self.plain:
            return self.call_plain(endpoint, timeout_s, **given)
        start = time.perf_counter()
        body = json.dumps({"data": self.values(endpoint, **given)}).encode()
        request = urllib.request.Request(f"{self.url}gradio_api/call{endpoint}", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            event_id = json.loads(answer.read())["event_id"]
        try:
            with urllib.request.urlopen(f"{self.url}gradio_api/call{endpoint}/{event_id}", timeout=timeout_s) as answer:
                stream = answer.read()
        except http.client.IncompleteRead as exc:  # the server closed the event stream early
            return Reply(False, None, f"stream cut after {len(exc.partial)} bytes", len(exc.partial), time.perf_counter() - start)
        seconds = time.perf_counter() - start
        event, _, data = stream.decode().rpartition("event: ")[2].partition("\ndata:")
        payload = json.loads(data.strip() or "null")
        if event.strip() == "complete":
            return Reply(True, payload[0], None, len(stream), seconds)
        message = payload.get("error") if isinstance(payload, dict) else payload
        return Reply(False, None, str(message), len(stream), seconds)

    def call_plain(self, endpoint: str, timeout_s: float = 120.0, **given: Any) -> Reply:
        """One call of the plain route ``/gradio_api/v1{endpoint}`` with parameters by name (the rest: the server's defaults)."""
        self.values(endpoint, **given)  # the same check of the names
        start = time.perf_counter()
        request = urllib.request.Request(f"{self.url}gradio_api/v1{endpoint}", data=json.dumps(given).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                body = answer.read()
        except urllib.error.HTTPError as exc:  # a refusal: its message
            body = exc.read()
            message = json.loads(body or b"null")
            return Reply(False, None, str(message.get("error") if isinstance(message, dict) else message), len(body),
                         time.perf_counter() - start)
        return Reply(True, json.loads(body), None, len(body), time.perf_counter() - start)
