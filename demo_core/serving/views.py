"""A decoding result as the page shows it: n-best table, selectors, heatmaps, summary line.

Selector values come from the page (an index, a layer, a head); out-of-range or unreadable
ones fall back to the first hypothesis, the last layer and the head average, so a stale
selector never breaks a redraw.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import torch

from demo_core.decoding.config import STRATEGY_LABELS
from demo_core.figures import confidence_strip, heads_grid, layer_heads, view_title, weights_heatmap
from demo_core.pipeline import DecodeResult

AVERAGE_HEADS = -1  # head selector value meaning "average of heads"
ALL_HEADS = -2  # head selector value meaning "every head of the layer, as a grid"
CROSS, ENCODER = "cross", "encoder"  # the two attention views
VIEW_LABELS = {CROSS: "Cross-attention (output × source)", ENCODER: "Encoder self-attention (source × source)"}
NO_ENCODER_ATTENTION = ("<small>Encoder self-attention: none for this model. A recurrent encoder reads the "
                        "source token by token; it has no attention between source tokens.</small>")


def selected(value: Any, default: int) -> int:
    """A selector's value as an index; ``default`` when it is blank or not a whole number."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return int(number) if number.is_integer() else default


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
    attention, row_pieces, col_pieces = view_attention(result, view, selected(index, 0))
    _, layers, heads, _ = attention.shape
    chosen_layer = selected(layer, layers - 1)
    chosen_layer = chosen_layer if 0 <= chosen_layer < layers else layers - 1
    chosen_head = selected(head, AVERAGE_HEADS)
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
    parts += [f"⚠ {w}" for w in result.warnings]
    return " · ".join(parts)


def figures(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = AVERAGE_HEADS,
            view: Any = CROSS) -> tuple[go.Figure, go.Figure]:
    """Attention figure (see ``attention_figure``) and confidence strip of hypothesis ``index``."""
    i = selected(index, 0)
    hyp = result.hypotheses[i if 0 <= i < len(result.hypotheses) else 0]
    return attention_figure(result, i, layer, head, view), confidence_strip(hyp)
