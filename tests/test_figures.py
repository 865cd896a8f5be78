"""Figures from hand-made hypotheses: no model, no server, milliseconds per test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demo_core.decoding import Hypothesis
from demo_core.figures import attention_heatmap, attention_matrix, cell_px, confidence_strip, heads_grid, layer_heads, view_title


def hypothesis(pieces: list[str], source_len: int, layers: int = 1, heads: int = 1, seed: int = 0) -> Hypothesis:
    """A hypothesis with random row-normalised attention [T, layers, heads, S]."""
    generator = torch.Generator().manual_seed(seed)
    attention = torch.rand(len(pieces), layers, heads, source_len, generator=generator).softmax(-1)
    probs = [0.9, 0.5, 0.2, 0.7, 0.6, 0.95][: len(pieces)] + [0.8] * max(0, len(pieces) - 6)
    return Hypothesis(
        ids=list(range(len(pieces))), token_logprobs=[math.log(p) for p in probs], alt_ids=[], alt_probs=[],
        attention=attention, score=0.0, normalized_score=0.0, finished=True, pieces=pieces,
        alternatives=[[(p, 0.6), ("<b>", 0.1)] for p in pieces],
    )


SOURCE = ["▁der", "▁Hund", "▁sieht", "▁den", "▁Hund", "</s>"]
OUTPUT = ["▁the", "▁dog", "▁sees", "▁the", "▁dog", "</s>"]


def test_repeated_tokens_keep_their_own_ticks():
    """Integer axes give every token its own tick even when labels repeat."""
    layout = attention_heatmap(SOURCE, hypothesis(OUTPUT, len(SOURCE))).layout
    assert list(layout.xaxis.tickvals) == list(range(len(SOURCE)))
    assert list(layout.yaxis.tickvals) == list(range(len(OUTPUT)))
    assert list(layout.xaxis.ticktext) == ["▁der", "▁Hund", "▁sieht", "▁den", "▁Hund", "&lt;/s&gt;"]


def test_colour_scale_is_fixed_to_zero_one():
    """The heatmap's colours span exactly 0..1 whatever the weights."""
    trace = attention_heatmap(SOURCE, hypothesis(OUTPUT, len(SOURCE))).data[0]
    assert (trace.zmin, trace.zmax) == (0.0, 1.0)


def test_labels_are_html_escaped_in_ticks_and_hovers():
    """Tokens that look like HTML are escaped so Plotly shows them literally."""
    fig = attention_heatmap(["<b>", "</s>"], hypothesis(["<script>", "</s>"], 2))
    assert list(fig.layout.xaxis.ticktext) == ["&lt;b&gt;", "&lt;/s&gt;"]
    assert list(fig.layout.yaxis.ticktext) == ["&lt;script&gt;", "&lt;/s&gt;"]
    assert "<script>" not in str(fig.data[0].text) and "&lt;script&gt;" in fig.data[0].text[0][0]


def test_hover_names_both_tokens():
    """Each cell's hover names its output and source token (the weight comes from z)."""
    trace = attention_heatmap(SOURCE, hypothesis(OUTPUT, len(SOURCE))).data[0]
    assert "▁sees" in trace.text[2][1] and "▁Hund" in trace.text[2][1]
    assert "%{z:.3f}" in trace.hovertemplate


def test_layer_and_head_select_the_weights():
    """A layer and head pick that slice of [T, layers, heads, S]; head None averages the heads."""
    hyp = hypothesis(OUTPUT, len(SOURCE), layers=3, heads=4)
    np.testing.assert_allclose(attention_matrix(hyp.attention, 1, 2), hyp.attention[:, 1, 2].numpy())
    np.testing.assert_allclose(attention_matrix(hyp.attention, 1, None), hyp.attention[:, 1].mean(1).numpy(), rtol=1e-6)
    z = np.array(attention_heatmap(SOURCE, hyp, layer=0, head=3).data[0].z)
    np.testing.assert_allclose(z, hyp.attention[:, 0, 3].numpy(), rtol=1e-6)


