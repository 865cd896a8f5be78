"""Transformer encoder-decoder (Vaswani et al., 2017), pre-norm, with its own attention layer.

Every attention layer that the demo shows computes its softmax weights explicitly,

    A = softmax(Q K^T / sqrt(d_head) + bias),   out = A V,

so the demo can show every layer and head (``nn.MultiheadAttention`` and
``F.scaled_dot_product_attention`` do not hand the weights back). ``bias`` is 0 where a query
may attend and -inf where it may not, so masked positions get exactly 0 weight and every row
sums to 1. The decoder self-attention weights are never shown, so that one layer uses the
fused ``F.scaled_dot_product_attention``.

Pre-norm blocks, x = x + Dropout(Sublayer(LayerNorm(x))), with a final LayerNorm after the
encoder and after the decoder; sinusoidal positions; the target embedding is also the output
projection (tied), and with ``share_embeddings`` one table serves source, target and output.

Incremental decoding keeps a key/value cache in ``state``: ``self_k`` / ``self_v``
[B, L, H, capacity, d_head] of which the first ``length`` positions are filled. Each
``decode_step`` writes one position in place, and the capacity doubles when it runs out, so
a step copies nothing that is already cached. The cross-attention keys and values depend
only on the source, so ``encode`` computes them once for every decoder layer and keeps them
in ``memory`` (``cross_k`` / ``cross_v`` [B, L, H, S, d_head]). All tensors are batch-first,
so decoders can reorder hypotheses with ``select`` without knowing what is inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from demo_core.models.cpu import pack_linears
from demo_core.models.interface import Draw, GreedyPath, GreedyTrace
from demo_core.models.transformer_fast import PackedDecoder, PackedEncoder, TransformerMemory
from demo_core.models.transformer_state import TransformerState, grow_cache
from demo_core.text.tokenizer import PAD_ID

CACHE_CAPACITY = 16  # first key/value cache size in positions; doubled when full


def padding_bias(mask: torch.Tensor) -> torch.Tensor:
    """mask [B, S] (True = real token) -> additive attention bias [B, 1, 1, S]: 0 or -inf.

    Every source holds at least EOS, so no query row is masked out entirely (which would
    give NaN weights).
    """
    bias = torch.zeros(mask.shape, device=mask.device).masked_fill(~mask, float("-inf"))
    return bias[:, None, None, :]


def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """[n_positions, d_model] table: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...)."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]  # [P, 1]
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)[:, : d_model // 2]
    return table


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over ``n_heads`` heads that returns its weights.

    Keys and values are projected by ``project_kv`` separately from the query, so a caller
    can project them once (cross-attention) or a position at a time (self-attention cache).
    """

    def __init__(self, d_model: int, n_heads: int, attention_dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(attention_dropout)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, H, T, d]."""
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, S, D] -> keys, values, each [B, H, S, d]."""
        return self.split_heads(self.key(x)), self.split_heads(self.value(x))

    def forward(
        self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, D] attends to keys/values [B, H, S, d] -> out [B, T, D], weights [B, H, T, S].

        ``bias`` (0 = may attend, -inf = may not) broadcasts to [B, H, T, S]; None lets every
        query see every key. The returned weights are taken before attention dropout, so each
        row sums to 1 in training too.
        """
        B, T, D = x.shape
        q = self.split_heads(self.query(x)) * self.d_head**-0.5  # [B, H, T, d]
        scores = q @ keys.transpose(-2, -1)  # [B, H, T, S]
        weights = torch.softmax(scores if bias is None else scores + bias, dim=-1)
        context = self.dropout(weights) @ values  # [B, H, T, d]
        return self.out(context.transpose(1, 2).reshape(B, T, D)), weights

    def forward_fused(
        self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """``forward`` without the weights, in one fused kernel: x [B, T, D] -> out [B, T, D]."""
        B, T, D = x.shape
        q = self.split_heads(self.query(x))  # [B, H, T, d]
        bias = None if bias is None else bias.to(q.dtype)  # a float mask must match the queries (bf16 autocast)
        context = F.scaled_dot_product_attention(q, keys, values, bias, self.dropout.p if self.training else 0.0)
        return self.out(context.transpose(1, 2).reshape(B, T, D))  # context [B, H, T, d]


class FeedForward(nn.Module):
    """Position-wise Linear -> ReLU -> Linear."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention block followed by a pre-norm feed-forward block."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, S, D], padding bias [B, 1, 1, S] -> x [B, S, D], self-attention weights [B, H, S, S]."""
        h = self.norm_attn(x)
        keys, values = self.attn.project_kv(h)
        a, weights = self.attn(h, keys, values, bias)
        x = x + self.dropout(a)
        x = x + self.dropout(self.ff(self.norm_ff(x)))
        return x, weights


class DecoderLayer(nn.Module):
    """Pre-norm masked self-attention, cross-attention to the source, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.norm_cross = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        cache_k: torch.Tensor,
        cache_v: torch.Tensor,
        start: int,
        self_bias: torch.Tensor | None,
        cross_k: torch.Tensor,
        cross_v: torch.Tensor,
        cross_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer over the T newest target positions start..start+T-1.

        x [B, T, D]; cache_k/cache_v [B, H, C, d] with C >= start + T: positions before
        ``start`` hold the earlier keys/values, this layer writes its T new ones in place
        and attends over the first start + T. self_bias broadcasts to [B, H, T, start+T]
        (causal), or None when T = 1 (the newest position may see all earlier ones);
        cross_k/cross_v [B, H, S, d]; cross_bias [B, 1, 1, S].
        Returns x [B, T, D] and the cross-attention weights [B, H, T, S].
        """
        h = self.norm_self(x)
        end = start + x.size(1)
        cache_k[:, :, start:end], cache_v[:, :, start:end] = self.self_attn.project_kv(h)
        a = self.self_attn.forward_fused(h, cache_k[:, :, :end], cache_v[:, :, :end], self_bias)
        x = x + self.dropout(a)
        a, cross_weights = self.cross_attn(self.norm_cross(x), cross_k, cross_v, cross_bias)
        x = x + self.dropout(a)
        x = x + self.dropout(self.ff(self.norm_ff(x)))
        return x, cross_weights


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and choices of a Transformer encoder-decoder."""

    src_vocab: int
    tgt_vocab: int
    d_model: int = 256
    n_heads: int = 4
    enc_layers: int = 4
    dec_layers: int = 4
    d_ff: int = 1024
    dropout: float = 0.3  # embeddings and every residual branch
    attention_dropout: float = 0.1  # on attention weights (the returned weights are pre-dropout)
    share_embeddings: bool = False  # one table for source, target and output (joint vocabulary)
    max_positions: int = 512  # longest source or target, BOS/EOS included

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError("share_embeddings needs src_vocab == tgt_vocab")


class TransformerSeq2Seq(nn.Module):
    """Pre-norm Transformer encoder-decoder with a key/value cache and tied output embeddings."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.d_head = cfg.d_model // cfg.n_heads
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, cfg.d_model, padding_idx=PAD_ID)
        if cfg.share_embeddings:
            self.src_embed = self.tgt_embed
        else:
            self.src_embed = nn.Embedding(cfg.src_vocab, cfg.d_model, padding_idx=PAD_ID)
        self.register_buffer("positions", sinusoidal_positions(cfg.max_positions, cfg.d_model), persistent=False)
        layer_args = (cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.attention_dropout)
        self.encoder = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(cfg.enc_layers))
        self.encoder_norm = nn.LayerNorm(cfg.d_model)
        self.decoder = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(cfg.dec_layers))
        self.decoder_norm = nn.LayerNorm(cfg.d_model)
        self.output_bias = nn.Parameter(torch.zeros(cfg.tgt_vocab))
        self.output_projection: nn.Module | None = None  # packed copy for CPU inference: prepare_for_cpu
        self.packed_encoder: PackedEncoder | None = None  # fused inference-only copies: prepare_for_cpu
        self.packed_decoder: PackedDecoder | None = None
        self.dropout = nn.Dropout(cfg.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier for projections; embeddings N(0, d_model^-0.5), so the tied logits start near 0.

        Scaled by sqrt(d_model) on input, the embeddings have unit variance like the
        positions; read through the output projection, logits have std ~1 and the first loss
        is close to ln(V).
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for table in {id(self.src_embed): self.src_embed, id(self.tgt_embed): self.tgt_embed}.values():
            nn.init.normal_(table.weight, std=self.cfg.d_model**-0.5)
            with torch.no_grad():
                table.weight[PAD_ID].zero_()

    # --- the interface every architecture shares -------------------------------------------

    def encode(self, src: torch.Tensor) -> TransformerMemory:
        """src [B, S] ids (PAD_ID right-padded) -> memory.

        memory: ``mask`` [B, S] (True = real token), ``bias`` [B, 1, 1, S] (its additive
        form, made once here rather than at every decoding step), ``cross_k`` / ``cross_v``
        [B, L_dec, H, S, d] (every decoder layer's cross-attention keys and values, computed
        once here), ``self_attention`` [B, L_enc, H, S, S] (encoder self-attention; padded
        keys get 0, rows of padded queries are not meaningful).
        """
        mask = src != PAD_ID  # [B, S]
        bias = padding_bias(mask)  # [B, 1, 1, S]
        if self.packed_encoder is not None and not self.training:
            return self.packed_encoder.encode(src, mask, bias)
        x = self._embed(self.src_embed, src, start=0)  # [B, S, D]
        self_attention = []
        for layer in self.encoder:
            x, weights = layer(x, bias)
            self_attention.append(weights)  # [B, H, S, S]
        x = self.encoder_norm(x)
        cross = [layer.cross_attn.project_kv(x) for layer in self.decoder]  # L x ([B, H, S, d], [B, H, S, d])
        return TransformerMemory(
            mask=mask,
            bias=bias,
            cross_k=torch.stack([k for k, _ in cross], dim=1),  # [B, L, H, S, d]
            cross_v=torch.stack([v for _, v in cross], dim=1),
            self_attention=torch.stack(self_attention, dim=1),  # [B, L_enc, H, S, S]
        )

    def init_state(self, memory: TransformerMemory) -> TransformerState:
        """Empty self-attention cache: self_k / self_v [B, L, H, CACHE_CAPACITY, d], length 0."""
        B, L, H, _, d = memory.cross_k.shape
        cache = memory.cross_k.new_zeros(B, L, H, CACHE_CAPACITY, d)
        return TransformerState(self_k=cache, self_v=torch.zeros_like(cache), length=0)

    def decode_step(
        self, memory: TransformerMemory, state: TransformerState, prev_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """prev_tokens [B] -> log_probs [B, V], new state, cross-attention [B, L, H, S].

        prev_tokens sit at position t = ``state.length``. Their keys and values are
        written into the cache in place, so the state passed in is used up (decoders only
        ever continue from the state a step returns); the new state's length is t + 1. The
        attention is every decoder layer's and head's cross-attention. After
        ``prepare_for_cpu`` an eval-mode model takes the fused path, which computes the same.
        """
        if self.packed_decoder is not None and not self.training:
            return self.packed_decoder.step(memory, state, prev_tokens)
        t = state.length  # tokens already decoded = position of prev_tokens
        keys, values = grow_cache(state.self_k, state.self_v, t)  # [B, L, H, C, d], doubled when full
        x = self._embed(self.tgt_embed, prev_tokens[:, None], start=t)  # [B, 1, D]
        attention = []
        for i, layer in enumerate(self.decoder):
            x, weights = layer(x, keys[:, i], values[:, i], t, None, memory.cross_k[:, i], memory.cross_v[:, i], memory.bias)
            attention.append(weights[:, :, 0])  # [B, H, S]
        log_probs = F.log_softmax(self._logits(self.decoder_norm(x[:, 0])), dim=-1)  # [B, V]
        new_state = TransformerState(self_k=keys, self_v=values, length=t + 1)
        return log_probs, new_state, torch.stack(attention, dim=1)  # attention [B, L, H, S]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src [B, S], tgt_in [B, T] -> logits [B, T, V]."""
        memory = self.encode(src)
        T = tgt_in.size(1)
        x = self._embed(self.tgt_embed, tgt_in, start=0)  # [B, T, D]
        causal = x.new_full((T, T), float("-inf")).triu(1)  # [T, T] query i sees keys <= i
        B, _, H, _, d = memory.cross_k.shape
        for i, layer in enumerate(self.decoder):
            keys, values = x.new_empty(B, H, T, d), x.new_empty(B, H, T, d)  # filled by the layer, all T at once
            x, _ = layer(x, keys, values, 0, causal, memory.cross_k[:, i], memory.cross_v[:, i], memory.bias)
        return self._logits(self.decoder_norm(x))

    def prepare_for_cpu(self, weights: str, min_packed: int) -> "TransformerSeq2Seq":
        """Build the fused encoder and decoder (``models.transformer_fast``) and pack their
        large Linear layers (``models.cpu``).

        For inference copies only (``quantize_for_cpu``): later changes to the weights do not
        reach the fused copy, and training mode bypasses it. One packed copy of the tied
        output projection serves both the fused and the module path.
        """
        self.packed_encoder = PackedEncoder(self)
        self.packed_decoder = PackedDecoder(self)
        model = pack_linears(self, weights, min_packed)
        model.output_projection = model.packed_decoder.output
        return model

    def greedy_trace(self, memory: TransformerMemory, first: torch.Tensor, limit: int, k: int,
                     record: bool = True) -> GreedyTrace | None:
        """Plain greedy decoding from ``first`` [B] in one call (``PackedDecoder.greedy``): what
        ``decode_step`` in a decoder's loop gives, or None where that loop must run instead."""
        if self.packed_decoder is None or self.training:
            return None
        return self.packed_decoder.greedy(memory, first, limit, k, record)

    def batch_paths(self, memory: TransformerMemory, first: torch.Tensor, limits: torch.Tensor, k: int,
                    alternatives: int, lengths: list[int], draw: Draw | None = None) -> list[GreedyPath] | None:
        """Plain greedy decoding (or, with ``draw``, sampling) of a batch whose rows leave at their end, in one call
        (``PackedDecoder.paths``, with a cache of its own): what ``decode_step`` in ``decode_batch``'s loop gives,
        row by row; None where that loop must run."""
        if self.packed_decoder is None or self.training:
            return None
        return self.packed_decoder.paths(memory, first, limits, k, alternatives, lengths, draw)

    # --- internals ------------------------------------------------------------------------

    def _embed(self, table: nn.Embedding, ids: torch.Tensor, start: int) -> torch.Tensor:
        """ids [B, T] at positions start..start+T-1 -> sqrt(d_model) * embedding + position, [B, T, D]."""
        end = start + ids.size(1)
        if end > self.cfg.max_positions:
            raise ValueError(f"sequence of {end} positions exceeds max_positions={self.cfg.max_positions}")
        x = table(ids) * math.sqrt(self.cfg.d_model) + self.positions[start:end]
        return self.dropout(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder output [..., D] -> logits [..., V] through the tied target embedding (or its packed copy)."""
        if self.output_projection is not None:
            return self.output_projection(x)
        return F.linear(x, self.tgt_embed.weight, self.output_bias)
