"""The backend interface: numpy in, numpy out. The sampler and the pipeline know nothing else of the models."""

from __future__ import annotations

import os
from enum import Enum
from typing import Protocol, runtime_checkable

import numpy as np


def cpu_threads() -> int:
    """The CPU cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class BackendKind(str, Enum):
    """Which runtime executes the bundle's networks."""

    AUTO = "auto"
    TORCH = "torch"
    ONNX = "onnx"


@runtime_checkable
class Backend(Protocol):
    """What the pipeline needs from a runtime. All arrays are float32 unless said otherwise."""

    name: str
    device: str
    providers_in_use: list[str]
    has_neural_vocoder: bool
    has_frame_encoder: bool

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames (B, T, 224, 224, 3) -> video features (B, T, feature_dim)."""
        ...

    def encode_conditions(self, features: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
        """video features (B, T, feature_dim) and, for a hit-aware denoiser, the hit track (B, lines, slots; None:
        no hits) -> condition y (B, *condition_shape); the null condition is zeros. Others ignore `hits`."""
        ...

    def denoise(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """noisy latent (B, C, H, W), model timestep (B,), condition (B, D) -> predicted noise (B, C, H, W)."""
        ...

    def decode_latents(self, z: np.ndarray) -> np.ndarray:
        """scaled latent (B, C, h, w) -> mel image (B, H, W) in the spec's layout."""
        ...

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        """normalised mel (B, n_mels, frames) -> waveform (B, frames * hop); only if has_neural_vocoder."""
        ...

    def close(self) -> None:
        """Release threads and memory."""
        ...

    # ---- optional: a bundle with a hit detector (engine.hit_detection). A backend written before it may lack
    # both members; callers test `getattr(backend, "has_hit_detector", False)` first.
    has_hit_detector: bool

    def hit_logits(self, motion: np.ndarray) -> np.ndarray:
        """motion features (B, slots, channels) (`engine.motion`) -> onset logits (B, slots); only if
        has_hit_detector."""
        ...

    # ---- optional: a bundle with a bandwidth extension (engine.bwe); same convention as the hit detector.
    has_bwe: bool

    def predict_high_band(self, low_log: np.ndarray) -> np.ndarray:
        """log magnitudes below the cut-off (B, low_bins, frames) of a 48 kHz STFT (`engine.bwe`) -> those above
        (B, high_bins, frames); only if has_bwe."""
        ...
