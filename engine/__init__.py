"""MDSGen Foley engine: video segment in, Foley candidates out. Qt-free; torch only on its torch backend.

Public API:
    load_engine(bundle=None, backend="auto") -> FoleyEngine
    FoleyEngine.generate(video, start, candidates=, seed=, steps=, guidance=, hits=, sample_rate=, on_progress=,
                         should_cancel=)   # sample_rate: one of .output_rates (16000, 48000); .default_output_rate
    FoleyEngine.detect_hits(video, start) -> [seconds from start]; .takes_hits, .has_hit_detector
"""

from __future__ import annotations

from engine.audio import measure_loudness, mel_spectrogram, normalize_loudness
from engine.backends import BackendKind
from engine.errors import (
    BackendUnavailableError,
    BundleError,
    Cancelled,
    EngineError,
    FeatureFileError,
    InvalidRequestError,
    MuxError,
    NoAudioStreamError,
    NoVideoStreamError,
    SegmentOutOfRangeError,
    VideoError,
    VideoNotFoundError,
    VideoReadError,
)
from engine.hits import MAX_HITS, check_hits, parse_hits_arg
from engine.manifest import ModelManifest, atomic_write_text, load_manifest
from engine.media import (
    FrameBatch,
    MuxPlan,
    VideoInfo,
    mux_foley,
    mux_plan,
    probe_video,
    read_audio,
    read_frames,
    write_wav,
)
from engine.pipeline import (
    Candidate,
    FoleyEngine,
    GenerationRequest,
    GenerationResult,
    Progress,
    default_bundle_dir,
    load_engine,
)
from engine.spec import AUDIOLDM, DIFF_FOLEY, SamplerConfig, SegmentSpec

__version__ = "0.1.0"

__all__ = [
    "AUDIOLDM",
    "DIFF_FOLEY",
    "MAX_HITS",
    "BackendKind",
    "BackendUnavailableError",
    "BundleError",
    "Cancelled",
    "Candidate",
    "EngineError",
    "FeatureFileError",
    "FoleyEngine",
    "FrameBatch",
    "GenerationRequest",
    "GenerationResult",
    "InvalidRequestError",
    "ModelManifest",
    "MuxError",
    "MuxPlan",
    "NoAudioStreamError",
    "NoVideoStreamError",
    "Progress",
    "SamplerConfig",
    "SegmentOutOfRangeError",
    "SegmentSpec",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoReadError",
    "atomic_write_text",
    "check_hits",
    "default_bundle_dir",
    "load_engine",
    "load_manifest",
    "measure_loudness",
    "mel_spectrogram",
    "mux_foley",
    "mux_plan",
    "normalize_loudness",
    "parse_hits_arg",
    "probe_video",
    "read_audio",
    "read_frames",
    "write_wav",
]
