"""The decoding lab's data: step distributions, what the strategy did to them, the beam tree, branching, JSON.

Properties on real models: the tiny untrained ones of tests/tiny.py (near-uniform
distributions, many near-ties: the hard case) and shipped checkpoints.
"""

import json
from dataclasses import replace

import pytest
import torch

from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.decoding import DecodeConfig
from demo_core.decoding.processors import length_penalty
from demo_core.decoding.reshape import reshape
from demo_core.pipeline import InputError, ModelRegistry, Translator
from demo_core.serving import beam_view
from demo_core.serving.branching import SPECIAL, branch, prefix_ids, token_diff
from demo_core.serving.lab import DecodeLab, step_distributions, step_view
from demo_core.serving.lab_json import steps_json
from demo_core.text.tokenizer import EOS_ID
from tests.tiny import EXAMPLE, save_tiny_model

GERMAN = "Ein Mann fährt mit dem Fahrrad über eine Brücke."
SHIPPED = ["de-en-transformer", "de-en-rnn-bahdanau"]
SAMPLING = [dict(temperature=0.7, top_p=0.8), dict(temperature=1.6, top_p=0.7), dict(temperature=1.5, top_k=20),
            dict(temperature=1.0, top_k=5, top_p=0.5),
            dict(temperature=1.2, repetition_penalty=1.5, no_repeat_ngram=2)]


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(DEFAULT_ROOT)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, tmp_path_factory) -> dict[str, Translator]:
    """Untrained tiny RNN and Transformer translators (the shared tiny SentencePiece model)."""
    transformer = save_tiny_model(tmp_path_factory.mktemp("lab") / "tiny-transformer", "transformer")
    return {"rnn": Translator.from_dir(tiny_model_dir), "transformer": Translator.from_dir(transformer)}


def cases(registry, tiny):
    """(translator, text, base config) for two tiny and two shipped models."""
    short = DecodeConfig(max_len=10)
    return [(tiny["rnn"], EXAMPLE, short), (tiny["transformer"], EXAMPLE, short)] + [
        (registry.get(m), GERMAN, DecodeConfig()) for m in SHIPPED]


def views(translator, result, index=0, cfg=None):
    steps = step_distributions(translator, result, index)
    return steps, [step_view(translator, steps, t, cfg) for t in range(1, steps.steps + 1)]


@pytest.mark.parametrize("options", [{}, dict(repetition_penalty=2.0), dict(no_repeat_ngram=1)])
def test_greedy_token_is_the_argmax_of_the_adjusted_distribution(registry, tiny, options):
    """At every step, greedy wrote the most likely token of the adjusted distribution."""
    for translator, text, base in cases(registry, tiny):
        result = translator.run(text, replace(base, **options))
        steps, shown = views(translator, result)
        for t, view in enumerate(shown, start=1):
            assert view.chosen == steps.ids[t - 1]
            shaped = reshape(steps.raw_log_probs[t - 1], steps.history(t), result.config)
            assert shaped.logits[view.chosen] == shaped.logits.max()
            assert view.chosen_adjusted == pytest.approx(float(shaped.probs.max()))


@pytest.mark.parametrize("options", SAMPLING)
def test_sampled_token_is_inside_the_kept_set(registry, tiny, options):
    """Every sampled token survived the filters (top-k, top-p, no-repeat): nonzero adjusted probability."""
    for translator, text, base in cases(registry, tiny):
        result = translator.run(text, replace(base, strategy="sample", num_samples=3, seed=11, **options))
        for index in range(len(result.hypotheses)):
            _, shown = views(translator, result, index)
            for view in shown:
                chosen = next(c for c in view.candidates if c.chosen)
                assert chosen.cut is None and chosen.adjusted > 0 and view.chosen_adjusted > 0
                if "top_k" in options:
                    assert view.kept <= options["top_k"]


