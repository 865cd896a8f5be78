"""The training loop: a JSON config in, a shipped model folder out; resumable, with early stopping.

    python -m demo_core.train configs/de-en-rnn-bahdanau.json --data-dir ../shared/data

Every epoch writes ``<run-dir>/state.safetensors`` (fp32 weights and Adam moments) and
``state.json``; run the same command again to resume. The best epoch on the validation
metric is exported (fp16) to ``<run-dir>/best/`` and, when training ends, to
``checkpoints/<id>/``. ``train_log.csv`` records the curve.

``--time-limit MINUTES`` stops after the epoch that the next one would push past the limit
(state saved, best exported), so several jobs can share a fixed slot of machine time.

``--export last`` ships the latest epoch instead of the best one by the (greedy) validation
metric: once the learning rate has decayed, the last weights can score higher with beam search
on validation than a lucky greedy peak did (``python -m demo_core.evaluate --split valid``).

Checkpoint averaging is part of the command when the config asks for it: with
``training.average_last`` N > 1, every epoch also keeps its weights in ``<run-dir>/epochs/``
(the last N only), and when training ends the mean of the last N epochs' weights is scored on
validation like an epoch; it is shipped when it beats the best single epoch, which is shipped
otherwise. The Transformer's weights wander around a minimum between epochs; their mean sits
nearer its centre (Vaswani et al., 2017, averaged the last 5 to 20 checkpoints).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.decoding import DecodeConfig
from demo_core.models.registry import build_model, count_parameters
from demo_core.pipeline import Translator
from demo_core.tasks import datasets as data
from demo_core.tasks.metrics import score
from demo_core.text.tokenizer import PAD_ID, Tokenizer, train_sentencepiece
from demo_core.training.config import TokenizerSpec, TrainConfig, TrainSettings
from demo_core.training.export import CARD_TEXT, cpu_has_bf16, export, hardware, ship
from demo_core.training.state import averaged_weights, keep_snapshot, load_state, save_state

REPO = Path(__file__).resolve().parents[2]


def load_config(path: Path) -> TrainConfig:
    """The parsed training config (``demo_core.training.config``)."""
    return TrainConfig.read(path)


def build_tokenizers(tok: TokenizerSpec, train_pairs: list[data.Pair], run_dir: Path) -> tuple[Tokenizer, Tokenizer, dict[str, str]]:
    """Train (or reuse from run_dir) the SentencePiece model(s) the config asks for."""
    if tok.joint:
        path = run_dir / "joint.spm.model"
        if not path.exists():
            sents = [s for s, _ in train_pairs] + [t for _, t in train_pairs]
            train_sentencepiece(sents, path, tok.vocab_size, tok.model_type, tok.character_coverage)
        return (Tokenizer(path, tok.source_normalizer), Tokenizer(path, tok.target_normalizer),
                {"source": path.name, "target": path.name})
    paths = {"source": run_dir / "source.spm.model", "target": run_dir / "target.spm.model"}
    for side, idx in (("source", 0), ("target", 1)):
        if not paths[side].exists():
            sents = [p[idx] for p in train_pairs]
            train_sentencepiece(sents, paths[side], tok.side_vocab(side), tok.side_model_type(side), tok.character_coverage)
    return (Tokenizer(paths["source"], tok.source_normalizer), Tokenizer(paths["target"], tok.target_normalizer),
            {k: v.name for k, v in paths.items()})


def lr_at(step: int, s: TrainSettings, scale: float = 1.0) -> float:
    """Linear warm-up, then inverse square-root decay; times ``scale`` (``plateau_factor`` so far)."""
    step = max(step, 1)
    if step < s.warmup_steps:
        return scale * s.lr * step / s.warmup_steps
    return scale * s.lr * math.sqrt(s.warmup_steps / step)


def evaluate_valid(translator: Translator, items: list[tuple[str, list[str]]], metric: str, s: TrainSettings) -> tuple[float, dict[str, Any]]:
    """Greedy-decode each validation source once and score it against all its references."""
    # The decoders build their tensors (padded sources, BOS tokens) with the factory default
    # device; on a GPU that must be the model's device, or the first lookup fails.
    with next(translator.model.parameters()).device:
        hyps = translator.translate_batch([src for src, _ in items], DecodeConfig(strategy="greedy", max_len_a=s.valid_max_len_a, alternatives=1))
    return score(metric, hyps, [refs for _, refs in items])


def metric_reached(best: float, s: TrainSettings) -> bool:
    """True once the best validation metric reached ``stop_at``: no later epoch can do better."""
    return s.stop_at is not None and best >= s.stop_at


def out_of_time(started: float, last_epoch_seconds: float | None, time_limit: float | None) -> bool:
    """Whether another epoch as long as the last one would end past ``time_limit`` minutes after ``started``."""
    if time_limit is None or last_epoch_seconds is None:
        return False
    return time.time() - started + last_epoch_seconds > time_limit * 60


def train(config_path: Path, data_dir: Path, run_dir: Path, export_root: Path, device_name: str,
          max_epochs: int | None = None, limit: int | None = None, time_limit: float | None = None,
          amp: bool = True, export_epoch: str = "best") -> Path:
    """Train (or resume) the model of ``config_path``; returns the exported model folder.

    ``limit`` keeps only the first ``limit`` training and validation pairs (smoke tests).
    ``time_limit`` (minutes of wall time for this call) ends training early, as patience would.
    ``amp`` runs the forward pass under bf16 autocast on CUDA, and on a CPU that has native
    bf16 products (``cpu_has_bf16``); the loss, gradients, weights and Adam moments stay fp32.
    ``export_epoch`` "last" exports the latest epoch (scored on validation again) instead of the best.
    """
    if export_epoch not in ("best", "last"):
        raise ValueError(f"export_epoch must be 'best' or 'last', got {export_epoch!r}")
    started = time.time()
    cfg = load_config(config_path)
    card, s = cfg.card, cfg.training
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device_name)
    torch.manual_seed(s.seed)
    def load(role: str, default: str) -> list[data.Pair]:
        split = card.split(role, default)
        return data.load_pairs(card.dataset, data_dir, split, card.source_lang, card.target_lang, card.dataset_options)[:limit]

    train_pairs, valid_pairs = load("train", "train"), load("valid", "val")
    # The metric sees each validation source once with all its references (G2P: every pronunciation).
    valid_refs = data.group_references(valid_pairs, data.DATASETS[card.dataset].multi_reference)
    src_tok, tgt_tok, tok_files = build_tokenizers(cfg.tokenizer, train_pairs, run_dir)
    model_cfg = dict(card.model, src_vocab=src_tok.vocab_size, tgt_vocab=tgt_tok.vocab_size)
    model = build_model(card.architecture, model_cfg).to(device)
    n_params = count_parameters(model)

    def score_valid() -> tuple[float, dict[str, Any]]:
        """The model as it is now, greedy-decoding the validation split: (metric, all values)."""
        translator = Translator(cfg.shipped_card(model_cfg, tok_files), model.float().eval(), src_tok, tgt_tok)
        return evaluate_valid(translator, valid_refs, card.metric, s)

    def export_now(folder: Path, epoch: int, metric: float, values: dict[str, Any], **extra: Any) -> None:
        """Export the model as it is now (not the best epoch) to ``folder``, scored ``metric`` on validation."""
        export(model, folder, cfg, model_cfg, tok_files, run_dir,
               dict(info, best=metric, best_epoch=epoch, best_values=values, **extra), n_params, device, use_amp)

    opt = torch.optim.Adam(model.parameters(), lr=s.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=s.weight_decay)
    info = load_state(run_dir, model, opt) or {"epoch": 0, "step": 0, "best": -1.0, "best_epoch": 0, "bad_epochs": 0, "train_seconds": 0.0}
    if info["epoch"]:
        print(f"resuming {card.id} after epoch {info['epoch']} (best {info['best']:.2f} at epoch {info['best_epoch']})", file=sys.stderr)
    examples = [(src_tok.encode(a), tgt_tok.encode(b)) for a, b in train_pairs]
    examples = [e for e in examples if 0 < len(e[0]) <= s.max_train_len and 0 < len(e[1]) <= s.max_train_len]
    log_path = run_dir / "train_log.csv"
    if not log_path.exists():
        log_path.write_text("epoch,step,train_loss,valid_loss,valid_metric,lr,epoch_seconds,tokens_per_second\n")
    use_amp = amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()))
    print(f"{card.id}: {n_params:,} parameters, {len(examples):,} training pairs, device {hardware(device)}"
          f"{', bf16 autocast' if use_amp else ''}", file=sys.stderr)
    last_epoch = max_epochs or s.max_epochs
    epoch_wall: float | None = None  # the last epoch of this call, validation and saving included
    while info["epoch"] < last_epoch and info["bad_epochs"] < s.patience and not metric_reached(info["best"], s):
        if out_of_time(started, epoch_wall, time_limit):
            print(f"stopped by the time limit ({time_limit:g} min) after epoch {info['epoch']}: "
                  f"{time.time() - started:.0f} s used, another epoch would pass it", file=sys.stderr)
            break
        epoch = info["epoch"] + 1
        torch.manual_seed(s.seed * 1000 + epoch)
        batches = data.token_batches(examples, s.max_tokens, shuffle=True, seed=s.seed * 1000 + epoch)
        model.train()
        start = time.time()
        total_loss, total_tokens = 0.0, 0
        bar = tqdm(data.iterate(examples, batches), total=len(batches), desc=f"epoch {epoch}", file=sys.stderr, mininterval=5)
        for src, tgt_in, tgt_out in bar:
            src, tgt_in, tgt_out = src.to(device), tgt_in.to(device), tgt_out.to(device)
            info["step"] += 1
            for group in opt.param_groups:
                group["lr"] = lr_at(info["step"], s, info.get("lr_scale", 1.0))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(src, tgt_in)
            loss = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID, label_smoothing=s.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_norm)
            opt.step()
            n_tok = int((tgt_out != PAD_ID).sum())
            total_loss += loss.item() * n_tok
            total_tokens += n_tok
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{total_tokens / (time.time() - start):.0f}", refresh=False)
        bar.close()
        seconds = time.time() - start
        lr_used = lr_at(info["step"], s, info.get("lr_scale", 1.0))  # at the epoch's last step
        valid_loss = validation_loss(model, valid_pairs, src_tok, tgt_tok, s, device)
        metric, values = score_valid()
        info["train_seconds"] += seconds
        info["epoch"] = epoch
        improved = metric > info["best"]
        if improved:
            info.update(best=metric, best_epoch=epoch, bad_epochs=0, best_values=values)
            export(model, run_dir / "best", cfg, model_cfg, tok_files, run_dir, info, n_params, device, use_amp)
        else:
            info["bad_epochs"] += 1
            info["lr_scale"] = info.get("lr_scale", 1.0) * s.plateau_factor  # from the next epoch on
        with log_path.open("a") as f:
            csv.writer(f).writerow([epoch, info["step"], f"{total_loss / max(total_tokens, 1):.4f}", f"{valid_loss:.4f}",
                                    f"{metric:.2f}", f"{lr_used:.6g}", f"{seconds:.0f}", f"{total_tokens / seconds:.0f}"])
        save_state(run_dir, model, opt, info)
        if s.average_last > 1:
            keep_snapshot(run_dir, model, epoch, s.average_last)
        print(f"epoch {epoch}: train loss {total_loss / max(total_tokens, 1):.3f}, valid loss {valid_loss:.3f}, "
              f"valid {card.metric} {metric:.2f}{' (best)' if improved else ''}, {seconds:.0f} s", file=sys.stderr)
        epoch_wall = time.time() - start
    target = export_root / card.id
    best, label = run_dir / "best", f"epoch {info['best_epoch']} (best)"
    if export_epoch == "last" and info["epoch"]:
        metric, values = score_valid()
        best, label = run_dir / "last", f"epoch {info['epoch']} (last)"
        export_now(best, info["epoch"], metric, values)
        print(f"{label} scores {metric:.2f} on validation; exporting it", file=sys.stderr)
    elif s.average_last > 1 and info["epoch"]:
        epochs = list(range(max(info["epoch"] - s.average_last + 1, 1), info["epoch"] + 1))
        weights = averaged_weights(run_dir, epochs)
        if weights is None:
            print(f"no snapshots of epochs {epochs[0]}-{epochs[-1]} to average; shipping the best epoch", file=sys.stderr)
        else:
            model.load_state_dict(weights)
            metric, values = score_valid()
            mean = f"the mean of epochs {epochs[0]}-{epochs[-1]}"
            print(f"{mean} scores {metric:.2f} on validation, the best epoch ({info['best_epoch']}) {info['best']:.2f}",
                  file=sys.stderr)
            if metric > info["best"]:
                best, label = run_dir / "averaged", mean
                export_now(best, epochs[-1], metric, values, averaged_epochs=[epochs[0], epochs[-1]])
    if best.exists():
        fresh = load_config(config_path).card  # the card's words as the config says them now
        words = replace(cfg.card, **{k: getattr(fresh, k) for k in CARD_TEXT})
        ship(best, target, replace(cfg, card=words).shipped_card(model_cfg, tok_files), log_path, label)
    return target


@torch.no_grad()
def validation_loss(model: torch.nn.Module, pairs: list[data.Pair], src_tok: Tokenizer, tgt_tok: Tokenizer,
                    s: TrainSettings, device: torch.device) -> float:
    """Token-level cross-entropy (no smoothing) on the validation pairs."""
    model.eval()
    examples = [(src_tok.encode(a), tgt_tok.encode(b)) for a, b in pairs]
    total, count = 0.0, 0
    for src, tgt_in, tgt_out in data.iterate(examples, data.token_batches(examples, s.max_tokens, shuffle=False)):
        logits = model(src.to(device), tgt_in.to(device)).float()
        tgt_out = tgt_out.to(device)
        total += F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID, reduction="sum").item()
        count += int((tgt_out != PAD_ID).sum())
    return total / max(count, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="training config (configs/<id>.json)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--run-dir", type=Path, default=None, help="state and logs (default runs/<id>)")
    parser.add_argument("--export-root", type=Path, default=DEFAULT_ROOT, help="where the best model is exported")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-epochs", type=int, default=None, help="stop after this epoch (resume later)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs of each split (smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                        help="stop after the epoch that the next would push past this many minutes (resume later)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast (CUDA, or a CPU with native bf16)")
    parser.add_argument("--export", choices=("best", "last"), default="best",
                        help="ship the best epoch by the validation metric (default) or the latest one")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    run_dir = args.run_dir or REPO / "runs" / cfg.id
    train(args.config, args.data_dir, run_dir, args.export_root, args.device, args.max_epochs, args.limit, args.time_limit,
          amp=not args.fp32, export_epoch=args.export)


if __name__ == "__main__":
    main()
