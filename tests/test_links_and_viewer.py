"""Share links and the attention viewer's document, without a browser: a tiny model, milliseconds per test."""

from __future__ import annotations

import json

import pytest

from demo_core.decoding import OPTION
from demo_core.pipeline import ModelRegistry
from demo_core.serving import attention_view, links
from demo_core.serving.requests import decode_defaults, decode_request
from demo_core.serving.views import ALL_HEADS, AVERAGE_HEADS, ENCODER
from tests.tiny import save_tiny_model


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> ModelRegistry:
    root = tmp_path_factory.mktemp("link-models")
    save_tiny_model(root / "tiny-transformer", "transformer", model_config=dict(enc_layers=2, dec_layers=2))
    return ModelRegistry(root)


@pytest.fixture(scope="module")
def result(registry):
    return decode_request(registry, "a b c", "tiny-transformer", dict(decode_defaults(registry, "tiny-transformer"),
                                                                       strategy="beam", beam_size=3, n_best=3))


def test_a_link_reopens_the_state_it_was_made_from(registry):
    """link_query → read_link gives back model, text, the changed options and the view (1-based in the link)."""
    query = links.link_query(registry, "tiny-transformer", "a b & c?", {"strategy": "beam", "beam_size": 3},
                             hypothesis=1, view=ENCODER, layer=0, head=2)
    params = dict(pair.split("=", 1) for pair in query[1:].split("&"))
    assert params["hyp"] == "2" and params["layer"] == "1" and params["head"] == "3"
    from urllib.parse import parse_qsl
    link = links.read_link(registry, dict(parse_qsl(query[1:])))
    assert (link.model, link.text, link.hypothesis, link.view, link.layer, link.head) == (
        "tiny-transformer", "a b & c?", 1, ENCODER, 0, 2)
    assert link.options["beam_size"] == 3 and not link.problems


def test_a_link_leaves_out_starting_values(registry):
    """Options at the model's starting value (and an automatic max length) are not in the link."""
    starts = decode_defaults(registry, "tiny-transformer")
    query = links.link_query(registry, "tiny-transformer", "x", dict(starts, max_len=0), head=AVERAGE_HEADS)
    assert set(dict(p.split("=", 1) for p in query[1:].split("&"))) == {"model", "text"}


def test_bad_link_values_are_dropped_with_a_message_naming_them(registry):
    """An unknown model, a bad option and a bad view value each give their own message; the rest applies."""
    link = links.read_link(registry, {"model": "nope", "beam_size": "99", "head": "zero", "text": "ok", "hyp": "0"})
    assert link.model is None and link.text == "ok" and "beam_size" not in link.options
    joined = " | ".join(link.problems)
    assert "'nope'" in joined and "beam_size" in joined and "head=" in joined and "hyp=" in joined
    assert links.read_link(registry, {"head": "all"}).head == ALL_HEADS


def test_viewer_document_rows_are_distributions(result):
    """The viewer's matrix has one row per output token and one column per source token, each row summing to 1."""
    doc = attention_view.payload(result)
    weights = doc["panels"][0]["weights"]
    assert len(weights) == len(doc["rows"]) == len(result.best.pieces)
    assert all(len(row) == len(doc["cols"]) == len(result.source_pieces) for row in weights)
    assert all(abs(sum(row) - 1) < 0.01 for row in weights)
    assert len(doc["probs"]) == len(doc["rows"]) and doc["meta"]["model"] == "tiny-transformer"


def test_viewer_grid_has_one_panel_per_head_and_other_hypotheses_differ(result):
    """The grid sends every head of the layer; another hypothesis sends its own rows; JSON stays compact."""
    heads = result.best.attention.shape[2]
    grid = attention_view.payload(result, 0, 0, ALL_HEADS)
    assert len(grid["panels"]) == heads and grid["meta"]["head"] == "all"
    second = attention_view.payload(result, 1)
    assert second["meta"]["hypothesis"] == 2 and len(second["rows"]) == len(result.hypotheses[1].pieces)
    text = attention_view.to_json(grid)
    assert json.loads(text) == grid and ", \"" not in text  # no spaces after separators


def test_out_of_range_choices_fall_back(result):
    """A stale hypothesis, layer or head falls back to the first, the last layer and the head average."""
    doc = attention_view.payload(result, 99, 99, 99)
    assert doc["meta"]["hypothesis"] == 1 and doc["meta"]["layer"] == doc["meta"]["layers"] and doc["meta"]["head"] == "average"


