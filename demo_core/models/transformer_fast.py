"""Inference-only encoding and decoding for ``TransformerSeq2Seq`` with fused projections.

The Transformer's ``encode`` and ``decode_step`` go through its modules: three separate
query/key/value projections per attention, a module call per sublayer, dropout calls that do
nothing in eval mode. For one token at a time that Python and per-operation overhead, not
arithmetic, is most of a step (profile ``python benchmarks/bench_transformer.py`` with
cProfile). ``PackedEncoder`` and ``PackedDecoder`` compute the same with fewer, larger
operations:

* one fused query/key/value projection per self-attention ([3D, D] instead of three [D, D]);
* cross-attention folded into the source. The source does not change while decoding, so
  ``encode`` computes, per decoder layer and head h (keys k_h, values v_h [S, d]),

      A_h = k_h W_q,h / sqrt(d)  [S, D]    c_h = k_h b_q,h / sqrt(d) + padding bias  [S]
      O_h = v_h W_o,h^T + b_o / H  [S, D]

  (W_q,h: the head's rows of the query projection, W_o,h its columns of the output
  projection). A step's scores are then h . A_h + c_h for the normed input h, and the layer's
  output sum_h (w_h v_h) W_o,h^T + b_o is sum_h w_h O_h, since each head's weights w_h sum to
  1: two batched products a layer instead of a query projection, two attention products and
  an output projection. The folded products grow with the source, so more than
  ``FOLD_MAX_POSITIONS`` positions a step (a batch, many beams over a long source) are decoded
  the plain way;
* one key/value cache [L, B, 2, H, capacity, d] (``PackedState`` in ``models.transformer_state``):
  a step writes each layer's key and value in one copy, and beam search reorders it in one
  ``index_select``;
* embeddings pre-multiplied by sqrt(d_model);
* no dropout, no module tree walked per sublayer, packed fp16 products called directly;
* where every layer is a plain fp32 Linear (the shipped models), the encoder, the step and
  plain greedy decoding run as TorchScript functions (``models.transformer_script``) that
  repeat this module's Python operation by operation; the Python stays for the other cases.

They return the module path's ``memory`` (plus the folded products), take its ``state`` (and return their own,
which reads back as ``self_k`` / ``self_v``) and give the same attention weights as the module
path, so decoders cannot tell the two apart; the tests check that both give the same
log-probabilities, hypotheses, scores and attention. Their projections are ``nn.Linear``
modules, so ``prepare_for_cpu`` packs the large ones (the output projection) like any other
Linear layer and leaves the small ones fp32; the folded cross-attention stays fp32.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from demo_core.models.interface import Draw, GreedyPath, GreedyTrace, Memory, Rows, State
from demo_core.models.paths import paths
from demo_core.models.topk import top_chunk
from demo_core.models.transformer_script import compiled
from demo_core.models.transformer_state import PackedState
from demo_core.text.tokenizer import EOS_ID, PAD_ID

Linear = Callable[[torch.Tensor], torch.Tensor]

# Source positions read per step (rows x source length) up to which the cross-attention is folded
# into the source: ``encode`` folds a memory of at most this many, and a step reads a folded memory
# the plain way when its rows (beams, samples) x length exceed it. The folded products read H * D
# numbers per position where the plain ones read d (plus the two [D, D] projections), so folding
# pays while few positions are read: on de-en-transformer, greedy and beam 5 of one source of 19,
# 33 and 51 tokens decode faster folded, beam 5 of 97 tokens (485 positions) about as fast, greedy
# of 129 tokens faster, a greedy batch of 32 x 19 tokens (608) slower.
# ``python benchmarks/compare_engines.py --text ... --fold-max 0`` times the plain way.
FOLD_MAX_POSITIONS = 512


@dataclass(frozen=True)
class TransformerMemory(Memory):
    """The source as every decoder layer reads it, computed once by ``encode``."""

    bias: torch.Tensor  # [B, 1, 1, S] 0 where a key may be attended, -inf at padding
    cross_k: torch.Tensor  # [B, L_dec, H, S, d] every decoder layer's cross-attention keys
    cross_v: torch.Tensor  # [B, L_dec, H, S, d] ... and values
    self_attention: torch.Tensor  # [B, L_enc, H, S, S] encoder self-attention
    # The fused step's cross-attention folded into the source (module docstring): None from the module
    # path or past FOLD_MAX_POSITIONS. Heads and positions share one axis, so memories of different
    # source lengths cannot be padded into one batch: encode the padded batch instead.
    cross_scores: torch.Tensor | None = None  # [B, L_dec, D, H * S] A: head h, position s at h * S + s
    cross_score_bias: torch.Tensor | None = None  # [B, L_dec, 1, H * S] c, -inf at padding
    cross_values: torch.Tensor | None = None  # [B, L_dec, H * S, D] O

    def encoder_attention(self) -> torch.Tensor:
        return self.self_attention

    def select(self, index: torch.Tensor) -> "TransformerMemory":
        """Rows ``index`` [N]; the folded products are dropped, not copied, when N rows read more
        positions a step than are folded (beam search or sampling over a long source)."""
        memory = self
        if self.cross_scores is not None and index.numel() * self.cross_k.size(3) > FOLD_MAX_POSITIONS:
            memory = replace(self, cross_scores=None, cross_score_bias=None, cross_values=None)
        return Rows.select(memory, index)


def _plain(*modules: nn.Module) -> bool:
    """Whether ``modules`` are all fp32 nn.Linear or nn.LayerNorm (eps 1e-5) as TorchScript's loops take them."""
    return all(type(m) is nn.Linear or (type(m) is nn.LayerNorm and m.eps == 1e-5) for m in modules)


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
        weight, bias = layer.weight, layer.bias  # bound once: a module's attribute lookup costs a Python call
        call = lambda x: F.linear(x, weight, bias)  # noqa: E731
    else:
        call = layer  # int8: its module call does the input quantisation
    return (lambda x: call(x).relu_()) if relu else call  # in place, on the product's own output


