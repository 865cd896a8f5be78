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

This file only wires components to ``demo_core.app_logic``; no model or plotting code lives here.
"""

import html
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr
import torch

from demo_core.serving import catalogue as logic
from demo_core.serving.explanations import explanation
from demo_core.pipeline import MAX_INPUT_CHARS, DecodeResult, InputError, ModelRegistry

# One decode is a chain of tiny matrix products: extra intra-op threads only add hand-over
# cost, and on a shared 2-core machine they made a greedy run ~20x slower (measured).
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)

REGISTRY = ModelRegistry()
DEFAULT_MODEL = logic.default_model(REGISTRY)
DEFAULT_CARD = logic.card_of(REGISTRY, DEFAULT_MODEL)
DEFAULTS = logic.decode_defaults(REGISTRY, DEFAULT_MODEL)
COMPARE_A, COMPARE_STRATEGY_A, COMPARE_B, COMPARE_STRATEGY_B = logic.compare_defaults(REGISTRY)
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky", neutral_hue="slate")
CSS = """
.gradio-container { max-width: 1400px !important; }
#title h1 { margin-bottom: 0; }
#heatmap, #strip, .compare-heatmap { overflow-x: auto !important; }
#heatmap .svg-container, #strip .svg-container, .compare-heatmap .svg-container { margin: 0 auto; }
.dark #heatmap svg text, .dark #strip svg text, .dark .compare-heatmap svg text {
  fill: var(--body-text-color) !important;
}
#summary p, .compare-summary p { color: var(--body-text-color-subdued); margin: 0; }
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
        return logic.api_json(REGISTRY, logic.decode_request(REGISTRY, text, model, settings))


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
    has_encoder = result.encoder_attention is not None
    return (
        result.best.text,
        *speech_outputs(result, 0),
        logic.summary(result),
        gr.update(value=logic.hypothesis_rows(result), visible=several, label=f"{label} (click a row to see its attention)"),
        gr.update(choices=logic.hypothesis_choices(result), value=0, visible=several),
        gr.update(value=logic.CROSS, visible=has_encoder),
        gr.update(visible=not has_encoder),
        gr.update(choices=layers, value=layers[-1][1], visible=len(layers) > 1),
        gr.update(choices=heads, value=logic.AVERAGE_HEADS, visible=len(heads) > 3),
        heatmap,
        strip,
        result,
    )


def speech_outputs(result: DecodeResult | None, index: int) -> tuple:
    """IPA line and audio of hypothesis ``index`` for G2P models; both hidden for other models."""
    if result is None:
        return gr.skip(), gr.skip()
    if not logic.speaks(REGISTRY, result.model_id):
        return gr.update(value="", visible=False), gr.update(value=None, visible=False)
    with user_errors(for_page=True):
        text, audio = logic.pronunciation(result, index)
    return gr.update(value=text, visible=True), gr.update(value=audio, visible=audio is not None)


def redraw(result: DecodeResult | None, index: int, view: str, layer: int, head: int) -> tuple:
    """Figures for another hypothesis, layer or head of the last result."""
    if result is None:
        return gr.skip(), gr.skip()
    with user_errors(for_page=True):
        return logic.figures(result, index, layer, head, view)


def switch_view(result: DecodeResult | None, index: int, view: str, head: int) -> tuple:
    """Cross-attention or encoder self-attention: the layer menu follows the view's layers."""
    if result is None:
        return gr.skip(), gr.skip(), gr.skip()
    layers, _ = logic.view_choices(result, view)
    return (gr.update(choices=layers, value=layers[-1][1]), *redraw(result, index, view, layers[-1][1], head))


def pick_row(result: DecodeResult | None, view: str, layer: int, head: int, evt: gr.SelectData) -> tuple:
    """A click on an n-best / sample row shows that hypothesis's attention."""
    if result is None:
        return (gr.skip(),) * 5
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return (index, *redraw(result, index, view, layer, head), *speech_outputs(result, index))


def compare(
    text: str,
    model_a: str = COMPARE_A or "",
    strategy_a: str = COMPARE_STRATEGY_A,
    model_b: str = COMPARE_B or "",
    strategy_b: str = COMPARE_STRATEGY_B,
    beam_size: int = 5,
    length_penalty: float = 1.0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = 0,
) -> dict:
    """Decode ``text`` with model A / strategy A and with model B / strategy B (same source language).

    The beam and sampling settings apply to both sides; sampling draws one sample. Returns
    ``{"a": ..., "b": ...}``, each what ``/generate`` returns for that side.
    """
    shared = (beam_size, length_penalty, temperature, top_p, seed)
    with user_errors():
        a, b = logic.compare_request(REGISTRY, text, model_a, logic.compare_settings(strategy_a, *shared),
                                     model_b, logic.compare_settings(strategy_b, *shared))
    return {"a": a.to_json(), "b": b.to_json()}


