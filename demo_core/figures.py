"""Plotly figures of one decoding result: attention heatmaps (one head, an average, or a grid of
every head of a layer) and the confidence strip.

Figures take display pieces and a ``Hypothesis`` (never a model), so every architecture is
drawn the same way. Two details keep the pictures honest:

* axes are integer positions labelled with ``tickvals``/``ticktext``, because Plotly merges
  equal category labels and sentences repeat tokens ("▁the", "</s>");
* every label is HTML-escaped, because Plotly renders a subset of HTML in ticks and hovers
  and a token such as ``</s>`` or ``<b>`` must show as typed.

Tokenizer artefacts get readable labels (``demo_core.text.labels``): a lone ``▁`` shows as ``␣``
and byte-fallback pieces as "byte F0".
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from demo_core.decoding import Hypothesis
from demo_core.text.labels import piece_label, piece_labels

ATTENTION_COLORS = "Blues"
CONFIDENCE_COLORS = [[0.0, "#dc2626"], [0.5, "#f59e0b"], [1.0, "#16a34a"]]  # low red, high green
FONT = dict(family="Inter, 'Explorer CJK', system-ui, sans-serif", size=12, color="#1f2937")  # CJK: served by the app
HOVER = dict(bgcolor="#1f2937", bordercolor="#1f2937", font=dict(color="white", size=12))
CHAR_PX = 7.5  # rough width of one label character at FONT size
MIN_PLOT_PX = 100  # a one-token output still gets a readable colour bar
TOP_PAD = 40  # free band above the plot: a host's label badge (Gradio puts one there) covers no data
TITLE_PX = 26  # band for a figure title under TOP_PAD
GRID_PX = 560  # width the panels of a head grid aim to fit (the page's figure column is ~700 px at 1400 px)


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
    per_head = layer_heads(attention, layer)  # [H, T, S]
    return per_head.mean(axis=0) if head is None else pick_head(per_head, head)


def layer_heads(attention: torch.Tensor, layer: int = -1) -> np.ndarray:
    """[heads, T, S] weights of every head of one layer from attention [T, layers, heads, S]."""
    if attention.dim() != 4:
        raise ValueError(f"attention must be [T, layers, heads, S], got shape {tuple(attention.shape)}")
    layers = attention.shape[1]
    if not -layers <= layer < layers:
        raise ValueError(f"layer {layer} out of range for {layers} layer(s)")
    return attention[:, layer].float().transpose(0, 1).numpy()  # [H, T, S]


def pick_head(per_head: np.ndarray, head: int) -> np.ndarray:
    """[T, S] weights of ``head`` from per_head [H, T, S]."""
    heads = per_head.shape[0]
    if not 0 <= head < heads:
        raise ValueError(f"head {head} out of range for {heads} head(s)")
    return per_head[head]


def view_title(kind: str, layer: int, layers: int, head: int | None, heads: int, grid: bool = False) -> str:
    """What a figure shows, e.g. "Cross-attention · layer 3 of 4 · head 2 of 4" (``layer``/``head`` 0-based);
    a single layer or head goes unnamed, since there is nothing else it could be (an RNN: "Cross-attention")."""
    parts = [kind]
    if layers > 1:
        parts.append(f"layer {layer % layers + 1} of {layers}")
    if grid:
        parts.append(f"all {heads} heads")
    elif heads > 1:
        parts.append(f"average of {heads} heads" if head is None else f"head {head + 1} of {heads}")
    return " · ".join(parts)


def hover_texts(row_pieces: list[str], col_pieces: list[str], row_name: str, col_name: str) -> list[list[str]]:
    """Per-cell hover: both tokens by position and name (the weight comes from z)."""
    rows, cols = [escape(p) for p in row_pieces], [escape(p) for p in col_pieces]
    return [[f"{row_name} {t}: <b>{r}</b><br>{col_name} {i}: <b>{c}</b>" for i, c in enumerate(cols)]
            for t, r in enumerate(rows)]


def title_layout(text: str | None, height: int) -> dict:
    """A left-aligned title just under the host's label band (nothing when ``text`` is None)."""
    if not text:
        return {}
    return dict(title=dict(text=escape(text), x=0.01, xanchor="left", xref="container", y=1 - TOP_PAD / height,
                           yanchor="top", yref="container", font=dict(size=13, color=FONT["color"])))


