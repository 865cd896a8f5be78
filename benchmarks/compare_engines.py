"""Our Transformer decoder against Hugging Face ``generate()`` and CTranslate2, on one thread.

    pip install -r benchmarks/requirements.txt   # transformers and ctranslate2, for this benchmark only
    python benchmarks/compare_engines.py [--rounds 40] [--batch 32] [--steps N] [--weights fp16] [--text S] [--fold-max N]

The issue's speed goals (issue 17, item 4) are ratios to the engines a user would pick
instead, so this script times all of them in one run, on a model of the shipped
``de-en-transformer``'s dimensions (6 + 2 layers, 4 heads, width 128, feed-forward 256, joint
vocabulary of 8,000):

* ours: the shipped checkpoint in the form the app serves (``quantize_for_cpu``, fp16 by
  default), decoded by ``demo_core.decoding`` from source ids (encode + decode, as
  ``Translator.run`` does; tokenisation is not timed), with every decoder layer's and head's
  cross-attention recorded, and again with the attention dropped before it is recorded;
* Hugging Face: a ``MarianMTModel`` of the same dimensions (ReLU, sinusoidal positions, shared
  embeddings; post-norm where ours is pre-norm: the same operations in another order) with
  random weights, through ``generate()``, plain and with ``output_attentions=True``;
* CTranslate2: that Hugging Face model converted with CTranslate2's own converter, run fp32
  and int8 (``compute_type``) as ``translate_batch`` runs by default (tokens only: its greedy
  search then never computes a log-softmax), and fp32 again with ``return_scores`` and
  ``return_attention``, which returns what ours returns besides the tokens (a score per
  hypothesis, attention), so that it does the work ours does.

Every engine reads the same 15-word German sentence (``--text`` sets another; its ids, EOS
included) and writes exactly ``--steps`` tokens (default: what the shipped model writes for it,
EOS included): EOS is suppressed in ours (output bias -inf, ``max_len``), Hugging Face gets
``min_new_tokens = max_new_tokens`` and CTranslate2 ``min_decoding_length =
max_decoding_length``. Cases: greedy and beam 5 (5 hypotheses returned) for one sentence, and
greedy for ``--batch`` copies of it (throughput in sentences per second). Each round times
every engine of every case once, in a shuffled order, after two warm-up runs each; the table
gives medians over ``--rounds`` rounds, so a phase of a busy machine slows all engines alike.
Everything runs on one thread (``torch.set_num_threads(1)``, CTranslate2 ``intra_threads=1``);
the models are built or loaded before timing. ``--fold-max`` sets our decoder's
``FOLD_MAX_POSITIONS`` (``demo_core.models.transformer_fast``; 0: the cross-attention is never
folded into the source).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_core.decoding import DecodeConfig, decode, greedy_search  # noqa: E402
from demo_core.models import transformer_fast  # noqa: E402
from demo_core.models.cpu import CPU_WEIGHTS, quantize_for_cpu  # noqa: E402
from demo_core.pipeline import Translator  # noqa: E402
from demo_core.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID  # noqa: E402

MODEL_DIR = REPO / "checkpoints" / "de-en-transformer"
SENTENCE = "Ein kleines Mädchen in einem rosa Kleid spielt mit ihrem Hund auf der grünen Wiese."  # 15 words (bench_app.py)
BEAM = 5
INSTALL = "pip install -r benchmarks/requirements.txt  (or: pip install transformers ctranslate2)"

Run = Callable[[], int]  # one timed decode; returns the output length (tokens of the best hypothesis)


def need_engines() -> tuple[object, object]:
    """The optional ``transformers`` and ``ctranslate2`` modules, or exit saying how to install them."""
    missing = []
    try:
        import transformers
    except ImportError:
        missing.append("transformers")
    try:
        import ctranslate2
    except ImportError:
        missing.append("ctranslate2")
    if missing:
        sys.exit(f"this benchmark needs {' and '.join(missing)}, which the app does not need: {INSTALL}")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers, ctranslate2


# --- ours -------------------------------------------------------------------------------------

class WithoutAttention:
    """Our model with each step's attention dropped before the decoder records it.

    The step still computes the weights (its cross-attention needs them); what this saves is
    recording them: copying every layer's and head's row per step and stacking them per hypothesis.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def encode(self, src: torch.Tensor):  # noqa: ANN201 (the model's memory)
        return self.model.encode(src)

    def init_state(self, memory):  # noqa: ANN001, ANN201
        return self.model.init_state(memory)

    def decode_step(self, memory, state, prev_tokens: torch.Tensor):  # noqa: ANN001, ANN201
        log_probs, state, attention = self.model.decode_step(memory, state, prev_tokens)
        return log_probs, state, attention[:, :0]  # [B, 0, H, S]

    def greedy_trace(self, memory, first: torch.Tensor, limit: int, k: int):  # noqa: ANN001, ANN201
        return self.model.greedy_trace(memory, first, limit, k, record=False)  # [T, B, 0, H, S]


