"""Seq2Seq Attention Explorer: type a sentence, decode it, and see where the model looked.

Run ``python app.py`` (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address). Models are
the folders under ``checkpoints/``, loaded on first use and cached. The API has one endpoint:

    from gradio_client import Client
    Client("http://127.0.0.1:7860").predict("Zwei Hunde spielen im Schnee.", "de-en-rnn-bahdanau",
                                            "beam", api_name="/generate")

This file only wires components to ``demo_core.app_logic``; no model or plotting code lives here.
"""

import html
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr
import torch

from demo_core import app_logic as logic
from demo_core.explainer import explanation
from demo_core.inference import MAX_INPUT_CHARS, DecodeResult, InputError, ModelRegistry

# One decode is a chain of tiny matrix products: extra intra-op threads only add hand-over
# cost, and on a shared 2-core machine they made a greedy run ~20x slower (measured).
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)

REGISTRY = ModelRegistry()
DEFAULT_MODEL = logic.default_model(REGISTRY)
DEFAULT_CARD = logic.card_of(REGISTRY, DEFAULT_MODEL)
DEFAULTS = logic.decode_defaults(REGISTRY, DEFAULT_MODEL)
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky", neutral_hue="slate")
CSS = """
.gradio-container { max-width: 1400px !important; }
#title h1 { margin-bottom: 0; }
#heatmap, #strip { overflow-x: auto !important; }
#heatmap .svg-container, #strip .svg-container { margin: 0 auto; }
.dark #heatmap svg text, .dark #strip svg text { fill: var(--body-text-color) !important; }
#summary p { color: var(--body-text-color-subdued); margin: 0; }
"""


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


def generate(
    text: str,
    model: str = DEFAULT_MODEL or "",
    strategy: str = "greedy",
    beam_size: int = 5,
    length_penalty: float = 1.0,
    n_best: int | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = 0,
    num_samples: int = 1,
    max_len: int | None = None,
    no_repeat_ngram: int = 0,
    repetition_penalty: float = 1.0,
) -> dict:
    """Decode ``text`` with ``model``; strategy is greedy, beam or sample.

    Returns the source pieces, the best text and every hypothesis (n-best list or samples) with
    its pieces, scores, token probabilities and attention [T, layers, heads, S].
    """
    settings = logic.Settings(
        strategy=strategy, beam_size=beam_size, length_penalty=length_penalty, n_best=n_best,
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, num_samples=num_samples,
        max_len=max_len, no_repeat_ngram=no_repeat_ngram, repetition_penalty=repetition_penalty,
    )
    with user_errors():
        return logic.decode_request(REGISTRY, text, model, settings).to_json()


def check(text: str, model: str, *controls: Any) -> None:
    """Reject bad input before the run, so the page shows a message and keeps its last result."""
    with user_errors(for_page=True):
        logic.prepare_request(REGISTRY, text, model, logic.Settings(*controls))


def explore(text: str, model: str, *controls: Any) -> tuple:
    """The page's run: decode, then fill the output, tables, selectors and figures."""
    with user_errors(for_page=True):
        result = logic.decode_request(REGISTRY, text, model, logic.Settings(*controls))
    layers, heads = logic.view_choices(result)
    several = len(result.hypotheses) > 1
    label = "Samples" if result.config.strategy == "sample" else "N-best list"
    heatmap, strip = logic.figures(result, 0, layers[-1][1], logic.AVERAGE_HEADS)
    return (
        result.best.text,
        logic.summary(result),
        gr.update(value=logic.hypothesis_rows(result), visible=several, label=f"{label} (click a row to see its attention)"),
        gr.update(choices=logic.hypothesis_choices(result), value=0, visible=several),
        gr.update(choices=layers, value=layers[-1][1], visible=len(layers) > 1),
        gr.update(choices=heads, value=logic.AVERAGE_HEADS, visible=len(heads) > 2),
        heatmap,
        strip,
        result,
    )


