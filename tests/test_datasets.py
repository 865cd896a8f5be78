"""Data sets: deterministic, leak-free splits, Chinese script normalisation, generated dates, configs.

Tests that read ../shared/data skip (with the reason) when it is absent.
"""

import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest

from demo_core.card import ModelCard
from demo_core.models.registry import build_model, count_parameters
from demo_core.tasks import datasets as data
from demo_core.tasks import dates
from demo_core.text.normalize import get_normalizer, to_simplified
from demo_core.training import loop as train
from demo_core.training.config import TokenizerSpec

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
TEXT_CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.json")
                      if json.loads(p.read_text(encoding="utf-8"))["task"] != "tts")  # speech synthesis: tests/test_tts.py
SHIPPED_CONFIGS = [c for c in TEXT_CONFIGS if (REPO / "checkpoints" / c / "metrics.json").is_file()]


def needs(folder: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (DATA / folder).is_dir(), reason=f"{DATA / folder} is absent (shared data not mounted)")


# --- Chinese script -------------------------------------------------------------------------

def test_traditional_becomes_simplified():
    """OpenCC t2s: 這 → 这, 書 → 书; Latin text and punctuation are untouched."""
    assert to_simplified("這是我的書。") == "这是我的书。"
    assert to_simplified("Tom 說 hi!") == "Tom 说 hi!"
    assert to_simplified("这是我的书。") == "这是我的书。"
    assert to_simplified("坏了") == "坏了"  # OpenCC 1.4.0 turned Simplified 坏 into 坯 (BYVoid/OpenCC#1390)


def test_normalizer_names():
    assert get_normalizer("zh-hans")("臺灣") == "台湾"
    assert get_normalizer("lower")("ABC") == "abc"
    assert get_normalizer(None)("這") == "這"
    with pytest.raises(ValueError):
        get_normalizer("klingon")


# --- Tatoeba --------------------------------------------------------------------------------

def tatoeba(split: str, src: str = "en", tgt: str = "zh") -> list[data.Pair]:
    return data.load_pairs("tatoeba-cmn-eng", DATA, split, src, tgt)


@needs("tatoeba-cmn-eng")
def test_tatoeba_split_is_deterministic():
    """Reading the file afresh gives the same split."""
    first = tatoeba("test")
    data.tatoeba_groups.cache_clear()
    assert tatoeba("test") == first


@needs("tatoeba-cmn-eng")
def test_tatoeba_no_sentence_in_two_splits():
    """Neither an English nor a Chinese sentence appears in two splits; test has ≥ 1,000 pairs."""
    splits = {s: tatoeba(s) for s in ("train", "valid", "test")}
    assert len(splits["test"]) >= 1000 and len(splits["valid"]) >= 1000
    for side in (0, 1):
        sets = {s: {p[side] for p in pairs} for s, pairs in splits.items()}
        assert not sets["train"] & sets["test"] and not sets["train"] & sets["valid"] and not sets["valid"] & sets["test"]


@needs("tatoeba-cmn-eng")
def test_tatoeba_chinese_is_simplified_and_directions_mirror():
    test = tatoeba("test")
    assert all(to_simplified(zh) == zh for _, zh in test)
    assert tatoeba("test", "zh", "en") == [(zh, en) for en, zh in test]


@needs("tatoeba-cmn-eng")
def test_tatoeba_seed_changes_the_split():
    other = data.load_pairs("tatoeba-cmn-eng", DATA, "test", "en", "zh", {"seed": 2})
    assert set(other) != set(tatoeba("test"))


# --- CMUdict --------------------------------------------------------------------------------

@needs("cmudict")
def test_cmudict_dev_is_disjoint_from_train_and_test():
    """Dev words come from the training file, never from test, and leave train."""
    words = {s: {w for w, _ in data.load_pairs("cmudict", DATA, s, "en", "arpabet")} for s in ("train", "dev", "test")}
    assert len(words["test"]) == 12000 and len(words["dev"]) == 2670
    assert not words["dev"] & words["test"] and not words["dev"] & words["train"] and not words["train"] & words["test"]
    assert data.load_pairs("cmudict", DATA, "dev", "en", "arpabet") == data.load_pairs("cmudict", DATA, "dev", "en", "arpabet")


@needs("cmudict")
def test_cmudict_references_group_pronunciations():
    """Evaluation sees each test word once with all its pronunciations (12,000 items)."""
    items = data.load_references("cmudict", DATA, "test", "en", "arpabet")
    assert len(items) == 12000 == len({w for w, _ in items})
    assert any(len(refs) > 1 for _, refs in items)
    assert all(w == w.lower() and all(re.fullmatch(r"[A-Z]+( [A-Z]+)*", r) for r in refs) for w, refs in items)


def test_translation_references_stay_one_per_line():
    """Without multi_reference, a repeated source keeps its own line (BLEU unchanged)."""
    pairs = [("a", "x"), ("a", "y"), ("b", "z")]
    assert data.group_references(pairs, False) == [("a", ["x"]), ("a", ["y"]), ("b", ["z"])]
    assert data.group_references(pairs, True) == [("a", ["x", "y"]), ("b", ["z"])]


# --- Summarisation --------------------------------------------------------------------------

