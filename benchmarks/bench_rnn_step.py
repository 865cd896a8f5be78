"""The RNN decoder step in TorchScript (``RNNGreedy.step``) against the same step from Python, paired.

    python benchmarks/bench_rnn_step.py [--models de-en-rnn-bahdanau de-en-rnn-luong] [--pairs 80] [--beam 5]
        [--gru | --attention]

Every strategy but plain greedy (which runs whole in ``RNNGreedy.forward``) calls
``RNNSeq2Seq.decode_step`` once a step; a served RNN takes that step in one TorchScript call, and
with ``scripted_greedy`` set to None the same modules run from Python. Both give the same numbers
(``tests/test_rnn_script.py``). This times ``Translator.run`` with beam search on the sentence of
``bench_app.py`` both ways, one thread, alternating call by call (ABAB, then BABA) so the
machine's drift falls on both alike, and prints the medians and how many pairs the script won.

``--gru`` compares instead the served decoder GRU (``models.gru_step.StepGRU``: its two products
packed fp16 like the other large Linear layers) with ``nn.GRU`` kept as it is (fp32 products
inside ``aten::gru``), both with the TorchScript step, on beam search and on a batched greedy
decode of the card's examples (``batcher.run_together``, as the server decodes requests that
arrive together) and on one greedy decode, and prints how far apart their log-probabilities are.
``--attention`` does the same for the served additive attention (``SigmoidAdditiveAttention``: its
tanh as a sigmoid) against ``AdditiveAttention`` kept as it is; ``--models`` should then name
additive-attention RNNs (``de-en-rnn-bahdanau`` and the other ``*-bahdanau`` models).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_core.decoding import DecodeConfig  # noqa: E402
from demo_core.pipeline import ModelRegistry  # noqa: E402

SENTENCE = "Zwei junge Männer spielen am Strand mit einem roten Ball."


def paired(model_id: str, pairs: int, beam: int) -> tuple[float, float, int]:
    """Median ms of beam search with the TorchScript step and from Python, and the pairs the script was faster."""
    translator = ModelRegistry().get(model_id)
    model, script = translator.model, translator.model.scripted_greedy
    if script is None:
        raise SystemExit(f"{model_id} has no TorchScript step (not an RNN, or it did not compile)")
    cfg = DecodeConfig(strategy="beam", beam_size=beam)
    for _ in range(5):
        translator.run(SENTENCE, cfg)
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for i in range(pairs):
            for scripted in ((True, False) if i % 2 == 0 else (False, True)):
                model.__dict__["scripted_greedy"] = script if scripted else None
                start = time.perf_counter()
                translator.run(SENTENCE, cfg)
                times[scripted].append(time.perf_counter() - start)
    finally:
        model.__dict__["scripted_greedy"] = script
    won = sum(a < b for a, b in zip(times[True], times[False], strict=True))
    return 1000 * statistics.median(times[True]), 1000 * statistics.median(times[False]), won


CHANGES = {  # a served RNN's preparation, and what the same preparation without it leaves in place
    "gru": ("StepGRU", "the served decoder GRU (StepGRU)", "nn.GRU"),
    "attention": ("SigmoidAdditiveAttention", "additive attention with a sigmoid", "with tanh"),
}


def compare_prepared(model_id: str, pairs: int, beam: int, change: str) -> None:
    """Beam search, a batched greedy decode and one greedy decode with a served RNN, against the same model
    prepared without ``change`` (a key of CHANGES), paired."""
    from unittest import mock

    from demo_core.checkpoint import DEFAULT_ROOT
    from demo_core.models import rnn
    from demo_core.pipeline import Translator
    from demo_core.serving.batcher import run_together

    name, served_name, stock_name = CHANGES[change]
    served = Translator.from_dir(DEFAULT_ROOT / model_id, weights="fp16")
    with mock.patch.object(rnn, name, lambda module: module):  # prepared as before: the module left in place
        stock = Translator.from_dir(DEFAULT_ROOT / model_id, weights="fp16")
    if not isinstance(served.model.decoder if change == "gru" else served.model.attention, getattr(rnn, name)):
        raise SystemExit(f"{model_id} is not a served RNN with {served_name}")
    texts = served.card.examples * 2
    ids = [served.source_ids(text) for text in texts]
    beam_cfg, greedy = DecodeConfig(strategy="beam", beam_size=beam), [DecodeConfig(strategy="greedy")] * len(texts)
    cases = {f"beam {beam}": lambda t: t.run(SENTENCE, beam_cfg),
             f"greedy, {len(texts)} together": lambda t: run_together(t, texts, greedy, ids),
             "greedy, one": lambda t: t.run(SENTENCE, greedy[0])}
    for case_name, case in cases.items():
        for translator in (served, stock):
            case(translator), case(translator)
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(pairs):
            for new in ((True, False) if i % 2 == 0 else (False, True)):
                start = time.perf_counter()
                case(served if new else stock)
                times[new].append(time.perf_counter() - start)
        won = sum(a < b for a, b in zip(times[True], times[False], strict=True))
        print(f"{model_id}, {case_name}: {served_name} {1000 * statistics.median(times[True]):.1f} ms, {stock_name} "
              f"{1000 * statistics.median(times[False]):.1f} ms (medians of {pairs}); faster in {won} of {pairs} pairs",
              flush=True)
    a, b = run_together(served, texts, greedy, ids), run_together(stock, texts, greedy, ids)
    same = sum(x.hypotheses[0].ids == y.hypotheses[0].ids for x, y in zip(a, b, strict=True))
    gap = max(abs(p - q) for x, y in zip(a, b, strict=True) if x.hypotheses[0].ids == y.hypotheses[0].ids
              for p, q in zip(x.hypotheses[0].token_logprobs, y.hypotheses[0].token_logprobs, strict=True))
    print(f"{model_id}: the same greedy tokens for {same} of {len(texts)} texts; log-probs at most {gap:.1e} apart", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["de-en-rnn-bahdanau", "de-en-rnn-luong"])
    parser.add_argument("--pairs", type=int, default=80)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--gru", action="store_true", help="StepGRU against nn.GRU instead of the script against Python")
    parser.add_argument("--attention", action="store_true",
                        help="additive attention with a sigmoid against tanh instead of the script against Python")
    args = parser.parse_args()
    torch.set_num_threads(1)
    changes = [name for name in CHANGES if getattr(args, name)]
    for change in changes:
        for model_id in args.models:
            compare_prepared(model_id, args.pairs, args.beam, change)
    if changes:
        return
    for model_id in args.models:
        script_ms, python_ms, won = paired(model_id, args.pairs, args.beam)
        print(f"{model_id}, beam {args.beam}: TorchScript step {script_ms:.1f} ms, Python step {python_ms:.1f} ms "
              f"(median of {args.pairs}); the script faster in {won} of {args.pairs} pairs", flush=True)


if __name__ == "__main__":
    main()
