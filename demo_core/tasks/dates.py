"""Date normalisation data: a date written the way people write it → ISO 8601 (``2021-03-04``).

The pairs are generated, not read: Babel's CLDR locale data supplies the month and weekday
names and the full/long/medium/short patterns of each locale, and a few hand-written styles
add what people type but CLDR does not list (``March 4th, 2021``, ``4-3-2021``, ``2021年3月4号``).

Every calendar date belongs to exactly one split, chosen by a seeded hash of the date, so the
test set holds only dates the model never saw in training (in any spelling). Numeric forms
whose day and month could be swapped (``04/03/2021``) are never generated: no model could
know which reading a test reference wants.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from babel.dates import format_date, get_date_format, get_day_names, get_month_names

LOCALES: tuple[str, ...] = ("en", "de", "fr", "es", "zh")
CLDR_STYLES: tuple[str, ...] = ("full", "long", "medium", "short")
# Order of day, month and year in each locale's all-numeric dates (from its CLDR short pattern).
NUMERIC_ORDER: dict[str, str] = {"en": "MDY", "de": "DMY", "fr": "DMY", "es": "DMY", "zh": "YMD"}
SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class DateSettings:
    """The ``dataset_options`` of the ``dates`` dataset: sizes, seed and the span of years."""

    train: int = 200_000
    valid: int = 2_000
    test: int = 5_000
    seed: int = 1
    first_year: int = 1900
    last_year: int = 2099
    held_out_fraction: float = 0.05  # of all dates, for valid and again for test


def settings_from(options: dict[str, Any] | None) -> DateSettings:
    """DateSettings from a config's ``dataset_options`` (unknown keys are an error)."""
    options = dict(options or {})
    unknown = set(options) - {f.name for f in fields(DateSettings)}
    if unknown:
        raise ValueError(f"dates: unknown dataset_options {sorted(unknown)}")
    return DateSettings(**options)


