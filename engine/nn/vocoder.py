"""A Vocos-style neural vocoder: normalised mel -> complex STFT -> waveform.

A ConvNeXt backbone predicts, per STFT frame, the log-magnitude and the phase of every frequency bin; the
waveform is the inverse STFT of that (Siuzdak, "Vocos", 2023, described in our own words). The inverse STFT is
kept outside the network (`VocosNet` returns the spectrum), because a complex iSTFT does not export to ONNX;
`engine.audio`-style numpy code or `torch.istft` finishes the job.

The network's frames are the centred STFT's frames: mel_frames + 1 (the last mel frame is repeated).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.config_base import StrictConfig


@dataclass(frozen=True)
class VocoderConfig(StrictConfig):
    config_name = "vocoder-config"

    n_mels: int = 128
    n_fft: int = 1024
    hop_length: int = 256
    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 8
    max_log_magnitude: float = 6.0


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) -> LayerNorm -> pointwise MLP (GELU) -> layer scale, residual."""

    def __init__(self, *, dim: int, intermediate_dim: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)  # (B, T, dim)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)  # (B, dim, T)


class VocosNet(nn.Module):
    """mel (B, n_mels, T) -> (log_magnitude, phase), each (B, n_fft/2+1, T)."""

    def __init__(self, *, config: VocoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Conv1d(config.n_mels, config.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        scale = 1.0 / config.num_layers
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim=config.dim, intermediate_dim=config.intermediate_dim, layer_scale=scale)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.head = nn.Linear(config.dim, config.n_fft + 2)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(mel)  # (B, dim, T)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # (B, n_fft + 2, T)
        log_mag, phase = h.chunk(2, dim=1)  # (B, F, T) each
        return log_mag.clamp(max=self.config.max_log_magnitude), phase


def pad_mel_frames(mel: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, T) -> (B, n_mels, T + 1): the centred STFT of T * hop samples has T + 1 frames."""
    return torch.cat([mel, mel[..., -1:]], dim=-1)


def istft(log_mag: torch.Tensor, phase: torch.Tensor, *, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """(B, F, T) log-magnitude and phase -> waveform (B, length) (torch path; numpy twin in the ONNX backend)."""
    spec = torch.polar(torch.exp(log_mag), phase)
    window = torch.hann_window(n_fft, device=log_mag.device, dtype=log_mag.dtype)
    return torch.istft(spec, n_fft=n_fft, hop_length=hop_length, win_length=n_fft, window=window, center=True,
                       length=length)


class Vocoder(nn.Module):
    """mel (B, n_mels, mel_frames) -> waveform (B, mel_frames * hop)."""

    def __init__(self, *, config: VocoderConfig) -> None:
        super().__init__()
        self.config = config
        self.net = VocosNet(config=config)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        log_mag, phase = self.net(pad_mel_frames(mel))
        return istft(log_mag, phase, n_fft=self.config.n_fft, hop_length=self.config.hop_length,
                     length=mel.shape[-1] * self.config.hop_length)
