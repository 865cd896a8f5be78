"""Greedy (and batched sampling) decoding of an RNN attention model as one TorchScript module, rows leaving at
their end.

A decoder step of ``RNNSeq2Seq`` is about 20 small operations. Called from Python, each one takes
Python's global interpreter lock (GIL) back when it returns, so on a server a decode and the web
framework's own Python take turns on one core instead of running on two. ``RNNGreedy`` runs
the whole greedy loop of ``decoding.search.decode_batch`` (and of ``greedy_search`` for one
source) inside TorchScript, which holds no GIL while it runs: the same modules called in the
same order (``_step`` and ``decode_step`` of ``models.rnn``), so the tokens, log-probabilities,
alternatives and attention are bit for bit the Python loop's (``tests/test_rnn_script.py``).

A row leaves the batch at its EOS or its own length limit, as in ``decode_batch``: the later
steps run only the rows still writing. A batch of sampling requests runs the same loop, drawing
with ``decoding.draw.draw_rows`` (each source its own generator), which ``decode_batch``'s Python
loop calls too. ``RNNGreedy.rows`` hands a batch's results back grouped by row, ready for a few
``tolist`` calls, and ``encode`` and ``init_hidden`` are the encoder and the decoder's first state
in one call each. A batch of requests thus costs Python three TorchScript calls and a handful of
conversions instead of hundreds to thousands of tensor operations, each of which would wait for
the lock again while the web server's event loop holds it: next to a busy Python thread, a greedy
batch of eight sentences went from 81-87 to 46-54 ms, a sampling batch from 359-367 to 42 ms
(``benchmarks/bench_batch_lock.py``, ``docs/SPEED.md``, "Under load").

``RNNGreedy.step`` is one step of that loop on its own, and ``RNNSeq2Seq.decode_step`` of a served
model calls it: beam search, one source's sampling, the repetition options, forced prefixes and the decoding
lab step through TorchScript too, one call a step (beam 5: 48.5 against 60.6 ms from Python,
``python benchmarks/bench_rnn_step.py``).
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from demo_core.decoding.draw import pick
from demo_core.models.paths import by_row, leaving, record, step_lists
from demo_core.models.topk import top_chunk, top_k
from demo_core.text.tokenizer import PAD_ID

LOG = logging.getLogger("seq2seq_explorer")

class RNNGreedy(nn.Module):
    """The decoder side of a trained, CPU-prepared ``RNNSeq2Seq`` (shared, not copied), with a
    greedy loop as its ``forward``; inference only (dropout is left out: eval mode)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.luong = bool(model.luong)
        self.src_embed = model.src_embed
        self.encoder = model.encoder
        self.bridge = model.bridge
        self.dec_layers, self.dec_hidden = int(model.cfg.dec_layers), int(model.cfg.dec_hidden)
        self.pad_id = PAD_ID
        self.embed = model.tgt_embed
        self.decoder = model.decoder
        self.attention = model.attention
        self.pre_output = model.pre_output
        self.combine = model.combine if self.luong else nn.Identity()
        self.output = model.output_projection
        self.chunk = top_chunk(model.tgt_embed.num_embeddings)  # ``models.topk``: a batch's top tokens by chunks

    @torch.jit.export
    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``RNNSeq2Seq.encode`` in one call: src [B, S] ids (PAD right-padded) -> attention values [B, S, 2H],
        prepared keys [B, S, A] and the mask [B, S] (dropout, a no-op in eval mode, is left out)."""
        mask = src != self.pad_id
        lengths = mask.sum(1).clamp(min=1).cpu()
        emb = self.src_embed(src)  # [B, S, E]
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.encoder(packed)
        values, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # [B, S, 2H]
        return values, self.attention.prepare(values), mask

    @torch.jit.export
    def init_hidden(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``RNNSeq2Seq.init_state``'s hidden state in one call: values [B, S, 2H], mask [B, S] -> [B, L, Hd]."""
        weights = mask.unsqueeze(-1).float()
        mean = (values * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # [B, 2H]
        return torch.tanh(self.bridge(mean)).view(-1, self.dec_layers, self.dec_hidden)

    @torch.jit.export
    def step(
        self, values: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, hidden: torch.Tensor, feed: torch.Tensor,
        prev: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder step, ``RNNSeq2Seq.decode_step`` inside TorchScript (``forward`` loops over it): memory
        values [B, S, 2H], keys [B, S, A], mask [B, S], hidden [L, B, Hd], Luong feed [B, Hd] (ignored for additive
        attention), previous tokens [B] -> log-probs [B, V], hidden [L, B, Hd], feed (``feed`` itself for additive
        attention), attention [B, S]. Every strategy that ``_loop`` does not run steps through it."""
        y = self.embed(prev)  # [B, E]
        if self.luong:
            _, hidden = self.decoder(torch.cat([y, feed], -1).unsqueeze(1), hidden)
            top_state = hidden[-1]  # s_t [B, Hd]
            context, weights = self.attention(top_state, keys, values, mask)
            feed = torch.tanh(self.combine(torch.cat([context, top_state], -1)))
            out = self.pre_output(feed)
        else:
            context, weights = self.attention(hidden[-1], keys, values, mask)  # attend with s_{t-1}
            _, hidden = self.decoder(torch.cat([y, context], -1).unsqueeze(1), hidden)
            out = torch.tanh(self.pre_output(torch.cat([hidden[-1], context, y], -1)))
        return F.log_softmax(self.output(out), dim=-1), hidden, feed, weights

    def forward(
        self, values: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, hidden: torch.Tensor, feed: torch.Tensor,
        first: torch.Tensor, limits: torch.Tensor, k: int, eos: int,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Greedy decoding of B rows: memory values [B, S, 2H], keys [B, S, A], mask [B, S], decoder
        hidden [L, B, Hd], Luong feed [B, Hd] (ignored for additive attention), first tokens [B],
        each row's output limit [B]. Returns per step t, for the n_t rows still writing: their row
        numbers [n_t], tokens [n_t], top ``k`` tokens and log-probs [n_t, k] (the token's own
        log-prob is the first) and attention [n_t, S]."""
        steps, tokens, _, top_ids, top_values, attention = self._loop(
            values, keys, mask, hidden, feed, first, limits, k, eos, 1, 1.0, 0, 1.0, [])
        return steps, tokens, top_ids, top_values, attention

    def _loop(
        self, values: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, hidden: torch.Tensor, feed: torch.Tensor,
        first: torch.Tensor, limits: torch.Tensor, k: int, eos: int, per: int, temperature: float, top_k_n: int,
        top_p: float, generators: list[torch.Generator],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor],
               list[torch.Tensor]]:
        """``forward``'s loop, greedy where ``generators`` is empty, else sampling: ``decoding.draw.pick`` with
        ``per`` rows a source, each source drawing from its own generator. Also returns each step's tokens'
        log-probs [n_t]."""
        rows = torch.arange(first.size(0))
        steps, tokens, logprobs, top_ids, top_values, attention = step_lists()
        prev = first
        step = 0
        while True:
            log_probs, hidden, feed, weights = self.step(values, keys, mask, hidden, feed, prev)  # [n, V], ...
            values_k, ids_k = top_k(log_probs, k, self.chunk)  # [n, k] each
            token, logprob = pick(log_probs, ids_k, values_k, rows, per, temperature, top_k_n, top_p, generators,
                                  self.pad_id)
            record(steps, tokens, logprobs, top_ids, top_values, attention, rows, token, logprob, ids_k, values_k,
                   weights)
            step += 1
            going, index = leaving(token, limits, eos, step)
            if not going:
                break
            if index is not None:  # rows that ended leave the batch
                values, keys, mask = values.index_select(0, index), keys.index_select(0, index), mask.index_select(0, index)
                hidden = hidden.index_select(1, index)
                if self.luong:
                    feed = feed.index_select(0, index)
                token, rows, limits = token.index_select(0, index), rows.index_select(0, index), limits.index_select(0, index)
            prev = token
        return steps, tokens, logprobs, top_ids, top_values, attention

    @torch.jit.export
    def rows(
        self, values: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, hidden: torch.Tensor,
        feed: torch.Tensor | None, first: torch.Tensor, limits: torch.Tensor, k: int, eos: int, alternatives: int,
        lengths: list[int], per: int, temperature: float, top_k_n: int, top_p: float, generators: list[torch.Generator],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``_loop`` with its steps regrouped by row (``models.paths.by_row``), so that Python reads a batch's
        results with a few ``tolist`` calls: hidden [B, L, Hd] (as ``RNNState`` holds it), Luong feed [B, Hd] or
        None, ``alternatives`` of the top ``k`` kept, each row's source length (``lengths``); greedy where
        ``generators`` is empty, else sampling ``per`` rows a source (``decoding.draw``)."""
        state = hidden.transpose(0, 1).contiguous()  # [L, B, Hd]
        steps, tokens, logprobs, top_ids, top_values, attention = self._loop(
            values, keys, mask, state, feed if feed is not None else state.new_zeros(0), first, limits, k, eos, per,
            temperature, top_k_n, top_p, generators)
        return by_row(steps, tokens, logprobs, top_ids, top_values, [a[:, None, None, :] for a in attention],
                      first.size(0), alternatives, lengths)  # attention: one layer, one head


_LOCK = threading.Lock()


def scripted(model: nn.Module) -> Any:
    """``RNNGreedy`` of ``model`` compiled by TorchScript (about a second), or None when its layers
    do not compile (an unusual layer type): the Python loop then decodes."""
    with _LOCK:
        try:
            with warnings.catch_warnings():  # TorchScript's deprecation notice: it works in the pinned PyTorch
                warnings.simplefilter("ignore")
                return torch.jit.script(RNNGreedy(model))
        except Exception as exc:  # noqa: BLE001 (any compile failure means: decode from Python)
            LOG.warning("RNN greedy loop not compiled (%s: %s); greedy decoding steps from Python", type(exc).__name__, exc)
            return None
