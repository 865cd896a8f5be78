"""Batched decoding and the micro-batcher: every request gets what it would get decoded alone."""

import threading
import time
from dataclasses import replace

import pytest
import torch

from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.decoding import DecodeConfig, greedy_search, sample
from demo_core.decoding.config import with_fresh_seed
from demo_core.decoding.search import decode_batch
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving.batcher import SPLIT_AT, Batcher, Job, Lane, run_together
from demo_core.tasks.datasets import pad
from demo_core.text.tokenizer import EOS_ID

SHIPPED = ["de-en-rnn-bahdanau", "de-en-transformer"]  # an RNN and a Transformer, as the app serves them (fp16-packed)
TOL = 1e-4


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(DEFAULT_ROOT)  # the app's default weights: fp16-packed Linear layers


def texts_of(translator) -> list[str]:
    """The card's examples and a short and a long sentence: rows that end at very different steps."""
    return [*translator.card.examples, "Ein Mann.",
            "Zwei Hunde spielen im Schnee, während die Kinder am Fluss lachen und ein alter Mann auf der Bank zusieht."]


def assert_same(alone, batched) -> None:
    """Equal ids and alternatives; log-probs, scores, alternative probabilities and attention within TOL."""
    assert batched.ids == alone.ids
    assert batched.alt_ids == alone.alt_ids
    assert batched.finished == alone.finished
    assert batched.score == pytest.approx(alone.score, abs=TOL)
    assert batched.normalized_score == pytest.approx(alone.normalized_score, abs=TOL)
    assert batched.token_logprobs == pytest.approx(alone.token_logprobs, abs=TOL)
    for a, b in zip(alone.alt_probs, batched.alt_probs, strict=True):
        assert b == pytest.approx(a, abs=TOL)
    assert batched.attention.shape == alone.attention.shape  # [T, layers, heads, own S]: cut to its own source
    assert (batched.attention - alone.attention).abs().max() <= TOL


@pytest.mark.parametrize("model_id", SHIPPED)
def test_batched_greedy_equals_greedy_alone(registry, model_id):
    """A batch of sources of different lengths gives each the ids, scores and attention it gets alone."""
    translator = registry.get(model_id)
    ids = [translator.source_ids(t) for t in texts_of(translator)]
    cfg = DecodeConfig()
    with torch.inference_mode():
        batched = decode_batch(translator.model, pad(ids), cfg)
        for src, hyps in zip(ids, batched, strict=True):
            assert len(hyps) == 1
            assert_same(greedy_search(translator.model, torch.tensor([src]), cfg)[0], hyps[0])
    assert len({len(h[0].ids) for h in batched}) > 2  # the rows really ended at different steps


@pytest.mark.parametrize("model_id", SHIPPED)
def test_batched_sampling_gives_each_seed_its_own_samples(registry, model_id):
    """Each source draws, from its own seed, exactly the samples it draws alone, in the same order."""
    translator = registry.get(model_id)
    ids = [translator.source_ids(t) for t in texts_of(translator)]
    cfg = DecodeConfig(strategy="sample", num_samples=3, temperature=1.2, top_p=0.9, top_k=50)
    seeds = [11 * b + 3 for b in range(len(ids))]
    with torch.inference_mode():
        batched = decode_batch(translator.model, pad(ids), cfg, seeds=seeds)
        for src, seed, hyps in zip(ids, seeds, batched, strict=True):
            alone = sample(translator.model, torch.tensor([src]), replace(cfg, seed=seed))
            assert len(hyps) == len(alone) == 3
            for a, b in zip(alone, hyps, strict=True):
                assert_same(a, b)
    lengths = [len(h.ids) for hyps in batched for h in hyps]
    assert len(set(lengths)) > 3  # samples of one source end apart too: finished rows left while others drew on


