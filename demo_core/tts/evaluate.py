"""Evaluate the synthesiser on the held-out test sentences and write ``metrics.json``.

    python -m demo_core.tts.evaluate --model tts-en-tacotron

For every test sentence (seeded slice of Multi30k training captions never used in training)
the model decodes greedily from the generator's phones (seed 0), and is scored against
espeak-ng's own rendering of the same phones:

* **alignment success**: the attention argmax ``a_t`` (one per decoder step, counted in phones:
  word boundaries, which have no sound of their own, are not counted) starts on one of
  the first two phones (``a_0 <= 1``), never goes back more than one phone and never jumps
  forward more than two phones per step (``-1 <= a_t - a_{t-1} <= 2``), ends on one of the last
  two phones or the end marker (``a_T >= S - 3`` with S columns incl. the end marker), and the
  output has within +-25 % of the reference's frames;
* **MCD with DTW**: mel-cepstra of each log-mel frame (natural log of the mel magnitude, 80 bins)
  in the cepstrum convention ``log|X| = c0 + 2 sum_k c_k cos(pi k (n + 1/2) / N)`` that SPTK's
  mel-cepstra follow (scipy's unnormalised DCT-II divided by 2N), coefficients 1-24 (c0, the
  energy, left out); frames are paired by dynamic
  time warping on the Euclidean cepstral distance and
  ``MCD = 10 * sqrt(2) / ln 10 * mean ||c - c'||`` in dB; for the final model and the early
  export (``runs/<id>/early``);
* **RTF**: synthesis time / audio duration for a 10-word sentence on one CPU thread, vocoder
  included (``benchmarks/bench_tts.py`` prints the same measurement);
* ``per``: null until the CTC recogniser lands.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.fft import dct
from tqdm import tqdm

from demo_core.checkpoint import read_metrics
from demo_core.tts.dataset import load_split
from demo_core.tts.model import Tacotron, generate
from demo_core.tts.phonetize import EOS
from demo_core.tts.synthesize import Synthesizer, load_model_only
from demo_core.tts.train import phone_ids

MCD_CONSTANT = 10.0 * math.sqrt(2.0) / math.log(10.0)
CEPSTRA = slice(1, 25)  # coefficients 1-24
LENGTH_TOLERANCE = 0.25
BENCH_SENTENCE = "A boy in a red shirt plays with a ball."  # 10 words, in no split of the data


def alignment_ok(attention: np.ndarray, columns: list[str] | None = None) -> bool:
    """The monotonic-argmax rule of the module docstring, on ``attention`` [steps, S].

    ``columns`` (the input symbols) lets word boundaries ``" "`` not count as phones: they have
    no sound of their own, so passing over one is not a jump.
    """
    is_phone = np.array([c != " " for c in columns]) if columns is not None else np.ones(attention.shape[1], bool)
    position = np.cumsum(is_phone) - is_phone  # phones before each column; a boundary maps to the next phone
    path = position[attention.argmax(axis=1)]
    steps = np.diff(path)
    return bool(path[0] <= 1 and path[-1] >= is_phone.sum() - 3 and steps.min(initial=0) >= -1
                and steps.max(initial=0) <= 2)


def mel_cepstra(mel: np.ndarray) -> np.ndarray:
    """[frames, n_mels] log-mel -> [frames, 24] mel-cepstra c1-c24 (cepstrum convention, see above)."""
    return dct(mel, type=2, axis=1)[:, CEPSTRA] / (2 * mel.shape[1])


def dtw_mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance along the DTW path between frame sequences a [N, D] and b [M, D]."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # [N, M]
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    length = np.zeros((n + 1, m + 1))
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = ((total[i - 1, j - 1], length[i - 1, j - 1]), (total[i - 1, j], length[i - 1, j]),
                       (total[i, j - 1], length[i, j - 1]))
            best_total, best_len = min(options)
            total[i, j] = best_total + cost[i - 1, j - 1]
            length[i, j] = best_len + 1
    return float(total[n, m] / length[n, m])


def mcd(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mel-cepstral distortion in dB between two log-mel spectrograms, frames paired by DTW."""
    return MCD_CONSTANT * dtw_mean_distance(mel_cepstra(generated), mel_cepstra(reference))


