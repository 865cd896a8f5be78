"""The TorchScript loops (``models.transformer_script``) compute exactly what the Python fused step does.

The served Transformers decode through ``decoder_step`` (every strategy) and ``greedy_loop``
(plain greedy); switching them off (``PackedDecoder._scripted = None``) runs the same operations
from Python. The outputs must be identical, not merely close: same ids, same float log-probs,
alternatives and attention, on the shipped models, folded and plain cross-attention.
"""

from __future__ import annotations

import copy

import pytest
import torch

from demo_core.decoding import DecodeConfig, decode, greedy_search
from demo_core.decoding.search import decode_batch
from demo_core.models import transformer_fast
from demo_core.models.cpu import quantize_for_cpu
from demo_core.models.transformer_fast import FOLD_MAX_POSITIONS
from demo_core.pipeline import Translator
from demo_core.tasks.datasets import pad
from demo_core.text.tokenizer import BOS_ID, PAD_ID
from tests.test_transformer import eval_model, shipped_transformers


def python_step(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of a served model whose fused step and encoder run from Python."""
    twin = copy.deepcopy(model)
    with torch.inference_mode():
        twin.encode(torch.tensor([[BOS_ID]]))  # binds the direct calls; then the scripts are switched off
    twin.packed_decoder._bound()
    twin.packed_decoder._scripted = None
    twin.packed_encoder._scripted = None
    return twin


def assert_identical(a: list, b: list) -> None:
    assert [h.ids for h in a] == [h.ids for h in b]
    for x, y in zip(a, b, strict=True):
        assert x.token_logprobs == y.token_logprobs and x.score == y.score and x.finished == y.finished
        assert x.alt_ids == y.alt_ids and x.alt_probs == y.alt_probs
        assert x.normalized_score == y.normalized_score
        assert torch.equal(x.attention, y.attention)


@pytest.fixture(scope="module", params=shipped_transformers())
def served(request: pytest.FixtureRequest) -> tuple[Translator, torch.nn.Module, torch.nn.Module]:
    translator = Translator.from_dir(translator_dir(request.param))
    model = quantize_for_cpu(translator.model, "fp16")
    return translator, model, python_step(model)


def translator_dir(model_id: str):  # noqa: ANN201
    from demo_core.checkpoint import DEFAULT_ROOT

    return DEFAULT_ROOT / model_id


def test_the_served_form_takes_the_scripts(served: tuple) -> None:
    """Plain greedy runs as one loop; the encoder and every other step run as scripts too."""
    translator, model, python = served
    src = torch.tensor([translator.source_ids(translator.card.examples[0])])
    with torch.inference_mode():
        memory = model.encode(src)
        trace = model.greedy_trace(memory, torch.tensor([BOS_ID]), 40, 5)
        assert model.packed_encoder._scripted is not None and model.packed_decoder._scripted is not None
        assert trace is not None and trace.tokens.shape[1] == 1
        assert trace.attention.shape[1:] == (1, model.cfg.dec_layers, model.cfg.n_heads, src.size(1))
        assert python.greedy_trace(python.encode(src), torch.tensor([BOS_ID]), 40, 5) is None  # scripts off: the Python loop
        assert model.greedy_trace(memory, torch.tensor([BOS_ID]), model.cfg.max_positions + 1, 5) is None  # past the positions


def test_encoder_script_gives_the_python_encoders_memory(served: tuple) -> None:
    translator, model, python = served
    batch = pad([translator.source_ids(text) for text in translator.card.examples])
    with torch.inference_mode():
        a, b = model.encode(batch), python.encode(batch)
    for name in ("cross_k", "cross_v", "self_attention", "cross_scores", "cross_score_bias", "cross_values"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("cfg", [
    DecodeConfig(), DecodeConfig(alternatives=0), DecodeConfig(alternatives=20, max_len=7),
    DecodeConfig(strategy="beam", beam_size=5), DecodeConfig(strategy="sample", num_samples=4, seed=3, top_p=0.9),
    DecodeConfig(repetition_penalty=1.3, no_repeat_ngram=2),
], ids=["greedy", "no-alternatives", "cut", "beam", "sample", "repetition"])
def test_every_strategy_decodes_identically(served: tuple, cfg: DecodeConfig) -> None:
    """Short source (folded cross-attention) and long source (plain for 5 beams), each strategy."""
    translator, model, python = served
    for text in (translator.card.examples[0], " ".join(translator.card.examples * 2)):
        src = torch.tensor([translator.source_ids(text)])
        with torch.inference_mode():
            assert_identical(decode(model, src, cfg)[0], decode(python, src, cfg)[0])


def test_batches_decode_identically_folded_or_not(served: tuple) -> None:
    """A small batch reads the memory folded, a large one the plain way; both as the Python loop,
    through ``greedy_search`` (the loop) and ``decode_batch`` (the step, rows leaving at EOS)."""
    translator, model, python = served
    for copies in (1, 8):
        texts = translator.card.examples * copies
        batch = pad([translator.source_ids(text) for text in texts])
        assert (batch.size(0) * batch.size(1) <= FOLD_MAX_POSITIONS) == (copies == 1)
        with torch.inference_mode():
            assert_identical(greedy_search(model, batch, DecodeConfig()), greedy_search(python, batch, DecodeConfig()))
            for cfg in (DecodeConfig(), DecodeConfig(alternatives=0), DecodeConfig(max_len_a=0.5, max_len_b=2, alternatives=3)):
                got, want = decode_batch(model, batch, cfg), decode_batch(python, batch, cfg)
                for a, b in zip(got, want, strict=True):
                    assert_identical(a, b)
        assert len({len(h.ids) for (h,) in got}) > 1  # the rows ended at different steps and left the batch


def test_a_batch_decodes_in_one_call(served: tuple, monkeypatch) -> None:
    """``decode_batch``'s plain greedy batch is one TorchScript loop (``rows_loop``), not a step call per step; a
    batch whose limit passes the model's positions falls back to the Python loop."""
    translator, model, _ = served
    calls: list[str] = []
    real = transformer_fast.compiled

    def counted(name: str):  # noqa: ANN202
        calls.append(name)
        return real(name)

    monkeypatch.setattr(transformer_fast, "compiled", counted)
    batch = pad([translator.source_ids(text) for text in translator.card.examples])
    with torch.inference_mode():
        memory = model.encode(batch)
        assert calls == ["encoder"]
        hyps = decode_batch(model, batch, DecodeConfig(), memory=memory)
        assert calls == ["encoder", "rows_loop"] and all(h.ids for (h,) in hyps)
        too_long = torch.full((batch.size(0),), model.cfg.max_positions + 1)
        assert model.batch_paths(memory, torch.full((batch.size(0),), BOS_ID), too_long, 5, 5,
                                  [batch.size(1)] * batch.size(0)) is None


def test_packed_small_layers_fall_back_to_python() -> None:
    """Layers the scripts do not lay out (packed, int8) keep the Python step, which still decodes."""
    for weights in ("fp16", "int8"):
        model = quantize_for_cpu(eval_model(packed=False), weights, min_packed=0)
        src = torch.tensor([[5, 6, 7, PAD_ID + 3]])
        with torch.inference_mode():
            model.encode(src)
            hyp = greedy_search(model, src, DecodeConfig(max_len=5))[0]
            assert model.packed_decoder._scripted is None and model.packed_encoder._scripted is None
            assert model.greedy_trace(model.encode(src), torch.tensor([BOS_ID]), 5, 5) is None
        assert 1 <= len(hyp.ids) <= 5


def assert_one_row_batches_identical(translator: Translator, model: torch.nn.Module, python: torch.nn.Module) -> None:
    """``decode_batch`` of one row (a lone request that the batcher takes), down to a one-token limit, gives what
    the Python loop gives."""
    src = pad([translator.source_ids(translator.card.examples[0])])
    for cfg in (DecodeConfig(), DecodeConfig(max_len=1), DecodeConfig(alternatives=20)):
        with torch.inference_mode():
            assert_identical([h for (h,) in decode_batch(model, src, cfg)], [h for (h,) in decode_batch(python, src, cfg)])


def test_a_batch_of_one_row_decodes_identically(served: tuple) -> None:
    assert_one_row_batches_identical(*served)


SAMPLING = (DecodeConfig(strategy="sample", num_samples=3, temperature=3.0),
            DecodeConfig(strategy="sample", num_samples=4, top_k=20, top_p=0.9, alternatives=2),
            DecodeConfig(strategy="sample", num_samples=1, temperature=0.7, max_len_a=0.5, max_len_b=2))


def assert_sampled_batches_identical(translator: Translator, model: torch.nn.Module, python: torch.nn.Module,
                                     texts: list[str]) -> None:
    """A batch of sampling requests, each source with its own seed, draws in the model's TorchScript loop exactly
    the tokens, log-probs, alternatives and attention that ``decode_batch``'s Python loop draws; the samples of a
    source end at different steps, so finished rows draw from the dummy distribution while the others go on."""
    batch = pad([translator.source_ids(text) for text in texts])
    seeds = [17 * b + 1 for b in range(batch.size(0))]
    apart = 0
    for cfg in SAMPLING:
        with torch.inference_mode():
            got, want = decode_batch(model, batch, cfg, seeds=seeds), decode_batch(python, batch, cfg, seeds=seeds)
        for a, b in zip(got, want, strict=True):
            assert_identical(a, b)
            apart += len({len(h.ids) for h in a}) > 1
    assert apart > 0  # some source's samples ended at different steps


def test_sampled_batches_decode_identically_folded_or_not(served: tuple) -> None:
    translator, model, python = served
    for copies in (1, 8):
        assert_sampled_batches_identical(translator, model, python, translator.card.examples * copies)


def test_a_sampled_batch_decodes_in_one_call(served: tuple, monkeypatch) -> None:
    """A batch of sampling requests is one TorchScript loop too, generators passed in."""
    translator, model, _ = served
    calls: list[str] = []
    real = transformer_fast.compiled
    monkeypatch.setattr(transformer_fast, "compiled", lambda name: calls.append(name) or real(name))
    batch = pad([translator.source_ids(text) for text in translator.card.examples])
    with torch.inference_mode():
        hyps = decode_batch(model, batch, SAMPLING[0], memory=model.encode(batch))
    assert calls == ["encoder", "rows_loop"] and all(len(h) == 3 and all(s.ids for s in h) for h in hyps)
