"""Greedy, beam-search and sampling decoders that record attention at every step.

Every decoder is a free function over the shared model interface

    memory = model.encode(src)                 # src [B, S]
    state = model.init_state(memory)
    log_probs, state, attn = model.decode_step(memory, state, prev_tokens)
    #        [B, V]              [B, layers, heads, S]

``memory`` and ``state`` are dicts of tensors whose first dimension is the hypothesis, so a
decoder reorders or copies hypotheses with ``index_select`` and never asks which
architecture it drives. Decoders work on ids; ``demo_core.inference`` turns text into ids
and ids into pieces and text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from demo_core.tokenizer import BOS_ID, EOS_ID, PAD_ID

STRATEGIES = ("greedy", "beam", "sample")
MAX_BEAM = 16
MAX_OUTPUT_TOKENS = 400


@dataclass(frozen=True)
class DecodeConfig:
    """Every decoding knob in one place; ``validate`` names the first bad parameter."""

    strategy: str = "greedy"
    beam_size: int = 5
    length_penalty: float = 1.0  # GNMT alpha: score / ((5 + len) / 6) ** alpha
    n_best: int | None = None  # beam: hypotheses returned (default: beam_size)
    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0
    seed: int | None = 0
    num_samples: int = 1
    max_len: int | None = None  # absolute limit on output tokens; default a * src_len + b
    max_len_a: float = 2.0
    max_len_b: int = 10
    no_repeat_ngram: int = 0  # 0 = off
    repetition_penalty: float = 1.0  # 1 = off
    alternatives: int = 5  # top-k alternatives kept per step

    def validate(self) -> None:
        """Raise ValueError naming the parameter that is out of range."""
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if not 1 <= self.beam_size <= MAX_BEAM:
            raise ValueError(f"beam_size must be between 1 and {MAX_BEAM}, got {self.beam_size}")
        if self.n_best is not None and not 1 <= self.n_best <= self.beam_size:
            raise ValueError(f"n_best must be between 1 and beam_size ({self.beam_size}), got {self.n_best}")
        if not 0.0 <= self.length_penalty <= 5.0 or math.isnan(self.length_penalty):
            raise ValueError(f"length_penalty must be between 0 and 5, got {self.length_penalty}")
        if not self.temperature > 0 or math.isinf(self.temperature):
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.num_samples <= MAX_BEAM:
            raise ValueError(f"num_samples must be between 1 and {MAX_BEAM}, got {self.num_samples}")
        if self.max_len is not None and not 1 <= self.max_len <= MAX_OUTPUT_TOKENS:
            raise ValueError(f"max_len must be between 1 and {MAX_OUTPUT_TOKENS}, got {self.max_len}")
        if self.no_repeat_ngram < 0:
            raise ValueError(f"no_repeat_ngram must be >= 0 (0 = off), got {self.no_repeat_ngram}")
        if not 1.0 <= self.repetition_penalty <= 10.0:
            raise ValueError(f"repetition_penalty must be between 1 and 10, got {self.repetition_penalty}")
        if not 0 <= self.alternatives <= 20:
            raise ValueError(f"alternatives must be between 0 and 20, got {self.alternatives}")

    def output_limit(self, src_len: int) -> int:
        """Most output tokens (EOS included) for a source of ``src_len`` tokens."""
        if self.max_len is not None:
            return self.max_len
        return min(MAX_OUTPUT_TOKENS, int(self.max_len_a * src_len + self.max_len_b))


@dataclass
class Hypothesis:
    """One output sequence; ``ids`` ends with EOS when ``finished``."""

    ids: list[int]
    token_logprobs: list[float]  # model log-probability of each id
    alt_ids: list[list[int]]  # per step: top alternatives (ids) ...
    alt_probs: list[list[float]]  # ... and their probabilities
    attention: torch.Tensor  # [T, layers, heads, S]
    score: float  # sum of token_logprobs
    normalized_score: float  # score / GNMT length penalty (beam) or score / T
    finished: bool  # False when cut at the length limit
    pieces: list[str] = field(default_factory=list)
    text: str = ""
    alternatives: list[list[tuple[str, float]]] = field(default_factory=list)  # (piece, prob)


@dataclass(frozen=True)
class BeamNode:
    """A node of the beam-search tree; node 0 is the BOS root."""

    id: int
    parent: int | None
    token: int
    score: float  # cumulative log-probability
    step: int
    status: str  # kept | pruned | finished


def index_tree(tree: Any, index: torch.Tensor) -> Any:
    """Select rows ``index`` (dim 0) of every tensor in a dict/list/tuple tree."""
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    if isinstance(tree, dict):
        return {k: index_tree(v, index) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(index_tree(v, index) for v in tree)
    return tree


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + |Y|) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass is >= p; others get -inf. logits [N, V]."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    mass_before = probs.cumsum(-1) - probs  # mass of strictly more likely tokens
    remove_sorted = mass_before >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k most likely tokens; logits [N, V]."""
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth = logits.topk(k, dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def adjust_log_probs(
    log_probs: torch.Tensor, history: torch.Tensor, cfg: DecodeConfig, step: int, prefix: list[int]
) -> torch.Tensor:
    """Apply repetition penalty, no-repeat-n-gram and a forced prefix. log_probs [N, V], history [N, t]."""
    if cfg.repetition_penalty != 1.0 and history.size(1) > 0:
        seen = torch.zeros_like(log_probs, dtype=torch.bool).scatter(1, history, True)
        log_probs = torch.where(seen, log_probs * cfg.repetition_penalty, log_probs).log_softmax(-1)
    n = cfg.no_repeat_ngram
    if n > 0 and history.size(1) >= n - 1:
        log_probs = log_probs.clone()
        for row, seq in enumerate(history.tolist()):
            context = tuple(seq[len(seq) - n + 1 :]) if n > 1 else ()
            for i in range(len(seq) - n + 1):
                if tuple(seq[i : i + n - 1]) == context:
                    log_probs[row, seq[i + n - 1]] = float("-inf")
    if step < len(prefix):
        forced = torch.full_like(log_probs, float("-inf"))
        forced[:, prefix[step]] = log_probs[:, prefix[step]].clamp(min=-1e4)
        log_probs = forced
    return log_probs


class _Recorder:
    """Per-hypothesis history of tokens, log-probs, alternatives and attention, reorderable."""

    def __init__(self, n: int, alternatives: int) -> None:
        self.k = alternatives
        self.tokens = torch.zeros(n, 0, dtype=torch.long)
        self.logprobs = torch.zeros(n, 0)
        self.alt_ids = torch.zeros(n, 0, alternatives, dtype=torch.long)
        self.alt_probs = torch.zeros(n, 0, alternatives)
        self.attention: torch.Tensor | None = None  # [n, t, L, H, S]

    def add(self, tokens: torch.Tensor, log_probs: torch.Tensor, attn: torch.Tensor) -> None:
        """tokens [n], log_probs [n, V] (distribution the token came from), attn [n, L, H, S]."""
        chosen = log_probs.gather(1, tokens[:, None])  # [n, 1]
        top = log_probs.topk(min(self.k, log_probs.size(-1)), dim=-1)
        self.tokens = torch.cat([self.tokens, tokens[:, None]], 1)
        self.logprobs = torch.cat([self.logprobs, chosen], 1)
        self.alt_ids = torch.cat([self.alt_ids, top.indices[:, None]], 1)
        self.alt_probs = torch.cat([self.alt_probs, top.values.exp()[:, None]], 1)
        attn = attn.float()[:, None]
        self.attention = attn if self.attention is None else torch.cat([self.attention, attn], 1)

    def select(self, index: torch.Tensor) -> None:
        for name in ("tokens", "logprobs", "alt_ids", "alt_probs", "attention"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, index))

    def hypothesis(self, row: int, alpha: float | None) -> Hypothesis:
        """Hypothesis of ``row``, cut after its first EOS. alpha None: normalise by length."""
        ids = self.tokens[row].tolist()
        length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
        logprobs = self.logprobs[row, :length].tolist()
        score = float(sum(logprobs))
        norm = length_penalty(length, alpha) if alpha is not None else max(length, 1)
        attention = self.attention[row, :length] if self.attention is not None else torch.zeros(0)
        return Hypothesis(
            ids=ids[:length],
            token_logprobs=logprobs,
            alt_ids=self.alt_ids[row, :length].tolist(),
            alt_probs=self.alt_probs[row, :length].tolist(),
            attention=attention,
            score=score,
            normalized_score=score / norm,
            finished=EOS_ID in ids[:length],
        )


