"""Every decoding option reaches the page, the API and the command line by the same name, with the same default.

The options are defined once (``demo_core.decoding.OPTIONS``); these tests walk that list, so a
new option that one of the three forgets fails here. The page and the API are
``app.build_demo`` over a folder holding the tiny RNN.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from demo_core import generate
from demo_core.decoding import OPTION, OPTIONS
from demo_core.decoding.config import coerce
from demo_core.serving.requests import COMPARE_SHARED
from tests.serving import demo_for, serving

REPO = Path(__file__).resolve().parent.parent
TEXT = "zwei kinder spielen im schnee"
# A valid value other than the default for every option: sent by name, each must come back in the result's config.
CHOSEN = {"strategy": "beam", "beam_size": 3, "length_penalty": 0.5, "n_best": 2, "temperature": 0.7, "top_k": 4,
          "top_p": 0.9, "seed": 7, "num_samples": 2, "max_len": 6, "no_repeat_ngram": 2, "repetition_penalty": 1.2}


@pytest.fixture(scope="module")
def demo(tiny_model_dir):
    """The page and API over the tiny RNN's folder."""
    return demo_for(tiny_model_dir.parent)


@pytest.fixture(scope="module")
def api(demo) -> dict:
    """The served page's API description, as a client sees it: endpoint -> parameter name -> its entry."""
    with serving(demo) as url:
        client = Client(url, verbose=False, analytics_enabled=False)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        answer = client.predict(TEXT, "tiny-rnn", **CHOSEN, api_name="/generate")
    return {"answer": answer, **{name: {p["parameter_name"]: p for p in e["parameters"]} for name, e in endpoints.items()}}


def generate_parser(monkeypatch) -> argparse.ArgumentParser:
    """The parser ``python -m demo_core.generate`` builds, caught when it parses."""
    caught = []

    def catch(parser, *args, **kwargs):
        caught.append(parser)
        raise SystemExit(0)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(SystemExit):
            generate.main([])
    return caught[0]


def test_chosen_values_cover_every_option():
    """The values sent below name every option, and each is valid (a new option must be added here)."""
    assert set(CHOSEN) == set(OPTION)
    for name, value in CHOSEN.items():
        OPTION[name].check(coerce(OPTION[name], value))
        assert value != OPTION[name].default, name


@pytest.mark.parametrize("opt", OPTIONS, ids=[o.name for o in OPTIONS])
def test_every_option_is_a_cli_flag_with_its_default(opt, monkeypatch):
    """``demo_core.generate`` has ``--the-option`` for every option, read into the option's name, with its default."""
    parser = generate_parser(monkeypatch)
    assert parser.get_default(opt.name) == opt.default
    assert getattr(parser.parse_args([opt.flag, str(CHOSEN[opt.name])]), opt.name) == CHOSEN[opt.name]


@pytest.mark.parametrize("opt", OPTIONS, ids=[o.name for o in OPTIONS])
def test_every_option_is_a_generate_parameter_with_its_default(api, opt):
    """/generate has a parameter named after every option, defaulting to the option's default."""
    parameter = api["/generate"][opt.name]
    assert parameter["parameter_has_default"] and parameter["parameter_default"] == opt.default


@pytest.mark.parametrize("opt", OPTIONS, ids=[o.name for o in OPTIONS])
def test_every_option_has_a_page_control_starting_at_its_start(demo, opt):
    """The Explore tab has a control per option, labelled as the option, whose starting value means the option's
    page start (its default, or the ``page_value`` it declares)."""
    control = demo.page.controls[opt.name]
    assert control.label == opt.label
    assert control.elem_id == ("strategy" if opt.name == "strategy" else f"option-{opt.name}")
    assert coerce(opt, control.value) == coerce(opt, opt.start)


def test_page_has_no_control_beyond_the_options(demo):
    """The Explore tab's decoding controls are exactly the options."""
    assert list(demo.page.controls) == [o.name for o in OPTIONS]


@pytest.mark.parametrize("name", COMPARE_SHARED)
def test_compare_shares_options_by_name_with_their_defaults(demo, api, name):
    """/compare and the Compare tab take each shared option by its name: the API with its default, the page's
    control starting at its page start."""
    opt = OPTION[name]
    parameter = api["/compare"][name]
    assert parameter["parameter_has_default"] and parameter["parameter_default"] == opt.default
    control = demo.page.shared_controls[name]
    assert control.label == opt.label and coerce(opt, control.value) == coerce(opt, opt.start)


def test_compare_takes_only_the_shared_options(demo, api):
    """Besides the text, models and strategies, /compare and the Compare tab take exactly the shared options
    (the API then what its reply carries, ``attention``)."""
    sides = ["text", "model_a", "strategy_a", "model_b", "strategy_b"]
    assert list(api["/compare"]) == [*sides, *COMPARE_SHARED, "attention"]
    assert list(demo.page.shared_controls) == list(COMPARE_SHARED)


def test_options_sent_by_name_to_the_api_reach_the_decoder(api):
    """Every option given to /generate by name is the value the decoder ran with."""
    config = api["answer"]["config"]
    assert {name: config[name] for name in CHOSEN} == CHOSEN
    assert len(api["answer"]["hypotheses"]) == CHOSEN["n_best"]


def test_options_given_as_flags_reach_the_decoder(tiny_model_dir):
    """Every option given to ``demo_core.generate`` as a flag is the value the decoder ran with."""
    flags = [part for name, value in CHOSEN.items() for part in (OPTION[name].flag, str(value))]
    out = subprocess.run([sys.executable, "-m", "demo_core.generate", "--model", "tiny-rnn", "--json",
                          "--checkpoints", str(tiny_model_dir.parent), *flags],
                         input=TEXT + "\n", capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)["config"]
    assert {name: config[name] for name in CHOSEN} == CHOSEN
