"""Greedy, beam-search and sampling decoders that record attention at every step.

Every decoder is a free function over the shared model interface

    memory = model.encode(src)                 # src [B, S]
    state = model.init_state(memory)
    log_probs, state, attn = model.decode_step(memory, state, prev_tokens)
    #        [B, V]              [B, layers, heads, S]

``memory`` and ``state`` are dicts of tensors whose first dimension is the hypothesis (and
of plain values that all hypotheses share, such as a step count), so a decoder reorders or
copies hypotheses with ``index_select`` and never asks which architecture it drives. A
decoder continues only from the state the last step returned: ``decode_step`` may update
the state it is given in place. Decoders work on ids; ``demo_core.inference`` turns text
into ids and ids into pieces and text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from demo_core.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

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

    @property
    def uses_history(self) -> bool:
        """Whether ``adjust_log_probs`` reads the tokens generated so far."""
        return self.repetition_penalty != 1.0 or self.no_repeat_ngram > 0

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
    log_probs: torch.Tensor, history: torch.Tensor | None, cfg: DecodeConfig, step: int, prefix: list[int]
) -> torch.Tensor:
    """Apply repetition penalty, no-repeat-n-gram and a forced prefix. log_probs [N, V].

    history [N, t] holds the tokens so far; it may be None when ``cfg.uses_history`` is False.
    """
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


@dataclass
class _Step:
    """What one decoding step recorded.

    The step ran on n live rows and recorded m new rows, each a token appended to one of the
    live rows (its parent). Alternatives and attention belong to the parent rows, since they
    describe the distribution each new token was drawn from.
    """

    tokens: list[int]  # [m]
    logprobs: list[float]  # [m] log-probability of each token
    parents: list[int] | None  # [m] parent row of each new row; None: row i extends row i
    alt_ids: list[list[int]]  # [n][alternatives] most likely tokens of each parent row ...
    alt_probs: list[list[float]]  # ... and their probabilities
    attention: torch.Tensor  # [n, L, H, S]


class _Recorder:
    """Every step's tokens, log-probs, alternatives and attention, read back along parent rows.

    Nothing recorded is copied when beam search reorders its hypotheses: a hypothesis is
    assembled from its last token back to its first only when it is read.
    """

    def __init__(self, alternatives: int, track_history: bool = False) -> None:
        self.k = alternatives
        self.steps: list[_Step] = []
        self.track_history = track_history  # keep every row's tokens so far (repetition options)
        self._history: torch.Tensor | None = None  # [rows of the last step, steps so far]

    def add(
        self,
        tokens: torch.Tensor,
        log_probs: torch.Tensor,
        attn: torch.Tensor,
        parents: list[int] | None = None,
        top: Any = None,
    ) -> None:
        """Record tokens [m], each appended to row ``parents[i]`` (None: row i) of this step.

        log_probs [n, V] and attn [n, L, H, S] are what the step computed for its n rows;
        ``top`` is ``log_probs.topk(c)`` with c >= alternatives when the caller has it already.
        """
        if parents is None:  # row i extends row i: one gather, no index tensor
            rows, chosen = None, log_probs.gather(1, tokens[:, None])[:, 0]
        else:
            rows = torch.tensor(parents, dtype=torch.long)
            chosen = log_probs[rows, tokens]
        if self.track_history:
            before = self._history if self._history is not None else tokens.new_zeros(log_probs.size(0), 0)
            self._history = torch.cat([before if rows is None else before.index_select(0, rows), tokens[:, None]], dim=1)
        if top is None:
            top = log_probs.topk(min(self.k, log_probs.size(-1)), dim=-1)
        self.steps.append(_Step(
            tokens=tokens.tolist(),
            logprobs=chosen.tolist(),
            parents=parents,
            alt_ids=top.indices[:, : self.k].tolist(),
            alt_probs=top.values[:, : self.k].exp().tolist(),
            attention=attn.float(),
        ))

    def history(self, n: int) -> torch.Tensor | None:
        """Tokens so far of rows 0..n-1 of the last step, [n, t] (for ``adjust_log_probs``);
        None when the recorder does not track them (no repetition option is on).

        Kept up to date by ``add`` (one gather per step) when ``track_history`` is on.
        """
        if not self.track_history:
            return None
        if self._history is None:
            return torch.zeros(n, 0, dtype=torch.long)
        return self._history[:n]

    def _path(self, row: int) -> tuple[list[int], list[float], list[list[int]], list[list[float]], list[torch.Tensor]]:
        """Tokens, log-probs, alternatives and attention rows from the first step to ``row`` of the last."""
        ids, logprobs, alt_ids, alt_probs, attention = [], [], [], [], []
        for step in reversed(self.steps):
            parent = row if step.parents is None else step.parents[row]
            ids.append(step.tokens[row])
            logprobs.append(step.logprobs[row])
            alt_ids.append(step.alt_ids[parent])
            alt_probs.append(step.alt_probs[parent])
            attention.append(step.attention[parent])
            row = parent
        return ids[::-1], logprobs[::-1], alt_ids[::-1], alt_probs[::-1], attention[::-1]

    def hypothesis(self, row: int, alpha: float | None) -> Hypothesis:
        """Hypothesis of ``row`` of the last step, cut after its first EOS. alpha None: normalise by length."""
        ids, logprobs, alt_ids, alt_probs, attention = self._path(row)
        length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
        score = float(sum(logprobs[:length]))
        norm = length_penalty(length, alpha) if alpha is not None else max(length, 1)
        return Hypothesis(
            ids=ids[:length],
            token_logprobs=logprobs[:length],
            alt_ids=alt_ids[:length],
            alt_probs=alt_probs[:length],
            attention=torch.stack(attention[:length]) if length else torch.zeros(0),  # [T, L, H, S]
            score=score,
            normalized_score=score / norm,
            finished=EOS_ID in ids[:length],
        )


def _decode_each(
    model: Any, memory: dict, src_len: int, cfg: DecodeConfig, prefix: list[int],
    choose: Callable[[torch.Tensor, Any], torch.Tensor],
) -> _Recorder:
    """Decode every row of ``memory`` independently, ``choose`` picking tokens [N] from
    log-probs [N, V] and their top-k (the k most likely tokens per row, k >= 1, which the
    recorder keeps as alternatives: one top-k per step serves both)."""
    n = memory["mask"].size(0)
    state = model.init_state(memory)
    prev = torch.full((n,), BOS_ID, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    rec = _Recorder(cfg.alternatives, track_history=cfg.uses_history)
    for step in range(cfg.output_limit(src_len)):
        log_probs, state, attn = model.decode_step(memory, state, prev)
        log_probs = adjust_log_probs(log_probs, rec.history(n), cfg, step, prefix)
        top = log_probs.topk(min(max(cfg.alternatives, 1), log_probs.size(-1)), dim=-1)
        tokens = choose(log_probs, top).masked_fill(done, PAD_ID)
        rec.add(tokens, log_probs, attn, top=top)
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
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], lambda lp, top: top.indices[:, 0])
    return [rec.hypothesis(row, None) for row in range(src.size(0))]


@torch.no_grad()
def sample(
    model: Any, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: dict | None = None
) -> list[Hypothesis]:
    """``cfg.num_samples`` samples for one source src [1, S] (temperature, top-k, top-p, seed)."""
    generator = torch.Generator()
    generator.manual_seed(cfg.seed if cfg.seed is not None else int(torch.seed() % 2**31))

    def choose(log_probs: torch.Tensor, top: Any) -> torch.Tensor:
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
    memory = memory_one
    state = model.init_state(memory_one)
    rec = _Recorder(cfg.alternatives, track_history=cfg.uses_history)
    scores = torch.zeros(1)  # cumulative log-prob of each live hypothesis
    node_of = [0]  # tree node of each live hypothesis
    tree = [BeamNode(0, None, BOS_ID, 0.0, 0, "kept")]
    finished: list[Hypothesis] = []
    prev = torch.full((1,), BOS_ID, dtype=torch.long)
    limit = cfg.output_limit(src.size(1))
    for step in range(limit):
        n = prev.size(0)
        if memory["mask"].size(0) != n:  # every hypothesis reads the same source: copy it only when n changes
            memory = index_tree(memory_one, torch.zeros(n, dtype=torch.long))
        log_probs, state, attn = model.decode_step(memory, state, prev)
        log_probs = adjust_log_probs(log_probs, rec.history(n), cfg, step, prefix)
        # The 2k best expansions overall are among the 2k best of each row, which also hold
        # the alternatives to record: one top-k over the vocabulary serves both.
        top = log_probs.topk(min(max(2 * k, cfg.alternatives), log_probs.size(1)), dim=-1)  # [n, c]
        total = scores[:, None] + top.values  # [n, c]
        best = total.view(-1).topk(min(2 * k, total.numel()))
        candidates = top.indices.tolist()
        keep_rows: list[int] = []
        keep_tokens: list[int] = []
        keep_scores: list[float] = []
        keep_nodes: list[int] = []
        end_rows: list[int] = []  # rows whose hypothesis ends with EOS at this step
        for rank, (value, flat) in enumerate(zip(best.values.tolist(), best.indices.tolist())):
            if value == float("-inf"):
                break
            row, column = divmod(flat, top.indices.size(1))
            token = candidates[row][column]
            node_id = len(tree)
            if token == EOS_ID and rank < k:
                status = "finished"
                end_rows.append(row)
            elif token != EOS_ID and len(keep_rows) < k:
                status = "kept"
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(value)
                keep_nodes.append(node_id)
            else:
                status = "pruned"
            tree.append(BeamNode(node_id, node_of[row], token, value, step + 1, status))
        # The step's new rows: the live hypotheses first (the next step's rows), then the finished ones.
        tokens = torch.tensor(keep_tokens + [EOS_ID] * len(end_rows), dtype=torch.long)
        rec.add(tokens, log_probs, attn, parents=keep_rows + end_rows, top=top)
        finished.extend(rec.hypothesis(len(keep_rows) + i, alpha) for i in range(len(end_rows)))
        if len(finished) >= k or not keep_rows:
            break
        prev = tokens[: len(keep_rows)]
        state = index_tree(state, torch.tensor(keep_rows, dtype=torch.long))
        scores = torch.tensor(keep_scores)
        node_of = keep_nodes
    else:  # length limit reached: the live hypotheses end here, unfinished
        for row, node_id in enumerate(node_of):
            tree[node_id] = replace(tree[node_id], status="finished")
            finished.append(rec.hypothesis(row, alpha))
    finished.sort(key=lambda h: h.normalized_score, reverse=True)
    return finished[: cfg.n_best or k], tree


def decode(model: Any, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None,
           memory: dict | None = None) -> tuple[list[Hypothesis], list[BeamNode]]:
    """Run the strategy that ``cfg`` names on one source src [1, S]."""
    cfg.validate()
    if cfg.strategy == "beam":
        return beam_search(model, src, cfg, prefix, memory)
    if cfg.strategy == "sample":
        return sample(model, src, cfg, prefix, memory), []
    return greedy_search(model, src, cfg, prefix, memory), []