def _decode_each(
    model: Any, memory: dict, src_len: int, cfg: DecodeConfig, prefix: list[int], choose: Callable[[torch.Tensor], torch.Tensor]
) -> _Recorder:
    """Decode every row of ``memory`` independently, ``choose`` picking tokens [N] from log-probs [N, V]."""
    n = memory["mask"].size(0)
    state = model.init_state(memory)
    prev = torch.full((n,), BOS_ID, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    rec = _Recorder(n, cfg.alternatives)
    for step in range(cfg.output_limit(src_len)):
        log_probs, state, attn = model.decode_step(memory, state, prev)
        log_probs = adjust_log_probs(log_probs, rec.tokens, cfg, step, prefix)
        tokens = choose(log_probs).masked_fill(done, PAD_ID)
        rec.add(tokens, log_probs, attn)
        done |= tokens == EOS_ID
        prev = tokens
        if bool(done.all()):
            break
    return rec


@torch.no_grad()
def greedy_search(
    model: Any, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: dict | None = None
) -> list[Hypothesis]:
    """Most likely token at every step, for a batch src [B, S]; one hypothesis per row.

    ``memory`` is ``model.encode(src)`` when the caller already has it (every decoder takes it).
    """
    memory = memory if memory is not None else model.encode(src)
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], lambda lp: lp.argmax(-1))
    return [rec.hypothesis(row, None) for row in range(src.size(0))]


