"""A decoding result as the page shows it: n-best table, selectors, heatmaps, summary line.

Selector values come from the page (an index, a layer, a head); out-of-range or unreadable
ones fall back to the first hypothesis, the last layer and the head average, so a stale
selector never breaks a redraw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from demo_core.decoding import Hypothesis
from demo_core.decoding.config import STRATEGY_LABELS
from demo_core.figures import confidence_strip, heads_grid, layer_heads, view_title, weights_heatmap
from demo_core.pipeline import DecodeResult
from demo_core.text.labels import piece_note

AVERAGE_HEADS = -1  # head selector value meaning "average of heads"
ALL_HEADS = -2  # head selector value meaning "every head of the layer, as a grid"
CROSS, ENCODER = "cross", "encoder"  # the two attention views
VIEW_LABELS = {CROSS: "Cross-attention (output × source)", ENCODER: "Encoder self-attention (source × source)"}
COMPARE_SCORES = ("The score is the sum of the output tokens' log-probabilities (closer to 0 is more likely). "
                  "*Per token* divides it by the number of output tokens, the same way for every strategy, so the "
                  "two sides compare; beam search ranks its hypotheses by a *length-penalised* score, shown beside it.")


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


@dataclass(frozen=True)
class Menus:
    """The attention selectors of a result: each menu's choices, or None when there is nothing to
    choose (an RNN has one view, one layer and one head), with the values a first picture uses."""

    views: list[tuple[str, str]] | None
    layers: list[tuple[str, int]] | None
    heads: list[tuple[str, int]] | None
    layer: int  # the last layer
    head: int = AVERAGE_HEADS


def menus(result: DecodeResult, view: Any = CROSS) -> Menus:
    """Which selectors the page shows for ``view`` of ``result``: only those with more than one choice."""
    view = ENCODER if view == ENCODER and result.encoder_attention is not None else CROSS
    layer_choices, head_choices = view_choices(result, view)
    return Menus(
        views=[(label, key) for key, label in VIEW_LABELS.items()] if result.encoder_attention is not None else None,
        layers=layer_choices if len(layer_choices) > 1 else None,
        heads=head_choices if len(head_choices) > 3 else None,  # beyond average and grid: two heads or more
        layer=layer_choices[-1][1],
    )


def pieces_note(result: DecodeResult) -> str | None:
    """What the tokenizer artefacts in ``result``'s pieces mean (a lone ▁ shown as ␣, byte pieces), or None."""
    return piece_note(result.source_pieces, *(h.pieces for h in result.hypotheses))


def per_token(hyp: Hypothesis) -> float:
    """The mean log-probability of ``hyp``'s tokens: one scale for every strategy (beam's normalised score is not)."""
    return hyp.score / max(len(hyp.token_logprobs), 1)


def choose(attention: torch.Tensor, view: str, layer: Any, head: Any) -> tuple[int, int, np.ndarray, str]:
    """What a layer and head selector ask of attention [rows, L, H, cols]: the layer, the head (a head,
    ``AVERAGE_HEADS`` or ``ALL_HEADS``; out of range: the average), that layer's heads [H, rows, cols] and the title."""
    _, layers, heads, _ = attention.shape
    chosen_layer = selected(layer, layers - 1)
    chosen_layer = chosen_layer if 0 <= chosen_layer < layers else layers - 1
    chosen_head = selected(head, AVERAGE_HEADS)
    if not (chosen_head == ALL_HEADS and heads > 1) and not 0 <= chosen_head < heads:
        chosen_head = AVERAGE_HEADS
    kind = "Encoder self-attention" if view == ENCODER else "Cross-attention"
    if chosen_head == ALL_HEADS:
        title = view_title(kind, chosen_layer, layers, None, heads, grid=True)
    else:
        title = view_title(kind, chosen_layer, layers, None if chosen_head == AVERAGE_HEADS else chosen_head, heads)
    return chosen_layer, chosen_head, layer_heads(attention, chosen_layer), title


def attention_figure(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = AVERAGE_HEADS,
                     view: Any = CROSS) -> go.Figure:
    """Heatmap of one layer's head, head average or grid of every head, titled with what it shows.

    Out-of-range choices fall back to hypothesis 0, the last layer and the head average.
    """
    view = ENCODER if view == ENCODER and result.encoder_attention is not None else CROSS
    attention, row_pieces, col_pieces = view_attention(result, view, selected(index, 0))
    _, chosen_head, per_head, title = choose(attention, view, layer, head)  # per_head [H, rows, cols]
    names = ("query", "key") if view == ENCODER else ("output", "source")
    if chosen_head == ALL_HEADS:
        return heads_grid(per_head, row_pieces, col_pieces, title, *names)
    weights = per_head.mean(axis=0) if chosen_head == AVERAGE_HEADS else per_head[chosen_head]
    return weights_heatmap(weights, row_pieces, col_pieces, title, *names)


def scores(result: DecodeResult) -> str:
    """The best output's scores for Compare: log-prob and per-token mean for every strategy, and
    the length-penalised score beam search ranks by, named as such."""
    best = result.best
    text = f"score {best.score:.2f} ({per_token(best):.2f} per token"
    if result.config.strategy == "beam":
        text += f"; length-penalised {best.normalized_score:.2f}, what beam search ranks by"
    return text + ")"


def summary(result: DecodeResult, compared: bool = False) -> str:
    """One line on what was run: strategy (and a sampling run's seed), token counts, time; for the
    Compare view, the model and the best output's scores instead of the hypothesis count."""
    best = result.best
    cfg = result.config
    strategy = STRATEGY_LABELS[cfg.strategy]
    parts = [f"**{result.model_id}** · {strategy}" if compared else f"**{strategy}**"]
    if cfg.strategy == "sample" and cfg.seed is not None:
        parts.append(f"seed {cfg.seed}")
    if compared:
        parts.append(scores(result))
    elif len(result.hypotheses) > 1:
        sampled = cfg.strategy == "sample"
        parts.append(f"{len(result.hypotheses)} samples, the most likely shown" if sampled else
                     f"{len(result.hypotheses)} hypotheses")
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