def load_ours(weights: str, folder: Path = MODEL_DIR) -> tuple[Translator, torch.nn.Module, torch.nn.Module]:
    """The shipped translator, and its served form (``weights``) as it is and with EOS suppressed."""
    translator = Translator.from_dir(folder)
    forced = copy.deepcopy(translator.model)
    with torch.no_grad():
        forced.output_bias[EOS_ID] = float("-inf")  # never stops: exactly max_len steps
    return translator, quantize_for_cpu(translator.model, weights), quantize_for_cpu(forced, weights)


def our_runs(model: torch.nn.Module, src: torch.Tensor, batch: torch.Tensor, steps: int) -> dict[str, Run]:
    """Greedy, beam and batched greedy with our decoders (attention recorded by ``decode``)."""
    greedy, beam = DecodeConfig(max_len=steps), DecodeConfig(strategy="beam", beam_size=BEAM, max_len=steps)

    def one(cfg: DecodeConfig) -> Run:
        def run() -> int:
            with torch.inference_mode():
                hyps, _ = decode(model, src, cfg, memory=model.encode(src))
            return len(hyps[0].ids)
        return run

    def batched() -> int:
        with torch.inference_mode():
            hyps = greedy_search(model, batch, greedy, memory=model.encode(batch))
        assert len(hyps) == batch.size(0)
        return len(hyps[0].ids)

    return {"greedy": one(greedy), "beam": one(beam), "batch": batched}


# --- Hugging Face and CTranslate2 -------------------------------------------------------------

def hf_model(transformers, dims: dict, attn: str) -> torch.nn.Module:  # noqa: ANN001
    """A random-weight MarianMTModel of ``dims``, with one extra vocabulary row for its decoder-start/pad token."""
    vocab = dims["tgt_vocab"]
    config = transformers.MarianConfig(
        vocab_size=vocab + 1, d_model=dims["d_model"], encoder_layers=dims["enc_layers"], decoder_layers=dims["dec_layers"],
        encoder_attention_heads=dims["n_heads"], decoder_attention_heads=dims["n_heads"],
        encoder_ffn_dim=dims["d_ff"], decoder_ffn_dim=dims["d_ff"], activation_function="relu",
        max_position_embeddings=dims["max_positions"], dropout=0.0, attention_dropout=0.0, scale_embedding=True,
        pad_token_id=vocab, decoder_start_token_id=vocab, eos_token_id=EOS_ID, forced_eos_token_id=None, bos_token_id=None,
    )
    config._attn_implementation = attn
    torch.manual_seed(0)
    return transformers.MarianMTModel(config).eval()


def hf_runs(model: torch.nn.Module, src: torch.Tensor, batch: torch.Tensor, steps: int, attentions: bool) -> dict[str, Run]:
    """Greedy, beam and batched greedy through ``generate()`` (all attentions returned when ``attentions``)."""
    fixed = dict(min_new_tokens=steps, max_new_tokens=steps, do_sample=False, use_cache=True,
                 output_attentions=attentions, return_dict_in_generate=attentions)

    def one(ids: torch.Tensor, beams: int) -> Run:
        def run() -> int:
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=beams,
                                     num_return_sequences=beams, **fixed)
            sequences = out.sequences if attentions else out
            return sequences.size(1) - 1  # less the decoder-start token
        return run

    return {"greedy": one(src, 1), "beam": one(src, BEAM), "batch": one(batch, 1)}


