"""The AudioLDM HiFi-GAN vocoder (the `SpeechT5HifiGan` checkpoint layout): log-mel -> 16 kHz waveform.

Written from the description of the architecture (Kong et al. 2020, "HiFi-GAN", generator V1 with ResBlock type 1)
and the public state-dict layout of `cvssp/audioldm-s-full-v2/vocoder` (`shared/fixtures/
audioldm_vocoder_state_dict_layout.json`); no code is copied. Submodule names follow that layout exactly, so the
hub file loads key for key:

    mean, scale                 (n_mels,) buffers; used only when `normalize_before` (False for AudioLDM)
    conv_pre                    Conv1d(n_mels -> C, k 7, pad 3)
    upsampler.i                 ConvTranspose1d(C/2^i -> C/2^(i+1), k_i, stride u_i, pad (k_i - u_i) / 2)
    resblocks.(i*K + j)         K residual blocks per upsampling stage, kernel k_j, dilations d_j:
        convs1.m                    Conv1d(c -> c, k_j, dilation d_j[m], "same" padding)
        convs2.m                    Conv1d(c -> c, k_j, dilation 1, "same" padding)
    conv_post                   Conv1d(C/2^S -> 1, k 7, pad 3), then tanh

Forward: conv_pre; per stage: leaky ReLU (slope `leaky_relu_slope`), upsample, then the mean of the stage's K
residual blocks (each: for m: x = x + convs2[m](lrelu(convs1[m](lrelu(x))))); finally leaky ReLU with PyTorch's
default slope 0.01 (as the reference generator does), conv_post, tanh. Weight norm is not used: the hub file holds
plain weights. Each transposed conv yields u_i * L + 1 or u_i * L samples, so 816 mel frames give 130592 samples
(not 816 * 160 = 130560); the engine trims to the segment length, as the diffusers pipeline does.

The module takes the engine's mel layout (B, n_mels, frames), not the transformers one (B, frames, n_mels).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config_base import StrictConfig


@dataclass(frozen=True)
class HiFiGANConfig(StrictConfig):
    """Generator sizes; the AudioLDM defaults are those of `cvssp/audioldm-s-full-v2/vocoder/config.json`."""

    config_name = "hifigan-config"

    model_in_dim: int = 64
    sampling_rate: int = 16_000
    upsample_initial_channel: int = 1024
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    leaky_relu_slope: float = 0.1
    normalize_before: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "upsample_rates", tuple(int(r) for r in self.upsample_rates))
        object.__setattr__(self, "upsample_kernel_sizes", tuple(int(k) for k in self.upsample_kernel_sizes))
        object.__setattr__(self, "resblock_kernel_sizes", tuple(int(k) for k in self.resblock_kernel_sizes))
        object.__setattr__(self, "resblock_dilation_sizes",
                           tuple(tuple(int(d) for d in ds) for ds in self.resblock_dilation_sizes))
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes) or not self.upsample_rates:
            raise ValueError("upsample_rates and upsample_kernel_sizes must be non-empty and of the same length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes) or not self.resblock_kernel_sizes:
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must be non-empty and of one length")
        for k, u in zip(self.upsample_kernel_sizes, self.upsample_rates):
            if k < u:
                raise ValueError(f"upsample kernel {k} must not be smaller than its rate {u}")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ValueError("upsample_initial_channel must be divisible by 2^(number of upsampling stages)")

    @property
    def hop_length(self) -> int:
        """Waveform samples per mel frame: the product of the upsampling rates (160 for AudioLDM)."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out

    def output_length(self, frames: int) -> int:
        """Samples produced for `frames` mel frames (each transposed conv: (L - 1) u - 2 pad + k)."""
        n = frames
        for k, u in zip(self.upsample_kernel_sizes, self.upsample_rates):
            n = (n - 1) * u - (k - u) // 2 * 2 + k
        return n

    @classmethod
    def from_hf_config(cls, d: dict[str, Any]) -> HiFiGANConfig:
        """From a transformers `SpeechT5HifiGanConfig` JSON; fields that do not shape the generator are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _same_padding(kernel: int, dilation: int) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1: per dilation, lrelu -> dilated conv -> lrelu -> conv, added back."""

    def __init__(self, *, channels: int, kernel_size: int, dilations: tuple[int, ...], slope: float) -> None:
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=1, padding=_same_padding(kernel_size, 1))
            for _ in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            h = c1(F.leaky_relu(x, self.slope))
            h = c2(F.leaky_relu(h, self.slope))
            x = x + h
        return x


class HiFiGAN(nn.Module):
    """log-mel (B, n_mels, frames) -> waveform (B, config.output_length(frames)), in [-1, 1]."""

    def __init__(self, *, config: HiFiGANConfig) -> None:
        super().__init__()
        self.config = config
        n_mels, ch = config.model_in_dim, config.upsample_initial_channel
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("scale", torch.ones(n_mels))
        self.conv_pre = nn.Conv1d(n_mels, ch, kernel_size=7, stride=1, padding=3)
        self.upsampler = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.upsampler.append(nn.ConvTranspose1d(c_in, c_out, k, stride=u, padding=(k - u) // 2))
            for kr, dil in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
                self.resblocks.append(ResBlock(channels=c_out, kernel_size=kr, dilations=dil,
                                               slope=config.leaky_relu_slope))
        self.conv_post = nn.Conv1d(ch // 2 ** len(config.upsample_rates), 1, kernel_size=7, stride=1, padding=3)

    def forward(self, mel: Tensor) -> Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.config.model_in_dim:
            raise ValueError(f"mel must be (B, {self.config.model_in_dim}, frames), got {tuple(mel.shape)}")
        if self.config.normalize_before:
            mel = (mel - self.mean[None, :, None]) / self.scale[None, :, None]
        x = self.conv_pre(mel)  # (B, C, T)
        k = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.upsampler):
            x = up(F.leaky_relu(x, self.config.leaky_relu_slope))  # (B, C / 2^(i+1), ~T * prod(u[:i+1]))
            acc = self.resblocks[i * k](x)
            for j in range(1, k):
                acc = acc + self.resblocks[i * k + j](x)
            x = acc / k
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, as in the reference generator
        return torch.tanh(x).squeeze(1)  # (B, samples)
