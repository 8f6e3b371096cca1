"""The mel VAE: diffusers' AutoencoderKL in two modes.

- "mono": a 1-channel audio VAE (in/out channels 1) trained on our mel images.
- "R", "G", "B", "mean": the 3-channel image-VAE mode of Diff-Foley / the MDSGen paper: the [0, 1] mel image is
  repeated on 3 channels on the way in, and one channel (or the mean of the three) is kept on the way out. The
  paper decodes channel G by default.

The latent is `latent_scale` x the posterior (mean at inference), so the denoiser sees roughly unit variance; the
decoder divides by it again. The image layout (H, W) follows `SegmentSpec.mel_image_shape`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from engine.config_base import StrictConfig

ChannelMode = Literal["mono", "R", "G", "B", "mean"]
_CHANNEL_INDEX = {"R": 0, "G": 1, "B": 2}


@dataclass(frozen=True)
class VAEConfig(StrictConfig):
    """AutoencoderKL init-args plus how mels enter and leave it."""

    config_name = "vae-config"

    channel_mode: ChannelMode = "mono"
    latent_channels: int = 4
    block_out_channels: tuple[int, ...] = (32, 64, 128, 128)
    layers_per_block: int = 1
    norm_num_groups: int = 32
    latent_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)  # any other AutoencoderKL argument, passed through

    def __post_init__(self) -> None:
        if self.channel_mode not in ("mono", "R", "G", "B", "mean"):
            raise ValueError(f"channel_mode must be mono, R, G, B or mean, got {self.channel_mode!r}")

    @property
    def image_channels(self) -> int:
        return 1 if self.channel_mode == "mono" else 3

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


class MelVAE(nn.Module):
    """AutoencoderKL wrapped with the mel <-> image-channel conventions and the latent scale."""

    def __init__(self, *, config: VAEConfig) -> None:
        super().__init__()
        from diffusers import AutoencoderKL

        self.config = config
        n = len(config.block_out_channels)
        self.vae = AutoencoderKL(
            in_channels=config.image_channels,
            out_channels=config.image_channels,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            latent_channels=config.latent_channels,
            norm_num_groups=config.norm_num_groups,
            **config.extra,
        )

    def _to_image(self, mel: torch.Tensor) -> torch.Tensor:
        # mel (B, H, W) -> image (B, ch, H, W)
        img = mel.unsqueeze(1)
        if self.config.image_channels == 3:
            img = img.expand(-1, 3, -1, -1)  # (B, 3, H, W), Diff-Foley repeats the mel on RGB
        return img

    def _from_image(self, img: torch.Tensor) -> torch.Tensor:
        # image (B, ch, H, W) -> mel (B, H, W)
        mode = self.config.channel_mode
        if mode == "mono":
            return img[:, 0]
        if mode == "mean":
            return img.mean(dim=1)
        return img[:, _CHANNEL_INDEX[mode]]

    def encode(self, mel: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """mel image (B, H, W) -> scaled latent (B, C, H/f, W/f); the posterior mean unless `sample`."""
        posterior = self.vae.encode(self._to_image(mel)).latent_dist
        z = posterior.sample(generator) if sample else posterior.mean
        return z * self.config.latent_scale

    def posterior(self, mel: torch.Tensor):
        """The VAE posterior of a mel image (B, H, W) (for training: KL, sampling)."""
        return self.vae.encode(self._to_image(mel)).latent_dist

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """scaled latent (B, C, h, w) -> mel image (B, H, W)."""
        return self._from_image(self.vae.decode(z / self.config.latent_scale).sample)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)