class Vocabulary:
    """The few tokenizer fields CTranslate2's Marian converter reads, for a vocabulary of names."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.eos_token, self.unk_token, self.bos_token = tokens[EOS_ID], tokens[UNK_ID], tokens[BOS_ID]

    def get_vocab(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}


def ct2_translators(ctranslate2, model: torch.nn.Module, folder: Path) -> dict[str, object]:  # noqa: ANN001
    """``model`` converted by CTranslate2's Transformers converter, loaded fp32 and int8 on one thread."""
    vocab = model.config.vocab_size - 1
    tokens = [f"t{i}" for i in range(vocab)] + ["<pad>"]  # the converter drops a final <pad> (Marian's decoder start)
    tokens[PAD_ID], tokens[UNK_ID], tokens[BOS_ID], tokens[EOS_ID] = "<blank>", "<unk>", "<s>", "</s>"
    model.save_pretrained(folder / "hf")

    class Converter(ctranslate2.converters.TransformersConverter):
        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):  # noqa: ANN001, ANN201
            return Vocabulary(tokens)

    Converter(str(folder / "hf")).convert(str(folder / "ct2"), force=True)
    return {kind: ctranslate2.Translator(str(folder / "ct2"), device="cpu", compute_type=kind, intra_threads=1, inter_threads=1)
            for kind in ("float32", "int8")}, tokens


def ct2_runs(translator, tokens: list[str], src: torch.Tensor, batch_size: int, steps: int,  # noqa: ANN001
             scored: bool = False) -> dict[str, Run]:
    """Greedy, beam and batched greedy through ``translate_batch``; ``scored``: each hypothesis's score and
    attention returned too (``return_scores``, ``return_attention``), as ours returns its log-probs and attention.
    Without them CTranslate2's greedy search picks the best token from the raw scores and skips the log-softmax."""
    source = [tokens[i] for i in src[0].tolist()]

    def one(n: int, beams: int) -> Run:
        def run() -> int:
            results = translator.translate_batch([source] * n, beam_size=beams, num_hypotheses=beams, max_batch_size=n,
                                                 min_decoding_length=steps, max_decoding_length=steps,
                                                 return_scores=scored, return_attention=scored)
            return len(results[0].hypotheses[0])
        return run

    return {"greedy": one(1, 1), "beam": one(1, BEAM), "batch": one(batch_size, 1)}


# --- timing and the table ---------------------------------------------------------------------

def interleaved(runs: dict[tuple[str, str], Run], rounds: int, steps: int) -> dict[tuple[str, str], list[float]]:
    """Milliseconds of every run per round, runs shuffled within each round, after two warm-ups each;
    every run must write exactly ``steps`` tokens."""
    for key, run in runs.items():
        for _ in range(2):
            length = run()
            if length != steps:
                raise AssertionError(f"{key} wrote {length} tokens, not {steps}")
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    order = list(runs)
    shuffler = random.Random(0)
    for _ in range(rounds):
        shuffler.shuffle(order)
        for key in order:
            start = time.perf_counter()
            runs[key]()
            times[key].append((time.perf_counter() - start) * 1000)
    return times


ENGINES = {
    "ours": "ours, attention recorded",
    "ours-noattn": "ours, attention dropped",
    "hf": "HF generate()",
    "hf-attn": "HF generate(), attentions",
    "ct2-fp32": "CTranslate2 fp32",
    "ct2-int8": "CTranslate2 int8",
    "ct2-fp32-scored": "CTranslate2 fp32, scores and attention returned",
}
CASES = {"greedy": "greedy, batch 1", "beam": f"beam {BEAM}, batch 1", "batch": "greedy, batch {batch}"}


