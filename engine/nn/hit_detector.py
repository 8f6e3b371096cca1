"""The hit detector: a small temporal convolutional network from a segment's motion features to onset logits.

Input: the motion features of `engine.motion` pooled into the segment's slots (B, slots, channels); output: one
logit per slot (B, slots) that a sound starts in it. The network is a stack of residual blocks of dilated,
centred 1-D convolutions over the slot axis (a WaveNet/TCN-style stack without gating; the dilations 1, 2, 4, 8, 16
with kernel 3 see +-31 slots, about 1 s either side), so it can relate a frame-difference spike to the motion
around it (a foot that stops, a keyframe's quality jump with no motion before it) rather than fire on every spike.

The config also holds what the runtime needs to turn logits into hits, calibrated at training time
(`training.stages.detector`): the probability threshold, the minimum distance between two hits, and the threshold
of the motion-peak baseline it is compared with. Presets at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from engine.config_base import StrictConfig
from engine.motion import MOTION_VERSION, NUM_CHANNELS

#: The component type in a bundle manifest (component name "hit_detector").
COMPONENT_TYPE = "hit-detector-tcn"


@dataclass(frozen=True)
class HitDetectorConfig(StrictConfig):
    """Constructor arguments of `HitDetector` plus its calibrated peak picking; stored in the bundle manifest."""

    config_name = "hit-detector config"

    in_channels: int = NUM_CHANNELS  # engine.motion's feature channels
    slots: int = 256  # slots per segment (the exported graph's fixed length)
    channels: int = 32
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    dropout: float = 0.1
    prior: float = 0.03  # initial onset probability per slot (output bias), as in RetinaNet's focal-loss init
    motion_version: int = MOTION_VERSION  # of the engine.motion features it was trained on
    threshold: float = 0.5  # probability above which a local maximum is a hit (calibrated on the val split)
    min_distance: float = 0.1  # s between two hits
    baseline_threshold: float = 1.0  # the motion-peak baseline's threshold on the global channel (calibrated too)

    def __post_init__(self) -> None:
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (centred convolutions), got {self.kernel_size}")
        if not 0.0 < self.prior < 1.0:
            raise ValueError(f"prior must be in (0, 1), got {self.prior}")

    @property
    def receptive_field(self) -> int:
        """Slots the output at one slot sees, the slot itself included."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    @classmethod
    def _from_json(cls, d: dict[str, Any]) -> dict[str, Any]:
        d = super()._from_json(d)
        if "dilations" in d:
            d["dilations"] = tuple(int(x) for x in d["dilations"])
        return d


class ResidualBlock(nn.Module):
    """x + Conv1x1(Dropout(GELU(DilatedConv(GELU(x))))), length-preserving."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        # x (B, C, S) -> (B, C, S)
        return x + self.mix(self.drop(self.act(self.conv(self.act(x)))))


class HitDetector(nn.Module):
    """Motion features (B, slots, in_channels) -> onset logits (B, slots)."""

    def __init__(self, *, config: HitDetectorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Conv1d(c.in_channels, c.channels, 1)
        self.blocks = nn.ModuleList(ResidualBlock(c.channels, c.kernel_size, d, c.dropout) for d in c.dilations)
        self.out = nn.Conv1d(c.channels, 1, 1)
        with torch.no_grad():
            self.out.bias.fill_(math.log(c.prior / (1.0 - c.prior)))

    def forward(self, motion: Tensor) -> Tensor:
        h = self.inp(motion.transpose(1, 2))  # (B, S, F) -> (B, F, S) -> (B, C, S)
        for block in self.blocks:
            h = block(h)  # (B, C, S)
        return self.out(torch.nn.functional.gelu(h))[:, 0]  # (B, 1, S) -> (B, S)


# ---------------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------------
HIT_DETECTOR_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"channels": 8, "dilations": (1, 2, 4)},  # tests and smoke runs
    "small": {"channels": 32, "dilations": (1, 2, 4, 8, 16)},  # the default recipe (21.5 k parameters)
}


def hit_detector_config(preset: str = "small", **overrides: Any) -> HitDetectorConfig:
    """A preset's config with field overrides."""
    if preset not in HIT_DETECTOR_PRESETS:
        raise ValueError(f"unknown hit-detector preset {preset!r}; known: {sorted(HIT_DETECTOR_PRESETS)}")
    return HitDetectorConfig(**{**HIT_DETECTOR_PRESETS[preset], **overrides})
