"""Layer/head views, encoder self-attention and the Compare view, on tiny untrained models.

Weights are random, so only shapes, titles, scales and wiring are checked, never the words.
The request and view checks call ``demo_core.serving`` with a registry over a temporary
folder; the API checks serve ``app.build_demo`` over that folder. Run:
``pytest tests/test_compare.py -q``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving import catalogue, views
from demo_core.serving.requests import compare_options, compare_request, decode_request
from tests.serving import demo_for, serving
from tests.tiny import EXAMPLE, copy_tiny_model, save_tiny_model

TEXT = EXAMPLE
LAYERS = dict(enc_layers=2, dec_layers=3)  # the Transformer's: unequal, so a mix-up of the two shows


@pytest.fixture(scope="module")
def root(tiny_model_dir, tmp_path_factory) -> Path:
    """tiny-rnn and tiny-transformer (German, 2 encoder and 3 decoder layers, 4 heads), tiny-fr (an RNN that reads French)."""
    root = tmp_path_factory.mktemp("compare-models")
    copy_tiny_model(tiny_model_dir, root / "tiny-rnn")
    save_tiny_model(root / "tiny-transformer", "transformer", model_config=LAYERS)
    copy_tiny_model(tiny_model_dir, root / "tiny-fr", source_lang="fr", task_label="Toy (French)")
    return root


@pytest.fixture(scope="module")
def registry(root) -> ModelRegistry:
    return ModelRegistry(root)


@pytest.fixture(scope="module")
def transformer_run(registry):
    return decode_request(registry, TEXT, "tiny-transformer", {"strategy": "greedy", "max_len": 8})


@pytest.fixture(scope="module")
def rnn_run(registry):
    return decode_request(registry, TEXT, "tiny-rnn", {"strategy": "greedy", "max_len": 8})


# ---- layer and head views ---------------------------------------------------------------


def test_menus_list_every_layer_and_head(transformer_run):
    """The layer menu has the decoder's 3 layers; the head menu has average, grid and 4 heads."""
    layers, heads = views.view_choices(transformer_run)
    assert [value for _, value in layers] == [0, 1, 2]
    assert [value for _, value in heads] == [views.AVERAGE_HEADS, views.ALL_HEADS, 0, 1, 2, 3]


def test_one_head_is_drawn_and_named(transformer_run):
    """Layer 2, head 3 draws exactly that slice, and the title says so."""
    fig = views.attention_figure(transformer_run, 0, 1, 2)
    expected = transformer_run.best.attention[:, 1, 2]
    torch.testing.assert_close(torch.tensor(fig.data[0].z, dtype=torch.float32), expected.float())
    assert fig.layout.title.text == "Cross-attention · layer 2 of 3 · head 3 of 4"


def test_average_of_heads_is_named(transformer_run):
    """The head average is the mean over heads and is titled as an average."""
    fig = views.attention_figure(transformer_run, 0, 2, views.AVERAGE_HEADS)
    expected = transformer_run.best.attention[:, 2].float().mean(1)
    torch.testing.assert_close(torch.tensor(fig.data[0].z, dtype=torch.float32), expected)
    assert fig.layout.title.text == "Cross-attention · layer 3 of 3 · average of 4 heads"


def test_grid_shows_every_head_on_one_scale(transformer_run):
    """The grid has one panel per head, all on one 0-1 colour axis, with token tick labels."""
    fig = views.attention_figure(transformer_run, 0, 0, views.ALL_HEADS)
    assert len(fig.data) == 4 and {trace.coloraxis for trace in fig.data} == {"coloraxis"}
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    assert list(fig.layout.xaxis.tickvals) == list(range(len(transformer_run.source_pieces)))
    assert [a.text for a in fig.layout.annotations] == ["head 1", "head 2", "head 3", "head 4"]
    assert fig.layout.title.text == "Cross-attention · layer 1 of 3 · all 4 heads"


def test_encoder_self_attention_is_source_by_source(transformer_run):
    """Encoder self-attention is [2 layers, 4 heads, S, S], rows sum to 1, drawn source × source."""
    attention = transformer_run.encoder_attention
    S = len(transformer_run.source_pieces)
    assert attention.shape == (2, 4, S, S)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4, S))
    layers, _ = views.view_choices(transformer_run, views.ENCODER)
    assert len(layers) == 2
    fig = views.attention_figure(transformer_run, 0, 0, 1, views.ENCODER)
    assert fig.layout.title.text == "Encoder self-attention · layer 1 of 2 · head 2 of 4"
    assert list(fig.layout.xaxis.ticktext) == list(fig.layout.yaxis.ticktext)


