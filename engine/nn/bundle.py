"""Writing and reading bundle components with torch (training, tests, the exporter and the torch backend).

Weights are stored as safetensors. Deterministic buffers that the model rebuilds itself (the relative-position
index tables: 13 x N x N int64 for MDSGen, 69 MB for B on the AudioLDM grid) are left out of the file and checked
on load instead, so that a shipped bundle stays small.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from engine.atomic import atomic_replace
from engine.components import SLOTS, TYPES, GriffinLimConfig, component_type, types_of_slot
from engine.errors import BundleError
from engine.manifest import Component, ModelManifest, load_manifest, sha256_file, write_manifest
from engine.spec import SegmentSpec

if TYPE_CHECKING:
    from engine.nn.denoiser import MDSGen
    from engine.nn.frame_encoder import VideoFeatureModel
    from engine.nn.vae import MelVAE
    from engine.nn.vocoder import Vocoder

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


# ---- component factories (config dict -> module, module -> manifest entry): engine.components ---------------

def build_component(name: str, comp: Component, spec: SegmentSpec) -> nn.Module:
    """Rebuild a bundle component from its manifest entry (init-args as config), without weights."""
    ctype = component_type(comp.type)
    if ctype is None or ctype.slot != name or not ctype.has_weights:
        raise BundleError(f"component {name!r} of type {comp.type!r} has no torch module")
    return ctype.build(comp.config)


def module_component_type(name: str, module: nn.Module) -> str:
    """The registered type (`engine.components.TYPES`) of a module put into slot `name` of a bundle."""
    cls = type(module)
    ref = f"{cls.__module__}:{cls.__qualname__}"
    candidates = [t for t in TYPES.values() if t.slot == name and t.has_weights]
    for t in candidates:
        if t.module == ref:
            return t.name
    for t in candidates:  # a subclass of a registered module
        if isinstance(module, t.module_class()):
            return t.name
    raise BundleError(f"a {cls.__name__} is not a registered {name} module (engine.components: "
                      f"{', '.join(t.module for t in candidates) or 'none'})")


def component_from_module(bundle_dir: str | Path, name: str, module: nn.Module) -> Component:
    """Save a module as component `name` of the bundle in `bundle_dir` (`<name>.safetensors`) and return its
    manifest entry: its registered type, its config's `to_dict`, the file and its sha256."""
    ctype = module_component_type(name, module)
    fname = f"{name}.safetensors"
    return Component(ctype, module.config.to_dict(), fname, save_weights(Path(bundle_dir) / fname, module))


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
        "denoiser": component_from_module(bdir, "denoiser", denoiser),
        "vae": component_from_module(bdir, "vae", vae),
    }
    if frame_encoder is not None:
        comps["frame_encoder"] = component_from_module(bdir, "frame_encoder", frame_encoder)
    if vocoder is not None:
        comps["vocoder"] = component_from_module(bdir, "vocoder", vocoder)
    else:
        comps["vocoder"] = Component("griffin-lim", GriffinLimConfig(n_iter=griffin_lim_iters).to_dict())
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


#: optional components that `add_component` puts into a finished bundle (`engine.components.SLOTS`, addable):
#: name -> the types it takes
OPTIONAL_COMPONENTS: dict[str, tuple[str, ...]] = {s.name: types_of_slot(s.name) for s in SLOTS.values() if s.addable}


def _optional_component(bdir: Path, name: str, module: nn.Module) -> Component:
    if name not in OPTIONAL_COMPONENTS:
        raise BundleError(f"{name!r} is not an optional component; known: {sorted(OPTIONAL_COMPONENTS)}")
    return component_from_module(bdir, name, module)


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
