"""A small Tacotron 2: phones -> log-mel frames, with location-sensitive attention.

Parts, smallest first (as in NVIDIA/tacotron2's ``model.py``, without its hparams sprawl):
``Prenet`` (dropout always on, also at inference, as in Tacotron 2: it is the model's only
source of variation, and a seeded generator makes it reproducible), ``LocationLayer`` +
``LocationSensitiveAttention`` (Chorowski et al. 2015: the energies see a convolution of the
previous and the cumulative attention weights, which pushes the alignment forward), ``Encoder``
(conv stack + BiLSTM), ``Decoder`` (attention LSTM, decoder LSTM, ``r`` frames and one stop
logit per step), ``Postnet`` (a residual conv stack) and ``Tacotron``.

``Tacotron.encode`` / ``Decoder.step`` is the interface the greedy loop
:func:`generate` and the tests use. Mels are normalised by the training set's mean and
standard deviation (stored as buffers) so that the outputs have unit scale.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class TacotronConfig:
    """Sizes of the model; stored in the card as ``model``."""

    n_symbols: int
    n_mels: int = 80
    reduction: int = 4  # frames per decoder step
    emb_dim: int = 128
    enc_convs: int = 3
    enc_kernel: int = 5
    prenet_dim: int = 128
    att_rnn_dim: int = 256
    dec_rnn_dim: int = 256
    att_dim: int = 128
    loc_filters: int = 32
    loc_kernel: int = 31
    postnet_dim: int = 128
    postnet_layers: int = 3
    dropout: float = 0.5  # encoder convs and prenet
    rnn_dropout: float = 0.1


class Prenet(nn.Module):
    """Two ReLU layers with dropout that stays on (Tacotron 2): the bottleneck on the previous frame."""

    def __init__(self, n_in: int, dim: int, p: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(n_in, dim), nn.Linear(dim, dim)])
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = F.relu(layer(x))
            keep = torch.rand(x.shape, generator=generator) >= self.p
            x = x * keep / (1 - self.p)
        return x


class LocationLayer(nn.Module):
    """Conv over [previous, cumulative] attention weights: [B, 2, S] -> [B, S, att_dim]."""

    def __init__(self, filters: int, kernel: int, att_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, filters, kernel, padding=kernel // 2, bias=False)
        self.dense = nn.Linear(filters, att_dim, bias=False)

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        return self.dense(self.conv(weights_cat).transpose(1, 2))


class LocationSensitiveAttention(nn.Module):
    """e_j = v . tanh(W q + V h_j + U f_j); weights = masked softmax(e)."""

    def __init__(self, query_dim: int, memory_dim: int, cfg: TacotronConfig) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, cfg.att_dim, bias=False)
        self.memory = nn.Linear(memory_dim, cfg.att_dim, bias=False)
        self.location = LocationLayer(cfg.loc_filters, cfg.loc_kernel, cfg.att_dim)
        self.v = nn.Linear(cfg.att_dim, 1, bias=True)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor,
                weights_cat: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], memory [B, S, M], keys [B, S, A] (= self.memory(memory)), weights_cat
        [B, 2, S], mask [B, S] (True = padding) -> (context [B, M], weights [B, S])."""
        energies = self.v(torch.tanh(self.query(query)[:, None] + keys + self.location(weights_cat))).squeeze(-1)
        weights = torch.softmax(energies.masked_fill(mask, -1e4), dim=-1)  # [B, S]
        return torch.bmm(weights[:, None], memory).squeeze(1), weights


