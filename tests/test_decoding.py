"""Decoding strategies: the properties users rely on when comparing them."""

import pytest
import torch

from demo_core.decoding import DecodeConfig, beam_search, decode, greedy_search, sample
from demo_core.decoding.processors import adjust_log_probs, top_k_filter, top_p_filter
from demo_core.decoding.recorder import Recorder
from demo_core.tasks.datasets import pad
from demo_core.tasks.toy import toy_sources
from demo_core.text.tokenizer import BOS_ID, EOS_ID
from tests.tiny import tiny_rnn, tiny_transformer

SOURCES = toy_sources(12, seed=7)


def one(src: list[int]) -> torch.Tensor:
    return torch.tensor([src])


def test_beam_of_width_one_equals_greedy(toy_model):
    """Beam search with one beam makes exactly the greedy choices."""
    for src in SOURCES:
        g = greedy_search(toy_model, one(src), DecodeConfig())[0]
        b = beam_search(toy_model, one(src), DecodeConfig(strategy="beam", beam_size=1))[0][0]
        assert b.ids == g.ids
        assert b.score == pytest.approx(g.score, abs=1e-5)


@pytest.mark.parametrize("width", [2, 5, 10])
def test_beam_score_at_least_greedy(width):
    """The best beam hypothesis scores at least as well as the greedy one (model log-prob)."""
    model = tiny_rnn("additive", seed=3).eval()  # untrained: many near-ties, the hard case for beam search
    for src in SOURCES:
        g = greedy_search(model, one(src), DecodeConfig(max_len=12))[0]
        hyps, _ = beam_search(model, one(src), DecodeConfig(strategy="beam", beam_size=width, length_penalty=0.0, max_len=12))
        assert hyps[0].score >= g.score - 1e-5


def test_top_k_one_sampling_equals_greedy(toy_model):
    """Sampling restricted to the single most likely token is greedy decoding."""
    for src in SOURCES:
        g = greedy_search(toy_model, one(src), DecodeConfig())[0]
        s = sample(toy_model, one(src), DecodeConfig(strategy="sample", top_k=1, temperature=1.7, seed=4))[0]
        assert s.ids == g.ids


def test_top_p_keeps_smallest_set_with_enough_mass():
    """top-p keeps the most likely tokens until their mass reaches p, and no more."""
    torch.manual_seed(0)
    logits = torch.randn(50, 30) * 2
    for p in (0.1, 0.5, 0.9, 0.99):
        kept = top_p_filter(logits, p) > float("-inf")
        probs = logits.softmax(-1)
        for row in range(50):
            mass = probs[row][kept[row]].sum()
            assert mass >= p - 1e-6
            smallest_kept = probs[row][kept[row]].min()
            assert mass - smallest_kept < p  # dropping the least likely kept token falls below p
            if (~kept[row]).any():
                assert probs[row][~kept[row]].max() <= smallest_kept


def test_top_k_filter_keeps_k_tokens():
    """top-k leaves exactly k finite logits per row."""
    logits = torch.randn(4, 20)
    assert ((top_k_filter(logits, 3) > float("-inf")).sum(-1) == 3).all()


def test_same_seed_same_sample_different_seed_differs():
    """A seed reproduces a sample exactly; other seeds explore other outputs."""
    model = tiny_rnn("additive", seed=0).eval()
    cfg = DecodeConfig(strategy="sample", temperature=1.5, seed=11, num_samples=3, max_len=10)
    a = [h.ids for h in sample(model, one(SOURCES[0]), cfg)]
    b = [h.ids for h in sample(model, one(SOURCES[0]), cfg)]
    assert a == b
    others = {tuple(h.ids) for s in range(12, 20)
              for h in sample(model, one(SOURCES[0]), DecodeConfig(strategy="sample", temperature=1.5, seed=s, max_len=10))}
    assert len(others) > 1


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_forced_prefix_is_respected(toy_model, strategy):
    """Every strategy continues after a forced target prefix."""
    prefix = [9, 9, 4]
    hyps, _ = decode(toy_model, one(SOURCES[0]), DecodeConfig(strategy=strategy, beam_size=3), prefix)
    for h in hyps:
        assert h.ids[:3] == prefix