def test_batched_prefixes_and_repetition_options_are_per_source(registry):
    """Each source's forced prefix and the repetition options apply to its own rows only."""
    translator = registry.get("de-en-rnn-bahdanau")
    texts = texts_of(translator)[:4]
    ids = [translator.source_ids(t) for t in texts]
    prefixes = [translator.tgt_tok.encode(p) for p in ("The", "", "Two", "A small")]
    cfg = DecodeConfig(repetition_penalty=1.3, no_repeat_ngram=2)
    with torch.inference_mode():
        batched = decode_batch(translator.model, pad(ids), cfg, prefixes=prefixes)
        for src, prefix, hyps in zip(ids, prefixes, batched, strict=True):
            assert hyps[0].ids[: len(prefix)] == prefix
            assert_same(greedy_search(translator.model, torch.tensor([src]), cfg, prefix)[0], hyps[0])


class CountingModel:
    """A model that counts the rows each ``decode_step`` runs."""

    def __init__(self, model) -> None:
        self.model, self.rows = model, []

    def encode(self, src):
        return self.model.encode(src)

    def init_state(self, memory):
        return self.model.init_state(memory)

    def decode_step(self, memory, state, prev):
        self.rows.append(prev.size(0))
        return self.model.decode_step(memory, state, prev)


def test_finished_rows_leave_the_batch(registry):
    """Every row-step computed is a token of some output: no row is decoded after its EOS."""
    translator = registry.get("de-en-rnn-bahdanau")
    ids = [translator.source_ids(t) for t in texts_of(translator)]
    counting = CountingModel(translator.model)
    with torch.inference_mode():
        batched = decode_batch(counting, pad(ids), DecodeConfig())
    assert all(h[0].ids[-1] == EOS_ID for h in batched)
    assert sum(counting.rows) == sum(len(h[0].ids) for h in batched)
    assert counting.rows[0] == len(ids) > counting.rows[-1]


def test_beam_is_not_batched(registry):
    """decode_batch refuses beam search rather than decoding it wrongly."""
    translator = registry.get("de-en-rnn-bahdanau")
    with pytest.raises(ValueError, match="beam"):
        decode_batch(translator.model, pad([translator.source_ids("Ein Mann.")]), DecodeConfig(strategy="beam"))


@pytest.mark.parametrize("model_id", SHIPPED)
def test_run_together_equals_run(registry, model_id):
    """Results decoded together carry the same text, pieces, hypotheses, encoder attention and warnings as ``run``."""
    translator = registry.get(model_id)
    texts = texts_of(translator)
    cfg = DecodeConfig()
    together = run_together(translator, texts, [cfg] * len(texts), [translator.source_ids(t) for t in texts])
    for text, result in zip(texts, together, strict=True):
        alone = translator.run(text, cfg)
        assert (result.source_text, result.source_ids, result.source_pieces) == (alone.source_text, alone.source_ids,
                                                                                 alone.source_pieces)
        assert (result.best.text, result.best.pieces) == (alone.best.text, alone.best.pieces)
        rounded = 1e-4  # alternatives' probabilities are rounded to 4 decimals: a value near a boundary may round apart
        assert result.best.alternatives == [[(p, pytest.approx(q, abs=TOL + rounded)) for p, q in a] for a in alone.best.alternatives]
        assert result.warnings == alone.warnings and result.config == alone.config
        assert_same(alone.best, result.best)
        if alone.encoder_attention is None:
            assert result.encoder_attention is None
        else:  # [L_enc, H, S, S] of its own source, padding cut away
            assert result.encoder_attention.shape == alone.encoder_attention.shape
            assert (result.encoder_attention - alone.encoder_attention).abs().max() <= TOL


