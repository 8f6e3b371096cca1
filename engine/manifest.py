"""Model bundles: a folder with `manifest.json` beside safetensors weights and (optionally) ONNX graphs.

The manifest is self-describing: format version, the segment spec (and its fingerprint), the noise schedule, the
sampler defaults, each component's type, init-args config, file and sha256, provenance (data, licences, training
config) and measured metrics. `load_manifest` validates all of it and raises `BundleError` with a message that
says what is wrong and what to do. No torch here: the ONNX runtime path reads bundles too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_text
from engine.components import SLOTS, TYPES, types_of_slot
from engine.errors import BundleError
from engine.graphs import PRECISIONS, graph_for, graphs_for_components
from engine.spec import DiffusionSchedule, SamplerConfig, SegmentSpec

FORMAT = "mdsgen-foley-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

# What a bundle may hold, from the one registry of component types (engine.components):
# component (slot) name -> the types this engine knows
COMPONENT_TYPES: dict[str, tuple[str, ...]] = {slot: types_of_slot(slot) for slot in SLOTS}
# a frame encoder's features are only valid for the condition kind its type produces
FRAME_ENCODER_CONDITION: dict[str, str] = {t.name: t.condition for t in TYPES.values() if t.condition is not None}
REQUIRED_COMPONENTS: tuple[str, ...] = tuple(s.name for s in SLOTS.values() if s.required)
CONDITION_KINDS: tuple[str, ...] = tuple(dict.fromkeys(FRAME_ENCODER_CONDITION.values()))
# A bundle's sampler defaults where its manifest names none: SamplerConfig's (the one place they are written)
DEFAULT_SAMPLER: dict[str, Any] = {k: getattr(SamplerConfig, k) for k in ("steps", "guidance", "guidance_power")}


@dataclass
class Component:
    """One model of the bundle: its type, its init-args, and its weights file (None for parameter-free ones)."""

    type: str
    config: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ModelManifest:
    """The parsed `manifest.json` of a bundle."""

    name: str
    spec: SegmentSpec
    components: dict[str, Component]
    condition: str = "efficientnet-lite0"
    schedule: DiffusionSchedule = field(default_factory=DiffusionSchedule)
    sampler_defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SAMPLER))
    random_weights: bool = False
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # components whose weights file is absent because ONNX graphs cover them (an ONNX-only copy of the bundle, as
    # the frozen desktop app ships): the ONNX backend runs it, the torch backend cannot
    weights_absent: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "name": self.name,
            "description": self.description,
            "random_weights": self.random_weights,
            "spec": self.spec.to_dict(),
            "spec_fingerprint": self.spec.fingerprint(),
            "schedule": self.schedule.to_dict(),
            "sampler_defaults": dict(self.sampler_defaults),
            "condition": self.condition,
            "components": {k: c.to_dict() for k, c in self.components.items()},
            "provenance": self.provenance,
            "metrics": self.metrics,
            "onnx": self.onnx,
        }


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(bundle_dir: str | os.PathLike[str], manifest: ModelManifest) -> Path:
    """Write `manifest.json` atomically (component sha256s must already be filled in)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
    return path


def _fail(bundle_dir: Path, what: str, todo: str) -> BundleError:
    return BundleError(f"model bundle {bundle_dir}: {what}. {todo}")