@pytest.mark.parametrize("options", SAMPLING + [dict(strategy="greedy", no_repeat_ngram=1), dict(strategy="beam")])
def test_adjusted_distribution_sums_to_one_and_is_zero_exactly_where_cut(registry, tiny, options):
    """The reshaped distribution is a distribution, and its zeros are exactly the tokens a filter cut."""
    for translator, text, base in cases(registry, tiny):
        result = translator.run(text, replace(base, strategy="sample", seed=2))
        steps = step_distributions(translator, result)
        cfg = replace(result.config, **options)
        for t in range(1, steps.steps + 1):
            shaped = reshape(steps.raw_log_probs[t - 1], steps.history(t), cfg)
            assert float(shaped.probs.sum()) == pytest.approx(1.0, abs=1e-9)
            assert torch.equal(shaped.probs == 0, shaped.cut)
            if cfg.no_repeat_ngram == 1:
                assert shaped.cut[steps.history(t)].all()
                assert set(shaped.cut_by[steps.history(t)].tolist()) <= {2}  # by the no-repeat rule
            view = step_view(translator, steps, t, cfg)
            assert len(view.candidates) >= 10
            top = shaped.probs.topk(10)
            assert {i for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True) if p > 0} <= {c.id for c in view.candidates}
            assert all((c.adjusted == 0) == (c.cut is not None) for c in view.candidates)
            assert [c.raw for c in view.candidates[:10]] == sorted((c.raw for c in view.candidates[:10]), reverse=True)


def test_forced_prefix_leaves_one_token_and_says_so(tiny):
    """At a forced step only the prefix token is left; the others are cut by the forced prefix."""
    translator = tiny["rnn"]
    prefix = translator.tgt_tok.encode("two dogs")
    result = translator.run(EXAMPLE, DecodeConfig(max_len=8, strategy="sample", seed=1), prefix=prefix)
    lab = DecodeLab(translator, result, prefix)
    assert lab.steps().ids[: len(prefix)] == prefix
    for t in range(1, len(prefix) + 1):
        view = lab.step_view(t)
        assert view.forced and view.kept == 1 and view.chosen == prefix[t - 1] and view.chosen_adjusted == 1.0
        assert {c.cut for c in view.candidates if not c.chosen} == {"forced prefix"}
    assert not lab.step_view(len(prefix) + 1).forced


@pytest.mark.parametrize("options", [dict(strategy="greedy"), dict(strategy="greedy", alternatives=20),
                                     dict(strategy="sample", num_samples=3, repetition_penalty=1.8, seed=4),
                                     dict(strategy="beam", beam_size=4, repetition_penalty=1.3)])
def test_teacher_forced_distributions_agree_with_the_recording(registry, tiny, options):
    """Token log-probs, alternatives and attention recorded by the decoder are the teacher-forced ones (after the
    repetition options, as the decoders record them)."""
    for translator, text, base in cases(registry, tiny):
        result = translator.run(text, replace(base, **options))
        for index, h in enumerate(result.hypotheses):
            steps = step_distributions(translator, result, index)
            adjusted = torch.stack([reshape(steps.raw_log_probs[t - 1], steps.history(t), result.config).adjusted_log_probs
                                    for t in range(1, steps.steps + 1)])  # [T, V]
            chosen = adjusted.gather(1, torch.tensor(h.ids)[:, None])[:, 0]
            torch.testing.assert_close(chosen, torch.tensor(h.token_logprobs), atol=2e-4, rtol=0)
            top = adjusted.topk(len(h.alt_probs[0]), dim=-1).values.exp()
            torch.testing.assert_close(torch.tensor(h.alt_probs), top, atol=2e-4, rtol=0)
            torch.testing.assert_close(steps.attention, h.attention, atol=2e-4, rtol=0)
            if options["strategy"] == "greedy" and result.config.repetition_penalty == 1.0:
                assert torch.equal(steps.raw_log_probs.gather(1, torch.tensor(h.ids)[:, None])[:, 0],
                                   torch.tensor(h.token_logprobs))  # same rows, same order: the very same numbers


def beam_results(registry, tiny):
    for translator, text, base in cases(registry, tiny):
        for beam in (3, 5):
            yield translator, translator.run(text, replace(base, strategy="beam", beam_size=beam, length_penalty=0.6))