def table(ms: dict[tuple[str, str], float], batch: int) -> str:
    """Medians (ms, and sentences/s for the batch) and the goals' ratios as Markdown."""
    lines = ["| case | " + " | ".join(ENGINES.values()) + " |", "|---|" + "---|" * len(ENGINES)]
    for case, label in CASES.items():
        cells = [f"{ms[case, e]:.1f} ms" + (f" ({batch * 1000 / ms[case, e]:.0f}/s)" if case == "batch" else "")
                 for e in ENGINES]
        lines.append(f"| {label.format(batch=batch)} | " + " | ".join(cells) + " |")
    goals = [
        ("greedy: ours (attention) / CT2 fp32", ms["greedy", "ours"] / ms["greedy", "ct2-fp32"], "≤ 1.5×", lambda r: r <= 1.5),
        (f"beam {BEAM}: ours (attention) / CT2 fp32", ms["beam", "ours"] / ms["beam", "ct2-fp32"], "≤ 2×", lambda r: r <= 2),
        (f"batch {batch} greedy throughput: ours (attention) / CT2 fp32", ms["batch", "ct2-fp32"] / ms["batch", "ours"], "≥ 1×",
         lambda r: r >= 1),
        ("greedy: ours (attention) / CT2 fp32 returning scores and attention",
         ms["greedy", "ours"] / ms["greedy", "ct2-fp32-scored"], "≤ 1.5×", lambda r: r <= 1.5),
        (f"beam {BEAM}: ours (attention) / CT2 fp32 returning scores and attention",
         ms["beam", "ours"] / ms["beam", "ct2-fp32-scored"], "≤ 2×", lambda r: r <= 2),
        (f"batch {batch} greedy throughput: ours (attention) / CT2 fp32 returning scores and attention",
         ms["batch", "ct2-fp32-scored"] / ms["batch", "ours"], "≥ 1×", lambda r: r >= 1),
    ]
    for case, label in CASES.items():
        goals.append((f"{label.format(batch=batch)}: HF / ours (both plain)", ms[case, "hf"] / ms[case, "ours-noattn"], "≥ 3×",
                      lambda r: r >= 3))
        goals.append((f"{label.format(batch=batch)}: HF (attentions) / ours (attention)", ms[case, "hf-attn"] / ms[case, "ours"],
                      "≥ 3×", lambda r: r >= 3))
    lines += ["", "| goal | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {name} | {ratio:.2f}× | {target} | {'yes' if ok(ratio) else 'no'} |" for name, ratio, target, ok in goals]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32, help="sentences in the batched greedy case")
    parser.add_argument("--steps", type=int, default=None,
                        help="output tokens of every engine (default: the shipped model's greedy output, EOS included)")
    parser.add_argument("--weights", choices=CPU_WEIGHTS, default="fp16", help="our Linear weights (the app serves fp16)")
    parser.add_argument("--text", default=SENTENCE, help="the German source sentence")
    parser.add_argument("--fold-max", type=int, default=None,
                        help="our FOLD_MAX_POSITIONS (default: the shipped value; 0 never folds the cross-attention)")
    args = parser.parse_args()
    if args.fold_max is not None:
        transformer_fast.FOLD_MAX_POSITIONS = args.fold_max
    transformers, ctranslate2 = need_engines()
    torch.set_num_threads(1)
    translator, served, forced = load_ours(args.weights)
    src = torch.tensor([translator.source_ids(args.text)])  # [1, S], EOS included
    batch = src.expand(args.batch, -1).contiguous()  # [B, S]
    if args.steps is None:
        with torch.inference_mode():
            args.steps = len(greedy_search(served, src, DecodeConfig())[0].ids)
    dims = {key: getattr(served.cfg, key) for key in ("d_model", "n_heads", "enc_layers", "dec_layers", "d_ff", "max_positions",
                                                        "tgt_vocab")}
    runs: dict[tuple[str, str], Run] = {}
    for engine, model in (("ours", forced), ("ours-noattn", WithoutAttention(forced))):
        runs |= {(case, engine): run for case, run in our_runs(model, src, batch, args.steps).items()}
    hf = {"hf": hf_model(transformers, dims, "sdpa"), "hf-attn": hf_model(transformers, dims, "eager")}
    for engine, model in hf.items():
        runs |= {(case, engine): run for case, run in hf_runs(model, src, batch, args.steps, engine == "hf-attn").items()}
    with tempfile.TemporaryDirectory() as folder:
        translators, tokens = ct2_translators(ctranslate2, hf["hf"], Path(folder))
        for kind, ct2 in translators.items():
            engine = "ct2-fp32" if kind == "float32" else "ct2-int8"
            runs |= {(case, engine): run for case, run in ct2_runs(ct2, tokens, src, args.batch, args.steps).items()}
        runs |= {(case, "ct2-fp32-scored"): run
                 for case, run in ct2_runs(translators["float32"], tokens, src, args.batch, args.steps, scored=True).items()}
        torch.set_num_threads(1)
        load = os.getloadavg()[0]
        times = interleaved(runs, args.rounds, args.steps)
    ms = {key: statistics.median(values) for key, values in times.items()}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, ctranslate2 {ctranslate2.__version__}; "
          f"{torch.get_num_threads()} thread; our weights {args.weights}, fold limit {transformer_fast.FOLD_MAX_POSITIONS}; "
          f"source {src.size(1)} tokens, {args.steps} output tokens; "
          f"medians of {args.rounds} interleaved rounds; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print(table(ms, args.batch))


if __name__ == "__main__":
    main()
