"""ARPAbet (CMUdict's phone set) to IPA, for showing G2P output to people who read IPA.

The model speaks ARPAbet because CMUdict does; the app can show both. Stress digits are
optional (the g014b2b split has none): ``1``/``2`` become ``ˈ``/``ˌ`` placed just before the
vowel (a simplification: a dictionary would put it before the syllable onset). A symbol that is
not an ARPAbet phone (a model can write one) is kept in angle brackets, ``⟨7⟩``, so it reads as
"not a sound" instead of passing for IPA; ``unknown_phones`` lists them for a note.
"""

from __future__ import annotations

# ARPAbet phone, its General American IPA value (as in the CMUdict documentation and most IPA
# charts) and the mnemonic espeak-ng's en-us voice uses for it (from ``espeak-ng -v en-us -x``
# on words such as "father", "bird", "vision"); vowels first.
_PHONE_TABLE = """
AA ɑ A:   AE æ a    AH ʌ V    AO ɔ O:   AW aʊ aU  AY aɪ aI  EH ɛ E    ER ɝ 3:
EY eɪ eI  IH ɪ I    IY i i:   OW oʊ oU  OY ɔɪ OI  UH ʊ U    UW u u:
B b b     CH tʃ tS  D d d     DH ð D    F f f     G ɡ g     HH h h    JH dʒ dZ
K k k     L l l     M m m     N n n     NG ŋ N    P p p     R ɹ r     S s s
SH ʃ S    T t t     TH θ T    V v v     W w w     Y j j     Z z z     ZH ʒ Z
"""
_ROWS = [tuple(_PHONE_TABLE.split()[i:i + 3]) for i in range(0, len(_PHONE_TABLE.split()), 3)]
ARPABET_TO_IPA: dict[str, str] = {phone: ipa for phone, ipa, _ in _ROWS}
ARPABET_TO_ESPEAK: dict[str, str] = {phone: mnemonic for phone, _, mnemonic in _ROWS}
VOWELS = frozenset(phone for phone, _, _ in _ROWS[:15])

# Unstressed (or unmarked) AH and ER are reduced vowels in almost every CMUdict entry.
_REDUCED = {"AH": "ə", "ER": "ɚ"}
_STRESS_MARK = {"1": "ˈ", "2": "ˌ"}
UNKNOWN = "⟨{}⟩"  # how a symbol without an IPA value is shown


def is_phone(phone: str) -> bool:
    """True for an ARPAbet phone with or without a stress digit (``AH0``, ``th``)."""
    phone = phone.upper()
    return (phone[:-1] if phone[-1:] in ("0", "1", "2") else phone) in ARPABET_TO_IPA


def unknown_phones(phones: str | list[str]) -> list[str]:
    """The symbols of ``phones`` that are not ARPAbet phones, each once, in order."""
    if isinstance(phones, str):
        phones = phones.split()
    return list(dict.fromkeys(p for p in phones if not is_phone(p)))


def phone_to_ipa(phone: str) -> str:
    """One ARPAbet phone (``AH0``, ``TH``, case-insensitive) as IPA; any other symbol comes back as ``⟨symbol⟩``."""
    if not is_phone(phone):
        return UNKNOWN.format(phone)
    phone = phone.upper()
    base, stress = (phone[:-1], phone[-1]) if phone[-1:].isdigit() else (phone, "")
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
