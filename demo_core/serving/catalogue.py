"""The model catalogue as the page shows it: task and model menus, summaries, credits.

Everything here reads ``ModelCard`` fields of the registry's entries; nothing imports gradio,
so the page's menus can be tested without a server.
"""

from __future__ import annotations

import re

from demo_core.card import DataCredit, ModelCard
from demo_core.checkpoint import ModelEntry, read_metrics
from demo_core.pipeline import ModelRegistry
from demo_core.report import decoding_label, headline
from demo_core.serving.explanations import task_notice

GROUPS = ("Translation", "Speech", "Summarisation", "Dates")  # the task menu's order
UNAVAILABLE_TASK = "Unavailable models"


def task_of(entry: ModelEntry) -> str:
    """The task a model is listed under; models whose card cannot be read get their own."""
    return (entry.card.task_label if entry.card else "") or UNAVAILABLE_TASK


def task_choices(registry: ModelRegistry) -> list[tuple[str, str]]:
    """(label, task) pairs in ``GROUPS`` order, then by the cards' ``menu_order`` (German → English
    first: the first task is the page's default); the label carries the group because dropdowns
    have no option groups."""
    groups: dict[str, str] = {}
    rank: dict[str, int] = {}
    for entry in registry.entries.values():
        task = task_of(entry)
        groups.setdefault(task, entry.card.group if entry.card else "Other")
        rank[task] = min(rank.get(task, 100), entry.card.menu_order if entry.card else 100)

    def key(task: str) -> tuple:
        group = groups[task]
        return (task == UNAVAILABLE_TASK, GROUPS.index(group) if group in GROUPS else len(GROUPS), group, rank[task], task)

    order = sorted(groups, key=key)
    return [(f"{groups[task]} › {task}" if task != UNAVAILABLE_TASK else task, task) for task in order]


ATTENTION_NAMES = {"additive": "Bahdanau (additive)", "general": "Luong (general)", "dot": "Luong (dot)",
                   "location-sensitive": "location-sensitive"}


def short_name(card: ModelCard) -> str:
    """A menu label short enough to read whole, from the model's config, e.g. "Transformer · 6+2 layers ·
    4 heads" or "RNN · Bahdanau (additive) attention"; other architectures keep their display name."""
    config = card.model
    if card.architecture == "transformer" and {"enc_layers", "dec_layers", "n_heads"} <= set(config):
        return f"Transformer · {config['enc_layers']}+{config['dec_layers']} layers · {config['n_heads']} heads"
    attention = ATTENTION_NAMES.get(card.attention or "")
    if card.architecture == "rnn" and attention:
        return f"RNN · {attention} attention"
    if card.architecture == "tacotron2-lsa":
        return "Tacotron 2 · location-sensitive attention"
    return card.name


def model_label(entry: ModelEntry) -> str:
    """The model's short name (``short_name``), or why the model cannot be used."""
    if not entry.available or entry.card is None:
        return f"⚠ {entry.id} (unavailable)"
    return short_name(entry.card)


def model_choices(registry: ModelRegistry, task: str | None) -> list[tuple[str, str]]:
    """(label, model id) pairs of the models for ``task``, usable ones first."""
    entries = [e for e in registry.entries.values() if task_of(e) == task]
    entries.sort(key=lambda e: (not e.available, e.id))
    return [(model_label(e), e.id) for e in entries]


def default_model(registry: ModelRegistry) -> str | None:
    """First usable model in menu order; None when none is usable (a damaged model is never the default)."""
    listed = [model_id for _, task in task_choices(registry) for _, model_id in model_choices(registry, task)]
    usable = [m for m in listed if m in registry.available()]
    return usable[0] if usable else None


def card_of(registry: ModelRegistry, model_id: str | None) -> ModelCard | None:
    """The model's card, or None for an unknown id or an unreadable card (menus may hold stale ids)."""
    entry = registry.entries.get(model_id or "")
    return entry.card if entry else None


def examples_of(registry: ModelRegistry, model_id: str | None) -> list[str]:
    """Example inputs from the model's card."""
    card = card_of(registry, model_id)
    return list(card.examples) if card else []


