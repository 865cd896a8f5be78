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
import threading
import time
import urllib.parse
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
               log: Path | None = None, argv: list[str] | None = None) -> Iterator[tuple[str, int]]:
    """``python app.py`` (or ``argv``, run from the repository) on a free local port; yields (its URL, its process
    id) once it answers, stops it after. ``log``: a file for the server's output (default: discarded)."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
               **(env or {}))
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    server = subprocess.Popen(argv or [sys.executable, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
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
    then its event stream), or with ``plain`` the app's plain routes (one request: ``POST /gradio_api/v1/NAME``).

    Each thread keeps one HTTP/1.1 connection open and reuses it, as ``requests.Session``, ``httpx.Client`` and
    browsers do: on a loopback benchmark the clients share the server's cores, so they should cost it as little as a
    real client would.
    """

    def __init__(self, url: str, plain: bool = False) -> None:
        self.url, self.plain = url, plain
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.local = threading.local()  # this thread's connection
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

    def request(self, method: str, path: str, body: bytes | None, timeout_s: float) -> tuple[int, bytes]:
        """One request on this thread's kept-alive connection: (status, body). A connection the server closed while
        it was idle is opened again once; any other failure is raised (``OSError`` or ``http.client.HTTPException``)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for reused in (True, False):
            connection = getattr(self.local, "connection", None)
            fresh = connection is None
            if fresh:
                connection = self.local.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
            connection.timeout = timeout_s
            if connection.sock is not None:
                connection.sock.settimeout(timeout_s)
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if fresh or not reused:
                    raise
                continue  # the kept connection had been closed: once more on a new one
            except BaseException:
                self.close()
                raise
            if answer.will_close:
                self.close()
            return answer.status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connection (the next request opens a new one)."""
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
            self.local.connection = None

    def call(self, endpoint: str, timeout_s: float = 120.0, **given: Any) -> Reply:
        """One call of ``endpoint`` (e.g. "/generate") with parameters by name."""
        if self.plain:
            return self.call_plain(endpoint, timeout_s, **given)
        start = time.perf_counter()
        body = json.dumps({"data": self.values(endpoint, **given)}).encode()
        status, answer = self.request("POST", f"/gradio_api/call{endpoint}", body, timeout_s)
        if status != 200:
            return Reply(False, None, f"HTTP {status}: {answer[:200].decode(errors='replace')}", len(answer),
                         time.perf_counter() - start)
        event_id = json.loads(answer)["event_id"]
        try:
            status, stream = self.request("GET", f"/gradio_api/call{endpoint}/{event_id}", None, timeout_s)
        except http.client.IncompleteRead as exc:  # the server closed the event stream early
            return Reply(False, None, f"stream cut after {len(exc.partial)} bytes", len(exc.partial), time.perf_counter() - start)
        seconds = time.perf_counter() - start
        event, _, data = stream.decode().rpartition("event: ")[2].partition("\ndata:")
        payload = json.loads(data.strip() or "null")
        if status == 200 and event.strip() == "complete":
            return Reply(True, payload[0], None, len(stream), seconds)
        message = payload.get("error") if isinstance(payload, dict) else payload
        return Reply(False, None, str(message), len(stream), seconds)

    def call_plain(self, endpoint: str, timeout_s: float = 120.0, **given: Any) -> Reply:
        """One call of the plain route ``/gradio_api/v1{endpoint}`` with parameters by name (the rest: the server's defaults)."""
        self.values(endpoint, **given)  # the same check of the names
        start = time.perf_counter()
        status, body = self.request("POST", f"/gradio_api/v1{endpoint}", json.dumps(given).encode(), timeout_s)
        seconds = time.perf_counter() - start
        if status != 200:  # a refusal: its message
            try:
                message = json.loads(body or b"null")
            except ValueError:  # not the app's JSON (e.g. a proxy's page)
                message = f"HTTP {status}: {body[:200].decode(errors='replace')}"
            return Reply(False, None, str(message.get("error") if isinstance(message, dict) else message), len(body), seconds)
        return Reply(True, json.loads(body), None, len(body), seconds)