def redraw(result: DecodeResult | None, index: int, layer: int, head: int) -> tuple:
    """Figures for another hypothesis, layer or head of the last result."""
    if result is None:
        return gr.skip(), gr.skip()
    with user_errors(for_page=True):
        return logic.figures(result, index, layer, head)


def pick_row(result: DecodeResult | None, layer: int, head: int, evt: gr.SelectData) -> tuple:
    """A click on an n-best / sample row shows that hypothesis's attention."""
    if result is None:
        return gr.skip(), gr.skip(), gr.skip()
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return (index, *redraw(result, index, layer, head))


def show_model(model: str | None) -> tuple:
    """Card summary, examples, explanation and the card's decoding defaults for ``model``."""
    card = logic.card_of(REGISTRY, model)
    given = card.get("decode_defaults", {})
    defaults = logic.decode_defaults(REGISTRY, model)
    keep = gr.skip()
    return (
        logic.model_summary(REGISTRY, model),
        gr.Dataset(samples=[[e] for e in logic.examples_of(REGISTRY, model)]),
        explanation(card),
        defaults.strategy if "strategy" in given else keep,
        defaults.beam_size if "beam_size" in given else keep,
        defaults.length_penalty if "length_penalty" in given else keep,
    )


def show_strategy(strategy: str) -> tuple:
    """Only the controls of the chosen strategy are visible."""
    return gr.update(visible=strategy == "beam"), gr.update(visible=strategy == "sample")


def limit_n_best(beam_size: int, n_best: int) -> dict:
    """The n-best count can never exceed the beam width."""
    return gr.update(maximum=beam_size, value=min(n_best or beam_size, beam_size))


def choose_task(task: str) -> dict:
    """The model menu lists the models of the chosen task."""
    choices = logic.model_choices(REGISTRY, task)
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


def pick_example(index: int, model: str) -> str:
    """The clicked example of the current model goes into the input box."""
    examples = logic.examples_of(REGISTRY, model)
    return examples[index] if index is not None and 0 <= index < len(examples) else gr.skip()


