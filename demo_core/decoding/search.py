"""Greedy, beam-search and sampling decoders that record attention at every step.

Every decoder is a free function over the model interface (``demo_core.models.interface``):
``encode`` once, ``init_state``, then ``decode_step`` in a loop. Memory and state are
row-first dataclasses, so a decoder reorders or copies hypotheses with ``select`` and never
asks which architecture it drives. Decoders work on ids; ``demo_core.pipeline`` turns text
into ids and ids into pieces and text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from demo_core.decoding.config import DecodeConfig
from demo_core.decoding.processors import adjust_log_probs, top_k_filter, top_p_filter
from demo_core.decoding.recorder import BeamNode, Hypothesis, Recorder
from demo_core.models.interface import Memory, Seq2SeqModel
from demo_core.text.tokenizer import BOS_ID, EOS_ID, PAD_ID


def _decode_each(
    model: Seq2SeqModel, memory: Memory, src_len: int, cfg: DecodeConfig, prefix: list[int],
    choose: Callable[[torch.Tensor, Any], torch.Tensor],
) -> Recorder:
    """Decode every row of ``memory`` independently, ``choose`` picking tokens [N] from
    log-probs [N, V] and their top-k (the k most likely tokens per row, k >= 1, which the
    recorder keeps as alternatives: one top-k per step serves both)."""
    n = memory.mask.size(0)
    state = model.init_state(memory)
    prev = torch.full((n,), BOS_ID, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    rec = Recorder(cfg.alternatives, track_history=cfg.uses_history)
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
    model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: Memory | None = None
) -> list[Hypothesis]:
    """Most likely token at every step, for a batch src [B, S]; one hypothesis per row.

    ``memory`` is ``model.encode(src)`` when the caller already has it (every decoder takes it).
    """
    memory = memory if memory is not None else model.encode(src)
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], lambda lp, top: top.indices[:, 0])
    return [rec.hypothesis(row, None) for row in range(src.size(0))]


@torch.no_grad()
def sample(
    model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: Memory | None = None
) -> list[Hypothesis]:
    """``cfg.num_samples`` samples for one source src [1, S] (temperature, top-k, top-p, seed)."""
    generator = torch.Generator()
    generator.manual_seed(cfg.seed if cfg.seed is not None else int(torch.seed() % 2**31))

    def choose(log_probs: torch.Tensor, top: Any) -> torch.Tensor:
        logits = top_p_filter(top_k_filter(log_probs / cfg.temperature, cfg.top_k), cfg.top_p)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)

    memory = (memory if memory is not None else model.encode(src)).select(torch.zeros(cfg.num_samples, dtype=torch.long))
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], choose)
    return [rec.hypothesis(row, None) for row in range(cfg.num_samples)]


@torch.no_grad()
def beam_search(
    model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: Memory | None = None
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
    rec = Recorder(cfg.alternatives, track_history=cfg.uses_history)
    scores = torch.zeros(1)  # cumulative log-prob of each live hypothesis
    node_of = [0]  # tree node of each live hypothesis
    tree = [BeamNode(0, None, BOS_ID, 0.0, 0, "kept")]
    finished: list[Hypothesis] = []
    prev = torch.full((1,), BOS_ID, dtype=torch.long)
    limit = cfg.output_limit(src.size(1))
    for step in range(limit):
        n = prev.size(0)
        if memory.mask.size(0) != n:  # every hypothesis reads the same source: copy it only when n changes
            memory = memory_one.select(torch.zeros(n, dtype=torch.long))
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
        state = state.select(torch.tensor(keep_rows, dtype=torch.long))
        scores = torch.tensor(keep_scores)
        node_of = keep_nodes
    else:  # length limit reached: the live hypotheses end here, unfinished
        for row, node_id in enumerate(node_of):
            tree[node_id] = replace(tree[node_id], status="finished")
            finished.append(rec.hypothesis(row, alpha))
    finished.sort(key=lambda h: h.normalized_score, reverse=True)
    return finished[: cfg.n_best or k], tree


def decode(model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None,
           memory: Memory | None = None) -> tuple[list[Hypothesis], list[BeamNode]]:
    """Run the strategy that ``cfg`` names on one source src [1, S]."""
    cfg.validate()
    if cfg.strategy == "beam":
        return beam_search(model, src, cfg, prefix, memory)
    if cfg.strategy == "sample":
        return sample(model, src, cfg, prefix, memory), []
    return greedy_search(model, src, cfg, prefix, memory), []
