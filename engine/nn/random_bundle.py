"""A bundle with RANDOM weights, for tests, smoke runs and the demo when no model is installed: never a model.

Kept apart from the bundle I/O of `engine.nn.bundle` (which it uses): nothing that loads or ships a bundle imports
it. The test fixtures' tiny shape is `engine.nn.presets.TINY_DENOISER` (`denoiser_overrides=TINY_DENOISER`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from engine.manifest import ModelManifest
from engine.nn.bundle import write_bundle
from engine.nn.denoiser import DenoiserConfig, MDSGen
from engine.nn.export import export_onnx
from engine.nn.frame_encoder import FrameEncoderConfig, VideoFeatureModel, load_pretrained_backbone_state
from engine.nn.vae import MelVAE, VAEConfig
from engine.nn.vocoder import Vocoder, VocoderConfig
from engine.spec import SegmentSpec

__all__ = ["random_bundle"]


def random_bundle(
    bundle_dir: str | Path,
    *,
    spec: SegmentSpec,
    preset: str = "T",
    denoiser_overrides: dict[str, Any] | None = None,
    vae_config: VAEConfig | None = None,
    vocoder: str = "vocos",
    seed: int = 0,
    randomize_zero_init: Iterable[str] = ("final_layer", "adaLN_modulation"),
    onnx: bool = False,
) -> ModelManifest:
    """A bundle with RANDOM weights (pretrained EfficientNet backbone aside), for tests and smoke runs only.

    The manifest says `random_weights: true` and the engine warns on load: this is never a model. Zero-initialised
    output layers are re-randomised so that the pipeline's numbers move (otherwise eps would be exactly 0).
    With `onnx`, the ONNX graphs are exported into the bundle too (`engine.nn.export.export_onnx`).
    """
    torch.manual_seed(seed)
    den = MDSGen(config=DenoiserConfig.from_spec(spec, preset, **(denoiser_overrides or {})))
    with torch.no_grad():
        for key, p in den.named_parameters():
            if any(s in key for s in randomize_zero_init) and p.dim() > 1:
                p.normal_(0.0, 0.02)
    vcfg = vae_config or VAEConfig(latent_channels=spec.latent_channels,
                                   block_out_channels=(32,) * spec.vae_downsample.bit_length(),  # 2^(n-1) = f
                                   layers_per_block=1, norm_num_groups=8)
    vae = MelVAE(config=vcfg)
    fe = VideoFeatureModel(config=FrameEncoderConfig(feature_dim=spec.feature_dim))
    fe.encoder.backbone.load_state_dict(load_pretrained_backbone_state(), strict=False)
    voc = Vocoder(config=VocoderConfig(n_mels=spec.n_mels, n_fft=spec.n_fft, hop_length=spec.hop_length, dim=64,
                                       intermediate_dim=128, num_layers=2)) if vocoder == "vocos" else None
    manifest = write_bundle(
        bundle_dir, name=f"random-{preset.lower()}-test", spec=spec, denoiser=den, vae=vae, frame_encoder=fe,
        vocoder=voc, random_weights=True,
        description="RANDOM weights for tests and smoke runs; produces noise, not Foley.",
        provenance={"weights": "random initialisation (seeded); EfficientNet-Lite0 backbone from ImageNet"},
    )
    if onnx:
        manifest = export_onnx(bundle_dir)
    return manifest
