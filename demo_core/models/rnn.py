"""RNN encoder-decoder with attention (Bahdanau additive, or Luong dot/general).

Encoder: embeddings -> bidirectional GRU, h_i = [h_i^fwd; h_i^bwd].
Decoder, one target token per step:

* ``additive`` (Bahdanau et al., 2015): attend with the previous state s_{t-1},
  then s_t = GRU([y_{t-1}; a_t], s_{t-1}), output from [s_t; a_t; y_{t-1}].
* ``dot`` / ``general`` (Luong et al., 2015): s_t = GRU([y_{t-1}; h~_{t-1}], s_{t-1}),
  attend with s_t, h~_t = tanh(W_c [a_t; s_t]) (fed to the next step: "input feeding").

Output logits reuse the target embedding matrix (tied weights). ``RNNMemory`` and
``RNNState`` are the interface's row-first dataclasses (``demo_core.models.interface``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from demo_core.models.attention import AdditiveAttention, SigmoidAdditiveAttention, build_attention
from demo_core.models.cpu import pack_linears, tied_projection
from demo_core.models.gru_step import StepGRU
from demo_core.models.interface import Draw, GreedyPath, GreedyTrace, Memory, State
from demo_core.models.paths import paths
from demo_core.models.rnn_script import scripted
from demo_core.text.tokenizer import EOS_ID, PAD_ID


@dataclass(frozen=True)
class RNNMemory(Memory):
    """The encoder's states h_i as attention values [B, S, 2H] and their prepared keys."""

    values: torch.Tensor  # [B, S, 2H]
    keys: torch.Tensor  # [B, S, A] additive: W h_i; general: W h_i; dot: h_i


@dataclass(frozen=True)
class RNNState(State):
    """Decoder hidden state [B, layers, Hd]; Luong models also feed h~_{t-1} [B, Hd] back in."""

    hidden: torch.Tensor
    feed: torch.Tensor | None = None


@dataclass(frozen=True)
class RNNConfig:
    """Sizes and choices of an RNN attention model."""

    src_vocab: int
    tgt_vocab: int
    emb_dim: int = 256
    enc_hidden: int = 256  # per direction
    dec_hidden: int = 512
    enc_layers: int = 1
    dec_layers: int = 1
    attention: str = "additive"  # additive | dot | general
    attn_dim: int = 256
    dropout: float = 0.3
    share_embeddings: bool = False  # one table for source and target (joint vocabulary)