def load_manifest(bundle_dir: str | os.PathLike[str], *, verify_files: bool = True, onnx: bool = True
                  ) -> ModelManifest:
    """Read and validate a bundle's manifest; with `verify_files`, check every weight and graph file's sha256.

    onnx=False ignores the `onnx` section (neither validated nor returned): for the exporter, which replaces it.
    """
    bdir = Path(bundle_dir)
    reinstall = "Re-export or re-download the bundle, or pass another one with --bundle."
    if not bdir.exists():
        raise _fail(bdir, "the folder does not exist", "Check the path, or pass another bundle with --bundle.")
    if not bdir.is_dir():
        raise _fail(bdir, "is a file, not a bundle folder", "Pass the folder that holds manifest.json.")
    mpath = bdir / MANIFEST_NAME
    if not mpath.is_file():
        raise _fail(bdir, f"has no {MANIFEST_NAME}", "A bundle folder holds manifest.json beside its weights.")
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(bdir, f"{MANIFEST_NAME} is not valid JSON ({exc})", reinstall) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _fail(bdir, f"{MANIFEST_NAME} is not a {FORMAT} manifest", "Pass a bundle made by this project.")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _fail(bdir, f"format version {version!r} is newer than this engine's ({FORMAT_VERSION})",
                    "Update the application.")
    try:
        spec = SegmentSpec.from_dict(raw["spec"])
        schedule = DiffusionSchedule(**raw.get("schedule", {}))
        comps = {name: Component(**c) for name, c in raw["components"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(bdir, f"{MANIFEST_NAME} is malformed ({exc})", reinstall) from exc
    if raw.get("spec_fingerprint") not in (None, spec.fingerprint()):
        raise _fail(bdir, "the segment spec does not match its fingerprint (the manifest was edited)", reinstall)
    for name in REQUIRED_COMPONENTS:
        if name not in comps:
            raise _fail(bdir, f"the manifest names no '{name}' component", reinstall)
    condition = raw.get("condition", "efficientnet-lite0")
    if condition not in CONDITION_KINDS:
        raise _fail(bdir, f"unknown video condition kind {condition!r}", "Update the application.")
    if condition == "efficientnet-lite0" and "frame_encoder" not in comps:
        raise _fail(bdir, "the manifest names no 'frame_encoder' component", reinstall)
    fe_type = comps["frame_encoder"].type if "frame_encoder" in comps else None
    if fe_type in FRAME_ENCODER_CONDITION and FRAME_ENCODER_CONDITION[fe_type] != condition:
        raise _fail(bdir, f"its {fe_type!r} frame encoder makes {FRAME_ENCODER_CONDITION[fe_type]} features, but the "
                          f"denoiser is conditioned on {condition}", reinstall)
    onnx_section = (raw.get("onnx") or {}) if onnx else {}
    if onnx_section:
        _check_onnx(bdir, onnx_section, comps, verify_files=verify_files)
    graphs = onnx_section.get("graphs") if isinstance(onnx_section, dict) else None
    covered = {e.get("component") for e in (graphs or {}).values() if isinstance(e, dict)}
    absent: set[str] = set()
    for name, comp in comps.items():
        known = COMPONENT_TYPES.get(name)
        if known is None or comp.type not in known:
            raise _fail(bdir, f"component '{name}' has unknown type {comp.type!r}", "Update the application.")
        if comp.file is None:
            continue
        fpath = bdir / comp.file
        if not fpath.is_file():
            if name in covered:  # an ONNX-only copy: the graphs hold these weights
                absent.add(name)
                continue
            raise _fail(bdir, f"the {name} weights file {comp.file} is missing", reinstall)
        if verify_files and comp.sha256 and sha256_file(fpath) != comp.sha256:
            raise _fail(bdir, f"the {name} weights file {comp.file} is corrupt (sha256 mismatch)", reinstall)
    return ModelManifest(
        name=str(raw.get("name", bdir.name)),
        spec=spec,
        components=comps,
        condition=condition,
        schedule=schedule,
        sampler_defaults={**DEFAULT_SAMPLER, **raw.get("sampler_defaults", {})},
        random_weights=bool(raw.get("random_weights", False)),
        description=str(raw.get("description", "")),
        provenance=dict(raw.get("provenance", {})),
        metrics=dict(raw.get("metrics", {})),
        onnx=dict(onnx_section),
        format_version=version,
        weights_absent=frozenset(absent),
    )


def _check_onnx(bdir: Path, onnx: Any, comps: dict[str, Component], *, verify_files: bool) -> None:
    """Validate the manifest's `onnx` section: every graph the components need is named, present, intact (sha256)
    and has the tensor names of `engine.graphs`; so are its variants; the runtime precision is known."""
    reexport = "Re-export the bundle's ONNX graphs (engine.nn.export.export_onnx), or run it with --backend torch."
    graphs = onnx.get("graphs") if isinstance(onnx, dict) else None
    if not isinstance(graphs, dict):
        raise _fail(bdir, "the manifest's onnx section has no 'graphs' table", reexport)
    needed = graphs_for_components({name: c.type for name, c in comps.items()},
                                    {name: c.config for name, c in comps.items()})
    for io in needed:
        if io.name not in graphs:
            raise _fail(bdir, f"the manifest's onnx section names no '{io.name}' graph", reexport)
    for name, entry in graphs.items():
        comp = comps.get(entry.get("component")) if isinstance(entry, dict) else None
        io = graph_for(name, comp.type, comp.config) if comp is not None else None
        if io is None or not isinstance(entry, dict):
            raise _fail(bdir, f"the ONNX graph '{name}' is not one this engine knows (component type "
                              f"{comp.type if comp is not None else None!r})",
                        "Update the application.")
        try:
            names_in = [t["name"] for t in entry["inputs"]]
            names_out = [t["name"] for t in entry["outputs"]]
            files = [(name, entry["file"], entry.get("sha256"))]
            files += [(f"{name} ({v})", ve["file"], ve.get("sha256")) for v, ve in entry.get("variants", {}).items()]
        except (KeyError, TypeError, AttributeError) as exc:
            raise _fail(bdir, f"the ONNX graph '{name}' entry is malformed ({exc})", reexport) from exc
        if names_in != io.input_names or names_out != io.output_names:
            raise _fail(bdir, f"the ONNX graph '{name}' has tensors {names_in} -> {names_out}, this engine expects "
                              f"{io.input_names} -> {io.output_names}", reexport)
        for what, rel, digest in files:
            fpath = bdir / rel
            if not fpath.is_file():
                raise _fail(bdir, f"the ONNX graph file {rel} ({what}) is missing", reexport)
            if not digest:
                raise _fail(bdir, f"the ONNX graph file {rel} ({what}) has no sha256 in the manifest", reexport)
            if verify_files and sha256_file(fpath) != digest:
                raise _fail(bdir, f"the ONNX graph file {rel} ({what}) is corrupt (sha256 mismatch)", reexport)
    precision = (onnx.get("runtime") or {}).get("precision", "fp32")
    if precision not in PRECISIONS:
        raise _fail(bdir, f"the manifest's onnx runtime precision {precision!r} is unknown", "Update the application.")
