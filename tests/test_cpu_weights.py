"""Packed Linear weights for CPU inference (fp16, int8): outputs stay those of the fp32 model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from demo_core.decoding import DecodeConfig, decode, greedy_search
from demo_core.models.cpu import MIN_PACKED_WEIGHTS, quantize_for_cpu
from demo_core.pipeline import ModelRegistry, Translator
from demo_core.tasks.datasets import pad
from demo_core.tasks.toy import toy_sources
from demo_core.text.tokenizer import BOS_ID
from tests.tiny import TINY_TRANSFORMER, fp16_representable, tiny_transformer

SOURCES = toy_sources(16, seed=11)


def shipped_like_transformer(vocab: int = 40) -> nn.Module:
    """A tiny eval-mode Transformer with a joint vocabulary, a non-zero output bias and fp16-stored weights."""
    model = tiny_transformer(vocab, share_embeddings=True).eval()
    nn.init.normal_(model.output_bias)  # trained models have one; a packed copy must keep it
    return fp16_representable(model)


def teacher_forced_log_probs(model: nn.Module, src: torch.Tensor) -> torch.Tensor:
    """Log-probs [B, T, V] of the model reading its own source back as the target."""
    tgt_in = torch.cat([torch.full((src.size(0), 1), BOS_ID), src], dim=1)
    with torch.no_grad():
        return F.log_softmax(model(src, tgt_in), dim=-1)


def assert_same_outputs(packed: nn.Module, model: nn.Module) -> None:
    """Teacher-forced log-probs within 1e-5, and the same greedy outputs and attention."""
    src = pad(SOURCES)
    torch.testing.assert_close(teacher_forced_log_probs(packed, src), teacher_forced_log_probs(model, src),
                               atol=1e-5, rtol=0)
    for a, b in zip(greedy_search(packed, src, DecodeConfig()), greedy_search(model, src, DecodeConfig()), strict=True):
        assert a.ids == b.ids
        torch.testing.assert_close(a.attention, b.attention, atol=1e-5, rtol=0)


def test_fp16_weights_give_the_fp32_outputs():
    """With fp16-stored weights, fp16 packing changes log-probs by float rounding only, and no output or attention."""
    model = shipped_like_transformer()
    packed = quantize_for_cpu(model, "fp16", min_packed=0)  # every Linear layer packed, however small
    assert packed.output_projection is not None and model.output_projection is None  # the original is untouched
    assert_same_outputs(packed, model)


@pytest.mark.parametrize("attention", ["additive", "general"])
def test_int8_weights_keep_the_trained_toy_model_right(toy_models, attention):
    """int8 packing of a trained RNN keeps its outputs and moves probabilities and attention only a little."""
    model = toy_models[attention]
    packed = quantize_for_cpu(model, "int8", min_packed=0)
    for strategy in ("greedy", "beam"):
        cfg = DecodeConfig(strategy=strategy, beam_size=3)
        for source in SOURCES[:8]:
            (a, *_), _ = decode(packed, torch.tensor([source]), cfg)
            (b, *_), _ = decode(model, torch.tensor([source]), cfg)
            assert a.ids == b.ids
            assert max(abs(x - y) for x, y in zip(a.token_logprobs, b.token_logprobs, strict=True)) < 0.05
            assert (torch.tensor(a.alt_probs) - torch.tensor(b.alt_probs)).abs().max() < 0.05
            assert (a.attention - b.attention).abs().max() < 0.1


def test_only_large_layers_are_packed_and_outputs_do_not_change():
    """By default small Linear layers stay fp32 (a packed call costs more than it saves there);
    the output projection, at the threshold, is packed; log-probs, outputs and attention stay the model's."""
    width = TINY_TRANSFORMER["d_model"]
    model = shipped_like_transformer(vocab=MIN_PACKED_WEIGHTS // width)  # output projection [vocab, width]: the threshold
    packed = quantize_for_cpu(model, "fp16")
    decoder = packed.packed_decoder
    assert type(decoder.layers[0].qkv) is nn.Linear and type(packed.packed_encoder.layers[0].up) is nn.Linear
    assert type(decoder.output) is not nn.Linear and hasattr(decoder.output, "_packed_params")
    assert packed.output_projection is decoder.output
    assert_same_outputs(packed, model)


def test_fp32_is_the_model_itself_and_unknown_formats_are_refused():
    """weights='fp32' returns the model unchanged; anything but fp32/fp16/int8 is a ValueError naming the choices."""
    model = shipped_like_transformer()
    assert quantize_for_cpu(model, "fp32") is model
    with pytest.raises(ValueError, match="fp16"):
        quantize_for_cpu(model, "int4")


def test_registry_packs_fp16_by_default_and_follows_the_environment(tiny_model_dir, monkeypatch):
    """The app's registry serves fp16-packed models (same output as fp32); S2S_CPU_WEIGHTS picks another format."""
    monkeypatch.delenv("S2S_CPU_WEIGHTS", raising=False)
    registry = ModelRegistry(tiny_model_dir.parent)
    assert registry.weights == "fp16"
    served = registry.get("tiny-rnn")
    assert served.model.output_projection is not None
    cfg = DecodeConfig(strategy="beam", beam_size=3)
    a = served.run("zwei kinder spielen im schnee", cfg)
    b = Translator.from_dir(tiny_model_dir).run("zwei kinder spielen im schnee", cfg)
    assert [h.ids for h in a.hypotheses] == [h.ids for h in b.hypotheses]
    torch.testing.assert_close(a.best.attention, b.best.attention, atol=1e-5, rtol=0)
    monkeypatch.setenv("S2S_CPU_WEIGHTS", "fp32")
    assert ModelRegistry(tiny_model_dir.parent).get("tiny-rnn").model.output_projection is None
    monkeypatch.setenv("S2S_CPU_WEIGHTS", "bf8")
    with pytest.raises(ValueError, match="weights must be one of"):
        ModelRegistry(tiny_model_dir.parent)
