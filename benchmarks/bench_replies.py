"""Size of ``/generate`` replies for each ``attention`` choice, in process and on the wire.

Run from the repository root: ``python benchmarks/bench_replies.py [--model de-en-transformer]``.
The input is the card's examples repeated and cut to 199 source tokens (EOS included), decoded
with beam 5 (n-best 5), the case where a reply used to be 25 MB. Goal: the default reply
(``attention="best"``) at most 1 MB; any reply over the 5 MB budget is refused with a message.
"In process" is the endpoint's return value as compact JSON; "HTTP" is the body the server
streams back for one raw call (``/gradio_api/call/generate``), envelope included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from demo_core.pipeline import Translator

GOAL_BYTES = 1_000_000


def input_of_tokens(translator: "Translator", tokens: int) -> str:
    """The card's examples repeated, cut to the longest prefix of at most ``tokens`` source ids (EOS included)."""
    text = " ".join(translator.card.examples * 50)
    low, high = 1, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if len(translator.src_tok.encode(text[:mid])) + 1 <= tokens:
            low = mid
        else:
            high = mid - 1
    return text[:low].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="de-en-transformer")
    parser.add_argument("--tokens", type=int, default=199)
    args = parser.parse_args()

    import app
    from benchmarks.http_api import Api
    from demo_core.serving import replies
    from demo_core.serving.requests import build_config
    from tests.serving import serving

    page = app.demo.page
    translator = page.registry.get(args.model)
    text = input_of_tokens(translator, args.tokens)
    settings = {"strategy": "beam", "beam_size": 5, "n_best": 5}
    result = translator.run(text, build_config(settings))
    tokens = len(result.source_ids)
    print(f"model {args.model}, input {tokens} source tokens ({len(text)} characters), beam 5, n-best 5, "
          f"outputs {[len(h.ids) for h in result.hypotheses]} tokens; budget {replies.REPLY_BUDGET_BYTES / 1e6:g} MB")
    for attention in replies.SCOPES:
        size = replies.reply_bytes(replies.result_json(result, attention))
        print(f"  in process  attention={attention:5s} {size / 1e6:7.3f} MB"
              + ("   goal <= 1 MB: " + ("ok" if size <= GOAL_BYTES else "over") if attention == "best" else ""))

    with serving(app.demo) as url:
        api = Api(url)
        for attention in replies.SCOPES:
            api.call("/generate", text=text, model=args.model, attention=attention, **settings)  # warm-up
            calls = [api.call("/generate", text=text, model=args.model, attention=attention, **settings) for _ in range(5)]
            reply, ms = calls[-1], statistics.median(c.seconds for c in calls) * 1000
            print(f"  HTTP        attention={attention:5s} {reply.bytes / 1e6:7.3f} MB, median of 5 calls {ms:6.0f} ms: "
                  f"{'ok' if reply.ok else 'refused: ' + reply.error}")
        reply = api.call("/generate", text=text, model=args.model, strategy="sample", num_samples=16, max_len=400, seed=1,
                         attention="all")
        print(f"  HTTP        sample 16, max_len 400, attention=all: {reply.bytes / 1e6:.3f} MB in {reply.seconds * 1000:.0f} ms: "
              f"{'ok' if reply.ok else 'refused: ' + reply.error}")

if __name__ == "__main__":
    main()
