"""Writing and reading bundle components with torch (training, tests, the exporter and the torch backend).

Weights are stored as safetensors. Deterministic buffers that the model rebuilds itself (the relative-position
index tables: 13 x N x N int64 for MDSGen, 69 MB for B on the AudioLDM grid) are left out of the file and checked
on load instead, so that a shipped bundle stays small.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.atomic import atomic_replace
from engine.errors import BundleError
from engine.manifest import Component, ModelManifest, load_manifest, sha256_file, write_manifest
from engine.nn.denoiser import DenoiserConfig, MDSGen
from engine.nn.frame_encoder import FrameEncoderConfig, VideoFeatureModel, load_pretrained_backbone_state
from engine.nn.vae import MelVAE, VAEConfig
from engine.nn.vocoder import Vocoder, VocoderConfig
from engine.spec import SegmentSpec

DERIVED_BUFFER_SUFFIXES = ("relative_position_index",)


def is_derived(key: str) -> bool:
    """A buffer the model recomputes from its config (not stored in weight files)."""
    return key.endswith(DERIVED_BUFFER_SUFFIXES)


def save_weights(path: str | os.PathLike[str], module: nn.Module) -> str:
    """Save a module's state_dict (minus derived buffers) as safetensors, atomically; return its sha256."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items() if not is_derived(k)}
    with atomic_replace(path) as tmp:
        save_file(state, str(tmp))
    return sha256_file(path)