def check_compare(text: str, model_a: str, strategy_a: str, model_b: str, strategy_b: str, *shared: Any) -> None:
    """Reject bad Compare input before the runs (the page keeps its last pictures)."""
    with user_errors(for_page=True):
        logic.prepare_request(REGISTRY, text, model_a, logic.compare_settings(strategy_a, *shared))
        logic.prepare_request(REGISTRY, text, model_b, logic.compare_settings(strategy_b, *shared))


def compare_page(text: str, model_a: str, strategy_a: str, model_b: str, strategy_b: str, *shared: Any) -> tuple:
    """Both runs' output, score line and heatmap (last layer, average of heads)."""
    with user_errors(for_page=True):
        results = logic.compare_request(REGISTRY, text, model_a, logic.compare_settings(strategy_a, *shared),
                                        model_b, logic.compare_settings(strategy_b, *shared))
    return tuple(part for r in results for part in (r.best.text, logic.summary(r, compared=True), logic.attention_figure(r)))


def show_model(model: str | None) -> tuple:
    """Card summary, examples, explanation and the card's decoding defaults for ``model``."""
    card = logic.card_of(REGISTRY, model)
    given = card.get("decode_defaults", {})
    defaults = logic.decode_defaults(REGISTRY, model)
    keep = gr.skip()
    return (
        logic.model_summary(REGISTRY, model),
        gr.Dataset(samples=logic.example_rows(REGISTRY, model)),
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


def first_compare(compared: bool, *request: Any) -> tuple:
    """The first visit to the Compare tab shows a comparison of its preset input; later visits keep the page."""
    if compared:
        return (gr.skip(),) * 7
    try:
        return (True, *compare_page(*request))
    except gr.Error:
        return (True, *(gr.skip(),) * 6)


with gr.Blocks(title="Seq2Seq Attention Explorer", analytics_enabled=False) as demo:
    gr.Markdown(
        "# Seq2Seq Attention Explorer\n"
        "Type a sentence, pick a model and a decoding strategy, and see which source tokens the "
        "model attended to while writing each output token.",
        elem_id="title",
    )
    initial_task = logic.task_of(REGISTRY.entries[DEFAULT_MODEL]) if DEFAULT_MODEL else None
    initial_text = (logic.examples_of(REGISTRY, DEFAULT_MODEL) or [""])[0]
    with gr.Tabs():
        with gr.Tab("Explore", id="explore", elem_id="explore"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=340):
                    task = gr.Dropdown(logic.task_choices(REGISTRY), value=initial_task, label="Task", elem_id="task")
                    model = gr.Dropdown(logic.model_choices(REGISTRY, initial_task), value=DEFAULT_MODEL, label="Model",
                                        elem_id="model")
                    model_info = gr.Markdown(logic.model_summary(REGISTRY, DEFAULT_MODEL), elem_id="model-info")
                    text = gr.Textbox(
                        value=initial_text,
                        label="Input",
                        placeholder=f"Type a sentence (up to {MAX_INPUT_CHARS} characters) and press Enter",
                        lines=1,
                        max_lines=6,
                        elem_id="input-text",
                    )
                    run = gr.Button("Run", variant="primary", elem_id="run")
                    examples = gr.Dataset(
                        components=[text, gr.Textbox(render=False)],
                        headers=["Example", "What to look for"],
                        samples=logic.example_rows(REGISTRY, DEFAULT_MODEL),
                        type="index",
                        label="Examples (click to run)",
                        elem_id="examples",
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
                        n_best = gr.Slider(1, DEFAULTS.beam_size, value=DEFAULTS.beam_size, step=1,
                                           label="N-best hypotheses shown")
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
                    output = gr.Textbox(label="Output", lines=2, interactive=False, buttons=["copy"],
                                        elem_id="output-text")
                    pronunciation = gr.Markdown(visible=False, elem_id="pronunciation")
                    audio = gr.Audio(label="Hear it (espeak-ng speaks the predicted phones)", type="numpy",
                                     interactive=False, visible=False, elem_id="audio")
                    run_summary = gr.Markdown(elem_id="summary")
                    hypothesis = gr.Dropdown(label="Show attention of", visible=False, interactive=True)
                    with gr.Row():
                        view = gr.Radio([(label, key) for key, label in logic.VIEW_LABELS.items()], value=logic.CROSS,
                                        label="Attention", visible=False, scale=2, elem_id="view")
                        layer = gr.Dropdown(label="Layer", visible=False, interactive=True, scale=1, min_width=120,
                                            elem_id="layer")
                        head = gr.Dropdown(label="Head", visible=False, interactive=True, scale=1, min_width=180,
                                           elem_id="head")
                    no_encoder = gr.Markdown(logic.NO_ENCODER_ATTENTION, visible=False, elem_id="no-encoder")
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
                explainer = gr.Markdown(explanation(DEFAULT_CARD), latex_delimiters=LATEX)
        with gr.Tab("Compare", id="compare", elem_id="compare") as compare_tab:
            gr.Markdown(
                "The same input through two models, or through one model with two decoding strategies. "
                "Both heatmaps show the last layer's cross-attention (averaged over heads) on the same "
                "0–1 colour scale, so their colours compare directly. The score is the sum of the output "
                "tokens' log-probabilities (closer to 0 is more likely); the normalised score divides it by "
                "the length (beam search: by its length penalty)."
            )
            compare_text = gr.Textbox(value=initial_text, label="Input", lines=1, max_lines=6,
                                      placeholder="Type a sentence and press Enter", elem_id="compare-text")
            compare_models = logic.compare_model_choices(REGISTRY)
            strategy_choices = [(label, key) for key, label in logic.STRATEGY_LABELS.items()]
            with gr.Row():
                with gr.Column():
                    model_a = gr.Dropdown(compare_models, value=COMPARE_A, label="A: model", elem_id="model-a")
                    strategy_a = gr.Radio(strategy_choices, value=COMPARE_STRATEGY_A, label="A: decoding strategy",
                                          elem_id="strategy-a")
                with gr.Column():
                    model_b = gr.Dropdown(compare_models, value=COMPARE_B, label="B: model", elem_id="model-b")
                    strategy_b = gr.Radio(strategy_choices, value=COMPARE_STRATEGY_B, label="B: decoding strategy",
                                          elem_id="strategy-b")
            with gr.Accordion("Beam and sampling settings (both sides)", open=False):
                with gr.Row():
                    shared_beam = gr.Slider(1, 16, value=DEFAULTS.beam_size, step=1, label="Beam width")
                    shared_penalty = gr.Slider(0, 2, value=DEFAULTS.length_penalty, step=0.1, label="Length penalty α")
                    shared_temperature = gr.Slider(0.05, 2, value=1.0, step=0.05, label="Temperature")
                    shared_top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p (nucleus)")
                    shared_seed = gr.Number(0, precision=0, label="Seed (empty = random)")
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
    if logic.attributions(REGISTRY):
        gr.Markdown("<small>Training data: " + " · ".join(logic.attributions(REGISTRY)) + "</small>")
    result = gr.State(None)

    settings = [strategy, beam_size, length_penalty, n_best, temperature, top_k, top_p, seed, num_samples,
                max_len, no_repeat_ngram, repetition_penalty]  # the field order of logic.Settings
    speech = [pronunciation, audio]
    run_outputs = [output, *speech, run_summary, table, hypothesis, view, no_encoder, layer, head, heatmap, strip, result]
    figures = [heatmap, strip]
    private = dict(api_visibility="private")

    gr.api(generate, api_name="generate")
    gr.api(compare, api_name="compare")
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
    gr.on([hypothesis.input, layer.input, head.input], redraw, [result, hypothesis, view, layer, head], figures,
          api_name="redraw", show_progress="hidden", **private)
    hypothesis.input(speech_outputs, [result, hypothesis], speech, api_name="speak", show_progress="hidden", **private)
    view.input(switch_view, [result, hypothesis, view, head], [layer, *figures], api_name="switch_view",
               show_progress="hidden", **private)
    table.select(pick_row, [result, view, layer, head], [hypothesis, *figures, *speech], api_name="pick_row",
                 show_progress="hidden", **private)

    compare_request = [compare_text, model_a, strategy_a, model_b, strategy_b, shared_beam, shared_penalty,
                       shared_temperature, shared_top_p, shared_seed]
    gr.on([compare_run.click, compare_text.submit], check_compare, compare_request, None, api_name="check_compare",
          show_progress="hidden", **private).success(
        compare_page, compare_request, sides, api_name="compare_page", show_progress="minimal", **private)
    if COMPARE_A in REGISTRY.available():  # the first visit to the tab shows a comparison
        compared = gr.State(False)
        compare_tab.select(first_compare, [compared, *compare_request], [compared, *sides],
                           api_name="compare_on_select", show_progress="minimal", **private)


def launch(**kwargs: Any) -> tuple:
    """Start the server with the app's theme and CSS (Gradio 6 takes both at launch)."""
    return demo.launch(theme=THEME, css=CSS, **kwargs)


if __name__ == "__main__":
    launch()
