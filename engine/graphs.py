"""The exported ONNX graphs: their names, tensor names, dtypes and axes. Shared by the exporter and the runtime.

This module is the one place where model I/O names live. `engine.nn.export` writes graphs with exactly these
names (and records them in the manifest's `onnx` section); `engine.backends.onnx_backend` feeds and reads them;
`engine.manifest` refuses a bundle whose graphs disagree. No torch here.

A graph is exported from one bundle component, and which graphs a component gets depends on its type: the
component-type registry `engine.components.TYPES` names them (`ComponentType.graphs`), and `GraphIO.types` reads it.
A new component type (an AudioLDM HiFi-GAN vocoder, a CAVP video encoder) adds a `GraphIO` to `GRAPHS` below, an
exporter in `engine.nn.export.EXPORTERS` keyed by (graph, component type), its entry in `engine.components` and,
if its outputs are new, a branch in the ONNX backend (e.g. a vocoder graph with a `waveform` output needs no iSTFT).

Axes are ints (fixed by the bundle's spec or config; the exporter records the numbers) or names (dynamic):
`batch` is the only dynamic axis of every graph, plus `frames` (video frames on the video graphs, STFT frames on the
bandwidth extension's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The ONNX opset the exporter writes. 17 is the minimum (LayerNormalization is one op); 20 adds a Gelu operator
#: (tanh approximation) that replaces an 8-op expansion in every denoiser block: measured faster, see
#: docs/benchmarks.md ("Denoiser options", opset column).
OPSET = 20
MIN_OPSET = 17

#: Where the graphs live inside a bundle folder.
GRAPH_DIR = "onnx"

#: Precisions a graph may be stored in. "fp32" is the exported graph itself; "int8" is its dynamically quantised
#: twin (int8 weights, uint8 activations quantised per call, VNNI GEMMs on x86) stored as a variant beside it.
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class TensorIO:
    """One input or output of a graph: its name, numpy dtype and axis names (symbolic; see the module doc)."""

    name: str
    dtype: str
    axes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "axes": list(self.axes)}


@dataclass(frozen=True)
class GraphIO:
    """One exported graph: manifest key `name`, made from bundle component `component` of one of `types` (the
    component types whose `engine.components` entry lists it)."""

    name: str
    component: str
    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]
    doc: str
    #: A config key of the component that selects this entry: the graph serves components whose config has it
    #: truthy; an entry without it serves the others (two entries of one name and type, e.g. the hit-aware
    #: condition graph beside the plain one).
    config_flag: str = ""

    def serves(self, component_type: str, config: Mapping[str, Any] | None) -> bool:
        if component_type not in self.types:
            return False
        flagged = bool(self.config_flag) and bool((config or {}).get(self.config_flag))
        has_flagged_twin = any(g.config_flag and g.name == self.name and component_type in g.types
                               and bool((config or {}).get(g.config_flag)) for g in GRAPHS)
        return flagged if self.config_flag else not has_flagged_twin

    @property
    def types(self) -> tuple[str, ...]:
        """The component types this graph is exported from (`engine.components.TYPES`, in registry order)."""
        from engine.components import TYPES  # here: engine.components imports this module

        return tuple(t.name for t in TYPES.values() if any(x is self for x in t.graphs))

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def filename(self) -> str:
        return f"{GRAPH_DIR}/{self.name}.onnx"

    def variant_filename(self, precision: str) -> str:
        return self.filename if precision == "fp32" else f"{GRAPH_DIR}/{self.name}.{precision}.onnx"


F32, U8 = "float32", "uint8"

FRAME_ENCODER = GraphIO(
    name="frame_encoder",
    component="frame_encoder",
    inputs=(TensorIO("frames", U8, ("batch", "frames", "height", "width", "rgb")),),
    outputs=(TensorIO("video_features", F32, ("batch", "frames", "feature_dim")),),
    doc="RGB frames 0..255 -> EfficientNet-Lite0 pooled features -> projection, L2-normalised per frame",
)

CONDITION = GraphIO(
    name="condition",
    component="denoiser",
    inputs=(TensorIO("video_features", F32, ("batch", "frames", "feature_dim")),),
    outputs=(TensorIO("condition", F32, ("batch", "hidden")),),
    doc="MDSGen's per-frame Linear/GELU/LayerNorm and Reducer Conv1d: the step-invariant condition y; with the "
        "denoiser's temporal_condition it is (batch, 1 + time lines, hidden): the recorded shape says which",
)

CONDITION_HITS = GraphIO(
    name="condition",
    component="denoiser",
    inputs=(TensorIO("video_features", F32, ("batch", "frames", "feature_dim")),
            TensorIO("hits", F32, ("batch", "time_lines", "hit_slots"))),
    outputs=(TensorIO("condition", F32, ("batch", "lines_plus_one", "hidden")),),
    doc="the condition graph of a hit-aware denoiser (config hit_slots > 0): the video features and the hit track "
        "(engine.hits, 0/1 per slot) -> (batch, 1 + time lines, hidden)",
    config_flag="hit_slots",
)

DENOISER = GraphIO(
    name="denoiser",
    component="denoiser",
    inputs=(
        TensorIO("latent", F32, ("batch", "channels", "height", "width")),
        TensorIO("timestep", F32, ("batch",)),
        TensorIO("condition", F32, ("batch", "hidden")),
    ),
    outputs=(TensorIO("eps", F32, ("batch", "channels", "height", "width")),),
    doc="one denoiser step; the batch holds every candidate and the guidance pair (null condition = zeros)",
)

VAE_DECODER = GraphIO(
    name="vae_decoder",
    component="vae",
    inputs=(TensorIO("latent", F32, ("batch", "channels", "height", "width")),),
    outputs=(TensorIO("mel_image", F32, ("batch", "mel_height", "mel_width")),),
    doc="scaled latent -> mel image in the spec's layout (channel selection and latent scale inside)",
)

VOCODER_VOCOS = GraphIO(
    name="vocoder",
    component="vocoder",
    inputs=(TensorIO("mel", F32, ("batch", "n_mels", "mel_frames")),),
    outputs=(
        TensorIO("log_magnitude", F32, ("batch", "bins", "stft_frames")),
        TensorIO("phase", F32, ("batch", "bins", "stft_frames")),
    ),
    doc="Vocos network only (mel -> log-magnitude and phase); the inverse STFT runs in numpy after it",
)

FRAME_ENCODER_CAVP = GraphIO(
    name="frame_encoder",
    component="frame_encoder",
    inputs=(TensorIO("frames", U8, ("batch", "frames", "height", "width", "rgb")),),
    outputs=(TensorIO("video_features", F32, ("batch", "frames", "feature_dim")),),
    doc="CAVP (Diff-Foley): RGB frames 0..255 -> [0, 1] -> SlowOnly ResNet3d-50 -> Linear 2048->512, L2-normalised "
        "per frame; ONE clip per call: the runtime feeds chunks of the component's chunk_frames (40)",
)

VOCODER_HIFIGAN = GraphIO(
    name="vocoder",
    component="vocoder",
    inputs=(TensorIO("mel", F32, ("batch", "n_mels", "mel_frames")),),
    outputs=(TensorIO("waveform", F32, ("batch", "samples")),),
    doc="AudioLDM HiFi-GAN: natural-log mel -> waveform (a little longer than mel_frames * hop; the engine trims)",
)

HIT_DETECTOR = GraphIO(
    name="hit_detector",
    component="hit_detector",
    inputs=(TensorIO("motion", F32, ("batch", "slots", "motion_channels")),),
    outputs=(TensorIO("onset_logits", F32, ("batch", "slots")),),
    doc="the optional hit detector: a segment's motion features (engine.motion, one row per 32 ms slot) -> one onset "
        "logit per slot",
)

BWE = GraphIO(
    name="bwe",
    component="bwe",
    inputs=(TensorIO("low_log", F32, ("batch", "low_bins", "frames")),),
    outputs=(TensorIO("high_log", F32, ("batch", "high_bins", "frames")),),
    doc="the optional bandwidth extension (engine.bwe): log magnitudes of a 48 kHz STFT below 7.5 kHz -> those above; "
        "the STFT, phase and inverse STFT run in numpy around it",
)

#: Every graph this engine knows. Several entries may share a `name` if they serve different component types.
GRAPHS: tuple[GraphIO, ...] = (FRAME_ENCODER, CONDITION, CONDITION_HITS, DENOISER, VAE_DECODER, VOCODER_VOCOS,
                               FRAME_ENCODER_CAVP, VOCODER_HIFIGAN, HIT_DETECTOR, BWE)


def graph_for(name: str, component_type: str, config: Mapping[str, Any] | None = None) -> GraphIO | None:
    """The graph `name` as exported from a component of type `component_type` with `config` (None if none)."""
    for g in GRAPHS:
        if g.name == name and g.serves(component_type, config):
            return g
    return None


def graphs_for_components(components: Mapping[str, str],
                          configs: Mapping[str, Mapping[str, Any]] | None = None) -> list[GraphIO]:
    """The graphs a bundle needs for its components ({component name: type}, and their configs where an entry
    depends on one, `GraphIO.config_flag`); parameter-free ones need none."""
    out = []
    for g in GRAPHS:
        ctype = components.get(g.component)
        if ctype is not None and g.serves(ctype, (configs or {}).get(g.component)):
            out.append(g)
    return out


def parameter_free_types() -> tuple[str, ...]:
    """Component types that need no graph (computed in numpy by the runtime): those without weights in
    `engine.components.TYPES` ("griffin-lim")."""
    from engine.components import TYPES

    return tuple(t.name for t in TYPES.values() if not t.has_weights)


def components_without_graphs(components: dict[str, str]) -> list[tuple[str, str]]:
    """(name, type) of the components ({name: type}) that no graph of `GRAPHS` covers: a bundle holding one cannot
    run on ONNX Runtime until a `GraphIO` and an exporter for that type are added."""
    free = parameter_free_types()
    covered = {(g.component, t) for g in GRAPHS for t in g.types}
    return [(n, t) for n, t in components.items() if t not in free and (n, t) not in covered]