def example_rows(registry: ModelRegistry, model_id: str | None) -> list[list[str]]:
    """[example, what it shows] rows: the card's ``examples`` beside its ``example_notes``."""
    card = card_of(registry, model_id)
    if card is None:
        return []
    notes = card.example_notes
    return [[text, notes[i] if i < len(notes) else ""] for i, text in enumerate(card.examples)]


# A local file path: "./", "../" or "/" or a folder name first, folders without dots (so no web
# address or fraction matches), a file name with an extension last; group 1 is the file name.
_PATH = re.compile(r"(?<![\w./:])(?:\.{1,2}/|/)?(?:(?:\.\.|[\w-]+)/)+([\w-]+(?:\.\w+)+)")


def without_paths(text: str) -> str:
    """``text`` with every file path cut to its file name ("../shared/data/x/cmn.txt.gz" → "cmn.txt.gz")."""
    return _PATH.sub(lambda m: m[1], text)


def credit_line(data: DataCredit) -> str:
    """One data set's credit as its SOURCE.md asks: name, licence, attribution; never a local path."""
    parts = [without_paths(part).strip().rstrip(".") for part in (data.name, data.licence, data.attribution)]
    return ". ".join(p for p in parts if p) + "."


def attributions(registry: ModelRegistry) -> list[str]:
    """The credit line (``credit_line``) of every installed model's training data, each once."""
    found = (credit_line(e.card.data) for e in registry.entries.values() if e.card and e.card.data)
    return list(dict.fromkeys(found))


def model_summary(registry: ModelRegistry, model_id: str | None) -> str:
    """Markdown card: what the model is, how well it scores, what text it knows (``task_notice``),
    where its data comes from."""
    entry = registry.entries.get(model_id or "")
    if entry is None:
        return "No model found under `checkpoints/`."
    reason = registry.error(entry.id)
    if reason or entry.card is None:
        return f"**{entry.id} is unavailable:** {reason}"
    card = entry.card
    metrics = read_metrics(entry.path)
    facts = [f"`{card.architecture}`"]
    if card.model.get("attention"):
        facts.append(f"{card.model['attention']} attention")
    if metrics.get("parameters"):
        facts.append(f"{metrics['parameters'] / 1e6:.1f} M parameters")
    for split in ("test", "valid"):
        values = metrics.get(split, {})
        if values:
            facts.append(f"{headline(values)} ({values.get('split', split)}, {decoding_label(values)})")
            break
    lines = [f"**{card.name}**: {card.description}", " · ".join(facts)]
    notice = task_notice(card)  # summarisation: image captions only
    if notice:
        lines.append(notice)
    if card.data:
        lines.append(f"<small>Data: {without_paths(card.data.name)}. {card.data.licence}</small>")
    return "\n\n".join(lines)


def compare_defaults(registry: ModelRegistry) -> tuple[str | None, str, str | None, str]:
    """(model A, strategy A, model B, strategy B) for the Compare view's first picture.

    Two models of the same source language when there are two (both greedy), else one model
    greedy against beam search. The second model is one of another architecture when there is
    one (an RNN beside a Transformer shows the most difference), else the first in menu order.
    """
    first = default_model(registry)
    card = card_of(registry, first)
    if first not in registry.available() or card is None:
        return first, "greedy", first, "beam"
    others = [m for m in registry.available() if m != first and not registry.is_speech(m)
              and (c := card_of(registry, m)) and c.source_lang == card.source_lang]
    others.sort(key=lambda m: card_of(registry, m).architecture == card.architecture)  # stable: menu order within
    return (first, "greedy", others[0], "greedy") if others else (first, "greedy", first, "beam")


def compare_model_choices(registry: ModelRegistry) -> list[tuple[str, str]]:
    """(label, id) of every usable text model, grouped by task as in the main menu; the label leads
    with the task, since one menu holds every task and many models share a display name."""
    return [(f"{task} · {label}", model_id) for _, task in task_choices(registry)
            for label, model_id in model_choices(registry, task)
            if model_id in registry.available() and not registry.is_speech(model_id)]
