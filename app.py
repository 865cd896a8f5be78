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

import html
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import gradio as gr
import torch

from demo_core.decoding import OPTION, OPTIONS, Option
from demo_core.decoding.config import STRATEGY_LABELS
from demo_core.figures_speech import synthesis_figure
from demo_core.pipeline import MAX_INPUT_CHARS, DecodeResult, InputError, ModelRegistry
from demo_core.serving import catalogue, pronunciation, synthesis, views
from demo_core.serving.explanations import explanation
from demo_core.serving.requests import (
    COMPARE_SHARED,
    compare_options,
    compare_request,
    decode_defaults,
    decode_request,
    prepare_request,
    prepare_side,
)

# One decode is a chain of tiny matrix products: extra intra-op threads only add hand-over
# cost (``python benchmarks/bench_decoding.py --threads 2`` against ``--threads 1``).
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky", neutral_hue="slate")
CSS = """
.gradio-container { max-width: 1400px !important; }
#title h1 { margin-bottom: 0; }
#heatmap, #strip, .compare-heatmap, #tts-figure { overflow-x: auto !important; }
#heatmap .svg-container, #strip .svg-container, .compare-heatmap .svg-container { margin: 0 auto; }
.dark #heatmap svg text, .dark #strip svg text, .dark .compare-heatmap svg text, .dark #tts-figure svg text {
  fill: var(--body-text-color) !important;
}
#summary p, .compare-summary p { color: var(--body-text-color-subdued); margin: 0; }
"""
STRATEGY_CHOICES = [(label, key) for key, label in STRATEGY_LABELS.items()]
PRIVATE = dict(api_visibility="private")
LOG = logging.getLogger("seq2seq_explorer")


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
        raise gr.Error(f"internal error ({type(exc).__name__}); it has been logged. Try other input or "
                       "settings, or report it.", print_exception=False) from exc


