"""The app's glue, free of UI code: model catalogue, controls to ``DecodeConfig``, tables, texts.

``app.py`` wires Gradio components to these functions, so everything here can be tested and
benchmarked without a server. Values arrive as a browser or an API client sent them
(``None``, floats for integers, strings), hence the careful coercion: every bad value becomes
an ``InputError`` that names the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import torch

from demo_core.checkpoint import ModelEntry, read_metrics
from demo_core.decoding.search import DecodeConfig
from demo_core.report import decoding_label, headline
from demo_core.figures import confidence_strip, heads_grid, layer_heads, view_title, weights_heatmap
from demo_core.pipeline import DecodeResult, InputError, ModelRegistry, Translator
from demo_core.tasks.phonemes import ipa_string
from demo_core.tasks import speech

GROUPS = ("Translation", "Speech", "Summarisation", "Dates")  # the task menu's order
STRATEGY_LABELS = {"greedy": "Greedy", "beam": "Beam search", "sample": "Sampling"}
UNAVAILABLE_TASK = "Unavailable models"
AVERAGE_HEADS = -1  # head selector value meaning "average of heads"
ALL_HEADS = -2  # head selector value meaning "every head of the layer, as a grid"
CROSS, ENCODER = "cross", "encoder"  # the two attention views
VIEW_LABELS = {CROSS: "Cross-attention (output × source)", ENCODER: "Encoder self-attention (source × source)"}
NO_ENCODER_ATTENTION = ("<small>Encoder self-attention: none for this model. A recurrent encoder reads the "
                        "source token by token; it has no attention between source tokens.</small>")


@dataclass(frozen=True)
class Settings:
    """Decoding controls as the page or an API client sent them (not yet checked)."""

    strategy: Any = "greedy"
    beam_size: Any = 5
    length_penalty: Any = 1.0
    n_best: Any = None
    temperature: Any = 1.0
    top_k: Any = 0
    top_p: Any = 1.0
    seed: Any = 0
    num_samples: Any = 1
    max_len: Any = None
    no_repeat_ngram: Any = 0
    repetition_penalty: Any = 1.0


# ---- model catalogue -------------------------------------------------------------------


def task_of(entry: ModelEntry) -> str:
    """The task a model is listed under; models whose card cannot be read get their own."""
    return str(entry.card.get("task_label") or UNAVAILABLE_TASK)


def task_choices(registry: ModelRegistry) -> list[tuple[str, str]]:
    """(label, task) pairs in ``GROUPS`` order, then by the cards' ``menu_order`` (German → English
    first: the first task is the page's default); the label carries the group because dropdowns
    have no option groups."""
    groups: dict[str, str] = {}
    rank: dict[str, int] = {}
    for entry in registry.entries.values():
        task = task_of(entry)
        groups.setdefault(task, str(entry.card.get("group") or "Other"))
        rank[task] = min(rank.get(task, 100), int(entry.card.get("menu_order", 100)))

    def key(task: str) -> tuple:
        group = groups[task]
        return (task == UNAVAILABLE_TASK, GROUPS.index(group) if group in GROUPS else len(GROUPS), group, rank[task], task)

    order = sorted(groups, key=key)
    return [(f"{groups[task]} › {task}" if task != UNAVAILABLE_TASK else task, task) for task in order]


def model_label(entry: ModelEntry) -> str:
    """Display name and architecture, or why the model cannot be used."""
    if not entry.available:
        return f"⚠ {entry.id} (unavailable)"
    name = entry.card.get("display_name") or entry.id
    return f"{name} · {entry.card.get('architecture', '?')}"


def model_choices(registry: ModelRegistry, task: str | None) -> list[tuple[str, str]]:
    """(label, model id) pairs of the models for ``task``, usable ones first."""
    entries = [e for e in registry.entries.values() if task_of(e) == task]
    entries.sort(key=lambda e: (not e.available, e.id))
    return [(model_label(e), e.id) for e in entries]


def default_model(registry: ModelRegistry) -> str | None:
    """First usable model in menu order (else the first listed), None when nothing is installed."""
    listed = [model_id for _, task in task_choices(registry) for _, model_id in model_choices(registry, task)]
    usable = [m for m in listed if m in registry.available()]
    return (usable or listed or [None])[0]


def card_of(registry: ModelRegistry, model_id: str | None) -> dict[str, Any]:
    """The model's card, or an empty one for an unknown id (menus may hold stale ids)."""
    entry = registry.entries.get(model_id or "")
    return entry.card if entry else {}


