"""The decoding lab's data: every step of a decode, and what the strategy did to each step's distribution.

A decode records the top few alternatives of each step; the lab needs the whole distribution,
so it runs the model once more along a hypothesis' tokens (teacher forcing, one step per
token) and keeps the result server-side. Everything after that is cheap and decodes nothing:

    lab = DecodeLab(translator, result)            # result = translator.run(text, cfg)
    view = lab.step_view(t=3, cfg=replace(cfg, temperature=0.7))   # redraw on a slider move
    view.candidates[0].raw, view.candidates[0].adjusted, view.candidates[0].cut

Steps are 1-based: step t wrote token t of the output (the beam tree's nodes of step t).
Beam-search views are in ``demo_core.serving.beam_view``, branching in
``demo_core.serving.branching``, the API's JSON in ``demo_core.serving.lab_json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from demo_core.decoding.config import DecodeConfig
from demo_core.decoding.replay import TreeReplay, replay_tree, teacher_force
from demo_core.decoding.reshape import CUT_REASONS, Reshaped, reshape
from demo_core.models.interface import Memory
from demo_core.pipeline import DecodeResult, InputError, Translator

DEFAULT_TOP = 10  # candidates shown per step (the issue asks for at least 10)
MAX_TOP = 100


@dataclass(frozen=True)
class StepDistributions:
    """The model's full next-token distribution at every step of one hypothesis.

    Row t-1 of ``raw_log_probs`` [T, V] is what the model gave before writing token t
    (``ids[t-1]``), untouched by any strategy; ``attention`` [T, L, H, S] the cross-attention of
    the same steps. ``prefix`` holds the ids the decode was forced to start with.
    """

    index: int  # which hypothesis of the result
    ids: list[int]  # [T]
    pieces: list[str]  # [T] readable pieces, as the hypothesis shows them
    raw_log_probs: torch.Tensor  # [T, V]
    attention: torch.Tensor  # [T, L, H, S]
    config: DecodeConfig  # the decode's own settings
    prefix: list[int]

    @property
    def steps(self) -> int:
        return len(self.ids)

    def history(self, t: int) -> list[int]:
        """The tokens written before step t."""
        return self.ids[: t - 1]


@dataclass(frozen=True)
class Candidate:
    """One next-token candidate at a step: its probability before and after the strategy."""

    id: int
    piece: str  # the SentencePiece piece, unescaped ("▁man", "</s>", "<0xE4>")
    raw: float  # the model's probability
    adjusted: float  # the probability the strategy chose from (0 when cut)
    cut: str | None  # the stage that cut it: "top-k", "top-p", "no-repeat n-gram", "forced prefix", "model"; None if kept
    chosen: bool  # the token the decode wrote at this step
    raw_rank: int  # 1 = the model's most likely token


@dataclass(frozen=True)
class StepView:
    """What the strategy did to the distribution of step t (1-based)."""

    step: int
    chosen: int  # the token the decode wrote
    argmax: int  # the most likely token after the strategy (greedy's choice under these settings)
    forced: bool  # the token was forced by the prefix
    candidates: list[Candidate]  # top ``k`` by raw probability, then any of the adjusted top k and the chosen one
    kept: int  # tokens the filters left in the running
    kept_raw_mass: float  # their share of the model's probability
    chosen_raw: float
    chosen_adjusted: float


def check_index(result: DecodeResult, index: int) -> None:
    """Raise InputError unless ``index`` names a hypothesis of ``result``."""
    n = len(result.hypotheses)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise InputError(f"hypothesis {index} is out of range: this result has {n} (0 to {n - 1})")


def check_step(t: int, steps: int, what: str = "the hypothesis") -> None:
    """Raise InputError unless 1 <= t <= steps."""
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= steps:
        raise InputError(f"step {t} is out of range: {what} has {steps} steps (1 to {steps})")


def check_top(k: int) -> None:
    """Raise InputError unless ``k`` (candidates shown per step) is a whole number from 1 to MAX_TOP."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP:
        raise InputError(f"top must be a whole number between 1 and {MAX_TOP}, got {k!r}")


def encode_source(translator: Translator, result: DecodeResult) -> Memory:
    """The model's memory of the result's source ([1, S]), as the decode computed it."""
    with torch.inference_mode():
        return translator.model.encode(torch.tensor([result.source_ids]))


def step_distributions(translator: Translator, result: DecodeResult, index: int = 0,
                       prefix: Sequence[int] = ()) -> StepDistributions:
    """Teacher-force hypothesis ``index`` of ``result`` through ``translator``'s model: one decode's worth of work.

    ``prefix`` is the ids the decode was forced to start with (a branch's ``Branch.prefix``, or
    ``prefix_ids`` of an API prefix); it only changes what the strategy views show.
    """
    check_index(result, index)
    h = result.hypotheses[index]
    with torch.inference_mode():
        log_probs, attention = teacher_force(translator.model, encode_source(translator, result), h.ids)
    return StepDistributions(index=index, ids=list(h.ids), pieces=list(h.pieces), raw_log_probs=log_probs,
                             attention=attention, config=result.config, prefix=list(prefix))


