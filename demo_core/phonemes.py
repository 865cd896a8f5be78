"""ARPAbet (CMUdict's phone set) to IPA, for showing G2P output to people who read IPA.

The model speaks ARPAbet because CMUdict does; the app can show both. Stress digits are
optional (the g014b2b split has none): ``1``/``2`` become ``ˈ``/``ˌ`` placed just before the
vowel (a simplification: a dictionary would put it before the syllable onset).
"""

from __future__ import annotations

# General American values, as in the CMUdict documentation and most IPA charts.
ARPABET_TO_IPA: dict[str, str] = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ", "ER": "ɝ",
    "EY": "eɪ", "IH": "ɪ", "IY": "i", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ", "UW": "u",
    "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
    "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}

# Unstressed (or unmarked) AH and ER are reduced vowels in almost every CMUdict entry.
_REDUCED = {"AH": "ə", "ER": "ɚ"}
_STRESS_MARK = {"1": "ˈ", "2": "ˌ"}


def phone_to_ipa(phone: str) -> str:
    """One ARPAbet phone (``AH0``, ``TH``, case-insensitive) as IPA; unknown phones come back as ``?phone``."""
    phone = phone.upper()
    base, stress = (phone[:-1], phone[-1]) if phone[-1:].isdigit() else (phone, "")
    if base not in ARPABET_TO_IPA:
        return f"?{phone}"
    ipa = _REDUCED[base] if base in _REDUCED and stress in ("", "0") else ARPABET_TO_IPA[base]
    return _STRESS_MARK.get(stress, "") + ipa


def arpabet_to_ipa(phones: str | list[str]) -> list[str]:
    """IPA for each phone of a space-separated string or list (one label per phone, for plots)."""
    if isinstance(phones, str):
        phones = phones.split()
    return [phone_to_ipa(p) for p in phones]


def ipa_string(phones: str | list[str]) -> str:
    """The phones as one IPA word, e.g. ``"HH AH0 L OW1"`` → ``"həlˈoʊ"``."""
    return "".join(arpabet_to_ipa(phones))