def load_weights(module: nn.Module, path: str | os.PathLike[str], *, what: str) -> nn.Module:
    """Load safetensors weights strictly (derived buffers excepted); a mismatch names the offending keys."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"the {what} weights {path} cannot be read ({exc}); the file is corrupt") from exc
    expected = module.state_dict()
    missing = sorted(k for k in expected if k not in state and not is_derived(k))
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            shapes = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in wrong[:3]]
            parts.append("wrong shape " + ", ".join(shapes))
        raise BundleError(f"the {what} weights {path} do not match its config: " + "; ".join(parts))
    module.load_state_dict(state, strict=False)
    return module


# ---- component factories (config dict -> module) ----------------------------------------------------------

def build_component(name: str, comp: Component, spec: SegmentSpec) -> nn.Module:
    """Rebuild a bundle component from its manifest entry (init-args as config), without weights."""
    if name == "denoiser":
        return MDSGen(config=DenoiserConfig.from_dict(comp.config))
    if name == "vae":
        return MelVAE(config=VAEConfig.from_dict(comp.config))
    if name == "frame_encoder" and comp.type == "cavp-resnet3d50":
        from engine.nn.cavp import CAVPConfig, CAVPVideoEncoder

        return CAVPVideoEncoder(config=CAVPConfig.from_dict(comp.config))
    if name == "vocoder" and comp.type == "hifigan":
        from engine.nn.hifigan import HiFiGAN, HiFiGANConfig

        return HiFiGAN(config=HiFiGANConfig.from_dict(comp.config))
    if name == "frame_encoder":
        return VideoFeatureModel(config=FrameEncoderConfig.from_dict(comp.config))
    if name == "vocoder" and comp.type == "vocos":
        return Vocoder(config=VocoderConfig.from_dict(comp.config))
    if name == "hit_detector":
        from engine.nn.hit_detector import HitDetector, HitDetectorConfig

        return HitDetector(config=HitDetectorConfig.from_dict(comp.config))
    if name == "bwe":
        from engine.nn.bwe import BandwidthNet, BweConfig

        return BandwidthNet(config=BweConfig.from_dict(comp.config))
    raise BundleError(f"component {name!r} of type {comp.type!r} has no torch module")


def load_component(bundle_dir: str | Path, manifest: ModelManifest, name: str) -> nn.Module:
    comp = manifest.components[name]
    module = build_component(name, comp, manifest.spec)
    if comp.file is None:
        raise BundleError(f"component {name!r} names no weights file")
    load_weights(module, Path(bundle_dir) / comp.file, what=name)
    return module.eval()


def write_bundle(
    bundle_dir: str | Path,
    *,
    name: str,
    spec: SegmentSpec,
    denoiser: MDSGen,
    vae: MelVAE,
    frame_encoder: VideoFeatureModel | None,
    vocoder: Vocoder | None,
    griffin_lim_iters: int = 32,
    condition: str = "efficientnet-lite0",
    random_weights: bool = False,
    description: str = "",
    provenance: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    sampler_defaults: dict[str, Any] | None = None,
    hit_detector: nn.Module | None = None,
    bwe: nn.Module | None = None,
) -> ModelManifest:
    """Save every component and write the manifest last (a bundle without a manifest is not a bundle).

    hit_detector: an optional `engine.nn.hit_detector.HitDetector` (what `hits="auto"` uses); bwe: an optional
    `engine.nn.bwe.BandwidthNet` (the 48 kHz output's bandwidth extension)."""
    bdir = Path(bundle_dir)
    bdir.mkdir(parents=True, exist_ok=True)
    comps: dict[str, Component] = {
        "denoiser": Component("mdsgen", denoiser.config.to_dict(), "denoiser.safetensors",
                              save_weights(bdir / "denoiser.safetensors", denoiser)),
        "vae": Component("autoencoder-kl", vae.config.to_dict(), "vae.safetensors",
                         save_weights(bdir / "vae.safetensors", vae)),
    }
    if frame_encoder is not None:
        comps["frame_encoder"] = Component("efficientnet-lite0-projection", frame_encoder.config.to_dict(),
                                           "frame_encoder.safetensors",
                                           save_weights(bdir / "frame_encoder.safetensors", frame_encoder))
    if vocoder is not None:
        comps["vocoder"] = Component("vocos", vocoder.config.to_dict(), "vocoder.safetensors",
                                     save_weights(bdir / "vocoder.safetensors", vocoder))
    else:
        comps["vocoder"] = Component("griffin-lim", {"n_iter": griffin_lim_iters})
    for cname, module in (("hit_detector", hit_detector), ("bwe", bwe)):
        if module is not None:
            comps[cname] = _optional_component(bdir, cname, module)
    manifest = ModelManifest(
        name=name, spec=spec, components=comps, condition=condition, random_weights=random_weights,
        description=description, provenance=dict(provenance or {}), metrics=dict(metrics or {}),
    )
    if sampler_defaults:
        manifest.sampler_defaults.update(sampler_defaults)
    write_manifest(bdir, manifest)
    return load_manifest(bdir)


#: optional components that `add_component` puts into a finished bundle: name -> the module's COMPONENT_TYPE
OPTIONAL_COMPONENTS: dict[str, str] = {"hit_detector": "hit-detector-tcn", "bwe": "bwe-conv1d"}


def _optional_component(bdir: Path, name: str, module: nn.Module) -> Component:
    if name not in OPTIONAL_COMPONENTS:
        raise BundleError(f"{name!r} is not an optional component; known: {sorted(OPTIONAL_COMPONENTS)}")
    return Component(OPTIONAL_COMPONENTS[name], module.config.to_dict(), f"{name}.safetensors",
                     save_weights(bdir / f"{name}.safetensors", module))


def add_component(bundle_dir: str | Path, name: str, module: nn.Module) -> ModelManifest:
    """Put an optional component (`OPTIONAL_COMPONENTS`: the hit detector, the bandwidth extension) into an existing
    bundle, replacing one it has; a bundle with ONNX graphs gets the component's graph too (exported and checked,
    `engine.nn.export.export_graph`), its other graphs are kept. The manifest is written last."""
    from engine.graphs import OPSET, graph_for

    bdir = Path(bundle_dir)
    manifest = load_manifest(bdir)
    comp = _optional_component(bdir, name, module)
    manifest.components[name] = comp
    if manifest.onnx.get("graphs"):
        from engine.nn.export import export_graph  # here, not at the top: export imports this module

        io = graph_for(name, comp.type, comp.config)
        if io is None:  # pragma: no cover - every optional component has a graph
            raise BundleError(f"no ONNX graph is defined for component {name!r} ({comp.type})")
        entry = export_graph(io, module, manifest.spec, bdir, component_type=comp.type,
                             opset=int(manifest.onnx.get("opset", OPSET)), precisions=("fp32",),
                             meta={"bundle": manifest.name, "spec_fingerprint": manifest.spec.fingerprint()})
        manifest.onnx["graphs"][name] = entry
    write_manifest(bdir, manifest)
    return load_manifest(bdir)


def add_hit_detector(bundle_dir: str | Path, detector: nn.Module) -> ModelManifest:
    """`add_component(bundle_dir, "hit_detector", detector)`."""
    return add_component(bundle_dir, "hit_detector", detector)


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
        from engine.nn.export import export_onnx  # here, not at the top: export imports this module

        manifest = export_onnx(bundle_dir)
    return manifest