def candidates(shaped: Reshaped, chosen: int | None, piece: Callable[[int], str], k: int = DEFAULT_TOP) -> list[Candidate]:
    """The top ``k`` tokens by raw probability, then those of the adjusted top ``k`` (probability > 0) and
    ``chosen`` not among them: a token the strategy raised (repetition penalty, prefix) is shown too."""
    k = max(1, min(k, shaped.raw_log_probs.numel()))
    raw_order = shaped.raw_log_probs.topk(k).indices.tolist()
    top = shaped.probs.topk(k)
    extra = [i for i, p in zip(top.indices.tolist(), top.values.tolist()) if p > 0 and i not in raw_order]
    if chosen is not None and chosen not in raw_order and chosen not in extra:
        extra.append(chosen)
    ids = raw_order + extra
    index = torch.tensor(ids)
    raw = shaped.raw_log_probs[index].double().exp().tolist()
    adjusted = shaped.probs[index].tolist()
    cut = shaped.cut_by[index].tolist()
    ranks = (shaped.raw_log_probs[None, :] > shaped.raw_log_probs[index][:, None]).sum(1).add(1).tolist()
    return [Candidate(id=i, piece=piece(i), raw=r, adjusted=a, cut=CUT_REASONS[c], chosen=i == chosen, raw_rank=rank)
            for i, r, a, c, rank in zip(ids, raw, adjusted, cut, ranks)]


def view_of(shaped: Reshaped, step: int, chosen: int, forced: bool, piece: Callable[[int], str], k: int = DEFAULT_TOP) -> StepView:
    """A ``StepView`` of a reshaped distribution."""
    kept = ~shaped.cut
    return StepView(
        step=step, chosen=chosen, argmax=shaped.argmax, forced=forced,
        candidates=candidates(shaped, chosen, piece, k),
        kept=int(kept.sum()),
        kept_raw_mass=float(shaped.raw_log_probs.double().exp()[kept].sum()),
        chosen_raw=float(shaped.raw_log_probs[chosen].double().exp()),
        chosen_adjusted=float(shaped.probs[chosen]),
    )


def step_view(translator: Translator, steps: StepDistributions, t: int, cfg: DecodeConfig | None = None,
              k: int = DEFAULT_TOP) -> StepView:
    """Step t (1-based) of ``steps`` reshaped by ``cfg`` (default: the decode's own settings); decodes nothing."""
    check_step(t, steps.steps)
    check_top(k)
    cfg = cfg or steps.config
    try:
        cfg.validate()
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    shaped = reshape(steps.raw_log_probs[t - 1], steps.history(t), cfg, steps.prefix)
    return view_of(shaped, t, steps.ids[t - 1], t <= len(steps.prefix), translator.tgt_tok.piece, k)


class DecodeLab:
    """One result with its teacher-forced distributions and beam-tree replay, computed on first use and kept.

    The page keeps one per shown result (server-side state); every view after the first
    reuses what is cached here.
    """

    def __init__(self, translator: Translator, result: DecodeResult, prefix: Sequence[int] = ()) -> None:
        self.translator = translator
        self.result = result
        self.prefix = list(prefix)
        self._steps: dict[int, StepDistributions] = {}
        self._replay: TreeReplay | None = None

    def steps(self, index: int = 0) -> StepDistributions:
        """``step_distributions`` of hypothesis ``index``, computed once."""
        if index not in self._steps:
            self._steps[index] = step_distributions(self.translator, self.result, index, self.prefix)
        return self._steps[index]

    def step_view(self, t: int, index: int = 0, cfg: DecodeConfig | None = None, k: int = DEFAULT_TOP) -> StepView:
        """``step_view`` of step t of hypothesis ``index`` under ``cfg`` (default: the decode's own)."""
        return step_view(self.translator, self.steps(index), t, cfg, k)

    def replay(self) -> TreeReplay:
        """The beam tree's replay (``tree_replay``), computed once."""
        if self._replay is None:
            self._replay = tree_replay(self.translator, self.result, self.prefix)
        return self._replay


def tree_replay(translator: Translator, result: DecodeResult, prefix: Sequence[int] = ()) -> TreeReplay:
    """Every expanded node of a beam-search result run through the model again (about one decode's time)."""
    if not result.beam_tree:
        raise InputError(f"the result was decoded with {result.config.strategy}, not beam search: it has no beam tree")
    with torch.inference_mode():
        return replay_tree(translator.model, encode_source(translator, result), result.beam_tree, result.config, list(prefix))
