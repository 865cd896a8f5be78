"""Task metrics: BLEU/chrF, G2P word and phone error rates, ROUGE, exact match.

``score(metric, hypotheses, references)`` returns the task's headline number (used for
early stopping and model selection, so it is always *higher is better*) and a dict of every
number worth reporting. A reference may be one string or a list of strings (every correct
answer for that source: the pronunciations of a word); the metrics credit the best match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sacrebleu

Reference = str | Sequence[str]


def as_reference_lists(references: Sequence[Reference]) -> list[list[str]]:
    """Each reference as a non-empty list of strings."""
    out = [[r] if isinstance(r, str) else list(r) for r in references]
    if any(not refs for refs in out):
        raise ValueError("every hypothesis needs at least one reference")
    return out


def bleu_chrf(hypotheses: list[str], references: Sequence[Reference], tokenize: str = "13a") -> dict[str, Any]:
    """Corpus BLEU and chrF, cased and lowercased, each with its sacreBLEU signature.

    Several references per hypothesis become several reference streams, padded with None
    where a source has fewer (sacreBLEU skips those).
    """
    ref_lists = as_reference_lists(references)
    n_streams = max(len(r) for r in ref_lists)
    streams = [[r[k] if k < len(r) else None for r in ref_lists] for k in range(n_streams)]
    out: dict[str, Any] = {}
    for suffix, lowercase in (("", False), ("_lc", True)):
        bleu = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase)
        chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
        b = bleu.corpus_score(hypotheses, streams)
        c = chrf.corpus_score(hypotheses, streams)
        out[f"bleu{suffix}"] = round(b.score, 2)
        out[f"chrf{suffix}"] = round(c.score, 2)
        out[f"bleu{suffix}_signature"] = str(bleu.get_signature())
        out[f"chrf{suffix}_signature"] = str(chrf.get_signature())
    return out


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (unit costs)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def error_rates(hypotheses: list[str], references: Sequence[Reference]) -> dict[str, Any]:
    """G2P word error rate and phone error rate, in percent.

    A word is right if its phones equal ANY reference pronunciation. Its phone errors are
    the edit distance to the closest reference, and PER divides their sum by the summed
    lengths of those closest references (ties go to the shorter reference).
    """
    wrong, errors, length = 0, 0, 0
    for hyp, refs in zip(hypotheses, as_reference_lists(references)):
        phones = hyp.split()
        distance, ref_len = min((edit_distance(phones, r.split()), len(r.split())) for r in refs)
        wrong += distance > 0
        errors += distance
        length += ref_len
    n = max(len(hypotheses), 1)
    return {
        "wer": round(100 * wrong / n, 2),
        "per": round(100 * errors / max(length, 1), 2),
        "word_accuracy": round(100 * (1 - wrong / n), 2),
        "words": len(hypotheses),
    }


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(hypotheses: list[str], references: Sequence[Reference]) -> dict[str, Any]:
    """Mean ROUGE-1/2/L F1 (percent; Porter stemming; best reference per item) via ``rouge-score``."""
    from rouge_score import rouge_scorer  # imported here: only summarisation needs it

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    ref_lists = as_reference_lists(references)
    for hyp, refs in zip(hypotheses, ref_lists):
        scores = scorer.score_multi(refs, hyp)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    n = max(len(hypotheses), 1)
    return {key: round(100 * totals[key] / n, 2) for key in ROUGE_TYPES}


def lead(sources: list[str], references: Sequence[Reference]) -> tuple[int, list[str]]:
    """The lead baseline: the first N words of each source, N = mean reference length in words (rounded)."""
    ref_lists = as_reference_lists(references)
    lengths = [len(r.split()) for refs in ref_lists for r in refs]
    n_words = max(1, round(sum(lengths) / max(len(lengths), 1)))
    return n_words, [" ".join(s.split()[:n_words]) for s in sources]


def lead_baseline(sources: list[str], references: Sequence[Reference]) -> dict[str, Any]:
    """ROUGE of the lead baseline, keyed ``lead_<type>``, plus the ``lead_words`` it kept."""
    n_words, leads = lead(sources, references)
    return {"lead_words": n_words, **{f"lead_{k}": v for k, v in rouge(leads, references).items()}}


def exact_match(hypotheses: list[str], references: Sequence[Reference]) -> dict[str, Any]:
    """Percent of hypotheses equal (after stripping spaces at the ends) to one of their references."""
    hits = sum(h.strip() in {r.strip() for r in refs} for h, refs in zip(hypotheses, as_reference_lists(references)))
    return {"exact_match": round(100 * hits / max(len(hypotheses), 1), 2), "items": len(hypotheses)}


def score(metric: str, hypotheses: list[str], references: Sequence[Reference]) -> tuple[float, dict[str, Any]]:
    """(headline value, all values) for ``metric``.

    ``bleu``: lowercased BLEU (13a) is the headline; ``bleu_zh``: BLEU with sacreBLEU's
    Chinese tokenizer; ``g2p``: word accuracy (100 − WER); ``rouge``: ROUGE-L F1;
    ``exact``: exact match.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if metric == "bleu":
        values = bleu_chrf(hypotheses, references)
        return values["bleu_lc"], values
    if metric == "bleu_zh":
        values = bleu_chrf(hypotheses, references, tokenize="zh")
        return values["bleu"], values
    if metric == "g2p":
        values = error_rates(hypotheses, references)
        return values["word_accuracy"], values
    if metric == "rouge":
        values = rouge(hypotheses, references)
        return values["rougeL"], values
    if metric == "exact":
        values = exact_match(hypotheses, references)
        return values["exact_match"], values
    raise ValueError(f"unknown metric {metric!r}")
