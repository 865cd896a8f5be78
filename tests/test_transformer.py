"""Tests of the Transformer encoder-decoder: cache, attention weights, toy task, decoders, fused CPU step.

    python -m pytest tests/test_transformer.py -q

Tiny dimensions (d_model 32, 4 heads, 2 layers) keep the whole file well under a minute on CPU.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from demo_core.decoding import DecodeConfig, beam_search, decode, greedy_search, sample
from demo_core.models.registry import build_model, count_parameters
from demo_core.models.transformer import CACHE_CAPACITY, TransformerSeq2Seq
from demo_core.tasks.datasets import collate, pad
from demo_core.tasks.toy import alignment_accuracy, toy_sources, train_toy
from demo_core.text.tokenizer import BOS_ID, PAD_ID
from tests.tiny import tiny_transformer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Run this module on one thread (shared machine, reproducible sums); restore afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(vocab: int = 50, **overrides: object) -> TransformerSeq2Seq:
    """A tiny Transformer with dropout on (so a test sees that eval mode turns it off)."""
    return tiny_transformer(vocab, **{"dropout": 0.1, "attention_dropout": 0.1, **overrides})


def padded_batch(vocab: int, lengths: list[int], seed: int = 0) -> torch.Tensor:
    """[B, max(lengths)] random non-special ids, right-padded with PAD_ID."""
    generator = torch.Generator().manual_seed(seed)
    return pad([torch.randint(4, vocab, (n,), generator=generator).tolist() for n in lengths])


@pytest.fixture(scope="module")
def toy_transformer() -> TransformerSeq2Seq:
    """A 2+2-layer model trained on digit reversal (about 10-20 s on one thread)."""
    return train_toy(tiny_transformer(share_embeddings=True), steps=600, lr=3e-3, seed=0)


def eval_model(packed: bool, **overrides: object) -> TransformerSeq2Seq:
    """A tiny eval-mode model; ``packed`` switches its decoding to the fused step (``prepare_for_cpu``)."""
    model = tiny_model(**overrides).eval()
    if packed:
        model.prepare_for_cpu("fp16", min_packed=10**9)  # fused step, every layer left fp32
    return model


@pytest.mark.parametrize("packed", [False, True], ids=["modules", "fused"])
@pytest.mark.parametrize("share_embeddings", [False, True])
def test_cached_decoding_matches_teacher_forcing(share_embeddings: bool, packed: bool) -> None:
    """Step-by-step decoding with the key/value cache (module or fused step) gives the log-probs of one full forward pass."""
    model = eval_model(packed, share_embeddings=share_embeddings)
    src = padded_batch(50, [7, 3, 5], seed=1)
    tgt = padded_batch(50, [6, 2, 4], seed=2)
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), tgt], dim=1)  # padded rows keep feeding PAD
    with torch.no_grad():
        full = F.log_softmax(model(src, tgt_in), dim=-1)  # [B, T, V]
        memory = model.encode(src)
        state = model.init_state(memory)
        steps = []
        for t in range(tgt_in.size(1)):
            log_probs, state, _ = model.decode_step(memory, state, tgt_in[:, t])
            steps.append(log_probs)
    assert state.length == tgt_in.size(1) and state.self_k.shape[:3] == (3, 2, 4)
    torch.testing.assert_close(torch.stack(steps, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("packed", [False, True], ids=["modules", "fused"])
def test_cache_grows_past_its_first_capacity(packed: bool) -> None:
    """Decoding past the preallocated cache (which then doubles) still matches the full forward pass."""
    model = eval_model(packed)
    src = padded_batch(50, [5, 9], seed=5)
    T = 2 * CACHE_CAPACITY + 3  # two doublings
    tgt_in = torch.cat([torch.full((2, 1), BOS_ID), padded_batch(50, [T - 1, T - 1], seed=6)], dim=1)
    with torch.no_grad():
        full = F.log_softmax(model(src, tgt_in), dim=-1)  # [B, T, V]
        memory = model.encode(src)
        state = model.init_state(memory)
        steps = []
        for t in range(T):
            log_probs, state, _ = model.decode_step(memory, state, tgt_in[:, t])
            steps.append(log_probs)
    assert state.length == T and state.self_k.size(3) == 4 * CACHE_CAPACITY
    torch.testing.assert_close(torch.stack(steps, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("packed", [False, True], ids=["modules", "fused"])
def test_attention_rows_sum_to_one_and_padding_gets_zero(packed: bool) -> None:
    """Every head's cross- and encoder self-attention row sums to 1; padded source positions get exactly 0."""
    model = eval_model(packed)
    src = padded_batch(50, [6, 2, 4], seed=3)
    mask = src != PAD_ID  # [B, S]
    with torch.no_grad():
        memory = model.encode(src)
        state = model.init_state(memory)
        prev = torch.full((3,), BOS_ID)
        for _ in range(4):
            log_probs, state, cross = model.decode_step(memory, state, prev)
            assert cross.shape == (3, 2, 4, src.size(1))  # [B, L, H, S]
            torch.testing.assert_close(cross.sum(-1), torch.ones(3, 2, 4))
            assert bool((cross.masked_select(~mask[:, None, None, :]) == 0).all())
            prev = log_probs.argmax(-1)
    enc = memory.self_attention  # [B, L, H, S, S]
    assert enc.shape == (3, 2, 4, src.size(1), src.size(1))
    real_rows = enc.sum(-1).masked_select(mask[:, None, None, :])
    torch.testing.assert_close(real_rows, torch.ones_like(real_rows))
    assert bool((enc.masked_select(~mask[:, None, None, None, :]) == 0).all())


