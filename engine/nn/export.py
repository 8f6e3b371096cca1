"""torch -> ONNX: export a bundle's networks as the graphs of `engine.graphs`, check each against torch, record it.

    export_onnx(bundle_dir)   # writes onnx/*.onnx into the bundle and the manifest's `onnx` section

For every graph the bundle needs (`engine.graphs.graphs_for_components`), the exporter
1. rebuilds the component from the bundle (init-args + safetensors, as the torch backend does),
2. wraps it so that its forward takes exactly the graph's inputs and returns its outputs (`EXPORTERS` below),
3. exports it with the TorchScript exporter at opset `engine.graphs.OPSET`, the batch axis (and the video-frame
   axis) dynamic, to a temporary file that is renamed into place (atomic),
4. runs the graph in onnxruntime and the wrapper in torch on fixed inputs (seeded, with another batch size than
   the trace used, so the dynamic axis is exercised) and records the max abs difference; above the graph's
   tolerance it raises `ExportError`,
5. optionally writes an int8 twin (dynamic quantisation of the MatMul/Gemm weights, onnxruntime's quantiser) for
   the graphs whose exporter allows it, checked the same way.
The manifest's `onnx` section then names each graph with its file, sha256, inputs and outputs (with the fixed
sizes filled in), parity and variants; it is written last and atomically.

Extension point: `EXPORTERS` is a table keyed by (graph name, component type). A new component type registers a
function with `@register_exporter(graph, type)` that returns an `ExportCase`, after adding its `GraphIO` to
`engine.graphs.GRAPHS`. Nothing else in this module changes.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from engine.atomic import atomic_replace
from engine.errors import ExportError
from engine.graphs import (
    GRAPH_DIR,
    MIN_OPSET,
    OPSET,
    GraphIO,
    components_without_graphs,
    graph_for,
    graphs_for_components,
)
from engine.manifest import ModelManifest, load_manifest, sha256_file, write_manifest
from engine.nn.bundle import load_component
from engine.spec import SegmentSpec

log = logging.getLogger(__name__)

#: Axis names of `engine.graphs` that stay dynamic in the exported graphs; every other axis is fixed.
DYNAMIC_AXES = ("batch", "frames")


# ---------------------------------------------------------------------------------------------------------------
# The table: (graph, component type) -> how to wrap the component and what to feed it
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ExportCase:
    """What the exporter needs for one graph.

    module:    forward(*graph inputs) -> graph outputs (a tensor or a tuple), in `GraphIO` order.
    example:   inputs to trace with.
    check:     fixed inputs for the torch-vs-onnxruntime parity check (use another batch size than `example`).
    tolerance: the largest max-abs difference accepted for the fp32 graph.
    int8:      whether an int8 (dynamically quantised) variant makes sense for this graph.
    int8_tolerance: the largest max-abs difference accepted for the int8 variant, relative to max |output|.
    """

    module: nn.Module
    example: tuple[Tensor, ...]
    check: tuple[Tensor, ...]
    tolerance: float = 1e-3
    int8: bool = False
    int8_tolerance: float = 0.25


ExporterFn = Callable[[nn.Module, SegmentSpec, torch.Generator], ExportCase]
EXPORTERS: dict[tuple[str, str], ExporterFn] = {}


def register_exporter(graph: str, component_type: str) -> Callable[[ExporterFn], ExporterFn]:
    """Register the exporter of graph `graph` for components of type `component_type`."""

    def deco(fn: ExporterFn) -> ExporterFn:
        if graph_for(graph, component_type) is None:
            raise ValueError(f"engine.graphs has no graph {graph!r} for component type {component_type!r}")
        EXPORTERS[(graph, component_type)] = fn
        return fn

    return deco


class _FrameEncoderGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 1, 4, 2, 3).float()  # (B, T, H, W, 3) uint8 -> (B, T, 3, H, W) float
        return self.model(x)  # (B, T, feature_dim)


class _ConditionGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video_features: Tensor, hits: Tensor | None = None) -> Tensor:
        # (B, D), or (B, 1 + lines, D) with temporal_condition or hits
        return self.model.encode_condition(video_features, hits)


class _DenoiserGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, latent: Tensor, timestep: Tensor, condition: Tensor) -> Tensor:
        out = self.model.forward_with_condition(latent, timestep, condition)  # (B, C_out, H, W)
        return self.model.split_eps(out)  # (B, C, H, W): the learned-variance half is dropped inside the graph


class _VAEDecoderGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, latent: Tensor) -> Tensor:
        return self.model.decode(latent)  # (B, H, W)


class _VocosGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        from engine.nn.vocoder import pad_mel_frames

        return self.model.net(pad_mel_frames(mel))  # 2 x (B, F, T + 1)


def _randn(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g)


@register_exporter("frame_encoder", "efficientnet-lite0-projection")
def _export_frame_encoder(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    def frames(b: int, t: int) -> Tensor:
        return torch.randint(0, 256, (b, t, 224, 224, 3), generator=g, dtype=torch.uint8)

    return ExportCase(_FrameEncoderGraph(model), (frames(1, 2),), (frames(2, 3),), tolerance=1e-4)


@register_exporter("condition", "mdsgen")
def _export_condition(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    cfg = model.config
    if cfg.hit_slots > 0:  # the hit-aware graph: random 0/1 tracks
        def hits(b: int) -> Tensor:
            return (torch.rand(b, *cfg.hit_shape, generator=g) < 0.1).float()

        return ExportCase(_ConditionGraph(model), (_randn(g, 1, cfg.num_frames, cfg.feature_dim), hits(1)),
                          (_randn(g, 3, cfg.num_frames, cfg.feature_dim), hits(3)), tolerance=1e-4)
    return ExportCase(_ConditionGraph(model), (_randn(g, 1, cfg.num_frames, cfg.feature_dim),),
                      (_randn(g, 3, cfg.num_frames, cfg.feature_dim),), tolerance=1e-4)


@register_exporter("denoiser", "mdsgen")
def _export_denoiser(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    cfg = model.config
    shape = (cfg.in_channels, *cfg.input_size)
    example = (_randn(g, 2, *shape), torch.tensor([10.0, 10.0]), _randn(g, 2, *cfg.condition_shape))
    check = (_randn(g, 3, *shape), torch.tensor([999.0, 500.5, 0.0]), _randn(g, 3, *cfg.condition_shape))
    return ExportCase(_DenoiserGraph(model), example, check, tolerance=1e-3, int8=True)


@register_exporter("vae_decoder", "autoencoder-kl")
def _export_vae_decoder(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    return ExportCase(_VAEDecoderGraph(model), (_randn(g, 1, *spec.latent_shape),),
                      (_randn(g, 2, *spec.latent_shape),), tolerance=1e-3)


@register_exporter("vocoder", "vocos")
def _export_vocos(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    n_mels = model.config.n_mels
    return ExportCase(_VocosGraph(model), (torch.rand(1, n_mels, spec.mel_frames, generator=g),),
                      (torch.rand(2, n_mels, spec.mel_frames, generator=g),), tolerance=1e-3)


class _CAVPGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 1, 4, 2, 3).float() / 255.0  # (B, T, H, W, 3) uint8 -> (B, T, 3, H, W) in [0, 1]
        return self.model(x)  # (B, T, 512): one clip; the runtime chunks frames into clips of chunk_frames


class _HiFiGANGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, mel: Tensor) -> Tensor:
        return self.model(mel)  # (B, samples)


@register_exporter("frame_encoder", "cavp-resnet3d50")
def _export_cavp(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    size = model.config.image_size

    def frames(b: int, t: int) -> Tensor:
        return torch.randint(0, 256, (b, t, size, size, 3), generator=g, dtype=torch.uint8)

    # features are unit vectors; float reassociation over 50 conv layers stays far below 1e-4
    return ExportCase(_CAVPGraph(model), (frames(1, 2),), (frames(2, 3),), tolerance=1e-4)


@register_exporter("vocoder", "hifigan")
def _export_hifigan(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    n_mels = model.config.model_in_dim

    def mel(b: int) -> Tensor:  # natural-log mels in AudioLDM's range (about -11.5 .. 2)
        return torch.rand(b, n_mels, spec.mel_frames, generator=g) * 10.0 - 9.0

    return ExportCase(_HiFiGANGraph(model), (mel(1),), (mel(2),), tolerance=1e-3)


@register_exporter("hit_detector", "hit-detector-tcn")
def _export_hit_detector(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    cfg = model.config

    def motion(b: int) -> Tensor:  # non-negative like the real features (log1p of scaled differences)
        return torch.rand(b, cfg.slots, cfg.in_channels, generator=g) * 3.0

    return ExportCase(model, (motion(1),), (motion(3),), tolerance=1e-4)


@register_exporter("bwe", "bwe-conv1d")
def _export_bwe(model: nn.Module, spec: SegmentSpec, g: torch.Generator) -> ExportCase:
    cfg = model.config

    def low_log(b: int, frames: int) -> Tensor:  # natural-log magnitudes in a take's range (floor -11.5 .. 3)
        return torch.rand(b, cfg.low_bins, frames, generator=g) * 14.0 - 11.0

    # the STFT frame count follows the take's length: the dynamic axis is checked at another length than traced
    return ExportCase(model, (low_log(1, 96),), (low_log(2, 1538),), tolerance=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# Export, check, record
# ---------------------------------------------------------------------------------------------------------------
def _dynamic_axes(io: GraphIO) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for t in (*io.inputs, *io.outputs):
        dyn = {i: a for i, a in enumerate(t.axes) if a in DYNAMIC_AXES}
        if dyn:
            axes[t.name] = dyn
    return axes


def _torch_export(case: ExportCase, io: GraphIO, path: Path, opset: int) -> None:
    with warnings.catch_warnings():
        # the TorchScript exporter warns about traced Python shape checks and about its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            case.module, case.example, str(path), dynamo=False, opset_version=opset,
            input_names=io.input_names, output_names=io.output_names, dynamic_axes=_dynamic_axes(io),
            do_constant_folding=True,
        )


def _set_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))


def _quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)


def _tensor_shapes(path: Path, io: GraphIO) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The graph's inputs/outputs as recorded in the manifest: name, dtype and shape (ints or axis names)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    found = {v.name: v for v in (*model.graph.input, *model.graph.output)}

    def entry(t: Any) -> dict[str, Any]:
        if t.name not in found:
            raise ExportError(f"the exported {io.name} graph has no tensor {t.name!r}; the exporter is broken")
        dims = found[t.name].type.tensor_type.shape.dim
        shape = [d.dim_param or d.dim_value for d in dims]
        # name the dynamic axes after engine.graphs, not after the exporter's generated names
        shape = [t.axes[i] if i < len(t.axes) and t.axes[i] in DYNAMIC_AXES else s for i, s in enumerate(shape)]
        return {"name": t.name, "dtype": t.dtype, "shape": shape}

    return [entry(t) for t in io.inputs], [entry(t) for t in io.outputs]


def _run_ort(path: Path, io: GraphIO, inputs: tuple[Tensor, ...]) -> list[np.ndarray]:
    import onnxruntime as ort

    from engine.backends.onnx_backend import session_options

    # the runtime's own settings, so the check sees the graph as the engine optimises it
    sess = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    feeds = {name: t.numpy() for name, t in zip(io.input_names, inputs)}
    return sess.run(io.output_names, feeds)


def _parity(case: ExportCase, io: GraphIO, path: Path) -> dict[str, Any]:
    """Run torch and onnxruntime on the check inputs: max abs difference and max |output| over all outputs."""
    with torch.inference_mode():
        ref = case.module(*case.check)
    refs = [r.float().numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    got = _run_ort(path, io, case.check)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(refs, got))
    scale = max(float(np.max(np.abs(a))) for a in refs)
    return {"max_abs_diff": diff, "max_abs_output": scale, "batch": int(case.check[0].shape[0])}


def export_graph(
    io: GraphIO, module: nn.Module, spec: SegmentSpec, bundle_dir: Path, *, component_type: str,
    opset: int = OPSET, precisions: tuple[str, ...] = ("fp32", "int8"), check: bool = True, seed: int = 0,
    meta: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Export one graph (and its int8 variant when allowed) into `bundle_dir`; return its manifest entry."""
    fn = EXPORTERS.get((io.name, component_type))
    if fn is None:
        raise ExportError(
            f"no exporter for graph {io.name!r} from a {component_type!r} component; register one in "
            "engine.nn.export.EXPORTERS"
        )
    module.eval()
    case = fn(module, spec, torch.Generator().manual_seed(seed))
    case.module.eval()
    final = bundle_dir / io.filename
    with atomic_replace(final) as tmp:
        _torch_export(case, io, tmp, opset)
        _set_metadata(tmp, {"graph": io.name, "component_type": component_type, **(meta or {})})
        parity = _parity(case, io, tmp) if check else None
    inputs, outputs = _tensor_shapes(final, io)
    entry: dict[str, Any] = {
        "file": io.filename, "sha256": sha256_file(final), "component": io.component,
        "component_type": component_type, "inputs": inputs, "outputs": outputs, "doc": io.doc,
    }
    if parity is not None:
        parity["tolerance"] = case.tolerance
        entry["parity"] = parity
        log.info("exported %s: max |torch - onnx| = %.3g (tolerance %.3g)", io.name, parity["max_abs_diff"],
                 case.tolerance)
        if not parity["max_abs_diff"] <= case.tolerance:
            raise ExportError(
                f"the exported {io.name} graph differs from torch by {parity['max_abs_diff']:.3g} "
                f"(> {case.tolerance:g}); an operator exports wrongly at opset {opset}"
            )
    variants: dict[str, Any] = {}
    if "int8" in precisions and case.int8:
        vfile = io.variant_filename("int8")
        with atomic_replace(bundle_dir / vfile) as tmp:
            _quantize_int8(final, tmp)
            vparity = _parity(case, io, tmp) if check else None
        variant: dict[str, Any] = {"file": vfile, "sha256": sha256_file(bundle_dir / vfile),
                                   "method": "onnxruntime dynamic quantisation, int8 MatMul weights"}
        if vparity is not None:
            vparity["relative_tolerance"] = case.int8_tolerance
            variant["parity"] = vparity
            rel = vparity["max_abs_diff"] / max(vparity["max_abs_output"], 1e-12)
            log.info("int8 %s: max |torch - onnx| = %.3g (%.1f %% of max |output|)", io.name,
                     vparity["max_abs_diff"], 100 * rel)
            if not rel <= case.int8_tolerance:
                raise ExportError(f"the int8 {io.name} graph differs from torch by {100 * rel:.1f} % of its "
                                  f"output range (> {100 * case.int8_tolerance:g} %); export it in fp32 only")
        variants["int8"] = variant
    entry["variants"] = variants
    return entry


