"""Text in, ``DecodeResult`` out: validation, tokenisation, decoding, pieces and JSON.

``Translator`` wraps one loaded model with its tokenizers. The app, the command-line tools
and the evaluation all go through it, so input checks and result fields are the same
everywhere.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from demo_core.card import ModelCard
from demo_core.checkpoint import DEFAULT_ROOT, CheckpointError, find_models, load_model_dir
from demo_core.decoding import BeamNode, DecodeConfig, Hypothesis, decode
from demo_core.decoding.config import with_fresh_seed
from demo_core.decoding.search import decode_batch
from demo_core.models.cpu import CPU_WEIGHTS, quantize_for_cpu
from demo_core.models.interface import Seq2SeqModel
from demo_core.tasks.datasets import pad
from demo_core.tasks.input_checks import input_problem, input_warnings, output_problem
from demo_core.text.tokenizer import EOS_ID, Tokenizer, normalize_text

MAX_INPUT_CHARS = 1000
DEFAULT_CPU_WEIGHTS = "fp16"  # lossless for the fp16-stored checkpoints, about twice as fast as fp32


class InputError(ValueError):
    """Input a user can fix: empty text, text over the limit, unknown model, bad parameter."""


@dataclass
class DecodeResult:
    """Everything one request produced; ``to_json`` is what the API and ``--json`` return."""

    model_id: str
    source_text: str
    source_ids: list[int]
    source_pieces: list[str]
    hypotheses: list[Hypothesis]
    config: DecodeConfig
    beam_tree: list[BeamNode] = field(default_factory=list)
    elapsed_ms: float = 0.0
    encoder_attention: torch.Tensor | None = None  # [L_enc, H, S, S] encoder self-attention; None for RNNs
    warnings: list[str] = field(default_factory=list)  # input in another language, output that cannot be right, said plainly
    prefix_ids: list[int] = field(default_factory=list)  # the ids the output was forced to start with

    @property
    def best(self) -> Hypothesis:
        return self.hypotheses[0]

    def to_json(self, digits: int = 4, attention_of: int | None = None, encoder: bool = True) -> dict[str, Any]:
        """The result as JSON. ``attention_of``: how many hypotheses, best first, carry their
        attention (None: all; the others get null); ``encoder``: include the encoder
        self-attention. Weights are rounded in float64: float32 values would print ~17 digits."""

        def rounded(t: torch.Tensor) -> list:
            return t.double().round(decimals=digits).tolist()

        def hyp_json(i: int, h: Hypothesis) -> dict[str, Any]:
            return {
                "text": h.text,
                "pieces": h.pieces,
                "ids": h.ids,
                "score": round(h.score, digits),
                "normalized_score": round(h.normalized_score, digits),
                "finished": h.finished,
                "token_probs": [round(math.exp(lp), digits) for lp in h.token_logprobs],
                "alternatives": h.alternatives,
                "attention": rounded(h.attention) if attention_of is None or i < attention_of else None,  # [T, layers, heads, S]
            }

        return {
            "model": self.model_id,
            "source": self.source_text,
            "source_pieces": self.source_pieces,
            "text": self.best.text,
            "strategy": self.config.strategy,
            "config": asdict(self.config),
            "hypotheses": [hyp_json(i, h) for i, h in enumerate(self.hypotheses)],
            "beam_tree": [asdict(n) | {"score": round(n.score, digits)} for n in self.beam_tree],
            "elapsed_ms": round(self.elapsed_ms, 1),
            "warnings": self.warnings,
            "encoder_attention": (  # [L_enc, H, S (query), S (key)] or null
                None if self.encoder_attention is None or not encoder else rounded(self.encoder_attention)
            ),
        }


def prefix_fits(prefix_ids: list[int], limit: int) -> bool:
    """Whether forcing ``prefix_ids`` leaves the output within ``limit`` tokens: shorter than the
    limit, or exactly as long when it ends with </s> (then it is the whole output, as a decode
    that wrote </s> at its last allowed step made it)."""
    return len(prefix_ids) < limit or (len(prefix_ids) == limit and prefix_ids[-1] == EOS_ID)


class Translator:
    """A loaded model with its tokenizers and card."""

    def __init__(self, card: ModelCard, model: Seq2SeqModel, src_tok: Tokenizer, tgt_tok: Tokenizer) -> None:
        self.card = card
        self.id = card.id
        self.model = model.eval()
        self.src_tok = src_tok
        self.tgt_tok = tgt_tok
        self.max_source_tokens = card.max_source_tokens

    @classmethod
    def from_dir(cls, model_dir: Path, weights: str = "fp32") -> "Translator":
        """Load a model folder; ``weights`` fp16 or int8 packs its Linear layers (``quantize_for_cpu``)."""
        card, model, src_tok, tgt_tok = load_model_dir(model_dir)
        return cls(card, quantize_for_cpu(model, weights), src_tok, tgt_tok)

    def source_ids(self, text: str) -> list[int]:
        """Validated source ids (EOS appended); raises InputError with a specific message."""
        if not isinstance(text, str):
            raise InputError("text must be a string")
        if len(text) > MAX_INPUT_CHARS:
            raise InputError(f"text is {len(text)} characters long; the limit is {MAX_INPUT_CHARS}")
        bad = next((i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF), None)
        if bad is not None:  # a lone UTF-16 surrogate: no text encoding can hold it
            raise InputError(f"text has an unpaired surrogate character (U+{ord(text[bad]):04X}) at position {bad + 1}; "
                             "it is not a real character: retype or remove it")
        if not normalize_text(text):
            raise InputError("text is empty: type a sentence to translate")
        problem = input_problem(self.card.task, text)  # e.g. digits or a phrase for the pronunciation model
        if problem:
            raise InputError(problem)
        ids = self.src_tok.encode(text) + [EOS_ID]
        if len(ids) > self.max_source_tokens:
            raise InputError(
                f"text is {len(ids)} tokens long; model {self.id} accepts at most {self.max_source_tokens} tokens"
            )
        return ids

    def run(self, text: str, cfg: DecodeConfig, prefix: str | list[int] = "") -> DecodeResult:
        """Decode ``text`` with ``cfg``; ``prefix`` is target text the output must start with, or
        target token ids (a branch's forced tokens, ``demo_core.serving.branching``)."""
        try:
            cfg.validate()
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        cfg = with_fresh_seed(cfg)  # a blank sampling seed becomes a new one, kept in the result to reproduce it
        start = time.perf_counter()
        ids = self.source_ids(text)
        if prefix is None or isinstance(prefix, str):
            prefix_ids = self.tgt_tok.encode(prefix) if prefix and prefix.strip() else []
        else:
            prefix_ids = list(prefix)
            bad = next((i for i in prefix_ids if isinstance(i, bool) or not isinstance(i, int)
                        or not 0 <= i < self.tgt_tok.vocab_size), None)
            if bad is not None:
                raise InputError(f"prefix token {bad!r} is not a target token id (0 to {self.tgt_tok.vocab_size - 1})")
        limit = cfg.output_limit(len(ids))
        if not prefix_fits(prefix_ids, limit):
            raise InputError(f"prefix is {len(prefix_ids)} tokens long; it must be shorter than the output limit "
                             f"({limit} tokens), or as long and end with </s>")
        with torch.inference_mode():
            src = torch.tensor([ids])
            memory = self.model.encode(src)  # encoded once: the decoders and the self-attention view share it
            hyps, tree = decode(self.model, src, cfg, prefix_ids, memory)
            encoder_attention = memory.encoder_attention()  # [1, L, H, S, S] or None
        for h in hyps:
            self._describe(h)
        return DecodeResult(
            model_id=self.id,
            source_text=text,
            source_ids=ids,
            source_pieces=self.src_tok.display_pieces(ids),
            hypotheses=hyps,
            config=cfg,
            beam_tree=tree,
            prefix_ids=prefix_ids,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            encoder_attention=None if encoder_attention is None else encoder_attention[0].float(),
            warnings=input_warnings(self.card.task, self.card.source_lang, self.id, text)
            + [w for w in [output_problem(self.card.task, hyps[0].text)] if w],
        )

    def translate_batch(self, texts: list[str], cfg: DecodeConfig, batch_size: int = 64) -> list[str]:
        """Best output text per input; greedy runs batched, other strategies one by one.

        Sources are sorted by length, longest first, so the rows of a batch need little padding
        and end near the same step; each row leaves its batch at its EOS (``decode_batch``)."""
        if cfg.strategy != "greedy":
            return [self.run(t, cfg).best.text for t in texts]
        ids = [self.src_tok.encode(t)[: self.max_source_tokens - 1] + [EOS_ID] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]), reverse=True)
        outputs = [""] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            with torch.inference_mode():
                hyps = decode_batch(self.model, pad([ids[i] for i in chunk]), cfg)
            for i, (h,) in zip(chunk, hyps):
                outputs[i] = self.tgt_tok.decode(h.ids)
        return outputs

    def _describe(self, h: Hypothesis) -> None:
        """Fill pieces, text and readable alternatives of a hypothesis."""
        h.pieces = self.tgt_tok.display_pieces(h.ids)
        h.text = self.tgt_tok.decode(h.ids)
        h.alternatives = [
            [(self.tgt_tok.piece(i), round(p, 4)) for i, p in zip(ids, probs)]
            for ids, probs in zip(h.alt_ids, h.alt_probs)
        ]


