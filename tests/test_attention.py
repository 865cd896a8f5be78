"""Attention weights: a distribution over real source tokens, and padding never matters."""

import pytest
import torch

from demo_core.models.attention import AdditiveAttention, MultiplicativeAttention, SigmoidAdditiveAttention, build_attention, masked_softmax
from demo_core.text.tokenizer import BOS_ID, PAD_ID
from tests.tiny import tiny_rnn


def test_masked_softmax_rows_sum_to_one_and_padding_is_zero():
    """Masked softmax gives exactly 0 on padding and rows that sum to 1."""
    scores = torch.randn(4, 7)
    mask = torch.arange(7)[None, :] < torch.tensor([[7], [3], [1], [5]])
    w = masked_softmax(scores, mask)
    assert torch.allclose(w.sum(-1), torch.ones(4))
    assert (w[~mask] == 0).all()


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_attention_module_weights_and_context(kind):
    """Each attention kind returns a masked distribution and the matching weighted sum."""
    torch.manual_seed(0)
    module = build_attention(kind, 16, 16, 8)
    values = torch.randn(3, 5, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    context, weights = module(torch.randn(3, 16), module.prepare(values), values, mask)
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert (weights[~mask] == 0).all()
    assert torch.allclose(context, (weights.unsqueeze(-1) * values).sum(1), atol=1e-6)


def test_sigmoid_form_gives_the_additive_scores():
    """The served additive attention (tanh written as a sigmoid, its factors folded into the weights) gives the
    weights and context of ``AdditiveAttention`` up to rounding, padding still exactly 0, and leaves the module it
    was made from as it was."""
    torch.manual_seed(1)
    module = AdditiveAttention(24, 16, 12)
    with torch.no_grad():
        module.v.weight.mul_(20)  # large scores: tanh saturates, sum(v) is far from 0
    before = {k: v.clone() for k, v in module.state_dict().items()}
    served = SigmoidAdditiveAttention(module)
    values, query = torch.randn(4, 9, 16), torch.randn(4, 24)
    mask = torch.arange(9)[None, :] < torch.tensor([[9], [4], [1], [7]])
    with torch.inference_mode():
        context, weights = module(query, module.prepare(values), values, mask)
        served_context, served_weights = served(query, served.prepare(values), values, mask)
    torch.testing.assert_close(served_weights, weights, atol=2e-6, rtol=0)
    torch.testing.assert_close(served_context, context, atol=2e-6, rtol=0)
    assert (served_weights[~mask] == 0).all()
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_served_rnns_take_the_sigmoid_form():
    """``prepare_for_cpu`` swaps additive attention for its sigmoid form and leaves multiplicative attention alone;
    the served copy decodes the same tokens as the model it was made from."""
    from demo_core.decoding import DecodeConfig, greedy_search
    from demo_core.models.cpu import quantize_for_cpu

    for kind in ("additive", "general"):
        model = tiny_rnn(kind, seed=3).eval()
        served = quantize_for_cpu(model, "fp16")
        assert isinstance(served.attention, SigmoidAdditiveAttention) == (kind == "additive")
        assert type(model.attention) is (AdditiveAttention if kind == "additive" else MultiplicativeAttention)
        src = torch.tensor([[BOS_ID + 3, BOS_ID + 5, BOS_ID + 4, BOS_ID + 6]])
        with torch.inference_mode():
            a, b = greedy_search(served, src, DecodeConfig(max_len=8)), greedy_search(model, src, DecodeConfig(max_len=8))
        assert a[0].ids == b[0].ids
        torch.testing.assert_close(a[0].attention, b[0].attention, atol=1e-4, rtol=0)


def test_attention_kinds_are_the_published_ones():
    """additive is Bahdanau's MLP score, dot and general are Luong's products."""
    assert isinstance(build_attention("additive", 4, 4, 4), AdditiveAttention)
    assert isinstance(build_attention("general", 4, 6, 4), MultiplicativeAttention)
    with pytest.raises(ValueError, match="dot attention needs"):
        build_attention("dot", 4, 6, 4)
    with pytest.raises(ValueError, match="unknown attention"):
        build_attention("cosine", 4, 4, 4)


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_rnn_padding_does_not_change_outputs(kind):
    """A sentence decodes to the same log-probs alone and padded inside a batch; padding gets 0 attention."""
    model = tiny_rnn(kind, seed=1).eval()
    short = torch.tensor([[5, 6, 7, 3]])
    batch = torch.tensor([[5, 6, 7, 3, PAD_ID, PAD_ID], [8, 9, 10, 11, 12, 3]])
    prev = torch.tensor([BOS_ID])
    with torch.no_grad():
        mem1 = model.encode(short)
        lp1, _, att1 = model.decode_step(mem1, model.init_state(mem1), prev)
        mem2 = model.encode(batch)
        lp2, _, att2 = model.decode_step(mem2, model.init_state(mem2), prev.repeat(2))
    assert att2.shape == (2, 1, 1, 6)
    assert torch.allclose(lp1[0], lp2[0], atol=1e-5)
    assert torch.allclose(att1[0, 0, 0], att2[0, 0, 0, :4], atol=1e-6)
    assert (att2[0, 0, 0, 4:] == 0).all()
    assert torch.allclose(att2.sum(-1), torch.ones(2, 1, 1))