with gr.Blocks(title="Seq2Seq Attention Explorer", analytics_enabled=False) as demo:
    gr.Markdown(
        "# Seq2Seq Attention Explorer\n"
        "Type a sentence, pick a model and a decoding strategy, and see which source tokens the "
        "model attended to while writing each output token.",
        elem_id="title",
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            initial_task = logic.task_of(REGISTRY.entries[DEFAULT_MODEL]) if DEFAULT_MODEL else None
            task = gr.Dropdown(logic.task_choices(REGISTRY), value=initial_task, label="Task")
            model = gr.Dropdown(logic.model_choices(REGISTRY, initial_task), value=DEFAULT_MODEL, label="Model")
            model_info = gr.Markdown(logic.model_summary(REGISTRY, DEFAULT_MODEL), elem_id="model-info")
            text = gr.Textbox(
                value=(logic.examples_of(REGISTRY, DEFAULT_MODEL) or [""])[0],
                label="Input",
                placeholder=f"Type a sentence (up to {MAX_INPUT_CHARS} characters) and press Enter",
                lines=1,
                max_lines=6,
                elem_id="input-text",
            )
            run = gr.Button("Run", variant="primary", elem_id="run")
            examples = gr.Dataset(
                components=[text],
                samples=[[e] for e in logic.examples_of(REGISTRY, DEFAULT_MODEL)],
                type="index",
                label="Examples (click to run)",
            )
            strategy = gr.Radio(
                [(label, key) for key, label in logic.STRATEGY_LABELS.items()],
                value=DEFAULTS.strategy,
                label="Decoding strategy",
                elem_id="strategy",
            )
            with gr.Column(visible=DEFAULTS.strategy == "beam") as beam_controls:
                beam_size = gr.Slider(1, 16, value=DEFAULTS.beam_size, step=1, label="Beam width")
                length_penalty = gr.Slider(0, 2, value=DEFAULTS.length_penalty, step=0.1,
                                           label="Length penalty α", info="score / ((5 + length) / 6)^α")
                n_best = gr.Slider(1, DEFAULTS.beam_size, value=DEFAULTS.beam_size, step=1, label="N-best hypotheses shown")
            with gr.Column(visible=DEFAULTS.strategy == "sample") as sample_controls:
                temperature = gr.Slider(0.05, 2, value=1.0, step=0.05, label="Temperature")
                top_k = gr.Slider(0, 100, value=0, step=1, label="Top-k (0 = off)")
                top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p (nucleus)")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="Seed (empty = random)", min_width=120)
                    num_samples = gr.Slider(1, 16, value=5, step=1, label="Samples", min_width=160)
            with gr.Accordion("Length and repetition", open=False):
                max_len = gr.Slider(0, 400, value=0, step=1, label="Max output tokens (0 = 2 × source + 10)")
                no_repeat_ngram = gr.Slider(0, 6, value=0, step=1, label="No-repeat n-gram size (0 = off)")
                repetition_penalty = gr.Slider(1, 3, value=1.0, step=0.05, label="Repetition penalty (1 = off)")
        with gr.Column(scale=3, min_width=420):
            output = gr.Textbox(label="Output", lines=2, interactive=False, buttons=["copy"], elem_id="output-text")
            run_summary = gr.Markdown(elem_id="summary")
            with gr.Row():
                hypothesis = gr.Dropdown(label="Show attention of", visible=False, interactive=True, scale=3)
                layer = gr.Dropdown(label="Layer", visible=False, interactive=True, scale=1)
                head = gr.Dropdown(label="Head", visible=False, interactive=True, scale=1)
            heatmap = gr.Plot(label="Attention: source tokens (top) × output tokens (side)", elem_id="heatmap")
            strip = gr.Plot(label="Confidence: probability of each output token (hover for alternatives)", elem_id="strip")
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
        explainer = gr.Markdown(explanation(DEFAULT_CARD), latex_delimiters=LATEX)
    if logic.attributions(REGISTRY):
        gr.Markdown("<small>Training data: " + " ".join(logic.attributions(REGISTRY)) + "</small>")
    result = gr.State(None)

    settings = [strategy, beam_size, length_penalty, n_best, temperature, top_k, top_p, seed, num_samples,
                max_len, no_repeat_ngram, repetition_penalty]  # the field order of logic.Settings
    run_outputs = [output, run_summary, table, hypothesis, layer, head, heatmap, strip, result]
    figures = [heatmap, strip]
    private = dict(api_visibility="private")

    gr.api(generate, api_name="generate")
    request = [text, model, *settings]
    gr.on([run.click, text.submit], check, request, None, api_name="check", show_progress="hidden", **private).success(
        explore, request, run_outputs, api_name="explore", show_progress="minimal", **private)
    if DEFAULT_MODEL in REGISTRY.available():  # a first picture on arrival; nothing to run without a model
        demo.load(explore, request, run_outputs, api_name="explore_on_load", **private)
    examples.click(pick_example, [examples, model], text, api_name="pick_example", **private).success(
        check, request, None, api_name="check_example", show_progress="hidden", **private).success(
        explore, request, run_outputs, api_name="explore_example", show_progress="minimal", **private)
    task.input(choose_task, task, model, api_name="choose_task", **private)
    model.change(show_model, model, [model_info, examples, explainer, strategy, beam_size, length_penalty],
                 api_name="show_model", **private)
    strategy.change(show_strategy, strategy, [beam_controls, sample_controls], api_name="show_strategy", **private)
    beam_size.change(limit_n_best, [beam_size, n_best], n_best, api_name="limit_n_best", **private)
    gr.on([hypothesis.input, layer.input, head.input], redraw, [result, hypothesis, layer, head], figures,
          api_name="redraw", show_progress="hidden", **private)
    table.select(pick_row, [result, layer, head], [hypothesis, *figures], api_name="pick_row", show_progress="hidden",
                 **private)


def launch(**kwargs: Any) -> tuple:
    """Start the server with the app's theme and CSS (Gradio 6 takes both at launch)."""
    return demo.launch(theme=THEME, css=CSS, **kwargs)


if __name__ == "__main__":
    launch()