class ModelRegistry:
    """Models found under ``root``, loaded on first use and cached.

    ``root`` defaults to ``$S2S_CHECKPOINTS``, else ``checkpoints/`` (tests point the app elsewhere).
    ``weights`` (fp32 | fp16 | int8, see ``quantize_for_cpu``) defaults to ``$S2S_CPU_WEIGHTS``,
    else fp16.
    """

    def __init__(self, root: Path | None = None, weights: str | None = None) -> None:
        self.root = Path(root or os.environ.get("S2S_CHECKPOINTS") or DEFAULT_ROOT)
        self.weights = weights or os.environ.get("S2S_CPU_WEIGHTS") or DEFAULT_CPU_WEIGHTS
        if self.weights not in CPU_WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(CPU_WEIGHTS)}, got {self.weights!r}")
        self.entries = {e.id: e for e in find_models(self.root)}
        self._loaded: dict[str, Any] = {}  # id -> Translator or Synthesizer
        self._errors: dict[str, str] = {}

    def available(self) -> list[str]:
        return [i for i, e in self.entries.items() if e.available and i not in self._errors]

    def error(self, model_id: str) -> str | None:
        entry = self.entries.get(model_id)
        if entry is None:
            return f"unknown model {model_id!r}"
        return entry.error or self._errors.get(model_id)

    def is_loaded(self, model_id: Any) -> bool:
        """Whether ``model_id`` is loaded already (so using it costs no loading)."""
        return isinstance(model_id, str) and model_id in self._loaded

    def is_speech(self, model_id: str | None) -> bool:
        """True for a speech-synthesis model (served by ``synthesizer``, not ``get``)."""
        entry = self.entries.get(model_id) if isinstance(model_id, str) else None  # a list from an API client: no model
        return entry is not None and entry.card is not None and entry.card.task == "tts"

    def get(self, model_id: str) -> Translator:
        """The text model ``model_id``, loaded on first use."""
        if self.is_speech(model_id):
            raise InputError(f"model {model_id} synthesises speech; it has no text output to decode "
                             "(the API's /synthesize endpoint serves it)")
        return self._load(model_id, lambda path: Translator.from_dir(path, self.weights))

    def synthesizer(self, model_id: str) -> Any:
        """The speech-synthesis model ``model_id`` (a ``demo_core.tts.synthesize.Synthesizer``), loaded on first use."""
        if model_id in self.entries and not self.is_speech(model_id):
            raise InputError(f"model {model_id} writes text, not speech: pick the speech-synthesis model")
        from demo_core.tts.synthesize import Synthesizer  # the speech stack loads only when asked for

        return self._load(model_id, Synthesizer.from_dir)

    def _load(self, model_id: str, load: Any) -> Any:
        """``load(folder)`` of a usable model, cached; a folder that fails to load becomes unavailable."""
        if model_id in self._loaded:
            return self._loaded[model_id]
        if model_id not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise InputError(f"unknown model {model_id!r}; available: {known}")
        reason = self.error(model_id)
        if reason:
            raise InputError(f"model {model_id} is unavailable: {reason}")
        try:
            model = load(self.entries[model_id].path)
        except (CheckpointError, OSError, ValueError, KeyError) as exc:
            self._errors[model_id] = str(exc)
            raise InputError(f"model {model_id} is unavailable: {exc}") from exc
        self._loaded[model_id] = model
        return model