def _fused(*layers: nn.Linear) -> nn.Linear:
    """One nn.Linear computing ``layers`` side by side: their outputs concatenated, [sum(out), in]."""
    fused = nn.Linear(layers[0].in_features, sum(layer.out_features for layer in layers))
    with torch.no_grad():
        fused.weight.copy_(torch.cat([layer.weight for layer in layers]))
        fused.bias.copy_(torch.cat([layer.bias for layer in layers]))
    return fused


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
        H, d, D = cfg.n_heads, self.d_head, cfg.d_model
        cross = [layer.cross_attn for layer in model.decoder]
        with torch.no_grad():  # the decoder's cross-attention query and output projections, split by head
            self.register_buffer("cross_query_w", torch.stack([a.query.weight.view(H, d, D) for a in cross]) * d**-0.5,
                                 persistent=False)  # [L, H, d, D]
            self.register_buffer("cross_query_b", torch.stack([a.query.bias.view(H, d, 1) for a in cross]) * d**-0.5,
                                 persistent=False)  # [L, H, d, 1]
            self.register_buffer("cross_out_w", torch.stack([a.out.weight.t().reshape(H, d, D) for a in cross]),
                                 persistent=False)  # [L, H, d, D]
            self.register_buffer("cross_out_b", torch.stack([a.out.bias.view(1, 1, D) for a in cross]) / H,
                                 persistent=False)  # [L, 1, 1, D]
        self.register_buffer("embedding", model.src_embed.weight.detach() * math.sqrt(cfg.d_model), persistent=False)
        self.register_buffer("positions", model.positions.detach().clone(), persistent=False)
        self._direct: list[dict[str, Linear]] | None = None  # bound at the first call, after packing
        self._scripted: list | None = None  # ... or the weights of ``transformer_script.encoder``

    def _script_weights(self) -> list | None:
        """The layers' tensors, the final norm's and the cross-attention keys' and values' projections
        for ``transformer_script.encoder``, or None when a projection is packed (a large model's):
        those run through ``_direct``."""
        if not _plain(*(getattr(layer, n) for layer in self.layers for n in ("qkv", "out", "up", "down")),
                      *(norm for layer in self.layers for norm in layer.norms), self.final_norm, *self.cross_kv):
            return None
        layers = [t.detach() for layer in self.layers for t in (
            layer.norms[0].weight, layer.norms[0].bias, layer.qkv.weight.t(), layer.qkv.bias, layer.out.weight.t(),
            layer.out.bias, layer.norms[1].weight, layer.norms[1].bias, layer.up.weight.t(), layer.up.bias,
            layer.down.weight.t(), layer.down.bias)]  # Linear weights as the transposed views ``addmm`` reads
        return [layers, self.final_norm.weight.detach(), self.final_norm.bias.detach(),
                [t.detach() for proj in self.cross_kv for t in (proj.weight.t(), proj.bias)]]

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
        if self._direct is None:
            self._direct, self._scripted = self._bind(), self._script_weights()
        if self._scripted is not None:  # the same operations in one TorchScript call
            fold = B * S <= FOLD_MAX_POSITIONS
            layers, final_w, final_b, kv = self._scripted
            keys, values, attention, scores, score_bias, cross_values = compiled("encoder")(
                src, self.embedding, self.positions, bias, layers, H, final_w, final_b, kv, self.cross_query_w,
                self.cross_query_b, self.cross_out_w, self.cross_out_b, fold)
            if not fold:
                scores = score_bias = cross_values = None
            return TransformerMemory(mask=mask, bias=bias, cross_k=keys, cross_v=values, self_attention=attention,
                                     cross_scores=scores, cross_score_bias=score_bias, cross_values=cross_values)
        x = self.embedding[src] + self.positions[:S]  # [B, S, D]
        self_attention = []
        for f in self._direct:
            qkv = f["qkv"](f["norm_attn"](x)).view(B, S, 3, H, d).permute(2, 0, 3, 1, 4).reshape(3, B * H, S, d)
            q, k, v = qkv.unbind(0)  # each [B * H, S, d]: the layout the products read (transformer_script.encoder_layers)
            weights = torch.softmax(torch.bmm(q * d**-0.5, k.transpose(1, 2)).view(B, H, S, S) + bias, dim=-1)  # [B, H, S, S]
            self_attention.append(weights)
            context = torch.bmm(weights.view(B * H, S, S), v).view(B, H, S, d)
            x = x + f["out"](context.transpose(1, 2).reshape(B, S, H * d))
            x = x + f["down"](f["up_relu"](f["norm_ff"](x)))
        x = self.final_norm(x)
        kv = torch.stack([proj(x) for proj in self.cross_kv]).view(-1, B, S, 2, H, d)  # [L, B, S, 2, H, d]
        # each [B, L, H, S, d], stored layer first with the keys transposed, as ``transformer_script.encoder`` does
        keys = kv[:, :, :, 0].permute(0, 1, 3, 4, 2).contiguous().permute(1, 0, 2, 4, 3)
        values = kv[:, :, :, 1].permute(0, 1, 3, 2, 4).contiguous().transpose(0, 1)
        memory = TransformerMemory(mask=mask, bias=bias, cross_k=keys, cross_v=values,
                                   self_attention=torch.stack(self_attention, dim=1))  # [B, L_enc, H, S, S]
        if B * S > FOLD_MAX_POSITIONS:
            return memory
        return replace(
            memory,
            cross_scores=(keys @ self.cross_query_w).permute(0, 1, 4, 2, 3).reshape(B, -1, H * d, H * S),  # [B, L, D, H*S]
            cross_score_bias=((keys @ self.cross_query_b)[..., 0] + bias.view(B, 1, 1, S)).view(B, -1, 1, H * S),
            cross_values=(values @ self.cross_out_w + self.cross_out_b).view(B, -1, H * S, H * d),  # [B, L, H*S, D]
        )


