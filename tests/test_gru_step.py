"""The served RNNs' decoder GRU as Linear products (``models.gru_step.StepGRU``) computes nn.GRU's step.

Run: ``python -m pytest -q tests/test_gru_step.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.decoding import DecodeConfig, decode
from demo_core.models.cpu import quantize_for_cpu
from demo_core.models.gru_step import StepGRU
from demo_core.pipeline import Translator
from tests.test_rnn_script import shipped_rnns


def gru(layers: int, seed: int = 0) -> nn.GRU:
    torch.manual_seed(seed)
    return nn.GRU(6, 5, num_layers=layers, batch_first=True).eval()


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("rows", [1, 3])
def test_a_step_and_ten_steps_fed_back_match_nn_gru(layers: int, rows: int) -> None:
    reference = gru(layers)
    step = StepGRU(reference)
    torch.manual_seed(1)
    x, hidden = torch.randn(rows, 10, 6), torch.randn(layers, rows, 5)
    ours = hidden
    with torch.no_grad():
        for t in range(10):
            out_ref, hidden = reference(x[:, t:t + 1], hidden)
            out, ours = step(x[:, t:t + 1], ours)
            assert out.shape == out_ref.shape == (rows, 1, 5) and ours.shape == hidden.shape == (layers, rows, 5)
            torch.testing.assert_close(out, out_ref, atol=1e-6, rtol=0)
            torch.testing.assert_close(ours, hidden, atol=1e-6, rtol=0)
        whole, last = reference(x, torch.zeros(layers, rows, 5))  # and the recurrence itself: nn.GRU over the sequence
        ours = torch.zeros(layers, rows, 5)
        for t in range(10):
            out, ours = step(x[:, t:t + 1], ours)
        torch.testing.assert_close(out[:, 0], whole[:, -1], atol=1e-6, rtol=0)
        torch.testing.assert_close(ours, last, atol=1e-6, rtol=0)


def test_torchscript_compiles_it_to_the_same_numbers() -> None:
    step = StepGRU(gru(2))
    scripted = torch.jit.script(step)
    x, hidden = torch.randn(4, 1, 6), torch.randn(2, 4, 5)
    with torch.no_grad():
        for a, b in zip(step(x, hidden), scripted(x, hidden), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{"bidirectional": True}, {"batch_first": False}, {"bias": False}])
def test_other_grus_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="batch-first, unidirectional GRU with biases"):
        StepGRU(nn.GRU(6, 5, **({"batch_first": True} | kwargs)))


@pytest.mark.parametrize("model_id", shipped_rnns())
def test_served_rnns_decode_as_the_module_path_with_packed_gru_products(model_id: str) -> None:
    """The served form packs the GRU's two products fp16 and still gives the fp32 module path's
    tokens, with log-probs and attention within 1e-4, greedy and beam 5."""
    translator = Translator.from_dir(DEFAULT_ROOT / model_id)
    served = quantize_for_cpu(translator.model, "fp16")
    assert isinstance(served.decoder, StepGRU) and isinstance(translator.model.decoder, nn.GRU)
    assert all(hasattr(linear, "_packed_params") for linear in (*served.decoder.input_to_hidden,
                                                                *served.decoder.hidden_to_hidden))
    with torch.inference_mode():
        for text in translator.card.examples[:2]:
            src = torch.tensor([translator.source_ids(text)])
            for cfg in (DecodeConfig(), DecodeConfig(strategy="beam", beam_size=5)):
                ours, _ = decode(served, src, cfg)
                reference, _ = decode(translator.model, src, cfg)
                assert [h.ids for h in ours] == [h.ids for h in reference]
                for a, b in zip(ours, reference, strict=True):
                    assert max((abs(p - q) for p, q in zip(a.token_logprobs, b.token_logprobs, strict=True)), default=0) < 1e-4
                    torch.testing.assert_close(a.attention, b.attention, atol=1e-4, rtol=0)


def test_a_sequence_of_more_than_one_step_is_refused() -> None:
    step = torch.jit.script(StepGRU(gru(1)))
    with pytest.raises(Exception, match="one step at a time, got a sequence of 2"):
        step(torch.randn(1, 2, 6), torch.zeros(1, 1, 5))