class Encoder(nn.Module):
    """Phone ids [B, S] -> memory [B, S, emb_dim]: convs then a BiLSTM (emb_dim / 2 per direction)."""

    def __init__(self, cfg: TacotronConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(cfg.n_symbols, cfg.emb_dim, padding_idx=0)
        self.convs = nn.ModuleList([
            nn.Sequential(nn.Conv1d(cfg.emb_dim, cfg.emb_dim, cfg.enc_kernel, padding=cfg.enc_kernel // 2),
                          nn.BatchNorm1d(cfg.emb_dim), nn.ReLU(), nn.Dropout(cfg.dropout))
            for _ in range(cfg.enc_convs)])
        self.lstm = nn.LSTM(cfg.emb_dim, cfg.emb_dim // 2, batch_first=True, bidirectional=True)

    def forward(self, phones: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(phones).transpose(1, 2)  # [B, E, S]
        for conv in self.convs:
            x = conv(x)
        packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=phones.shape[1])[0]


@dataclass
class DecoderState:
    """Recurrent state of one decode: LSTM states, attention weights and context."""

    att_h: torch.Tensor  # [B, att_rnn_dim]
    att_c: torch.Tensor
    dec_h: torch.Tensor  # [B, dec_rnn_dim]
    dec_c: torch.Tensor
    weights: torch.Tensor  # [B, S] previous attention
    cumulative: torch.Tensor  # [B, S] sum of all previous attention
    context: torch.Tensor  # [B, emb_dim]


class Decoder(nn.Module):
    """One step: previous frame [B, n_mels] -> r frames [B, r * n_mels], stop logit [B], weights [B, S]."""

    def __init__(self, cfg: TacotronConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.prenet = Prenet(cfg.n_mels, cfg.prenet_dim, cfg.dropout)
        self.att_rnn = nn.LSTMCell(cfg.prenet_dim + cfg.emb_dim, cfg.att_rnn_dim)
        self.attention = LocationSensitiveAttention(cfg.att_rnn_dim, cfg.emb_dim, cfg)
        self.dec_rnn = nn.LSTMCell(cfg.att_rnn_dim + cfg.emb_dim, cfg.dec_rnn_dim)
        self.frames = nn.Linear(cfg.dec_rnn_dim + cfg.emb_dim, cfg.n_mels * cfg.reduction)
        self.stop = nn.Linear(cfg.dec_rnn_dim + cfg.emb_dim, 1)

    def initial_state(self, memory: torch.Tensor) -> DecoderState:
        b, s, _ = memory.shape
        zeros = memory.new_zeros
        return DecoderState(zeros(b, self.cfg.att_rnn_dim), zeros(b, self.cfg.att_rnn_dim),
                            zeros(b, self.cfg.dec_rnn_dim), zeros(b, self.cfg.dec_rnn_dim),
                            zeros(b, s), zeros(b, s), zeros(b, self.cfg.emb_dim))

    def step(self, prenet_out: torch.Tensor, state: DecoderState, memory: torch.Tensor, keys: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """prenet_out [B, prenet_dim] -> (frames [B, r * n_mels], stop logit [B], new state)."""
        p = self.cfg.rnn_dropout if self.training else 0.0
        att_h, att_c = self.att_rnn(torch.cat([prenet_out, state.context], -1), (state.att_h, state.att_c))
        att_h = F.dropout(att_h, p, self.training)
        weights_cat = torch.stack([state.weights, state.cumulative], 1)  # [B, 2, S]
        context, weights = self.attention(att_h, memory, keys, weights_cat, mask)
        dec_h, dec_c = self.dec_rnn(torch.cat([att_h, context], -1), (state.dec_h, state.dec_c))
        dec_h = F.dropout(dec_h, p, self.training)
        out = torch.cat([dec_h, context], -1)
        new = DecoderState(att_h, att_c, dec_h, dec_c, weights, state.cumulative + weights, context)
        return self.frames(out), self.stop(out).squeeze(-1), new


class Postnet(nn.Module):
    """Residual refinement of the whole mel: [B, T, n_mels] -> [B, T, n_mels]."""

    def __init__(self, cfg: TacotronConfig) -> None:
        super().__init__()
        dims = [cfg.n_mels] + [cfg.postnet_dim] * (cfg.postnet_layers - 1) + [cfg.n_mels]
        self.convs = nn.ModuleList([nn.Conv1d(a, b, 5, padding=2) for a, b in itertools.pairwise(dims)])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(1, 2)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = torch.tanh(x) if i < len(self.convs) - 1 else x
        return mel + x.transpose(1, 2)


class Tacotron(nn.Module):
    """Phones [B, S] -> normalised mel [B, T, n_mels], stop logits [B, T / r], attention [B, T / r, S]."""

    def __init__(self, cfg: TacotronConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.postnet = Postnet(cfg)
        self.register_buffer("mel_mean", torch.zeros(()))
        self.register_buffer("mel_std", torch.ones(()))

    def encode(self, phones: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> memory [B, S, E], attention keys [B, S, A], padding mask [B, S]."""
        memory = self.encoder(phones, lengths)
        mask = torch.arange(phones.shape[1])[None] >= lengths[:, None]
        return memory, self.decoder.attention.memory(memory), mask

    def forward(self, phones: torch.Tensor, lengths: torch.Tensor, mel: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing; ``mel`` [B, T, n_mels] normalised, T a multiple of r.

        -> (mel before postnet, mel after postnet [B, T, n_mels], stop logits [B, T / r],
        attention [B, T / r, S]).
        """
        r = self.cfg.reduction
        b, t, n = mel.shape
        memory, keys, mask = self.encode(phones, lengths)
        previous = torch.cat([mel.new_zeros(b, 1, n), mel[:, r - 1:-1:r]], 1)  # last frame of each step before
        prenet_out = self.decoder.prenet(previous)  # [B, T / r, prenet_dim], all steps at once
        state = self.decoder.initial_state(memory)
        frames, stops, weights = [], [], []
        for i in range(t // r):
            out, stop, state = self.decoder.step(prenet_out[:, i], state, memory, keys, mask)
            frames.append(out)
            stops.append(stop)
            weights.append(state.weights)
        before = torch.stack(frames, 1).reshape(b, t, n)
        return before, self.postnet(before), torch.stack(stops, 1), torch.stack(weights, 1)


@dataclass(frozen=True)
class Generated:
    """One greedy decode: mel [frames, n_mels] (log-mel, de-normalised), stop probs [steps], attention [steps, S]."""

    mel: torch.Tensor
    stop_probs: torch.Tensor
    attention: torch.Tensor


def max_steps_for(n_phones: int, reduction: int) -> int:
    """Decoder step limit: 24 frames per phone (espeak speaks about 5) plus a second."""
    return math.ceil((24 * n_phones + 80) / reduction)


@torch.inference_mode()
def generate(model: Tacotron, phones: list[int], seed: int = 0, threshold: float = 0.5,
             max_steps: int | None = None) -> Generated:
    """Greedy autoregressive decode of one phone sequence (ids incl. the end marker)."""
    cfg = model.cfg
    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor([phones])
    memory, keys, mask = model.encode(ids, torch.tensor([len(phones)]))
    state = model.decoder.initial_state(memory)
    frame = memory.new_zeros(1, cfg.n_mels)
    limit = max_steps or max_steps_for(len(phones), cfg.reduction)
    frames, stops, weights = [], [], []
    for _ in range(limit):
        out, stop, state = model.decoder.step(model.decoder.prenet(frame, generator), state, memory, keys, mask)
        frames.append(out.view(cfg.reduction, cfg.n_mels))
        stops.append(torch.sigmoid(stop[0]))
        weights.append(state.weights[0])
        frame = frames[-1][-1:]
        if stops[-1] > threshold:
            break
    mel = model.postnet(torch.cat(frames)[None])[0] * model.mel_std + model.mel_mean  # [frames, n_mels]
    return Generated(mel, torch.stack(stops), torch.stack(weights))
