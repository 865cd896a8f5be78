"""Layer/head views, encoder self-attention and the Compare view, on tiny untrained models.

Weights are random, so only shapes, titles, scales and wiring are checked, never the words.
The app-level checks call ``demo_core.app_logic`` with a registry over a temporary folder; the
API checks launch a second copy of ``app.py`` whose registry reads that folder
(``S2S_CHECKPOINTS``). Run: ``pytest tests/test_compare.py -q``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo_core.serving import catalogue as logic
from demo_core.checkpoint import save_checkpoint
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.models.registry import build_model
from demo_core.text.tokenizer import Tokenizer
from tests.serving import load_app, serving

TINY_TRANSFORMER = dict(d_model=16, n_heads=4, enc_layers=2, dec_layers=3, d_ff=32, dropout=0.0,
                        attention_dropout=0.0, max_positions=128)
TEXT = "zwei kinder spielen im schnee"


def make_tiny_transformer(folder: Path, source_spm: Path, target_spm: Path, **card_fields) -> Path:
    """A servable folder holding an untrained Transformer (2 encoder, 3 decoder layers, 4 heads)."""
    vocab = dict(src_vocab=Tokenizer(source_spm).vocab_size, tgt_vocab=Tokenizer(target_spm).vocab_size)
    config = dict(TINY_TRANSFORMER, **vocab)
    torch.manual_seed(0)
    model = build_model("transformer", config)
    card = {
        "id": folder.name, "display_name": "Tiny Transformer (untrained)", "task": "translation",
        "task_label": "Toy", "source_lang": "de", "target_lang": "en",
        "architecture": "transformer", "model": config, "max_source_tokens": 40,
        "tokenizer": {"source": "source.spm.model", "target": "target.spm.model"},
        "examples": [TEXT], **card_fields,
    }
    return save_checkpoint(model, folder, card, {"source.spm.model": source_spm, "target.spm.model": target_spm})


@pytest.fixture(scope="module")
def root(tiny_model_dir, tmp_path_factory) -> Path:
    """tiny-rnn and tiny-transformer (German), tiny-fr (an RNN card that reads French)."""
    root = tmp_path_factory.mktemp("compare-models")
    shutil.copytree(tiny_model_dir, root / "tiny-rnn")
    spm = tiny_model_dir / "joint.spm.model"
    make_tiny_transformer(root / "tiny-transformer", spm, spm)
    shutil.copytree(tiny_model_dir, root / "tiny-fr")
    card = json.loads((root / "tiny-fr" / "config.json").read_text(encoding="utf-8"))
    card = dict(card, id="tiny-fr", source_lang="fr", task_label="Toy (French)")
    (root / "tiny-fr" / "config.json").write_text(json.dumps(card), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def registry(root) -> ModelRegistry:
    return ModelRegistry(root)


@pytest.fixture(scope="module")
def transformer_run(registry):
    return logic.decode_request(registry, TEXT, "tiny-transformer", logic.Settings(strategy="greedy", max_len=8))


@pytest.fixture(scope="module")
def rnn_run(registry):
    return logic.decode_request(registry, TEXT, "tiny-rnn", logic.Settings(strategy="greedy", max_len=8))


# ---- layer and head views ---------------------------------------------------------------


def test_menus_list_every_layer_and_head(transformer_run):
    """The layer menu has the decoder's 3 layers; the head menu has average, grid and 4 heads."""
    layers, heads = logic.view_choices(transformer_run)
    assert [value for _, value in layers] == [0, 1, 2]
    assert [value for _, value in heads] == [logic.AVERAGE_HEADS, logic.ALL_HEADS, 0, 1, 2, 3]


def test_one_head_is_drawn_and_named(transformer_run):
    """Layer 2, head 3 draws exactly that slice, and the title says so."""
    fig = logic.attention_figure(transformer_run, 0, 1, 2)
    expected = transformer_run.best.attention[:, 1, 2]
    torch.testing.assert_close(torch.tensor(fig.data[0].z, dtype=torch.float32), expected.float())
    assert fig.layout.title.text == "Cross-attention · layer 2 of 3 · head 3 of 4"


def test_average_of_heads_is_named(transformer_run):
    """The head average is the mean over heads and is titled as an average."""
    fig = logic.attention_figure(transformer_run, 0, 2, logic.AVERAGE_HEADS)
    expected = transformer_run.best.attention[:, 2].float().mean(1)
    torch.testing.assert_close(torch.tensor(fig.data[0].z, dtype=torch.float32), expected)
    assert fig.layout.title.text == "Cross-attention · layer 3 of 3 · average of 4 heads"


