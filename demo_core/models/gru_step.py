"""The RNN decoder's GRU as two Linear products a layer, for the one-token steps of inference.

``nn.GRU`` computes a step's gates with fp32 products inside ``aten::gru``, which no packing
reaches; in a served RNN those two products (input-to-hidden [3H, I] and hidden-to-hidden
[3H, H], 2 million weights for the shipped decoders) are the largest part of a step. ``StepGRU``
holds the same weights as two ``nn.Linear`` a layer, so ``prepare_for_cpu`` packs them like the
other large Linear layers (``models.cpu``: fp16 weights widened to fp32 inside the product; the
shipped weights are fp16 already, so only the summation order changes), and computes the gates
of ``nn.GRU`` (PyTorch's order: reset r, update z, new n):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))    h' = (1 - z) * n + z * h = lerp(n, h, z)

``python benchmarks/bench_rnn_step.py --gru`` times a step both ways; ``tests/test_gru_step.py``
checks it against ``nn.GRU``. Inference only: no dropout between layers, one step per call.
"""

from __future__ import annotations

import torch
from torch import nn


class StepGRU(nn.Module):
    """One step of a trained batch-first, unidirectional ``nn.GRU`` (with biases), as Linear products."""

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        if not gru.batch_first or gru.bidirectional or not gru.bias or gru.proj_size:
            raise ValueError("StepGRU takes a batch-first, unidirectional GRU with biases and no projection")
        self.hidden_size = gru.hidden_size
        self.input_to_hidden = nn.ModuleList()
        self.hidden_to_hidden = nn.ModuleList()
        for layer in range(gru.num_layers):
            for linears, kind in ((self.input_to_hidden, "ih"), (self.hidden_to_hidden, "hh")):
                weight, bias = getattr(gru, f"weight_{kind}_l{layer}"), getattr(gru, f"bias_{kind}_l{layer}")
                linear = nn.Linear(weight.size(1), weight.size(0))  # [3H, in]: r, z, n stacked, as nn.GRU keeps them
                with torch.no_grad():
                    linear.weight.copy_(weight)
                    linear.bias.copy_(bias)
                linears.append(linear)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 1, I], hidden [L, B, H] -> (the last layer's output [B, 1, H], the new hidden [L, B, H]):
        what ``nn.GRU`` returns for a sequence of one step."""
        if x.size(1) != 1:
            raise ValueError(f"StepGRU takes one step at a time, got a sequence of {x.size(1)}")
        H = self.hidden_size
        inputs = x.select(1, 0)  # [B, I]
        states: list[torch.Tensor] = []
        for layer, (input_to_hidden, hidden_to_hidden) in enumerate(zip(self.input_to_hidden, self.hidden_to_hidden)):
            h = hidden[layer]  # [B, H]
            gi, gh = input_to_hidden(inputs), hidden_to_hidden(h)  # [B, 3H] each
            r = torch.sigmoid(gi.narrow(1, 0, H) + gh.narrow(1, 0, H))
            z = torch.sigmoid(gi.narrow(1, H, H) + gh.narrow(1, H, H))
            n = torch.tanh(gi.narrow(1, 2 * H, H) + r * gh.narrow(1, 2 * H, H))
            inputs = torch.lerp(n, h, z)  # (1 - z) * n + z * h
            states.append(inputs)
        return inputs.unsqueeze(1), torch.stack(states)
