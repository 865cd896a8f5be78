"""The decoding lab's beam-search views: one step's candidates, the tree, a node's path, the ranking by α.

All of them read the tree the search recorded (``DecodeResult.beam_tree``: the root is BOS at
step 0; each step adds the 2k best expansions of the live beams, ``kept``, ``finished`` or
``pruned``). Two need the model's numbers beyond the tree, taken from a ``TreeReplay``
(``demo_core.serving.lab.tree_replay``, about one decode's time, cached by ``DecodeLab``):
the expansions the search never ranked, and the attention of a path to a node that ended no
hypothesis (without a replay that path is teacher-forced on its own).

    beam_step(translator, result, t)          # the candidates of every live beam at step t
    tree_nodes(translator, result)            # nodes to draw
    node_path(translator, result, node_id)    # ids, pieces and attention of the path to a node
    rank_finished(translator, result, alpha)  # finished hypotheses ranked with another α
    visible_nodes(result)                     # pruned branches folded in a large tree
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from demo_core.decoding.processors import length_penalty
from demo_core.decoding.recorder import BeamNode
from demo_core.decoding.replay import TreeReplay, teacher_force, tree_levels
from demo_core.pipeline import DecodeResult, InputError, Translator
from demo_core.serving.lab import check_step, encode_source
from demo_core.text.tokenizer import EOS_ID

FOLD_BEAM, FOLD_STEPS = 5, 30  # a tree of at most this beam width and length is drawn whole


@dataclass(frozen=True)
class BeamCandidate:
    """One expansion of a live beam at a step."""

    node: int | None  # its tree node; None for an expansion the search never ranked (from a replay)
    token: int
    piece: str
    log_prob: float  # the token's log-prob (after repetition options and prefix forcing)
    score: float  # cumulative log-prob of the path: what the search ranks
    rank: int | None  # 1-based rank among the step's ranked expansions; None beyond them
    status: str  # kept | finished | pruned | not ranked
    reason: str  # why, in words


@dataclass(frozen=True)
class BeamRow:
    """A live beam at step t-1 and its candidates for token t."""

    node: int
    score: float
    ids: list[int]  # the beam's tokens so far
    text: str
    candidates: list[BeamCandidate]  # by score, best first


@dataclass(frozen=True)
class BeamStep:
    """Step t (1-based) of a beam search: every live beam's expansions and which survived."""

    step: int
    beam_size: int
    beams: list[BeamRow]
    ranked: int  # expansions the search ranked at this step (at most 2 x beam size)
    kth_live_score: float | None  # score of the k-th best live expansion (the last one kept); None if fewer lived
    lowest_ranked_score: float | None
    ended: str | None  # why the search stopped after this step; None if it went on


@dataclass(frozen=True)
class TreeNode:
    """A beam-tree node to draw."""

    id: int
    parent: int | None
    token: int
    piece: str  # unescaped; "<s>" for the root
    score: float  # cumulative log-prob
    log_prob: float  # the token's own log-prob (score - parent's score)
    step: int
    status: str  # kept | pruned | finished
    hypothesis: int | None  # index in result.hypotheses of the hypothesis this node ends


@dataclass(frozen=True)
class NodePath:
    """The path from the root to a node: its tokens and the attention row of each of its steps."""

    node: int
    ids: list[int]  # [s]
    pieces: list[str]  # [s]
    attention: torch.Tensor  # [s, L, H, S]


@dataclass(frozen=True)
class RankedHypothesis:
    """A finished node of the tree, scored with some α."""

    node: int
    rank: int  # 1-based, under the α asked for
    search_rank: int  # 1-based, under the decode's own α
    ids: list[int]
    text: str
    length: int  # tokens, EOS included
    score: float  # log-prob
    normalized: float  # score / ((5 + length) / 6) ** α
    eos: bool  # ended with EOS (False: cut at the length limit)
    hypothesis: int | None  # index in result.hypotheses (None: beyond the n-best returned)


@dataclass(frozen=True)
class Fold:
    """The nodes to draw: ``visible`` ids, and per visible node how many descendants are folded into it."""

    visible: list[int]
    folded: dict[int, int]
    folding: bool  # False: the tree is small enough to draw whole


def nodes_of(result: DecodeResult) -> dict[int, BeamNode]:
    """The tree's nodes by id; InputError for a result without a beam tree."""
    if not result.beam_tree:
        raise InputError(f"the result was decoded with {result.config.strategy}, not beam search: it has no beam tree")
    return {n.id: n for n in result.beam_tree}