@pytest.mark.parametrize("theme, background", [("light", attention_view.LIGHT_BACKGROUND),
                                               ("dark", attention_view.DARK_BACKGROUND)])
def test_colour_scale_recedes_at_zero_and_stands_out_at_one(theme, background):
    """Weight 0 is near the background, weight 1 has strong contrast, and contrast grows with the weight."""
    ratios = [attention_view.contrast(attention_view.colour_at(theme, w / 20), background) for w in range(21)]
    assert ratios[0] < 1.3 and ratios[-1] >= 7
    assert all(b >= a - 0.05 for a, b in zip(ratios, ratios[1:], strict=False))


def test_viewer_script_has_its_scales_filled_in():
    """The JavaScript gets the same colour stops the tests check."""
    assert "__SCALES__" not in attention_view.script() and json.dumps(attention_view.SCALES) in attention_view.script()
    assert OPTION["seed"].name == "seed"  # the link reader checks options through the same OPTION table


def test_the_lab_document_follows_the_decode_and_reshapes_without_decoding(registry):
    """The viewer's lab data: one entry per output step whose written token is marked, adjusted probabilities that
    sum to at most 1 over the shown candidates, and a new temperature changing the adjusted but not the raw ones."""
    from demo_core.serving import lab_view

    result = decode_request(registry, "a b c", "tiny-transformer", dict(decode_defaults(registry, "tiny-transformer"),
                                                                        strategy="sample", num_samples=2, seed=3))
    translator, cache = registry.get("tiny-transformer"), lab_view.LabCache()
    lab = cache.get(translator, result)
    assert cache.get(translator, result) is lab  # kept while the result lives
    doc = lab_view.lab_document(lab, result, 0)
    assert len(doc["steps"]) == len(result.best.ids) and doc["tree"] is None
    for step, token in zip(doc["steps"], result.best.ids, strict=True):
        chosen = [c for c in step["top"] if c[4]]
        assert len(chosen) == 1 and chosen[0][5] == token and chosen[0][3] is None  # the written token was never cut
        assert sum(c[2] for c in step["top"]) <= 1.0001
    hot = lab_view.lab_document(lab, result, 0, lab_view.settings_config(result, {"temperature": 3.0, "top_p": None}))
    assert [c[1] for c in hot["steps"][0]["top"]] == [c[1] for c in doc["steps"][0]["top"]]  # the model's own: unchanged
    assert [c[2] for c in hot["steps"][0]["top"]] != [c[2] for c in doc["steps"][0]["top"]]
    with pytest.raises(Exception, match="temperature"):
        lab_view.settings_config(result, {"temperature": -1})


def test_a_tree_node_shows_its_path_and_a_branch_shows_both_outputs(registry):
    """Beam search: a node's document has the path to it as rows; branching with the written token at step 1
    gives the branch picture with both outputs and the forced count; a bad node is refused by name."""
    from demo_core.pipeline import InputError
    from demo_core.serving import lab_view

    result = decode_request(registry, "a b c", "tiny-transformer", dict(decode_defaults(registry, "tiny-transformer"),
                                                                        strategy="beam", beam_size=3, n_best=3))
    translator = registry.get("tiny-transformer")
    lab = lab_view.LabCache().get(translator, result)
    doc = lab_view.lab_document(lab, result, 0)
    kept = [n for n in doc["tree"]["nodes"] if n[5] == "kept" and n[4] == 2]
    path = lab_view.path_document(lab, result, kept[0][0], None, AVERAGE_HEADS)
    assert len(path["rows"]) == 2 and path["meta"]["node"] == kept[0][0] and path["lab"]["tree"]
    with pytest.raises(InputError, match="node 99999"):
        lab_view.path_document(lab, result, 99999, None, AVERAGE_HEADS)
    picture = lab_view.branch_picture(translator, result, 0, {"step": 1, "token": result.best.ids[0]}, None, AVERAGE_HEADS)
    assert picture["branch"]["forced"] == 1 and picture["branch"]["original"]
    with pytest.raises(InputError):
        lab_view.branch_picture(translator, result, 0, {"step": 1, "word": ""}, None, AVERAGE_HEADS)
