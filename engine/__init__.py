"""MDSGen Foley engine: video segment in, Foley candidates out. Qt-free; torch only on its torch backend.

Public API:
    load_engine(bundle=None, backend="auto") -> FoleyEngine
    FoleyEngine.generate(video, start, candidates=, seed=, steps=, guidance=, on_progress=, should_cancel=)
"""

from __future__ import annotations

from engine.backends import BackendKind
from engine.errors import (
    BackendUnavailableError,
    BundleError,
    Cancelled,
    EngineError,
    FeatureFileError,
    InvalidRequestError,
    MuxError,
    NoVideoStreamError,
    SegmentOutOfRangeError,
    VideoError,
    VideoNotFoundError,
    VideoReadError,
)
from engine.manifest import ModelManifest, load_manifest
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
    "BackendKind",
    "BackendUnavailableError",
    "BundleError",
    "Cancelled",
    "Candidate",
    "EngineError",
    "FeatureFileError",
    "FoleyEngine",
    "GenerationRequest",
    "GenerationResult",
    "InvalidRequestError",
    "ModelManifest",
    "MuxError",
    "NoVideoStreamError",
    "Progress",
    "SamplerConfig",
    "SegmentOutOfRangeError",
    "SegmentSpec",
    "VideoError",
    "VideoNotFoundError",
    "VideoReadError",
    "default_bundle_dir",
    "load_engine",
    "load_manifest",
]
