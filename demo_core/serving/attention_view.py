"""What the page's attention viewer draws, as one JSON document, and the viewer's colour scales.

The viewer (``web/attention_view.js``) is client-side code: it lays the heatmap out for the
width it has, links the heatmap to the token-lines view on hover and tap, and exports CSV,
JSON, SVG and PNG, all without asking the server. The server sends only what one view needs
(one layer's head, head average or grid of heads of one hypothesis), so a reply stays small
and a redraw is one short message.

Colours: weight 0 is drawn near the theme's background and weight 1 with the strongest
contrast against it, on a viridis ramp (colour-blind safe, luminance monotonic): in the light
theme the ramp runs from near-white through yellow-green to deep purple, in the dark theme
from near-black through purple to yellow. ``contrast`` (WCAG) lets the tests check both.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from demo_core.pipeline import DecodeResult
from demo_core.serving.views import ALL_HEADS, AVERAGE_HEADS, CROSS, ENCODER, choose, pieces_note, selected, view_attention
from demo_core.text.labels import piece_label, piece_labels

WEB = Path(__file__).resolve().parent / "web"
DIGITS = 3  # weights are shown with at most 3 decimals; more would only grow the message

VIRIDIS = ["#fde725", "#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989", "#482878", "#440154"]
LIGHT_BACKGROUND, DARK_BACKGROUND = "#ffffff", "#0b0f19"  # Gradio's Soft theme: body background in each mode
SCALES = {  # (weight, colour) stops; 0 recedes into the background, 1 stands out
    "light": [(0.0, "#f7f8fa")] + [(0.06 + 0.94 * i / (len(VIRIDIS) - 1), c) for i, c in enumerate(VIRIDIS)],
    "dark": [(0.0, "#161a26")] + [(0.06 + 0.94 * i / (len(VIRIDIS) - 1), c) for i, c in enumerate(reversed(VIRIDIS))],
}


def _rgb(colour: str) -> tuple[float, float, float]:
    return tuple(int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def colour_at(scale: str, weight: float) -> str:
    """The colour of ``weight`` (0..1) on ``SCALES[scale]``, linearly between stops (as the viewer does)."""
    stops = SCALES[scale]
    weight = min(max(weight, 0.0), 1.0)
    for (w0, c0), (w1, c1) in zip(stops, stops[1:]):
        if weight <= w1:
            f = 0.0 if w1 == w0 else (weight - w0) / (w1 - w0)
            mixed = [a + (b - a) * f for a, b in zip(_rgb(c0), _rgb(c1))]
            return "#" + "".join(f"{round(v * 255):02x}" for v in mixed)
    return stops[-1][1]


def luminance(colour: str) -> float:
    """WCAG relative luminance of a ``#rrggbb`` colour."""
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 = none, 21 = black on white)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _rounded(matrix: np.ndarray) -> list[list[float]]:
    return np.round(matrix.astype(float), DIGITS).tolist()


def payload(result: DecodeResult, index: Any = 0, layer: Any = None, head: Any = AVERAGE_HEADS,
            view: Any = CROSS) -> dict[str, Any]:
    """What the viewer draws for one hypothesis, view, layer and head (out-of-range choices fall
    back to hypothesis 0, the last layer and the head average, as the figures do).

    ``panels`` holds one [rows, cols] matrix, or one per head for the grid; ``probs`` and
    ``alternatives`` (cross-attention only) are each output token's probability and the top
    candidates at its step; ``meta`` says what was run, for the exported files.
    """
    view = ENCODER if view == ENCODER and result.encoder_attention is not None else CROSS
    i = selected(index, 0)
    i = i if 0 <= i < len(result.hypotheses) else 0
    attention, row_pieces, col_pieces = view_attention(result, view, i)  # [rows, L, H, cols]
    hyp = result.hypotheses[i]
    cross = view == CROSS
    probs = [float(np.exp(lp)) for lp in hyp.token_logprobs] if cross else None
    return document(result, attention, row_pieces, col_pieces, layer, head, view, probs,
                    hyp.alternatives if cross else None, {"hypothesis": i + 1, "output": hyp.text})