def test_no_repeat_ngram_blocks_repeats():
    """With no-repeat-n-gram 2, no bigram occurs twice in any output."""
    model = tiny_rnn("additive", vocab=6, seed=5).eval()  # 2 real tokens: repeats are unavoidable without the rule
    for strategy in ("greedy", "beam", "sample"):
        hyps, _ = decode(model, one([4, 5, 4, 3]), DecodeConfig(strategy=strategy, no_repeat_ngram=2, max_len=12, beam_size=3))
        for h in hyps:
            body = [t for t in h.ids if t != EOS_ID]
            bigrams = list(zip(body, body[1:], strict=False))  # consecutive pairs
            assert len(bigrams) == len(set(bigrams))


def test_repetition_penalty_lowers_seen_tokens():
    """The repetition penalty makes already generated tokens less likely and others more likely."""
    log_probs = torch.log_softmax(torch.randn(1, 10), -1)
    out = adjust_log_probs(log_probs, torch.tensor([[4, 7]]), DecodeConfig(repetition_penalty=2.0), 5, [])
    assert (out[0, [4, 7]] < log_probs[0, [4, 7]]).all()
    assert (out[0, [0, 1, 2, 3, 5, 6, 8, 9]] > log_probs[0, [0, 1, 2, 3, 5, 6, 8, 9]]).all()
    assert torch.allclose(out.exp().sum(), torch.tensor(1.0))


def test_beam_nbest_sorted_with_attention_per_token(toy_model):
    """The n-best list is sorted, no longer than the beam, and each hypothesis has one attention row per token."""
    src = SOURCES[1]
    hyps, _ = beam_search(toy_model, one(src), DecodeConfig(strategy="beam", beam_size=4))
    assert 1 <= len(hyps) <= 4
    scores = [h.normalized_score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    for h in hyps:
        assert h.attention.shape == (len(h.ids), 1, 1, len(src))
        assert len(h.token_logprobs) == len(h.alternatives or h.alt_ids) == len(h.ids)
        assert torch.allclose(h.attention.sum(-1), torch.ones(len(h.ids), 1, 1), atol=1e-5)


def test_beam_tree_traces_every_hypothesis(toy_model):
    """Each n-best hypothesis is a root-to-leaf path of finished nodes in the returned search tree."""
    hyps, tree = beam_search(toy_model, one(SOURCES[2]), DecodeConfig(strategy="beam", beam_size=3))
    nodes = {n.id: n for n in tree}
    assert tree[0].parent is None and tree[0].step == 0
    for n in tree[1:]:
        assert nodes[n.parent].step == n.step - 1
        assert nodes[n.parent].status == "kept"
        assert n.status in ("kept", "pruned", "finished")
    finished = [n for n in tree if n.status == "finished"]
    paths = []
    for leaf in finished:
        ids, node = [], leaf
        while node.parent is not None:
            ids.append(node.token)
            node = nodes[node.parent]
        paths.append(ids[::-1])
    for h in hyps:
        assert h.ids in paths


def test_outputs_respect_the_length_limit():
    """No strategy writes more tokens than max_len; an unfinished output is flagged."""
    model = tiny_rnn("general", seed=2).eval()
    for strategy in ("greedy", "beam", "sample"):
        hyps, _ = decode(model, one(SOURCES[3]), DecodeConfig(strategy=strategy, max_len=4, beam_size=3))
        for h in hyps:
            assert len(h.ids) <= 4
            assert h.finished == (h.ids[-1] == EOS_ID)


def test_greedy_batch_matches_single_sentences(toy_model):
    """Greedy decoding of a padded batch equals decoding each sentence alone."""
    batch = greedy_search(toy_model, pad(SOURCES), DecodeConfig())
    for src, h in zip(SOURCES, batch, strict=True):
        assert h.ids == greedy_search(toy_model, one(src), DecodeConfig())[0].ids


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(beam_size=0), "beam_size"), (dict(beam_size=17), "beam_size"), (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
        (dict(top_k=-1), "top_k"), (dict(strategy="nucleus"), "strategy"), (dict(max_len=0), "max_len"),
        (dict(num_samples=0), "num_samples"), (dict(no_repeat_ngram=-2), "no_repeat_ngram"),
        (dict(repetition_penalty=0.5), "repetition_penalty"), (dict(n_best=6, beam_size=5), "n_best"),
    ],
)
def test_invalid_parameters_are_refused_by_name(kwargs, name):
    """A parameter out of range is refused with a message naming it."""
    with pytest.raises(ValueError, match=name):
        DecodeConfig(**kwargs).validate()


