"""Plain HTTP routes for the API: ``POST /gradio_api/v1/NAME`` with a JSON object of parameters, one JSON reply.

Gradio's own API (``/gradio_api/call/NAME``, then an event stream) costs two HTTP requests, a queue
event, a session and several passes over the reply per call: 6-9 ms of the server's CPU for a call
it refuses at once, against about 1 ms here (``python benchmarks/load.py``, the refused calls). These routes call the same functions (the
app's ``/generate``, ``/compare``, ``/synthesize``: same parameters, same replies, same messages)
in one request, so a script that sends many calls gets more of them decoded together
(docs/SPEED.md, "Under load").

    curl -s localhost:7860/gradio_api/v1/generate -H 'Content-Type: application/json' \\
         -d '{"text": "Ein Hund läuft.", "model": "de-en-rnn-bahdanau", "strategy": "greedy"}'

Bounded like Gradio's queue: at most ``concurrency`` calls run at once and ``queue_size`` wait;
a call beyond that is refused at once (503, with ``Retry-After``), never left waiting minutes.
A body over ``max_body`` bytes is refused (413). Every refusal is ``{"error": message}``: 400 for
the caller's mistake (the message names the parameter), 500 for a bug (logged by the function).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from demo_core.serving.replies import json_bytes

PREFIX = "/gradio_api/v1/"  # under /gradio_api: what a Node front proxy (Gradio's SSR mode) sends on to Python
MAX_BODY = 64 * 1024  # bytes: a 5,000-character text in JSON, with every option, is well under this
RETRY_AFTER_S = 2  # what a refused caller is told to wait


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``content`` as a JSON reply."""
    return Response(json_bytes(content), status_code=status, media_type="application/json", headers=headers)


def error(message: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


@dataclass
class Admission:
    """How many calls are in the server (running or waiting); the event loop alone changes it."""

    concurrency: int
    queue_size: int
    inside: int = 0
    limiter: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(self.concurrency)

    @property
    def full(self) -> bool:
        return self.inside >= self.concurrency + self.queue_size


def parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The API parameters of an ``app.endpoint`` function (Gradio's ``request`` is not one)."""
    return {name: p for name, p in inspect.signature(function).parameters.items() if name != "request"}


async def read_json(request: Request, max_body: int) -> Any:
    """The request body parsed as JSON; ValueError with the reason (too large: OverflowError)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body:
            raise OverflowError(f"the request body is larger than {max_body // 1024} KB")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the request body is not JSON ({exc})") from None
    except RecursionError:
        raise ValueError("the request body nests too deeply to read") from None


def route(name: str, function: Callable[..., dict], admission: Admission,
          errors: Mapping[type[Exception], int], max_body: int = MAX_BODY) -> Route:
    """``POST /gradio_api/v1/name``: ``function(**body)`` in a worker thread, its dict as the JSON reply.

    ``errors`` maps the exceptions ``function`` raises for a refusal to an HTTP status, most specific
    first (e.g. an internal error before the user-error class it derives from); their messages are
    the reply. Anything else escaping ``function`` is a bug: 500, with its type only.
    """
    known = parameters(function)
    required = [n for n, p in known.items() if p.default is inspect.Parameter.empty]

    async def handle(request: Request) -> Response:
        if admission.full:
            return error(f"The server is busy ({admission.inside} calls are running or waiting); try again in "
                         f"{RETRY_AFTER_S} s.", 503, {"Retry-After": str(RETRY_AFTER_S)})
        admission.inside += 1
        try:
            try:
                given = await read_json(request, max_body)
            except OverflowError as exc:
                return error(f"{exc}.", 413)
            except ValueError as exc:
                return error(f"{exc}.", 400)
            except ClientDisconnect:
                return error("the client closed the connection.", 400)
            if not isinstance(given, dict):
                return error(f"the body must be a JSON object of parameters by name, e.g. {{\"text\": ...}}; got "
                             f"{type(given).__name__}.", 400)
            unknown = sorted(set(given) - set(known))
            if unknown:
                return error(f"/{name} has no parameter {', '.join(map(repr, unknown))}; its parameters are "
                             f"{', '.join(known)}.", 400)
            missing = [n for n in required if n not in given]
            if missing:
                return error(f"{', '.join(missing)} is required.", 400)
            structured = [n for n, v in given.items() if isinstance(v, (list, dict))]
            if structured:  # no parameter takes one; the functions check single values
                kind = "an array" if isinstance(given[structured[0]], list) else "an object"
                return error(f"{structured[0]} must be a single value (text, a number, true or false), got {kind}.", 400)
            try:
                reply = await anyio.to_thread.run_sync(lambda: function(**given), limiter=admission.limiter)
            except Exception as exc:  # noqa: BLE001 (each refusal becomes its status; a bug becomes 500)
                for kind, status in errors.items():
                    if isinstance(exc, kind):
                        return error(str(getattr(exc, "message", exc)), status)
                return error(f"internal error ({type(exc).__name__}).", 500)
            return json_response(reply)
        finally:
            admission.inside -= 1

    return Route(f"{PREFIX}{name}", handle, methods=["POST"], name=f"v1_{name}")


def routes(functions: Mapping[str, Callable[..., dict]], errors: Mapping[type[Exception], int], concurrency: int,
           queue_size: int) -> list[Route]:
    """One ``POST /gradio_api/v1/name`` route per function, sharing one admission bound."""
    admission = Admission(concurrency, queue_size)
    return [route(name, function, admission, errors) for name, function in functions.items()]