class RNNSeq2Seq(nn.Module):
    """Bidirectional GRU encoder, attentional GRU decoder, tied output embeddings."""

    def __init__(self, cfg: RNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.luong = cfg.attention != "additive"
        enc_out = 2 * cfg.enc_hidden
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, cfg.emb_dim, padding_idx=PAD_ID)
        if cfg.share_embeddings:
            if cfg.src_vocab != cfg.tgt_vocab:
                raise ValueError("share_embeddings needs src_vocab == tgt_vocab")
            self.src_embed = self.tgt_embed
        else:
            self.src_embed = nn.Embedding(cfg.src_vocab, cfg.emb_dim, padding_idx=PAD_ID)
        self.encoder = nn.GRU(
            cfg.emb_dim,
            cfg.enc_hidden,
            num_layers=cfg.enc_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.enc_layers > 1 else 0.0,
        )
        self.bridge = nn.Linear(enc_out, cfg.dec_layers * cfg.dec_hidden)
        self.attention = build_attention(cfg.attention, cfg.dec_hidden, enc_out, cfg.attn_dim)
        feed_dim = cfg.dec_hidden if self.luong else enc_out
        self.decoder = nn.GRU(
            cfg.emb_dim + feed_dim,
            cfg.dec_hidden,
            num_layers=cfg.dec_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.dec_layers > 1 else 0.0,
        )
        if self.luong:
            self.combine = nn.Linear(enc_out + cfg.dec_hidden, cfg.dec_hidden, bias=False)
            self.pre_output = nn.Linear(cfg.dec_hidden, cfg.emb_dim)
        else:
            self.pre_output = nn.Linear(cfg.dec_hidden + enc_out + cfg.emb_dim, cfg.emb_dim)
        self.output_bias = nn.Parameter(torch.zeros(cfg.tgt_vocab))
        self.output_projection: nn.Module | None = None  # packed copy for CPU inference: prepare_for_cpu
        self.scripted_greedy: Any = None  # ``rnn_script.RNNGreedy`` compiled, after prepare_for_cpu (``greedy_rows``, ``decode_step``)
        self.dropout = nn.Dropout(cfg.dropout)
        for table in {id(self.src_embed): self.src_embed, id(self.tgt_embed): self.tgt_embed}.values():
            # Small embeddings keep the tied output logits near zero at the start.
            nn.init.normal_(table.weight, std=cfg.emb_dim**-0.5)
            with torch.no_grad():
                table.weight[PAD_ID].zero_()

    # --- the interface every architecture shares -------------------------------------------

    def encode(self, src: torch.Tensor) -> RNNMemory:
        """src [B, S] ids (PAD_ID right-padded) -> memory (values [B, S, 2H], keys, mask [B, S]). A CPU-prepared
        inference copy encodes in one TorchScript call (``RNNGreedy.encode``: the same operations, so the same
        numbers, with no Python lock held while it runs)."""
        if self.scripted_greedy is not None and not self.training:
            values, keys, mask = self.scripted_greedy.encode(src)
            return RNNMemory(mask=mask, values=values, keys=keys)
        mask = src != PAD_ID
        lengths = mask.sum(1).clamp(min=1).cpu()
        emb = self.dropout(self.src_embed(src))  # [B, S, E]
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.encoder(packed)
        values, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # [B, S, 2H]
        values = self.dropout(values)
        return RNNMemory(mask=mask, values=values, keys=self.attention.prepare(values))

    def init_state(self, memory: RNNMemory) -> RNNState:
        """Decoder state before the first token: hidden [B, L, Hd] from the mean encoder state (in one TorchScript
        call for a CPU-prepared inference copy, ``RNNGreedy.init_hidden``)."""
        if self.scripted_greedy is not None and not self.training:
            hidden = self.scripted_greedy.init_hidden(memory.values, memory.mask)
            return RNNState(hidden=hidden, feed=hidden.new_zeros(hidden.size(0), self.cfg.dec_hidden) if self.luong else None)
        mask = memory.mask.unsqueeze(-1).float()
        mean = (memory.values * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # [B, 2H]
        hidden = torch.tanh(self.bridge(mean)).view(-1, self.cfg.dec_layers, self.cfg.dec_hidden)
        feed = hidden.new_zeros(hidden.size(0), self.cfg.dec_hidden) if self.luong else None
        return RNNState(hidden=hidden, feed=feed)

    def decode_step(
        self, memory: RNNMemory, state: RNNState, prev_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, RNNState, torch.Tensor]:
        """prev_tokens [B] -> log_probs [B, V], new state, attention [B, layers=1, heads=1, S]. A CPU-prepared
        inference copy takes the step in one TorchScript call (``RNNGreedy.step``: the same modules in the same
        order, so the same numbers, with no Python lock held while it runs)."""
        if self.scripted_greedy is not None and not self.training:
            log_probs, hidden, feed, weights = self.scripted_greedy.step(memory.values, memory.keys, memory.mask,
                                                                         *self._script_state(state), prev_tokens)
            new_state = RNNState(hidden=hidden.transpose(0, 1), feed=feed if self.luong else None)
            return log_probs, new_state, weights[:, None, None, :]
        out, state, weights = self._step(memory, state, self.dropout(self.tgt_embed(prev_tokens)))
        log_probs = F.log_softmax(self._logits(out), dim=-1)
        return log_probs, state, weights[:, None, None, :]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src [B, S], tgt_in [B, T] -> logits [B, T, V]."""
        memory = self.encode(src)
        state = self.init_state(memory)
        emb = self.dropout(self.tgt_embed(tgt_in))  # [B, T, E]
        outs = []
        for t in range(tgt_in.size(1)):
            out, state, _ = self._step(memory, state, emb[:, t])
            outs.append(out)
        return self._logits(torch.stack(outs, dim=1))

    def prepare_for_cpu(self, weights: str, min_packed: int) -> "RNNSeq2Seq":
        """Pack the large Linear layers, the tied output projection and the decoder GRU's products
        among them (``models.cpu``, ``models.gru_step``); additive attention computes its tanh as a
        sigmoid (``models.attention.SigmoidAdditiveAttention``)."""
        self.output_projection = tied_projection(self.tgt_embed, self.output_bias)
        self.decoder = StepGRU(self.decoder)  # one step a call, as decoding calls it: its products as Linear layers
        if isinstance(self.attention, AdditiveAttention):  # its tanh as a sigmoid: cheaper on CPU, same scores
            self.attention = SigmoidAdditiveAttention(self.attention)
        model = pack_linears(self, weights, min_packed)
        model.__dict__["scripted_greedy"] = scripted(model)  # an attribute, not a submodule: no second copy in state_dict
        return model

    def greedy_rows(self, memory: RNNMemory, state: RNNState, first: torch.Tensor, limits: torch.Tensor,
                    k: int) -> tuple[list[torch.Tensor], ...] | None:
        """Greedy decoding of every row from ``first`` [B] in one TorchScript call (``models.rnn_script``),
        each row leaving at its EOS or its limit (``limits`` [B]): per step, the rows still writing
        [n], their tokens [n], top ``k`` ids and log-probs [n, k] and attention [n, S]. None when
        the model is not a CPU-prepared inference copy: the decoder's Python loop runs instead."""
        if self.scripted_greedy is None or self.training:
            return None
        return self.scripted_greedy(memory.values, memory.keys, memory.mask, *self._script_state(state), first, limits,
                                    min(k, self.cfg.tgt_vocab), EOS_ID)

    def batch_paths(self, memory: RNNMemory, first: torch.Tensor, limits: torch.Tensor, k: int,
                    alternatives: int, lengths: list[int], draw: Draw | None = None) -> list[GreedyPath] | None:
        """What ``greedy_rows`` decodes (or, with ``draw``, samples), row by row: each row's tokens, their log-probs,
        its ``alternatives`` top ids and probabilities per step and its attention [T, 1, 1, lengths[b]]
        (``RNNGreedy.rows``: one TorchScript call and five ``tolist``, ``models.paths``), from the first state of
        ``init_state``. None where ``greedy_rows`` gives None."""
        if self.scripted_greedy is None or self.training:
            return None
        state = self.init_state(memory)
        d = draw or Draw.greedy()
        return paths(*self.scripted_greedy.rows(memory.values, memory.keys, memory.mask, state.hidden, state.feed, first,
                                                limits, min(k, self.cfg.tgt_vocab), EOS_ID, alternatives, lengths,
                                                d.per, d.temperature, d.top_k, d.top_p, d.generators))

    def greedy_trace(self, memory: RNNMemory, first: torch.Tensor, limit: int, k: int,
                     record: bool = True) -> GreedyTrace | None:
        """Plain greedy decoding of one source (``greedy_rows``) as a ``GreedyTrace``; None for
        several rows (their rows leave at different steps) or where ``greedy_rows`` gives None."""
        if first.size(0) != 1 or limit < 1:
            return None
        rows = self.greedy_rows(memory, self.init_state(memory), first, torch.tensor([limit]), k)
        if rows is None:
            return None
        _, tokens, top_ids, top_values, attention = rows
        top_ids, top_values = torch.stack(top_ids), torch.stack(top_values)  # [T, 1, k]
        attention = torch.stack(attention)[:, :, None, None, :]  # [T, 1, 1, 1, S]
        return GreedyTrace(tokens=torch.stack(tokens), logprobs=top_values[:, :, 0], top_ids=top_ids,
                           top_logprobs=top_values, attention=attention if record else attention[:, :, :0])

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _script_state(state: RNNState) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder state as ``RNNGreedy`` takes it: hidden [L, B, Hd] and the Luong feed [B, Hd] (empty for
        additive attention)."""
        hidden = state.hidden.transpose(0, 1).contiguous()
        return hidden, state.feed if state.feed is not None else hidden.new_zeros(0)

    def _step(self, memory: RNNMemory, state: RNNState, y_emb: torch.Tensor) -> tuple[torch.Tensor, RNNState, torch.Tensor]:
        """One decoder step on embedded input y_emb [B, E] -> pre-output [B, E], state, weights [B, S]."""
        hidden = state.hidden.transpose(0, 1).contiguous()  # [L, B, Hd]
        values, keys, mask = memory.values, memory.keys, memory.mask
        if self.luong:
            _, hidden = self.decoder(torch.cat([y_emb, state.feed], -1).unsqueeze(1), hidden)
            top = hidden[-1]  # s_t [B, Hd]
            context, weights = self.attention(top, keys, values, mask)
            feed = torch.tanh(self.combine(torch.cat([context, top], -1)))  # h~_t
            out = self.pre_output(feed)
            new_state = RNNState(hidden=hidden.transpose(0, 1), feed=feed)
        else:
            context, weights = self.attention(hidden[-1], keys, values, mask)  # attend with s_{t-1}
            _, hidden = self.decoder(torch.cat([y_emb, context], -1).unsqueeze(1), hidden)
            out = torch.tanh(self.pre_output(torch.cat([hidden[-1], context, y_emb], -1)))
            new_state = RNNState(hidden=hidden.transpose(0, 1))
        return out, new_state, weights

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        """pre-output [..., E] -> logits [..., V] through the tied target embedding (or its packed copy)."""
        if self.output_projection is not None:
            return self.output_projection(self.dropout(out))
        return F.linear(self.dropout(out), self.tgt_embed.weight, self.output_bias)
