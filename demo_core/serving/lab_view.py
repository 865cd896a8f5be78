"""The decoding lab on the page: what the attention viewer draws when a user steps through a decode.

Built on ``lab`` (teacher-forced distributions), ``beam_view`` (the tree and each step's beams)
and ``branching``; this module only lays their results out as the viewer's JSON (``lab`` in the
viewer's document). Stepping, choosing a step and re-ranking the tree by α happen in the
browser from this one document; the server is asked again only for another hypothesis, new
strategy settings (the distributions are reshaped, nothing is decoded), a tree node's path or a
branch.
"""

from __future__ import annotations

import weakref
from typing import Any

from demo_core.decoding.config import DecodeConfig, config_from
from demo_core.pipeline import DecodeResult, InputError, Translator
from demo_core.serving import attention_view, beam_view
from demo_core.serving.branching import Branch, branch
from demo_core.serving.lab import DecodeLab
from demo_core.text.labels import piece_label, piece_labels

TOP = 10  # candidates shown per step
DIGITS = 4
SETTINGS = ("temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram")  # what reshapes a step's distribution


class LabCache:
    """One ``DecodeLab`` per shown result, dropped when the result is (the page's state owns results)."""

    def __init__(self) -> None:
        self._labs: dict[int, tuple[weakref.ref, DecodeLab]] = {}

    def get(self, translator: Translator, result: DecodeResult) -> DecodeLab:
        key = id(result)
        held = self._labs.get(key)
        if held is None or held[0]() is not result:
            lab = DecodeLab(translator, result, result.prefix_ids)
            self._labs[key] = (weakref.ref(result, lambda _, k=key: self._labs.pop(k, None)), lab)
            return lab
        return held[1]


def _r(x: float) -> float:
    return round(float(x), DIGITS)


def steps_document(lab: DecodeLab, index: int, cfg: DecodeConfig | None = None, k: int = TOP) -> list[dict[str, Any]]:
    """Per output step of hypothesis ``index``: the token written and the top ``k`` candidates,
    each [piece, raw probability, adjusted probability, cut by, chosen, id], under ``cfg``."""
    steps = lab.steps(index)
    out = []
    for t in range(1, steps.steps + 1):
        view = lab.step_view(t, index, cfg, k)
        out.append({
            "piece": piece_label(steps.pieces[t - 1]),
            "forced": view.forced,
            "kept": view.kept,
            "keptMass": _r(view.kept_raw_mass),
            "argmax": view.argmax,
            "top": [[piece_label(c.piece), _r(c.raw), _r(c.adjusted), c.cut, c.chosen, c.id] for c in view.candidates],
        })
    return out


def beams_document(lab: DecodeLab, result: DecodeResult) -> list[dict[str, Any]]:
    """Per step of a beam search: every live beam's candidates with their fate and why."""
    replay = lab.replay()
    steps = max(n.step for n in result.beam_tree)
    out = []
    for t in range(1, steps + 1):
        step = beam_view.beam_step(lab.translator, result, t, replay)
        out.append({
            "kth": None if step.kth_live_score is None else _r(step.kth_live_score),
            "ended": step.ended,
            "beams": [{"node": row.node, "text": row.text, "score": _r(row.score),
                       "cands": [[piece_label(c.piece), _r(c.score), c.status, c.reason, c.node] for c in row.candidates[:6]]}
                      for row in step.beams],
        })
    return out


def tree_document(translator: Translator, result: DecodeResult) -> dict[str, Any]:
    """The beam tree to draw: nodes [id, parent, piece, score, step, status, hypothesis], folded counts, and the
    finished nodes [node, length, score, text] that the page re-ranks for any α."""
    fold = beam_view.visible_nodes(result)
    shown = set(fold.visible)
    nodes = [[n.id, n.parent, piece_label(n.piece), _r(n.score), n.step, n.status, n.hypothesis]
             for n in beam_view.tree_nodes(translator, result) if n.id in shown]
    finished = [[h.node, h.length, _r(h.score), h.text] for h in beam_view.rank_finished(translator, result)]
    return {"nodes": nodes, "folded": {str(k): v for k, v in fold.folded.items()}, "folding": fold.folding,
            "finished": finished, "alpha": result.config.length_penalty}


def lab_document(lab: DecodeLab, result: DecodeResult, index: int, cfg: DecodeConfig | None = None) -> dict[str, Any]:
    """The viewer's ``lab``: the strategy, the forced prefix length, each step, and for beam search its beams and tree."""
    beam = result.config.strategy == "beam"
    return {
        "strategy": (cfg or result.config).strategy,
        "forced": len(result.prefix_ids),
        "hypothesis": index,
        "steps": steps_document(lab, index, cfg),
        "beams": beams_document(lab, result) if beam and index == 0 else None,
        "tree": tree_document(lab.translator, result) if beam else None,
        "settings": {key: getattr(cfg or result.config, key) for key in
                     ("temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram")},
    }


def branch_document(branch: Branch, original: list[str]) -> dict[str, Any]:
    """What the branch view adds to its picture: both outputs, which new tokens differ, how many were forced."""
    new = branch.result.hypotheses[branch.index]
    return {"step": branch.step, "forced": branch.forced, "same": branch.same,
            "original": piece_labels(original), "new": piece_labels(new.pieces), "changed": branch.changed,
            "text": new.text}


def settings_config(result: DecodeResult, settings: dict[str, Any] | None) -> DecodeConfig:
    """The decode's own config with the page's current strategy settings laid over it (blank ones keep the decode's)."""
    given = {k: v for k, v in (settings or {}).items() if k in SETTINGS and v is not None and v != ""}
    try:
        return config_from(given, base=result.config)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def path_document(lab: DecodeLab, result: DecodeResult, node: int, layer: Any, head: Any,
                  cfg: DecodeConfig | None = None) -> dict[str, Any]:
    """The viewer's document for a beam-tree node: the path's attention, with the lab's data of the best hypothesis."""
    if not any(n.id == node for n in result.beam_tree) or node == 0:
        raise InputError(f"node {node} is not a token of this beam tree")
    path = beam_view.node_path(lab.translator, result, node, lab.replay())
    doc = attention_view.path_payload(result, node, path.pieces, path.attention, layer, head)
    doc["lab"], doc["labAvailable"] = lab_document(lab, result, 0, cfg), True
    return doc


def branch_picture(translator: Translator, result: DecodeResult, index: int, request: dict[str, Any], layer: Any,
                   head: Any) -> dict[str, Any]:
    """Branch hypothesis ``index`` at ``request["step"]`` with ``request["token"]`` (an id) or ``request["word"]``, and
    draw the new decode: its attention (same colour scale) and, in ``branch``, both outputs with the difference."""
    try:
        step = int(request.get("step"))
    except (TypeError, ValueError):
        raise InputError("choose a step to branch at") from None
    choice = request.get("token") if request.get("token") is not None else request.get("word", "")
    if isinstance(choice, float) and choice.is_integer():
        choice = int(choice)
    made = branch(translator, result.source_text, result.config, result, index, step, choice)
    doc = attention_view.payload(made.result, made.index, layer, head)
    doc["branch"] = branch_document(made, result.hypotheses[index].pieces)
    return doc