def test_tree_paths_reproduce_the_n_best(registry, tiny):
    """The path to each finished node that ends an n-best hypothesis has its tokens, score and attention."""
    for translator, result in beam_results(registry, tiny):
        nodes = {n.id: n for n in beam_view.tree_nodes(translator, result)}
        replay = DecodeLab(translator, result).replay()
        ended = {n.hypothesis: n for n in nodes.values() if n.hypothesis is not None}
        assert sorted(ended) == list(range(len(result.hypotheses)))
        for index, h in enumerate(result.hypotheses):
            node = ended[index]
            assert node.status == "finished" and node.step == len(h.ids)
            assert node.score == pytest.approx(h.score, abs=1e-4)
            path = beam_view.node_path(translator, result, node.id)
            assert path.ids == h.ids and path.pieces == h.pieces
            torch.testing.assert_close(path.attention, h.attention)
            pruned = beam_view.node_path(translator, replace(result, hypotheses=[]), node.id, replay)  # from the replay
            torch.testing.assert_close(pruned.attention, h.attention, atol=1e-5, rtol=0)
        ranked = beam_view.rank_finished(translator, result)
        assert [r.normalized for r in ranked[: len(result.hypotheses)]] == pytest.approx(
            [h.normalized_score for h in result.hypotheses], abs=1e-4)


def test_path_attention_of_any_node_is_its_teacher_forced_attention(registry, tiny):
    """The attention of a path to a pruned or kept node (from the replay) equals teacher-forcing its tokens."""
    for translator, result in beam_results(registry, tiny):
        replay = DecodeLab(translator, result).replay()
        for node in [n for n in result.beam_tree if n.status != "finished"][1::7]:
            from_replay = beam_view.node_path(translator, result, node.id, replay)
            forced = beam_view.node_path(translator, result, node.id)
            assert len(from_replay.ids) == node.step == from_replay.attention.shape[0]
            torch.testing.assert_close(from_replay.attention, forced.attention, atol=2e-4, rtol=0)


def test_beam_step_statuses_follow_the_scores(registry, tiny):
    """At every step: at most k kept, none below the k-th best live score, pruned ones not above it, the
    unranked ones below every ranked expansion; each tree node of the step is listed once."""
    for translator, result in beam_results(registry, tiny):
        replay = DecodeLab(translator, result).replay()
        k = result.config.beam_size
        last = max(n.step for n in result.beam_tree)
        for t in range(1, last + 1):
            view = beam_view.beam_step(translator, result, t, replay)
            listed = [c for b in view.beams for c in b.candidates]
            ranked = [c for c in listed if c.node is not None]
            assert sorted(c.node for c in ranked) == [n.id for n in result.beam_tree if n.step == t]
            kept = [c for c in ranked if c.status == "kept"]
            assert len(kept) <= k and view.ranked <= 2 * k
            if view.kth_live_score is not None:
                assert all(c.score >= view.kth_live_score for c in kept)
                assert all(c.score <= view.kth_live_score + 1e-6 for c in ranked if c.status == "pruned" and c.token != EOS_ID)
            assert all(c.rank > k for c in ranked if c.status == "pruned" and c.token == EOS_ID)
            assert all(c.score <= view.lowest_ranked_score + 1e-5 for c in listed if c.status == "not ranked")
            for b in view.beams:
                assert [c.score for c in b.candidates] == sorted((c.score for c in b.candidates), reverse=True)
                row = replay.row[b.node]  # the replay computes what the search ranked
                replayed = dict(zip(replay.top_ids[row].tolist(), replay.top_log_probs[row].tolist(), strict=True))
                assert all(c.log_prob == pytest.approx(replayed[c.token], abs=1e-5) for c in b.candidates if c.node is not None)
            assert (view.ended is None) == (t < last)


def test_ranking_by_alpha(registry, tiny):
    """Finished hypotheses are ranked by score / ((5 + length) / 6)^α: α = 0 ranks by log-prob alone."""
    for translator, result in beam_results(registry, tiny):
        for alpha in (0.0, 0.6, 2.0):
            ranked = beam_view.rank_finished(translator, result, alpha)
            assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
            assert [r.normalized for r in ranked] == sorted((r.normalized for r in ranked), reverse=True)
            assert all(r.normalized == pytest.approx(r.score / length_penalty(r.length, alpha)) for r in ranked)
        assert beam_view.rank_finished(translator, result, 0.0)[0].score == max(r.score for r in ranked)
        winners = dict(beam_view.best_by_alpha(result, [0.0, 0.6, 2.0]))
        assert winners[0.6] == beam_view.rank_finished(translator, result, 0.6)[0].node
    with pytest.raises(InputError, match="length_penalty"):
        beam_view.rank_finished(translator, result, 7.0)