def rescore(model, src: list[int], ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Feed ``ids`` to the model one step at a time: log-probs [T, V] and attention [T, L, H, S] at each step."""
    memory = model.encode(one(src))
    state = model.init_state(memory)
    prev = torch.tensor([BOS_ID])
    log_probs, attention = [], []
    for token in ids:
        lp, state, attn = model.decode_step(memory, state, prev)
        log_probs.append(lp[0])
        attention.append(attn[0])
        prev = torch.tensor([token])
    return torch.stack(log_probs), torch.stack(attention)


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
@pytest.mark.parametrize("strategy", ["beam", "sample"])
def test_recorded_steps_match_rescoring_the_output(architecture, strategy):
    """Each hypothesis's log-probs, alternatives and attention are the model's own at every step of its path.

    Beam search reorders its hypotheses at every step (an untrained model has many near-ties),
    so this checks that each one is read back along its own parents.
    """
    model = (tiny_rnn("additive", seed=6) if architecture == "rnn" else tiny_transformer(seed=6)).eval()
    cfg = DecodeConfig(strategy=strategy, beam_size=4, num_samples=3, max_len=9, alternatives=3, temperature=2.0)
    with torch.no_grad():
        for src in SOURCES[:3]:
            hyps, _ = decode(model, one(src), cfg)
            assert len(hyps) >= 3
            for h in hyps:
                log_probs, attention = rescore(model, src, h.ids)  # [T, V], [T, L, H, S]
                chosen = log_probs.gather(1, torch.tensor(h.ids)[:, None])[:, 0]
                torch.testing.assert_close(torch.tensor(h.token_logprobs), chosen, atol=1e-5, rtol=0)
                top = log_probs.topk(3, dim=-1).values.exp()  # ties may list other ids with the same probability
                torch.testing.assert_close(torch.tensor(h.alt_probs), top, atol=1e-5, rtol=0)
                torch.testing.assert_close(log_probs.gather(1, torch.tensor(h.alt_ids)).exp(), top, atol=1e-5, rtol=0)
                torch.testing.assert_close(h.attention, attention, atol=1e-5, rtol=0)


def test_recorder_history_follows_reordered_rows():
    """The recorder's running history is each row's own path back through its parents, as beam search reorders rows."""
    rec = Recorder(alternatives=2, track_history=True)
    generator = torch.Generator().manual_seed(0)
    for step, parents in enumerate([[0, 0, 0], [2, 0, 1, 1], [3, 3, 0], [1, 2]]):
        n = 1 if step == 0 else len(rec.steps[-1].tokens)
        tokens = torch.randint(4, 20, (len(parents),), generator=generator)
        rec.add(tokens, torch.randn(n, 20, generator=generator).log_softmax(-1), torch.zeros(n, 1, 1, 3), parents=parents)
        history = rec.history(len(parents))
        assert history.shape == (len(parents), step + 1)
        for row in range(len(parents)):
            assert history[row].tolist() == rec._path(row)[0]
