"""Figures from hand-made hypotheses: no model, no server, milliseconds per test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demo_core.decoding import Hypothesis
from demo_core.figures import attention_heatmap, attention_matrix, cell_px, confidence_strip


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
