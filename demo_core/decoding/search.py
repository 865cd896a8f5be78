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
from demo_core.decoding.draw import draw_rows
from demo_core.decoding.processors import adjust_log_probs, top_k_filter, top_p_filter
from demo_core.decoding.recorder import BeamNode, Hypothesis, Recorder
from demo_core.models.interface import Draw, GreedyPath, Memory, Seq2SeqModel
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
    trace = getattr(model, "greedy_trace", None)
    if trace is not None and not cfg.uses_history and not prefix:  # the whole loop in one call, where the model has one
        traced = trace(memory, torch.full((src.size(0),), BOS_ID, dtype=torch.long), cfg.output_limit(src.size(1)),
                       max(cfg.alternatives, 1))
        if traced is not None:
            return traced_hypotheses(traced, cfg.alternatives)
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], lambda lp, top: top.indices[:, 0])
    return [rec.hypothesis(row, None) for row in range(src.size(0))]


def traced_hypotheses(trace: Any, alternatives: int) -> list[Hypothesis]:
    """One hypothesis per row of a model's ``greedy_trace`` (tokens [T, B] ...), as
    ``Recorder.hypothesis`` builds them from the same steps (cut after the first EOS)."""
    hyps = []
    rows = zip(trace.tokens.t().tolist(), trace.logprobs.t().tolist(),  # each row's steps, converted all at once
               trace.top_ids[:, :, :alternatives].transpose(0, 1).tolist(),
               trace.top_logprobs[:, :, :alternatives].exp().transpose(0, 1).tolist(), trace.attention.transpose(0, 1))
    for ids, logprobs, alt_ids, alt_probs, attention in rows:
        length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
        score = float(sum(logprobs[:length]))
        hyps.append(Hypothesis(
            ids=ids[:length],
            token_logprobs=logprobs[:length],
            alt_ids=alt_ids[:length],
            alt_probs=alt_probs[:length],
            attention=attention[:length].clone() if length else torch.zeros(0),  # [T, L, H, S]
            score=score,
            normalized_score=score / max(length, 1),
            finished=EOS_ID in ids[:length],
        ))
    return hyps


@torch.no_grad()
def sample(
    model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None, memory: Memory | None = None
) -> list[Hypothesis]:
    """``cfg.num_samples`` samples for one source src [1, S] (temperature, top-k, top-p, seed), the
    most likely first (highest log-prob under the model), so the best sample is the one shown."""
    generator = torch.Generator()
    generator.manual_seed(cfg.seed if cfg.seed is not None else int(torch.seed() % 2**31))

    def choose(log_probs: torch.Tensor, top: Any) -> torch.Tensor:
        logits = top_p_filter(top_k_filter(log_probs / cfg.temperature, cfg.top_k), cfg.top_p)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)

    memory = (memory if memory is not None else model.encode(src)).select(torch.zeros(cfg.num_samples, dtype=torch.long))
    rec = _decode_each(model, memory, src.size(1), cfg, prefix or [], choose)
    samples = [rec.hypothesis(row, None) for row in range(cfg.num_samples)]
    return sorted(samples, key=lambda h: h.score, reverse=True)  # stable: equal scores keep their draw order


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


BATCH_STRATEGIES = ("greedy", "sample")  # what ``decode_batch`` runs; beam search decodes one source at a time


def _runs(owner: list[int]) -> list[tuple[int, int, int]]:
    """(owner, start, end) of each run of equal consecutive values in ``owner``."""
    runs: list[tuple[int, int, int]] = []
    for i, o in enumerate(owner):
        if runs and runs[-1][0] == o:
            runs[-1] = (o, runs[-1][1], i + 1)
        else:
            runs.append((o, i, i + 1))
    return runs


