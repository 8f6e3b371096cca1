"""ONNX Runtime backend: runs a bundle's exported graphs with onnxruntime and numpy only (no torch).

Providers: CUDA when it is asked for (or `device="auto"` and the onnxruntime-gpu build is installed), CPU always
appended as the fallback. What onnxruntime actually runs on is read back from the sessions, logged, and kept in
`providers_in_use`; when CUDA was wanted but does not run, `fallback_reason` says why and a warning is logged.

Sessions are configured, not left to defaults: intra-op threads = `threads` or the CPU cores this process may use,
one inter-op thread, sequential execution, the graph optimisation level of `optimization`, no CPU memory arena
(`memory_arena`), and worker threads that sleep instead of spinning after a run
(`session.intra_op.allow_spinning = 0`; spinning threads slowed the numpy and torch work that follows a run here).
The choices and their measurements are in docs/benchmarks.md.

The denoiser runs in the precision the bundle names in `onnx.runtime.precision` (int8 when the exporter wrote that
variant: measured fastest on this project's AVX-512 VNNI CPUs), or as asked; on CUDA it is always fp32.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio import istft as audio_istft
from engine.backends.base import cpu_threads
from engine.errors import BackendUnavailableError, BundleError, InvalidRequestError
from engine.graphs import PRECISIONS, GraphIO, components_without_graphs, graphs_for_components
from engine.hits import hit_shape
from engine.manifest import ModelManifest

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

#: Graph optimisation levels by name (`optimization=`); "all" was measured fastest (docs/benchmarks.md).
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
DEFAULT_OPTIMIZATION = "all"


@dataclass(frozen=True)
class OnnxRuntimeInfo:
    """How an `OnnxBackend` runs (`OnnxBackend.describe`): the providers in use and the session settings.
    `to_dict` gives it as a JSON-ready dict (same keys, in this order; the providers as a list)."""

    providers: tuple[str, ...]
    fallback_reason: str | None
    precision: str
    threads: int
    optimization: str
    memory_arena: bool

    def to_dict(self) -> dict[str, Any]:
        return {"providers": list(self.providers), "fallback_reason": self.fallback_reason,
                "precision": self.precision, "threads": self.threads, "optimization": self.optimization,
                "memory_arena": self.memory_arena}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "the ONNX backend needs onnxruntime: pip install onnxruntime (or onnxruntime-gpu for CUDA)"
        ) from exc
    return onnxruntime


def choose_providers(device: str, available: list[str]) -> tuple[list[Any], str | None]:
    """The provider list to ask onnxruntime for, and why CUDA was not asked for when it was wanted.

    device: "auto" (CUDA if this onnxruntime build has it, else CPU), "cpu", "cuda" or "cuda:N".
    available: `onnxruntime.get_available_providers()`.
    """
    device = device.lower()
    if device == "cpu":
        return [CPU], None
    if device == "auto":
        return ([CUDA, CPU], None) if CUDA in available else ([CPU], None)
    if device == "cuda" or device.startswith("cuda:"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if CUDA not in available:
            return [CPU], (
                f"CUDA was asked for, but this onnxruntime build has no {CUDA} (it has {', '.join(available)}); "
                "install the GPU build: pip uninstall onnxruntime && pip install 'mdsgen-foley[cuda]'"
            )
        return [(CUDA, {"device_id": index}), CPU], None
    raise InvalidRequestError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")


def session_options(*, threads: int | None = None, optimization: str = DEFAULT_OPTIMIZATION,
                    memory_arena: bool = False) -> Any:
    """onnxruntime SessionOptions with every speed- and memory-relevant setting made explicit.

    memory_arena: onnxruntime's CPU arena keeps every block it ever allocated; with seven graphs of very different
    activation sizes that more than doubled a generation's peak memory here and was not faster (measured in
    docs/benchmarks.md), so it is off unless asked for.
    """
    ort = _ort()
    if optimization not in OPTIMIZATION_LEVELS:
        raise InvalidRequestError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, got {optimization!r}")
    level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = int(threads) if threads else cpu_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.enable_cpu_mem_arena = bool(memory_arena)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only: provider fallbacks are reported by this module, in words
    return so


def istft(log_mag: np.ndarray, phase: np.ndarray, *, n_fft: int, hop_length: int, length: int) -> np.ndarray:
    """Inverse STFT of (B, n_fft/2+1, T) log-magnitude and phase -> (B, length) float32 (`engine.audio.istft`)."""
    spec = np.exp(log_mag.astype(np.float32)) * np.exp(1j * phase.astype(np.float32))  # (B, F, T) complex
    return audio_istft(spec, n_fft=n_fft, hop_length=hop_length, length=length)


class OnnxBackend:
    """The `Backend` protocol over onnxruntime sessions, one per graph of the bundle."""

    name = "onnx"

    def __init__(
        self,
        bundle_dir: str | Path,
        manifest: ModelManifest,
        *,
        device: str = "auto",
        threads: int | None = None,
        precision: str = "auto",
        optimization: str = DEFAULT_OPTIMIZATION,
        memory_arena: bool = False,
    ) -> None:
        ort = _ort()
        self.manifest = manifest
        self.bundle_dir = Path(bundle_dir)
        graphs_meta = manifest.onnx.get("graphs") or {}
        if not graphs_meta:
            raise BackendUnavailableError(
                f"bundle {bundle_dir} has no ONNX graphs: export them (engine.nn.export.export_onnx) or use "
                "--backend torch"
            )
        missing = components_without_graphs({n: c.type for n, c in manifest.components.items()})
        if missing:
            raise BackendUnavailableError(
                "this engine has no ONNX graph for " + ", ".join(f"the {n} of type {t!r}" for n, t in missing)
                + "; run the bundle with --backend torch"
            )
        providers, reason = choose_providers(device, ort.get_available_providers())
        wants_cuda = any((p[0] if isinstance(p, tuple) else p) == CUDA for p in providers) or reason is not None
        self.precision = self._pick_precision(precision, on_cuda=wants_cuda and reason is None)
        self.optimization = optimization
        self.threads = int(threads) if threads else cpu_threads()
        self.memory_arena = memory_arena
        so = session_options(threads=self.threads, optimization=optimization, memory_arena=memory_arena)
        ios = graphs_for_components({n: c.type for n, c in manifest.components.items()},
                                    {n: c.config for n, c in manifest.components.items()})
        self.sessions: dict[str, Any] = {}
        self.io: dict[str, GraphIO] = {}
        ort_notes: list[str] = []
        for io in ios:
            meta = graphs_meta.get(io.name)
            if meta is None:
                raise BundleError(f"bundle {bundle_dir} has no ONNX graph {io.name!r}; re-export its ONNX graphs")
            rel = meta["file"]
            if io.name == "denoiser" and self.precision != "fp32":
                rel = meta["variants"][self.precision]["file"]
            path = self.bundle_dir / rel
            try:
                with warnings.catch_warnings(record=True) as caught:  # onnxruntime warns when it drops a provider
                    warnings.simplefilter("always")
                    sess = ort.InferenceSession(str(path), so, providers=providers)
                ort_notes += [str(w.message) for w in caught if str(w.message) not in ort_notes]
            except Exception as exc:  # onnxruntime raises its own (non-exported) exception types
                raise BundleError(f"onnxruntime cannot load the {io.name} graph {path} ({exc}); re-export the "
                                  "bundle's ONNX graphs") from exc
            names_in = [i.name for i in sess.get_inputs()]
            names_out = [o.name for o in sess.get_outputs()]
            if names_in != io.input_names or names_out != io.output_names:
                raise BundleError(f"the {io.name} graph {path} has inputs {names_in} and outputs {names_out}; this "
                                  f"engine expects {io.input_names} -> {io.output_names}. Re-export the bundle.")
            self.sessions[io.name], self.io[io.name] = sess, io
        used: list[str] = []
        for sess in self.sessions.values():
            used += [p for p in sess.get_providers() if p not in used]
        self.providers_in_use = used
        if wants_cuda and reason is None and CUDA not in used:
            reason = (f"CUDA was asked for and this onnxruntime build has {CUDA}, but it did not start (no GPU, or "
                      "the CUDA/cuDNN libraries onnxruntime-gpu needs are missing); running on the CPU"
                      + "".join(f". onnxruntime: {n}" for n in ort_notes))
        self.fallback_reason = reason
        self.device = "cuda" if CUDA in used else "cpu"
        if reason:
            log.warning("onnxruntime falls back to the CPU: %s", reason)
        log.info("onnxruntime %s runs on %s (denoiser %s, %d intra-op threads, optimisation %s)",
                 ort.__version__, ", ".join(used), self.precision, self.threads, optimization)
        self.has_frame_encoder = "frame_encoder" in self.sessions
        self.has_neural_vocoder = "vocoder" in self.sessions
        self.has_hit_detector = "hit_detector" in self.sessions
        self.has_bwe = "bwe" in self.sessions
        self.spec = manifest.spec

    def _pick_precision(self, precision: str, *, on_cuda: bool) -> str:
        if precision not in ("auto", *PRECISIONS):
            raise InvalidRequestError(f"precision must be auto or one of {', '.join(PRECISIONS)}, got {precision!r}")
        variants = (self.manifest.onnx.get("graphs", {}).get("denoiser", {}) or {}).get("variants", {})
        if precision == "auto":
            if on_cuda:
                return "fp32"  # int8 MatMulInteger has no fast CUDA kernels
            precision = str(self.manifest.onnx.get("runtime", {}).get("precision", "fp32"))
        if precision != "fp32" and precision not in variants:
            log.warning("the bundle has no %s denoiser graph; using fp32", precision)
            return "fp32"
        return precision

    # ---- running -------------------------------------------------------------------------------------------
    def _run(self, graph: str, *arrays: np.ndarray) -> list[np.ndarray]:
        io = self.io[graph]
        feeds = {t.name: np.ascontiguousarray(a, dtype=t.dtype) for t, a in zip(io.inputs, arrays)}
        return self.sessions[graph].run(io.output_names, feeds)

    def describe(self) -> OnnxRuntimeInfo:
        return OnnxRuntimeInfo(tuple(self.providers_in_use), self.fallback_reason, self.precision, self.threads,
                               self.optimization, self.memory_arena)

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        assert self.has_frame_encoder, "bundle has no frame encoder graph"
        chunk = int(self.manifest.components["frame_encoder"].config.get("chunk_frames", 0))
        if chunk > 0:  # CAVP: every chunk of `chunk` frames is one clip, as the encoder was trained and used
            parts = [self._run("frame_encoder", frames[:, i : i + chunk])[0] for i in range(0, frames.shape[1], chunk)]
            return np.concatenate(parts, axis=1)
        return self._run("frame_encoder", frames)[0]

    def encode_conditions(self, features: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
        if len(self.io["condition"].inputs) == 2:  # a hit-aware denoiser
            if hits is None:
                cfg = self.manifest.components["denoiser"].config
                hits = np.zeros((len(features), *hit_shape(cfg)), np.float32)
            return self._run("condition", features, hits)[0]
        return self._run("condition", features)[0]

    def denoise(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._run("denoiser", x, t, y)[0]

    def decode_latents(self, z: np.ndarray) -> np.ndarray:
        return self._run("vae_decoder", z)[0]

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        assert self.has_neural_vocoder, "bundle has no vocoder graph"
        io = self.io["vocoder"]
        outs = self._run("vocoder", mel)
        if io.output_names == ["waveform"]:  # HiFi-GAN: the graph makes the waveform itself
            return outs[0]
        if io.output_names == ["log_magnitude", "phase"]:  # Vocos: network only, inverse STFT here
            cfg = self.manifest.components["vocoder"].config
            n_fft, hop = int(cfg.get("n_fft", self.spec.n_fft)), int(cfg.get("hop_length", self.spec.hop_length))
            return istft(outs[0], outs[1], n_fft=n_fft, hop_length=hop, length=mel.shape[-1] * hop)
        raise BundleError(f"the vocoder graph's outputs {io.output_names} are not known to this engine")

    def hit_logits(self, motion: np.ndarray) -> np.ndarray:
        assert self.has_hit_detector, "bundle has no hit detector graph"
        return self._run("hit_detector", motion)[0]

    def predict_high_band(self, low_log: np.ndarray) -> np.ndarray:
        assert self.has_bwe, "bundle has no bandwidth-extension graph"
        return self._run("bwe", low_log)[0]

    def close(self) -> None:
        self.sessions.clear()
