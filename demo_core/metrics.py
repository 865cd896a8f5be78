"""Task metrics: sacreBLEU BLEU and chrF (cased and lowercased, with signatures).

``score(metric, hypotheses, references)`` returns the task's headline number (used for
early stopping) and a dict of every number worth reporting.
"""

from __future__ import annotations

from typing import Any

import sacrebleu


def bleu_chrf(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> dict[str, Any]:
    """Corpus BLEU and chrF, cased and lowercased, each with its sacreBLEU signature."""
    out: dict[str, Any] = {}
    for suffix, lowercase in (("", False), ("_lc", True)):
        bleu = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase)
        chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
        b = bleu.corpus_score(hypotheses, [references])
        c = chrf.corpus_score(hypotheses, [references])
        out[f"bleu{suffix}"] = round(b.score, 2)
        out[f"chrf{suffix}"] = round(c.score, 2)
        out[f"bleu{suffix}_signature"] = str(bleu.get_signature())
        out[f"chrf{suffix}_signature"] = str(chrf.get_signature())
    return out


def score(metric: str, hypotheses: list[str], references: list[str]) -> tuple[float, dict[str, Any]]:
    """(headline value, all values) for ``metric``: ``bleu`` (lowercased BLEU is the headline)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if metric == "bleu":
        values = bleu_chrf(hypotheses, references)
        return values["bleu_lc"], values
    raise ValueError(f"unknown metric {metric!r}")
