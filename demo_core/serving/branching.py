"""Branching a decode: force a different token at step t and let the model go on from there.

    b = branch(translator, text, cfg, result, index=0, step=4, token_or_word="bike")
    b.result          # the new DecodeResult (same strategy and settings)
    b.forced          # how many tokens were forced: the hypothesis' first step-1 tokens + the new ones
    b.diff            # difflib opcodes over pieces, original vs new

A typed word is tokenised with the model's target vocabulary; a word it can only spell as
unknown or byte-fallback pieces (characters the model never saw) is refused, as are an empty
word, a step out of range and a prefix that would fill the whole output limit. ``prefix_ids``
applies the same checks to an API ``prefix``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from demo_core.decoding.config import DecodeConfig
from demo_core.pipeline import DecodeResult, InputError, Translator, prefix_fits
from demo_core.serving.lab import check_index, check_step
from demo_core.text.tokenizer import BOS_ID, PAD_ID, UNK_ID, normalize_text

SPECIAL = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>"}  # never forced (EOS may be: it ends the output)


@dataclass(frozen=True)
class DiffOp:
    """One difflib opcode over pieces: original[a0:a1] became new[b0:b1]."""

    tag: str  # equal | replace | insert | delete
    a0: int
    a1: int
    b0: int
    b1: int
    original: list[str]
    new: list[str]


@dataclass(frozen=True)
class Branch:
    """A re-decode from a forced prefix, compared with the hypothesis it branched from."""

    result: DecodeResult
    index: int  # hypothesis of ``result`` compared (the best, or the same sample row)
    original_index: int
    step: int
    prefix: list[int]  # the forced ids
    forced: int  # len(prefix)
    diff: list[DiffOp]
    changed: list[bool]  # per token of the new hypothesis: not in an ``equal`` block
    same: bool  # the new hypothesis has the same tokens as the original


def _unknown_characters(translator: Translator, text: str) -> list[str]:
    """Characters of ``text`` that the target vocabulary holds only as <unk> or byte-fallback pieces."""
    out = []
    for ch in dict.fromkeys(normalize_text(text).replace(" ", "")):
        ids = translator.tgt_tok.encode(ch)
        if any(i == UNK_ID or translator.tgt_tok.piece(i).startswith("<0x") for i in ids):
            out.append(ch)
    return out


def word_ids(translator: Translator, word: str, what: str = "the word to branch with") -> list[int]:
    """``word`` as target ids; InputError when it is empty or holds characters the vocabulary cannot write."""
    if not isinstance(word, str) or not normalize_text(word):
        raise InputError(f"{what} is empty: type a word, or pick one of the candidates")
    unknown = _unknown_characters(translator, word)
    if unknown:
        shown = " ".join(repr(ch) for ch in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(f"{what} ({word.strip()!r}) cannot be written with the target vocabulary of {translator.id}: "
                         f"it has no piece for {shown} (the model never wrote these characters)")
    return translator.tgt_tok.encode(word)


def _check_limit(translator: Translator, text: str, cfg: DecodeConfig, ids: list[int], what: str) -> None:
    """InputError, saying how many tokens may be forced, when ``ids`` do not fit the output limit (``prefix_fits``)."""
    limit = cfg.output_limit(len(translator.source_ids(text)))
    if not prefix_fits(ids, limit):
        raise InputError(f"{what} is {len(ids)} tokens long, too long for the length limit: the output of this input may "
                         f"have at most {limit} tokens, so at most {limit - 1} can be forced ({limit} ending with </s>)")


def prefix_ids(translator: Translator, prefix: str | None, cfg: DecodeConfig, text: str) -> list[int]:
    """An API ``prefix`` (target text) checked and tokenised: [] when blank; InputError when not representable or too long."""
    if prefix is None or (isinstance(prefix, str) and not prefix.strip()):
        return []
    if not isinstance(prefix, str):
        raise InputError("prefix must be a string of target text")
    ids = word_ids(translator, prefix, "the prefix")
    _check_limit(translator, text, cfg, ids, "the prefix")
    return ids


def _forced_tokens(translator: Translator, token_or_word: int | str) -> list[int]:
    """The new token(s) at the branch step: a candidate's id, or a typed word's ids."""
    if isinstance(token_or_word, str):
        return word_ids(translator, token_or_word)
    if isinstance(token_or_word, bool) or not isinstance(token_or_word, int):
        raise InputError(f"branch with a token id or a word, got {token_or_word!r}")
    size = translator.tgt_tok.vocab_size
    if not 0 <= token_or_word < size:
        raise InputError(f"token {token_or_word} is not in the target vocabulary (ids 0 to {size - 1})")
    if token_or_word in SPECIAL:
        raise InputError(f"token {token_or_word} ({SPECIAL[token_or_word]}) cannot be forced: pick a word piece or </s>")
    return [token_or_word]


def token_diff(original: list[str], new: list[str]) -> list[DiffOp]:
    """difflib opcodes turning ``original`` pieces into ``new`` ones."""
    matcher = difflib.SequenceMatcher(a=original, b=new, autojunk=False)
    return [DiffOp(tag, a0, a1, b0, b1, original[a0:a1], new[b0:b1]) for tag, a0, a1, b0, b1 in matcher.get_opcodes()]


def _counterpart(ids: list[int], new: DecodeResult) -> int:
    """The new sample closest to the original one (samples come sorted by score, not by draw):
    with the same seed, the draw that wrote the original goes on from the prefix with the same
    random numbers, and reproduces it exactly when the forced token is its own."""
    ratios = [difflib.SequenceMatcher(a=ids, b=h.ids, autojunk=False).ratio() for h in new.hypotheses]
    return max(range(len(ratios)), key=lambda i: (ratios[i], -i))


def branch(translator: Translator, text: str, cfg: DecodeConfig, result: DecodeResult, index: int, step: int,
           token_or_word: int | str) -> Branch:
    """Re-decode ``text`` with ``cfg``, forcing hypothesis ``index``'s first step-1 tokens and then ``token_or_word``.

    ``step`` is 1-based (the step control's t); ``token_or_word`` is a candidate's token id or
    a typed word. The new result is compared with the original through its best hypothesis
    (greedy, beam), or for sampling through the sample closest to the original (every sample
    starts with the forced prefix; a blank seed takes the original's, so the draws go on alike).
    Greedy and sampling reproduce the original when the forced token is its own; beam search
    need not, since the forced prefix gives its subtree every beam and a better-scored
    continuation may win.
    """
    check_index(result, index)
    original = result.hypotheses[index]
    check_step(step, len(original.ids), f"hypothesis {index}")
    forced = list(original.ids[: step - 1]) + _forced_tokens(translator, token_or_word)
    _check_limit(translator, text, cfg, forced, "the forced prefix")
    if cfg.strategy == "sample" and cfg.seed is None and result.config.strategy == "sample":
        cfg = replace(cfg, seed=result.config.seed)  # a blank seed continues the original's draws
    new = translator.run(text, cfg, prefix=forced)
    compared = _counterpart(original.ids, new) if cfg.strategy == "sample" else 0
    hyp = new.hypotheses[compared]
    diff = token_diff(original.pieces, hyp.pieces)
    changed = [True] * len(hyp.pieces)
    for op in diff:
        if op.tag == "equal":
            changed[op.b0 : op.b1] = [False] * (op.b1 - op.b0)
    return Branch(result=new, index=compared, original_index=index, step=step, prefix=forced, forced=len(forced),
                  diff=diff, changed=changed, same=hyp.ids == original.ids)
