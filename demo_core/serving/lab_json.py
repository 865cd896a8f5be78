"""The decoding lab's per-step data as JSON: what ``/generate`` returns with ``steps=True``.

    steps_json(result, translator, index=0, k=10, prefix=ids)
    {"hypothesis": 0, "strategy": "beam", "forced": 0,
     "steps": [{"step": 1, "token": 25, "piece": "▁A", "raw": 0.81, "adjusted": 0.81, "forced": false,
                "top": [{"id": 25, "piece": "▁A", "raw": 0.81, "adjusted": 0.81, "cut": null, "chosen": true}, ...]}, ...],
     "tree": [{"id": 0, "parent": null, "piece": "<s>", "score": 0.0, "step": 0, "status": "kept"}, ...]}

``raw`` is the model's probability, ``adjusted`` the one the strategy chose from (after
repetition options and the forced prefix; for sampling also temperature, top-k and top-p),
``cut`` the stage that gave a token no chance. ``tree`` is null unless the strategy was beam
search. Floats have 4 decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from demo_core.pipeline import DecodeResult, Translator
from demo_core.serving.lab import DEFAULT_TOP, step_distributions, step_view

DIGITS = 4


def steps_json(result: DecodeResult, translator: Translator, index: int = 0, k: int = DEFAULT_TOP,
               prefix: Sequence[int] = ()) -> dict[str, Any]:
    """Every output step of hypothesis ``index``: the chosen token and the top ``k`` (raw and adjusted); the beam tree.

    ``prefix`` is the ids the decode was forced to start with (``branching.prefix_ids`` of the
    request's prefix). Costs one teacher-forced pass over the hypothesis (about one greedy decode).
    """
    steps = step_distributions(translator, result, index, prefix)
    out = []
    for t in range(1, steps.steps + 1):
        view = step_view(translator, steps, t, k=k)
        out.append({
            "step": t,
            "token": view.chosen,
            "piece": translator.tgt_tok.piece(view.chosen),
            "raw": round(view.chosen_raw, DIGITS),
            "adjusted": round(view.chosen_adjusted, DIGITS),
            "forced": view.forced,
            "top": [{"id": c.id, "piece": c.piece, "raw": round(c.raw, DIGITS), "adjusted": round(c.adjusted, DIGITS),
                     "cut": c.cut, "chosen": c.chosen} for c in view.candidates],
        })
    tree = None
    if result.beam_tree:
        tree = [{"id": n.id, "parent": n.parent, "piece": translator.tgt_tok.piece(n.token), "score": round(n.score, DIGITS),
                 "step": n.step, "status": n.status} for n in result.beam_tree]
    return {"hypothesis": index, "strategy": result.config.strategy, "forced": len(prefix), "steps": out, "tree": tree}