@torch.no_grad()
def sample(
    model: Any, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: dict | None = None
) -> list[Hypothesis]:
    """``cfg.num_samples`` samples for one source src [1, S] (temperature, top-k, top-p, seed)."""
    generator = torch.Generator()
    generator.manual_seed(cfg.seed if cfg.seed is not None else int(torch.seed() % 2**31))

    def choose(log_probs: torch.Tensor) -> torch.Tensor:
        logits = top_p_filter(top_k_filter(log_probs / cfg.temperature, cfg.top_k), cfg.top_p)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)

    memory = index_tree(memory if memory is not None else model.encode(src), torch.zeros(cfg.num_samples, dtype=torch.long))
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], choose)
    return [rec.hypothesis(row, None) for row in range(cfg.num_samples)]


@torch.no_grad()
def beam_search(
    model: Any, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: dict | None = None
) -> tuple[list[Hypothesis], list[BeamNode]]:
    """Beam search for one source src [1, S]: n-best hypotheses and the search tree.

    At each step the 2k best expansions are ranked; an EOS among the top k finishes a
    hypothesis, the best k others live on, the rest are pruned. The search stops when k
    hypotheses have finished (every beam has ended) or at the length limit, where the live
    hypotheses end unfinished (``finished=False``).
    """
    prefix = prefix or []
    k = cfg.beam_size
    alpha = cfg.length_penalty
    memory_one = memory if memory is not None else model.encode(src)
    state = model.init_state(memory_one)
    rec = _Recorder(1, cfg.alternatives)
    scores = torch.zeros(1)  # cumulative log-prob of each live hypothesis
    node_of = [0]  # tree node of each live hypothesis
    tree = [BeamNode(0, None, BOS_ID, 0.0, 0, "kept")]
    finished: list[Hypothesis] = []
    prev = torch.full((1,), BOS_ID, dtype=torch.long)
    limit = cfg.output_limit(src.size(1))
    for step in range(limit):
        memory = index_tree(memory_one, torch.zeros(prev.size(0), dtype=torch.long))
        log_probs, state, attn = model.decode_step(memory, state, prev)
        log_probs = adjust_log_probs(log_probs, rec.tokens, cfg, step, prefix)
        total = scores[:, None] + log_probs  # [n, V]
        top = total.view(-1).topk(min(2 * k, total.numel()))
        keep_rows: list[int] = []
        keep_tokens: list[int] = []
        keep_scores: list[float] = []
        keep_nodes: list[int] = []
        vocab = log_probs.size(1)
        for rank, (value, flat) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
            if value == float("-inf"):
                break
            row, token = divmod(flat, vocab)
            node_id = len(tree)
            if token == EOS_ID and rank < k:
                status = "finished"
            elif token != EOS_ID and len(keep_rows) < k:
                status = "kept"
            else:
                status = "pruned"
            tree.append(BeamNode(node_id, node_of[row], token, value, step + 1, status))
            if status == "finished":
                finished.append(_finish(rec, row, token, log_probs, attn, alpha))
            elif status == "kept":
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(value)
                keep_nodes.append(node_id)
        if len(finished) >= k or not keep_rows:
            break
        index = torch.tensor(keep_rows, dtype=torch.long)
        prev = torch.tensor(keep_tokens, dtype=torch.long)
        rec.select(index)
        rec.add(prev, log_probs.index_select(0, index), attn.index_select(0, index))
        state = index_tree(state, index)
        scores = torch.tensor(keep_scores)
        node_of = keep_nodes
    else:  # length limit reached: the live hypotheses end here, unfinished
        for row, node_id in enumerate(node_of):
            tree[node_id] = replace(tree[node_id], status="finished")
            finished.append(rec.hypothesis(row, alpha))
    finished.sort(key=lambda h: h.normalized_score, reverse=True)
    return finished[: cfg.n_best or k], tree


def _finish(rec: _Recorder, row: int, token: int, log_probs: torch.Tensor, attn: torch.Tensor, alpha: float) -> Hypothesis:
    """The hypothesis of live ``row`` extended by ``token`` (EOS) at this step."""
    one = _Recorder(1, rec.k)
    for name in ("tokens", "logprobs", "alt_ids", "alt_probs", "attention"):
        value = getattr(rec, name)
        setattr(one, name, value[row : row + 1] if value is not None else None)
    one.add(torch.tensor([token]), log_probs[row : row + 1], attn[row : row + 1])
    return one.hypothesis(0, alpha)


def decode(model: Any, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None,
           memory: dict | None = None) -> tuple[list[Hypothesis], list[BeamNode]]:
    """Run the strategy that ``cfg`` names on one source src [1, S]."""
    cfg.validate()
    if cfg.strategy == "beam":
        return beam_search(model, src, cfg, prefix, memory)
    if cfg.strategy == "sample":
        return sample(model, src, cfg, prefix, memory), []
    return greedy_search(model, src, cfg, prefix, memory), []
