"""Train the Tacotron-style synthesiser on the espeak-ng data set, resumably, on one CPU thread.

    python -m demo_core.tts.train configs/tts-en-tacotron.json --data-dir ../shared/data

The data set is generated first if ``runs/tts-data`` lacks it (see :mod:`demo_core.tts.dataset`).
Losses: L1 on the normalised mel before and after the postnet, BCE on the stop logit (one per
decoder step, positive at the last step) and the guided-attention loss of Tachibana et al. (2018),
which penalises attention far from the diagonal ``n / N = t / T`` so that the alignment forms
within the first epochs even on a CPU. State (weights, Adam moments, epoch, clock) is written
to ``runs/<id>/state/`` as safetensors + JSON after every epoch, and the same command resumes
from it. After epoch ``early_epoch`` an early export goes to ``runs/<id>/early/`` (evaluation
reports its MCD as a reference); at the end the fp16 model, card and ``train_log.csv`` go to
``checkpoints/<id>/`` (``--export-dir``); ``--export-only`` rewrites that export from the saved
state (e.g. after editing the card's text in the config).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from tqdm import tqdm

from demo_core.card import ModelCard, SpeechCard
from demo_core.checkpoint import file_sha256, read_metrics, write_metrics
from demo_core.training.export import git_commit, hardware
from demo_core.tts.audio import AudioConfig
from demo_core.tts.dataset import DataConfig, generate, load_split
from demo_core.tts.model import Tacotron, TacotronConfig
from demo_core.tts.phonetize import EOS, PHONE_SET

SYMBOL_ID = {s: i for i, s in enumerate(PHONE_SET)}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the card's ``train``)."""

    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.96  # per epoch
    max_epochs: int = 60
    time_limit_min: float = 85.0
    guided_sigma: float = 0.2
    guided_weight: float = 1.0
    stop_pos_weight: float = 5.0
    grad_clip: float = 1.0
    early_epoch: int = 2
    seed: int = 1
    max_train: int = 0  # 0 = all training utterances


def phone_ids(phones: list[str]) -> list[int]:
    """Model input ids of a phone list (word boundaries as ``" "``), end marker appended."""
    return [SYMBOL_ID[p] for p in phones] + [SYMBOL_ID[EOS]]


def load_examples(data_dir: Path, split: str, limit: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, dict]]:
    """``(phone ids [S], log-mel [T, n_mels], row)`` per utterance of a split."""
    out = []
    for row, mel in load_split(data_dir, split):
        out.append((torch.tensor(phone_ids(row["phones"])), mel, row))
        if limit and len(out) >= limit:
            break
    return out


def batches(examples: list, batch_size: int, rng: random.Random) -> list[list]:
    """Length-bucketed batches: shuffle, sort chunks of 50 batches by length, shuffle the batches."""
    order = list(examples)
    rng.shuffle(order)
    out = []
    chunk = batch_size * 50
    for i in range(0, len(order), chunk):
        part = sorted(order[i:i + chunk], key=lambda e: e[1].shape[0])
        out += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def collate(batch: list, model: Tacotron) -> dict[str, torch.Tensor]:
    """Pad phones [B, S] and normalised mels [B, T, n_mels] (T rounded up to a multiple of r)."""
    r = model.cfg.reduction
    lengths = torch.tensor([len(p) for p, _, _ in batch])
    frames = torch.tensor([len(m) for _, m, _ in batch])
    t = int(math.ceil(frames.max().item() / r) * r)
    phones = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    mel = torch.zeros(len(batch), t, model.cfg.n_mels)
    for i, (p, m, _) in enumerate(batch):
        phones[i, :len(p)] = p
        mel[i, :len(m)] = (m - model.mel_mean) / model.mel_std
    return {"phones": phones, "lengths": lengths, "mel": mel, "frames": frames}


def guided_attention_weights(steps: torch.Tensor, lengths: torch.Tensor, t: int, s: int, sigma: float) -> torch.Tensor:
    """Tachibana et al. (2018): W[b, t, n] = 1 - exp(-(n/N - t/T)^2 / (2 sigma^2)), 0 outside the lengths."""
    tt = torch.arange(t)[None, :, None] / steps[:, None, None].float()  # [B, T, 1]
    nn_ = torch.arange(s)[None, None, :] / lengths[:, None, None].float()  # [B, 1, S]
    w = 1 - torch.exp(-((nn_ - tt) ** 2) / (2 * sigma ** 2))
    valid = (torch.arange(t)[None, :, None] < steps[:, None, None]) & (torch.arange(s)[None, None, :] < lengths[:, None, None])
    return w * valid