def test_grid_shows_every_head_on_one_scale(transformer_run):
    """The grid has one panel per head, all on one 0-1 colour axis, with token tick labels."""
    fig = logic.attention_figure(transformer_run, 0, 0, logic.ALL_HEADS)
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
    layers, _ = logic.view_choices(transformer_run, logic.ENCODER)
    assert len(layers) == 2
    fig = logic.attention_figure(transformer_run, 0, 0, 1, logic.ENCODER)
    assert fig.layout.title.text == "Encoder self-attention · layer 1 of 2 · head 2 of 4"
    assert list(fig.layout.xaxis.ticktext) == list(fig.layout.yaxis.ticktext)


def test_rnn_has_no_encoder_view(rnn_run):
    """An RNN result carries no encoder self-attention; asking for it shows the cross-attention."""
    assert rnn_run.encoder_attention is None
    fig = logic.attention_figure(rnn_run, 0, None, logic.AVERAGE_HEADS, logic.ENCODER)
    assert fig.layout.title.text == "Cross-attention · layer 1 of 1 · head 1 of 1"


# ---- comparison in app_logic ------------------------------------------------------------


def test_compare_runs_two_models(registry):
    """Two models of one source language decode the same input, each with its own strategy."""
    a, b = logic.compare_request(registry, TEXT, "tiny-rnn", logic.compare_settings("greedy"),
                                 "tiny-transformer", logic.compare_settings("beam", beam_size=3))
    assert (a.model_id, a.config.strategy) == ("tiny-rnn", "greedy")
    assert (b.model_id, b.config.strategy) == ("tiny-transformer", "beam")
    assert a.source_pieces == b.source_pieces
    assert "score" in logic.summary(b, compared=True) and "Beam search" in logic.summary(b, compared=True)


def test_compare_refuses_different_source_languages(registry):
    """A German and a French model cannot compare one input."""
    with pytest.raises(InputError, match="different languages: tiny-rnn reads de, tiny-fr reads fr"):
        logic.compare_request(registry, TEXT, "tiny-rnn", logic.compare_settings("greedy"),
                              "tiny-fr", logic.compare_settings("greedy"))


def test_compare_defaults_pick_two_models_of_one_language(registry, tiny_model_dir):
    """With two German models the defaults compare them; with one, greedy against beam."""
    assert logic.compare_defaults(registry) == ("tiny-rnn", "greedy", "tiny-transformer", "greedy")
    assert logic.compare_defaults(ModelRegistry(tiny_model_dir.parent)) == ("tiny-rnn", "greedy", "tiny-rnn", "beam")


def test_compare_defaults_prefer_another_architecture(root, tmp_path):
    """Beside a second RNN that comes first in the menu, the Transformer is the default partner."""
    shutil.copytree(root, tmp_path / "models")
    shutil.copytree(root / "tiny-rnn", tmp_path / "models" / "tiny-rnn-b")
    card_path = tmp_path / "models" / "tiny-rnn-b" / "config.json"
    card_path.write_text(json.dumps(dict(json.loads(card_path.read_text(encoding="utf-8")), id="tiny-rnn-b")), encoding="utf-8")
    registry = ModelRegistry(tmp_path / "models")
    assert registry.available().index("tiny-rnn-b") < registry.available().index("tiny-transformer")
    assert logic.compare_defaults(registry) == ("tiny-rnn", "greedy", "tiny-transformer", "greedy")


# ---- through the API --------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(root):
    """A copy of the app serving the tiny models, and a gradio_client connected to it."""
    with serving(load_app(root)) as url:
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
    """/generate on a Transformer returns cross-attention [T, 3, 4, S] and encoder attention [2, 4, S, S]."""
    answer = client.predict(TEXT, "tiny-transformer", "greedy", max_len=6, api_name="/generate")
    S = len(answer["source_pieces"])
    assert torch.tensor(answer["hypotheses"][0]["attention"]).shape[1:] == (3, 4, S)
    assert torch.tensor(answer["encoder_attention"]).shape == (2, 4, S, S)


def test_api_lists_generate_and_compare(client):
    """The named endpoints are exactly /generate and /compare; UI events are private."""
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert sorted(endpoints) == ["/compare", "/generate"]
