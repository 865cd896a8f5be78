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

from demo_core.checkpoint import ModelEntry, read_metrics
from demo_core.decoding import DecodeConfig
from demo_core.figures import attention_heatmap, confidence_strip
from demo_core.inference import DecodeResult, InputError, ModelRegistry, Translator

STRATEGY_LABELS = {"greedy": "Greedy", "beam": "Beam search", "sample": "Sampling"}
UNAVAILABLE_TASK = "Unavailable models"
AVERAGE_HEADS = -1  # head selector value meaning "average of heads"


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
    """(label, task) pairs sorted by card ``group``; the label carries the group because
    dropdowns have no option groups."""
    groups: dict[str, str] = {}
    for entry in registry.entries.values():
        groups.setdefault(task_of(entry), str(entry.card.get("group") or "Other"))
    order = sorted(groups, key=lambda task: (task == UNAVAILABLE_TASK, groups[task], task))
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
        if "bleu" in values:
            facts.append(f"BLEU {values['bleu']:.1f} ({values.get('split', split)}, {values.get('decoding', 'greedy')})")
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


def view_choices(result: DecodeResult) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Layer and head selector choices for the result's attention [T, layers, heads, S]."""
    _, layers, heads, _ = result.best.attention.shape
    layer_choices = [(f"layer {i + 1}" + (" (last)" if i == layers - 1 else ""), i) for i in range(layers)]
    head_choices = [("average of heads", AVERAGE_HEADS)] + [(f"head {i + 1}", i) for i in range(heads)]
    return layer_choices, head_choices


def summary(result: DecodeResult) -> str:
    """One line on what was run: strategy, token counts, time."""
    best = result.best
    parts = [
        f"**{STRATEGY_LABELS[result.config.strategy]}**",
        f"{len(result.source_pieces)} source → {len(best.pieces)} output tokens",
        f"{result.elapsed_ms:.0f} ms",
    ]
    if len(result.hypotheses) > 1:
        parts.insert(1, f"{len(result.hypotheses)} {'samples' if result.config.strategy == 'sample' else 'hypotheses'}")
    if not best.finished:
        parts.append("cut at the length limit")
    return " · ".join(parts)


def figures(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = AVERAGE_HEADS) -> tuple[go.Figure, go.Figure]:
    """Attention heatmap and confidence strip of hypothesis ``index`` (out-of-range choices fall back)."""
    i = as_int("hypothesis", index, 0)
    hyp = result.hypotheses[i if 0 <= i < len(result.hypotheses) else 0]
    _, layers, heads, _ = hyp.attention.shape
    chosen_layer = as_int("layer", layer, layers - 1)
    chosen_layer = chosen_layer if 0 <= chosen_layer < layers else layers - 1
    chosen_head = as_int("head", head, AVERAGE_HEADS)
    chosen_head = chosen_head if 0 <= chosen_head < heads else None
    heatmap = attention_heatmap(result.source_pieces, hyp, chosen_layer, chosen_head)
    return heatmap, confidence_strip(hyp)
