"""Task metrics on hand-made cases: any-reference credit, ROUGE and the lead baseline, exact match."""

import pytest

from demo_core.tasks.metrics import edit_distance, lead, lead_baseline, score
from demo_core.tasks.phonemes import arpabet_to_ipa, ipa_string


def test_bleu_single_references_unchanged_by_list_form():
    """Translation scores are the same whether each reference is a string or a one-item list."""
    hyps = ["a dog runs in the snow .", "two children play"]
    refs = ["a dog runs through the snow .", "two kids are playing"]
    assert score("bleu", hyps, refs) == score("bleu", hyps, [[r] for r in refs])


def test_bleu_extra_reference_never_lowers_the_score():
    """A second correct reference can only add matches."""
    hyps = ["two kids are playing outside"]
    one, _ = score("bleu", hyps, [["two children play outside"]])
    two, _ = score("bleu", hyps, [["two children play outside", "two kids are playing outside"]])
    assert two >= one and two == pytest.approx(100.0)


def test_bleu_zh_uses_chinese_tokenizer():
    """``bleu_zh`` scores unsegmented Chinese per character and says so in its signature."""
    headline, values = score("bleu_zh", ["我们明天去公园吧。"], ["我们明天去公园吧。"])
    assert headline == pytest.approx(100.0)
    assert "tok:zh" in values["bleu_signature"]


def test_edit_distance():
    """Levenshtein distance on token lists."""
    assert edit_distance("K AE T".split(), "K AE T".split()) == 0
    assert edit_distance("K AE T".split(), "K AH T S".split()) == 2
    assert edit_distance([], "A B".split()) == 2


def test_wer_credits_any_reference():
    """A word is right when it matches one of its pronunciations, whichever one."""
    refs = [["T AH M EY T OW", "T AH M AA T OW"], ["K AE T"]]
    headline, v = score("g2p", ["T AH M AA T OW", "K AE T"], refs)
    assert v["wer"] == 0.0 and v["per"] == 0.0 and headline == 100.0


def test_per_uses_the_closest_reference():
    """Phone errors are counted against the closest pronunciation and divided by its length."""
    refs = [["T AH M EY T OW", "T AH M AA T OW"], ["K AE T"]]
    _, v = score("g2p", ["T AH M AA T AH", "K AE T S"], refs)
    assert v["wer"] == 100.0
    assert v["per"] == pytest.approx(100 * (1 + 1) / (6 + 3), abs=0.01)
    assert v["word_accuracy"] == 0.0


def test_g2p_headline_is_higher_is_better():
    """Training keeps the epoch with the larger headline, so G2P reports word accuracy."""
    worse, _ = score("g2p", ["K AE", "D AO G"], [["K AE T"], ["D AO G"]])
    better, _ = score("g2p", ["K AE T", "D AO G"], [["K AE T"], ["D AO G"]])
    assert better > worse


def test_rouge_identical_text_is_perfect():
    """Identical hypothesis and reference give 100 on every ROUGE variant."""
    text = ["a man rides a bike over a bridge", "two dogs play in the snow"]
    headline, v = score("rouge", text, text)
    assert headline == pytest.approx(100.0)
    assert all(v[k] == pytest.approx(100.0) for k in ("rouge1", "rouge2", "rougeL"))


def test_rouge_disjoint_text_is_zero():
    _, v = score("rouge", ["purple elephants sing"], ["a dog runs"])
    assert v["rouge1"] == 0.0 and v["rougeL"] == 0.0


def test_lead_keeps_mean_reference_length():
    """The lead baseline keeps the first N words, N = mean reference length (rounded)."""
    n, leads = lead(["one two three four five six", "a b c d e f g"], ["x y", "x y z w"])
    assert n == 3 and leads == ["one two three", "a b c"]


def test_lead_baseline_of_a_source_equal_to_its_reference_is_perfect():
    """When the source is the reference, the lead keeps all of it and scores 100."""
    refs = ["a dog runs", "two cats sleep"]
    v = lead_baseline(refs, refs)
    assert v["lead_words"] == 3 and v["lead_rougeL"] == pytest.approx(100.0)


def test_exact_match_any_reference():
    headline, v = score("exact", ["2021-03-04", "2021-03-05 ", "1999-12-31"], ["2021-03-04", "2021-03-05", ["1999-12-30"]])
    assert headline == pytest.approx(200 / 3, abs=0.01) and v["items"] == 3


def test_score_rejects_mismatched_lengths_and_unknown_metrics():
    with pytest.raises(ValueError):
        score("bleu", ["a"], ["a", "b"])
    with pytest.raises(ValueError):
        score("meteor", ["a"], ["a"])


def test_arpabet_to_ipa():
    """One IPA label per phone; unstressed AH is schwa, stressed AH is a wedge."""
    assert arpabet_to_ipa("HH AH0 L OW1") == ["h", "ə", "l", "ˈoʊ"]
    assert ipa_string("TH IH NG K") == "θɪŋk"
    assert arpabet_to_ipa(["AH1", "ER0", "ER1"]) == ["ˈʌ", "ɚ", "ˈɝ"]
    assert arpabet_to_ipa("XX") == ["⟨XX⟩"]


def test_every_cmudict_phone_has_ipa():
    """All 39 CMUdict phones map to IPA (the mapping is total on the model's outputs)."""
    phones = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH").split()
    assert len(phones) == 39
    assert not any(label.startswith("⟨") for label in arpabet_to_ipa(phones))
