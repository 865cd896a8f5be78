"""Task-specific input checks: what a model can read, said before it reads something else.

Translation, summarisation and date models take any text (a German sentence sent to the Chinese
model still gets an output: that is instructive), but ``input_warnings`` says so when the text
looks like another language than the model reads, or (summarisation) unlike the image captions
it was trained on. The pronunciation model was trained on single dictionary words spelled with
letters and apostrophes, so a phrase, digits or punctuation get a message saying what to type
instead of a confident pronunciation of something it never saw.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from functools import lru_cache

from demo_core.tasks.input_language import LANGUAGES, language_mismatch, language_of

DATES = "normalisation"  # the dates model's task name in its card
G2P_MAX_LETTERS = 30  # the longest CMUdict training word has 22 letters
_WORD = re.compile(r"[A-Za-z']+")


def input_problem(task: str, text: str) -> str | None:
    """None when ``text`` suits a model of ``task``, else a message saying what to type."""
    if task == DATES:
        return date_problem(text)
    if task != "g2p":
        return None
    word = text.strip()
    if _WORD.fullmatch(word):
        if len(word) > G2P_MAX_LETTERS:
            return f"that word has {len(word)} letters; the pronunciation model takes at most {G2P_MAX_LETTERS}"
        return None
    if any(ch.isspace() for ch in word):
        language = language_of(word)
        seen = f"this looks like {language}; " if language and language != "English" else ""
        return f"{seen}the pronunciation model reads one English word at a time: type a single word, e.g. \"knight\""
    if any(ch.isdigit() for ch in word):
        return "the pronunciation model reads letters, not digits: spell the number out, e.g. \"seven\""
    odd = sorted({ch for ch in word if not (ch.isascii() and (ch.isalpha() or ch == "'"))})
    names = ", ".join(f"{ch!r} ({unicodedata.name(ch, 'unnamed')})" for ch in odd[:3])
    return f"the pronunciation model reads the letters a-z and apostrophes only; remove {names}"


# ---- dates: refuse what no calendar has, instead of a confident invented date ----------------

_RELATIVE = re.compile(r"(?i)\b(yesterday|today|tomorrow|tonight|next|last|gestern|heute|morgen|übermorgen|"
                       r"demain|hier|aujourd'hui|mañana|ayer|hoy)\b")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_NUMBER = re.compile(r"(?<!\d)(\d{1,2})(?!\d)")


@lru_cache(maxsize=1)
def _month_names() -> dict[str, int]:
    """Month names and abbreviations of the dates model's languages (lower case, dots dropped) -> 1-12."""
    from babel.dates import get_month_names

    names: dict[str, int] = {}
    for locale in ("en", "de", "fr", "es"):
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for number, name in get_month_names(width, context, locale).items():
                    names[name.lower().rstrip(".")] = number
    return names


def _ordinal(day: int) -> str:
    return f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def _calendar_problem(year: int, month: int, day: int) -> str | None:
    """None for a real date, else what is wrong with it, e.g. "February 2020 has no 31st"."""
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    last = calendar.monthrange(year, month)[1]
    if day < 1:
        return f"there is no day {day}"
    if day > last:
        return f"{calendar.month_name[month]} {year} has no {_ordinal(day)} (it has {last} days)"
    return None


def _day_month_year(text: str) -> list[tuple[int, int, int]]:
    """The (year, month, day) readings of ``text`` that its form allows; [] when it is not clear."""
    if m := re.search(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日", text):
        return [(int(m[1]), int(m[2]), int(m[3]))]
    if m := re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*", text):
        return [(int(m[1]), int(m[2]), int(m[3]))]
    if m := re.fullmatch(r"\s*(\d{1,2})\s*[./-]\s*(\d{1,2})\s*[./-]\s*(\d{4})\s*", text):  # day-month or month-day
        a, b, year = int(m[1]), int(m[2]), int(m[3])
        return [(year, b, a), (year, a, b)]
    years, numbers = _YEAR.findall(text), _NUMBER.findall(text)
    months = {n for word, n in _month_names().items() if re.search(rf"(?i)(?<!\w){re.escape(word)}\.?(?!\w)", text)}
    if len(years) == 1 and len(numbers) == 1 and len(months) == 1:
        return [(int(years[0]), months.pop(), int(numbers[0]))]
    return []


def date_problem(text: str) -> str | None:
    """Why the dates model should not read ``text``: a relative date, no date at all, or a day
    that its month does not have; None when it may be a real date."""
    if not any(ch.isdigit() for ch in text):
        if _RELATIVE.search(text):
            return ("relative dates like \"next Friday\" or \"yesterday\" are not supported: type a calendar date, "
                    "e.g. \"5 March 2021\"")
        return "no date found: the dates model needs a written date with the year in digits, e.g. \"5 March 2021\""
    readings = _day_month_year(text)
    problems = [_calendar_problem(*r) for r in readings]
    if readings and all(problems):
        return f"that is not a real date: {problems[0]}"
    return None


def output_problem(task: str, text: str) -> str | None:
    """A warning when a model's output cannot be right whatever the input (dates: not a real ISO date)."""
    if task != DATES:
        return None
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if m is None:
        return f"the output {text!r} is not a date in the form YYYY-MM-DD"
    problem = _calendar_problem(int(m[1]), int(m[2]), int(m[3]))
    return f"the output {text} is not a real date: {problem}" if problem else None


# ---- warnings: the model still runs, but the page says why its output may be nonsense ---------

SUMMARISATION = "summarisation"
CAPTION_MAX_WORDS = 80  # the summariser's training inputs (Multi30k task 2 captions 1, 2): median 17 words, longest 78
_SENTENCE_END = re.compile(r"(?<=[a-z]{2})[.!?]+(?=\s+[A-Z])")  # "J.P. Morgan" and "now ... what" do not end one
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]")  # a sign's text inside a caption is not the caption
_VERBS = {"translation": "translates {}", SUMMARISATION: "summarises {}", "g2p": "reads {} words"}


def input_warnings(task: str, source_lang: str, model_id: str, text: str) -> list[str]:
    """Why the output for ``text`` may be nonsense although the model reads it: another language
    than ``source_lang``, or (summarisation) text unlike the image captions the model knows."""
    warnings = []
    looks = None if task == DATES else language_mismatch(text, source_lang)
    if looks:
        reads = _VERBS.get(task, "reads {}").format(LANGUAGES.get(source_lang, source_lang))
        warnings.append(f"{looks}, but {model_id} {reads}: the output may be nonsense")
    if task == SUMMARISATION:
        warnings += caption_problems(text)
    return warnings


def caption_problems(text: str) -> list[str]:
    """How ``text`` differs from a one-sentence picture description (the summarisation model's training inputs)."""
    words = len(text.split())
    problems = []
    if words > CAPTION_MAX_WORDS:
        problems.append(f"this is {words} words long; the summariser learned from one-sentence picture captions "
                        f"(typically 17 words, never more than 78), so expect it to lose the thread")
    text = _QUOTED.sub("\"\"", text)
    sentences = len(_SENTENCE_END.findall(text.strip())) + 1
    if sentences > 1:
        problems.append(f"this has {sentences} sentences; the summariser learned to shorten one sentence that "
                        "describes a picture, so it will not summarise a text")
    elif "?" in text:
        problems.append("this is a question; the summariser learned to shorten descriptions of a picture")
    return problems
