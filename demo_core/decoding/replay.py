"""Replaying a finished decode through the model: the distributions and attention it saw.

A decoder records only the top alternatives of each step. The decoding lab needs the whole
next-token distribution at every step (to show what temperature or top-p did to it) and the
attention of any beam-tree node's path, so it runs the model again along the known tokens
(teacher forcing) instead of recording more during the search:

    log_probs, attention = teacher_force(model, memory, ids)    # [T, V], [T, L, H, S]
    replay = replay_tree(model, memory, tree, cfg, prefix)      # every expanded node of a beam tree

``replay_tree`` feeds the model the same rows in the same order as ``beam_search`` did, so its
numbers are the search's own, not a close copy. Neither function changes what decoders do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from demo_core.decoding.config import DecodeConfig
from demo_core.decoding.processors import adjust_log_probs
from demo_core.decoding.recorder import BeamNode
from demo_core.models.interface import Memory, Seq2SeqModel
from demo_core.text.tokenizer import BOS_ID


@torch.no_grad()
def teacher_force(model: Seq2SeqModel, memory: Memory, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's raw log-probs [T, V] and cross-attention [T, L, H, S] along ``ids`` [T].

    ``memory`` is ``model.encode`` of one source ([1, S]). Row t is the step that wrote ids[t]:
    the model was fed BOS, ids[0], ..., ids[t-1], and no strategy has touched its output.
    """
    if not ids:
        raise ValueError("teacher_force needs at least one token")
    state = model.init_state(memory)
    fed = torch.tensor([BOS_ID] + list(ids[:-1]), dtype=torch.long)  # [T]
    log_probs, attention = [], []
    for t in range(len(ids)):
        lp, state, attn = model.decode_step(memory, state, fed[t : t + 1])
        log_probs.append(lp[0])
        attention.append(attn[0])
    return torch.stack(log_probs).float(), torch.stack(attention).float()


@dataclass(frozen=True)
class TreeReplay:
    """What beam search computed for each node it expanded (the root and kept nodes with children).

    ``row[node_id]`` indexes the tensors: ``top_ids`` / ``top_log_probs`` [N, c] are the c most
    likely next tokens of that node after repetition options and prefix forcing (the log-probs
    the search ranked), ``raw_log_probs`` [N, c] the model's own log-probs of the same tokens,
    ``attention`` [N, L, H, S] the cross-attention of the step that expanded the node: the row
    of every child's token in the attention of a path.
    """

    row: dict[int, int]
    top_ids: torch.Tensor  # [N, c]
    top_log_probs: torch.Tensor  # [N, c]
    raw_log_probs: torch.Tensor  # [N, c]
    attention: torch.Tensor  # [N, L, H, S]


def tree_levels(tree: list[BeamNode]) -> list[list[BeamNode]]:
    """Nodes by step: levels[s] holds the nodes of step s in id order (their rank at that step)."""
    levels: list[list[BeamNode]] = [[] for _ in range(max((n.step for n in tree), default=0) + 1)]
    for node in sorted(tree, key=lambda n: n.id):
        levels[node.step].append(node)
    return levels


@torch.no_grad()
def replay_tree(
    model: Seq2SeqModel, memory: Memory, tree: list[BeamNode], cfg: DecodeConfig, prefix: list[int] | None = None,
    top: int = 20,
) -> TreeReplay:
    """Every expanded node of a beam ``tree`` run through the model again, rows as the search ordered them.

    ``memory`` is ``model.encode`` of the one source the tree was searched for, ``cfg`` and
    ``prefix`` the decode's own (they shape the ranked log-probs). ``top`` = c: how many next
    tokens to keep per node (at least 2 x beam size, the expansions the search considered).
    """
    prefix = prefix or []
    levels = tree_levels(tree)
    nodes = {n.id: n for n in tree}
    c = max(top, 2 * cfg.beam_size)
    rows: list[int] = [0]  # node ids of the live rows, in the search's row order
    history = torch.zeros(1, 0, dtype=torch.long)  # [n, s] tokens of each live row so far
    state = model.init_state(memory)
    memory_n = memory
    row_of: dict[int, int] = {}
    ids, logps, raws, attns = [], [], [], []
    for step in range(len(levels) - 1):
        n = len(rows)
        if memory_n.mask.size(0) != n:
            memory_n = memory.select(torch.zeros(n, dtype=torch.long))
        prev = torch.tensor([nodes[r].token for r in rows], dtype=torch.long)  # the root's token is BOS
        raw, state, attn = model.decode_step(memory_n, state, prev)
        adjusted = adjust_log_probs(raw, history if cfg.uses_history else None, cfg, step, prefix)
        best = adjusted.topk(min(c, adjusted.size(1)), dim=-1)
        for node_id in rows:
            row_of[node_id] = len(row_of)
        ids.append(best.indices)
        logps.append(best.values.float())
        raws.append(raw.gather(1, best.indices).float())
        attns.append(attn.float())
        kept = [node for node in levels[step + 1] if node.status == "kept"]
        if not kept or step + 2 >= len(levels):
            break
        parent_rows = torch.tensor([rows.index(node.parent) for node in kept], dtype=torch.long)
        history = torch.cat([history.index_select(0, parent_rows), prev.new_tensor([n.token for n in kept])[:, None]], dim=1)
        state = state.select(parent_rows)
        rows = [node.id for node in kept]
    return TreeReplay(row=row_of, top_ids=torch.cat(ids), top_log_probs=torch.cat(logps), raw_log_probs=torch.cat(raws),
                      attention=torch.cat(attns))