def losses(model: Tacotron, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Mel L1 (before + after postnet), stop BCE and guided-attention loss of one batch."""
    r = model.cfg.reduction
    before, after, stop, attention = model(batch["phones"], batch["lengths"], batch["mel"])
    t = batch["mel"].shape[1]
    frame_mask = (torch.arange(t)[None] < batch["frames"][:, None]).unsqueeze(-1).float()  # [B, T, 1]
    denom = frame_mask.sum() * model.cfg.n_mels
    mel_loss = ((before - batch["mel"]).abs() * frame_mask).sum() / denom \
        + ((after - batch["mel"]).abs() * frame_mask).sum() / denom
    steps = (batch["frames"] + r - 1) // r  # decoder steps per utterance
    step_idx = torch.arange(t // r)[None]
    step_mask = (step_idx < steps[:, None]).float()
    target = (step_idx == steps[:, None] - 1).float()
    stop_loss = (F.binary_cross_entropy_with_logits(stop, target, reduction="none",
                                                     pos_weight=torch.tensor(cfg.stop_pos_weight))
                 * step_mask).sum() / step_mask.sum()
    w = guided_attention_weights(steps, batch["lengths"], t // r, attention.shape[2], cfg.guided_sigma)
    guided = (attention * w).sum() / step_mask.sum()
    total = mel_loss + stop_loss + cfg.guided_weight * guided
    return {"loss": total, "mel": mel_loss, "stop": stop_loss, "guided": guided}


def optimizer_tensors(opt: torch.optim.Adam, model: Tacotron) -> dict[str, torch.Tensor]:
    """Adam's moments as named tensors, so resumable state is safetensors, not pickle."""
    out = {}
    for name, param in model.named_parameters():
        state = opt.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq", "step"):
            if key in state:
                out[f"{name}::{key}"] = torch.as_tensor(state[key]).clone()
    return out


def load_optimizer(opt: torch.optim.Adam, model: Tacotron, tensors: dict[str, torch.Tensor]) -> None:
    for name, param in model.named_parameters():
        if f"{name}::step" in tensors:
            opt.state[param] = {k: tensors[f"{name}::{k}"] for k in ("step", "exp_avg", "exp_avg_sq")}


NOTES = {"architecture_name": "architecture", "voice_note": "voice", "training_note": "training",
         "decoding_note": "decoding", "audio_note": "audio"}  # config keys -> the card's notes
SPEECH_DEFAULTS = ("stop_threshold", "griffin_lim_iters")  # decode_defaults that belong to the speech section


def build_card(config: dict[str, Any], model_cfg: TacotronConfig, data: dict) -> ModelCard:
    """The model card written as ``config.json``: the config's description, the model's sizes,
    its phone inventory and audio features, the espeak-ng voice of its data."""
    skip = {"train", "data_options", "decode_defaults", *NOTES}
    defaults = config.get("decode_defaults", {})
    speech = SpeechCard(symbols=tuple(PHONE_SET), audio=asdict(AudioConfig()), voice=data["voices"][0],
                        words_per_minute=int(data["rates"][0]), **{k: defaults[k] for k in SPEECH_DEFAULTS if k in defaults})
    values = {k: v for k, v in config.items() if k not in skip}
    values.update(model=asdict(model_cfg), dataset_options=data, speech=None, notes={NOTES[k]: config[k] for k in NOTES if k in config},
                  decode_defaults={k: v for k, v in defaults.items() if k not in SPEECH_DEFAULTS})
    card = ModelCard.from_json(values, f"configs/{config['id']}.json")
    return replace(card, speech=speech)


def export(model: Tacotron, card: ModelCard, out_dir: Path, training: dict[str, Any], log_path: Path | None = None) -> None:
    """fp16 safetensors + card (with the weights' SHA-256) + training facts in metrics.json (+ curve) in ``out_dir``.

    Measured metrics already in ``out_dir/metrics.json`` (``demo_core.tts.evaluate``) are kept.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()},
              str(out_dir / "model.safetensors"))
    replace(card, weights_sha256=file_sha256(out_dir / "model.safetensors")).write(out_dir / "config.json")
    write_metrics(out_dir, read_metrics(out_dir) | training)
    if log_path is not None and log_path.exists():
        shutil.copy(log_path, out_dir / "train_log.csv")


def run_epoch(model: Tacotron, opt: torch.optim.Adam, examples: list, cfg: TrainConfig, rng: random.Random,
              epoch: int, deadline: float) -> dict[str, float]:
    model.train()
    sums: dict[str, float] = {}
    n = 0
    for batch in tqdm(batches(examples, cfg.batch_size, rng), desc=f"epoch {epoch}", mininterval=30):
        parts = losses(model, collate(batch, model), cfg)
        opt.zero_grad()
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        n += 1
        if time.time() > deadline:
            break
    return {k: v / max(n, 1) for k, v in sums.items()}


@torch.no_grad()
def valid_loss(model: Tacotron, examples: list, cfg: TrainConfig) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    chunks = [examples[i:i + cfg.batch_size] for i in range(0, len(examples), cfg.batch_size)]
    for batch in chunks:
        for k, v in losses(model, collate(batch, model), cfg).items():
            sums[k] = sums.get(k, 0.0) + float(v) / len(chunks)
    return sums


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tts-data", type=Path, default=Path("runs/tts-data"))
    parser.add_argument("--run-dir", type=Path, default=None, help="default runs/<id>")
    parser.add_argument("--export-dir", type=Path, default=None, help="default checkpoints/<id>")
    parser.add_argument("--time-limit", type=float, default=None, help="minutes of training in all (resumes count)")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--export-only", action="store_true", help="write the export from the saved state, no training")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    overrides = {"time_limit_min": args.time_limit, "max_epochs": args.max_epochs}
    known = {f.name for f in fields(TrainConfig)}
    train_cfg = TrainConfig(**{**{k: v for k, v in config.get("train", {}).items() if k in known},
                               **{k: v for k, v in overrides.items() if v is not None}})
    run_dir = args.run_dir or Path("runs") / config["id"]
    export_dir = args.export_dir or Path("checkpoints") / config["id"]
    data_cfg = DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.get("data_options", {}).items()})
    if not (args.tts_data / "train.jsonl").exists() or not (args.tts_data / "test.jsonl").exists():
        generate(args.data_dir, args.tts_data, data_cfg)
    random.seed(train_cfg.seed)
    torch.manual_seed(train_cfg.seed)
    train = load_examples(args.tts_data, "train", train_cfg.max_train)
    valid = load_examples(args.tts_data, "valid")
    model_cfg = TacotronConfig(n_symbols=len(PHONE_SET), **config.get("model", {}))
    model = Tacotron(model_cfg)
    all_mels = torch.cat([m for _, m, _ in train])
    model.mel_mean.fill_(all_mels.mean())
    model.mel_std.fill_(all_mels.std())
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=1e-6)
    state_dir, log_path = run_dir / "state", run_dir / "train_log.csv"
    progress = {"epoch": 0, "elapsed_s": 0.0}
    if (state_dir / "state.json").exists():
        model.load_state_dict(load_file(str(state_dir / "model.safetensors")))
        load_optimizer(opt, model, load_file(str(state_dir / "optimizer.safetensors")))
        progress = json.loads((state_dir / "state.json").read_text())
        print(f"resumed after epoch {progress['epoch']} ({progress['elapsed_s'] / 60:.1f} min)")
    card = build_card(config, model_cfg, asdict(data_cfg))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(train)} training and {len(valid)} validation utterances; {n_params:,} parameters")
    start = time.time() - progress["elapsed_s"]
    deadline = start + train_cfg.time_limit_min * 60
    rng = random.Random(train_cfg.seed + progress["epoch"])
    while not args.export_only and progress["epoch"] < train_cfg.max_epochs and time.time() < deadline:
        epoch = progress["epoch"] + 1
        for group in opt.param_groups:
            group["lr"] = train_cfg.lr * train_cfg.lr_decay ** (epoch - 1)
        t0 = time.time()
        tr = run_epoch(model, opt, train, train_cfg, rng, epoch, deadline)
        va = valid_loss(model, valid, train_cfg)
        progress = {"epoch": epoch, "elapsed_s": time.time() - start}
        row = {"epoch": epoch, "minutes": round(progress["elapsed_s"] / 60, 2), "epoch_s": round(time.time() - t0, 1),
               "lr": train_cfg.lr * train_cfg.lr_decay ** (epoch - 1),
               **{f"train_{k}": round(v, 4) for k, v in tr.items()}, **{f"valid_{k}": round(v, 4) for k, v in va.items()}}
        print(json.dumps(row), flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        new_log = not log_path.exists()
        with open(log_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new_log:
                writer.writeheader()
            writer.writerow(row)
        state_dir.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(state_dir / "model.safetensors"))
        save_file(optimizer_tensors(opt, model), str(state_dir / "optimizer.safetensors"))
        (state_dir / "state.json").write_text(json.dumps(progress))
        if epoch == train_cfg.early_epoch:
            export(model, card, run_dir / "early", {"epochs": epoch})
        if time.time() + (time.time() - t0) > deadline:
            break  # another epoch would not finish in time
    training = {"epochs": progress["epoch"], "last_epoch": progress["epoch"], "train_minutes": round(progress["elapsed_s"] / 60, 1),
                "training_seconds": round(progress["elapsed_s"], 1), "parameters": n_params,
                "hardware": hardware(torch.device("cpu")), "date": dt.date.today().isoformat(), "commit": git_commit(),
                "train_settings": asdict(train_cfg),
                "train_command": f"python -m demo_core.train configs/{config['id']}.json --data-dir ../shared/data"}
    export(model, card, export_dir, training, log_path)
    print(f"exported epoch {progress['epoch']} to {export_dir}")


if __name__ == "__main__":
    main()