def path_payload(result: DecodeResult, node: int, pieces: list[str], attention: Any, layer: Any = None,
                 head: Any = AVERAGE_HEADS) -> dict[str, Any]:
    """The viewer's document for the path from the beam tree's root to ``node``: its pieces as rows and the
    cross-attention of each of its steps, attention [s, L, H, S]."""
    return document(result, attention, pieces, result.source_pieces, layer, head, CROSS, None, None,
                    {"hypothesis": None, "node": node, "output": " ".join(pieces)})


def document(result: DecodeResult, attention: Any, row_pieces: list[str], col_pieces: list[str], layer: Any, head: Any,
             view: str, probs: list[float] | None, alternatives: list | None, about: dict[str, Any]) -> dict[str, Any]:
    """The viewer's document for attention [rows, L, H, cols] with its labels (see ``payload``)."""
    _, layers, heads, _ = attention.shape
    chosen_layer, head_value, per_head, title = choose(attention, view, layer, head)  # per_head [H, rows, cols]
    if head_value == ALL_HEADS:
        panels = [{"label": f"head {h + 1}", "weights": _rounded(per_head[h])} for h in range(heads)]
    else:
        weights = per_head.mean(axis=0) if head_value == AVERAGE_HEADS else per_head[head_value]
        panels = [{"label": "", "weights": _rounded(weights)}]
    cross = view == CROSS
    return {
        "view": view,
        "title": title,
        "rows": piece_labels(list(row_pieces)),  # a lone ▁ as ␣, byte pieces as "byte F0"
        "cols": piece_labels(list(col_pieces)),
        "note": pieces_note(result),
        "rowName": "output" if cross else "query",
        "colName": "source" if cross else "key",
        "panels": panels,
        "probs": None if probs is None else [round(p, DIGITS) for p in probs],
        "alternatives": None if alternatives is None else [[[piece_label(p), round(float(q), DIGITS)] for p, q in alts]
                                                          for alts in alternatives],
        "forced": len(result.prefix_ids) if cross else 0,
        "meta": {
            "model": result.model_id,
            "source": result.source_text,
            **about,
            "layer": chosen_layer + 1,
            "layers": layers,
            "head": "average" if head_value == AVERAGE_HEADS else "all" if head_value == ALL_HEADS else head_value + 1,
            "heads": heads,
            "strategy": result.config.strategy,
            "settings": asdict(result.config),
        },
    }


CUBE_LIMIT = 60_000  # weights at most in ``cubes``: beyond it, another layer, head or hypothesis asks the server


def cubes(result: DecodeResult) -> list[dict[str, Any]] | None:
    """Every hypothesis's cross-attention, all layers and heads ([layers][heads][T][S]) with its labels, so the
    viewer can switch hypothesis, layer and head in the browser; None when it would be larger than ``CUBE_LIMIT``."""
    if sum(h.attention.numel() for h in result.hypotheses) > CUBE_LIMIT:
        return None
    return [{"rows": piece_labels(list(h.pieces)),
             "probs": [round(float(np.exp(lp)), DIGITS) for lp in h.token_logprobs],
             "alternatives": [[[piece_label(p), round(float(q), DIGITS)] for p, q in alts] for alts in h.alternatives],
             "output": h.text,
             "w": np.round(h.attention.float().permute(1, 2, 0, 3).numpy().astype(float), DIGITS).tolist()}  # [L, H, T, S]
            for h in result.hypotheses]


def to_json(document: dict[str, Any] | None) -> str:
    """The viewer's value: compact JSON ("" for nothing to draw)."""
    return "" if document is None else json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@cache
def script() -> str:
    """The viewer's JavaScript, with the colour scales filled in (``js_on_load`` of a ``gr.HTML``)."""
    code = (WEB / "attention_view.js").read_text(encoding="utf-8")
    return code.replace("__SCALES__", json.dumps(SCALES))


@cache
def stylesheet() -> str:
    """The viewer's CSS (added to the page's CSS)."""
    return (WEB / "attention_view.css").read_text(encoding="utf-8")
