"""Seq2Seq Attention Explorer: type a sentence, decode it, and see where the model looked.

Run ``python app.py`` (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address). Models are
the folders under ``checkpoints/`` (or ``$S2S_CHECKPOINTS``), loaded on first use and cached.
The "Explore" tab shows one run (every layer and head of a Transformer, or a grid of all heads);
the "Compare" tab runs one input through two models or two strategies side by side.
The API has two endpoints:

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860")
    client.predict("Zwei Hunde spielen im Schnee.", "de-en-rnn-bahdanau", "beam", api_name="/generate")
    client.predict("Zwei Hunde spielen im Schnee.", "de-en-rnn-bahdanau", "greedy",
                   "de-en-rnn-bahdanau", "beam", api_name="/compare")  # {"a": ..., "b": ...}

``build_demo(registry)`` builds the page for any set of models; the module-level ``demo`` is
the one Hugging Face Spaces serves. The decoding controls, the endpoints' parameters and their
defaults all come from ``demo_core.decoding.OPTIONS`` and are wired by name. This file only
wires components to ``demo_core.serving``; no model or plotting code lives here.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import fastapi
import gradio as gr
import torch
from anyio._backends import _asyncio as anyio_asyncio
from fastapi import routing as fastapi_routing
from fastapi.dependencies import utils as fastapi_dependencies
from gradio import data_classes, processing_utils
from gradio import routes as gradio_routes
from gradio.state_holder import SessionState
from gradio_client import utils as client_utils

from demo_core.decoding import OPTION, OPTIONS, Option
from demo_core.decoding.config import STRATEGY_LABELS
from demo_core.figures_speech import synthesis_figure
from demo_core.pipeline import MAX_INPUT_CHARS, DecodeResult, InputError, ModelRegistry
from demo_core.serving import (
    attention_view,
    branching,
    catalogue,
    fonts,
    lab_json,
    lab_view,
    links,
    pronunciation,
    replies,
    rest,
    synthesis,
    views,
)
from demo_core.serving.api_routes import match_calls_first
from demo_core.serving.batcher import MAX_BATCH, SHORT_WORKERS, Batcher
from demo_core.serving.cancel_scopes import name_tasks_cheaply
from demo_core.serving.explanations import explanation
from demo_core.serving.file_walks import skip_walks_without_files
from demo_core.serving.gc_tuning import gc_threshold, tune_gc
from demo_core.serving.login_checks import check_logins_inline
from demo_core.serving.requests import (
    COMPARE_SHARED,
    compare_options,
    compare_request,
    decode_defaults,
    decode_request,
    prepare_request,
    prepare_side,
)
from demo_core.serving.sessions import make_sessions_lazy

# One decode is a chain of tiny matrix products: extra intra-op threads only add hand-over
# cost (``python benchmarks/bench_decoding.py --threads 2`` against ``--threads 1``).
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
# The page serves its own CJK font (a subset of Noto Sans SC, OFL), so Chinese never shows as empty boxes
# on a machine without CJK fonts; the family is a plain string (a gr.themes.Font here breaks launch with analytics on).
gr.set_static_paths(paths=[fonts.STATIC_DIR])
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky", neutral_hue="slate",
                       font=(fonts.CJK_FAMILY_CSS, "ui-sans-serif", "system-ui", "sans-serif"),
                       font_mono=("ui-monospace", "Consolas", "monospace"))  # nothing fetched from outside
CSS = fonts.font_face_css() + """
.gradio-container { max-width: 1400px !important; }
#title h1 { margin-bottom: 0; }
#tts-figure { overflow-x: auto !important; }
.dark #tts-figure svg text { fill: var(--body-text-color) !important; }
#summary p, .compare-summary p { color: var(--body-text-color-subdued); margin: 0; }
#hypotheses td:not(:nth-child(2)) { white-space: nowrap; }
.examples-label { font-weight: 600; font-size: 0.9em; margin: 4px 0; color: var(--body-text-color); }
table.examples { width: 100%; border-collapse: collapse; font-size: 0.9em; }
table.examples th { text-align: left; font-weight: 600; padding: 6px 8px; border-bottom: 1px solid var(--border-color-primary); }
table.examples td { padding: 6px 8px; vertical-align: top; border-bottom: 1px solid var(--border-color-primary); }
table.examples td:first-child { width: 45%; }
table.examples tr[data-example] { cursor: pointer; }
table.examples tr[data-example]:hover, table.examples tr[data-example]:focus { background: var(--background-fill-secondary); outline: none; }
/* Phones: input and Run first, then the output and its attention, then everything else. */
@media (max-width: 760px) {
  #explore-row { flex-direction: column !important; }
  #controls-column, #results-column { display: contents !important; }
  #controls-column > .form:has(#task) { order: 1; }
  #controls-column > .form:has(#input-text) { order: 2; }
  #run { order: 3; }
  #summary { order: 4; }
  #text-panel, #speech-panel { order: 5; }
  #model-info { order: 6; }
  #examples { order: 7; }
  #decoding-panel, #speech-controls { order: 8; }
  #title p { display: none; }
}
""" + attention_view.stylesheet()
STRATEGY_CHOICES = [(label, key) for key, label in STRATEGY_LABELS.items()]
PRIVATE = dict(api_visibility="private")
REPLY_PARAMS = {"attention": (str, replies.DEFAULT_ATTENTION)}  # /generate and /compare: how much attention a reply carries
LAB_PARAMS = {"prefix": (str, ""), "steps": (bool, False)}  # /generate: a forced output start; per-step distributions
LOG = logging.getLogger("seq2seq_explorer")


class InternalError(gr.Error):
    """A bug, not the user's mistake: the message says so (and the log has the traceback)."""


@contextmanager
def user_errors(for_page: bool = False) -> Iterator[None]:
    """Turn ``InputError`` into ``gr.Error``: the user sees the message, never a traceback.

    The page renders error messages as HTML, so messages bound for it are escaped; API
    clients get the plain text.
    """
    try:
        yield
    except InputError as exc:
        message = html.escape(str(exc), quote=False) if for_page else str(exc)
        raise gr.Error(message, print_exception=False) from exc
    except gr.Error:
        raise
    except Exception as exc:  # a bug, not the user's mistake: say so, and log it for the maintainer
        LOG.exception("internal error")
        raise InternalError(f"internal error ({type(exc).__name__}); it has been logged. Try other input or "
                            "settings, or report it.", print_exception=False) from exc


def endpoint(name: str, doc: str, leading: Mapping[str, tuple[type, Any]], options: list[Option],
             run: Callable[[dict[str, Any]], dict], trailing: Mapping[str, tuple[type, Any]] | None = None,
             after: Callable[[gr.Request | None], None] | None = None) -> Callable[..., dict]:
    """An API function whose parameters are ``leading`` (name -> (type, default)), then
    ``options`` with their own defaults, then ``trailing`` (name -> (type, default); new
    parameters go last so positional clients keep working), so ``gr.api`` shows exactly those;
    ``run`` gets every argument by name. ``after(request)`` runs once the call is answered or
    refused (Gradio passes the request; a direct call gets None)."""
    params = [inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=kind)
              for key, (kind, default) in leading.items()]
    params += [inspect.Parameter(opt.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=opt.default,
                                 annotation=opt.kind | None if opt.blank == "none" else opt.kind) for opt in options]
    params += [inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=kind)
               for key, (kind, default) in (trailing or {}).items()]
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation=gr.Request | None)  # filled by Gradio, never an API parameter
    signature = inspect.Signature([*params, request], return_annotation=dict)

    def call(*args: Any, **kwargs: Any) -> dict:
        arguments, given = bind(signature, args, kwargs)
        try:
            return run(arguments)
        finally:
            if after is not None:
                after(given)

    return named(call, name, doc, signature)