def export_onnx(
    bundle_dir: str | os.PathLike[str], *, opset: int = OPSET, precisions: tuple[str, ...] = ("fp32", "int8"),
    check: bool = True, default_precision: str | None = None, seed: int = 0,
) -> ModelManifest:
    """Export every network of a bundle to ONNX graphs inside it and record them in its manifest.

    precisions: which variants to write ("fp32" always; "int8" where the graph's exporter allows it).
    default_precision: the denoiser precision the runtime uses unless told otherwise (`onnx.runtime`); default:
        "int8" when that variant was written (the measured winner on AVX-512 VNNI CPUs, docs/benchmarks.md),
        else "fp32".
    Returns the re-read (validated) manifest.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: the engine's graphs need opset {MIN_OPSET} or newer")
    bdir = Path(bundle_dir)
    manifest = load_manifest(bdir, onnx=False)  # the old graphs (if any) are replaced, broken or not
    types = {name: c.type for name, c in manifest.components.items()}
    missing = components_without_graphs(types)
    if missing:
        raise ExportError(
            "no ONNX graph is defined for " + ", ".join(f"the {n} of type {t!r}" for n, t in missing)
            + ": add its GraphIO to engine.graphs.GRAPHS and an exporter with engine.nn.export.register_exporter"
        )
    ios = graphs_for_components(types, {name: c.config for name, c in manifest.components.items()})
    meta = {"bundle": manifest.name, "spec_fingerprint": manifest.spec.fingerprint()}
    graphs: dict[str, Any] = {}
    modules: dict[str, nn.Module] = {}
    for io in ios:
        ctype = manifest.components[io.component].type
        if io.component not in modules:
            modules[io.component] = load_component(bdir, manifest, io.component)
        graphs[io.name] = export_graph(io, modules[io.component], manifest.spec, bdir, component_type=ctype,
                                       opset=opset, precisions=precisions, check=check, seed=seed, meta=meta)
    has_int8 = any("int8" in g["variants"] for g in graphs.values())
    manifest.onnx = {
        "opset": opset,
        "exporter": f"torch.onnx TorchScript exporter, torch {torch.__version__}",
        "graph_dir": GRAPH_DIR,
        "graphs": graphs,
        "runtime": {"precision": default_precision or ("int8" if has_int8 else "fp32")},
    }
    write_manifest(bdir, manifest)
    return load_manifest(bdir)