@needs("multi30k-captions")
def test_caption_pairings_are_a_config_choice():
    """Training pairings add pairs; evaluation splits stay caption 1 → caption 5."""
    options = {"train_pairs": [[1, 5], [2, 5]], "eval_pairs": [[1, 5]]}
    assert len(data.load_pairs("multi30k-captions", DATA, "train", "en", "en", options)) == 2 * 29000
    test = data.load_pairs("multi30k-captions", DATA, "test_2016", "en", "en", options)
    assert len(test) == 1000
    assert sum(len(s.split()) for s, _ in test) > sum(len(t.split()) for _, t in test)


# --- Dates ----------------------------------------------------------------------------------

SMALL = dates.DateSettings(train=3000, valid=300, test=600)


def test_dates_are_seeded():
    assert dates.generate("train", SMALL) == dates.generate("train", SMALL)
    assert dates.generate("train", SMALL) != dates.generate("train", dates.DateSettings(train=3000, seed=2))


def test_dates_test_dates_never_in_train():
    """No calendar date of valid or test occurs in the training pairs, in any spelling."""
    seen = {iso for _, iso in dates.generate("train", SMALL)}
    for split in ("valid", "test"):
        assert not seen & {iso for _, iso in dates.generate(split, SMALL)}
    pools = dates.dates_by_split(SMALL.seed, SMALL.first_year, SMALL.last_year, SMALL.held_out_fraction)
    assert not set(pools["train"]) & set(pools["test"])


def test_dates_targets_are_iso_and_sources_unambiguous():
    pairs = dates.generate("test", SMALL)
    assert len(pairs) == SMALL.test == len({s for s, _ in pairs})
    for source, iso in pairs:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso) and SMALL.first_year <= dt.date.fromisoformat(iso).year <= SMALL.last_year
        assert not dates.is_ambiguous(source)


def test_dates_every_locale_and_style_present():
    examples = dates.examples("train", SMALL)
    assert {e.locale for e in examples} == set(dates.LOCALES)
    assert {e.style for e in examples} == set(dates.STYLES)


def test_dates_render_known_forms():
    rng = random.Random(0)
    day = dt.date(2021, 3, 4)
    assert dates.render(day, "de", "long", rng) == "4. März 2021"
    assert dates.render(day, "zh", "long", rng) == "2021年3月4日"
    assert dates.render(dt.date(2021, 3, 14), "en", "short", rng) == "3/14/2021"  # CLDR's two-digit year widened
    assert dates.render(day, "en", "short", rng) == "March 4, 2021"  # 3/4/2021 could be 3 April: long form instead
    assert "4th" in dates.render(day, "en", "ordinal", rng)
    assert dates.is_ambiguous("04/03/2021") and not dates.is_ambiguous("13/03/2021")


def test_dates_dataset_needs_no_files(tmp_path):
    pairs = data.load_pairs("dates", tmp_path / "absent", "valid", "mul", "iso8601", {"valid": 50})
    assert len(pairs) == 50


# --- Configs --------------------------------------------------------------------------------

def requested_vocab(tok: TokenizerSpec) -> tuple[int, int]:
    return (tok.vocab_size,) * 2 if tok.joint else (tok.source_vocab, tok.target_vocab)


@pytest.mark.parametrize("config_id", TEXT_CONFIGS)
def test_config_loads_and_builds(config_id):
    """Each text config passes the trainer's checks and builds its model with the requested vocabulary sizes filled in."""
    cfg = train.load_config(REPO / "configs" / f"{config_id}.json")
    assert cfg.id == config_id and cfg.card.dataset in data.DATASETS
    for normalizer in (cfg.tokenizer.source_normalizer, cfg.tokenizer.target_normalizer):
        get_normalizer(normalizer)
    src_vocab, tgt_vocab = requested_vocab(cfg.tokenizer)
    model = build_model(cfg.card.architecture, dict(cfg.card.model, src_vocab=src_vocab, tgt_vocab=tgt_vocab))
    assert (model.src_embed.num_embeddings, model.tgt_embed.num_embeddings, model.output_bias.numel()) == \
        (src_vocab, tgt_vocab, tgt_vocab)
    if cfg.card.dataset == "dates":
        dates.settings_from(cfg.card.dataset_options)


@pytest.mark.parametrize("config_id", SHIPPED_CONFIGS)
def test_shipped_model_has_its_configs_parameter_count(config_id):
    """Built with the shipped vocabulary sizes, a config has exactly the shipped model's parameter count:
    the config in the repository is the one that trained it."""
    cfg = train.load_config(REPO / "configs" / f"{config_id}.json")
    shipped = ModelCard.read(REPO / "checkpoints" / config_id / "config.json")
    vocab = {k: shipped.model[k] for k in ("src_vocab", "tgt_vocab")}
    model = build_model(cfg.card.architecture, dict(cfg.card.model, **vocab))
    metrics = json.loads((REPO / "checkpoints" / config_id / "metrics.json").read_text(encoding="utf-8"))
    assert count_parameters(model) == metrics["parameters"]


def test_dates_training_smoke(tmp_path):
    """The dates config trains one epoch on 200 pairs and exports a model with its metric."""
    out = train.train(REPO / "configs" / "dates-rnn-bahdanau.json", tmp_path / "nodata", tmp_path / "run",
                      tmp_path / "export", "cpu", max_epochs=1, limit=200)
    metrics = json.loads((out / "metrics.json").read_text())
    assert "exact_match" in metrics["valid"]
    assert json.loads((out / "config.json").read_text())["dataset_options"]["test"] == 5000
