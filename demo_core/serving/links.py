"""A link that reopens the page in an exact state: input, model, strategy, settings and the view.

The state travels in the page address's query (``?model=de-en-rnn-bahdanau&text=…&strategy=beam
&beam_size=5&hyp=2&layer=1&head=avg``), so a teacher can put it on a slide and every student's
page opens on the same picture; nothing is stored on the server. Options equal to the model's
starting value are left out, so links stay short. Reading a link checks every value as the API
does; a bad one is dropped with a message naming it, and the rest of the link still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from demo_core.decoding import OPTION
from demo_core.decoding.config import coerce, config_from
from demo_core.pipeline import MAX_INPUT_CHARS, ModelRegistry
from demo_core.serving.requests import decode_defaults
from demo_core.serving.views import ALL_HEADS, AVERAGE_HEADS, CROSS, ENCODER

VIEW_KEYS = ("hyp", "view", "layer", "head")  # the view's part of a link; 1-based numbers as the page shows them
HEAD_WORDS = {"avg": AVERAGE_HEADS, "all": ALL_HEADS}


@dataclass
class Link:
    """What a link asks for; ``problems`` lists the values that were dropped, and why."""

    model: str | None = None
    text: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # option name -> checked value
    hypothesis: int = 0  # 0-based, as the page's selectors
    view: str = CROSS
    layer: int | None = None  # None: the last layer
    head: int = AVERAGE_HEADS
    problems: list[str] = field(default_factory=list)


def link_query(registry: ModelRegistry, model: str, text: str, options: Mapping[str, Any], hypothesis: Any = 0,
               view: Any = CROSS, layer: Any = None, head: Any = AVERAGE_HEADS) -> str:
    """The query part ("?…") of a link to this state; options at the model's starting values are left out."""
    starts = decode_defaults(registry, model)
    params: dict[str, Any] = {"model": model, "text": text}
    for name, value in options.items():
        if name not in OPTION or value is None or value == "" or (OPTION[name].zero_is_blank and value == 0):
            continue
        if value != starts.get(name):
            params[name] = value
    if hypothesis not in (None, 0, "0"):
        params["hyp"] = int(hypothesis) + 1
    if view == ENCODER:
        params["view"] = ENCODER
    if layer is not None:
        params["layer"] = int(layer) + 1
    if head is not None and int(head) != AVERAGE_HEADS:
        params["head"] = "all" if int(head) == ALL_HEADS else int(head) + 1
    return "?" + urlencode(params)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError
    return number


def read_link(registry: ModelRegistry, query: Mapping[str, str]) -> Link:
    """The state a link's query asks for, each value checked; nothing in ``query`` means an empty ``Link``."""
    link = Link()
    model = query.get("model")
    if model is not None:
        if model in registry.available():
            link.model = model
        else:
            link.problems.append(f"model {model!r} is not available here, so the default model is shown")
    text = query.get("text")
    if text is not None:
        if len(text) > MAX_INPUT_CHARS:
            link.problems.append(f"text is longer than {MAX_INPUT_CHARS} characters, so it was not loaded")
        else:
            link.text = text
    for name, raw in query.items():
        if name in OPTION:
            try:
                value = coerce(OPTION[name], raw)
                config_from({name: value})  # its range, checked alone (combinations are checked at the run)
                link.options[name] = value
            except ValueError as exc:
                link.problems.append(f"{exc}; that setting was ignored")
    readers = {"hyp": ("hypothesis", lambda v: _positive(v) - 1), "layer": ("layer", lambda v: _positive(v) - 1),
               "head": ("head", lambda v: HEAD_WORDS[v] if v in HEAD_WORDS else _positive(v) - 1),
               "view": ("view", lambda v: {CROSS: CROSS, ENCODER: ENCODER}[v])}
    for key, (attribute, read) in readers.items():
        if key in query:
            try:
                setattr(link, attribute, read(query[key]))
            except (ValueError, KeyError):
                link.problems.append(f"{key}={query[key]!r} is not a valid choice; that part of the view was ignored")
    return link
