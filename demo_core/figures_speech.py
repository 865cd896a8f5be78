"""The speech-synthesis picture: attention (phones × decoder steps) above the mel spectrogram it
produced, on one time axis, with the chosen decoder step marked.

Tacotron-style models emit ``frames_per_step`` spectrogram frames per decoder step, so frame f
lies under step f // r: both panels share the x axis in decoder steps, and the monotonic
alignment (the diagonal) lines up with the sound it made. Takes a ``SynthesisResult``-like
object (phones, attention [steps, phones], mel [frames, n_mels], frames_per_step), never a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from demo_core.figures import FONT, HOVER, escape

ATTENTION_SCALE = "Viridis"  # colour-blind safe, readable on light and dark backgrounds
MEL_SCALE = "Magma"


def phone_labels(phones: tuple[str, ...] | list[str]) -> list[str]:
    """Axis labels that keep repeated phones apart and show word gaps: ``3·AH0``, ``4·␣``."""
    return [f"{i + 1}·{escape('␣' if p == ' ' else p)}" for i, p in enumerate(phones)]


def synthesis_figure(result: Any, step: int | None = None) -> go.Figure:
    """Attention heatmap over the mel spectrogram; ``step`` (1-based) is drawn as a vertical band."""
    attention = np.asarray(result.attention)  # [steps, phones]
    mel = np.asarray(result.mel)  # [frames, n_mels]
    steps, n_phones = attention.shape
    r = int(result.frames_per_step)
    labels = phone_labels(result.phones)
    height = 260 + 16 * n_phones
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.62, 0.38], subplot_titles=("Attention: phones × decoder steps",
                                                                  f"Mel spectrogram ({r} frames per step)"))
    fig.add_trace(go.Heatmap(
        z=attention.T, x=np.arange(1, steps + 1), y=np.arange(n_phones), colorscale=ATTENTION_SCALE, zmin=0, zmax=1,
        colorbar=dict(title="weight", len=0.55, y=0.72), customdata=np.array(labels)[:, None].repeat(steps, 1),
        hovertemplate="step %{x}<br>phone %{customdata}<br>weight %{z:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=mel.T, x=(np.arange(mel.shape[0]) + 0.5) / r + 0.5, y=np.arange(mel.shape[1]), colorscale=MEL_SCALE,
        showscale=False, hovertemplate="step %{x:.2f}<br>mel bin %{y}<br>log magnitude %{z:.2f}<extra></extra>"),
        row=2, col=1)
    fig.update_yaxes(tickvals=list(range(n_phones)), ticktext=labels, autorange="reversed", row=1, col=1,
                     tickfont=dict(size=10 if n_phones > 30 else 12))
    fig.update_yaxes(title_text="mel bin", row=2, col=1)
    fig.update_xaxes(title_text="decoder step", row=2, col=1)
    if step is not None and 1 <= step <= steps:
        for row in (1, 2):
            fig.add_vrect(x0=step - 0.5, x1=step + 0.5, line_width=2, line_color="#f97316", fillcolor="rgba(0,0,0,0)",
                          row=row, col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=40), font=FONT, hoverlabel=HOVER,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig
