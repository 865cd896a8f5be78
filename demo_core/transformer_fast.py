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
are ``nn.Linear`` modules, so ``quantize_for_cpu`` packs them like every other Linear layer.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Linear = Callable[[torch.Tensor], torch.Tensor]
Tensors = dict[str, torch.Tensor]
State = dict[str, torch.Tensor | int]


def _direct(layer: nn.Module) -> Linear:
    """``layer`` as a plain function of its input: the packed fp16 product and layer norm are
    called directly, skipping the modules' own Python (about 14 us a call, 20 calls a step)."""
    packed = getattr(layer, "_packed_params", None)
    if packed is not None and packed.dtype == torch.float16:
        params, op = packed._packed_params, torch.ops.quantized.linear_dynamic_fp16.default  # the overload: no dispatch in Python
        return lambda x: op(x, params)
    if isinstance(layer, nn.LayerNorm):
        shape, weight, bias, eps = layer.normalized_shape, layer.weight, layer.bias, layer.eps
        return lambda x: torch.layer_norm(x, shape, weight, bias, eps)
    if isinstance(layer, nn.Linear):
        return lambda x: F.linear(x, layer.weight, layer.bias)
    return layer  # int8: its module call does the input quantisation


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    """An nn.Linear holding copies of ``weight`` [out, in] and ``bias`` [out]."""
    layer = nn.Linear(weight.size(1), weight.size(0))
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


class PackedEncoderLayer(nn.Module):
    """One encoder layer's weights with a fused query/key/value projection."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        attn = layer.attn
        self.qkv = _linear(torch.cat([attn.query.weight, attn.key.weight, attn.value.weight]),
                           torch.cat([attn.query.bias, attn.key.bias, attn.value.bias]))  # [3D, D]
        self.out = _linear(attn.out.weight, attn.out.bias)
        self.up = _linear(layer.ff.up.weight, layer.ff.up.bias)
        self.down = _linear(layer.ff.down.weight, layer.ff.down.bias)
        self.norms = nn.ModuleList(nn.LayerNorm(n.normalized_shape, eps=n.eps) for n in (layer.norm_attn, layer.norm_ff))
        self.norms.load_state_dict(nn.ModuleList([layer.norm_attn, layer.norm_ff]).state_dict())


class PackedEncoder(nn.Module):
    """The encoder of a trained ``TransformerSeq2Seq`` with fused projections; inference only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cfg = model.cfg
        self.n_heads, self.d_head, self.max_positions = cfg.n_heads, cfg.d_model // cfg.n_heads, cfg.max_positions
        self.layers = nn.ModuleList(PackedEncoderLayer(layer) for layer in model.encoder)
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=model.encoder_norm.eps)
        self.final_norm.load_state_dict(model.encoder_norm.state_dict())
        self.cross_kv = nn.ModuleList(  # per decoder layer: keys and values of the source in one product
            _linear(torch.cat([l.cross_attn.key.weight, l.cross_attn.value.weight]),
                    torch.cat([l.cross_attn.key.bias, l.cross_attn.value.bias]))
            for l in model.decoder
        )
        self.register_buffer("embedding", model.src_embed.weight.detach() * math.sqrt(cfg.d_model), persistent=False)
        self.register_buffer("positions", model.positions.detach().clone(), persistent=False)
        self._direct: list[dict[str, Linear]] | None = None  # bound at the first call, after packing

    def _bind(self) -> list[dict[str, Linear]]:
        """Every layer's projections and norms as direct calls (``_direct``)."""
        return [{name: _direct(getattr(layer, name)) for name in ("qkv", "out", "up", "down")}
                | dict(zip(("norm_attn", "norm_ff"), map(_direct, layer.norms))) for layer in self.layers]

    @torch.no_grad()
    def encode(self, src: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> Tensors:
        """src [B, S], mask [B, S], bias [B, 1, 1, S] -> the memory of ``TransformerSeq2Seq.encode``."""
        B, S = src.shape
        if S > self.max_positions:
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
            x = x + f["down"](F.relu(f["up"](f["norm_ff"](x))))
        x = self.final_norm(x)
        kv = torch.stack([proj(x) for proj in self.cross_kv], dim=1).view(B, -1, S, 2, H, d)  # [B, L, S, 2, H, d]
        kv = kv.permute(3, 0, 1, 4, 2, 5)  # [2, B, L, H, S, d]
        return {
            "mask": mask,
            "bias": bias,
            "cross_k": kv[0].contiguous(),
            "cross_v": kv[1].contiguous(),
            "self_attention": torch.stack(self_attention, dim=1),  # [B, L_enc, H, S, S]
        }


class PackedDecoderLayer(nn.Module):
    """One decoder layer's weights, fused for single-token steps."""

    def __init__(self, layer: nn.Module, d_head: int) -> None:
        super().__init__()
        sa, ca = layer.self_attn, layer.cross_attn
        self.qkv = _linear(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]),
                           torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))  # [3D, D]
        self.self_out = _linear(sa.out.weight, sa.out.bias)
        self.cross_query = _linear(ca.query.weight, ca.query.bias)
        self.cross_out = _linear(ca.out.weight, ca.out.bias)
        self.up = _linear(layer.ff.up.weight, layer.ff.up.bias)
        self.down = _linear(layer.ff.down.weight, layer.ff.down.bias)
        self.norms = nn.ModuleList(
            nn.LayerNorm(n.normalized_shape, eps=n.eps) for n in (layer.norm_self, layer.norm_cross, layer.norm_ff)
        )
        self.norms.load_state_dict(nn.ModuleList([layer.norm_self, layer.norm_cross, layer.norm_ff]).state_dict())