def test_large_trees_fold_their_pruned_branches(tiny):
    """Beyond beam 5 x 30 steps only paths to finished nodes stay (plus opened nodes' children); every other
    node is counted once in the fold of its nearest visible ancestor. A small tree is drawn whole."""
    translator = tiny["rnn"]
    small = translator.run(EXAMPLE, DecodeConfig(strategy="beam", beam_size=3, max_len=10))
    assert beam_view.visible_nodes(small) == beam_view.Fold(visible=[n.id for n in small.beam_tree], folded={}, folding=False)
    large = translator.run(EXAMPLE, DecodeConfig(strategy="beam", beam_size=8, max_len=12))
    fold = beam_view.visible_nodes(large)
    nodes = {n.id: n for n in large.beam_tree}
    assert fold.folding and len(fold.visible) + sum(fold.folded.values()) == len(nodes)
    visible = set(fold.visible)
    for n in nodes.values():
        if n.status == "finished":
            while n.parent is not None:
                assert n.id in visible
                n = nodes[n.parent]
    assert all(nodes[i].status != "pruned" for i in visible)
    opened = next(i for i in fold.visible if nodes[i].status == "kept" and i != 0)
    wider = beam_view.visible_nodes(large, expanded=[opened])
    assert {n.id for n in nodes.values() if n.parent == opened} <= set(wider.visible)


@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_branch_with_the_models_own_token_reproduces_the_output(registry, tiny, strategy):
    """Forcing the token the decode wrote at step t re-decodes the same output (sampling: same seed)."""
    for translator, text, base in cases(registry, tiny):
        result = translator.run(text, replace(base, strategy=strategy, num_samples=3, seed=None))
        for index in range(len(result.hypotheses)):
            h = result.hypotheses[index]
            steps = sorted({t for t in (1, 3, len(h.ids) - (not h.finished)) if 1 <= t <= len(h.ids)})  # a cut output's
            # last step would fill the limit; a random sample may end before step 3
            for step in [t for t in steps if h.ids[t - 1] not in SPECIAL]:  # a sampled <unk> or <s> cannot be forced
                cfg = replace(result.config, seed=None)  # a blank seed takes the original's
                b = branch(translator, text, cfg, result, index, step, h.ids[step - 1])
                assert b.same and b.forced == step and b.prefix == h.ids[:step]
                assert [op.tag for op in b.diff] == ["equal"] and not any(b.changed)


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_an_output_ending_at_the_limit_branches_at_its_eos(registry, strategy):
    """An output whose </s> sits at the last allowed step can be branched there with that </s>:
    the forced prefix is then the whole output and re-decodes it; any other token there is refused."""
    translator = registry.get("de-en-rnn-bahdanau")
    whole = translator.run(GERMAN, DecodeConfig(strategy=strategy, seed=7))
    n = len(whole.best.ids)
    assert whole.best.finished and whole.best.ids[-1] == EOS_ID
    result = translator.run(GERMAN, replace(whole.config, max_len=n))  # the same output, </s> at the limit
    assert result.best.ids == whole.best.ids
    b = branch(translator, GERMAN, result.config, result, 0, n, EOS_ID)
    assert b.same and b.forced == n and b.prefix == result.best.ids
    with pytest.raises(InputError, match=f"so at most {n - 1} can be forced \\({n} ending with </s>\\)"):
        branch(translator, GERMAN, result.config, result, 0, n, 261)


def test_branch_with_a_word_forces_it_and_diffs_the_outputs(registry):
    """A typed word is forced at step t after the first t-1 tokens; the diff rebuilds the new output."""
    translator = registry.get("de-en-transformer")
    for strategy in ("greedy", "beam"):
        result = translator.run(GERMAN, DecodeConfig(strategy=strategy))
        h = result.best
        step = h.pieces.index("▁bicycle") + 1
        b = branch(translator, GERMAN, result.config, result, 0, step, "scooter")
        new = b.result.hypotheses[b.index]
        word = translator.tgt_tok.encode("scooter")
        assert b.prefix == h.ids[: step - 1] + word and new.ids[: b.forced] == b.prefix
        assert "scooter" in new.text and not b.same
        rebuilt = [p for op in b.diff for p in (op.original if op.tag == "equal" else op.new)]
        assert rebuilt == new.pieces
        assert b.changed[step - 1] and not any(b.changed[: step - 1])
    assert token_diff(["a", "b"], ["a", "c"])[1].tag == "replace"


