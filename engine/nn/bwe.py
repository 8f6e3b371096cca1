"""The bandwidth-extension network: log magnitudes below 7.5 kHz -> log magnitudes above, per 48 kHz STFT frame.

A stack of 1-D convolutions over time with the frequency bins as channels: an input layer (kernel 5), residual
blocks of dilated kernel-3 convolutions (dilations 1, 2, 4, 8: +-16 frames, about 85 ms either side, so a
transient's high band can follow its attack and decay) and a 1x1 output layer. The output is an offset from the
mean log magnitude of the top input bins, so the network's output follows the take's level (a quieter take gives a
quieter high band without extrapolating). `engine.bwe` does the framing and resynthesis around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.bwe import HIGH_BINS, LOW_BINS
from engine.config_base import StrictConfig

#: The component type in a bundle manifest (component name "bwe").
COMPONENT_TYPE = "bwe-conv1d"


@dataclass(frozen=True)
class BweConfig(StrictConfig):
    config_name = "bwe-config"

    low_bins: int = LOW_BINS
    high_bins: int = HIGH_BINS
    channels: int = 192
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    top_bins: int = 32  # the input bins whose mean log magnitude the output is an offset from


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mix(nn.functional.gelu(self.conv(nn.functional.gelu(x))))


class BandwidthNet(nn.Module):
    def __init__(self, config: BweConfig | None = None) -> None:
        super().__init__()
        c = config or BweConfig()
        self.config = c
        self.inp = nn.Conv1d(c.low_bins, c.channels, 5, padding=2)
        self.blocks = nn.ModuleList(_Block(c.channels, d) for d in c.dilations)
        self.out = nn.Conv1d(c.channels, c.high_bins, 1)

    def forward(self, low_log: Tensor) -> Tensor:
        """(B, low_bins, T) log magnitudes -> (B, high_bins, T) log magnitudes."""
        ref = low_log[:, -self.config.top_bins :].mean(dim=1, keepdim=True)  # (B, 1, T)
        h = self.inp(low_log - ref)
        for block in self.blocks:
            h = block(h)
        return ref + self.out(nn.functional.gelu(h))

    def predictor(self):
        """A numpy callable for `engine.bwe.extend` (eval mode, no grad)."""
        self.eval()

        def run(x):
            with torch.inference_mode():
                return self(torch.from_numpy(x)).numpy()

        return run
