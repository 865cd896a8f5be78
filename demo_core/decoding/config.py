"""``DecodeConfig``: every decoding option, defined once.

Each user-facing field carries an :class:`Option` in its metadata: type, default, valid range,
help text, the strategies that read it and how the page shows it. The page's controls, the
``/generate`` and ``/compare`` parameters, the command-line flags and validation are all
derived from :data:`OPTIONS`, and matched by name, so a new option is one field here.

Values that arrive from a browser or an API client (``None``, floats for integers, strings)
go through :func:`coerce`, which turns every bad value into a ``ValueError`` naming the option.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields, replace
from typing import Any

STRATEGIES = ("greedy", "beam", "sample")
STRATEGY_LABELS = {"greedy": "Greedy", "beam": "Beam search", "sample": "Sampling"}
MAX_BEAM = 16
MAX_OUTPUT_TOKENS = 400
MAX_SEED = 2**63 - 1  # the largest signed 64-bit seed
MIN_TEMPERATURE = 0.01  # far below it log-probs / temperature overflow float32 (NaN in softmax)
MIN_TOP_P = 0.01  # a nucleus below 1% of the mass is the top token alone: greedy
FRESH_SEEDS = 1_000_000  # a blank seed becomes one below this: short enough to read off the page and type back


@dataclass(frozen=True)
class Option:
    """What the page, the API, the CLI and validation need to know about one decoding option.

    ``minimum``/``maximum`` bound valid values (``open_minimum``: the minimum itself is
    excluded). ``blank`` is what an empty value means: the default (``"default"``), or
    ``None`` ("automatic" / "random"; the option is then optional). ``zero_is_blank`` says
    that 0 means the same as blank (max_len: 0 = automatic on the page's slider).
    ``page`` = (low, high, step) of the page's slider, a narrower range than the valid one
    where a wider one would make the slider unusable; ``page_value`` is the page's starting
    value where it differs from the default, ``page_blank`` makes the page's control start
    blank (the blank meaning, e.g. a new random seed each run), and ``page_why`` says why.
    """

    name: str
    kind: type  # int | float | str
    default: Any
    label: str
    help: str
    strategies: tuple[str, ...] = STRATEGIES
    minimum: float | None = None
    maximum: float | None = None
    open_minimum: bool = False
    choices: tuple[str, ...] | None = None
    blank: str = "default"  # "default" | "none"
    zero_is_blank: bool = False
    page: tuple[float, float, float] | None = None
    page_value: Any = None
    page_blank: bool = False
    page_why: str = ""

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--beam-size``."""
        return "--" + self.name.replace("_", "-")

    @property
    def start(self) -> Any:
        """The page control's starting value (None: blank)."""
        if self.page_blank:
            return None
        return self.default if self.page_value is None else self.page_value

    def check(self, value: Any) -> None:
        """Raise ValueError naming the option when an already typed ``value`` is out of range."""
        if value is None:
            if self.blank != "none":
                raise ValueError(f"{self.name} must be given")
            return
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, got {shown(repr(value))}")
            return
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{self.name} must be a number, got nan")
        low_ok = self.minimum is None or (value > self.minimum if self.open_minimum else value >= self.minimum)
        high_ok = self.maximum is None or value <= self.maximum
        if not (low_ok and high_ok):
            raise ValueError(f"{self.name} must be {self.range_text()}, got {shown(value)}")

    def range_text(self) -> str:
        """The valid range in words, e.g. ``between 1 and 16`` or ``> 0``."""
        low, high = (None if v is None else f"{v:g}" if self.kind is float else str(v) for v in (self.minimum, self.maximum))
        if low is not None and high is not None:
            return f"in ({low}, {high}]" if self.open_minimum else f"between {low} and {high}"
        if low is not None:
            return f"> {low}" if self.open_minimum else f">= {low}"
        return f"<= {high}" if high is not None else "any value"


def shown(value: Any, limit: int = 40) -> str:
    """``value`` for an error message, cut to ``limit`` characters (a number may have 400 digits)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit - 12]}… ({len(text)} characters)"


def option(**spec: Any) -> Any:
    """A ``DecodeConfig`` field whose metadata holds its :class:`Option`."""
    return field(default=spec["default"], metadata={"option": Option(**spec)})


@dataclass(frozen=True)
class DecodeConfig:
    """Every decoding knob in one place; ``validate`` names the first bad parameter."""

    strategy: str = option(
        name="strategy", kind=str, default="greedy", label="Decoding strategy", choices=STRATEGIES,
        help="greedy (most likely token each step), beam (beam search) or sample (random draws)")
    beam_size: int = option(
        name="beam_size", kind=int, default=5, label="Beam width", minimum=1, maximum=MAX_BEAM, strategies=("beam",),
        help="hypotheses kept at every step", page=(1, MAX_BEAM, 1))
    length_penalty: float = option(
        name="length_penalty", kind=float, default=1.0, label="Length penalty α", minimum=0.0, maximum=5.0,
        strategies=("beam",), help="GNMT alpha: score / ((5 + length) / 6)^α", page=(0, 2, 0.1))
    n_best: int | None = option(
        name="n_best", kind=int, default=None, label="N-best hypotheses shown", minimum=1, maximum=MAX_BEAM,
        strategies=("beam",), blank="none", help="beam hypotheses returned (default: the beam width)",
        page=(1, MAX_BEAM, 1), page_value=5, page_why="the slider shows the beam width's default as its value")
    temperature: float = option(
        name="temperature", kind=float, default=1.0, label="Temperature", minimum=MIN_TEMPERATURE, maximum=100.0, strategies=("sample",),
        help="divides the log-probabilities before sampling: < 1 sharper, > 1 flatter", page=(0.05, 2, 0.05))
    top_k: int = option(
        name="top_k", kind=int, default=0, label="Top-k (0 = off)", minimum=0, strategies=("sample",),
        help="sample only from the k most likely tokens (0 = off)", page=(0, 100, 1))
    top_p: float = option(
        name="top_p", kind=float, default=1.0, label="Top-p (nucleus)", minimum=MIN_TOP_P, maximum=1.0,
        strategies=("sample",), help="sample only from the most likely tokens whose mass reaches p",
        page=(0.05, 1, 0.05))
    seed: int | None = option(
        name="seed", kind=int, default=0, label="Seed (empty = random)", minimum=0, maximum=MAX_SEED,
        strategies=("sample",), blank="none", help="random seed for sampling (empty: a new one each run, reported in the result)",
        page_blank=True, page_why="a blank seed gives new samples at every Run; the seed used is shown, to reuse it")
    num_samples: int = option(
        name="num_samples", kind=int, default=1, label="Samples", minimum=1, maximum=MAX_BEAM, strategies=("sample",),
        help="how many samples to draw", page=(1, MAX_BEAM, 1), page_value=5,
        page_why="several samples side by side show what sampling does")
    max_len: int | None = option(
        name="max_len", kind=int, default=None, label="Max output tokens (0 = 2 × source + 10)", minimum=1,
        maximum=MAX_OUTPUT_TOKENS, blank="none", zero_is_blank=True,
        help="most output tokens (default: 2 x source + 10)", page=(0, MAX_OUTPUT_TOKENS, 1))
    no_repeat_ngram: int = option(
        name="no_repeat_ngram", kind=int, default=0, label="No-repeat n-gram size (0 = off)", minimum=0,
        help="forbid repeating any n-gram of this size (0 = off)", page=(0, 6, 1))
    repetition_penalty: float = option(
        name="repetition_penalty", kind=float, default=1.0, label="Repetition penalty (1 = off)", minimum=1.0,
        maximum=10.0, help="divide the probability of tokens already written (1 = off)", page=(1, 3, 0.05))
    max_len_a: float = 2.0  # default length limit: a * source tokens + b
    max_len_b: int = 10
    alternatives: int = 5  # top-k alternatives kept per step (0-20)

    def validate(self) -> None:
        """Raise ValueError naming the parameter that is out of range."""
        for opt in OPTIONS:
            opt.check(getattr(self, opt.name))
        if self.n_best is not None and self.n_best > self.beam_size:
            raise ValueError(f"n_best must be between 1 and beam_size ({self.beam_size}), got {self.n_best}")
        if not 0 <= self.alternatives <= 20:
            raise ValueError(f"alternatives must be between 0 and 20, got {self.alternatives}")

    @property
    def uses_history(self) -> bool:
        """Whether the logits processors read the tokens generated so far."""
        return self.repetition_penalty != 1.0 or self.no_repeat_ngram > 0

    def output_limit(self, src_len: int) -> int:
        """Most output tokens (EOS included) for a source of ``src_len`` tokens."""
        if self.max_len is not None:
            return self.max_len
        return min(MAX_OUTPUT_TOKENS, int(self.max_len_a * src_len + self.max_len_b))


OPTIONS: tuple[Option, ...] = tuple(f.metadata["option"] for f in fields(DecodeConfig) if "option" in f.metadata)
OPTION = {o.name: o for o in OPTIONS}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def coerce(opt: Option, value: Any) -> Any:
    """``value`` as sent by a page or an API client, typed for ``opt``; blank gives its blank value.

    Raises ValueError naming the option for text that is not a number, a fraction for a whole
    number, booleans, NaN and infinities.
    """
    if _blank(value) or (opt.zero_is_blank and not isinstance(value, bool) and value in (0, "0")):
        return None if opt.blank == "none" else opt.default
    if opt.kind is str:
        return str(value).strip().lower()
    if isinstance(value, bool):
        raise ValueError(f"{opt.name} must be a number, got {value!r}")
    if opt.kind is int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        try:
            return int(text)  # exact for any number of digits
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{opt.name} must be a whole number, got {shown(repr(value))}") from None
        if not number.is_integer():
            raise ValueError(f"{opt.name} must be a whole number, got {shown(repr(value))}")
        return int(number)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{opt.name} must be a number, got {shown(repr(value))}") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{opt.name} must be a finite number, got {shown(repr(value))}")
    return number


def with_fresh_seed(cfg: DecodeConfig) -> DecodeConfig:
    """``cfg`` with a new random seed when it samples with a blank one, so the seed used can be
    shown and typed back to reproduce the samples; any other config unchanged."""
    if cfg.strategy != "sample" or cfg.seed is not None:
        return cfg
    return replace(cfg, seed=random.SystemRandom().randrange(FRESH_SEEDS))


def config_from(values: dict[str, Any], base: DecodeConfig | None = None) -> DecodeConfig:
    """A checked ``DecodeConfig`` from raw values by option name (unknown names are an error)."""
    unknown = set(values) - set(OPTION)
    if unknown:
        raise ValueError(f"unknown decoding option(s): {', '.join(sorted(unknown))}")
    cfg = replace(base or DecodeConfig(), **{name: coerce(OPTION[name], v) for name, v in values.items()})
    cfg.validate()
    return cfg
