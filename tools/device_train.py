"""Train several configs side by side on one machine, then pack the best epochs for the trip back.

On the GPU machine, in one ``run`` call (docs/DEVICE.md; tools/device_train.sh installs the
carried wheels first):

    bash tools/device_train.sh --minutes 6.5 de-en-transformer en-de-transformer g2p-en-rnn-bahdanau
    python3 tools/device_train.py --fetch      # next call, at once: what did not fit in $OUT

Locally, as a smoke test:

    OUT=/tmp/fakeout python tools/device_train.py dates-rnn-bahdanau --device cpu --threads 1 --limit 200 --minutes 1

First a preflight trains one config of each architecture for one epoch on a few pairs (bf16
autocast, else fp32), so a broken kernel or code path costs seconds, not the slot. Then one
``python -m demo_core.train`` process per config runs at the same time, each with
``--time-limit`` so it stops by itself after the epoch that the next would push past the limit;
a process still running ``--grace`` minutes later is killed and its last best epoch packed
instead. A summary table follows; each model folder becomes ``<id>.tar`` (or parts) in
``--staging``, and as many whole models as the device tool returns (8 files, 64 MiB) move to
``$OUT``. The rest wait in ``--staging`` for ``--fetch``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from device_packing import MiB, count_trips, move_batch, pack

REPO = Path(__file__).resolve().parent.parent
HEARTBEAT_SECONDS = 60
PREFLIGHT_PAIRS = 64
TOKENIZER_BYTES = MiB // 2  # two SentencePiece models, generously


@dataclass
class Job:
    """One training process, where it writes, and how it ended."""

    model_id: str
    config: Path
    run_dir: Path
    export_dir: Path
    log: Path
    process: subprocess.Popen
    started: float
    seconds: float = 0.0
    killed: bool = False


def default_data_dir() -> Path:
    """The carried copy (.devdata/) where there is one, else ../shared/data beside the repo."""
    carried = REPO / ".devdata"
    return carried if carried.is_dir() else REPO.parent / "shared" / "data"


def config_path(name: str) -> Path:
    """``configs/<name>.json`` for an id, or the path itself when given one."""
    path = Path(name) if name.endswith(".json") else REPO / "configs" / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"no config {path}")
    return path


def launch(config: Path, args: argparse.Namespace, threads: int) -> Job:
    """Start ``python -m demo_core.train`` for one config under ``args.work``, its output going to a log."""
    model_id = json.loads(config.read_text(encoding="utf-8"))["id"]  # the name train exports under
    run_dir, export_dir = args.work / "runs" / model_id, args.work / "export" / model_id
    log = args.work / "logs" / f"{model_id}.log"
    command = [sys.executable, "-m", "demo_core.train", str(config), "--data-dir", str(args.data_dir),
               "--run-dir", str(run_dir), "--export-root", str(export_dir.parent), "--device", args.device,
               "--threads", str(threads), "--time-limit", f"{args.minutes:g}"]
    for flag, value in (("--limit", args.limit), ("--max-epochs", args.max_epochs)):
        if value is not None:
            command += [flag, str(value)]
    if args.fp32:
        command.append("--fp32")
    print(" ".join(command[1:]), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
    return Job(model_id, config, run_dir, export_dir, log, process, time.time())


def last_epoch_line(log: Path) -> str:
    """The latest ``epoch N: train loss ...`` line of a training log, or ''."""
    if not log.exists():
        return ""
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 8192))
        lines = f.read().decode("utf-8", errors="replace").replace("\r", "\n").splitlines()
    return next((line for line in reversed(lines) if "train loss" in line), "")


def wait_all(jobs: list[Job], deadline: float) -> None:
    """Wait for every job; print progress each minute; kill what is still running at ``deadline``."""
    pending = list(jobs)
    next_beat = time.time() + HEARTBEAT_SECONDS
    while pending:
        time.sleep(2)
        now = time.time()
        for job in [j for j in pending if j.process.poll() is not None]:
            job.seconds = now - job.started
            pending.remove(job)
            print(f"[{job.seconds:5.0f} s] {job.model_id} finished (exit {job.process.returncode})", flush=True)
        if pending and now > deadline:
            for job in pending:
                print(f"{job.model_id}: past the deadline, killed", flush=True)
                job.killed = True
                job.process.kill()
                job.process.wait()
                job.seconds = time.time() - job.started
            pending = []
        elif pending and now >= next_beat:
            for job in pending:
                print(f"[{now - job.started:5.0f} s] {job.model_id}: {last_epoch_line(job.log) or 'starting'}", flush=True)
            next_beat = now + HEARTBEAT_SECONDS


def model_folder(job: Job) -> Path | None:
    """The exported folder, else the run's latest best epoch, else None.

    A killed job may have died while copying its export, so its run's own best/ comes first.
    """
    order = (job.run_dir / "best", job.export_dir) if job.killed else (job.export_dir, job.run_dir / "best")
    for folder in order:
        if (folder / "model.safetensors").is_file():
            return folder
    return None


def summary_row(job: Job) -> list[str]:
    """id, epochs, best epoch, best validation metric, how it ended, seconds."""
    state_path = job.run_dir / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    metric = json.loads(job.config.read_text()).get("metric", "bleu")
    rc = job.process.returncode
    ended = ("killed at deadline" if job.killed else f"failed (exit {rc})" if rc else
             "time limit" if "stopped by the time limit" in job.log.read_text(errors="replace") else "finished")
    best = f"{metric} {state['best']:.2f}" if state.get("best_epoch") else "-"
    return [job.model_id, str(state.get("epoch", 0)), str(state.get("best_epoch", "-")), best, ended, f"{job.seconds:.0f}"]


def print_table(rows: list[list[str]]) -> None:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def print_tail(log: Path, lines: int = 15) -> None:
    """The last non-empty lines of a training log: the error of a job that failed or was killed."""
    text = log.read_text(errors="replace").replace("\r", "\n") if log.exists() else ""
    print(f"--- last lines of {log} ---")
    print("\n".join([line for line in text.splitlines() if line.strip()][-lines:]))


def hand_back(staging: Path, out: Path | None) -> None:
    """Move what fits from ``staging`` to ``out`` and say what is where."""
    if out is None:
        print(f"$OUT is not set: the packed models stay in {staging}")
        return
    moved, left = move_batch(staging, out)
    for path in moved:
        print(f"in $OUT: {path.name} ({path.stat().st_size / MiB:.1f} MiB)")
    if left:
        print(f"left in {staging} (run `python3 tools/device_train.py --fetch` at once, while the machine is warm):")
        for path in left:
            print(f"  {path.name} ({path.stat().st_size / MiB:.1f} MiB)")
    else:
        print("everything packed is in $OUT")


def estimate(configs: list[Path]) -> None:
    """Print each model's packed size (fp16 weights at the config's vocabulary sizes, an upper
    bound) and how many return trips they would take together."""
    sys.path.insert(0, str(REPO))
    import torch  # here, not at the top: training and --fetch need no torch in this process

    from demo_core.models.registry import build_model, count_parameters
    from demo_core.training.config import TrainConfig

    sizes = {}
    for config in configs:
        if json.loads(config.read_text(encoding="utf-8")).get("task") == "tts":
            print(f"  {config.stem:<24} speech synthesis: size not estimated")
            continue
        cfg = TrainConfig.read(config)
        tok = cfg.tokenizer
        vocab = [tok.vocab_size if tok.joint else tok.side_vocab(side) for side in ("source", "target")]
        with torch.device("meta"):
            model = build_model(cfg.card.architecture, dict(cfg.card.model, src_vocab=vocab[0], tgt_vocab=vocab[1]))
        sizes[cfg.id] = 2 * count_parameters(model) + TOKENIZER_BYTES
        print(f"  {cfg.id:<24} ~{sizes[cfg.id] / MiB:5.1f} MiB")
    trips = count_trips(sizes)
    print(f"{len(sizes)} model(s), ~{sum(sizes.values()) / MiB:.0f} MiB packed: {trips} return trip(s)"
          + ("" if trips == 1 else f", i.e. {trips - 1} --fetch call(s) right after the run"))


def preflight(configs: list[Path], args: argparse.Namespace, threads: int) -> bool:
    """One epoch on a few pairs for one config of each architecture, before the long run.

    bf16 autocast is tried first, then fp32 (``args.fp32`` is set when only fp32 works), so a
    kernel without bf16 costs half a minute instead of the whole slot. False: both failed.
    """
    sample: dict[str, Path] = {}
    for config in configs:
        sample.setdefault(json.loads(config.read_text(encoding="utf-8"))["architecture"], config)
    for fp32 in [True] if args.fp32 else [False, True]:
        trial = argparse.Namespace(**dict(vars(args), work=args.work / "preflight", limit=PREFLIGHT_PAIRS, max_epochs=1,
                                          fp32=fp32))
        shutil.rmtree(trial.work, ignore_errors=True)
        print(f"preflight ({'fp32' if fp32 else 'bf16 autocast'}):", flush=True)
        jobs = [launch(config, trial, threads) for config in sample.values()]
        wait_all(jobs, time.time() + 180)
        failed = [j for j in jobs if j.killed or j.process.returncode]
        for job in failed:
            print_tail(job.log)
        if not failed:
            args.fp32 = fp32
            print(f"preflight passed: training {'in fp32' if fp32 else 'with bf16 autocast (on CUDA)'}", flush=True)
            return True
    return False


def train_all(args: argparse.Namespace) -> int:
    """Launch, wait, summarise, pack; returns the exit status (1 if any job failed to produce a model)."""
    configs = [config_path(name) for name in args.configs]
    threads = args.threads or max(1, min(4, (os.cpu_count() or 1) // len(configs)))
    if args.preflight and not preflight(configs, args, threads):
        print("preflight failed: nothing trained (see the log tails above)")
        return 1
    jobs = [launch(config, args, threads) for config in configs]
    wait_all(jobs, time.time() + (args.minutes + args.grace) * 60)
    print_table([["id", "epochs", "best", "best valid", "ended", "seconds"]] + [summary_row(j) for j in jobs])
    missing = []
    for job in jobs:
        folder = model_folder(job)
        if job.killed or job.process.returncode or folder is None:
            print_tail(job.log)
        if folder is None:
            missing.append(job.model_id)
            continue
        files = pack(folder, job.model_id, args.staging, {"train_log.csv": job.run_dir / "train_log.csv"})
        print(f"packed {job.model_id} from {folder}: {', '.join(f.name for f in files)}")
    hand_back(args.staging, args.out)
    if missing:
        print(f"no model to pack for: {', '.join(missing)}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", help="config ids (configs/<id>.json) or paths")
    parser.add_argument("--fetch", action="store_true", help="only move the next batch of packed models to $OUT")
    parser.add_argument("--estimate", action="store_true", help="only print packed sizes and return trips")
    parser.add_argument("--minutes", type=float, default=6.5, help="time limit of each training process")
    parser.add_argument("--grace", type=float, default=0.75, help="minutes past --minutes before a process is killed")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: cores / jobs, 1 to 4)")
    parser.add_argument("--limit", type=int, default=None, help="passed to train: first N pairs of each split")
    parser.add_argument("--max-epochs", type=int, default=None, help="passed to train")
    parser.add_argument("--fp32", action="store_true", help="passed to train: no bf16 autocast")
    parser.add_argument("--no-preflight", dest="preflight", action="store_false",
                        help="skip the one-epoch trial run of each architecture")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--work", type=Path, default=Path("/tmp/device_train"), help="run dirs, exports and logs")
    parser.add_argument("--staging", type=Path, default=Path("/tmp/device_out"), help="packed models waiting for $OUT")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                        help="where returned files go (default $OUT)")
    args = parser.parse_args(argv)
    if args.fetch:
        hand_back(args.staging, args.out)
        return 0
    if not args.configs:
        parser.error("name at least one config (or --fetch)")
    if args.estimate:
        estimate([config_path(name) for name in args.configs])
        return 0
    return train_all(args)


if __name__ == "__main__":
    sys.exit(main())