def test_out_of_range_head_is_an_error():
    """Asking for a head the model does not have names the problem."""
    with pytest.raises(ValueError, match="head 4 out of range for 4 head"):
        attention_matrix(hypothesis(OUTPUT, len(SOURCE), heads=4).attention, -1, 4)


def test_figure_grows_with_the_sentence_and_stays_legible():
    """Longer sentences get bigger figures, and 100 tokens still get 14 px per token."""
    short = attention_heatmap(SOURCE[:3], hypothesis(OUTPUT[:3], 3)).layout
    long = attention_heatmap(["▁w"] * 100, hypothesis(["▁x"] * 100, 100)).layout
    assert long.width > short.width and long.height > short.height
    assert cell_px(100) >= 14 and cell_px(1) <= 40


def test_confidence_strip_shows_probabilities_and_alternatives():
    """One bar per output token at its probability; the hover lists the escaped alternatives."""
    trace = confidence_strip(hypothesis(OUTPUT, len(SOURCE))).data[0]
    np.testing.assert_allclose(trace.y, [0.9, 0.5, 0.2, 0.7, 0.6, 0.95])
    assert list(trace.x) == list(range(len(OUTPUT)))
    assert "&lt;b&gt;" in trace.hovertext[0] and "0.600" in trace.hovertext[0]


def test_title_names_layer_and_head():
    """Titles say which layer and head, or which average, a figure shows (1-based)."""
    assert view_title("Cross-attention", 2, 4, 1, 4) == "Cross-attention · layer 3 of 4 · head 2 of 4"
    assert view_title("Cross-attention", -1, 4, None, 4) == "Cross-attention · layer 4 of 4 · average of 4 heads"
    assert view_title("Encoder self-attention", 0, 2, None, 8, grid=True).endswith("layer 1 of 2 · all 8 heads")
    assert attention_heatmap(SOURCE, hypothesis(OUTPUT, len(SOURCE)), title="x <y>").layout.title.text == "x &lt;y&gt;"


def test_head_grid_has_a_panel_per_head_on_one_scale():
    """The grid draws every head on one shared 0-1 colour axis, with escaped integer-position ticks."""
    hyp = hypothesis(OUTPUT, len(SOURCE), layers=2, heads=4)
    fig = heads_grid(layer_heads(hyp.attention, 1), OUTPUT, ["<b>"] + SOURCE[1:])
    assert len(fig.data) == 4 and all(trace.coloraxis == "coloraxis" for trace in fig.data)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    np.testing.assert_allclose(np.array(fig.data[3].z), hyp.attention[:, 1, 3].numpy(), rtol=1e-6)
    assert list(fig.layout.xaxis.tickvals) == list(range(len(SOURCE))) and fig.layout.xaxis.ticktext[0] == "&lt;b&gt;"


def test_head_grid_fits_the_page_column():
    """Long sentences get fewer panels per row, so the grid stays about as wide as the page's column."""
    short = heads_grid(np.full((4, 5, 5), 0.2), ["▁a"] * 5, ["▁b"] * 5).layout
    long = heads_grid(np.full((4, 40, 40), 0.025), ["▁a"] * 40, ["▁b"] * 40).layout
    assert short.width <= 700 and long.width <= 700 and long.height > short.height


def test_head_grid_of_a_typical_sentence_is_two_by_two():
    """Four heads over a 21-piece source (a 15-word sentence) sit two to a row, not in one tall column."""
    layout = heads_grid(np.full((4, 17, 21), 1 / 21), ["▁a"] * 17, ["▁b"] * 21).layout
    assert layout.xaxis2.domain[0] > layout.xaxis.domain[1]  # head 2 right of head 1
    assert tuple(layout.xaxis3.domain) == tuple(layout.xaxis.domain)  # head 3 under head 1
    assert layout.yaxis3.domain[1] < layout.yaxis.domain[0]
    assert layout.width <= 700
