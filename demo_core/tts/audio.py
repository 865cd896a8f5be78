"""Audio features for speech synthesis: log-mel spectrogram, Griffin-Lim vocoder, WAV IO.

Everything is built from ``torch.stft`` / ``torch.istft`` and a mel filterbank made here (HTK
mel formula ``2595 log10(1 + f / 700)``, triangular filters, no area normalisation), not from
torchaudio or librosa: no extra dependency (torchaudio has no build for this torch), and the
very same code computes the features in the data generator, in training, in serving and in the
tests, so they cannot drift apart.

Audio is mono float32 in [-1, 1] at 16 kHz (espeak-ng speaks at 22,050 Hz; the generator
resamples with ``scipy.signal.resample_poly``): 16 kHz keeps all of espeak's formant energy,
makes fewer frames per second than 22 kHz, and is the rate speech recognisers expect.
Frames: 50 ms Hann window, 12.5 ms hop (80 frames per second), 80 mel bins from 0 to 8 kHz;
features are the natural log of the mel magnitude, floored at 1e-5.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly


@dataclass(frozen=True)
class AudioConfig:
    """STFT and mel settings shared by data, model and vocoder."""

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 800  # 50 ms
    hop_length: int = 200  # 12.5 ms -> 80 frames per second
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5

    def frames_for(self, n_samples: int) -> int:
        """Frames ``log_mel`` makes for ``n_samples`` samples (centred STFT)."""
        return n_samples // self.hop_length + 1


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(cfg: AudioConfig) -> torch.Tensor:
    """Triangular filters on the HTK mel scale: ``[n_mels, n_fft // 2 + 1]``."""
    bins = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(cfg.fmin)), _hz_to_mel(np.array(cfg.fmax)), cfg.n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return torch.tensor(np.clip(np.minimum(rising, falling), 0.0, None), dtype=torch.float32)


@lru_cache(maxsize=4)
def _inverse_filterbank(cfg: AudioConfig) -> torch.Tensor:
    """Pseudo-inverse of the filterbank: ``[n_fft // 2 + 1, n_mels]``."""
    return torch.linalg.pinv(mel_filterbank(cfg))


def _window(cfg: AudioConfig) -> torch.Tensor:
    return torch.hann_window(cfg.win_length)


def stft(audio: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Complex STFT of ``audio [N]``: ``[n_fft // 2 + 1, frames]``."""
    return torch.stft(audio, cfg.n_fft, cfg.hop_length, cfg.win_length, _window(cfg),
                      center=True, return_complex=True)


def istft(spec: torch.Tensor, cfg: AudioConfig, length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft`: ``[n_fft // 2 + 1, frames]`` -> ``[N]``."""
    return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, _window(cfg), center=True, length=length)


def log_mel(audio: np.ndarray | torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """Log-mel spectrogram of float audio ``[N]``: ``[frames, n_mels]`` (natural log of magnitude)."""
    audio = torch.as_tensor(audio, dtype=torch.float32)
    magnitude = stft(audio, cfg).abs()  # [F, T]
    mel = mel_filterbank(cfg) @ magnitude  # [n_mels, T]
    return torch.log(mel.clamp(min=cfg.log_floor)).T.contiguous()


def griffin_lim(mel: np.ndarray | torch.Tensor, cfg: AudioConfig = AudioConfig(), n_iter: int = 32,
                momentum: float = 0.99, power: float = 1.0, seed: int = 0) -> np.ndarray:
    """Audio from a log-mel spectrogram ``[frames, n_mels]``: float32 ``[(frames - 1) * hop]``.

    The linear magnitude is the filterbank's pseudo-inverse applied to the mel magnitude
    (clipped at 0); the phase comes from "fast Griffin-Lim" (Perraudin et al. 2013: Griffin-Lim
    with momentum), which needs about half the iterations of the plain algorithm. ``power`` > 1
    sharpens the spectrum, a common trick against Griffin-Lim's buzz.
    """
    mel = torch.as_tensor(mel, dtype=torch.float32)
    magnitude = (_inverse_filterbank(cfg) @ mel.exp().T).clamp(min=0.0) ** power  # [F, T]
    length = (mel.shape[0] - 1) * cfg.hop_length
    generator = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=generator))
    previous = torch.zeros_like(angles)
    audio = istft(magnitude * angles, cfg, length)
    for _ in range(n_iter):
        rebuilt = stft(audio, cfg)  # [F, T]
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
        previous = rebuilt
        audio = istft(magnitude * angles, cfg, length)
    peak = audio.abs().max().clamp(min=1e-4)
    return (audio * min(1.0, 0.95 / float(peak))).numpy().astype(np.float32)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Float audio at ``rate`` Hz resampled to ``target`` Hz (polyphase filter)."""
    if rate == target:
        return audio.astype(np.float32)
    divisor = np.gcd(rate, target)
    return resample_poly(audio, target // divisor, rate // divisor).astype(np.float32)


def trim_silence(audio: np.ndarray, rate: int, threshold: float = 0.01, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading and trailing silence (|x| below ``threshold``), keeping ``margin_s`` either side.

    espeak-ng adds a few hundred milliseconds of silence after each utterance; the model need not
    learn to say nothing for that long.
    """
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio
    margin = int(margin_s * rate)
    return audio[max(0, loud[0] - margin): loud[-1] + margin + 1]


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as int16 samples."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 samples as float32 in [-1, 1]."""
    return samples.astype(np.float32) / 32768.0


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """``(sample_rate, int16 samples [N])`` of a mono 16-bit WAV file."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit audio")
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).copy()


def write_wav(path: Path, rate: int, samples: np.ndarray) -> None:
    """Write mono int16 (or float, converted) samples as a WAV file."""
    samples = samples if samples.dtype == np.int16 else to_int16(samples)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