def test_initial_loss_is_close_to_log_vocab() -> None:
    """The small embedding init makes the untrained model's loss close to ln(V) (a near-uniform guess)."""
    vocab = 500
    model = tiny_model(vocab=vocab).eval()
    generator = torch.Generator().manual_seed(4)
    lengths = [(8, 7), (5, 6), (9, 3), (4, 8)]  # (source, target)
    pairs = [tuple(torch.randint(4, vocab, (n,), generator=generator).tolist() for n in pair) for pair in lengths]
    src, tgt_in, tgt_out = collate(pairs)  # type: ignore[arg-type]
    with torch.no_grad():
        logits = model(src, tgt_in)
    loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID).item()
    assert abs(loss - math.log(vocab)) < 1.0


def test_learns_toy_reversal_with_mirrored_attention(toy_transformer: TransformerSeq2Seq) -> None:
    """Reversal is learned; the last layer's head-averaged cross-attention peaks at the mirrored source position."""
    # The last decoder layer is the one that reads the digit; the first layer's cross-attention
    # stays diffuse (argmax on the mirror for only ~25% of rows), so only the last is tested.
    exact, aligned = alignment_accuracy(toy_transformer, toy_sources(100), layer=-1)
    assert exact >= 0.9, f"only {exact:.0%} of reversals are right"
    assert aligned >= 0.9, f"only {aligned:.0%} of last-layer attention rows point at the mirrored position"


def test_shared_decoders_run_and_beam_of_one_is_greedy(toy_transformer: TransformerSeq2Seq) -> None:
    """Greedy, beam and sampling run unchanged on the Transformer, and a beam of width 1 returns the greedy output."""
    for source in toy_sources(8, seed=7):
        src = pad([source])
        greedy = greedy_search(toy_transformer, src, DecodeConfig(strategy="greedy"))[0]
        beam, tree = beam_search(toy_transformer, src, DecodeConfig(strategy="beam", beam_size=1))
        assert beam[0].ids == greedy.ids
        assert len(tree) > 1
        wide, _ = beam_search(toy_transformer, src, DecodeConfig(strategy="beam", beam_size=4))
        assert wide[0].attention.shape == (len(wide[0].ids), 2, 4, len(source))  # [T, L, H, S]
        samples = sample(toy_transformer, src, DecodeConfig(strategy="sample", num_samples=3, seed=0))
        assert len(samples) == 3 and all(h.attention.shape[1:] == (2, 4, len(source)) for h in samples)


def test_fused_step_gives_the_module_steps_outputs_and_attention(toy_transformer: TransformerSeq2Seq) -> None:
    """The fused decoder (what the app serves) returns the same hypotheses, scores and cross-attention
    as the module path under greedy and beam search, and training mode never uses it."""
    fused = copy.deepcopy(toy_transformer)
    fused.prepare_for_cpu("fp16", min_packed=10**9)
    assert fused.packed_decoder is not None and toy_transformer.packed_decoder is None
    for source in toy_sources(6, seed=9):
        src = pad([source])
        for cfg in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", beam_size=4)):
            (a, *_), _ = decode(fused, src, cfg)
            (b, *_), _ = decode(toy_transformer, src, cfg)
            assert a.ids == b.ids
            assert abs(a.score - b.score) < 1e-4
            torch.testing.assert_close(a.attention, b.attention, atol=1e-5, rtol=0)

    class Refuse(torch.nn.Module):
        def step(self, *args: object) -> None:
            raise AssertionError("the fused step was used")

    fused.packed_decoder = Refuse()
    with torch.no_grad():
        memory = fused.encode(pad([toy_sources(1)[0]]))
        with pytest.raises(AssertionError, match="fused step"):
            fused.decode_step(memory, fused.init_state(memory), torch.tensor([BOS_ID]))
        fused.train()  # training (dropout, gradients) always goes through the modules
        fused.decode_step(memory, fused.init_state(memory), torch.tensor([BOS_ID]))


@pytest.mark.parametrize("name", ["de-en-transformer", "en-de-transformer"])
def test_shipped_configs_build_compact_models(name: str) -> None:
    """The Multi30k Transformer configs build into compact models (at most 10.5M parameters; that the
    shipped models have exactly their configs' parameter counts is checked in test_datasets.py)."""
    cfg = json.loads((REPO / "configs" / f"{name}.json").read_text(encoding="utf-8"))
    vocab = cfg["tokenizer"]["vocab_size"]
    model = build_model(cfg["architecture"], dict(cfg["model"], src_vocab=vocab, tgt_vocab=vocab))
    assert count_parameters(model) <= 10_500_000