def endpoint(name: str, doc: str, leading: Mapping[str, tuple[type, Any]], options: list[Option],
             run: Callable[[dict[str, Any]], dict]) -> Callable[..., dict]:
    """An API function whose parameters are ``leading`` (name -> (type, default)) and then
    ``options`` with their own defaults, so ``gr.api`` shows exactly those; ``run`` gets every
    argument by name."""
    params = [inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=kind)
              for key, (kind, default) in leading.items()]
    params += [inspect.Parameter(opt.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=opt.default,
                                 annotation=opt.kind | None if opt.blank == "none" else opt.kind) for opt in options]
    signature = inspect.Signature(params, return_annotation=dict)

    def call(*args: Any, **kwargs: Any) -> dict:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return run(dict(bound.arguments))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = doc
    call.__signature__ = signature  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in params} | {"return": dict}
    return call


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
        self.default_model = catalogue.default_model(registry)
        self.compare_a, self.compare_strategy_a, self.compare_b, self.compare_strategy_b = catalogue.compare_defaults(registry)
        self.controls: dict[str, gr.components.Component] = {}  # option name -> Explore control
        self.shared_controls: dict[str, gr.components.Component] = {}  # option name -> Compare control
        self.generate = endpoint(
            "generate",
            "Decode ``text`` with ``model``; strategy is greedy, beam or sample.\n\nReturns the source pieces, the best "
            "text and every hypothesis (n-best list or samples) with its pieces, scores, token probabilities and "
            "attention [T, layers, heads, S].",
            {"text": (str, inspect.Parameter.empty), "model": (str, self.default_model or "")},
            list(OPTIONS), self._generate)
        self.compare = endpoint(
            "compare",
            "Decode ``text`` with model A / strategy A and with model B / strategy B (same source language).\n\nThe "
            "beam and sampling options apply to both sides; sampling draws one sample. Returns ``{\"a\": ..., \"b\": "
            "...}``, each what ``/generate`` returns for that side.",
            {"text": (str, inspect.Parameter.empty), "model_a": (str, self.compare_a or ""),
             "strategy_a": (str, self.compare_strategy_a), "model_b": (str, self.compare_b or ""),
             "strategy_b": (str, self.compare_strategy_b)},
            [OPTION[name] for name in COMPARE_SHARED], self._compare)
        self.speech_model = synthesis.default_speech_model(registry)
        self.synthesize = endpoint(
            "synthesize",
            "Speak ``text`` (English, at most 25 words) with the speech-synthesis ``model``.\n\nReturns the words, "
            "their phones and where each came from (CMUdict or the pronunciation model), the attention [decoder "
            "steps, phones], the log-mel spectrogram [frames, 80], stop probabilities, and the audio as a base64 "
            "WAV file with its sample rate.",
            {"text": (str, inspect.Parameter.empty), "model": (str, self.speech_model or "")},
            [OPTION["seed"]], self._synthesize)

    # --- the API ------------------------------------------------------------------------------

    def _generate(self, args: dict[str, Any]) -> dict:
        text, model = args.pop("text"), args.pop("model")
        if self.registry.is_speech(model):  # speech has one strategy: the same reply as /synthesize
            return self._synthesize({"text": text, "model": model, "seed": args.get("seed")})
        with user_errors():
            return pronunciation.api_json(self.registry, decode_request(self.registry, text, model, args))

    def _synthesize(self, args: dict[str, Any]) -> dict:
        with user_errors():
            _, result = synthesis.synthesize(self.registry, args["model"], args["text"], args["seed"])
            return synthesis.api_json(args["model"], result)

    def _compare(self, args: dict[str, Any]) -> dict:
        shared = {name: args[name] for name in COMPARE_SHARED}
        with user_errors():
            a, b = compare_request(self.registry, args["text"], args["model_a"], compare_options(args["strategy_a"], shared),
                                   args["model_b"], compare_options(args["strategy_b"], shared))
        return {"a": a.to_json(), "b": b.to_json()}

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
        heatmap, strip = views.figures(result, 0, layers[-1][1], views.AVERAGE_HEADS)
        has_encoder = result.encoder_attention is not None
        return (
            result.best.text,
            *self.speech_outputs(result, 0),
            views.summary(result),
            gr.update(value=views.hypothesis_rows(result), visible=several, label=f"{label} (click a row to see its attention)"),
            gr.update(choices=views.hypothesis_choices(result), value=0, visible=several),
            gr.update(value=views.CROSS, visible=has_encoder),
            gr.update(visible=not has_encoder),
            gr.update(choices=layers, value=layers[-1][1], visible=len(layers) > 1),
            gr.update(choices=heads, value=views.AVERAGE_HEADS, visible=len(heads) > 3),
            heatmap,
            strip,
            result,
        )

    def speech_outputs(self, result: DecodeResult | None, index: int) -> tuple:
        """IPA line and audio of hypothesis ``index`` for G2P models; both hidden for other models."""
        if result is None:
            return gr.skip(), gr.skip()
        if not pronunciation.speaks(self.registry, result.model_id):
            return gr.update(value="", visible=False), gr.update(value=None, visible=False)
        with user_errors(for_page=True):
            text, audio = pronunciation.pronunciation(result, index)
        return gr.update(value=text, visible=True), gr.update(value=audio, visible=audio is not None)

    def redraw(self, result: DecodeResult | None, index: int, view: str, layer: int, head: int) -> tuple:
        """Figures for another hypothesis, layer or head of the last result."""
        if result is None:
            return gr.skip(), gr.skip()
        with user_errors(for_page=True):
            return views.figures(result, index, layer, head, view)

    def switch_view(self, result: DecodeResult | None, index: int, view: str, head: int) -> tuple:
        """Cross-attention or encoder self-attention: the layer menu follows the view's layers."""
        if result is None:
            return gr.skip(), gr.skip(), gr.skip()
        layers, _ = views.view_choices(result, view)
        return (gr.update(choices=layers, value=layers[-1][1]), *self.redraw(result, index, view, layers[-1][1], head))

    def pick_row(self, result: DecodeResult | None, view: str, layer: int, head: int, evt: gr.SelectData) -> tuple:
        """A click on an n-best / sample row shows that hypothesis's attention."""
        if result is None:
            return (gr.skip(),) * 5
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return (index, *self.redraw(result, index, view, layer, head), *self.speech_outputs(result, index))

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
            gr.Dataset(samples=catalogue.example_rows(self.registry, model)),
            explanation(card),
            gr.update(visible=not speech),
            gr.update(visible=speech),
            examples[0] if examples else gr.skip(),
            *(defaults[name] if name in given else gr.skip() for name in self.controls),
        )

    def choose_task(self, task: str) -> dict:
        """The model menu lists the models of the chosen task."""
        choices = catalogue.model_choices(self.registry, task)
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def pick_example(self, index: int, model: str) -> str:
        """The clicked example of the current model goes into the input box."""
        examples = catalogue.examples_of(self.registry, model)
        return examples[index] if index is not None and 0 <= index < len(examples) else gr.skip()

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
                     for part in (r.best.text, views.summary(r, compared=True), views.attention_figure(r)))

    def first_compare(self, values: Mapping[Any, Any]) -> tuple:
        """The first visit to the Compare tab shows a comparison of its preset input; later visits keep the page."""
        if values[self.compared]:
            return (gr.skip(),) * 7
        try:
            return (True, *self.compare_page(values))
        except gr.Error:
            return (True, *(gr.skip(),) * 6)


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
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=340):
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
                        examples = gr.Dataset(
                            components=[page.text, gr.Textbox(render=False)],
                            headers=["Example", "What to look for"],
                            samples=catalogue.example_rows(registry, default),
                            type="index",
                            label="Examples (click to run)",
                            elem_id="examples",
                        )
                        controls = page.controls

                        def add(opt: Option, **layout: Any) -> None:
                            elem_id = "strategy" if opt.name == "strategy" else f"option-{opt.name}"
                            controls[opt.name] = option_control(opt, starts[opt.name], elem_id, **layout)

                        with gr.Column(visible=not registry.is_speech(default)) as decoding_panel:
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
                        with gr.Column(visible=registry.is_speech(default)) as speech_controls:
                            gr.Markdown(synthesis.STRATEGY_NOTE, elem_id="tts-strategy-note")
                            page.speech_seed = gr.Number(0, precision=0, label="Prenet-dropout seed", elem_id="tts-seed")
                    with gr.Column(scale=3, min_width=420):
                        with gr.Column(visible=False) as page.speech_panel:
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
                        with gr.Column() as page.text_panel:
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
                            no_encoder = gr.Markdown(views.NO_ENCODER_ATTENTION, visible=False, elem_id="no-encoder")
                            heatmap = gr.Plot(label="Attention: each row's weights over the columns (hover a cell)",
                                              elem_id="heatmap")
                            strip = gr.Plot(label="Confidence: probability of each output token (hover for alternatives)",
                                            elem_id="strip")
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
                    "0–1 colour scale, so their colours compare directly. The score is the sum of the output "
                    "tokens' log-probabilities (closer to 0 is more likely); the normalised score divides it by "
                    "the length (beam search: by its length penalty)."
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
                                gr.Plot(label=f"{side.upper()}: attention", elem_id=f"heatmap-{side}",
                                        elem_classes="compare-heatmap"),
                            ]
        if catalogue.attributions(registry):
            gr.Markdown("<small>Training data: " + " · ".join(catalogue.attributions(registry)) + "</small>")
        result = gr.State(None)

        speech = [ipa, audio]
        page.text_outputs = [output, *speech, run_summary, table, hypothesis, view, no_encoder, layer, head, heatmap, strip,
                             result]
        page.speech_result = gr.State(None)
        run_outputs = [page.text_panel, page.speech_panel, *page.text_outputs, page.speech_phones, page.speech_audio,
                       page.reference_audio, page.speech_step, page.speech_step_text, page.speech_figure, page.speech_result]
        figures = [heatmap, strip]
        request = {page.text, page.model, page.speech_seed, *controls.values()}  # handlers read values by component

        gr.api(page.generate, api_name="generate")
        gr.api(page.compare, api_name="compare")
        gr.api(page.synthesize, api_name="synthesize")
        gr.on([run.click, page.text.submit], page.check, request, None, api_name="check", show_progress="hidden",
              **PRIVATE).success(page.explore, request, run_outputs, api_name="explore", show_progress="minimal", **PRIVATE)
        if default in registry.available():  # a first picture on arrival; nothing to run without a model
            demo.load(page.explore, request, run_outputs, api_name="explore_on_load", **PRIVATE)
        examples.click(page.pick_example, [examples, page.model], page.text, api_name="pick_example", **PRIVATE).success(
            page.check, request, None, api_name="check_example", show_progress="hidden", **PRIVATE).success(
            page.explore, request, run_outputs, api_name="explore_example", show_progress="minimal", **PRIVATE)
        task.input(page.choose_task, task, page.model, api_name="choose_task", **PRIVATE)
        page.model.change(page.show_model, page.model, [model_info, examples, explainer, decoding_panel, speech_controls,
                                                        page.text, *controls.values()], api_name="show_model", **PRIVATE)
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
        gr.on([hypothesis.input, layer.input, head.input], page.redraw, [result, hypothesis, view, layer, head], figures,
              api_name="redraw", show_progress="hidden", **PRIVATE)
        hypothesis.input(page.speech_outputs, [result, hypothesis], speech, api_name="speak", show_progress="hidden",
                         **PRIVATE)
        view.input(page.switch_view, [result, hypothesis, view, head], [layer, *figures], api_name="switch_view",
                   show_progress="hidden", **PRIVATE)
        table.select(page.pick_row, [result, view, layer, head], [hypothesis, *figures, *speech], api_name="pick_row",
                     show_progress="hidden", **PRIVATE)

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
    return demo


# Server limits, set on purpose (issue: a class of students at once on a 2-core machine):
QUEUE_SIZE = 64  # requests waiting at most; beyond it a client is told the server is busy instead of waiting minutes
CONCURRENCY = 2  # decodes at once: one per core (each decode uses one thread)
SESSION_CAPACITY = 256  # sessions whose state (the last result, for redraws) is kept; the oldest is dropped first
MAX_FILE_SIZE = "1kb"  # the page takes no uploads; anything larger than a tiny request body is refused


def launch(app: gr.Blocks | None = None, **kwargs: Any) -> tuple:
    """Start ``app`` (default: the module's ``demo``) with the theme, CSS and server limits
    (Gradio 6 takes the theme and CSS at launch)."""
    app = app or demo
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    options = dict(theme=THEME, css=CSS, state_session_capacity=SESSION_CAPACITY, max_file_size=MAX_FILE_SIZE)
    return app.launch(**(options | kwargs))


demo = build_demo(ModelRegistry())

if __name__ == "__main__":
    launch()
