"""Seconds per training step on CPU, fp32 against bf16 autocast, for a config's model.

    python benchmarks/bench_training.py [--config configs/de-en-transformer.json] [--threads 1] [--steps 3]

One step is what ``demo_core.train`` does per batch (forward, label-smoothed loss, backward,
Adam) on a random batch of 128 sentences x 22 tokens (~3,000 tokens, the configs' batch
size) with an 8,000-piece vocabulary. The two precisions alternate, twice each, after a
warm-up step, so a machine that gets busier or quieter meanwhile shows in both. Prints the
median per precision and the ratio; ``demo_core.training.export.cpu_has_bf16`` says whether this CPU
would use autocast.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_core.models.registry import build_model  # noqa: E402
from demo_core.training.config import TrainConfig  # noqa: E402
from demo_core.training.export import cpu_has_bf16  # noqa: E402

VOCAB, BATCH, LENGTH = 8000, 128, 22


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "de-en-transformer.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    card = TrainConfig.read(args.config).card
    torch.manual_seed(0)
    model = build_model(card.architecture, dict(card.model, src_vocab=VOCAB, tgt_vocab=VOCAB)).train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    src = torch.randint(4, VOCAB, (BATCH, LENGTH))
    tgt = torch.randint(4, VOCAB, (BATCH, LENGTH + 1))

    def step(amp: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), tgt[:, 1:].flatten(), label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for amp in (False, True, False, True):
        step(amp)  # warm-up (and first use of this precision's kernels)
        for _ in range(args.steps):
            start = time.perf_counter()
            step(amp)
            times["bf16" if amp else "fp32"].append(time.perf_counter() - start)
    fp32, bf16 = (statistics.median(times[k]) for k in ("fp32", "bf16"))
    print(f"{card.id}: {args.threads} thread(s), batch {BATCH} x {LENGTH} tokens, native bf16: {cpu_has_bf16()}")
    print(f"fp32 {fp32:.2f} s/step   bf16 autocast {bf16:.2f} s/step   speed-up {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
