"""Plotly figures of one decoding result: the attention heatmap and the confidence strip.

Figures take display pieces and a ``Hypothesis`` (never a model), so every architecture is
drawn the same way. Two details keep the pictures honest:

* axes are integer positions labelled with ``tickvals``/``ticktext``, because Plotly merges
  equal category labels and sentences repeat tokens ("▁the", "</s>");
* every label is HTML-escaped, because Plotly renders a subset of HTML in ticks and hovers
  and a token such as ``</s>`` or ``<b>`` must show as typed.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import torch

from demo_core.decoding import Hypothesis

ATTENTION_COLORS = "Blues"
CONFIDENCE_COLORS = [[0.0, "#dc2626"], [0.5, "#f59e0b"], [1.0, "#16a34a"]]  # low red, high green
FONT = dict(family="Inter, system-ui, sans-serif", size=12, color="#1f2937")
HOVER = dict(bgcolor="#1f2937", bordercolor="#1f2937", font=dict(color="white", size=12))
CHAR_PX = 7.5  # rough width of one label character at FONT size
MIN_PLOT_PX = 100  # a one-token output still gets a readable colour bar
TOP_PAD = 40  # free band above the plot: a host's label badge (Gradio puts one there) covers no data


def escape(label: str) -> str:
    """``label`` as literal text for Plotly's pseudo-HTML (ticks, hovers)."""
    return html.escape(label, quote=False)


def cell_px(tokens: int) -> int:
    """Pixels per token along one axis: roomy for short sentences, 14 px at worst so 100 tokens stay legible."""
    return max(14, min(40, 640 // max(tokens, 1)))


def font_px(cell: int) -> int:
    """Tick label size that fits a cell of ``cell`` pixels."""
    return 12 if cell >= 20 else 10


def label_px(labels: list[str], font_size: int) -> int:
    """Room for the longest label, in pixels."""
    longest = max((len(s) for s in labels), default=1)
    return int(longest * CHAR_PX * font_size / FONT["size"]) + 12


def token_axis(pieces: list[str], cell: int) -> dict:
    """An axis with one tick per token at integer positions, labelled with the escaped pieces.

    Labels turn vertical when they would not fit side by side (callers of a y axis keep them flat).
    """
    upright = cell >= 28 and max(map(len, pieces), default=0) <= 4
    return dict(
        tickmode="array",
        tickvals=list(range(len(pieces))),
        ticktext=[escape(p) for p in pieces],
        tickfont=dict(size=font_px(cell)),
        tickangle=0 if upright else -90,
        showgrid=False,
        zeroline=False,
        fixedrange=True,
    )


def attention_matrix(attention: torch.Tensor, layer: int = -1, head: int | None = None) -> np.ndarray:
    """[T, S] weights of one layer from attention [T, layers, heads, S]; ``head=None`` averages heads."""
    if attention.dim() != 4:
        raise ValueError(f"attention must be [T, layers, heads, S], got shape {tuple(attention.shape)}")
    layers, heads = attention.shape[1], attention.shape[2]
    if not -layers <= layer < layers:
        raise ValueError(f"layer {layer} out of range for {layers} layer(s)")
    per_head = attention[:, layer].float()  # [T, H, S]
    if head is None:
        return per_head.mean(dim=1).numpy()
    if not 0 <= head < heads:
        raise ValueError(f"head {head} out of range for {heads} head(s)")
    return per_head[:, head].numpy()


def attention_heatmap(source_pieces: list[str], hyp: Hypothesis, layer: int = -1, head: int | None = None) -> go.Figure:
    """Heatmap of ``hyp``'s attention: source pieces across the top, output pieces down the side.

    Colours use a fixed 0-1 scale so pictures of different sentences compare; the figure is
    sized to the sentence and a hover names both tokens and the weight.
    """
    weights = attention_matrix(hyp.attention, layer, head)  # [T, S]
    rows, cols = weights.shape
    if (rows, cols) != (len(hyp.pieces), len(source_pieces)):
        raise ValueError(f"attention is {rows}x{cols} but there are {len(hyp.pieces)}x{len(source_pieces)} labels")
    cell_x, cell_y = cell_px(cols), max(cell_px(rows), -(-MIN_PLOT_PX // rows))  # room for the colour bar
    out_labels = [escape(p) for p in hyp.pieces]
    src_labels = [escape(p) for p in source_pieces]
    hover = [
        [f"output {t}: <b>{out}</b><br>source {i}: <b>{src}</b>" for i, src in enumerate(src_labels)]
        for t, out in enumerate(out_labels)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=weights,
            x=list(range(cols)),
            y=list(range(rows)),
            zmin=0.0,
            zmax=1.0,
            colorscale=ATTENTION_COLORS,
            text=hover,
            hovertemplate="%{text}<br>weight %{z:.3f}<extra></extra>",
            hoverlabel=HOVER,
            xgap=1,
            ygap=1,
            colorbar=dict(title=dict(text="weight", side="right"), thickness=12, tickvals=[0, 0.25, 0.5, 0.75, 1],
                          len=min(1.0, 240 / (rows * cell_y)), y=1, yanchor="top"),
        )
    )
    top = label_px(source_pieces, font_px(cell_x)) + TOP_PAD
    left = label_px(hyp.pieces, font_px(cell_y))
    fig.update_layout(
        width=left + cols * cell_x + 110,
        height=top + rows * cell_y + 16,
        margin=dict(l=left, r=10, t=top, b=16, autoexpand=False),
        font=FONT,
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
        xaxis=dict(token_axis(source_pieces, cell_x), side="top"),
        yaxis=dict(token_axis(hyp.pieces, cell_y), tickangle=0, autorange="reversed"),
    )
    return fig


def confidence_strip(hyp: Hypothesis) -> go.Figure:
    """Bar per output token with its probability; the hover lists the top alternatives at that step."""
    probs = [float(np.exp(lp)) for lp in hyp.token_logprobs]
    labels = [escape(p) for p in hyp.pieces]
    steps = len(labels)
    hover = []
    for t, (label, p) in enumerate(zip(labels, probs)):
        alternatives = hyp.alternatives[t] if t < len(hyp.alternatives) else []
        lines = [f"{escape(piece)}  {prob:.3f}" for piece, prob in alternatives]
        listing = "<br>".join(lines) if lines else "(none recorded)"
        hover.append(f"output {t}: <b>{label}</b>  p = {p:.3f}<br><i>top candidates</i><br>{listing}")
    cell = max(cell_px(steps), 18)
    bottom = label_px(hyp.pieces, font_px(cell))
    fig = go.Figure(
        go.Bar(
            x=list(range(steps)),
            y=probs,
            marker=dict(color=probs, colorscale=CONFIDENCE_COLORS, cmin=0.0, cmax=1.0, line=dict(width=0)),
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            hoverlabel=HOVER,
        )
    )
    fig.update_layout(
        width=70 + steps * cell + 20,
        height=TOP_PAD + 160 + bottom,
        margin=dict(l=70, r=20, t=TOP_PAD, b=bottom, autoexpand=False),
        font=FONT,
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
        bargap=0.15,
        xaxis=dict(token_axis(hyp.pieces, cell), range=[-0.5, steps - 0.5]),
        yaxis=dict(title=dict(text="p(token)"), range=[0, 1], tickvals=[0, 0.5, 1], gridcolor="#e5e7eb", fixedrange=True),
    )
    return fig
