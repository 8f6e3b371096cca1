"""Backends behind one factory; each is imported lazily so that a missing package gives a clear error."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from engine.backends.base import Backend, BackendKind
from engine.errors import BackendUnavailableError
from engine.graphs import components_without_graphs
from engine.manifest import ModelManifest

log = logging.getLogger(__name__)

__all__ = ["Backend", "BackendKind", "available_backends", "get_backend"]


def _has(module: str) -> bool:
    """Whether `module` can be found (a finder that refuses it, as a torch-free deployment may have, means no)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_backends(manifest: ModelManifest | None = None) -> list[BackendKind]:
    """The backends that can run here (and, given a manifest, that the bundle supports)."""
    kinds = []
    if _has("onnxruntime") and (manifest is None or (
            manifest.onnx.get("graphs")
            and not components_without_graphs({n: c.type for n, c in manifest.components.items()}))):
        kinds.append(BackendKind.ONNX)
    if _has("torch") and _has("diffusers") and (manifest is None or not manifest.weights_absent):
        kinds.append(BackendKind.TORCH)
    return kinds


def get_backend(
    kind: BackendKind | str,
    bundle_dir: str | Path,
    manifest: ModelManifest,
    *,
    device: str = "auto",
    threads: int | None = None,
    **options: Any,
) -> Backend:
    """Build the backend `kind` for a bundle. AUTO prefers ONNX Runtime when the bundle has graphs.

    `options` are backend-specific (ONNX: precision, optimization); the torch backend takes none.
    """
    kind = BackendKind(kind)
    if kind is BackendKind.AUTO:
        kinds = available_backends(manifest)
        if not kinds:
            raise BackendUnavailableError(
                "no inference backend can run this bundle: install onnxruntime (the bundle needs ONNX graphs) "
                "or the torch extra (pip install 'mdsgen-foley[torch]')"
            )
        kind = kinds[0]
    if kind is BackendKind.TORCH:
        if manifest.weights_absent:
            raise BackendUnavailableError(
                f"the bundle in {bundle_dir} is ONNX-only (no weights for {', '.join(sorted(manifest.weights_absent))}"
                "): run it with --backend onnx, or use the full bundle for torch"
            )
        missing = [m for m in ("torch", "diffusers", "safetensors") if not _has(m)]
        if missing:
            raise BackendUnavailableError(
                f"the torch backend needs {', '.join(missing)}: pip install 'mdsgen-foley[torch]'"
            )
        from engine.backends.torch_backend import TorchBackend

        if options:
            raise BackendUnavailableError(f"the torch backend takes no options {sorted(options)}")
        backend: Backend = TorchBackend(bundle_dir, manifest, device=device, threads=threads)
    elif kind is BackendKind.ONNX:
        if not _has("onnxruntime"):
            raise BackendUnavailableError(
                "the ONNX backend needs onnxruntime: pip install onnxruntime (or 'mdsgen-foley[cuda]' for CUDA)"
            )
        if not manifest.onnx.get("graphs"):
            raise BackendUnavailableError(
                f"bundle {bundle_dir} has no ONNX graphs: export them with engine.nn.export.export_onnx (needs the "
                "torch extra), or run it with --backend torch"
            )
        from engine.backends.onnx_backend import OnnxBackend

        backend = OnnxBackend(bundle_dir, manifest, device=device, threads=threads, **options)
    else:  # pragma: no cover - BackendKind has no other member
        raise BackendUnavailableError(f"backend {kind.value!r} is not available in this build")
    log.info("backend %s on %s (%s)", backend.name, backend.device, ", ".join(backend.providers_in_use))
    return backend
