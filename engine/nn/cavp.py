"""CAVP's video encoder (Diff-Foley stage 1): SlowOnly ResNet3d-50 + per-frame projection to 512-d, L2-normalised.

Written from the architecture description in `shared/reference/official-weights.md` (section 1) and the public
state-dict layout of `cavp_epoch66.ckpt` (`shared/fixtures/cavp_video_state_dict_layout.json`, 320 tensors); no
code is copied. Module names reproduce that layout key for key (mmcv's ConvModule naming: `<name>.conv`,
`<name>.bn`):

    video_encoder.conv1          Conv3d(3 -> 64, k (1,7,7), stride (1,2,2), pad (0,3,3), no bias) + BN3d + ReLU
    (maxpool)                    MaxPool3d(k (1,3,3), stride (1,2,2), pad (0,1,1)); stateless
    video_encoder.layer1..4      Bottleneck3d blocks (3, 4, 6, 3), planes 64/128/256/512, expansion 4;
                                 spatial stride 1/2/2/2 on conv2 and on the downsample; time stride 1 everywhere
        .j.conv1                 1x1x1 (layer1, layer2) or 3x1x1 with time padding 1 (every block of layer3/4)
        .j.conv2                 1x3x3, pad (0,1,1)
        .j.conv3                 1x1x1, BN only (no ReLU); residual add, then ReLU
        .0.downsample            1x1x1 conv with stride (1,s,s) + BN, first block of every stage
    video_project_head           Linear(2048 -> 512) per frame, then L2 normalisation per frame

All convs are bias-free and followed by BatchNorm3d (eps 1e-5); the module runs in eval mode. The stage-4 map
(B, 2048, T, 7, 7) is averaged over space, so every frame keeps its own 2048-d vector (no temporal pooling).

Preprocessing (Diff-Foley's extraction, which MDSGen's features come from): frames at 4 fps, resized to 224x224
without keeping the aspect ratio, RGB scaled to [0, 1] (no mean/std), fed in chunks of 40 frames; each chunk is an
independent clip (its 3x1x1 convs see zero padding at the chunk edges), so chunking changes the features and is
reproduced exactly by `encode_chunked`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config_base import StrictConfig

STAGE_BLOCKS = (3, 4, 6, 3)  # ResNet-50
STAGE_PLANES = (64, 128, 256, 512)
STAGE_SPATIAL_STRIDES = (1, 2, 2, 2)
STAGE_INFLATE = (False, False, True, True)  # SlowOnly: 3x1x1 conv1 in every block of res4 and res5
EXPANSION = 4
BACKBONE_DIM = 2048


@dataclass(frozen=True)
class CAVPConfig(StrictConfig):
    """The video branch of CAVP and its preprocessing (stored in the bundle manifest)."""

    config_name = "cavp-config"

    feature_dim: int = 512
    image_size: int = 224
    fps: float = 4.0
    chunk_frames: int = 40

    def __post_init__(self) -> None:
        if self.chunk_frames < 1 or self.feature_dim < 1 or self.image_size < 32:
            raise ValueError(f"invalid CAVP config {self}")


class ConvBN(nn.Module):
    """Conv3d without bias, BatchNorm3d, optional ReLU (names `conv` / `bn` as mmcv's ConvModule)."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int], *, stride: tuple[int, int, int] = (1, 1, 1),
                 padding: tuple[int, int, int] = (0, 0, 0), relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm3d(c_out, eps=1e-5, momentum=0.1)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class Bottleneck3d(nn.Module):
    """1x1x1 (or 3x1x1) -> 1x3x3 (spatial stride) -> 1x1x1 (x4 channels), residual, ReLU."""

    def __init__(self, c_in: int, planes: int, *, spatial_stride: int, inflate: bool, downsample: bool) -> None:
        super().__init__()
        c_out = planes * EXPANSION
        if inflate:
            self.conv1 = ConvBN(c_in, planes, (3, 1, 1), padding=(1, 0, 0))
        else:
            self.conv1 = ConvBN(c_in, planes, (1, 1, 1))
        s = spatial_stride
        self.conv2 = ConvBN(planes, planes, (1, 3, 3), stride=(1, s, s), padding=(0, 1, 1))
        self.conv3 = ConvBN(planes, c_out, (1, 1, 1), relu=False)
        self.downsample = ConvBN(c_in, c_out, (1, 1, 1), stride=(1, s, s), relu=False) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


class SlowOnlyResNet3d50(nn.Module):
    """(B, 3, T, H, W) -> (B, 2048, T, H/32, W/32); time is never down-sampled."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBN(3, 64, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3))
        self.maxpool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        c_in = 64
        for i, (n, planes, s, inflate) in enumerate(
            zip(STAGE_BLOCKS, STAGE_PLANES, STAGE_SPATIAL_STRIDES, STAGE_INFLATE), start=1
        ):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck3d(c_in, planes, spatial_stride=s if j == 0 else 1, inflate=inflate,
                                           downsample=j == 0))
                c_in = planes * EXPANSION
            self.add_module(f"layer{i}", nn.Sequential(*blocks))

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        for i in range(1, len(STAGE_BLOCKS) + 1):
            x = getattr(self, f"layer{i}")(x)
        return x


class CAVPVideoEncoder(nn.Module):
    """frames (B, T, 3, H, W) in [0, 1] -> per-frame features (B, T, 512), unit L2 norm; one clip per call."""

    def __init__(self, *, config: CAVPConfig | None = None) -> None:
        super().__init__()
        self.config = config or CAVPConfig()
        self.video_encoder = SlowOnlyResNet3d50()
        self.video_project_head = nn.Linear(BACKBONE_DIM, self.config.feature_dim)

    def forward(self, frames: Tensor) -> Tensor:
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        fmap = self.video_encoder(frames.permute(0, 2, 1, 3, 4))  # (B, 2048, T, h, w)
        feats = fmap.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, 2048)
        return F.normalize(self.video_project_head(feats), dim=-1)  # (B, T, 512)

    def encode_chunked(self, frames: Tensor) -> Tensor:
        """Diff-Foley's extraction: consecutive chunks of `chunk_frames` (the last may be shorter), concatenated."""
        n = self.config.chunk_frames
        return torch.cat([self(frames[:, i : i + n]) for i in range(0, frames.shape[1], n)], dim=1)

    def encode_uint8(self, frames: Tensor) -> Tensor:
        """uint8-range RGB frames (B, T, H, W, 3), already 224x224 -> features (B, T, 512), chunked as CAVP does."""
        x = frames.permute(0, 1, 4, 2, 3).float() / 255.0  # (B, T, 3, H, W) in [0, 1]
        return self.encode_chunked(x)
