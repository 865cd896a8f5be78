"""How much attention ``/generate`` and ``/compare`` replies carry (``attention`` = best | all | none) and their size budget.

The API checks serve ``app.build_demo`` over tiny untrained models (an RNN and a Transformer
with 2 encoder and 3 decoder layers, 4 heads), so only shapes, nulls and messages are checked;
the size goal is checked on the shipped ``de-en-transformer`` when it is there. Run:
``pytest tests/test_replies.py -q``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving import replies
from demo_core.serving.requests import decode_request
from tests.serving import demo_for, serving
from tests.tiny import EXAMPLE, copy_tiny_model, save_tiny_model

BEAM = {"strategy": "beam", "beam_size": 3, "n_best": 3, "max_len": 6}
LAYERS = dict(enc_layers=2, dec_layers=3)


@pytest.fixture(scope="module")
def root(tiny_model_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reply-models")
    copy_tiny_model(tiny_model_dir, root / "tiny-rnn")
    save_tiny_model(root / "tiny-transformer", "transformer", model_config=LAYERS)
    return root


@pytest.fixture(scope="module")
def demo(root):
    return demo_for(root)


@pytest.fixture(scope="module")
def url(demo):
    with serving(demo) as url:
        yield url


@pytest.fixture(scope="module")
def client(url):
    return Client(url, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def answers(client) -> dict:
    """/generate of the tiny Transformer with beam 3 (n-best 3), once per ``attention`` value (None: left out)."""
    return {choice: client.predict(EXAMPLE, "tiny-transformer", **BEAM, **({} if choice is None else {"attention": choice}),
                                   api_name="/generate") for choice in (None, "best", "all", "none")}


def shape(value) -> tuple:
    return tuple(torch.tensor(value).shape)


def test_default_is_best(answers):
    """Leaving ``attention`` out gives the same reply as ``attention="best"``, and says so."""
    default, best = dict(answers[None]), dict(answers["best"])
    assert default.pop("elapsed_ms") is not None and best.pop("elapsed_ms") is not None
    assert default == best and best["attention_included"] == "best"


def test_best_carries_only_the_best_hypothesis_cross_attention(answers):
    """"best": hypothesis 0 has [T, 3 layers, 4 heads, S]; the other hypotheses and the encoder have null."""
    answer = answers["best"]
    first, *others = answer["hypotheses"]
    assert len(others) == 2
    assert shape(first["attention"]) == (len(first["pieces"]), 3, 4, len(answer["source_pieces"]))
    assert all(h["attention"] is None for h in others) and answer["encoder_attention"] is None


def test_all_carries_every_hypothesis_and_the_encoder(answers):
    """"all": every hypothesis's cross-attention and the encoder self-attention [2, 4, S, S]; the best's equals "best"'s."""
    answer = answers["all"]
    S = len(answer["source_pieces"])
    assert [shape(h["attention"]) for h in answer["hypotheses"]] == [(len(h["pieces"]), 3, 4, S) for h in answer["hypotheses"]]
    assert shape(answer["encoder_attention"]) == (2, 4, S, S)
    assert answer["hypotheses"][0]["attention"] == answers["best"]["hypotheses"][0]["attention"]


def test_none_carries_no_attention_and_everything_else(answers):
    """"none": no attention anywhere; texts, pieces, scores, probabilities and the beam tree are those of "all"."""
    none, every = answers["none"], answers["all"]
    assert all(h["attention"] is None for h in none["hypotheses"]) and none["encoder_attention"] is None
    strip = [{k: v for k, v in h.items() if k != "attention"} for h in every["hypotheses"]]
    assert [{k: v for k, v in h.items() if k != "attention"} for h in none["hypotheses"]] == strip
    assert none["beam_tree"] == every["beam_tree"] and none["beam_tree"]


def test_floats_have_at_most_four_decimals(answers):
    """Every number in a reply (attention, probabilities, scores, beam tree) has at most 4 decimals."""
    text = json.dumps(answers["all"])
    decimals = [len(d) for d in re.findall(r"\d\.(\d+)", text)]
    assert decimals and max(decimals) <= 4


def test_attention_goes_last_so_positional_calls_keep_working(client, answers):
    """``attention`` follows every decoding option (then come the lab's ``prefix`` and ``steps``): every older
    positional argument keeps its place."""
    params = [p["parameter_name"] for p in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
              ["/generate"]["parameters"]]
    assert params[-3:] == ["attention", "prefix", "steps"] and params[:3] == ["text", "model", "strategy"]
    values = [EXAMPLE, "tiny-transformer", "beam", 3, 1.0, 3] + [None] * (len(params) - 9) + ["none"]
    values[params.index("max_len")] = 6
    answer = client.predict(*values, api_name="/generate")
    assert answer["attention_included"] == "none" and answer["text"] == answers["none"]["text"]