def test_rnn_has_no_encoder_view(rnn_run):
    """An RNN result carries no encoder self-attention; asking for it shows the cross-attention, titled
    without its one layer and head."""
    assert rnn_run.encoder_attention is None
    fig = views.attention_figure(rnn_run, 0, None, views.AVERAGE_HEADS, views.ENCODER)
    assert fig.layout.title.text == "Cross-attention"


# ---- comparison in demo_core.serving ------------------------------------------------------------


def test_compare_runs_two_models(registry):
    """Two models of one source language decode the same input, each with its own strategy."""
    a, b = compare_request(registry, TEXT, "tiny-rnn", compare_options("greedy", {}),
                           "tiny-transformer", compare_options("beam", {"beam_size": 3}))
    assert (a.model_id, a.config.strategy) == ("tiny-rnn", "greedy")
    assert (b.model_id, b.config.strategy) == ("tiny-transformer", "beam")
    assert a.source_pieces == b.source_pieces
    assert "score" in views.summary(b, compared=True) and "Beam search" in views.summary(b, compared=True)


def test_compare_refuses_different_source_languages(registry):
    """A German and a French model cannot compare one input."""
    with pytest.raises(InputError, match="different languages: tiny-rnn reads de, tiny-fr reads fr"):
        compare_request(registry, TEXT, "tiny-rnn", compare_options("greedy", {}), "tiny-fr", compare_options("greedy", {}))


def test_compare_defaults_pick_two_models_of_one_language(registry, tiny_model_dir):
    """With two German models the defaults compare them; with one, greedy against beam."""
    assert catalogue.compare_defaults(registry) == ("tiny-rnn", "greedy", "tiny-transformer", "greedy")
    assert catalogue.compare_defaults(ModelRegistry(tiny_model_dir.parent)) == ("tiny-rnn", "greedy", "tiny-rnn", "beam")


def test_compare_defaults_prefer_another_architecture(root, tmp_path):
    """Beside a second RNN that comes first in the menu, the Transformer is the default partner."""
    models = tmp_path / "models"
    for model_id in ("tiny-rnn", "tiny-transformer", "tiny-fr"):
        copy_tiny_model(root / model_id, models / model_id)
    copy_tiny_model(root / "tiny-rnn", models / "tiny-rnn-b")
    registry = ModelRegistry(models)
    assert registry.available().index("tiny-rnn-b") < registry.available().index("tiny-transformer")
    assert catalogue.compare_defaults(registry) == ("tiny-rnn", "greedy", "tiny-transformer", "greedy")


# ---- through the API --------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(root):
    """The page built over the tiny models, served, and a gradio_client connected to it."""
    with serving(demo_for(root)) as url:
        yield Client(url, verbose=False, analytics_enabled=False)


def test_api_compare_returns_both_results(client):
    """/compare returns {"a", "b"}, each a full /generate answer for its model and strategy."""
    answer = client.predict(TEXT, "tiny-transformer", "greedy", "tiny-rnn", "beam", 3, 1.0, 1.0, 1.0, 0,
                            api_name="/compare")
    a, b = answer["a"], answer["b"]
    assert (a["model"], a["strategy"], b["model"], b["strategy"]) == ("tiny-transformer", "greedy", "tiny-rnn", "beam")
    assert torch.tensor(a["hypotheses"][0]["attention"]).shape[1:3] == (3, 4)
    assert len(b["hypotheses"]) == 3 and b["encoder_attention"] is None


def test_api_compare_two_strategies_of_one_model(client):
    """One model, greedy against sampling: the same source, two decodes."""
    answer = client.predict(TEXT, "tiny-rnn", "greedy", "tiny-rnn", "sample", api_name="/compare")
    assert answer["a"]["source_pieces"] == answer["b"]["source_pieces"]
    assert (answer["a"]["strategy"], answer["b"]["strategy"]) == ("greedy", "sample")


def test_api_compare_rejects_different_languages(client):
    """Comparing a German with a French model is an error that names both languages."""
    with pytest.raises(AppError, match="reads fr"):
        client.predict(TEXT, "tiny-rnn", "greedy", "tiny-fr", "greedy", api_name="/compare")


def test_api_generate_has_every_layer_and_head(client):
    """/generate on a Transformer with attention="all" returns cross-attention [T, 3, 4, S] and encoder attention [2, 4, S, S]."""
    answer = client.predict(TEXT, "tiny-transformer", "greedy", max_len=6, attention="all", api_name="/generate")
    S = len(answer["source_pieces"])
    assert torch.tensor(answer["hypotheses"][0]["attention"]).shape[1:] == (3, 4, S)
    assert torch.tensor(answer["encoder_attention"]).shape == (2, 4, S, S)