def path_ids(nodes: dict[int, BeamNode], node_id: int) -> list[int]:
    """Token ids from the root (excluded) to ``node_id`` (included)."""
    ids = []
    node = nodes[node_id]
    while node.parent is not None:
        ids.append(node.token)
        node = nodes[node.parent]
    return ids[::-1]


def _hypothesis_of(result: DecodeResult, nodes: dict[int, BeamNode]) -> dict[int, int]:
    """Finished node id -> index of the hypothesis it ends."""
    index = {tuple(h.ids): i for i, h in enumerate(result.hypotheses)}
    return {n.id: index[tuple(path_ids(nodes, n.id))] for n in nodes.values()
            if n.status == "finished" and tuple(path_ids(nodes, n.id)) in index}


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _reason(node: BeamNode, rank: int, k: int, kth: float | None) -> str:
    if node.status == "kept":
        return f"ranked {rank}: among the {k} best live scores, it lives on"
    if node.status == "finished":
        if node.token == EOS_ID:
            return f"EOS ranked {rank}, inside the top {k}: the hypothesis ends here"
        return "the length limit is reached: the hypothesis ends here, unfinished"
    if node.token == EOS_ID:
        return f"EOS ranked {rank}, outside the top {k}: only an EOS among the {k} best ends a hypothesis"
    if kth is None:
        return f"ranked {rank}: pruned"
    return f"score {node.score:.3f} is below {kth:.3f}, the {_ordinal(k)} best live score: {k} beams were already full"


def beam_step(translator: Translator, result: DecodeResult, t: int, replay: TreeReplay | None = None,
              unranked: int = 3) -> BeamStep:
    """The candidates of every live beam at step t (1-based), with status and reason.

    With a ``replay``, each beam also lists its ``unranked`` best expansions that fell outside
    the 2k the search ranked (status ``not ranked``).
    """
    nodes = nodes_of(result)
    levels = tree_levels(result.beam_tree)
    check_step(t, len(levels) - 1, "the beam search")
    k = result.config.beam_size
    level = levels[t]
    kept_scores = [n.score for n in level if n.status == "kept"]
    kth = kept_scores[-1] if len(kept_scores) >= k else None
    lowest = level[-1].score if level else None
    piece = translator.tgt_tok.piece
    by_parent: dict[int, list[BeamCandidate]] = {}
    for rank, node in enumerate(level, start=1):
        by_parent.setdefault(node.parent, []).append(BeamCandidate(
            node=node.id, token=node.token, piece=piece(node.token), log_prob=node.score - nodes[node.parent].score,
            score=node.score, rank=rank, status=node.status, reason=_reason(node, rank, k, kth)))
    beams = []
    for parent in [n for n in levels[t - 1] if n.status == "kept" or n.parent is None]:
        found = by_parent.get(parent.id, [])
        if replay is not None and parent.id in replay.row:
            row = replay.row[parent.id]
            taken = {c.token for c in found}
            extra = [(tok, lp) for tok, lp in zip(replay.top_ids[row].tolist(), replay.top_log_probs[row].tolist())
                     if tok not in taken and lp != float("-inf")][:unranked]
            found = found + [BeamCandidate(
                node=None, token=tok, piece=piece(tok), log_prob=lp, score=parent.score + lp, rank=None, status="not ranked",
                reason=f"score {parent.score + lp:.3f} is below {lowest:.3f}: not among the {len(level)} best expansions ranked")
                for tok, lp in extra]
        ids = path_ids(nodes, parent.id)
        beams.append(BeamRow(node=parent.id, score=parent.score, ids=ids, text=translator.tgt_tok.decode(ids),
                             candidates=sorted(found, key=lambda c: -c.score)))
    return BeamStep(step=t, beam_size=k, beams=beams, ranked=len(level), kth_live_score=kth, lowest_ranked_score=lowest,
                    ended=_ended(levels, t, k))


def _ended(levels: list[list[BeamNode]], t: int, k: int) -> str | None:
    """Why the search stopped after step t, or None if it went on."""
    if t + 1 < len(levels):
        return None
    if any(n.status == "finished" and n.token != EOS_ID for n in levels[t]):
        return "the length limit was reached"
    if sum(n.status == "finished" for level in levels for n in level) >= k:
        return f"{k} hypotheses had finished"
    return "no live hypothesis was left"


def tree_nodes(translator: Translator, result: DecodeResult) -> list[TreeNode]:
    """Every node of the beam tree, in id order, with its piece and the hypothesis it ends."""
    nodes = nodes_of(result)
    ends = _hypothesis_of(result, nodes)
    return [TreeNode(id=n.id, parent=n.parent, token=n.token, piece=translator.tgt_tok.piece(n.token), score=n.score,
                     log_prob=n.score - nodes[n.parent].score if n.parent is not None else 0.0, step=n.step, status=n.status,
                     hypothesis=ends.get(n.id))
            for n in sorted(nodes.values(), key=lambda n: n.id)]