def examples_of(registry: ModelRegistry, model_id: str | None) -> list[str]:
    """Example inputs from the model's card."""
    return [str(e) for e in card_of(registry, model_id).get("examples", [])]


def example_rows(registry: ModelRegistry, model_id: str | None) -> list[list[str]]:
    """[example, what it shows] rows: the card's ``examples`` beside its optional ``example_notes``."""
    notes = [str(n) for n in card_of(registry, model_id).get("example_notes", [])]
    return [[text, notes[i] if i < len(notes) else ""] for i, text in enumerate(examples_of(registry, model_id))]


def attributions(registry: ModelRegistry) -> list[str]:
    """The data attribution of every installed model, each once."""
    found = (str(e.card.get("data", {}).get("attribution", "")) for e in registry.entries.values())
    return list(dict.fromkeys(a for a in found if a))


def decode_defaults(registry: ModelRegistry, model_id: str | None) -> Settings:
    """The card's ``decode_defaults`` laid over the general defaults."""
    known = Settings.__dataclass_fields__
    overrides = {k: v for k, v in card_of(registry, model_id).get("decode_defaults", {}).items() if k in known}
    return Settings(**overrides)


def model_summary(registry: ModelRegistry, model_id: str | None) -> str:
    """Markdown card: what the model is, how well it scores, where its data comes from."""
    entry = registry.entries.get(model_id or "")
    if entry is None:
        return "No model found under `checkpoints/`."
    reason = registry.error(entry.id)
    if reason:
        return f"**{entry.id} is unavailable:** {reason}"
    card = entry.card
    metrics = read_metrics(entry.path)
    facts = [f"`{card.get('architecture', '?')}`"]
    attention = card.get("model", {}).get("attention")
    if attention:
        facts.append(f"{attention} attention")
    if metrics.get("parameters"):
        facts.append(f"{metrics['parameters'] / 1e6:.1f} M parameters")
    for split in ("test", "valid"):
        values = metrics.get(split, {})
        if values:
            facts.append(f"{headline(values)} ({values.get('split', split)}, {decoding_label(values)})")
            break
    data = card.get("data", {})
    lines = [f"**{card.get('display_name', entry.id)}**: {card.get('description', '')}", " · ".join(facts)]
    if data:
        lines.append(f"<small>Data: {data.get('name', '?')}. {data.get('licence', '')}</small>")
    return "\n\n".join(lines)


# ---- controls to a decoding request ----------------------------------------------------


