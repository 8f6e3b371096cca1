"""Native torch backend: rebuilds each network from the manifest's init-args and runs it under inference_mode."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from engine.errors import BackendUnavailableError, BundleError
from engine.manifest import ModelManifest
from engine.nn.bundle import load_component

log = logging.getLogger(__name__)


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailableError(f"device {device!r} was asked for but torch sees no CUDA device")
    return torch.device(device)


class TorchBackend:
    """The `Backend` protocol over torch modules (fp32; CUDA when asked and present)."""

    name = "torch"

    def __init__(self, bundle_dir: str | Path, manifest: ModelManifest, *, device: str = "auto",
                 threads: int | None = None) -> None:
        self.manifest = manifest
        self._device = _pick_device(device)
        self.device = str(self._device)
        self.providers_in_use = [f"torch-{self._device.type}"]
        if threads:
            torch.set_num_threads(int(threads))
        spec = manifest.spec
        self.denoiser = load_component(bundle_dir, manifest, "denoiser").to(self._device)
        self.vae = load_component(bundle_dir, manifest, "vae").to(self._device)
        if self.vae.config.downsample != spec.vae_downsample or self.vae.config.latent_channels != spec.latent_channels:
            raise BundleError(
                f"the VAE in {bundle_dir} maps mels {spec.mel_image_shape} to a different latent than the spec's "
                f"{spec.latent_shape}; the bundle is inconsistent"
            )
        self.has_frame_encoder = "frame_encoder" in manifest.components
        self.frame_encoder = (load_component(bundle_dir, manifest, "frame_encoder").to(self._device)
                              if self.has_frame_encoder else None)
        self.has_neural_vocoder = manifest.components["vocoder"].type != "griffin-lim"
        self.vocoder = load_component(bundle_dir, manifest, "vocoder").to(self._device) \
            if self.has_neural_vocoder else None
        self.has_hit_detector = "hit_detector" in manifest.components
        self.hit_detector = (load_component(bundle_dir, manifest, "hit_detector").to(self._device)
                             if self.has_hit_detector else None)
        self.has_bwe = "bwe" in manifest.components
        self.bwe = load_component(bundle_dir, manifest, "bwe").to(self._device) if self.has_bwe else None

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self._device)

    @staticmethod
    def _np(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    @torch.inference_mode()
    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        assert self.frame_encoder is not None, "bundle has no frame encoder"
        if self.manifest.components["frame_encoder"].type == "cavp-resnet3d50":
            # CAVP: [0, 1] RGB, clips of 40 frames (its own preprocessing, engine.nn.cavp)
            return self._np(self.frame_encoder.encode_uint8(self._t(frames)))
        x = self._t(frames).permute(0, 1, 4, 2, 3).float()  # (B, T, H, W, 3) uint8 -> (B, T, 3, H, W)
        return self._np(self.frame_encoder(x))

    @torch.inference_mode()
    def encode_conditions(self, features: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
        h = self._t(hits.astype(np.float32)) if hits is not None and self.denoiser.config.hit_slots > 0 else None
        return self._np(self.denoiser.encode_condition(self._t(features.astype(np.float32)), h))

    @torch.inference_mode()
    def denoise(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = self.denoiser.forward_with_condition(self._t(x), self._t(t.astype(np.float32)), self._t(y))
        return self._np(self.denoiser.split_eps(out))

    @torch.inference_mode()
    def decode_latents(self, z: np.ndarray) -> np.ndarray:
        return self._np(self.vae.decode(self._t(z)))

    @torch.inference_mode()
    def vocode(self, mel: np.ndarray) -> np.ndarray:
        assert self.vocoder is not None, "bundle has no neural vocoder"
        # one candidate at a time: measured faster than a batch for convolutional vocoders on the CPU
        return np.stack([self._np(self.vocoder(self._t(m[None])))[0] for m in mel])

    @torch.inference_mode()
    def hit_logits(self, motion: np.ndarray) -> np.ndarray:
        assert self.hit_detector is not None, "bundle has no hit detector"
        return self._np(self.hit_detector(self._t(motion.astype(np.float32))))

    @torch.inference_mode()
    def predict_high_band(self, low_log: np.ndarray) -> np.ndarray:
        assert self.bwe is not None, "bundle has no bandwidth extension"
        return self._np(self.bwe(self._t(low_log.astype(np.float32))))

    def close(self) -> None:
        self.denoiser = self.vae = self.frame_encoder = self.vocoder = None  # type: ignore[assignment]
        self.hit_detector = self.bwe = None
