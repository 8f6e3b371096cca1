"""Native torch backend: rebuilds each network from the manifest's init-args and runs it under inference_mode."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from engine.components import SLOTS, component_type
from engine.errors import BackendUnavailableError, BundleError
from engine.manifest import ModelManifest
from engine.nn.bundle import load_component

log = logging.getLogger(__name__)


def _has_weights(manifest: ModelManifest, name: str) -> bool:
    ctype = component_type(manifest.components[name].type)
    return ctype is not None and ctype.has_weights


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
        # every component whose type has weights (engine.components; the others, Griffin-Lim, run in numpy), the
        # required ones first: an inconsistent VAE is refused before the optional networks are read
        modules: dict[str, torch.nn.Module] = {}
        slots = sorted(SLOTS.values(), key=lambda s: not s.required)
        for name in [s.name for s in slots if s.name in manifest.components and _has_weights(manifest, s.name)]:
            modules[name] = load_component(bundle_dir, manifest, name).to(self._device)
            if name == "vae" and (modules[name].config.downsample != spec.vae_downsample
                                  or modules[name].config.latent_channels != spec.latent_channels):
                raise BundleError(
                    f"the VAE in {bundle_dir} maps mels {spec.mel_image_shape} to a different latent than the "
                    f"spec's {spec.latent_shape}; the bundle is inconsistent"
                )
        self.denoiser = modules["denoiser"]
        self.vae = modules["vae"]
        self.frame_encoder = modules.get("frame_encoder")
        self.vocoder = modules.get("vocoder")
        self.hit_detector = modules.get("hit_detector")
        self.bwe = modules.get("bwe")
        self.has_frame_encoder = self.frame_encoder is not None
        self.has_neural_vocoder = self.vocoder is not None
        self.has_hit_detector = self.hit_detector is not None
        self.has_bwe = self.bwe is not None

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self._device)

    @staticmethod
    def _np(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    @torch.inference_mode()
    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        assert self.frame_encoder is not None, "bundle has no frame encoder"
        # each frame encoder takes (B, T, H, W, 3) uint8 and does its own preprocessing (CAVP: [0, 1] RGB, clips
        # of 40 frames, engine.nn.cavp; EfficientNet-Lite0: 0..255 floats, engine.nn.frame_encoder)
        return self._np(self.frame_encoder.encode_uint8(self._t(frames)))

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