def as_int(name: str, value: Any, default: int | None = None) -> int | None:
    """``value`` as an int (``default`` when blank); a fraction or text names ``name`` in the error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not number.is_integer():
        raise InputError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def as_float(name: str, value: Any, default: float) -> float:
    """``value`` as a finite float (``default`` when blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or math.isnan(number) or math.isinf(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def build_config(s: Settings) -> DecodeConfig:
    """Checked ``DecodeConfig``; ``max_len`` 0 or blank means automatic, a blank seed means random."""
    max_len = as_int("max_len", s.max_len, 0)
    cfg = DecodeConfig(
        strategy=str(s.strategy).strip().lower() if s.strategy is not None else "greedy",
        beam_size=as_int("beam_size", s.beam_size, 5),
        length_penalty=as_float("length_penalty", s.length_penalty, 1.0),
        n_best=as_int("n_best", s.n_best, None),
        temperature=as_float("temperature", s.temperature, 1.0),
        top_k=as_int("top_k", s.top_k, 0),
        top_p=as_float("top_p", s.top_p, 1.0),
        seed=as_int("seed", s.seed, None),
        num_samples=as_int("num_samples", s.num_samples, 1),
        max_len=max_len or None,
        no_repeat_ngram=as_int("no_repeat_ngram", s.no_repeat_ngram, 0),
        repetition_penalty=as_float("repetition_penalty", s.repetition_penalty, 1.0),
    )
    try:
        cfg.validate()
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return cfg


def prepare_request(registry: ModelRegistry, text: Any, model_id: Any, settings: Settings) -> tuple[Translator, DecodeConfig]:
    """Every check a request needs, without decoding; each user mistake raises ``InputError``."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError("no model chosen: pick one from the model menu")
    cfg = build_config(settings)
    translator = registry.get(model_id.strip())
    translator.source_ids(text)  # empty, too long, too many tokens
    return translator, cfg


def decode_request(registry: ModelRegistry, text: Any, model_id: Any, settings: Settings) -> DecodeResult:
    """Check, then decode ``text`` with the chosen model and settings."""
    translator, cfg = prepare_request(registry, text, model_id, settings)
    return translator.run(text, cfg)


# ---- result to tables, labels and figures ----------------------------------------------


def hypothesis_rows(result: DecodeResult) -> list[list[Any]]:
    """One table row per hypothesis: rank, text, log-prob score, normalised score, tokens."""
    return [
        [rank, h.text, round(h.score, 3), round(h.normalized_score, 3), len(h.pieces)]
        for rank, h in enumerate(result.hypotheses, start=1)
    ]


def hypothesis_choices(result: DecodeResult) -> list[tuple[str, int]]:
    """(label, index) pairs for the "show attention of" selector."""
    def short(text: str) -> str:
        return text if len(text) <= 60 else text[:57] + "…"

    return [(f"#{i + 1}: {short(h.text)}", i) for i, h in enumerate(result.hypotheses)]


def view_attention(result: DecodeResult, view: Any = CROSS,
                   index: int = 0) -> tuple[torch.Tensor, list[str], list[str]]:
    """Attention [rows, layers, heads, cols] of a view with its row and column pieces.

    The cross view is hypothesis ``index``'s [T, L, H, S]; the encoder view is the encoder
    self-attention [L, H, S, S] laid out the same way (queries as rows).
    """
    if view == ENCODER and result.encoder_attention is not None:
        return result.encoder_attention.permute(2, 0, 1, 3), result.source_pieces, result.source_pieces
    hyp = result.hypotheses[index if 0 <= index < len(result.hypotheses) else 0]
    return hyp.attention, hyp.pieces, result.source_pieces


def view_choices(result: DecodeResult, view: Any = CROSS) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Layer and head selector choices for a view's attention [rows, layers, heads, cols]."""
    _, layers, heads, _ = view_attention(result, view)[0].shape
    layer_choices = [(f"layer {i + 1}" + (" (last)" if i == layers - 1 else ""), i) for i in range(layers)]
    head_choices = [("average of heads", AVERAGE_HEADS), ("all heads (grid)", ALL_HEADS)]
    return layer_choices, head_choices + [(f"head {i + 1}", i) for i in range(heads)]


def attention_figure(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = AVERAGE_HEADS,
                     view: Any = CROSS) -> go.Figure:
    """Heatmap of one layer's head, head average or grid of every head, titled with what it shows.

    Out-of-range choices fall back to hypothesis 0, the last layer and the head average.
    """
    view = ENCODER if view == ENCODER and result.encoder_attention is not None else CROSS
    attention, row_pieces, col_pieces = view_attention(result, view, as_int("hypothesis", index, 0))
    _, layers, heads, _ = attention.shape
    chosen_layer = as_int("layer", layer, layers - 1)
    chosen_layer = chosen_layer if 0 <= chosen_layer < layers else layers - 1
    chosen_head = as_int("head", head, AVERAGE_HEADS)
    per_head = layer_heads(attention, chosen_layer)  # [H, rows, cols]
    kind = "Encoder self-attention" if view == ENCODER else "Cross-attention"
    names = ("query", "key") if view == ENCODER else ("output", "source")
    if chosen_head == ALL_HEADS and heads > 1:
        title = view_title(kind, chosen_layer, layers, None, heads, grid=True)
        return heads_grid(per_head, row_pieces, col_pieces, title, *names)
    chosen_head = chosen_head if 0 <= chosen_head < heads else None
    weights = per_head.mean(axis=0) if chosen_head is None else per_head[chosen_head]
    title = view_title(kind, chosen_layer, layers, chosen_head, heads)
    return weights_heatmap(weights, row_pieces, col_pieces, title, *names)


def summary(result: DecodeResult, compared: bool = False) -> str:
    """One line on what was run: strategy, token counts, time; for the Compare view, the model
    and the best output's scores instead of the hypothesis count."""
    best = result.best
    strategy = STRATEGY_LABELS[result.config.strategy]
    parts = [f"**{result.model_id}** · {strategy}" if compared else f"**{strategy}**"]
    if compared:
        parts.append(f"score {best.score:.2f} (normalised {best.normalized_score:.2f})")
    elif len(result.hypotheses) > 1:
        parts.append(f"{len(result.hypotheses)} {'samples' if result.config.strategy == 'sample' else 'hypotheses'}")
    parts += [f"{len(result.source_pieces)} source → {len(best.pieces)} output tokens", f"{result.elapsed_ms:.0f} ms"]
    if not best.finished:
        parts.append("cut at the length limit")
    return " · ".join(parts)


def figures(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = AVERAGE_HEADS,
            view: Any = CROSS) -> tuple[go.Figure, go.Figure]:
    """Attention figure (see ``attention_figure``) and confidence strip of hypothesis ``index``."""
    i = as_int("hypothesis", index, 0)
    hyp = result.hypotheses[i if 0 <= i < len(result.hypotheses) else 0]
    return attention_figure(result, i, layer, head, view), confidence_strip(hyp)


# ---- two runs side by side -------------------------------------------------------------


def compare_defaults(registry: ModelRegistry) -> tuple[str | None, str, str | None, str]:
    """(model A, strategy A, model B, strategy B) for the Compare view's first picture.

    Two models of the same source language when there are two (both greedy), else one model
    greedy against beam search. The second model is one of another architecture when there is
    one (an RNN beside a Transformer shows the most difference), else the first in menu order.
    """
    first = default_model(registry)
    if first not in registry.available():
        return first, "greedy", first, "beam"
    card = card_of(registry, first)
    others = [m for m in registry.available() if m != first and card_of(registry, m).get("source_lang") == card.get("source_lang")]
    others.sort(key=lambda m: card_of(registry, m).get("architecture") == card.get("architecture"))  # stable: menu order within
    return (first, "greedy", others[0], "greedy") if others else (first, "greedy", first, "beam")


def compare_model_choices(registry: ModelRegistry) -> list[tuple[str, str]]:
    """(label, id) of every usable model, grouped by task as in the main menu."""
    return [pair for _, task in task_choices(registry) for pair in model_choices(registry, task)
            if pair[1] in registry.available()]


def compare_settings(strategy: Any, beam_size: Any = 5, length_penalty: Any = 1.0, temperature: Any = 1.0,
                     top_p: Any = 1.0, seed: Any = 0) -> Settings:
    """One side's settings: its strategy with the knobs both sides share; sampling draws one sample."""
    return Settings(strategy=strategy, beam_size=beam_size, length_penalty=length_penalty, temperature=temperature,
                    top_p=top_p, seed=seed, num_samples=1)


def compare_request(registry: ModelRegistry, text: Any, model_a: Any, settings_a: Settings, model_b: Any,
                    settings_b: Settings) -> tuple[DecodeResult, DecodeResult]:
    """Decode ``text`` twice: model A with settings A, model B with settings B (same source language)."""
    translator_a, cfg_a = prepare_request(registry, text, model_a, settings_a)
    translator_b, cfg_b = prepare_request(registry, text, model_b, settings_b)
    language_a, language_b = translator_a.card.get("source_lang"), translator_b.card.get("source_lang")
    if language_a != language_b:
        raise InputError(f"the models read different languages: {translator_a.id} reads {language_a}, "
                         f"{translator_b.id} reads {language_b}; pick two with the same source language")
    return translator_a.run(text, cfg_a), translator_b.run(text, cfg_b)


# ---- pronunciation: IPA and speech for G2P models --------------------------------------


def speaks(registry: ModelRegistry, model_id: str | None) -> bool:
    """True for models whose output is a pronunciation (ARPAbet phones)."""
    return card_of(registry, model_id).get("task") == "g2p"


def pronunciation(result: DecodeResult, index: Any = 0) -> tuple[str, tuple[int, Any] | None]:
    """IPA of hypothesis ``index`` as Markdown and its audio (``(rate, samples)``), or None with
    the reason in the Markdown when it cannot be spoken (espeak-ng missing, empty output)."""
    i = as_int("hypothesis", index, 0)
    hyp = result.hypotheses[i if 0 <= i < len(result.hypotheses) else 0]
    phones = hyp.text.split()
    if not phones:
        return "The model predicted no phones for this input.", None
    text = f"**IPA:** /{ipa_string(phones)}/ · **ARPAbet:** {' '.join(phones)}"
    try:
        return text, speech.speak(phones)
    except speech.SpeechError as exc:
        return f"{text}\n\n<small>{exc}</small>", None


def api_json(registry: ModelRegistry, result: DecodeResult) -> dict[str, Any]:
    """What ``/generate`` returns: ``result.to_json()``, plus each hypothesis's IPA for G2P models."""
    out = result.to_json()
    if speaks(registry, result.model_id):
        for hyp in out["hypotheses"]:
            hyp["ipa"] = ipa_string(hyp["text"].split())
    return out