def test_an_unknown_attention_value_is_named(client):
    """attention="heads" is refused with the three values it may take."""
    with pytest.raises(AppError, match=re.escape("attention must be one of best, all, none, got 'heads'")):
        client.predict(EXAMPLE, "tiny-rnn", "greedy", attention="heads", api_name="/generate")


def test_a_reply_over_the_budget_says_what_to_ask_for(client, monkeypatch):
    """Over the budget, "all" is refused with its size and what to ask for instead; "none" still fits."""
    monkeypatch.setattr(replies, "REPLY_BUDGET_BYTES", 3_000)
    with pytest.raises(AppError, match=r"the reply would be .* MB of JSON, over the 0\.003 MB limit") as refusal:
        client.predict(EXAMPLE, "tiny-transformer", **BEAM, attention="all", api_name="/generate")
    assert 'attention="best"' in str(refusal.value) and "fewer hypotheses" in str(refusal.value)
    assert "max_len" in str(refusal.value)
    monkeypatch.setattr(replies, "REPLY_BUDGET_BYTES", 20_000)
    assert client.predict(EXAMPLE, "tiny-transformer", **BEAM, attention="none", api_name="/generate")["text"] is not None


def test_a_reply_that_cannot_fit_is_never_built(root):
    """When the attention alone is over the budget, the refusal comes before the reply is built."""
    result = decode_request(ModelRegistry(root), EXAMPLE, "tiny-transformer", BEAM)
    floats = replies.attention_floats(result, "all")
    assert floats == sum(h.attention.numel() for h in result.hypotheses) + result.encoder_attention.numel()

    def build() -> dict:
        raise AssertionError("built a reply that cannot fit")

    with pytest.raises(InputError, match="the reply would be at least"):
        replies.bounded(build, [result], "all", budget=floats)
    assert replies.bounded(lambda: {"ok": 1}, [result], "none", budget=100) == {"ok": 1}


def test_compare_takes_attention_for_both_sides(client):
    """/compare: by default each side carries its best hypothesis's attention only; "all" adds the rest."""
    sides = ("tiny-transformer", "beam", "tiny-rnn", "beam")
    default = client.predict(EXAMPLE, *sides, 3, api_name="/compare")
    every = client.predict(EXAMPLE, *sides, 3, attention="all", api_name="/compare")
    for side in ("a", "b"):
        first, *others = default[side]["hypotheses"]
        assert first["attention"] is not None and others and all(h["attention"] is None for h in others)
        assert all(h["attention"] is not None for h in every[side]["hypotheses"])
        assert default[side]["text"] == every[side]["text"]
    assert default["a"]["encoder_attention"] is None and shape(every["a"]["encoder_attention"])[:2] == (2, 4)


def test_compare_over_the_budget_is_refused(client, monkeypatch):
    """/compare counts both sides against the budget."""
    monkeypatch.setattr(replies, "REPLY_BUDGET_BYTES", 3_000)
    with pytest.raises(AppError, match="over the 0.003 MB limit"):
        client.predict(EXAMPLE, "tiny-transformer", "beam", "tiny-rnn", "beam", 3, attention="all", api_name="/compare")


SHIPPED = ModelRegistry()


@pytest.mark.skipif("de-en-transformer" not in SHIPPED.available(), reason="the shipped de-en-transformer is not here")
def test_default_reply_of_a_199_token_input_with_beam_5_is_under_1_mb():
    """The shipped Transformer, 199 source tokens, beam 5 (n-best 5): the default reply is at most 1 MB of JSON."""
    from benchmarks.bench_replies import input_of_tokens

    translator = SHIPPED.get("de-en-transformer")
    text = input_of_tokens(translator, 199)
    result = decode_request(SHIPPED, text, "de-en-transformer", {"strategy": "beam", "beam_size": 5, "n_best": 5})
    assert len(result.source_ids) == 199 and len(result.hypotheses) == 5
    reply = replies.bounded(lambda: replies.result_json(result, replies.DEFAULT_ATTENTION), [result], "best")
    assert replies.reply_bytes(reply) <= 1_000_000


def test_api_calls_leave_no_session_behind(demo, url):
    """Raw HTTP calls (each a new Gradio session), answered or refused, keep nothing in the page's session store."""
    from benchmarks.http_api import Api

    api = Api(url)
    replies_ = [api.call("/generate", text=EXAMPLE, model="tiny-transformer", **BEAM) for _ in range(3)]
    replies_ += [api.call("/generate", text="", model="tiny-rnn"), api.call("/compare", text=EXAMPLE, model_a="tiny-rnn",
                                                                              model_b="tiny-transformer")]
    assert [r.ok for r in replies_] == [True, True, True, False, True]
    assert len(demo.state_holder.session_data) == 0
