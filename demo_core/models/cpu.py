"""Fast CPU inference: Linear layers packed as fp16 or int8 products.

Every decoding step reads every decoder weight once, so fewer bytes per weight make a large
product faster (``python benchmarks/bench_transformer.py --weights fp32`` against ``fp16``);
the rest of a step is Python and per-operation overhead. A packed product also has a fixed
cost per call that outweighs the bytes it saves on a small layer
(``python benchmarks/bench_linear.py``), so only Linear layers with at least ``min_packed``
weights are packed: the output projections and the RNNs' larger layers.

* ``fp16``: weights stored as float16 and widened to fp32 inside the product (fbgemm), so the
  arithmetic stays fp32. Shipped weights are fp16 already, so this loses nothing beyond
  summation order.
* ``int8``: one scale per output row, inputs quantised on the fly; log-probabilities move a
  little (docs/SPEED.md).

Each model prepares itself (``prepare_for_cpu``): this module holds only what is the same for
every architecture. ``torch.ao.quantization`` is deprecated in favour of torchao (not a
dependency) but works in the pinned PyTorch; its deprecation warnings are silenced.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

CPU_WEIGHTS = ("fp32", "fp16", "int8")
MIN_PACKED_WEIGHTS = 100_000  # a Linear layer with fewer weights stays fp32


def quantize_for_cpu(model: nn.Module, weights: str = "fp16", min_packed: int = MIN_PACKED_WEIGHTS) -> nn.Module:
    """An inference-only copy of ``model`` in its fast CPU form (``fp32`` returns ``model`` itself).

    The copy cannot be trained or saved; embeddings, norms, the RNN encoders' recurrent layers and
    the recorded attention stay fp32 (an RNN decoder's GRU becomes two Linear layers:
    ``models.gru_step``).
    """
    if weights not in CPU_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(CPU_WEIGHTS)}, got {weights!r}")
    if weights == "fp32":
        return model
    return copy.deepcopy(model).eval().prepare_for_cpu(weights, min_packed)


def tied_projection(embedding: nn.Embedding, bias: torch.Tensor) -> nn.Linear:
    """A Linear copy of an output projection tied to ``embedding`` (so it can be packed)."""
    vocab, dim = embedding.weight.shape
    output = nn.Linear(dim, vocab)
    with torch.no_grad():
        output.weight.copy_(embedding.weight)
        output.bias.copy_(bias)
    return output


def pack_linears(model: nn.Module, weights: str, min_packed: int) -> nn.Module:
    """``model`` with every Linear layer of ``min_packed`` weights or more packed as ``weights``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_\w+.*deprecated", category=UserWarning)
        from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = float16_dynamic_qconfig if weights == "fp16" else per_channel_dynamic_qconfig
        large = {name: qconfig for name, module in model.named_modules()
                 if isinstance(module, nn.Linear) and module.weight.numel() >= min_packed}
        return quantize_dynamic(model, large, inplace=True)
