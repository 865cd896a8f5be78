"""Latency of Transformer decoding on CPU: a 17-word sentence, 18-22 output steps, attention recorded.

    python benchmarks/bench_transformer.py [--model ID] [--text S] [--threads 1 2] [--runs 30] [--steps 18] [--weights fp16]

The model is the trained checkpoint ``--model`` names (default: the first ``architecture:
transformer`` model under ``checkpoints/``), or, with ``--config``, that config built with
random weights. A trained model reads the sentence of ``bench_decoding.py`` in its source
language: 17 German or 18 English words, a little longer than the 15 of the speed goal (``--text``
sets another sentence). A random
model would stop at any step or never, so with random weights EOS is suppressed (its output
bias is set to -inf) and every decode runs exactly ``--steps`` steps; a trained model
translates the sentence and stops on its own. Each timed run encodes the source and decodes
it, as ``Translator.run`` does (tokenisation is not timed); loading is not timed. Prints the
median of encoding alone, then the median and 90th percentile in milliseconds for greedy and
beam 5, with the load average, since other jobs on the machine slow every number down, for
each thread count in ``--threads`` (default: 1, what the app uses unless ``OMP_NUM_THREADS`` is
set, and 2, both cores of the project's machine). ``--weights`` fp16 is what the app serves
(``ModelRegistry``); fp32 is the model as trained.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_decoding import SENTENCES  # noqa: E402  (a trained model's input, by source language)
from demo_core.checkpoint import find_models  # noqa: E402
from demo_core.decoding import DecodeConfig, decode  # noqa: E402
from demo_core.models.cpu import CPU_WEIGHTS, quantize_for_cpu  # noqa: E402
from demo_core.models.registry import build_model  # noqa: E402
from demo_core.pipeline import Translator  # noqa: E402
from demo_core.text.tokenizer import EOS_ID  # noqa: E402
from demo_core.training.config import TrainConfig  # noqa: E402

SOURCE_TOKENS = 21  # the German sentence in the shipped 8k SentencePiece models: 20 pieces + EOS


def load(steps: int, config: Path | None = None, model_id: str | None = None, text: str | None = None
         ) -> tuple[str, torch.nn.Module, torch.Tensor, int | None]:
    """Name, eval-mode model, source ids [1, S] and max_len (None: the model stops on its own).

    ``config`` forces a random-weight model of that config (to compare architectures before
    training); ``model_id`` picks a trained checkpoint (default: the first Transformer).
    """
    if config is None:
        transformers = [e for e in find_models() if e.available and e.card.architecture == "transformer"]
        chosen = [e for e in transformers if model_id in (None, e.id)]
        if model_id is not None and not chosen:
            sys.exit(f"{model_id!r} is not an available Transformer under checkpoints/; "
                     "there are: " + ", ".join(e.id for e in transformers))
        if chosen:
            entry = chosen[0]
            lang = entry.card.source_lang
            if lang not in SENTENCES:
                sys.exit(f"{entry.id} reads {lang!r}; this benchmark has sentences for "
                         + ", ".join(SENTENCES))
            translator = Translator.from_dir(entry.path)
            sentence = text or SENTENCES[lang]
            return entry.id, translator.model, torch.tensor([translator.source_ids(sentence)]), None
    cfg = TrainConfig.read(config or REPO / "configs" / "de-en-transformer.json")
    vocab = cfg.tokenizer.vocab_size or cfg.tokenizer.source_vocab
    torch.manual_seed(0)
    model = build_model("transformer", dict(cfg.card.model, src_vocab=vocab, tgt_vocab=vocab)).eval()
    with torch.no_grad():
        model.output_bias[EOS_ID] = float("-inf")  # never stop early: exactly `steps` steps
    src = torch.randint(4, vocab, (1, SOURCE_TOKENS - 1), generator=torch.Generator().manual_seed(0))
    src = torch.cat([src, torch.tensor([[EOS_ID]])], dim=1)
    return f"{cfg.id} (random weights)", model, src, steps


def time_ms(model: torch.nn.Module, src: torch.Tensor, cfg: DecodeConfig, runs: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU milliseconds of encode + decode per run, after one warm-up run, and the
    number of output steps of the best hypothesis (EOS included).

    CPU time well below the wall time means other processes held the cores; equal times on a
    busy machine mean the slowdown is shared caches and memory (or a host's stolen time).
    """
    wall, cpu = [], []
    for run in range(runs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            hyps, _ = decode(model, src, cfg, memory=model.encode(src))
        if run:
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    assert hyps[0].attention.dim() == 4  # [T, layers, heads, S]: attention was recorded
    return wall, cpu, len(hyps[0].ids)


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts to time, in turn")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=18, help="output steps of the random-weight model")
    parser.add_argument("--model", default=None,
                        help="a trained model under checkpoints/ (default: the first Transformer)")
    parser.add_argument("--text", default=None,
                        help="the sentence a trained model translates (default: bench_decoding's, in its source language)")
    parser.add_argument("--config", type=Path, default=None,
                        help="time a random-weight model of this config instead of a trained one")
    parser.add_argument("--weights", choices=CPU_WEIGHTS, default="fp16", help="Linear weights (quantize_for_cpu)")
    args = parser.parse_args()
    name, model, src, max_len = load(args.steps, args.config, args.model, args.text)
    model = quantize_for_cpu(model, args.weights)
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.weights} weights, "
              f"source {src.size(1)} tokens, load average {os.getloadavg()[0]:.2f}")
        encode = []
        for run in range(args.runs + 1):
            start = time.perf_counter()
            with torch.inference_mode():
                model.encode(src)
            if run:
                encode.append((time.perf_counter() - start) * 1000)
        print(f"encode  median {statistics.median(encode):6.1f} ms   (part of every run below)")
        for label, cfg in (("greedy", DecodeConfig(max_len=max_len)),
                           ("beam 5", DecodeConfig(strategy="beam", beam_size=5, max_len=max_len))):
            wall, cpu, steps = time_ms(model, src, cfg, args.runs)
            print(f"{label:7s} median {statistics.median(wall):6.1f} ms   p90 {p90(wall):6.1f} ms   "
                  f"(CPU time: median {statistics.median(cpu):6.1f} ms; {steps} output steps)")


if __name__ == "__main__":
    main()
