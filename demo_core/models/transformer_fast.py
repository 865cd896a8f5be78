"""Inference-only encoding and decoding for ``TransformerSeq2Seq`` with fused projections.

The Transformer's ``encode`` and ``decode_step`` go through its modules: three separate
query/key/value projections per attention, a module call per sublayer, dropout calls that do
nothing in eval mode. For one token at a time that Python and per-operation overhead, not
arithmetic, is most of a step (profile ``python benchmarks/bench_transformer.py`` with
cProfile). ``PackedEncoder`` and ``PackedDecoder`` compute the same with fewer, larger
operations:

* one fused query/key/value projection per self-attention ([3D, D] instead of three [D, D]),
  and one fused key/value projection of the source per decoder layer's cross-attention;
* embeddings pre-multiplied by sqrt(d_model);
* no dropout, no module tree walked per sublayer, packed fp16 products called directly.

They return the same ``memory``, read and write the same ``state`` (key/value cache) and
give the same attention weights as the module path, so decoders cannot tell the two apart;
the tests check that both give the same log-probabilities and attention. Their projections
are ``nn.Linear`` modules, so ``prepare_for_cpu`` packs the large ones (the output projection) like
any other Linear layer and leaves the small ones fp32.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from demo_core.models.interface import Memory, State

Linear = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TransformerMemory(Memory):
    """The source as every decoder layer reads it, computed once by ``encode``."""

    bias: torch.Tensor  # [B, 1, 1, S] 0 where a key may be attended, -inf at padding
    cross_k: torch.Tensor  # [B, L_dec, H, S, d] every decoder layer's cross-attention keys
    cross_v: torch.Tensor  # [B, L_dec, H, S, d] ... and values
    self_attention: torch.Tensor  # [B, L_enc, H, S, S] encoder self-attention

    def encoder_attention(self) -> torch.Tensor:
        return self.self_attention


@dataclass(frozen=True)
class TransformerState(State):
    """Key/value cache [B, L_dec, H, capacity, d] whose first ``length`` positions are filled."""

    self_k: torch.Tensor
    self_v: torch.Tensor
    length: int


def _direct(layer: nn.Module, relu: bool = False) -> Linear:
    """``layer`` as a plain function of its input (followed by ReLU when ``relu``): the packed
    fp16 product and layer norm are called directly, skipping the modules' own Python (a
    fixed cost per call, paid about 20 times a step) and the operator's Python dispatch checks (``_op``)."""
    packed = getattr(layer, "_packed_params", None)
    if packed is not None and packed.dtype == torch.float16:
        params = packed._packed_params
        op = torch.ops.quantized.linear_relu_dynamic_fp16 if relu else torch.ops.quantized.linear_dynamic_fp16
        call = getattr(op.default, "_op", op.default)  # the C++ operator itself: no dispatch checks in Python
        return lambda x: call(x, params)
    if isinstance(layer, nn.LayerNorm):
        shape, weight, bias, eps = layer.normalized_shape, layer.weight, layer.bias, layer.eps
        return lambda x: torch.layer_norm(x, shape, weight, bias, eps)
    if isinstance(layer, nn.Linear):
        call = lambda x: F.linear(x, layer.weight, layer.bias)  # noqa: E731
    else:
        call = layer  # int8: its module call does the input quantisation
    return (lambda x: F.relu(call(x))) if relu else call


def _fused(*layers: nn.Linear) -> nn.Linear:
    """One nn.Linear computing ``layers`` side by side: their outputs concatenated, [sum(out), in]."""
    fused = nn.Linear(layers[0].in_features, sum(layer.out_features for layer in layers))
    with torch.no_grad():
        fused.weight.copy_(torch.cat([layer.weight for layer in layers]))
        fused.bias.copy_(torch.cat([layer.bias for layer in layers]))
    return fused