class PackedDecoderLayer(nn.Module):
    """One decoder layer's weights, fused for single-token steps."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        sa, ca = layer.self_attn, layer.cross_attn
        self.qkv = _fused(sa.query, sa.key, sa.value)  # [3D, D]
        self.self_out, self.cross_query, self.cross_out, self.up, self.down = (
            _fused(lin) for lin in (sa.out, ca.query, ca.out, layer.ff.up, layer.ff.down)
        )  # the cross-attention's for a memory that is not folded
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
        self.top_chunk = top_chunk(cfg.tgt_vocab)  # ``models.topk``: a batch's top tokens by chunks
        self.layers = nn.ModuleList(PackedDecoderLayer(layer) for layer in model.decoder)
        self.final_norm = copy.deepcopy(model.decoder_norm)
        self.output = nn.Linear(cfg.d_model, cfg.tgt_vocab)  # tied: a copy of the target embedding
        with torch.no_grad():
            self.output.weight.copy_(model.tgt_embed.weight)
            self.output.bias.copy_(model.output_bias)
        self.register_buffer("embedding", model.tgt_embed.weight.detach() * math.sqrt(cfg.d_model), persistent=False)
        self.register_buffer("positions", model.positions.detach().clone(), persistent=False)
        self._direct: list[dict[str, Linear]] | None = None  # bound at the first step, after packing
        self._scripted: tuple | None = None  # ... and ``decoder_step``'s arguments, where it can run

    def _script_arguments(self) -> tuple | None:
        """The weights as ``transformer_script.decoder_step`` takes them (from ``embedding`` to
        ``final_b``, the memory's three in between left out), or None when a layer is packed or
        the output projection is neither fp16-packed nor fp32: then the step runs in Python."""
        names = ("qkv", "self_out", "cross_query", "cross_out", "up", "down")
        if not _plain(self.final_norm, *(getattr(layer, n) for layer in self.layers for n in names),
                      *(norm for layer in self.layers for norm in layer.norms)):
            return None
        out, packed = self.output, getattr(self.output, "_packed_params", None)
        if type(out) is nn.Linear:
            output: tuple[list[Any], torch.Tensor, torch.Tensor] = ([], out.weight.detach().t(), out.bias.detach())
        elif packed is not None and packed.dtype == torch.float16:
            output = ([packed._packed_params], torch.zeros(0), torch.zeros(0))
        else:
            return None
        weights = [t.detach() for layer in self.layers for t in (
            layer.norms[0].weight, layer.norms[0].bias, layer.qkv.weight.t(), layer.qkv.bias, layer.self_out.weight.t(),
            layer.self_out.bias, layer.norms[1].weight, layer.norms[1].bias, layer.norms[2].weight, layer.norms[2].bias,
            layer.up.weight.t(), layer.up.bias, layer.down.weight.t(), layer.down.bias, layer.cross_query.weight.t(),
            layer.cross_query.bias, layer.cross_out.weight.t(), layer.cross_out.bias)]  # 18 a layer, decoder_step's order;
        # Linear weights as the transposed views that ``addmm`` reads (what ``F.linear`` passes it)
        return (self.embedding, self.positions, weights), (*output, self.final_norm.weight.detach(), self.final_norm.bias.detach())

    def _cross(self, memory: TransformerMemory, rows: int) -> tuple[bool, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Whether ``rows`` rows read ``memory`` folded, and per layer the scores' bias, "keys" and "values" it reads."""
        folded = memory.cross_scores is not None and rows * memory.cross_k.size(3) <= FOLD_MAX_POSITIONS
        if folded:
            return True, (memory.cross_score_bias, memory.cross_scores, memory.cross_values)  # c, A, O
        return False, (memory.bias.expand(-1, len(self.layers), -1, -1), memory.cross_k, memory.cross_v)

    def _bound(self) -> None:
        if self._direct is None:
            self._direct, self._scripted = self._bind(), self._script_arguments()

    def greedy(self, memory: TransformerMemory, first: torch.Tensor, limit: int, k: int,
               record: bool = True) -> GreedyTrace | None:
        """Plain greedy decoding from ``first`` [B] for at most ``limit`` steps, keeping the top ``k``
        tokens, in one TorchScript call (``transformer_script.greedy_loop``): what ``step`` in the
        decoders' Python loop gives. None where that loop must run instead: layers that are not
        plain, or positions beyond the model's (which that loop reports at the step reaching them)."""
        self._bound()
        if self._scripted is None or not 1 <= limit <= self.max_positions:
            return None
        B, H, d = first.size(0), self.n_heads, self.d_head
        cache = torch.zeros(len(self.layers), B, 2, H, limit, d)  # [L, B, 2, H, capacity, d]
        folded, cross = self._cross(memory, B)
        (embedding, positions, weights), output = self._scripted
        out = compiled("greedy_loop")(first, cache, embedding, positions, weights, folded, *cross, *output, H,
                                      limit, min(k, self.output.out_features), record, EOS_ID, PAD_ID, self.top_chunk)
        return GreedyTrace(*out)

    def paths(self, memory: TransformerMemory, first: torch.Tensor, limits: torch.Tensor, k: int, alternatives: int,
              lengths: list[int], draw: Draw | None = None) -> list[GreedyPath] | None:
        """Greedy decoding (with ``draw``, sampling) of a batch from ``first`` [B], rows leaving at their EOS or own
        limit (``limits`` [B]), in one TorchScript call (``transformer_script.rows_loop``): what ``step`` in
        ``decode_batch``'s Python loop gives, row by row (``models.paths``). None where that loop must run."""
        self._bound()
        limit = int(limits.max())
        if self._scripted is None or not 1 <= limit <= self.max_positions:
            return None
        B, H, d = first.size(0), self.n_heads, self.d_head
        cache = torch.zeros(len(self.layers), B, 2, H, limit, d)  # [L, B, 2, H, capacity, d]
        folded, cross = self._cross(memory, B)
        if not folded:
            cross = (memory.bias, *cross[1:])  # [B, 1, 1, S]: the loop expands it per layer, as ``_cross`` does
        (embedding, positions, weights), output = self._scripted
        d = draw or Draw.greedy()
        return paths(*compiled("rows_loop")(first, limits, cache, embedding, positions, weights, folded, *cross, *output,
                                            H, min(k, self.output.out_features), EOS_ID, self.top_chunk, alternatives,
                                            lengths, d.per, d.temperature, d.top_k, d.top_p, d.generators, PAD_ID))

    def _bind(self) -> list[dict[str, Linear]]:
        """Every layer's projections and norms as direct calls (``_direct``), the output's last."""
        names = ("qkv", "self_out", "cross_query", "cross_out", "down")
        calls = [{name: _direct(getattr(layer, name)) for name in names} | {"up_relu": _direct(layer.up, relu=True)}
                 | dict(zip(("norm_self", "norm_cross", "norm_ff"), map(_direct, layer.norms))) for layer in self.layers]
        return calls + [{"output": _direct(self.output), "final_norm": _direct(self.final_norm),
                         "embedding": self.embedding, "positions": self.positions}]

    def step(self, memory: TransformerMemory, state: State,
             prev_tokens: torch.Tensor) -> tuple[torch.Tensor, PackedState, torch.Tensor]:
        """The same contract as ``TransformerSeq2Seq.decode_step``: prev_tokens [B] ->
        log_probs [B, V], new state (cache written in place), cross-attention [B, L, H, S]."""
        if torch.is_grad_enabled():  # decoders run without gradients already; entering no_grad at every step is Python time
            with torch.no_grad():
                return self._step(memory, state, prev_tokens)
        return self._step(memory, state, prev_tokens)

    def _step(self, memory: TransformerMemory, state: State,
              prev_tokens: torch.Tensor) -> tuple[torch.Tensor, PackedState, torch.Tensor]:
        state = PackedState.of(state)
        t = state.length
        if t >= self.max_positions:
            raise ValueError(f"sequence of {t + 1} positions exceeds max_positions={self.max_positions}")
        cache = state.cache if t < state.cache.size(4) else torch.cat([state.cache, torch.zeros_like(state.cache)], dim=4)
        B, H, d, D = prev_tokens.size(0), self.n_heads, self.d_head, self.d_model
        S = memory.cross_k.size(3)
        self._bound()
        folded, cross = self._cross(memory, B)  # per layer: the scores' bias, "keys" and "values" of the source
        if self._scripted is not None:  # the same step in one TorchScript call
            (embedding, positions, weights), output = self._scripted
            log_probs, attention = compiled("decoder_step")(prev_tokens, t, cache, embedding, positions, weights, folded,
                                                            *cross, *output, H)
            return log_probs, PackedState(cache=cache, length=t + 1), attention
        out = self._direct[-1]
        x = out["embedding"][prev_tokens] + out["positions"][t]  # [B, D]
        slot, live = cache.select(4, t), cache.narrow(4, 0, t + 1)  # [L, B, 2, H, d], [L, B, 2, H, t+1, d]
        attention = []
        for i, (f, (cross_bias, cross_keys, cross_values)) in enumerate(zip(self._direct[:-1], zip(*(c.unbind(1) for c in cross)))):
            q, kv = f["qkv"](f["norm_self"](x)).split_with_sizes((D, 2 * D), dim=1)  # [B, D], [B, 2D]
            slot[i].copy_(kv.view(B, 2, H, d))  # this position's keys and values
            self_keys, self_values = live[i].unbind(1)  # each [B, H, t+1, d]
            context = F.scaled_dot_product_attention(q.view(B, H, 1, d), self_keys, self_values)  # [B, H, 1, d]
            x = x + f["self_out"](context.view(B, D))
            if folded:  # cross_bias [B, 1, H*S], cross_keys [B, D, H*S], cross_values [B, H*S, D]
                scores = torch.baddbmm(cross_bias, f["norm_cross"](x).view(B, 1, D), cross_keys)  # [B, 1, H*S]
                weights = torch.softmax(scores.view(B, H, S), dim=-1)  # [B, H, S]
                x = torch.baddbmm(x.view(B, 1, D), weights.view(B, 1, H * S), cross_values).view(B, D)
            else:  # cross_bias [B, 1, S] (padding), cross_keys and cross_values [B, H, S, d]
                q = f["cross_query"](f["norm_cross"](x)).view(B, H, 1, d) * d**-0.5
                weights = torch.softmax(q @ cross_keys.transpose(-2, -1) + cross_bias[:, None], dim=-1)  # [B, H, 1, S]
                x = x + f["cross_out"]((weights @ cross_values).view(B, D))
                weights = weights.view(B, H, S)
            attention.append(weights)
            x = x + f["down"](f["up_relu"](f["norm_ff"](x)))
        log_probs = F.log_softmax(out["output"](out["final_norm"](x)), dim=-1)  # [B, V]
        return log_probs, PackedState(cache=cache, length=t + 1), torch.stack(attention, dim=1)