def score(model: Tacotron, data_dir: Path, split: str, limit: int = 0) -> dict[str, Any]:
    """Alignment success, length agreement and MCD of ``model`` on a split."""
    aligned, length_ok, success, mcds, ratios = [], [], [], [], []
    rows = list(load_split(data_dir, split))[: limit or None]
    for row, reference in tqdm(rows, desc=split, mininterval=10):
        out = generate(model, phone_ids(row["phones"]), seed=0)
        mel = out.mel.numpy()
        ratio = len(mel) / len(reference)
        aligned.append(alignment_ok(out.attention.numpy(), row["phones"] + [EOS]))
        length_ok.append(abs(ratio - 1) <= LENGTH_TOLERANCE)
        success.append(aligned[-1] and length_ok[-1])
        ratios.append(ratio)
        mcds.append(mcd(mel, reference.numpy()))
    return {
        "sentences": len(rows),
        "alignment_success": round(float(np.mean(success)), 4),
        "monotonic_attention": round(float(np.mean(aligned)), 4),
        "length_within_25pct": round(float(np.mean(length_ok)), 4),
        "length_ratio_median": round(float(np.median(ratios)), 3),
        "mcd_db": round(float(np.mean(mcds)), 3),
    }


def real_time_factor(synth: Synthesizer, text: str = BENCH_SENTENCE, repeats: int = 3) -> dict[str, float]:
    """Seconds of compute per second of audio on one CPU thread, vocoder included (best of ``repeats``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synth.synthesize(text)  # warm-up
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            result = synth.synthesize(text)
            best = min(best, time.perf_counter() - start)
        start = time.perf_counter()
        synth.synthesize(text, vocoder=False)
        acoustic = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return {"rtf": round(best / result.duration_s, 4), "seconds": round(best, 3),
            "acoustic_model_seconds": round(acoustic, 3), "audio_seconds": round(result.duration_s, 3),
            "words": len(result.words)}


TRAINING_FACTS = ("epochs", "last_epoch", "train_minutes", "training_seconds", "parameters", "hardware", "date", "commit",
                  "train_settings", "train_command")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tts-en-tacotron")
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--tts-data", type=Path, default=Path("runs/tts-data"))
    parser.add_argument("--early", type=Path, default=None, help="early export (default runs/<id>/early)")
    parser.add_argument("--split", default="test", choices=["valid", "test"])
    parser.add_argument("--limit", type=int, default=0, help="first N sentences only (0 = all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model_dir = args.checkpoints / args.model
    _, model = load_model_only(model_dir)
    training = {k: v for k, v in read_metrics(model_dir).items() if k in TRAINING_FACTS}  # what the export recorded
    metrics: dict[str, Any] = {**training, "split": f"{args.split} (seeded held-out slice of Multi30k training captions)"}
    command = "python -m demo_core.tts.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    metrics["test" if args.split == "test" else args.split] = {
        "split": args.split, "decoding": "greedy", "epoch": training.get("epochs"), "command": command.strip(),
        **score(model, args.tts_data, args.split, args.limit)}
    early_dir = args.early or Path("runs") / args.model / "early"
    if (early_dir / "model.safetensors").exists():
        _, early = load_model_only(early_dir)
        metrics["early"] = {"epoch": read_metrics(early_dir).get("epochs"), **score(early, args.tts_data, args.split, args.limit)}
    metrics["alignment_rule"] = ("argmax (counted in phones; word boundaries not counted) starts on phone 0 or 1, "
                                 "moves by -1..+2 phones per decoder step, ends on "
                                 "one of the last two phones or the end marker; output frames within ±25% of "
                                 "espeak-ng's")
    metrics["mcd_definition"] = ("DTW-aligned MCD, 10·√2/ln10 · mean ‖c − c′‖ over mel-cepstra c1–c24 "
                                 "(DCT-II / 2N of the natural-log mel magnitude, 80 bins; cepstrum convention as SPTK), against espeak-ng's "
                                 "rendering of the same phones")
    metrics["per"] = None
    metrics["per_note"] = "filled in when the CTC recogniser lands"
    metrics["speed"] = real_time_factor(Synthesizer.from_dir(model_dir))
    metrics.update(parameters=sum(p.numel() for p in model.parameters()),
                   evaluation_hardware=f"CPU, 1 thread ({platform.processor() or platform.machine()})",
                   decoding="greedy, prenet dropout on (Tacotron 2), seed 0; stop at p > 0.5")
    # Only the full test run goes into the model folder; checks on valid or a few sentences stay in runs/.
    out = model_dir / "metrics.json" if args.split == "test" and not args.limit \
        else Path("runs") / args.model / f"metrics-{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(metrics, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