def test_batcher_decodes_concurrent_requests_together(registry):
    """Requests sent at once are batched, and each gets what ``run`` gives it alone; beam passes through."""
    translator = registry.get("de-en-rnn-bahdanau")
    texts = texts_of(translator)
    batcher = Batcher(window_s=0.05)
    cfgs = [DecodeConfig(), DecodeConfig(strategy="sample", num_samples=2, seed=5), DecodeConfig(strategy="beam", beam_size=3)]
    jobs = [(t, c) for t in texts for c in cfgs]
    results: dict[int, object] = {}

    def send(i: int) -> None:
        results[i] = batcher.run(translator, *jobs[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (text, cfg) in enumerate(jobs):
        alone = translator.run(text, cfg)
        assert [h.ids for h in results[i].hypotheses] == [h.ids for h in alone.hypotheses]
        assert results[i].config == alone.config
    short = batcher.lane("short")
    assert short.requests == 2 * len(texts)  # greedy and sampling; beam never entered a lane
    assert short.batches < short.requests  # some were decoded together


def test_batcher_refuses_what_run_refuses(registry):
    """Bad input gets the same message through the batcher as from ``run``."""
    translator = registry.get("de-en-rnn-bahdanau")
    batcher = Batcher()
    for text, cfg in (("", DecodeConfig()), ("Ein Mann.", DecodeConfig(strategy="sample", top_p=0.0))):
        with pytest.raises(InputError) as alone:
            translator.run(text, cfg)
        with pytest.raises(InputError) as batched:
            batcher.run(translator, text, cfg)
        assert str(batched.value) == str(alone.value)


def test_small_request_does_not_wait_behind_long_ones(registry):
    """A small request sent while long ones decode is answered long before they are, in its own lane."""
    translator = registry.get("de-en-rnn-bahdanau")
    batcher = Batcher()
    long_text = " ".join(translator.card.examples * 3)
    cfg = DecodeConfig()
    assert len(translator.source_ids(long_text)) > 100
    done: dict[str, float] = {}

    def send(name: str, text: str) -> None:
        batcher.run(translator, text, cfg)
        done[name] = time.perf_counter()

    longs = [threading.Thread(target=send, args=(f"long{i}", long_text)) for i in range(8)]
    for t in longs:
        t.start()
    deadline = time.perf_counter() + 30
    while batcher.lane("long").batches == 0 and time.perf_counter() < deadline:  # until the long ones are decoding
        time.sleep(0.001)
    start = time.perf_counter()
    send("small", "Ein Mann.")
    for t in longs:
        t.join()
    assert batcher.lane("long").requests == len(longs) and batcher.lane("short").requests == 1
    assert done["small"] < min(done[f"long{i}"] for i in range(len(longs)))
    assert done["small"] - start < 1.0


def test_concurrent_api_calls_are_batched_and_answered_as_alone(registry):
    """/generate calls sent at once through the served app are decoded together, each with the reply it gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    import app
    from tests.serving import serving

    texts = texts_of(registry.get("de-en-rnn-bahdanau"))
    with serving(app.demo) as url:
        client = Client(url, verbose=False, analytics_enabled=False)
        alone = [client.predict(t, "de-en-rnn-bahdanau", "greedy", api_name="/generate") for t in texts]
        lane = app.BATCHER.lane("short")
        before = (lane.batches, lane.requests)
        clients = [Client(url, verbose=False, analytics_enabled=False) for _ in texts]  # connected before any call
        with ThreadPoolExecutor(len(texts)) as pool:
            together = list(pool.map(lambda c, t: c.predict(t, "de-en-rnn-bahdanau", "greedy", api_name="/generate"),
                                     clients, texts))
        batches, requests = lane.batches - before[0], lane.requests - before[1]
    for a, b in zip(alone, together, strict=True):
        assert (b["text"], b["hypotheses"][0]["ids"]) == (a["text"], a["hypotheses"][0]["ids"])
        assert b["hypotheses"][0]["score"] == pytest.approx(a["hypotheses"][0]["score"], abs=2e-4)  # rounded to 4 decimals
    assert requests == len(texts) and batches < requests


def test_a_lone_request_does_not_wait_for_company(registry):
    """With nobody else sending, a request is decoded at once, not after the batching window."""
    translator = registry.get("de-en-rnn-bahdanau")
    batcher = Batcher(window_s=2.0)
    start = time.perf_counter()
    for _ in range(2):
        batcher.run(translator, "Ein Mann.", DecodeConfig())
    assert time.perf_counter() - start < 2.0


def lane_jobs(translator, texts: list[str]) -> list[Job]:
    cfg = with_fresh_seed(DecodeConfig())
    return [Job(translator, t, cfg, translator.source_ids(t)) for t in texts]


def test_many_waiting_requests_decode_as_two_batches_at_once(registry):
    """With two idle workers, 2 x SPLIT_AT requests that wait together become two halves, each answered as alone."""
    translator = registry.get("de-en-rnn-bahdanau")
    texts = [texts_of(translator)[i % 5] for i in range(2 * SPLIT_AT)]
    lane = Lane("test", window_s=0.0, max_batch=16, workers=2)
    jobs = lane_jobs(translator, texts)
    lane.submit(*jobs)
    results = [job.future.result(timeout=60) for job in jobs]
    assert (lane.batches, lane.requests) == (2, 2 * SPLIT_AT)
    for text, result in zip(texts, results, strict=True):
        assert result.hypotheses[0].ids == translator.run(text, DecodeConfig()).hypotheses[0].ids


def test_requests_that_trickle_in_wait_for_one_batch_not_a_second_worker(registry):
    """While one worker decodes, a few newcomers (fewer than SPLIT_AT) are left for one batch after it, not
    decoded one by one by the other worker."""
    translator = registry.get("de-en-rnn-bahdanau")
    lane = Lane("test", window_s=0.0, max_batch=16, workers=2)
    first = lane_jobs(translator, [" ".join(translator.card.examples * 3)])  # a long decode (> 100 source tokens)
    lane.submit(*first)
    time.sleep(0.02)  # the first worker has taken it
    newcomers = lane_jobs(translator, texts_of(translator)[: SPLIT_AT - 1])
    for job in newcomers:
        lane.submit(job)
    for job in first + newcomers:
        job.future.result(timeout=60)
    assert (lane.batches, lane.requests) == (2, SPLIT_AT)


def test_submit_batches_what_run_batches_and_leaves_the_rest_to_alone(registry):
    """``submit`` gives a future of what ``run`` returns for greedy and sampling, and None for beam search and a
    forced prefix (decoded alone: ``alone`` gives what ``run`` gives)."""
    translator = registry.get("de-en-rnn-bahdanau")
    batcher = Batcher()
    future = batcher.submit(translator, "Ein Mann.", DecodeConfig())
    assert future is not None
    assert future.result(timeout=60).hypotheses[0].ids == translator.run("Ein Mann.", DecodeConfig()).hypotheses[0].ids
    beam = DecodeConfig(strategy="beam")
    assert batcher.submit(translator, "Ein Mann.", beam) is None
    assert batcher.submit(translator, "Ein Mann.", DecodeConfig(), prefix="A") is None
    assert batcher.alone(translator, "Ein Mann.", beam).best.ids == translator.run("Ein Mann.", beam).best.ids
    with pytest.raises(InputError, match="temperature"):
        batcher.submit(translator, "Ein Mann.", DecodeConfig(strategy="sample", temperature=0.0))


def test_a_cancelled_request_is_left_out_of_its_batch(registry):
    """A request whose caller went away (its future cancelled) before its batch started is not decoded, and the
    requests decoded with it still get their answers."""
    translator = registry.get("de-en-rnn-bahdanau")
    lane = Lane("test", window_s=0.0, max_batch=16, workers=1)
    gone, kept = lane_jobs(translator, ["Ein Mann.", "Zwei Hunde spielen im Schnee."])
    assert gone.future.cancel()
    lane.submit(gone, kept)
    assert kept.future.result(timeout=60).hypotheses[0].ids == translator.run(kept.text, DecodeConfig()).hypotheses[0].ids
    assert (lane.batches, lane.requests) == (1, 1) and gone.future.cancelled()
    alone = lane_jobs(translator, ["Ein Mann."])[0]
    alone.future.cancel()
    lane.submit(alone)
    later = lane_jobs(translator, ["Ein Mann."])[0]
    lane.submit(later)
    assert later.future.result(timeout=60).best.ids == translator.run("Ein Mann.", DecodeConfig()).best.ids
    assert (lane.batches, lane.requests) == (2, 2)  # the cancelled one alone made no batch