def split_of(date: dt.date, seed: int, held_out_fraction: float) -> str:
    """The split a date belongs to, from a seeded hash of its ISO form (stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}:{date.isoformat()}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < held_out_fraction:
        return "test"
    if u < 2 * held_out_fraction:
        return "valid"
    return "train"


@lru_cache(maxsize=4)
def dates_by_split(seed: int, first_year: int, last_year: int, held_out_fraction: float) -> dict[str, tuple[dt.date, ...]]:
    """Every date of the year span, grouped by split."""
    out: dict[str, list[dt.date]] = {s: [] for s in SPLITS}
    day = dt.date(first_year, 1, 1)
    while day.year <= last_year:
        out[split_of(day, seed, held_out_fraction)].append(day)
        day += dt.timedelta(days=1)
    return {s: tuple(v) for s, v in out.items()}


def _full_year(pattern: str) -> str:
    """A CLDR pattern with two-digit years (``yy``) widened to the full year: ``3/4/21`` names no century."""
    return re.sub(r"(?<!y)yy(?!y)", "y", pattern)


def _english_ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _numeric(date: dt.date, order: str, sep: str, pad: bool) -> str:
    part = {"D": f"{date.day:02d}" if pad else str(date.day),
            "M": f"{date.month:02d}" if pad else str(date.month),
            "Y": str(date.year)}
    return sep.join(part[c] for c in order)


def is_ambiguous(text: str) -> bool:
    """True for an all-numeric date that reads as two different dates (day-month or month-day)."""
    m = re.fullmatch(r"(\d{1,2})[./-](\d{1,2})[./-]\d{4}", text.strip())
    if not m:
        return False
    a, b = int(m.group(1)), int(m.group(2))
    return a != b and a <= 12 and b <= 12


def _cldr(style: str) -> Callable[[dt.date, str, random.Random], str]:
    def render(date: dt.date, locale: str, rng: random.Random) -> str:
        return format_date(date, format=_full_year(get_date_format(style, locale=locale).pattern), locale=locale)
    return render


def _numeric_style(date: dt.date, locale: str, rng: random.Random) -> str:
    return _numeric(date, NUMERIC_ORDER[locale], rng.choice("/.-"), rng.random() < 0.5)


def _ordinal_style(date: dt.date, locale: str, rng: random.Random) -> str:
    """Day numbers as ordinals or the colloquial forms a locale uses."""
    month = get_month_names(rng.choice(("wide", "abbreviated")), locale=locale)[date.month]
    if locale == "en":
        day = _english_ordinal(date.day)
        return rng.choice((f"{month} {day}, {date.year}", f"{day} {month} {date.year}",
                           f"the {day} of {month} {date.year}", f"{month} {day} {date.year}"))
    if locale == "fr":
        day = "1er" if date.day == 1 else str(date.day)
        return f"{'le ' if rng.random() < 0.3 else ''}{day} {month} {date.year}"
    if locale == "de":
        return f"{'am ' if rng.random() < 0.3 else ''}{date.day}. {month} {date.year}"
    if locale == "es":
        day = "1.º" if date.day == 1 and rng.random() < 0.5 else str(date.day)
        return f"{day} de {month} de {date.year}"
    return f"{date.year}年{date.month}月{date.day}{rng.choice('日号')}"


def _weekday_style(date: dt.date, locale: str, rng: random.Random) -> str:
    """A weekday name before (after, in Chinese) a long, medium or numeric date."""
    weekday = get_day_names(rng.choice(("wide", "abbreviated")), locale=locale)[date.weekday()]
    core = rng.choice((_cldr("long"), _cldr("medium"), _numeric_style))(date, locale, rng)
    if is_ambiguous(core):
        core = _cldr("long")(date, locale, rng)
    if locale == "zh":
        return f"{core}{rng.choice(('', ' '))}{weekday}"
    return f"{weekday}{rng.choice((', ', ' '))}{core}"


STYLES: dict[str, Callable[[dt.date, str, random.Random], str]] = {
    **{s: _cldr(s) for s in CLDR_STYLES},
    "numeric": _numeric_style,
    "ordinal": _ordinal_style,
    "weekday": _weekday_style,
}


def render(date: dt.date, locale: str, style: str, rng: random.Random) -> str:
    """``date`` written in ``locale`` and ``style``; an ambiguous numeric result falls back to the long form."""
    text = STYLES[style](date, locale, rng)
    return _cldr("long")(date, locale, rng) if is_ambiguous(text) else text


def _vary_case(text: str, rng: random.Random) -> str:
    """Occasional all-lower or all-upper input, as people type it."""
    r = rng.random()
    return text.lower() if r < 0.1 else text.upper() if r < 0.15 else text


@dataclass(frozen=True)
class DateExample:
    """One generated pair with how it was written (for tests and data statistics)."""

    text: str
    iso: str
    locale: str
    style: str


def examples(split: str, s: DateSettings) -> list[DateExample]:
    """The examples of one split: distinct source texts, seeded by (seed, split)."""
    if split not in SPLITS:
        raise ValueError(f"dates: unknown split {split!r}; known: {SPLITS}")
    pool = dates_by_split(s.seed, s.first_year, s.last_year, s.held_out_fraction)[split]
    size = getattr(s, split)
    rng = random.Random(f"dates:{s.seed}:{split}")
    styles = sorted(STYLES)
    seen: set[str] = set()
    out: list[DateExample] = []
    for _ in range(50 * size):
        if len(out) == size:
            break
        date, locale, style = rng.choice(pool), rng.choice(LOCALES), rng.choice(styles)
        text = _vary_case(render(date, locale, style, rng), rng)
        if text not in seen:
            seen.add(text)
            out.append(DateExample(text, date.isoformat(), locale, style))
    return out


def generate(split: str, s: DateSettings) -> list[tuple[str, str]]:
    """``(written date, ISO date)`` pairs of one split."""
    return [(e.text, e.iso) for e in examples(split, s)]