def node_path(translator: Translator, result: DecodeResult, node_id: int, replay: TreeReplay | None = None) -> NodePath:
    """The path to ``node_id``: its ids, pieces and attention [s, L, H, S] (row i: the step that wrote token i).

    The attention comes from the hypothesis the node ends, else from ``replay`` (the search's
    own rows), else from teacher-forcing the path (equal to a float rounding).
    """
    nodes = nodes_of(result)
    if node_id not in nodes:
        raise InputError(f"node {node_id} is not in the beam tree (nodes 0 to {len(nodes) - 1})")
    ids = path_ids(nodes, node_id)
    pieces = translator.tgt_tok.display_pieces(ids)
    ends = _hypothesis_of(result, nodes)
    if not ids:
        attention = torch.zeros(0)
    elif node_id in ends:
        attention = result.hypotheses[ends[node_id]].attention
    elif replay is not None:
        ancestors, node = [], nodes[node_id]
        while node.parent is not None:
            node = nodes[node.parent]
            ancestors.append(replay.row[node.id])
        attention = replay.attention[torch.tensor(ancestors[::-1])]
    else:
        with torch.inference_mode():
            attention = teacher_force(translator.model, encode_source(translator, result), ids)[1]
    return NodePath(node=node_id, ids=ids, pieces=pieces, attention=attention)


def rank_finished(translator: Translator, result: DecodeResult, alpha: float | None = None) -> list[RankedHypothesis]:
    """Every finished node ranked by score / ((5 + length) / 6) ** α, best first (α None: the decode's own)."""
    nodes = nodes_of(result)
    own = result.config.length_penalty
    alpha = own if alpha is None else float(alpha)
    if not 0.0 <= alpha <= 5.0:
        raise InputError(f"length_penalty must be between 0 and 5, got {alpha:g}")
    ends = _hypothesis_of(result, nodes)
    finished = [n for n in nodes.values() if n.status == "finished"]
    by_own = sorted(finished, key=lambda n: n.score / length_penalty(n.step, own), reverse=True)
    search_rank = {n.id: r for r, n in enumerate(by_own, start=1)}
    ranked = sorted(finished, key=lambda n: n.score / length_penalty(n.step, alpha), reverse=True)
    out = []
    for rank, n in enumerate(ranked, start=1):
        ids = path_ids(nodes, n.id)
        out.append(RankedHypothesis(node=n.id, rank=rank, search_rank=search_rank[n.id], ids=ids,
                                    text=translator.tgt_tok.decode(ids), length=n.step, score=n.score,
                                    normalized=n.score / length_penalty(n.step, alpha), eos=n.token == EOS_ID,
                                    hypothesis=ends.get(n.id)))
    return out


def best_by_alpha(result: DecodeResult, alphas: Iterable[float] = tuple(a / 10 for a in range(21))) -> list[tuple[float, int]]:
    """(α, id of the best finished node under α) for each α: where the winner changes with α."""
    finished = [n for n in nodes_of(result).values() if n.status == "finished"]
    return [(a, max(finished, key=lambda n: n.score / length_penalty(n.step, a)).id) for a in alphas]


def visible_nodes(result: DecodeResult, expanded: Iterable[int] = (), max_beam: int = FOLD_BEAM,
                  max_steps: int = FOLD_STEPS) -> Fold:
    """The nodes to draw. A tree within ``max_beam`` x ``max_steps`` is drawn whole; a wider or longer one
    shows only the paths to finished nodes (and the children of the ``expanded`` nodes): every other
    branch, pruned sooner or later, folds into its nearest visible ancestor."""
    nodes = nodes_of(result)
    steps = max(n.step for n in nodes.values())
    if result.config.beam_size <= max_beam and steps <= max_steps:
        return Fold(visible=sorted(nodes), folded={}, folding=False)
    visible = {0}
    for n in nodes.values():
        if n.status == "finished":
            while n.id not in visible:
                visible.add(n.id)
                n = nodes[n.parent]
    opened = set(expanded)
    while True:  # an opened node shows its children, and an opened child its own
        shown = {n.id for n in nodes.values() if n.parent in opened & visible} - visible
        if not shown:
            break
        visible |= shown
    folded: dict[int, int] = {}
    for n in nodes.values():
        if n.id in visible:
            continue
        up = nodes[n.parent]
        while up.id not in visible:
            up = nodes[up.parent]
        folded[up.id] = folded.get(up.id, 0) + 1
    return Fold(visible=sorted(visible), folded=folded, folding=True)