def shipped_transformers() -> list[str]:
    """The ids of the Transformers in checkpoints/."""
    from demo_core.checkpoint import DEFAULT_ROOT, find_models

    return [e.id for e in find_models(DEFAULT_ROOT) if e.available and e.card.architecture == "transformer"]


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "plain"])
def test_fused_step_matches_teacher_forcing_folded_or_not(fold: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused step gives the full forward pass's log-probs and the module step's cross-attention,
    with the cross-attention folded into the source or not (``FOLD_MAX_POSITIONS``), and its cache
    reorders like the module path's."""
    from demo_core.models import transformer_fast

    monkeypatch.setattr(transformer_fast, "FOLD_MAX_POSITIONS", 10**6 if fold else 0)
    model = eval_model(packed=True, share_embeddings=True)
    reference = eval_model(packed=False, share_embeddings=True)  # same seed: the same weights
    src = padded_batch(50, [7, 3, 5], seed=1)
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), padded_batch(50, [6, 2, 4], seed=2)], dim=1)
    order = torch.tensor([2, 0, 0])  # reorder and copy rows halfway, as beam search does
    with torch.no_grad():
        full = F.log_softmax(model(src[order], tgt_in[order]), dim=-1)  # [B, T, V]: the rows after reordering
        memory, memory_ref = model.encode(src), reference.encode(src)
        assert (memory.cross_scores is not None) == fold and memory_ref.cross_scores is None
        state, state_ref = model.init_state(memory), reference.init_state(memory_ref)
        for t in range(tgt_in.size(1)):
            if t == 3:
                memory, memory_ref = memory.select(order), memory_ref.select(order)
                state, state_ref = state.select(order), state_ref.select(order)
            tokens = tgt_in[:, t] if t < 3 else tgt_in[order, t]
            log_probs, state, attention = model.decode_step(memory, state, tokens)
            log_probs_ref, state_ref, attention_ref = reference.decode_step(memory_ref, state_ref, tokens)
            if t >= 3:
                torch.testing.assert_close(log_probs, full[:, t], atol=1e-5, rtol=0)
            torch.testing.assert_close(log_probs, log_probs_ref, atol=1e-5, rtol=0)
            torch.testing.assert_close(attention, attention_ref, atol=1e-5, rtol=0)
    assert state.self_k.shape == state_ref.self_k.shape  # [B, L, H, capacity, d], as the module path's state
    torch.testing.assert_close(state.self_v[:, :, :, : state.length], state_ref.self_v[:, :, :, : state.length], atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_id", shipped_transformers())
def test_shipped_transformers_decode_the_same_on_the_served_fast_path(model_id: str) -> None:
    """On the shipped Transformers, the form the app serves (fused step, fp16-packed output projection)
    gives the module path's hypotheses: the same token ids, scores and log-probs, and attention, for
    greedy and beam 5 on a short sentence (cross-attention folded) and a long one (beam 5 reads it
    the plain way), and for a batch too large to fold."""
    from demo_core.checkpoint import DEFAULT_ROOT
    from demo_core.models.cpu import quantize_for_cpu
    from demo_core.models.transformer_fast import FOLD_MAX_POSITIONS
    from demo_core.pipeline import Translator

    translator = Translator.from_dir(DEFAULT_ROOT / model_id)  # fp32, module path
    reference = translator.model
    served = quantize_for_cpu(reference, "fp16")
    assert reference.packed_decoder is None and served.packed_decoder is not None
    short = translator.card.examples[0]
    long = " ".join(translator.card.examples * 2)
    sources = [torch.tensor([translator.source_ids(text)]) for text in (short, long)]
    assert 5 * sources[0].size(1) <= FOLD_MAX_POSITIONS < 5 * sources[1].size(1)
    with torch.inference_mode():  # 5 beams over the long source read too many positions: the fold is dropped
        five = torch.zeros(5, dtype=torch.long)
        assert served.encode(sources[0]).select(five).cross_scores is not None
        assert served.encode(sources[1]).cross_scores is not None and served.encode(sources[1]).select(five).cross_scores is None
    configs = [DecodeConfig(), DecodeConfig(strategy="beam", beam_size=5)]

    def same(a: list, b: list) -> None:
        assert [h.ids for h in a] == [h.ids for h in b]
        for x, y in zip(a, b, strict=True):
            assert abs(x.score - y.score) < 1e-4
            assert max((abs(p - q) for p, q in zip(x.token_logprobs, y.token_logprobs, strict=True)), default=0) < 1e-4
            torch.testing.assert_close(x.attention, y.attention, atol=1e-4, rtol=0)

    with torch.inference_mode():
        for src in sources:
            for cfg in configs:
                same(decode(served, src, cfg)[0], decode(reference, src, cfg)[0])
        batch = pad([translator.source_ids(text) for text in translator.card.examples * 8])
        assert served.encode(batch).cross_scores is None  # [40, S]: too many positions to fold
        same(greedy_search(served, batch, configs[0]), greedy_search(reference, batch, configs[0]))