def test_invalid_branches_get_specific_messages(registry):
    """Empty word, a word outside the vocabulary, a step out of range, a prefix over the limit, a special token."""
    translator = registry.get("de-en-transformer")
    result = translator.run(GERMAN, DecodeConfig(max_len=12))
    cfg, T = result.config, len(result.best.ids)
    bad = [("", 3, "empty"), ("   ", 3, "empty"), ("猫", 3, "cannot be written with the target vocabulary.*'猫'"),
           (261, 0, "step 0 is out of range.*1 to"), (261, T + 1, f"step {T + 1} is out of range"),
           ("the " * 12, 2, "too long for the length limit.*at most 12"),
           (2, 3, r"token 2 \(<s>\) cannot be forced"), (10**6, 3, "not in the target vocabulary")]
    for word, step, message in bad:
        with pytest.raises(InputError, match=message):
            branch(translator, GERMAN, cfg, result, 0, step, word)
    with pytest.raises(InputError, match="hypothesis 4 is out of range"):
        branch(translator, GERMAN, cfg, result, 4, 1, 261)
    cut = translator.run(GERMAN, DecodeConfig(max_len=5))  # cut at the limit: a branch at its last step fills it
    with pytest.raises(InputError, match="forced prefix is 5 tokens long, too long for the length limit.*so at most 4"):
        branch(translator, GERMAN, cut.config, cut, 0, 5, 261)


def test_api_prefix_is_checked_and_matches_the_text_prefix(registry):
    """An API prefix tokenises as Translator.run's text prefix does and gives the same output; bad ones are refused."""
    translator = registry.get("de-en-rnn-bahdanau")
    cfg = DecodeConfig(strategy="beam", beam_size=3)
    ids = prefix_ids(translator, "A woman", cfg, GERMAN)
    assert ids == translator.tgt_tok.encode("A woman") and prefix_ids(translator, "  ", cfg, GERMAN) == []
    by_text, by_ids = translator.run(GERMAN, cfg, prefix="A woman"), translator.run(GERMAN, cfg, prefix=ids)
    assert by_text.best.ids == by_ids.best.ids and by_ids.best.ids[: len(ids)] == ids
    for prefix, message in [("Ж", "cannot be written"), ("a " * 60, "length limit"), (5, "must be a string")]:
        with pytest.raises(InputError, match=message):
            prefix_ids(translator, prefix, cfg, GERMAN)
    with pytest.raises(InputError, match="not a target token id"):
        translator.run(GERMAN, cfg, prefix=[translator.tgt_tok.vocab_size])


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_steps_json_lists_every_step_and_the_tree(registry, strategy):
    """steps_json: one entry per output token with its top-k (raw, adjusted, 4 decimals), the tree for beam search."""
    translator = registry.get("de-en-transformer")
    prefix = translator.tgt_tok.encode("The")
    result = translator.run(GERMAN, DecodeConfig(strategy=strategy, seed=1, temperature=0.8, top_p=0.9), prefix=prefix)
    data = json.loads(json.dumps(steps_json(result, translator, k=12, prefix=prefix)))
    h = result.best
    assert [s["token"] for s in data["steps"]] == h.ids and data["forced"] == len(prefix)
    assert [s["forced"] for s in data["steps"][:2]] == [True, False]
    for s in data["steps"]:
        assert len(s["top"]) >= 12 and sum(c["chosen"] for c in s["top"]) == 1
        numbers = [s["raw"], s["adjusted"]] + [c[key] for c in s["top"] for key in ("raw", "adjusted")]
        assert all(round(x, 4) == x for x in numbers)
    if strategy == "beam":
        assert len(data["tree"]) == len(result.beam_tree)
        assert set(data["tree"][1]) == {"id", "parent", "piece", "score", "step", "status"}
    else:
        assert data["tree"] is None
    if strategy == "sample":
        assert any(c["cut"] == "top-p" for s in data["steps"] for c in s["top"])