class PackedDecoder(nn.Module):
    """The decoder of a trained ``TransformerSeq2Seq`` as one function of a step; inference only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cfg = model.cfg
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_model // cfg.n_heads
        self.d_model = cfg.d_model
        self.max_positions = cfg.max_positions
        self.layers = nn.ModuleList(PackedDecoderLayer(layer, self.d_head) for layer in model.decoder)
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=model.decoder_norm.eps)
        self.final_norm.load_state_dict(model.decoder_norm.state_dict())
        self.output = _linear(model.tgt_embed.weight, model.output_bias)  # tied: a copy of the embedding
        self.register_buffer("embedding", model.tgt_embed.weight.detach() * math.sqrt(cfg.d_model), persistent=False)
        self.register_buffer("positions", model.positions.detach().clone(), persistent=False)
        self._direct: list[dict[str, Linear]] | None = None  # bound at the first step, after packing

    def _bind(self) -> list[dict[str, Linear]]:
        """Every layer's projections and norms as direct calls (``_direct``), the output's last."""
        names = ("qkv", "self_out", "cross_query", "cross_out", "up", "down")
        calls = [{name: _direct(getattr(layer, name)) for name in names}
                 | dict(zip(("norm_self", "norm_cross", "norm_ff"), map(_direct, layer.norms))) for layer in self.layers]
        return calls + [{"output": _direct(self.output), "final_norm": _direct(self.final_norm)}]

    @torch.no_grad()
    def step(self, memory: Tensors, state: State, prev_tokens: torch.Tensor) -> tuple[torch.Tensor, State, torch.Tensor]:
        """The same contract as ``TransformerSeq2Seq.decode_step``: prev_tokens [B] ->
        log_probs [B, V], new state (cache written in place), cross-attention [B, L, H, S]."""
        t = int(state["length"])
        if t >= self.max_positions:
            raise ValueError(f"sequence of {t + 1} positions exceeds max_positions={self.max_positions}")
        keys, values = state["self_k"], state["self_v"]  # [B, L, H, C, d]
        if t == keys.size(3):  # full: double the capacity
            keys, values = (torch.cat([c, torch.zeros_like(c)], dim=3) for c in (keys, values))
        B, H, d, D = prev_tokens.size(0), self.n_heads, self.d_head, self.d_model
        cross_bias = memory["bias"][:, :, 0]  # [B, 1, S]
        x = self.embedding[prev_tokens] + self.positions[t]  # [B, D]
        if self._direct is None:
            self._direct = self._bind()
        attention = []
        for i, f in enumerate(self._direct[:-1]):
            q, k, v = f["qkv"](f["norm_self"](x)).view(B, 3, H, d).unbind(1)  # each [B, H, d]
            keys[:, i, :, t], values[:, i, :, t] = k, v
            context = F.scaled_dot_product_attention(q[:, :, None], keys[:, i, :, : t + 1], values[:, i, :, : t + 1])
            x = x + f["self_out"](context.view(B, D))  # context [B, H, 1, d]
            q = f["cross_query"](f["norm_cross"](x)).view(B, H, 1, d) * self.d_head**-0.5
            weights = torch.softmax(q @ memory["cross_k"][:, i].transpose(-2, -1) + cross_bias[:, :, None], dim=-1)
            attention.append(weights[:, :, 0])  # [B, H, S]
            x = x + f["cross_out"]((weights @ memory["cross_v"][:, i]).view(B, D))
            x = x + f["down"](F.relu(f["up"](f["norm_ff"](x))))
        out = self._direct[-1]
        log_probs = F.log_softmax(out["output"](out["final_norm"](x)), dim=-1)  # [B, V]
        return log_probs, {"self_k": keys, "self_v": values, "length": t + 1}, torch.stack(attention, dim=1)
