"""Which language an input looks like: its script, and English or German from function words.

Cheap on purpose: it runs before every decode, on a sentence or two, with no model and no new
dependency. It only has to notice the common classroom slip (the last task's text still in the
box, English typed into the German model), so it says nothing unless the evidence is clear.

* **Script**: letters are counted per script (``unicodedata`` names): one unit per Chinese
  character or kana, one per word of an alphabetic script, so "我有iPhone" is Chinese.
* **English or German**: words found in one language's list of function words (articles,
  pronouns, prepositions, auxiliaries that the other language does not spell the same), plus
  German letters (ä ö ü ß) and endings (-ung, -keit, -chen) and English ``-ing`` and ``-ly``. A
  language is named when it has at least 2 cues and more than twice the other's.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

LANGUAGES = {"en": "English", "de": "German", "zh": "Chinese"}
EXPECTED_SCRIPT = {"en": "Latin", "de": "Latin", "zh": "Han"}  # source_lang -> the script it is written in
PER_CHARACTER = frozenset({"Han", "Kana"})  # scripts without spaces: each character counts once
SCRIPT_LANGUAGES = {"Han": "Chinese", "Kana": "Japanese", "Hangul": "Korean"}  # scripts that name a language

# Words spelled the same in both languages (in, an, so, was, man, hat, will, die, also, war, bin,
# am, um, rest, hand, kind, bad, fast, gift, art, alt) are in neither list.
ENGLISH = frozenset("""
the a of and is are with on at to for from by his her their its they she he it this that these those while who
which what where there some out up down into onto over through near next front behind has have had be been being
not or but as you we my your our me us do does did can would should could very just than then one two three
four five several many each other another across around along under above against off wearing whose i i'm
don't doesn't didn't can't won't isn't it's that's what's let's how why when were all any about here know want
get got go going tell never always nobody anybody something today tomorrow yesterday please yes
""".split())
GERMAN = frozenset("""
der das den dem des ein eine einer einem einen eines und ist sind mit auf im vom zum zur bei beim aus von für über
unter vor hinter neben zwischen nicht sich sie er es wir ich du ihr mein meine dein sein seine ihre ihren ihrem
auch noch nach wie wird werden haben wurde oder aber sehr zwei drei vier fünf mehrere viele einige jede dieser
diese dieses etwas während durch gegen ohne einem trägt steht sitzt spielt läuft macht hält schaut geht
""".split())
_GERMAN_LETTERS = re.compile(r"[äöüß]")
_GERMAN_ENDING = re.compile(r"(ung|ungen|keit|heit|chen|lich|isch)$")
_ENGLISH_ENDING = re.compile(r"..(ing|ly)$")
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@lru_cache(maxsize=8192)  # read for every character of every input: the same few letters again and again
def script_of(ch: str) -> str | None:
    """The script of a letter ("Latin", "Han", "Kana", "Cyrillic", ...); None for anything else."""
    if not ch.isalpha():
        return None
    words = unicodedata.name(ch, "").split()
    if words[:1] in (["FULLWIDTH"], ["HALFWIDTH"]):
        words = words[1:]
    if not words:
        return None
    if words[0] == "CJK":
        return "Han"
    if words[0] in ("HIRAGANA", "KATAKANA"):
        return "Kana"
    return words[0].title()


def script_units(text: str) -> Counter[str]:
    """How much of ``text`` each script writes: characters of Han and kana, words of the others."""
    units: Counter[str] = Counter()
    previous = None
    for ch in text:
        script = script_of(ch)
        if script is not None and (script in PER_CHARACTER or script != previous):
            units[script] += 1
        previous = script
    return units


def cue_counts(text: str) -> tuple[int, int]:
    """(English cues, German cues) in ``text``: function words, German letters, typical endings."""
    english = german = 0
    for word in _WORDS.findall(text.lower()):
        if word in ENGLISH or _ENGLISH_ENDING.search(word):
            english += 1
        elif word in GERMAN or _GERMAN_LETTERS.search(word) or (len(word) > 5 and _GERMAN_ENDING.search(word)):
            german += 1
    return english, german


def english_or_german(text: str) -> str | None:
    """"en" or "de" when ``text`` clearly reads as one of them, else None (too short or mixed)."""
    english, german = cue_counts(text)
    if english >= 2 and english > 2 * german:
        return "en"
    if german >= 2 and german > 2 * english:
        return "de"
    return None


def main_script(text: str) -> str | None:
    """The script that writes most of ``text``; None when it has no letters."""
    units = script_units(text)
    return units.most_common(1)[0][0] if units else None


def language_of(text: str) -> str | None:
    """The language ``text`` clearly looks like ("English", "German", "Chinese", ...), else None."""
    script = main_script(text)
    if script == "Latin":
        guess = english_or_german(text)
        return LANGUAGES[guess] if guess else None
    return SCRIPT_LANGUAGES.get(script or "")


def looks_like(text: str) -> str | None:
    """What ``text`` looks like, as the start of a sentence ("this looks like English"); None without letters."""
    name = language_of(text)
    if name:
        return f"this looks like {name}"
    script = main_script(text)
    return f"this is written in {script} letters" if script else None


def language_mismatch(text: str, source_lang: str) -> str | None:
    """What ``text`` looks like when that is not ``source_lang`` (en, de or zh), else None.

    The script decides first (Chinese characters against Latin letters); between English and
    German, function words decide, and only when they are clear.
    """
    expected = EXPECTED_SCRIPT.get(source_lang)
    if expected is None:
        return None
    units = script_units(text)
    if not units:
        return None
    script, count = units.most_common(1)[0]
    if script != expected and count > units[expected]:
        return looks_like(text)
    guess = english_or_german(text) if expected == "Latin" else None
    return f"this looks like {LANGUAGES[guess]}" if guess is not None and guess != source_lang else None