@torch.no_grad()
def decode_batch(
    model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefixes: list[list[int]] | None = None,
    seeds: list[int | None] | None = None, memory: Memory | None = None,
) -> list[list[Hypothesis]]:
    """Greedy or sampling for several sources at once, src [B, S] PAD-padded on the right: per
    source what ``greedy_search`` or ``sample`` gives it alone.

    Each source keeps its own length limit (``cfg.output_limit`` of its own length), forced
    prefix (``prefixes[b]``) and, for sampling, seed (``seeds[b]``, else ``cfg.seed``): source b
    draws from its own generator exactly what it would draw alone, because every step still
    draws for all of its ``num_samples`` rows (finished rows get a dummy distribution). A row
    leaves the batch at its EOS or its limit, so later steps run only the rows still writing.
    Attention is cut to each source's own length, [T, layers, heads, S_b]. Callers sort sources
    by length so that rows of a batch need similar padding and end at similar steps.
    """
    if cfg.strategy not in BATCH_STRATEGIES:
        raise ValueError(f"decode_batch runs {' and '.join(BATCH_STRATEGIES)}, not {cfg.strategy}")
    B = src.size(0)
    prefixes = prefixes or [[] for _ in range(B)]
    src_lens = (src != PAD_ID).sum(1).tolist()  # [B] each source's own length (its EOS included)
    per = cfg.num_samples if cfg.strategy == "sample" else 1  # rows per source
    owner = [b for b in range(B) for _ in range(per)]  # source of each row; a source's rows are consecutive
    memory = memory if memory is not None else model.encode(src)
    if per > 1:
        memory = memory.select(torch.tensor(owner, dtype=torch.long))
    generators: list[torch.Generator] = []
    if cfg.strategy == "sample":
        for b in range(B):
            seed = seeds[b] if seeds is not None and seeds[b] is not None else cfg.seed
            generators.append(torch.Generator().manual_seed(seed if seed is not None else int(torch.seed() % 2**31)))
    limits = [cfg.output_limit(src_lens[b]) for b in owner]  # [rows]
    adjust = cfg.uses_history or any(prefixes)
    paths_of = getattr(model, "batch_paths", None)
    if not adjust and paths_of is not None:  # the whole loop in one call, where the model has one
        draw = Draw(per, cfg.temperature, cfg.top_k, cfg.top_p, generators) if cfg.strategy == "sample" else None
        rows = paths_of(memory, torch.full((len(owner),), BOS_ID, dtype=torch.long), torch.tensor(limits),
                        max(cfg.alternatives, 1), cfg.alternatives, [src_lens[b] for b in owner], draw)
        if rows is not None:
            return _by_source([_path_hypothesis(row) for row in rows], cfg, per)
    state = model.init_state(memory)
    live = list(range(len(owner)))  # the rows still writing, in order; their positions are this step's rows
    prev = torch.full((len(live),), BOS_ID, dtype=torch.long)
    history = torch.zeros(len(live), 0, dtype=torch.long) if cfg.uses_history else None  # [live, steps]
    paths: list[dict[str, list]] = [{"ids": [], "logprobs": [], "alt_ids": [], "alt_probs": [], "attention": []} for _ in owner]
    step = 0
    while live:
        log_probs, state, attn = model.decode_step(memory, state, prev)  # [n, V], [n, L, H, S]
        if adjust:
            runs = _runs([owner[row] for row in live])  # (source, start, end) of each source's live rows
            log_probs = torch.cat([adjust_log_probs(log_probs[i:j], None if history is None else history[i:j], cfg, step,
                                                    prefixes[b]) for b, i, j in runs])
        top = log_probs.topk(min(max(cfg.alternatives, 1), log_probs.size(-1)), dim=-1)
        if cfg.strategy == "greedy":
            tokens = top.indices[:, 0]
        else:
            tokens = draw_rows(log_probs, torch.tensor(live), per, cfg.temperature, cfg.top_k, cfg.top_p, generators,
                               PAD_ID)
        _append_step(paths, live, tokens, log_probs.gather(1, tokens[:, None])[:, 0], top.indices, top.values,
                     attn, cfg.alternatives, [src_lens[owner[row]] for row in live])
        step += 1
        if history is not None:
            history = torch.cat([history, tokens[:, None]], dim=1)
        keep = [pos for pos, (row, token) in enumerate(zip(live, tokens.tolist())) if token != EOS_ID and step < limits[row]]
        if len(keep) < len(live):  # rows that ended leave the batch
            if not keep:
                break
            index = torch.tensor(keep, dtype=torch.long)
            memory, state, tokens = memory.select(index), state.select(index), tokens.index_select(0, index)
            history = None if history is None else history.index_select(0, index)
            live = [live[pos] for pos in keep]
        prev = tokens
    return _by_source([_hypothesis(path) for path in paths], cfg, per)


