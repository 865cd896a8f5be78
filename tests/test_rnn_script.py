"""The RNN's TorchScript greedy loop (``models.rnn_script``) computes exactly what the Python loop does.

The served RNNs decode plain greedy requests through ``RNNGreedy`` (``greedy_search`` for one
source, ``decode_batch`` for a batch, rows leaving at their end); switching it off
(``scripted_greedy = None``) runs the same modules from Python. The outputs must be identical,
not merely close, on every shipped text RNN.
"""

from __future__ import annotations

import copy

import pytest
import torch

from demo_core.checkpoint import DEFAULT_ROOT, find_models
from demo_core.decoding import DecodeConfig, decode, greedy_search
from demo_core.decoding.search import decode_batch
from demo_core.models.cpu import quantize_for_cpu
from demo_core.pipeline import Translator
from demo_core.tasks.datasets import pad
from demo_core.text.tokenizer import BOS_ID
from tests.test_transformer_script import SAMPLING, assert_identical, assert_one_row_batches_identical, assert_sampled_batches_identical


def shipped_rnns() -> list[str]:
    return [e.id for e in find_models(DEFAULT_ROOT) if e.available and e.card.architecture == "rnn"]


@pytest.fixture(scope="module", params=shipped_rnns())
def served(request: pytest.FixtureRequest) -> tuple[Translator, torch.nn.Module, torch.nn.Module]:
    translator = Translator.from_dir(DEFAULT_ROOT / request.param)
    model = quantize_for_cpu(translator.model, "fp16")
    python = copy.deepcopy(model)
    python.__dict__["scripted_greedy"] = None  # the same modules, stepped from Python
    return translator, model, python


def test_the_served_form_takes_the_script(served: tuple) -> None:
    translator, model, python = served
    src = torch.tensor([translator.source_ids(translator.card.examples[0])])
    with torch.inference_mode():
        memory = model.encode(src)
        trace = model.greedy_trace(memory, torch.tensor([BOS_ID]), 30, 5)
        assert trace is not None and trace.attention.shape[1:] == (1, 1, 1, src.size(1))
        assert python.greedy_trace(memory, torch.tensor([BOS_ID]), 30, 5) is None
        assert model.greedy_trace(memory.select(torch.tensor([0, 0])), torch.tensor([BOS_ID] * 2), 30, 5) is None
    assert "scripted_greedy" not in dict(model.named_modules())  # not a submodule: state_dict has no second copy


@pytest.mark.parametrize("cfg", [
    DecodeConfig(), DecodeConfig(alternatives=0), DecodeConfig(alternatives=20, max_len=4),
    DecodeConfig(strategy="beam", beam_size=3), DecodeConfig(strategy="beam", beam_size=5, n_best=5),
    DecodeConfig(strategy="beam", beam_size=4, no_repeat_ngram=2, repetition_penalty=1.3),
    DecodeConfig(strategy="sample", num_samples=3, seed=7, temperature=0.8, top_p=0.9),
    DecodeConfig(no_repeat_ngram=2)],  # greedy with a repetition option: stepped, not the greedy loop
    ids=["greedy", "no-alternatives", "cut", "beam", "beam-5", "beam-repetition", "sample", "greedy-repetition"])
def test_one_source_decodes_identically(served: tuple, cfg: DecodeConfig) -> None:
    translator, model, python = served
    for text in translator.card.examples[:2]:
        src = torch.tensor([translator.source_ids(text)])
        with torch.inference_mode():
            assert_identical(decode(model, src, cfg)[0], decode(python, src, cfg)[0])


def test_every_strategy_but_plain_greedy_steps_through_the_script(served: tuple, monkeypatch) -> None:
    """Beam search calls ``RNNGreedy.step`` (one TorchScript call a step), not the modules from Python."""
    translator, model, python = served
    calls: list[int] = []
    script = model.scripted_greedy

    class Counting:
        def step(self, *args):  # noqa: ANN002, ANN202
            calls.append(1)
            return script.step(*args)

        def __getattr__(self, name: str):  # noqa: ANN204 (encode and init_hidden: the script's own)
            return getattr(script, name)

    monkeypatch.setitem(model.__dict__, "scripted_greedy", Counting())
    src = torch.tensor([translator.source_ids(translator.card.examples[0])])
    with torch.inference_mode():
        hyps, _ = decode(model, src, DecodeConfig(strategy="beam", beam_size=3, max_len=6))
    assert len(calls) == len(max((h.ids for h in hyps), key=len)) > 0


def test_batches_decode_identically_rows_leaving_at_their_end(served: tuple) -> None:
    """Sources of different lengths end at different steps (EOS or their own limit) and leave the batch."""
    translator, model, python = served
    texts = translator.card.examples * 2
    batch = pad([translator.source_ids(text) for text in texts])
    for cfg in (DecodeConfig(), DecodeConfig(alternatives=0), DecodeConfig(max_len_a=0.5, max_len_b=2, alternatives=3)):
        with torch.inference_mode():
            got, want = decode_batch(model, batch, cfg), decode_batch(python, batch, cfg)
            assert_identical([h for (h,) in got], [h for (h,) in want])
            assert_identical(greedy_search(model, batch, cfg), greedy_search(python, batch, cfg))  # several rows: the Python loop
    assert len({len(h.ids) for (h,) in got}) > 1  # the rows did end at different steps


def test_the_script_encodes_as_python_does(served: tuple) -> None:
    """``RNNGreedy.encode`` and ``init_hidden`` give the Python encoder's memory and first state, bit for bit, for
    a batch in any order of lengths (the encoder sorts and unsorts its rows) and for one source."""
    translator, model, python = served
    texts = translator.card.examples
    for batch in (texts, texts[::-1], texts[:1]):
        src = pad([translator.source_ids(text) for text in batch])
        with torch.inference_mode():
            got, want = model.encode(src), python.encode(src)
            for name in ("values", "keys", "mask"):
                assert torch.equal(getattr(got, name), getattr(want, name)), name
            state, expected = model.init_state(got), python.init_state(want)
        assert torch.equal(state.hidden, expected.hidden)
        assert (state.feed is None) == (expected.feed is None)
        assert state.feed is None or torch.equal(state.feed, expected.feed)


@pytest.mark.parametrize("cfg", [DecodeConfig(), SAMPLING[1]], ids=["greedy", "sample"])
def test_a_batch_decodes_in_three_script_calls(served: tuple, cfg: DecodeConfig, monkeypatch) -> None:
    """A batch of plain greedy or sampling requests (``run_together``'s path) is encoded, started and decoded by one
    TorchScript call each (a sampling batch passes its generators in), so the decode hardly ever waits for Python's
    lock on a busy server."""
    translator, model, python = served
    calls: list[str] = []
    script = model.scripted_greedy

    class Counting:
        def __getattr__(self, name: str):  # noqa: ANN204
            calls.append(name)
            return getattr(script, name)

    monkeypatch.setitem(model.__dict__, "scripted_greedy", Counting())
    batch = pad([translator.source_ids(text) for text in translator.card.examples])
    with torch.inference_mode():
        hyps = decode_batch(model, batch, cfg, memory=model.encode(batch))
    assert calls == ["encode", "init_hidden", "rows"]
    assert len(hyps) == batch.size(0) and all(len(h) == cfg.num_samples and all(s.ids for s in h) for h in hyps)


def test_a_batch_of_one_row_decodes_identically(served: tuple) -> None:
    assert_one_row_batches_identical(*served)


def test_sampled_batches_decode_identically(served: tuple) -> None:
    translator, model, python = served
    assert_sampled_batches_identical(translator, model, python, translator.card.examples * 2)