def grow_cache(keys: torch.Tensor, values: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The self-attention cache [B, L, H, C, d] with room for position t: doubled when t == C."""
    if t < keys.size(3):
        return keys, values
    return torch.cat([keys, torch.zeros_like(keys)], dim=3), torch.cat([values, torch.zeros_like(values)], dim=3)


class PackedEncoderLayer(nn.Module):
    """One encoder layer's weights with a fused query/key/value projection."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        attn = layer.attn
        self.qkv = _fused(attn.query, attn.key, attn.value)  # [3D, D]
        self.out, self.up, self.down = (_fused(lin) for lin in (attn.out, layer.ff.up, layer.ff.down))
        self.norms = copy.deepcopy(nn.ModuleList([layer.norm_attn, layer.norm_ff]))


class PackedEncoder(nn.Module):
    """The encoder of a trained ``TransformerSeq2Seq`` with fused projections; inference only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cfg = model.cfg
        self.n_heads, self.d_head, self.max_positions = cfg.n_heads, cfg.d_model // cfg.n_heads, cfg.max_positions
        self.layers = nn.ModuleList(PackedEncoderLayer(layer) for layer in model.encoder)
        self.final_norm = copy.deepcopy(model.encoder_norm)
        self.cross_kv = nn.ModuleList(  # per decoder layer: keys and values of the source in one product
            _fused(layer.cross_attn.key, layer.cross_attn.value) for layer in model.decoder
        )
        self.register_buffer("embedding", model.src_embed.weight.detach() * math.sqrt(cfg.d_model), persistent=False)
        self.register_buffer("positions", model.positions.detach().clone(), persistent=False)
        self._direct: list[dict[str, Linear]] | None = None  # bound at the first call, after packing

    def _bind(self) -> list[dict[str, Linear]]:
        """Every layer's projections and norms as direct calls (``_direct``)."""
        return [{name: _direct(getattr(layer, name)) for name in ("qkv", "out", "down")}
                | {"up_relu": _direct(layer.up, relu=True)}
                | dict(zip(("norm_attn", "norm_ff"), map(_direct, layer.norms))) for layer in self.layers]

    @torch.no_grad()
    def encode(self, src: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> TransformerMemory:
        """src [B, S], mask [B, S], bias [B, 1, 1, S] -> the memory of ``TransformerSeq2Seq.encode``."""
        B, S = src.shape
        if self.max_positions < S:
            raise ValueError(f"sequence of {S} positions exceeds max_positions={self.max_positions}")
        H, d = self.n_heads, self.d_head
        x = self.embedding[src] + self.positions[:S]  # [B, S, D]
        self_attention = []
        if self._direct is None:
            self._direct = self._bind()
        for f in self._direct:
            q, k, v = f["qkv"](f["norm_attn"](x)).view(B, S, 3, H, d).permute(2, 0, 3, 1, 4)  # each [B, H, S, d]
            weights = torch.softmax((q * d**-0.5) @ k.transpose(-2, -1) + bias, dim=-1)  # [B, H, S, S]
            self_attention.append(weights)
            x = x + f["out"]((weights @ v).transpose(1, 2).reshape(B, S, H * d))
            x = x + f["down"](f["up_relu"](f["norm_ff"](x)))
        x = self.final_norm(x)
        kv = torch.stack([proj(x) for proj in self.cross_kv], dim=1).view(B, -1, S, 2, H, d)  # [B, L, S, 2, H, d]
        kv = kv.permute(3, 0, 1, 4, 2, 5)  # [2, B, L, H, S, d]
        return TransformerMemory(mask=mask, bias=bias, cross_k=kv[0].contiguous(), cross_v=kv[1].contiguous(),
                                 self_attention=torch.stack(self_attention, dim=1))  # [B, L_enc, H, S, S]


class PackedDecoderLayer(nn.Module):
    """One decoder layer's weights, fused for single-token steps."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        sa, ca = layer.self_attn, layer.cross_attn
        self.qkv = _fused(sa.query, sa.key, sa.value)  # [3D, D]
        self.self_out, self.cross_query, self.cross_out, self.up, self.down = (
            _fused(lin) for lin in (sa.out, ca.query, ca.out, layer.ff.up, layer.ff.down)
        )
        self.norms = copy.deepcopy(nn.ModuleList([layer.norm_self, layer.norm_cross, layer.norm_ff]))


class PackedDecoder(nn.Module):
    """The decoder of a trained ``TransformerSeq2Seq`` as one function of a step; inference only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cfg = model.cfg
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_model // cfg.n_heads
        self.d_model = cfg.d_model
        self.max_positions = cfg.max_positions
        self.layers = nn.ModuleList(PackedDecoderLayer(layer) for layer in model.decoder)
        self.final_norm = copy.deepcopy(model.decoder_norm)
        self.output = nn.Linear(cfg.d_model, cfg.tgt_vocab)  # tied: a copy of the target embedding
        with torch.no_grad():
            self.output.weight.copy_(model.tgt_embed.weight)
            self.output.bias.copy_(model.output_bias)
        self.register_buffer("embedding", model.tgt_embed.weight.detach() * math.sqrt(cfg.d_model), persistent=False)
        self.register_buffer("positions", model.positions.detach().clone(), persistent=False)
        self._direct: list[dict[str, Linear]] | None = None  # bound at the first step, after packing

    def _bind(self) -> list[dict[str, Linear]]:
        """Every layer's projections and norms as direct calls (``_direct``), the output's last."""
        names = ("qkv", "self_out", "cross_query", "cross_out", "down")
        calls = [{name: _direct(getattr(layer, name)) for name in names} | {"up_relu": _direct(layer.up, relu=True)}
                 | dict(zip(("norm_self", "norm_cross", "norm_ff"), map(_direct, layer.norms))) for layer in self.layers]
        return calls + [{"output": _direct(self.output), "final_norm": _direct(self.final_norm)}]

    @torch.no_grad()
    def step(self, memory: TransformerMemory, state: TransformerState,
             prev_tokens: torch.Tensor) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """The same contract as ``TransformerSeq2Seq.decode_step``: prev_tokens [B] ->
        log_probs [B, V], new state (cache written in place), cross-attention [B, L, H, S]."""
        t = state.length
        if t >= self.max_positions:
            raise ValueError(f"sequence of {t + 1} positions exceeds max_positions={self.max_positions}")
        keys, values = grow_cache(state.self_k, state.self_v, t)  # [B, L, H, C, d]
        B, H, d, D = prev_tokens.size(0), self.n_heads, self.d_head, self.d_model
        x = self.embedding[prev_tokens] + self.positions[t]  # [B, D]
        if self._direct is None:
            self._direct = self._bind()
        attention = []
        for i, f in enumerate(self._direct[:-1]):
            q, k, v = f["qkv"](f["norm_self"](x)).view(B, 3, H, d).unbind(1)  # each [B, H, d]
            keys[:, i, :, t], values[:, i, :, t] = k, v
            context = F.scaled_dot_product_attention(q[:, :, None], keys[:, i, :, : t + 1], values[:, i, :, : t + 1])
            x = x + f["self_out"](context.view(B, D))  # context [B, H, 1, d]
            q = f["cross_query"](f["norm_cross"](x)).view(B, H, 1, d) * d**-0.5
            weights = torch.softmax(q @ memory.cross_k[:, i].transpose(-2, -1) + memory.bias, dim=-1)  # [B, H, 1, S]
            attention.append(weights[:, :, 0])  # [B, H, S]
            x = x + f["cross_out"]((weights @ memory.cross_v[:, i]).view(B, D))
            x = x + f["down"](f["up_relu"](f["norm_ff"](x)))
        out = self._direct[-1]
        log_probs = F.log_softmax(out["output"](out["final_norm"](x)), dim=-1)  # [B, V]
        return log_probs, TransformerState(self_k=keys, self_v=values, length=t + 1), torch.stack(attention, dim=1)