def async_endpoint(call: Callable[..., dict], run: Callable[[dict[str, Any]], Awaitable[dict]],
                   after: Callable[[gr.Request | None], None] | None = None) -> Callable[..., Awaitable[dict]]:
    """``call`` (an ``endpoint``) as a coroutine function with its name, parameters and docs, whose work is
    ``run``: Gradio's queue awaits a coroutine on its event loop, where a plain function is handed to a worker
    thread and back for every call (``Page._generate_async`` says when that is worth avoiding)."""
    signature = call.__signature__  # type: ignore[attr-defined]

    async def acall(*args: Any, **kwargs: Any) -> dict:
        arguments, given = bind(signature, args, kwargs)
        try:
            return await run(arguments)
        finally:
            if after is not None:
                after(given)

    return named(acall, call.__name__, call.__doc__ or "", signature)


def bind(signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """An endpoint's arguments by name, defaults filled, and the Gradio request apart."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    return arguments, arguments.pop("request")


def named(fn: Callable, name: str, doc: str, signature: inspect.Signature) -> Callable:
    """``fn`` with the name, docstring, signature and type hints Gradio reads to describe the endpoint."""
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__signature__ = signature  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()} | {"return": dict}
    return fn


def option_control(opt: Option, value: Any, elem_id: str, **layout: Any) -> gr.components.Component:
    """The page's control for a decoding option: a radio for choices, a number box for a seed
    (any whole number, blank = random), else a slider over the option's page range."""
    if opt.choices is not None:
        return gr.Radio(STRATEGY_CHOICES if opt.name == "strategy" else list(opt.choices), value=value,
                        label=opt.label, elem_id=elem_id, **layout)
    if opt.page is None:
        return gr.Number(value, precision=0 if opt.kind is int else None, label=opt.label, info=None,
                         elem_id=elem_id, **layout)
    low, high, step = opt.page
    high = layout.pop("maximum", high)
    return gr.Slider(low, high, value=value, step=step, label=opt.label, elem_id=elem_id, **layout)


class Page:
    """The handlers behind one page and its API, over one model registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.labs = lab_view.LabCache()  # the decoding lab's data per shown result
        self.blocks: gr.Blocks | None = None  # the page, once built (its session store: ``forget_session``)
        self.default_model = catalogue.default_model(registry)
        self.compare_a, self.compare_strategy_a, self.compare_b, self.compare_strategy_b = catalogue.compare_defaults(registry)
        self.controls: dict[str, gr.components.Component] = {}  # option name -> Explore control
        self.shared_controls: dict[str, gr.components.Component] = {}  # option name -> Compare control
        self.generate = endpoint(
            "generate",
            "Decode ``text`` with ``model``; strategy is greedy, beam or sample.\n\nReturns the source pieces, the best "
            "text and every hypothesis (n-best list or samples) with its pieces, scores, token probabilities and "
            f"attention [T, layers, heads, S] (null where not asked for).\n\n{replies.ATTENTION_DOC}",
            {"text": (str, inspect.Parameter.empty), "model": (str, self.default_model or "")},
            list(OPTIONS), self._generate, REPLY_PARAMS | LAB_PARAMS, self.forget_session)
        self.generate_async = async_endpoint(self.generate, self._generate_async, self.forget_session)  # Gradio's queue
        self.compare = endpoint(
            "compare",
            "Decode ``text`` with model A / strategy A and with model B / strategy B (same source language).\n\nThe "
            "beam and sampling options apply to both sides; sampling draws one sample. Returns ``{\"a\": ..., \"b\": "
            "...}``, each what ``/generate`` returns for that side, with the same ``attention`` choice.",
            {"text": (str, inspect.Parameter.empty), "model_a": (str, self.compare_a or ""),
             "strategy_a": (str, self.compare_strategy_a), "model_b": (str, self.compare_b or ""),
             "strategy_b": (str, self.compare_strategy_b)},
            [OPTION[name] for name in COMPARE_SHARED], self._compare, REPLY_PARAMS, self.forget_session)
        self.speech_model = synthesis.default_speech_model(registry)
        self.synthesize = endpoint(
            "synthesize",
            "Speak ``text`` (English, at most 25 words) with the speech-synthesis ``model``.\n\nReturns the words, "
            "their phones and where each came from (CMUdict or the pronunciation model), the attention [decoder "
            "steps, phones], the log-mel spectrogram [frames, 80], stop probabilities, and the audio as a base64 "
            "WAV file with its sample rate.",
            {"text": (str, inspect.Parameter.empty), "model": (str, self.speech_model or "")},
            [OPTION["seed"]], self._synthesize, after=self.forget_session)

    # --- the API ------------------------------------------------------------------------------

    def forget_session(self, request: gr.Request | None) -> None:
        """Drop the Gradio session of an answered API call.

        Gradio keeps each session's inputs and outputs (``SESSION_CAPACITY`` sessions) so a page can
        redraw; an API call is a session of its own (each raw HTTP call gets a new one), so keeping
        it would hold its reply (up to 5 MB) and push the page's users out of the store. The API
        keeps no state between calls, so nothing is lost; Gradio writes this call's output into the
        dropped session, which is freed with the request.
        """
        holder = getattr(self.blocks, "state_holder", None)
        session = getattr(request, "session_hash", None)
        if holder is None or not session:
            return
        with holder.lock:
            holder.session_data.pop(session, None)
            holder.time_last_used.pop(session, None)

    def _generate(self, args: dict[str, Any]) -> dict:
        text, model = args.pop("text"), args.pop("model")
        with user_errors():
            attention = replies.attention_choice(args.pop("attention"))
        if self.registry.is_speech(model):  # speech has one strategy and one small attention: the /synthesize reply
            return self._synthesize({"text": text, "model": model, "seed": args.get("seed")})
        with user_errors():
            translator, cfg, forced, steps = self._generate_checks(text, model, args)
            result = BATCHER.run(translator, text, cfg, forced)  # with other API calls that arrive together, where it can
            return self._generate_reply(translator, result, attention, forced, steps)

    async def _generate_async(self, args: dict[str, Any]) -> dict:
        """``_generate`` as Gradio's queue runs it, on its event loop. A request that the batcher takes, for a text
        model already loaded, is checked there (tokenising: well under a millisecond), queued, awaited and, when its
        reply is small (``INLINE_REPLY``), answered there: no worker thread, no hand-over to one and back, which
        under 20 clients is a good part of the event loop's work per call (docs/SPEED.md, "Under load"). Everything
        else (loading a model, speech, beam search, a prefix, the lab's steps, a large reply) runs in a worker
        thread as ``_generate`` does. A call whose client goes away before its batch starts is left out of it."""
        model = args.get("model")
        if not (isinstance(model, str) and self.registry.is_loaded(model)) or self.registry.is_speech(model):
            return await in_thread(self._generate, args)
        text = args.pop("text")
        args.pop("model")
        with user_errors():
            attention = replies.attention_choice(args.pop("attention"))
            translator, cfg, forced, steps = self._generate_checks(text, model, args)
            future = BATCHER.submit(translator, text, cfg, forced)
        if future is None:  # decodes alone
            return await in_thread(self._generate_alone, translator, text, cfg, attention, forced, steps)
        with user_errors():
            result = await asyncio.wrap_future(future)
            if steps or replies.attention_floats(result, attention) > INLINE_REPLY:
                return await in_thread(self._generate_reply, translator, result, attention, forced, steps)
            return self._generate_reply(translator, result, attention, forced, steps)

    def _generate_alone(self, translator: Any, text: str, cfg: Any, attention: str, forced: list[int],
                        steps: bool) -> dict:
        with user_errors():
            result = BATCHER.alone(translator, text, cfg, forced)
            return self._generate_reply(translator, result, attention, forced, steps)

    def _generate_checks(self, text: Any, model: Any, args: dict[str, Any]) -> tuple[Any, Any, list[int], bool]:
        """A /generate request's checks (``InputError`` for each mistake): its model, config, forced prefix ids and
        whether the lab's steps are asked for; ``args`` holds the decoding options, ``prefix`` and ``steps``."""
        prefix, steps = args.pop("prefix", ""), args.pop("steps", False)
        if not isinstance(steps, bool) and str(steps).strip().lower() not in ("true", "false", "1", "0", ""):
            raise InputError(f"steps must be true or false, got {steps!r}")
        steps = steps if isinstance(steps, bool) else str(steps).strip().lower() in ("true", "1")
        translator, cfg = prepare_request(self.registry, text, model, args)
        return translator, cfg, branching.prefix_ids(translator, prefix, cfg, text), steps

    def _generate_reply(self, translator: Any, result: DecodeResult, attention: str, forced: list[int],
                        steps: bool) -> dict:
        """The /generate reply of a decoded request (``InputError`` when it would be over the reply budget)."""
        out = replies.bounded(lambda: pronunciation.api_json(self.registry, result, attention), [result], attention)
        out["prefix_tokens"] = len(forced)
        if steps:
            out["steps"] = lab_json.steps_json(result, translator, 0, prefix=forced)
        return out

    def _synthesize(self, args: dict[str, Any]) -> dict:
        with user_errors():
            _, result = synthesis.synthesize(self.registry, args["model"], args["text"], args["seed"])
            return synthesis.api_json(args["model"], result)

    def _compare(self, args: dict[str, Any]) -> dict:
        shared = {name: args[name] for name in COMPARE_SHARED}
        with user_errors():
            attention = replies.attention_choice(args["attention"])
            a, b = compare_request(self.registry, args["text"], args["model_a"], compare_options(args["strategy_a"], shared),
                                   args["model_b"], compare_options(args["strategy_b"], shared))
            return replies.bounded(lambda: {"a": replies.result_json(a, attention), "b": replies.result_json(b, attention)},
                                   [a, b], attention)

    # --- Explore --------------------------------------------------------------------------------

    def options(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        """The Explore controls' values by option name (``values``: component -> value)."""
        return {name: values[control] for name, control in self.controls.items()}

    def check(self, values: Mapping[Any, Any]) -> None:
        """Reject bad input before the run, so the page shows a message and keeps its last result."""
        with user_errors(for_page=True):
            if self.registry.is_speech(values[self.model]):
                synthesis.check(self.registry, values[self.model], values[self.text])
            else:
                prepare_request(self.registry, values[self.text], values[self.model], self.options(values))

    def explore(self, values: Mapping[Any, Any]) -> dict:
        """The page's run: decode (or synthesise), then fill the outputs of that kind of model."""
        if self.registry.is_speech(values[self.model]):
            return self.explore_speech(values)
        return dict(zip(self.text_outputs, self.explore_text(values))) | {
            self.text_panel: gr.update(visible=True), self.speech_panel: gr.update(visible=False)}

    def explore_speech(self, values: Mapping[Any, Any]) -> dict:
        """Synthesise: phones, both voices, the step control, and attention over the spectrogram."""
        model = values[self.model]
        with user_errors(for_page=True):
            synth, result = synthesis.synthesize(self.registry, model, values[self.text], values[self.speech_seed])
        steps = result.attention.shape[0]
        return {
            self.text_panel: gr.update(visible=False), self.speech_panel: gr.update(visible=True),
            self.run_summary: synthesis.summary(model, result),
            self.speech_phones: synthesis.phones_markdown(result),
            self.speech_audio: (result.sample_rate, result.audio_int16),
            self.reference_audio: synthesis.reference_audio(synth, result),
            self.speech_step: gr.update(minimum=1, maximum=max(steps, 2), value=1),
            self.speech_step_text: synthesis.step_markdown(result, 1),
            self.speech_figure: synthesis_figure(result, 1),
            self.speech_result: result,
        }

    def show_step(self, result: Any, step: int) -> tuple:
        """Decoder step ``step`` of the last synthesis: what it attended to and what it wrote."""
        if result is None:
            return gr.skip(), gr.skip()
        step = views.selected(step, 1)
        return synthesis.step_markdown(result, step), synthesis_figure(result, step)

    def move_step(self, result: Any, step: int, delta: int) -> Any:
        """The step one before or after ``step``, kept within the decode."""
        if result is None:
            return gr.skip()
        return max(1, min(views.selected(step, 1) + delta, result.attention.shape[0]))

    def explore_text(self, values: Mapping[Any, Any]) -> tuple:
        """Decode with a text model, then fill the output, tables, selectors and figures."""
        with user_errors(for_page=True):
            result = decode_request(self.registry, values[self.text], values[self.model], self.options(values))
        layers, heads = views.view_choices(result)
        several = len(result.hypotheses) > 1
        label = "Samples" if result.config.strategy == "sample" else "N-best list"
        picture = self.picture(result, 0, layers[-1][1], views.AVERAGE_HEADS, views.CROSS,
                               dict(values.get(self.lab_state) or {}, settings=None), cubes=True)
        has_encoder = result.encoder_attention is not None
        return (
            result.best.text,
            *self.speech_outputs(result, 0),
            self.summary(result),
            gr.update(value=views.hypothesis_rows(result), visible=several, label=f"{label} (click a row to see its attention)"),
            gr.update(choices=views.hypothesis_choices(result), value=0, visible=several),
            gr.update(value=views.CROSS, visible=has_encoder),
            gr.update(choices=layers, value=layers[-1][1], visible=len(layers) > 1),
            gr.update(choices=heads, value=views.AVERAGE_HEADS, visible=len(heads) > 3),
            picture,
            result,
            gr.update(visible=False),  # an old branch belongs to the old run
        )

    def summary(self, result: DecodeResult) -> str:
        """The run's one-line summary, led by the model that produced it."""
        entry = self.registry.entries.get(result.model_id)
        return (f"{catalogue.model_label(entry)} · " if entry else "") + views.summary(result)

    def speech_outputs(self, result: DecodeResult | None, index: int) -> tuple:
        """IPA line and audio of hypothesis ``index`` for G2P models; both hidden for other models."""
        if result is None:
            return gr.skip(), gr.skip()
        if not pronunciation.speaks(self.registry, result.model_id):
            return gr.update(value="", visible=False), gr.update(value=None, visible=False)
        with user_errors(for_page=True):
            text, audio = pronunciation.pronunciation(result, index)
        return gr.update(value=text, visible=True), gr.update(value=audio, visible=audio is not None)

    def redraw(self, result: DecodeResult | None, index: int, view: str, layer: int, head: int, lab: Any = None) -> Any:
        """The attention view of another hypothesis, layer or head of the last result."""
        if result is None:
            return gr.skip()
        with user_errors(for_page=True):
            return self.picture(result, index, layer, head, view, lab)

    def switch_view(self, result: DecodeResult | None, index: int, view: str, head: int, lab: Any = None) -> tuple:
        """Cross-attention or encoder self-attention: the layer menu follows the view's layers."""
        if result is None:
            return gr.skip(), gr.skip()
        layers, _ = views.view_choices(result, view)
        return gr.update(choices=layers, value=layers[-1][1]), self.redraw(result, index, view, layers[-1][1], head, lab)

    def pick_row(self, result: DecodeResult | None, view: str, layer: int, head: int, lab: Any, evt: gr.SelectData) -> tuple:
        """A click on an n-best / sample row shows that hypothesis's attention."""
        if result is None:
            return (gr.skip(),) * 4
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return (index, self.redraw(result, index, view, layer, head, lab), *self.speech_outputs(result, index))

    # --- the decoding lab (step through, distributions, beam tree, branching) ---------------------------

    def picture(self, result: DecodeResult, index: Any, layer: Any, head: Any, view: Any, lab: Any = None,
                cubes: bool = False) -> str:
        """The viewer's value; with the lab open (``lab`` = the page's lab state) it carries the step data too, and
        with ``cubes`` every hypothesis, layer and head (so the menus redraw in the browser)."""
        doc = attention_view.payload(result, index, layer, head, view)
        doc["labAvailable"] = True  # this viewer's page answers the lab's events (Compare's viewers do not)
        if cubes:
            doc["cubes"] = attention_view.cubes(result)
        if lab and lab.get("open") and doc["view"] == views.CROSS:
            translator = self.registry.get(result.model_id)
            cfg = lab_view.settings_config(result, lab.get("settings"))
            doc["lab"] = lab_view.lab_document(self.labs.get(translator, result), result, doc["meta"]["hypothesis"] - 1, cfg)
        return attention_view.to_json(doc)

    def toggle_lab(self, values: Mapping[Any, Any], event: gr.EventData) -> tuple:
        """The viewer's "Step through" button: open (send the step data) or close the lab."""
        result, lab = values[self.result_state], dict(values[self.lab_state] or {})
        lab["open"] = bool((getattr(event, "_data", None) or {}).get("open"))
        if result is None or not lab["open"]:
            return gr.skip(), lab
        hypothesis, view, layer, head = (values[c] for c in self.view_controls)
        with user_errors(for_page=True):
            return self.picture(result, hypothesis, layer, head, view, lab), lab

    def reshape(self, values: Mapping[Any, Any]) -> tuple:
        """A strategy setting moved while the lab is open: every step's distribution reshaped, nothing decoded."""
        result, lab = values[self.result_state], dict(values[self.lab_state] or {})
        if result is None or not lab.get("open"):
            return gr.skip(), gr.skip()
        lab["settings"] = {name: values[self.controls[name]] for name in lab_view.SETTINGS}
        hypothesis, view, layer, head = (values[c] for c in self.view_controls)
        with user_errors(for_page=True):
            return self.picture(result, hypothesis, layer, head, view, lab), lab

    def pick_node(self, values: Mapping[Any, Any], event: gr.EventData) -> Any:
        """A beam-tree node: the attention of the path to it, with the lab's data kept."""
        result, lab = values[self.result_state], values[self.lab_state]
        if result is None:
            return gr.skip()
        _, _, layer, head = (values[c] for c in self.view_controls)
        with user_errors(for_page=True):
            translator = self.registry.get(result.model_id)
            node = views.selected((getattr(event, "_data", None) or {}).get("node"), -1)
            doc = lab_view.path_document(self.labs.get(translator, result), result, node, layer, head,
                                         lab_view.settings_config(result, (lab or {}).get("settings")))
            return attention_view.to_json(doc)

    def branch(self, values: Mapping[Any, Any], event: gr.EventData) -> Any:
        """Force a candidate (or a typed word) at a step and decode the rest again with the same strategy."""
        result = values[self.result_state]
        if result is None:
            return gr.skip()
        data = getattr(event, "_data", None) or {}
        hypothesis, _, layer, head = (values[c] for c in self.view_controls)
        with user_errors(for_page=True):
            translator = self.registry.get(result.model_id)
            doc = lab_view.branch_picture(translator, result, views.selected(hypothesis, 0), data, layer, head)
        return gr.update(value=attention_view.to_json(doc), visible=True)

    def show_model(self, model: str | None) -> tuple:
        """Card summary, examples, explanation, the decoding controls that apply (none for speech,
        which says why) with the card's defaults, and the model's first example as the input."""
        card = catalogue.card_of(self.registry, model)
        given = card.decode_defaults if card else {}
        defaults = decode_defaults(self.registry, model)
        speech = self.registry.is_speech(model)
        examples = catalogue.examples_of(self.registry, model)
        return (
            catalogue.model_summary(self.registry, model),
            examples_table(catalogue.example_rows(self.registry, model)),
            explanation(card),
            gr.update(visible=not speech),
            gr.update(visible=speech),
            examples[0] if examples else gr.skip(),
            *(defaults[name] if name in given else gr.skip() for name in self.controls),
        )

    def arrive(self, values: Mapping[Any, Any], request: gr.Request) -> dict:
        """The first run on arrival; a link's query (see ``links``) first sets the model, input, settings and view."""
        link = links.read_link(self.registry, dict(request.query_params) if request is not None else {})
        for problem in link.problems:
            gr.Warning(f"This link: {problem}.")
        values, updates = dict(values), {}
        if link.model and link.model != values[self.model]:
            task = catalogue.task_of(self.registry.entries[link.model])
            updates[self.task] = task
            updates[self.model] = gr.update(choices=catalogue.model_choices(self.registry, task), value=link.model)
            shown = dict(zip(self.model_panel, self.show_model(link.model)))
            updates |= shown
            values[self.model] = link.model
            for control, value in shown.items():  # the new model's starting text and settings, as a user switching gets
                if control in values and not isinstance(value, dict):
                    values[control] = value
        if link.text is not None:
            values[self.text] = updates[self.text] = link.text
        for name, value in link.options.items():
            values[self.controls[name]] = updates[self.controls[name]] = value
        beam, n_best = self.controls["beam_size"], self.controls["n_best"]
        if values[n_best] and values[beam] and values[n_best] > values[beam]:  # as the page's n-best slider follows the beam
            values[n_best] = values[beam]
            updates[n_best] = gr.update(maximum=values[beam], value=values[beam])
        try:
            self.check(values)
        except gr.Error as exc:
            gr.Warning(str(exc))
            return updates
        updates |= self.explore(values)
        result = updates.get(self.result_state)
        if isinstance(result, DecodeResult) and (link.hypothesis or link.view != views.CROSS or link.layer is not None
                                                 or link.head != views.AVERAGE_HEADS):
            hypothesis, view, layer, head = self.view_controls
            layers, _ = views.view_choices(result, link.view)
            chosen_layer = link.layer if link.layer is not None and 0 <= link.layer < len(layers) else layers[-1][1]
            index = link.hypothesis if link.hypothesis < len(result.hypotheses) else 0
            for control, value in ((hypothesis, index), (view, link.view), (head, link.head)):  # keep the run's choices
                updates[control] = {**updates.get(control, gr.update()), "value": value}
            updates[layer] = gr.update(choices=layers, value=chosen_layer, visible=len(layers) > 1)
            updates[self.heatmap] = viewer_value(result, index, chosen_layer, link.head, link.view)
        return updates

    def link(self, values: Mapping[Any, Any]) -> str:
        """The query of a link to what the page shows now (the browser adds its own address)."""
        hypothesis, view, layer, head = self.view_controls
        model = values[self.model]
        if not model:
            return ""
        options = {name: values[control] for name, control in self.controls.items()}
        return links.link_query(self.registry, model, values[self.text] or "", options, views.selected(values[hypothesis], 0),
                                values[view], views.selected(values[layer], None) if values[layer] is not None else None,
                                views.selected(values[head], views.AVERAGE_HEADS))

    def choose_task(self, task: str) -> dict:
        """The model menu lists the models of the chosen task."""
        choices = catalogue.model_choices(self.registry, task)
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def pick_example(self, model: str, event: gr.EventData) -> str:
        """The clicked example of the current model goes into the input box."""
        examples = catalogue.examples_of(self.registry, model)
        index = views.selected((getattr(event, "_data", None) or {}).get("index"), -1)
        return examples[index] if 0 <= index < len(examples) else gr.skip()

    # --- Compare --------------------------------------------------------------------------------

    def compare_sides(self, values: Mapping[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        shared = {name: values[control] for name, control in self.shared_controls.items()}
        return compare_options(values[self.strategy_a], shared), compare_options(values[self.strategy_b], shared)

    def check_compare(self, values: Mapping[Any, Any]) -> None:
        """Reject bad Compare input before the runs (the page keeps its last pictures)."""
        a, b = self.compare_sides(values)
        with user_errors(for_page=True):
            prepare_side("A", self.registry, values[self.compare_text], values[self.model_a], a)
            prepare_side("B", self.registry, values[self.compare_text], values[self.model_b], b)

    def compare_page(self, values: Mapping[Any, Any]) -> tuple:
        """Both runs' output, score line and heatmap (last layer, average of heads)."""
        a, b = self.compare_sides(values)
        with user_errors(for_page=True):
            results = compare_request(self.registry, values[self.compare_text], values[self.model_a], a,
                                      values[self.model_b], b)
        return tuple(part for r in results
                     for part in (r.best.text, views.summary(r, compared=True), viewer_value(r)))

    def first_compare(self, values: Mapping[Any, Any]) -> tuple:
        """The first visit to the Compare tab shows a comparison of its preset input; later visits keep the page."""
        if values[self.compared]:
            return (gr.skip(),) * 7
        try:
            return (True, *self.compare_page(values))
        except gr.Error:
            return (True, *(gr.skip(),) * 6)


def attention_viewer(elem_id: str, elem_classes: str | None = None, visible: bool = True) -> gr.HTML:
    """The client-side attention viewer (``demo_core/serving/web/attention_view.js``): its value is
    ``viewer_value``'s JSON; layout, hover, tap, token lines and downloads happen in the browser."""
    return gr.HTML("", html_template='<div class="av-host"></div>', js_on_load=attention_view.script(),
                   elem_id=elem_id, elem_classes=elem_classes, min_height=80, visible=visible)


def viewer_value(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = views.AVERAGE_HEADS,
                 view: Any = views.CROSS) -> str:
    """What the attention viewer draws for one hypothesis, layer and head of ``result``."""
    return attention_view.to_json(attention_view.payload(result, index, layer, head, view))


# The menus' first answer comes from the browser: the viewer draws another hypothesis, layer or head from the
# cubes it holds, then the server's redraw (with the lab's data when it is open) confirms it.
PICK_JS = """(result, index, view, layer, head, lab) => {
  const viewer = (window.__attentionViews || {}).heatmap;
  if (viewer && view !== 'encoder') viewer.pick(index, layer, head);
  return [result, index, view, layer, head, lab];
}"""
EXAMPLES_JS = """
const pick = row => row && trigger('pick', {index: Number(row.dataset.example)});
element.addEventListener('click', e => pick(e.target.closest('[data-example]')));
element.addEventListener('keydown', e => {
  if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(e.target.closest('[data-example]')); }
});
"""


def examples_table(rows: list[list[str]]) -> str:
    """The model's examples beside what each shows, every note whole; a click (or Enter) runs one."""
    if not rows:
        return ""
    body = "".join(f'<tr data-example="{i}" tabindex="0" role="button" aria-label="Run this example">'
                   f"<td>{html.escape(text)}</td><td>{html.escape(note)}</td></tr>" for i, (text, note) in enumerate(rows))
    return ('<div class="examples-box"><div class="examples-label">Examples (click one to run it)</div><table class="examples">'
            f"<thead><tr><th>Example</th><th>What to look for</th></tr></thead><tbody>{body}</tbody></table></div>")


def show_strategy(strategy: str) -> tuple:
    """Only the controls of the chosen strategy are visible."""
    return gr.update(visible=strategy == "beam"), gr.update(visible=strategy == "sample")


def limit_n_best(beam_size: int, n_best: int) -> dict:
    """The n-best count can never exceed the beam width."""
    return gr.update(maximum=beam_size, value=min(n_best or beam_size, beam_size))


def build_demo(registry: ModelRegistry) -> gr.Blocks:
    """The whole page and its API over ``registry``'s models; ``demo.page`` holds the handlers
    and the controls by option name."""
    page = Page(registry)
    default = page.default_model
    starts = decode_defaults(registry, default)
    initial_task = catalogue.task_of(registry.entries[default]) if default else None
    initial_text = (catalogue.examples_of(registry, default) or [""])[0]
    with gr.Blocks(title="Seq2Seq Attention Explorer", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Seq2Seq Attention Explorer\n"
            "Type a sentence, pick a model and a decoding strategy, and see which source tokens the "
            "model attended to while writing each output token.",
            elem_id="title",
        )
        with gr.Tabs():
            with gr.Tab("Explore", id="explore", elem_id="explore"):
                with gr.Row(equal_height=False, elem_id="explore-row"):
                    with gr.Column(scale=2, min_width=340, elem_id="controls-column"):
                        task = gr.Dropdown(catalogue.task_choices(registry), value=initial_task, label="Task", elem_id="task")
                        page.model = gr.Dropdown(catalogue.model_choices(registry, initial_task), value=default,
                                                 label="Model", elem_id="model")
                        model_info = gr.Markdown(catalogue.model_summary(registry, default), elem_id="model-info")
                        page.text = gr.Textbox(
                            value=initial_text,
                            label="Input",
                            placeholder=f"Type a sentence (up to {MAX_INPUT_CHARS} characters) and press Enter",
                            lines=1,
                            max_lines=6,
                            elem_id="input-text",
                        )
                        run = gr.Button("Run", variant="primary", elem_id="run")
                        examples = gr.HTML(examples_table(catalogue.example_rows(registry, default)), js_on_load=EXAMPLES_JS,
                                           elem_id="examples")
                        controls = page.controls

                        def add(opt: Option, **layout: Any) -> None:
                            elem_id = "strategy" if opt.name == "strategy" else f"option-{opt.name}"
                            controls[opt.name] = option_control(opt, starts[opt.name], elem_id, **layout)

                        with gr.Column(visible=not registry.is_speech(default), elem_id="decoding-panel") as decoding_panel:
                            add(OPTION["strategy"])
                            groups = {"beam": [], "sample": [], "all": []}
                            for opt in OPTIONS[1:]:
                                groups[opt.strategies[0] if len(opt.strategies) == 1 else "all"].append(opt)
                            with gr.Column(visible=starts["strategy"] == "beam") as beam_controls:
                                for opt in groups["beam"]:
                                    add(opt, **({"maximum": starts["beam_size"]} if opt.name == "n_best" else {}))
                            with gr.Column(visible=starts["strategy"] == "sample") as sample_controls:
                                for opt in groups["sample"]:
                                    add(opt)
                            with gr.Accordion("Length and repetition", open=False):
                                for opt in groups["all"]:
                                    add(opt)
                        with gr.Column(visible=registry.is_speech(default), elem_id="speech-controls") as speech_controls:
                            gr.Markdown(synthesis.STRATEGY_NOTE, elem_id="tts-strategy-note")
                            page.speech_seed = gr.Number(0, precision=0, label="Prenet-dropout seed", elem_id="tts-seed")
                    with gr.Column(scale=3, min_width=300, elem_id="results-column"):
                        with gr.Column(visible=False, elem_id="speech-panel") as page.speech_panel:
                            page.speech_phones = gr.Markdown(elem_id="tts-phones")
                            with gr.Row():
                                page.speech_audio = gr.Audio(label="The model's voice (Griffin-Lim from its spectrogram)",
                                                             type="numpy", interactive=False, elem_id="tts-audio")
                                page.reference_audio = gr.Audio(
                                    label="espeak-ng from the same phones (the voice it learned)", type="numpy",
                                    interactive=False, elem_id="tts-reference")
                            with gr.Row():
                                step_back = gr.Button("◀", min_width=50, scale=0, elem_id="tts-step-back")
                                page.speech_step = gr.Slider(1, 2, value=1, step=1, label="Decoder step (arrow keys move it)",
                                                             scale=4, elem_id="tts-step")
                                step_next = gr.Button("▶", min_width=50, scale=0, elem_id="tts-step-next")
                            page.speech_step_text = gr.Markdown(elem_id="tts-step-text")
                            page.speech_figure = gr.Plot(label="Which phones each decoder step attends to, above the "
                                                         "frames it wrote (hover a cell)", elem_id="tts-figure")
                        page.run_summary = run_summary = gr.Markdown(elem_id="summary")
                        with gr.Column(elem_id="text-panel") as page.text_panel:
                            output = gr.Textbox(label="Output", lines=2, interactive=False, buttons=["copy"],
                                                elem_id="output-text")
                            ipa = gr.Markdown(visible=False, elem_id="pronunciation")
                            audio = gr.Audio(label="Hear it (espeak-ng speaks the predicted phones)", type="numpy",
                                             interactive=False, visible=False, elem_id="audio")
                            hypothesis = gr.Dropdown(label="Show attention of", visible=False, interactive=True)
                            with gr.Row():
                                view = gr.Radio([(label, key) for key, label in views.VIEW_LABELS.items()], value=views.CROSS,
                                                label="Attention", visible=False, scale=2, elem_id="view")
                                layer = gr.Dropdown(label="Layer", visible=False, interactive=True, scale=1, min_width=120,
                                                    elem_id="layer")
                                head = gr.Dropdown(label="Head", visible=False, interactive=True, scale=1, min_width=180,
                                                   elem_id="head")
                            heatmap = attention_viewer("heatmap")
                            branch_view = attention_viewer("branch-view", visible=False)
                            with gr.Row(equal_height=True):
                                share = gr.Button("Link to this view", size="sm", scale=0, min_width=170, elem_id="share")
                                share_link = gr.Textbox(show_label=False, placeholder="a link that reopens this input, model, "
                                                        "strategy, settings and view", interactive=False, buttons=["copy"],
                                                        scale=4, elem_id="share-link")
                            table = gr.Dataframe(
                                headers=["#", "Output", "Score", "Normalised", "Tokens"],
                                datatype=["number", "str", "number", "number", "number"],
                                interactive=False,
                                wrap=True,
                                visible=False,
                                column_widths=["6%", "56%", "12%", "15%", "11%"],
                                elem_id="hypotheses",
                            )
                with gr.Accordion("How to read this", open=False, elem_id="explainer"):
                    explainer = gr.Markdown(explanation(catalogue.card_of(registry, default)), latex_delimiters=LATEX)
            with gr.Tab("Compare", id="compare", elem_id="compare") as compare_tab:
                gr.Markdown(
                    "The same input through two models, or through one model with two decoding strategies. "
                    "Both heatmaps show the last layer's cross-attention (averaged over heads) on the same "
                    "0–1 colour scale, so their colours compare directly. " + views.COMPARE_SCORES
                )
                page.compare_text = gr.Textbox(value=initial_text, label="Input", lines=1, max_lines=6,
                                               placeholder="Type a sentence and press Enter", elem_id="compare-text")
                compare_models = catalogue.compare_model_choices(registry)
                with gr.Row():
                    with gr.Column():
                        page.model_a = gr.Dropdown(compare_models, value=page.compare_a, label="A: model", elem_id="model-a")
                        page.strategy_a = gr.Radio(STRATEGY_CHOICES, value=page.compare_strategy_a,
                                                   label="A: decoding strategy", elem_id="strategy-a")
                    with gr.Column():
                        page.model_b = gr.Dropdown(compare_models, value=page.compare_b, label="B: model", elem_id="model-b")
                        page.strategy_b = gr.Radio(STRATEGY_CHOICES, value=page.compare_strategy_b,
                                                   label="B: decoding strategy", elem_id="strategy-b")
                with gr.Accordion("Beam and sampling settings (both sides)", open=False), gr.Row():
                    for name in COMPARE_SHARED:
                        page.shared_controls[name] = option_control(OPTION[name], starts[name],
                                                                    f"compare-option-{name}")
                compare_run = gr.Button("Compare", variant="primary", elem_id="compare-run")
                sides = []
                with gr.Row(equal_height=False):
                    for side in ("a", "b"):
                        with gr.Column(min_width=380):
                            sides += [
                                gr.Textbox(label=f"{side.upper()}: output", lines=2, max_lines=3, interactive=False,
                                           buttons=["copy"], elem_id=f"output-{side}"),
                                gr.Markdown(elem_id=f"summary-{side}", elem_classes="compare-summary"),
                                attention_viewer(f"heatmap-{side}", "compare-heatmap"),
                            ]
        if catalogue.attributions(registry):
            gr.Markdown("<small>Training data: " + " · ".join(catalogue.attributions(registry)) + "</small>")
        result = gr.State(None)
        page.lab_state = lab_state = gr.State({"open": False, "settings": None})
        page.task, page.result_state, page.heatmap = task, result, heatmap
        page.view_controls = (hypothesis, view, layer, head)
        page.model_panel = [model_info, examples, explainer, decoding_panel, speech_controls, page.text, *controls.values()]

        speech = [ipa, audio]
        page.text_outputs = [output, *speech, run_summary, table, hypothesis, view, layer, head, heatmap,
                             result, branch_view]
        page.speech_result = gr.State(None)
        run_outputs = [page.text_panel, page.speech_panel, *page.text_outputs, page.speech_phones, page.speech_audio,
                       page.reference_audio, page.speech_step, page.speech_step_text, page.speech_figure, page.speech_result]
        figures = heatmap
        request = {page.text, page.model, page.speech_seed, lab_state, *controls.values()}  # handlers read values by component

        gr.api(page.generate if SYNC_GENERATE else page.generate_async, api_name="generate",
               concurrency_limit=GENERATE_CONCURRENCY)
        gr.api(page.compare, api_name="compare")
        gr.api(page.synthesize, api_name="synthesize")
        gr.on([run.click, page.text.submit], page.check, request, None, api_name="check", show_progress="hidden",
              **PRIVATE).success(page.explore, request, run_outputs, api_name="explore", show_progress="minimal", **PRIVATE)
        if default in registry.available():  # a first picture on arrival (or the state a link asks for)
            arrival = {task, page.model, *page.model_panel, *run_outputs, *page.view_controls, share_link}
            demo.load(page.arrive, request, arrival, api_name="explore_on_load", **PRIVATE)
        gr.on([share.click], page.link, {*request, *page.view_controls}, share_link, api_name="link", show_progress="hidden",
              **PRIVATE).then(None, share_link, share_link, js="(q) => q ? location.origin + location.pathname + q : q")
        examples.pick(page.pick_example, page.model, page.text, api_name="pick_example", **PRIVATE).success(
            page.check, request, None, api_name="check_example", show_progress="hidden", **PRIVATE).success(
            page.explore, request, run_outputs, api_name="explore_example", show_progress="minimal", **PRIVATE)
        # A new task or model (chosen by the user; a link sets them without these events) shows its card and runs its
        # first example at once, so no picture of the old model stays.
        new_model = [task.input(page.choose_task, task, page.model, api_name="choose_task", **PRIVATE).then(
            page.show_model, page.model, page.model_panel, api_name="show_task_model", **PRIVATE),
            page.model.input(page.show_model, page.model, page.model_panel, api_name="show_model", **PRIVATE)]
        for i, event in enumerate(new_model):
            event.success(page.check, request, None, api_name=f"check_model_{i}", show_progress="hidden", **PRIVATE).success(
                page.explore, request, run_outputs, api_name=f"explore_model_{i}", show_progress="minimal", **PRIVATE)
        page.speech_step.change(page.show_step, [page.speech_result, page.speech_step],
                                [page.speech_step_text, page.speech_figure], api_name="show_step", show_progress="hidden",
                                **PRIVATE)
        for button, delta in ((step_back, -1), (step_next, 1)):
            button.click(lambda result, step, d=delta: page.move_step(result, step, d), [page.speech_result, page.speech_step],
                         page.speech_step, api_name=f"step_{'back' if delta < 0 else 'next'}", show_progress="hidden",
                         **PRIVATE)
        controls["strategy"].change(show_strategy, controls["strategy"], [beam_controls, sample_controls],
                                    api_name="show_strategy", **PRIVATE)
        controls["beam_size"].change(limit_n_best, [controls["beam_size"], controls["n_best"]], controls["n_best"],
                                     api_name="limit_n_best", **PRIVATE)
        gr.on([hypothesis.input, layer.input, head.input], page.redraw, [result, hypothesis, view, layer, head, lab_state], figures,
              api_name="redraw", show_progress="hidden", js=PICK_JS, trigger_mode="always_last", **PRIVATE)
        hypothesis.input(page.speech_outputs, [result, hypothesis], speech, api_name="speak", show_progress="hidden",
                         **PRIVATE)
        view.input(page.switch_view, [result, hypothesis, view, head, lab_state], [layer, figures], api_name="switch_view",
                   show_progress="hidden", **PRIVATE)
        table.select(page.pick_row, [result, view, layer, head, lab_state], [hypothesis, figures, *speech], api_name="pick_row",
                     show_progress="hidden", **PRIVATE)

        lab_inputs = {result, lab_state, *page.view_controls}
        heatmap.lab(page.toggle_lab, lab_inputs, [heatmap, lab_state], api_name="lab", show_progress="hidden", **PRIVATE)
        gr.on([controls[name].input for name in lab_view.SETTINGS], page.reshape,
              {*lab_inputs, *(controls[name] for name in lab_view.SETTINGS)}, [heatmap, lab_state], api_name="reshape",
              show_progress="hidden", trigger_mode="always_last", **PRIVATE)
        heatmap.node(page.pick_node, lab_inputs, heatmap, api_name="pick_node", show_progress="hidden", **PRIVATE)
        heatmap.branch(page.branch, lab_inputs, branch_view, api_name="branch", show_progress="minimal", **PRIVATE)

        compare_inputs = {page.compare_text, page.model_a, page.strategy_a, page.model_b, page.strategy_b,
                          *page.shared_controls.values()}
        gr.on([compare_run.click, page.compare_text.submit], page.check_compare, compare_inputs, None,
              api_name="check_compare", show_progress="hidden", **PRIVATE).success(
            page.compare_page, compare_inputs, sides, api_name="compare_page", show_progress="minimal", **PRIVATE)
        if page.compare_a in registry.available():  # the first visit to the tab shows a comparison
            page.compared = gr.State(False)
            compare_tab.select(page.first_compare, {page.compared, *compare_inputs}, [page.compared, *sides],
                               api_name="compare_on_select", show_progress="minimal", **PRIVATE)
    demo.page = page  # type: ignore[attr-defined]
    page.blocks = demo
    return demo


# Server limits, set on purpose (issue: a class of students at once on a 2-core machine):
QUEUE_SIZE = 64  # requests waiting at most; beyond it a client is told the server is busy instead of waiting minutes
CONCURRENCY = 2  # decodes at once: one per core (each decode uses one thread)
# Page sessions whose state (the last result, for redraws) is kept, the oldest dropped first: more than a class of 200
# at once. One costs ~0.5 MB for a sentence, ~6 MB at the 200-token limit (its attention tensors), so at most ~1.5 GB.
# API calls take no place here (``Page.forget_session``): 1,000 of them grow the server by 17 MB (benchmarks/soak.py).
SESSION_CAPACITY = 256
# /generate calls (greedy, sampling) decoded together (``demo_core.serving.batcher``): 16 at most per batch, waiting up to
# 5 ms for more only under load, in two lanes (short and long requests, so a small one never waits behind a long one),
# the short lane with two workers (two batches at once, one per core; S2S_SHORT_WORKERS=1 for one): 1.2-1.3x the plain
# route's answers under 20 clients with one worker, 0.84-0.97x on Gradio's API (docs/SPEED.md, "Under load").
# S2S_MAX_BATCH=1 turns batching off.
BATCHER = Batcher(max_batch=int(os.environ.get("S2S_MAX_BATCH", MAX_BATCH)),
                  short_workers=int(os.environ.get("S2S_SHORT_WORKERS", SHORT_WORKERS)))
# /generate calls handled at once: enough for two full batches (one decoding, the next filling) so the batcher sees the
# requests that arrive together; the handlers mostly wait for it, and it decodes at most 2 lanes + 2 unbatched at a time.
GENERATE_CONCURRENCY = 2 * MAX_BATCH
# The threads that run /generate's work which stays off Gradio's event loop (``Page._generate_async``): one per call
# it takes at once. S2S_SYNC_GENERATE=1 gives Gradio the plain function instead, run in its worker threads as before.
API_THREADS = ThreadPoolExecutor(GENERATE_CONCURRENCY, thread_name_prefix="generate")
SYNC_GENERATE = os.environ.get("S2S_SYNC_GENERATE") == "1"
# Attention weights up to which /generate builds its reply on the event loop (about a millisecond of work: a greedy
# sentence's reply holds a few thousand); a larger one is built in a worker thread, so the loop never stalls on it.
INLINE_REPLY = 20_000


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in one of ``API_THREADS``, with the caller's context variables (Gradio's request context)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(API_THREADS, lambda: context.run(fn, *args))
MAX_FILE_SIZE = "1kb"  # the page takes no uploads; anything larger than a tiny request body is refused
# Gradio's own work per call, cut where it is waste (docs/SPEED.md, "Under load"); S2S_STOCK_GRADIO=1 keeps Gradio's:
# - a new session (every raw API call is one) computes its blocks' configs only when a deep link asks for them
#   (``demo_core.serving.sessions``), not all 144 of them at once;
# - the monitoring summary (a pandas table of the last 1,000 events, not 10,000) is recomputed every 100 events, not
#   every one;
# - a reply is walked for files (twice, in Python, a call per number) only when it may hold one
#   (``demo_core.serving.file_walks``): the text replies never do, the page's audio does; 86.6 -> 107.7 calls/s
#   under 20 clients (``python benchmarks/server_ab.py``);
# - matplotlib, which the app does not install, is marked absent once: Gradio imports it twice per event (to set its
#   backend) and a failed import is not remembered, so each one searched sys.path again (~0.8 ms a call under load).
# - Gradio's /gradio_api/call/ and /queue/ routes are matched before its other 54 (``demo_core.serving.api_routes``), and
#   AnyIO's cancel scopes (one per event-stream message) name their task without building its repr
#   (``demo_core.serving.cancel_scopes``): docs/SPEED.md, "Under load".
# - Gradio's login check, which each of those routes depends on, runs on the event loop instead of being handed to a
#   worker thread and back twice a call (``demo_core.serving.login_checks``).
STOCK_GRADIO = os.environ.get("S2S_STOCK_GRADIO") == "1"
ANALYTICS_EVERY = 100
# Events Gradio's monitoring summary covers, the oldest dropped first (Gradio's default: 10,000). Every finished event
# copies the list of kept records and every ANALYTICS_EVERY events rebuild a pandas table of them, so over a long class
# the cost per event grew with the count: at 10,000 kept, 0.24-0.32 ms of CPU an event and 3.8 MB of records, at 1,000
# 0.05-0.08 ms and 0.4 MB (two runs of ``python benchmarks/soak.py --monitoring-only``). 1,000 still give percentiles.
ANALYTICS_KEPT = 1_000
# How long a thread running Python keeps the GIL while another waits for it (Python's default: 5 ms). The event loop (HTTP,
# Gradio's queue) lets go of the GIL at every socket call and then waits for it behind the threads running Python (the
# handlers, the batcher's bookkeeping), up to the whole interval each time: under 20 clients the server used 1.1 of its
# 2 cores and answered 45-47 calls/s at 5 ms, 1.4 cores and 54-59 calls/s at 0.5 ms (docs/SPEED.md, "Under load").
# S2S_SWITCH_INTERVAL (seconds) sets another.
SWITCH_INTERVAL_S = 0.0005


def switch_interval() -> float:
    """The GIL switch interval the server runs with: ``S2S_SWITCH_INTERVAL`` if it is a number from 1 µs to 1 s,
    else ``SWITCH_INTERVAL_S`` (a bad value is logged, not fatal)."""
    given = os.environ.get("S2S_SWITCH_INTERVAL", "").strip()
    if not given:
        return SWITCH_INTERVAL_S
    try:
        value = float(given)
    except ValueError:
        value = float("nan")
    if not 1e-6 <= value <= 1.0:  # NaN fails too
        LOG.warning("S2S_SWITCH_INTERVAL=%r is not a number of seconds from 1e-6 to 1; using %g", given, SWITCH_INTERVAL_S)
        return SWITCH_INTERVAL_S
    return value


def launch(app: gr.Blocks | None = None, **kwargs: Any) -> tuple:
    """Start ``app`` (default: the module's ``demo``) with the theme, CSS and server limits
    (Gradio 6 takes the theme and CSS at launch), and the plain API routes ``/gradio_api/v1/NAME``
    (``demo_core.serving.rest``) before Gradio's own."""
    app = app or demo
    sys.setswitchinterval(switch_interval())
    tune_gc(gc_threshold())  # startup objects frozen, fewer collections (serving.gc_tuning; S2S_GC_THRESHOLD=0: Python's)
    if not STOCK_GRADIO:
        make_sessions_lazy(SessionState, gr.__version__)
        skip_walks_without_files(processing_utils, client_utils, (data_classes.GradioModel, data_classes.GradioRootModel),
                                 gr.__version__)
        os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVERY))  # read by app.queue()
        os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", str(ANALYTICS_KEPT))  # ... and this too
        if importlib.util.find_spec("matplotlib") is None:
            sys.modules.setdefault("matplotlib", None)  # None: "import matplotlib" fails at once (ImportError)
        match_calls_first(gradio_routes, fastapi_routing, gr.__version__, fastapi.__version__)
        name_tasks_cheaply(anyio_asyncio)
        check_logins_inline(fastapi_dependencies, gr.__version__, fastapi.__version__)
    # api_open=False: Gradio's direct routes (/gradio_api/run/NAME) would skip the queue and its bounds (as on Spaces,
    # where Gradio closes them itself); the plain routes below have bounds of their own.
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY, api_open=False)
    options = dict(theme=THEME, css=CSS, state_session_capacity=SESSION_CAPACITY, max_file_size=MAX_FILE_SIZE)
    page = app.page  # type: ignore[attr-defined]
    plain = rest.routes({"generate": page.generate, "compare": page.compare, "synthesize": page.synthesize},
                        {InternalError: 500, gr.Error: 400}, concurrency=GENERATE_CONCURRENCY, queue_size=QUEUE_SIZE)
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs["routes"] = [*plain, *app_kwargs.get("routes", [])]  # FastAPI's first routes: matched before Gradio's
    return app.launch(**(options | kwargs), app_kwargs=app_kwargs)


demo = build_demo(ModelRegistry())

if __name__ == "__main__":
    launch()