def _by_source(hyps: list[Hypothesis], cfg: DecodeConfig, per: int) -> list[list[Hypothesis]]:
    """A batch's hypotheses (``per`` consecutive rows a source) grouped by source; samples the most likely first, as
    ``sample`` returns them (stable for ties)."""
    out = [hyps[b : b + per] for b in range(0, len(hyps), per)]
    if cfg.strategy == "sample":
        out = [sorted(h, key=lambda h: h.score, reverse=True) for h in out]
    return out


def _append_step(paths: list[dict[str, list]], rows: list[int], tokens: torch.Tensor, logprobs: torch.Tensor,
                 top_ids: torch.Tensor, top_values: torch.Tensor, attn: torch.Tensor, alternatives: int,
                 lengths: list[int]) -> None:
    """Append one step to the paths of ``rows`` (this step's rows, in order): tokens and their
    log-probs [n], the top tokens and log-probs [n, >= alternatives], attention [n, L, H, S] cut to
    each row's source length (``lengths``)."""
    attn = attn.float()
    for pos, (row, token, logprob, alt_ids, alt_probs, length) in enumerate(zip(
            rows, tokens.tolist(), logprobs.tolist(), top_ids[:, :alternatives].tolist(),
            top_values[:, :alternatives].exp().tolist(), lengths)):
        path = paths[row]
        path["ids"].append(token)
        path["logprobs"].append(logprob)
        path["alt_ids"].append(alt_ids)
        path["alt_probs"].append(alt_probs)
        path["attention"].append(attn[pos, :, :, :length])


def _path_hypothesis(path: GreedyPath) -> Hypothesis:
    """The hypothesis of one row of ``decode_batch`` (a model's ``batch_paths``, or the loop's own path through
    ``_hypothesis``), as ``Recorder.hypothesis`` builds it (no length penalty)."""
    score = float(sum(path.logprobs))
    return Hypothesis(
        ids=path.ids, token_logprobs=path.logprobs, alt_ids=path.alt_ids, alt_probs=path.alt_probs,
        attention=path.attention if path.ids else torch.zeros(0),  # [T, L, H, S_b]
        score=score, normalized_score=score / max(len(path.ids), 1), finished=EOS_ID in path.ids,
    )


def _hypothesis(path: dict[str, list]) -> Hypothesis:
    """The hypothesis of one row of ``decode_batch``'s own loop: its steps' attention [L, H, S_b] stacked."""
    attention = torch.stack(path["attention"]) if path["ids"] else torch.zeros(0)  # [T, L, H, S_b]
    return _path_hypothesis(GreedyPath(path["ids"], path["logprobs"], path["alt_ids"], path["alt_probs"], attention))


def decode(model: Seq2SeqModel, src: torch.Tensor, cfg: DecodeConfig, prefix: list[int] | None = None,
           memory: Memory | None = None) -> tuple[list[Hypothesis], list[BeamNode]]:
    """Run the strategy that ``cfg`` names on one source src [1, S]."""
    cfg.validate()
    if cfg.strategy == "beam":
        return beam_search(model, src, cfg, prefix, memory)
    if cfg.strategy == "sample":
        return sample(model, src, cfg, prefix, memory), []
    return greedy_search(model, src, cfg, prefix, memory), []
