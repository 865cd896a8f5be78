"""A micro-batcher: API requests that arrive together decode together.

One decoding step costs about the same for one row as for sixteen (it is a chain of small
matrix products whose time is mostly per-operation overhead), so requests for the same model
and settings that arrive within a few milliseconds of each other are decoded as one batch by
``demo_core.decoding.search.decode_batch``, and each gets exactly the ``DecodeResult`` that
``Translator.run`` would give it alone (tests/test_batching.py).

* Batchable: greedy and sampling without a forced prefix. Everything else (beam search, a
  prefix) passes through to ``Translator.run`` in the caller's thread, at most
  ``pass_through`` at a time (one decode per core).
* Two lanes: ``short``, with two worker threads (two batches at once, one per core), and
  ``long``, with one. A request whose rows x output limit
  exceeds ``long_row_steps`` goes to the long lane, so a small request never waits behind a long
  one; a lane's batch is at most ``max_batch`` requests.
* A lane takes every waiting request; when it found company, or its last batch had some, it
  waits at most ``window_s`` for more, so under load batches fill up while a lone client's
  requests never wait (requests that arrive while it decodes are already waiting).
* If a batch fails for a reason that is not the user's, each of its requests runs alone, so a
  batching bug never costs a request that would have worked; the failure is logged.

    batcher = Batcher()
    result = batcher.run(translator, text, cfg)  # blocks until decoded; thread-safe
    future = batcher.submit(translator, text, cfg)  # or: a Future of it (None: not batchable, decode it alone)

A request whose future is cancelled before its batch starts (an ``asyncio`` caller that went
away) is left out of the batch; once a batch starts, its requests can no longer be cancelled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import torch

from demo_core.decoding import DecodeConfig
from demo_core.decoding.config import with_fresh_seed
from demo_core.decoding.search import BATCH_STRATEGIES, decode_batch
from demo_core.pipeline import DecodeResult, InputError, Translator
from demo_core.tasks.datasets import pad
from demo_core.tasks.input_checks import input_warnings, output_problem

LOG = logging.getLogger("seq2seq_explorer")
WINDOW_S = 0.005  # how long a lane waits for company after the first request: a few ms against a ~15-30 ms decode
MAX_BATCH = 16  # requests per batch: 16 greedy RNN requests decode together in the time of about 4 alone (benchmarks/load.py)
LONG_ROW_STEPS = 128  # rows x output limit above which a request is long: a greedy source over 59 tokens (limit 2S+10)
SPLIT_AT = 8  # a worker leaves half of the waiting jobs to an idle one when each half has at least this many
SHORT_WORKERS = 2  # batches of short requests decoded at once: one per core of the 2-core Space (benchmarks/load.py)
PASS_THROUGH = 2  # unbatched decodes (beam search, a prefix) at once: one per core of the 2-core Space


@dataclass
class Job:
    """One waiting request: its source ids, its config (seed fixed) and where its result goes."""

    translator: Translator
    text: str
    cfg: DecodeConfig
    ids: list[int]
    future: Future = field(default_factory=Future)

    @property
    def key(self) -> tuple[int, DecodeConfig]:
        """Requests with equal keys decode in one batch: same model, same settings but the seed."""
        return id(self.translator), replace(self.cfg, seed=None)


def batchable(cfg: DecodeConfig, prefix: list[int] | str | None) -> bool:
    """Whether ``decode_batch`` can run this request (greedy or sampling, no forced prefix)."""
    return cfg.strategy in BATCH_STRATEGIES and not prefix


def row_steps(cfg: DecodeConfig, ids: list[int]) -> int:
    """The most rows x steps a request can decode: its size for choosing a lane."""
    return (cfg.num_samples if cfg.strategy == "sample" else 1) * cfg.output_limit(len(ids))


def run_together(translator: Translator, texts: list[str], cfgs: list[DecodeConfig],
                 ids: list[list[int]]) -> list[DecodeResult]:
    """``translator.run(texts[b], cfgs[b])`` for every b in one batched decode; ``cfgs`` differ
    at most in their seeds (each already fixed) and ``ids`` are the checked source ids."""
    start = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda b: len(ids[b]), reverse=True)  # similar padding, similar ends
    src = pad([ids[b] for b in order])  # [B, S]
    with torch.inference_mode():
        memory = translator.model.encode(src)
        hyps = decode_batch(translator.model, src, cfgs[order[0]], seeds=[cfgs[b].seed for b in order], memory=memory)
        encoder_attention = memory.encoder_attention()  # [B, L, H, S, S] or None
    elapsed_ms = (time.perf_counter() - start) * 1000
    card = translator.card
    results: list[DecodeResult | None] = [None] * len(texts)
    for row, b in enumerate(order):
        n = len(ids[b])
        for h in hyps[row]:
            translator._describe(h)  # pieces, text and alternatives exactly as ``run`` fills them
        results[b] = DecodeResult(
            model_id=translator.id, source_text=texts[b], source_ids=ids[b],
            source_pieces=translator.src_tok.display_pieces(ids[b]), hypotheses=hyps[row], config=cfgs[b],
            elapsed_ms=elapsed_ms,  # the whole batch's decode: what this request waited for once it was taken
            encoder_attention=None if encoder_attention is None else encoder_attention[row, :, :, :n, :n].float(),
            warnings=input_warnings(card.task, card.source_lang, translator.id, texts[b])
            + [w for w in [output_problem(card.task, hyps[row][0].text)] if w],
        )
    return results  # type: ignore[return-value]


class Lane:
    """Worker threads that decode the requests of one queue in batches.

    With two workers a lane can decode two batches at once, one per core (the RNN's greedy loop runs
    in TorchScript, without Python's GIL). A second batch starts only when it is worth a core: while
    one worker decodes, another takes jobs only once ``SPLIT_AT`` of them wait, so that requests that
    trickle in (Gradio's queue hands them over one by one) gather into one full batch instead of
    many small ones; and when one worker finds many waiting and another idle, it takes half."""

    def __init__(self, name: str, window_s: float, max_batch: int, workers: int = 1) -> None:
        self.name, self.window_s, self.max_batch, self.workers = name, window_s, max_batch, workers
        self.batches = 0  # batches decoded, and requests in them (for the tests)
        self.requests = 0
        self._waiting: deque[Job] = deque()
        self._changed = threading.Condition()  # guards the waiting jobs and the counts; notified when either changes
        self._busy = 0  # workers collecting or decoding a batch
        self._threads = [threading.Thread(target=self._work, name=f"batcher-{name}-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, *jobs: Job) -> None:
        """Queue ``jobs`` (all at once: a worker sees every one of them or none)."""
        with self._changed:
            self._waiting.extend(jobs)
            self._changed.notify_all()

    def _ready(self) -> bool:
        """Whether a free worker should start a batch now (caller holds the lock)."""
        return bool(self._waiting) and (self._busy == 0 or len(self._waiting) >= SPLIT_AT)

    def _collect(self, company: bool) -> list[Job]:
        """The next batch: the waiting jobs up to ``max_batch`` (half of them if they are many and another
        worker is free), and, when there is company (``company``: this worker's last batch had some),
        those that come within the window."""
        with self._changed:
            self._changed.wait_for(self._ready)
            waiting, free = len(self._waiting), self.workers - self._busy - 1
            limit = -(-waiting // 2) if free > 0 and waiting >= 2 * SPLIT_AT else waiting
            limit = min(self.max_batch, max(limit, 1))
            batch = [self._waiting.popleft() for _ in range(min(limit, waiting))]
            self._busy += 1
            if len(batch) > 1 or company:
                deadline = time.perf_counter() + self.window_s
                limit = self.max_batch if limit == waiting else limit  # not split: room for newcomers
                while len(batch) < limit:
                    if self._waiting:
                        batch.append(self._waiting.popleft())
                    elif not self._changed.wait(deadline - time.perf_counter()) or time.perf_counter() >= deadline:
                        break
        return batch

    def _work(self) -> None:
        company = False  # more than one request in the last batch: others are likely to come
        while True:
            batch = self._collect(company)
            company = len(batch) > 1
            groups: dict[tuple, list[Job]] = {}
            for job in batch:
                groups.setdefault(job.key, []).append(job)
            try:
                for jobs in groups.values():
                    jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # cancelled: left out
                    if not jobs:
                        continue
                    with self._changed:
                        self.batches += 1
                        self.requests += len(jobs)
                    self._decode(jobs)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()  # a free worker may start the jobs that waited meanwhile

    @staticmethod
    def _decode(jobs: list[Job]) -> None:
        """Decode ``jobs`` (one key) together and hand out the results; alone if that fails."""
        translator = jobs[0].translator
        try:
            results = run_together(translator, [j.text for j in jobs], [j.cfg for j in jobs], [j.ids for j in jobs])
        except Exception:  # noqa: BLE001 (not the user's mistake: every request still gets its own answer)
            LOG.exception("batched decode of %d requests failed; decoding them one by one", len(jobs))
            for job in jobs:
                try:
                    job.future.set_result(translator.run(job.text, job.cfg))
                except Exception as exc:  # noqa: BLE001 (the caller raises it)
                    job.future.set_exception(exc)
            return
        for job, result in zip(jobs, results):
            job.future.set_result(result)


class Batcher:
    """Decode API requests, batching those that arrive together (see the module docstring)."""

    def __init__(self, window_s: float = WINDOW_S, max_batch: int = MAX_BATCH, long_row_steps: int = LONG_ROW_STEPS,
                 pass_through: int = PASS_THROUGH, short_workers: int = SHORT_WORKERS) -> None:
        self.window_s, self.max_batch, self.long_row_steps = window_s, max_batch, long_row_steps
        self.workers = {"short": max(1, short_workers), "long": 1}  # a long batch takes a core for a while: one at a time
        self._alone = threading.BoundedSemaphore(pass_through)
        self._lanes: dict[str, Lane] = {}
        self._lock = threading.Lock()

    def lane(self, name: str) -> Lane:
        """The lane ``name`` (short | long), started on first use."""
        with self._lock:
            if name not in self._lanes:
                self._lanes[name] = Lane(name, self.window_s, self.max_batch, self.workers[name])
            return self._lanes[name]

    def run(self, translator: Translator, text: str, cfg: DecodeConfig, prefix: list[int] | str = "") -> DecodeResult:
        """What ``translator.run(text, cfg, prefix=prefix)`` returns (or raises), decoded in a batch where possible."""
        future = self.submit(translator, text, cfg, prefix)
        return self.alone(translator, text, cfg, prefix) if future is None else future.result()

    def alone(self, translator: Translator, text: str, cfg: DecodeConfig, prefix: list[int] | str = "") -> DecodeResult:
        """``translator.run`` for a request ``submit`` does not batch, at most ``pass_through`` at a time."""
        with self._alone:
            return translator.run(text, cfg, prefix=prefix)

    def submit(self, translator: Translator, text: str, cfg: DecodeConfig,
               prefix: list[int] | str = "") -> Future | None:
        """Queue a batchable request and return the future of its ``DecodeResult`` (its exception: what ``run``
        raises); None for a request that decodes alone (``alone``). Raises ``InputError`` for a bad config or text."""
        if self.max_batch <= 1 or not batchable(cfg, prefix):
            return None
        try:
            cfg.validate()
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        cfg = with_fresh_seed(cfg)
        ids = translator.source_ids(text)  # InputError for text it cannot take, as ``run`` raises it
        job = Job(translator, text, cfg, ids)
        self.lane("long" if row_steps(cfg, ids) > self.long_row_steps else "short").submit(job)
        return job.future