def attention_heatmap(source_pieces: list[str], hyp: Hypothesis, layer: int = -1, head: int | None = None,
                      title: str | None = None) -> go.Figure:
    """Heatmap of ``hyp``'s cross-attention: source pieces across the top, output pieces down the side."""
    weights = attention_matrix(hyp.attention, layer, head)  # [T, S]
    return weights_heatmap(weights, hyp.pieces, source_pieces, title, row_name="output", col_name="source")


def weights_heatmap(weights: np.ndarray, row_pieces: list[str], col_pieces: list[str], title: str | None = None,
                    row_name: str = "output", col_name: str = "source") -> go.Figure:
    """Heatmap of weights [rows, cols]: ``col_pieces`` across the top, ``row_pieces`` down the side.

    Colours use a fixed 0-1 scale so pictures of different sentences and models compare; the
    figure is sized to the sentence and a hover names both tokens and the weight.
    """
    rows, cols = weights.shape
    if (rows, cols) != (len(row_pieces), len(col_pieces)):
        raise ValueError(f"attention is {rows}x{cols} but there are {len(row_pieces)}x{len(col_pieces)} labels")
    row_pieces, col_pieces = piece_labels(row_pieces), piece_labels(col_pieces)
    cell_x, cell_y = cell_px(cols), max(cell_px(rows), -(-MIN_PLOT_PX // rows))  # room for the colour bar
    fig = go.Figure(
        go.Heatmap(
            z=weights,
            x=list(range(cols)),
            y=list(range(rows)),
            zmin=0.0,
            zmax=1.0,
            colorscale=ATTENTION_COLORS,
            text=hover_texts(row_pieces, col_pieces, row_name, col_name),
            hovertemplate="%{text}<br>weight %{z:.3f}<extra></extra>",
            hoverlabel=HOVER,
            xgap=1,
            ygap=1,
            colorbar=dict(title=dict(text="weight", side="right"), thickness=12, tickvals=[0, 0.25, 0.5, 0.75, 1],
                          len=min(1.0, 240 / (rows * cell_y)), y=1, yanchor="top"),
        )
    )
    top = label_px(col_pieces, font_px(cell_x)) + TOP_PAD + (TITLE_PX if title else 0)
    left = label_px(row_pieces, font_px(cell_y))
    height = top + rows * cell_y + 16
    fig.update_layout(
        width=max(left + cols * cell_x + 110, title_width(title)),
        height=height,
        margin=dict(l=left, r=10, t=top, b=16, autoexpand=False),
        font=FONT,
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
        xaxis=dict(token_axis(col_pieces, cell_x), side="top"),
        yaxis=dict(token_axis(row_pieces, cell_y), tickangle=0, autorange="reversed"),
        **title_layout(title, height),
    )
    return fig


def title_width(title: str | None) -> int:
    return int(len(title or "") * CHAR_PX * 13 / FONT["size"]) + 20


def heads_grid(per_head: np.ndarray, row_pieces: list[str], col_pieces: list[str], title: str | None = None,
               row_name: str = "output", col_name: str = "source") -> go.Figure:
    """Every head of one layer as a small heatmap, per_head [H, rows, cols], on one shared 0-1 colour axis.

    Source labels run along the bottom row, output labels down the first column; each panel
    is titled with its head and every cell's hover names both tokens.
    """
    heads, rows, cols = per_head.shape
    if (rows, cols) != (len(row_pieces), len(col_pieces)):
        raise ValueError(f"attention is {rows}x{cols} but there are {len(row_pieces)}x{len(col_pieces)} labels")
    row_pieces, col_pieces = piece_labels(row_pieces), piece_labels(col_pieces)
    cell_x, cell_y = max(10, min(20, 160 // cols)), max(10, min(20, 200 // rows))
    font = 10 if min(cell_x, cell_y) >= 14 else 8
    panel_w, panel_h, gap_x, gap_y = cols * cell_x, rows * cell_y, 18, 26  # gap_y holds the panel titles
    n_cols = max(1, min(heads, 4, (GRID_PX + gap_x) // (panel_w + gap_x)))  # as many as fit the page's column
    n_rows = -(-heads // n_cols)
    left, bottom = label_px(row_pieces, font) + 4, label_px(col_pieces, font) + 4
    top, right = TOP_PAD + (TITLE_PX if title else 0) + gap_y, 90
    plot_w, plot_h = n_cols * panel_w + (n_cols - 1) * gap_x, n_rows * panel_h + (n_rows - 1) * gap_y
    fig = make_subplots(
        rows=n_rows, cols=n_cols, subplot_titles=[f"head {h + 1}" for h in range(heads)],
        horizontal_spacing=gap_x / plot_w if n_cols > 1 else 0.0,
        vertical_spacing=gap_y / plot_h if n_rows > 1 else 0.0,
    )
    hover = hover_texts(row_pieces, col_pieces, row_name, col_name)
    for h in range(heads):
        r, c = divmod(h, n_cols)
        fig.add_trace(
            go.Heatmap(z=per_head[h], x=list(range(cols)), y=list(range(rows)), coloraxis="coloraxis", text=hover,
                       hovertemplate=f"head {h + 1}<br>%{{text}}<br>weight %{{z:.3f}}<extra></extra>",
                       hoverlabel=HOVER, xgap=1, ygap=1),
            row=r + 1, col=c + 1,
        )
        fig.update_xaxes(token_axis(col_pieces, cell_x), tickfont=dict(size=font), tickangle=-90,
                         showticklabels=h + n_cols >= heads, row=r + 1, col=c + 1)
        fig.update_yaxes(token_axis(row_pieces, cell_y), tickfont=dict(size=font), tickangle=0, autorange="reversed",
                         showticklabels=c == 0, row=r + 1, col=c + 1)
    fig.update_annotations(font=dict(size=11, color=FONT["color"]))
    height = top + plot_h + bottom
    fig.update_layout(
        width=max(left + plot_w + right, title_width(title)),
        height=height,
        margin=dict(l=left, r=right, t=top, b=bottom, autoexpand=False),
        font=FONT,
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
        coloraxis=dict(cmin=0.0, cmax=1.0, colorscale=ATTENTION_COLORS,
                       colorbar=dict(title=dict(text="weight", side="right"), thickness=12,
                                     tickvals=[0, 0.25, 0.5, 0.75, 1], len=min(1.0, 240 / plot_h), y=1,
                                     yanchor="top")),
        **title_layout(title, height),
    )
    return fig


def confidence_strip(hyp: Hypothesis) -> go.Figure:
    """Bar per output token with its probability; the hover lists the top alternatives at that step."""
    probs = [float(np.exp(lp)) for lp in hyp.token_logprobs]
    pieces = piece_labels(hyp.pieces)
    labels = [escape(p) for p in pieces]
    steps = len(labels)
    hover = []
    for t, (label, p) in enumerate(zip(labels, probs)):
        alternatives = hyp.alternatives[t] if t < len(hyp.alternatives) else []
        lines = [f"{escape(piece_label(piece))}  {prob:.3f}" for piece, prob in alternatives]
        listing = "<br>".join(lines) if lines else "(none recorded)"
        hover.append(f"output {t}: <b>{label}</b>  p = {p:.3f}<br><i>top candidates</i><br>{listing}")
    cell = max(cell_px(steps), 18)
    bottom = label_px(pieces, font_px(cell))
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
        xaxis=dict(token_axis(pieces, cell), range=[-0.5, steps - 0.5]),
        yaxis=dict(title=dict(text="p(token)"), range=[0, 1], tickvals=[0, 0.5, 1], gridcolor="#e5e7eb", fixedrange=True),
    )
    return fig
