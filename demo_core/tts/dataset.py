"""Generate the speech-synthesis data: English sentences -> ARPAbet phones -> espeak-ng -> log-mel.

    python -m demo_core.tts.dataset --data-dir ../shared/data --out runs/tts-data

Sentences are Multi30k English training captions of at most ``--max-words`` words (the official
test set is never read), plus single CMUdict words. Each is phonetised by
:mod:`demo_core.tts.phonetize` and spoken by espeak-ng *from those phones* (phoneme input
``[[...]]``), so text, phones and audio agree. The split is by sentence, seeded: after a seeded
shuffle of the distinct captions, the first ``--test`` are the test set, the next ``--valid`` the
validation set, the rest (up to ``--train``) training; words go to training only.
Several voices and rates (``--voices``, ``--rates``) render every sentence once per
combination, for later recognition work; the synthesiser uses the default (en-us, 175 wpm).

Output (never committed; ``runs/`` is git-ignored): per split ``<split>.jsonl`` (one utterance
per line: text, words, phones, sources, voice, rate, samples, frames, shard, index) and
safetensors shards ``<split>-<k>.safetensors`` holding ``mel`` [total_frames, 80] fp16 and
``offsets`` [n + 1]; no pickle.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from demo_core.tts.audio import AudioConfig, log_mel, resample, to_float, trim_silence
from demo_core.tts.phonetize import (
    Phonetizer,
    SynthesisError,
    espeak_audio,
    espeak_input,
    words_of,
)

SHARD_SIZE = 1000


@dataclass(frozen=True)
class DataConfig:
    """What the generator makes; stored in ``data.json`` next to the data."""

    train: int = 4000
    valid: int = 100
    test: int = 200
    words: int = 800
    max_words: int = 12
    seed: int = 1
    voices: tuple[str, ...] = ("en-us",)
    rates: tuple[int, ...] = (175,)


def _render(job: tuple[str, str, int]) -> tuple[np.ndarray, int]:
    """One utterance: espeak input, voice, rate -> (log-mel fp16 [frames, 80], samples at 16 kHz)."""
    espeak_text, voice, rate = job
    cfg = AudioConfig()
    sr, samples = espeak_audio(espeak_text, voice, rate)
    audio = trim_silence(resample(to_float(samples), sr, cfg.sample_rate), cfg.sample_rate)
    mel = log_mel(audio, cfg).numpy().astype(np.float16)  # [frames, n_mels]
    return mel, len(audio)


def select_texts(data_dir: Path, phonetize: Phonetizer, cfg: DataConfig) -> dict[str, list[str]]:
    """Seeded split of Multi30k training captions by sentence, plus CMUdict words for training."""
    seen: set[str] = set()
    captions: list[str] = []
    with gzip.open(data_dir / "multi30k" / "train.en.gz", "rt", encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            try:
                key = " ".join(words_of(text))
            except SynthesisError:
                continue
            if key and len(key.split()) <= cfg.max_words and key not in seen:
                seen.add(key)
                captions.append(text)
    random.Random(cfg.seed).shuffle(captions)
    test, valid = captions[: cfg.test], captions[cfg.test: cfg.test + cfg.valid]
    train = captions[cfg.test + cfg.valid: cfg.test + cfg.valid + cfg.train]
    words = sorted(w for w in phonetize.lexicon if w.isalpha() and 2 <= len(w) <= 12)
    train += random.Random(cfg.seed + 1).sample(words, cfg.words)
    return {"train": train, "valid": valid, "test": test}


def generate(data_dir: Path, out: Path, cfg: DataConfig, processes: int = 2) -> None:
    """Write the data set described by ``cfg`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    phonetize = Phonetizer(data_dir / "cmudict" / "cmudict.dict.gz")
    splits = select_texts(data_dir, phonetize, cfg)
    (out / "data.json").write_text(json.dumps({"config": asdict(cfg), "audio": asdict(AudioConfig()),
                                               "sizes": {k: len(v) for k, v in splits.items()}}, indent=2))
    with Pool(processes) as pool:
        for split, texts in splits.items():
            rows: list[dict[str, Any]] = []
            for text in tqdm(texts, desc=f"phones {split}"):
                pron = phonetize(text)
                for voice in cfg.voices:
                    for rate in cfg.rates:
                        rows.append({"id": f"{split}-{len(rows):05d}", "text": text, "words": list(pron.words),
                                     "phones": pron.phones, "sources": list(pron.sources), "voice": voice,
                                     "rate": rate, "espeak": espeak_input(pron)})
            jobs = [(r["espeak"], r["voice"], r["rate"]) for r in rows]
            rendered = pool.imap(_render, jobs, chunksize=8)
            for shard_start in range(0, len(rows), SHARD_SIZE):
                shard_rows = rows[shard_start: shard_start + SHARD_SIZE]
                mels = []
                for row, (mel, n_samples) in zip(shard_rows, tqdm(rendered, total=len(shard_rows), desc=f"audio {split}")):
                    row.update(samples=n_samples, frames=len(mel), shard=shard_start // SHARD_SIZE, index=len(mels))
                    mels.append(mel)
                offsets = np.cumsum([0] + [len(m) for m in mels])
                save_file({"mel": torch.from_numpy(np.concatenate(mels)), "offsets": torch.from_numpy(offsets)},
                          str(out / f"{split}-{shard_start // SHARD_SIZE}.safetensors"))
            with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")


def load_split(data_dir: Path, split: str) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
    """``(row, mel fp32 [frames, 80])`` for each utterance of a generated split."""
    shards: dict[int, dict[str, torch.Tensor]] = {}
    with open(Path(data_dir) / f"{split}.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["shard"] not in shards:
                shards[row["shard"]] = load_file(str(Path(data_dir) / f"{split}-{row['shard']}.safetensors"))
            shard = shards[row["shard"]]
            start, end = shard["offsets"][row["index"]], shard["offsets"][row["index"] + 1]
            yield row, shard["mel"][start:end].float()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/tts-data"))
    defaults = DataConfig()
    for name in ("train", "valid", "test", "words", "max_words", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--voices", default=",".join(defaults.voices), help="espeak-ng voices, comma-separated")
    parser.add_argument("--rates", default=",".join(map(str, defaults.rates)), help="words per minute, comma-separated")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    cfg = DataConfig(train=args.train, valid=args.valid, test=args.test, words=args.words, max_words=args.max_words,
                     seed=args.seed, voices=tuple(args.voices.split(",")),
                     rates=tuple(int(r) for r in args.rates.split(",")))
    generate(args.data_dir, args.out, cfg, args.processes)


if __name__ == "__main__":
    main()
