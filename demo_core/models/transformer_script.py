"""The fused Transformer's loops as TorchScript functions, compiled once per process.

Called from Python, each of a step's small operations costs a few microseconds of interpreter
and dispatch work on top of its arithmetic. These functions run the same operations in the same
order inside TorchScript's interpreter, so they compute exactly what the Python loops of
``models.transformer_fast`` and ``decoding.search`` compute (``tests/test_transformer_script.py``
checks it on the shipped models), with less work between operations:

* ``encoder_layers``: the encoder layers of ``PackedEncoder.encode``, and ``encoder``: all of it;
* ``decoder_step``: ``PackedDecoder``'s step, embedding to log-probabilities (``layers_step``
  with the cache and the memory split by layer, which ``greedy_loop`` does once per decode);
* ``greedy_loop``: plain greedy decoding, ``decoder_step`` in the loop of
  ``search._decode_each``, recording what it records (``PackedDecoder.greedy``);
* ``rows_loop``: a batch of greedy or sampling requests, rows leaving at their end, as
  ``search.decode_batch``'s loop runs it (``PackedDecoder.paths``; its draw is ``decoding.draw.draw_rows``).

Their products are ``torch.addmm(bias, x, weight_t)``, each Linear's weight passed as its
transposed view (``PackedEncoder._script_weights``, ``PackedDecoder._script_arguments``): the
very call ``F.linear`` makes on CPU, without the two operator calls (``linear``, ``t``) it adds
per product. ``beta`` (always 1.0) is passed in as a value rather than left as the constant 1:
TorchScript rewrites an ``addmm`` whose beta and alpha are constant ones into ``mm`` and then
``add`` (its DecomposeOps pass), which rounds differently from ``F.linear`` and costs one more
pass over the product.

TorchScript is in maintenance in the pinned PyTorch and prints a deprecation notice when it
compiles, which ``compiled`` silences.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import torch
import torch.nn.functional as F

from demo_core.decoding.draw import pick
from demo_core.models.paths import by_row, leaving, record, step_lists
from demo_core.models.topk import top_k


def encoder_layers(x: torch.Tensor, bias: torch.Tensor, weights: list[torch.Tensor],
                   n_heads: int, beta: float = 1.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """x [B, S, D], bias [B, 1, 1, S] -> the last layer's output [B, S, D] and each layer's
    self-attention [B, H, S, S]. Per layer, ``weights`` holds the attention norm, the fused
    query/key/value projection, the output projection, the feed-forward norm and its two layers
    (weight, bias each; each Linear's weight as its transposed view, as ``addmm`` takes it).

    The layers run on the B * S rows [B * S, D]: ``F.linear`` of a contiguous [B, S, D] input is
    ``addmm`` on those rows, and a layer norm normalises each row alone, so this computes
    exactly what the [B, S, D] operations do with fewer operator calls. The attention's products
    are ``bmm`` over B * H heads, their queries, keys and values copied into that layout at once
    (what ``@`` on [B, H, S, d] copies them into one operand at a time, and then calls)."""
    B, S, D = x.size(0), x.size(1), x.size(2)
    d = D // n_heads
    x = x.reshape(B * S, D)
    attention: list[torch.Tensor] = []
    for i in range(len(weights) // 12):  # 12 tensors a layer, in the docstring's order (``PackedEncoder._script_weights``)
        w = weights[i * 12:(i + 1) * 12]
        qkv = torch.addmm(w[3], torch.layer_norm(x, [D], w[0], w[1], 1e-5), w[2], beta=beta)  # [B * S, 3D]
        qkv = qkv.view(B, S, 3, n_heads, d).permute(2, 0, 3, 1, 4).reshape(3, B * n_heads, S, d)  # one copy
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [B * H, S, d]
        att = torch.softmax(torch.bmm(q * d**-0.5, k.transpose(1, 2)).view(B, n_heads, S, S) + bias, dim=-1)  # [B, H, S, S]
        attention.append(att)
        context = torch.bmm(att.view(B * n_heads, S, S), v).view(B, n_heads, S, d)
        x = x + torch.addmm(w[5], context.transpose(1, 2).reshape(B * S, D), w[4], beta=beta)
        up = torch.addmm(w[9], torch.layer_norm(x, [D], w[6], w[7], 1e-5), w[8], beta=beta).relu_()
        x = x + torch.addmm(w[11], up, w[10], beta=beta)
    return x.view(B, S, D), attention


def encoder(
    src: torch.Tensor, embedding: torch.Tensor, positions: torch.Tensor, bias: torch.Tensor, weights: list[torch.Tensor],
    n_heads: int, final_w: torch.Tensor, final_b: torch.Tensor, kv: list[torch.Tensor], query_w: torch.Tensor,
    query_b: torch.Tensor, out_w: torch.Tensor, out_b: torch.Tensor, fold: bool, beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``PackedEncoder.encode`` from the ids src [B, S] (``embedding`` pre-scaled) to the memory's
    tensors: cross-attention keys and values [B, L, H, S, d], self-attention [B, L_enc, H, S, S],
    and, when ``fold``, the folded products (scores [B, L, D, H*S], their bias [B, L, 1, H*S],
    values [B, L, H*S, D]; empty tensors otherwise). ``kv``: each decoder layer's fused
    key/value projection (transposed weight, bias); ``query_*`` / ``out_*``: the cross-attention's query
    and output projections split by head (``PackedEncoder``'s buffers)."""
    B, S = src.size(0), src.size(1)
    D = embedding.size(1)
    H, d = n_heads, D // n_heads
    embedded = embedding.index_select(0, src.reshape(-1)).view(B, S, D)  # what embedding[src] gathers
    x, attention = encoder_layers(embedded + positions.narrow(0, 0, S), bias, weights, n_heads, beta)
    x = torch.layer_norm(x, [D], final_w, final_b, 1e-5).view(B * S, D)
    projected = [torch.addmm(kv[2 * i + 1], x, kv[2 * i], beta=beta) for i in range(len(kv) // 2)]  # each [B * S, 2D]
    both = torch.stack(projected, dim=0).view(-1, B, S, 2, H, d)  # [L, B, S, 2, H, d]
    # Stored layer first, keys transposed, so that a step's products read each layer's keys [B, H, d, S]
    # and values [B, H, S, d] as they lie, with no copy: both are [B, L, H, S, d] views.
    keys = both.select(3, 0).permute(0, 1, 3, 4, 2).contiguous().permute(1, 0, 2, 4, 3)
    values = both.select(3, 1).permute(0, 1, 3, 2, 4).contiguous().transpose(0, 1)
    self_attention = torch.stack(attention, dim=1)  # [B, L_enc, H, S, S]
    if not fold:
        empty = torch.zeros(0)
        return keys, values, self_attention, empty, empty, empty
    scores = (keys @ query_w).permute(0, 1, 4, 2, 3).reshape(B, -1, H * d, H * S)
    score_bias = ((keys @ query_b)[..., 0] + bias.view(B, 1, 1, S)).view(B, -1, 1, H * S)
    cross_values = (values @ out_w + out_b).view(B, -1, H * S, H * d)
    return keys, values, self_attention, scores, score_bias, cross_values


def decoder_step(
    prev: torch.Tensor, t: int, cache: torch.Tensor, embedding: torch.Tensor, positions: torch.Tensor,
    weights: list[torch.Tensor], folded: bool, cross_bias: torch.Tensor, cross_keys: torch.Tensor,
    cross_values: torch.Tensor, output_packed: list[torch.classes.quantized.LinearPackedParamsBase],
    output_w: torch.Tensor, output_b: torch.Tensor, final_w: torch.Tensor, final_b: torch.Tensor, n_heads: int,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``PackedDecoder``: prev [B] at position t -> log_probs [B, V] and the
    cross-attention [B, L, H, S]; writes position t of the cache [L, B, 2, H, capacity, d].

    ``folded``: cross_bias [B, L, 1, H*S], cross_keys [B, L, D, H*S], cross_values [B, L, H*S, D]
    are the memory's folded products; otherwise the padding bias [B, L, 1, S] and the keys and
    values [B, L, H, S, d]. ``output_packed`` holds the packed fp16 output projection, or is empty
    for the fp32 one (``output_w``, ``output_b``). Per layer, ``weights`` holds the self-attention
    norm, fused query/key/value and output projections, the cross-attention norm, the
    feed-forward norm and two layers, then the cross-attention's query and output projections
    (weight, bias each; a Linear's weight as its transposed view, and ``output_w`` too).
    """
    return layers_step(prev, t, cache.unbind(0), embedding, positions, weights, folded, cross_bias.unbind(1),
                       cross_keys.unbind(1), cross_values.unbind(1), output_packed, output_w, output_b, final_w,
                       final_b, n_heads, beta)


def layers_step(
    prev: torch.Tensor, t: int, caches: list[torch.Tensor], embedding: torch.Tensor, positions: torch.Tensor,
    weights: list[torch.Tensor], folded: bool, biases: list[torch.Tensor], keys: list[torch.Tensor],
    values: list[torch.Tensor], output_packed: list[torch.classes.quantized.LinearPackedParamsBase],
    output_w: torch.Tensor, output_b: torch.Tensor, final_w: torch.Tensor, final_b: torch.Tensor, n_heads: int,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decoder_step`` with the cache and the memory's three tensors already split by layer
    (each cache [B, 2, H, capacity, d]), so that ``greedy_loop`` splits them once, not at every step."""
    B = prev.size(0)
    D = embedding.size(1)
    d = D // n_heads
    S = keys[0].size(2) // n_heads if folded else keys[0].size(2)  # folded keys [B, D, H*S], plain [B, H, S, d]
    x = embedding.index_select(0, prev) + positions.select(0, t)  # [B, D]
    attention: list[torch.Tensor] = []
    for i in range(len(weights) // 18):  # 18 tensors a layer, in the docstring's order (``PackedDecoder._script_arguments``)
        w = weights[i * 18:(i + 1) * 18]
        qkv = torch.addmm(w[3], torch.layer_norm(x, [D], w[0], w[1], 1e-5), w[2], beta=beta)  # [B, 3D]
        layer = caches[i]  # [B, 2, H, capacity, d]
        layer.select(3, t).copy_(qkv.narrow(1, D, 2 * D).view(B, 2, n_heads, d))  # this position's keys and values
        live = layer.narrow(3, 0, t + 1)  # [B, 2, H, t+1, d]
        context = F.scaled_dot_product_attention(qkv.narrow(1, 0, D).view(B, n_heads, 1, d), live.select(1, 0),
                                                 live.select(1, 1))
        x = x + torch.addmm(w[5], context.view(B, D), w[4], beta=beta)
        h = torch.layer_norm(x, [D], w[6], w[7], 1e-5)
        if folded:
            scores = torch.baddbmm(biases[i], h.view(B, 1, D), keys[i])  # [B, 1, H*S]
            att = torch.softmax(scores.view(B, n_heads, S), dim=-1)  # [B, H, S]
            x = torch.baddbmm(x.view(B, 1, D), att.view(B, 1, n_heads * S), values[i]).view(B, D)
        else:
            q = torch.addmm(w[15], h, w[14], beta=beta).view(B, n_heads, 1, d) * d**-0.5
            att4 = torch.softmax(q @ keys[i].transpose(-2, -1) + biases[i].unsqueeze(1), dim=-1)  # [B, H, 1, S]
            x = x + torch.addmm(w[17], (att4 @ values[i]).view(B, D), w[16], beta=beta)
            att = att4.view(B, n_heads, S)
        attention.append(att)
        up = torch.addmm(w[11], torch.layer_norm(x, [D], w[8], w[9], 1e-5), w[10], beta=beta).relu_()
        x = x + torch.addmm(w[13], up, w[12], beta=beta)
    normed = torch.layer_norm(x, [D], final_w, final_b, 1e-5)
    if len(output_packed) > 0:
        logits = torch.ops.quantized.linear_dynamic_fp16(normed, output_packed[0])
    else:
        logits = torch.addmm(output_b, normed, output_w, beta=beta)
    return F.log_softmax(logits, dim=-1), torch.stack(attention, dim=1)


def greedy_loop(
    first: torch.Tensor, cache: torch.Tensor, embedding: torch.Tensor, positions: torch.Tensor,
    weights: list[torch.Tensor], folded: bool, cross_bias: torch.Tensor, cross_keys: torch.Tensor,
    cross_values: torch.Tensor, output_packed: list[torch.classes.quantized.LinearPackedParamsBase],
    output_w: torch.Tensor, output_b: torch.Tensor, final_w: torch.Tensor, final_b: torch.Tensor, n_heads: int,
    limit: int, k: int, record: bool, eos: int, pad: int, chunk: int = 0, beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy decoding of B rows from their first tokens ``first`` [B] for at most ``limit`` steps
    (``search._decode_each`` with ``decoder_step``; cache [L, B, 2, H, >= limit, d], zeros). The
    top ``k`` of each step come from ``models.topk.top_k`` by chunks of ``chunk`` columns (0: plain ``topk``).

    Returns, for the T steps run (until every row has written EOS): tokens [T, B] (``pad`` after
    a row's EOS), their log-probs [T, B] (up to each row's EOS; after it, the best token's), the
    top ``k`` tokens and log-probs [T, B, k], and the cross-attention [T, B, L, H, S] (L = 0 when
    not ``record``).
    """
    tokens: list[torch.Tensor] = []
    top_ids: list[torch.Tensor] = []
    top_values: list[torch.Tensor] = []
    attention: list[torch.Tensor] = []
    one = first.size(0) == 1  # one row: it stops at its EOS, nothing to mask or gather
    done = torch.zeros(first.size(0), dtype=torch.bool)
    prev = first
    caches = cache.unbind(0)  # split by layer once, for every step
    layer_bias, layer_keys, layer_values = cross_bias.unbind(1), cross_keys.unbind(1), cross_values.unbind(1)
    for t in range(limit):
        log_probs, att = layers_step(prev, t, caches, embedding, positions, weights, folded, layer_bias, layer_keys,
                                     layer_values, output_packed, output_w, output_b, final_w, final_b, n_heads, beta)
        values, ids = top_k(log_probs, k, chunk)  # [B, k] each
        top_ids.append(ids)
        top_values.append(values)
        attention.append(att if record else att[:, :0])
        if one:
            prev = ids.select(1, 0)
            tokens.append(prev)
            if int(prev) == eos:
                break
        else:
            prev = ids.select(1, 0).masked_fill(done, pad)
            tokens.append(prev)
            done = done | (prev == eos)
            if bool(done.all()):
                break
    values = torch.stack(top_values)  # [T, B, k]; the token's log-prob is the first wherever it is read (up to the row's EOS)
    return torch.stack(tokens), values.select(2, 0), torch.stack(top_ids), values, torch.stack(attention)


def rows_loop(
    first: torch.Tensor, limits: torch.Tensor, cache: torch.Tensor, embedding: torch.Tensor, positions: torch.Tensor,
    weights: list[torch.Tensor], folded: bool, cross_bias: torch.Tensor, cross_keys: torch.Tensor,
    cross_values: torch.Tensor, output_packed: list[torch.classes.quantized.LinearPackedParamsBase],
    output_w: torch.Tensor, output_b: torch.Tensor, final_w: torch.Tensor, final_b: torch.Tensor, n_heads: int,
    k: int, eos: int, chunk: int, alternatives: int, lengths: list[int], per: int, temperature: float, top_k_n: int,
    top_p: float, generators: list[torch.Generator], pad: int, beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Greedy decoding (``generators`` empty) or sampling (``per`` rows a source, each source drawing from its own
    generator: ``decoding.draw.pick``) of B rows, each leaving at its EOS or its own limit (``limits`` [B]), as
    ``decoding.search.decode_batch``'s loop runs it with ``decoder_step``; the results regrouped by row
    (``models.paths.by_row``). cache [L, B, 2, H, >= max(limits), d], zeros. ``folded``: the memory's
    folded products (cross_bias [B, L, 1, H*S], keys [B, L, D, H*S], values [B, L, H*S, D]); otherwise the
    padding bias as the memory holds it, [B, 1, 1, S], and the keys and values [B, L, H, S, d]. The rows that
    leave are dropped from the cache and the memory, as ``select`` drops them in that loop."""
    rows = torch.arange(first.size(0))
    steps, tokens, logprobs, top_ids, top_values, attention = step_lists()
    layers = cross_keys.size(1)
    prev = first
    t = 0
    while True:
        bias = cross_bias if folded else cross_bias.expand(-1, layers, -1, -1)  # as ``PackedDecoder._cross`` passes it
        log_probs, att = layers_step(prev, t, cache.unbind(0), embedding, positions, weights, folded, bias.unbind(1),
                                     cross_keys.unbind(1), cross_values.unbind(1), output_packed, output_w, output_b,
                                     final_w, final_b, n_heads, beta)  # [n, V], [n, L, H, S]
        values, ids = top_k(log_probs, k, chunk)  # [n, k] each
        token, logprob = pick(log_probs, ids, values, rows, per, temperature, top_k_n, top_p, generators, pad)
        record(steps, tokens, logprobs, top_ids, top_values, attention, rows, token, logprob, ids, values, att)
        t += 1
        going, index = leaving(token, limits, eos, t)
        if not going:
            break
        if index is not None:  # rows that ended leave the batch
            cache = cache.index_select(1, index)
            cross_bias, cross_keys, cross_values = (cross_bias.index_select(0, index), cross_keys.index_select(0, index),
                                                    cross_values.index_select(0, index))
            token, rows, limits = token.index_select(0, index), rows.index_select(0, index), limits.index_select(0, index)
        prev = token
    return by_row(steps, tokens, logprobs, top_ids, top_values, attention, first.size(0), alternatives, lengths)


_COMPILED: dict[str, Any] = {}
_LOCK = threading.Lock()


def compiled(name: str) -> Any:
    """The function ``name`` of this module compiled by TorchScript, once per process (under a second)."""
    with _LOCK:
        if name not in _COMPILED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _COMPILED[name] = torch.jit.script(globals()[name])
    return _COMPILED[name]
