"""MDSGen Foley engine: video segment in, Foley candidates out. Qt-free; torch only on its torch backend.

Public API:
    load_engine(bundle=None, backend="auto") -> FoleyEngine
    FoleyEngine.generate(video, start, candidates=, seed=, steps=, guidance=, hits=, sample_rate=, on_progress=,
                         should_cancel=)   # sample_rate: one of .output_rates (16000, 48000); .default_output_rate
    FoleyEngine.detect_hits(video, start) -> [seconds from start]; .takes_hits, .has_hit_detector
"""

from __future__ import annotations

from engine.atomic import atomic_replace, atomic_write_bytes, atomic_write_text
from engine.audio import measure_loudness, mel_spectrogram, normalize_loudness
from engine.backends import BackendKind
from engine.bwf import BextInfo, parse_timecode, read_bext, write_bwf
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
from engine.fill import FillResult, fill_video
from engine.hits import MAX_HITS, check_hits, parse_hits_arg
from engine.interchange import TIMELINE_SUFFIXES, StemClip, TimelineMarker, export_timeline, read_timeline
from engine.manifest import ModelManifest, load_manifest
from engine.media import (
    MUX_SUFFIXES,
    STILL_SUFFIXES,
    FrameBatch,
    MuxPlan,
    VideoInfo,
    is_still_image,
    mux_foley,
    mux_plan,
    probe_video,
    read_audio,
    read_frames,
    still_video,
    write_wav,
)
from engine.pipeline import (
    Candidate,
    EngineInfo,
    FoleyEngine,
    GenerationResult,
    Progress,
    default_bundle_dir,
    load_engine,
)
from engine.resampling import resample
from engine.spec import AUDIOLDM, DIFF_FOLEY, QUALITIES, SamplerConfig, SegmentSpec
from engine.timeline import (
    DEFAULT_COMP_CROSSFADE_S,
    DEFAULT_FILL_OVERLAP_S,
    EDGE_FADE_S,
    MAX_COMP_CROSSFADE_S,
    ClipPlan,
    CompPart,
    MixClip,
    clip_stems,
    comp_cut_spans,
    crossfade_spans,
    db_to_gain,
    fill_starts,
    floor_to_frame,
    max_segment_start,
    nudge,
    place_segment,
    plan_mix,
    render_comp,
    render_mix,
    snap_to_frame,
)

__version__ = "0.1.0"

__all__ = [
    "AUDIOLDM",
    "DEFAULT_COMP_CROSSFADE_S",
    "DEFAULT_FILL_OVERLAP_S",
    "DIFF_FOLEY",
    "EDGE_FADE_S",
    "MAX_COMP_CROSSFADE_S",
    "MAX_HITS",
    "MUX_SUFFIXES",
    "QUALITIES",
    "STILL_SUFFIXES",
    "TIMELINE_SUFFIXES",
    "BackendKind",
    "BackendUnavailableError",
    "BextInfo",
    "BundleError",
    "Cancelled",
    "Candidate",
    "ClipPlan",
    "CompPart",
    "EngineError",
    "EngineInfo",
    "FeatureFileError",
    "FillResult",
    "FoleyEngine",
    "FrameBatch",
    "GenerationResult",
    "InvalidRequestError",
    "MixClip",
    "ModelManifest",
    "MuxError",
    "MuxPlan",
    "NoAudioStreamError",
    "NoVideoStreamError",
    "Progress",
    "SamplerConfig",
    "SegmentOutOfRangeError",
    "SegmentSpec",
    "StemClip",
    "TimelineMarker",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoReadError",
    "atomic_replace",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_hits",
    "clip_stems",
    "comp_cut_spans",
    "crossfade_spans",
    "db_to_gain",
    "default_bundle_dir",
    "export_timeline",
    "fill_starts",
    "fill_video",
    "floor_to_frame",
    "is_still_image",
    "load_engine",
    "load_manifest",
    "max_segment_start",
    "measure_loudness",
    "mel_spectrogram",
    "mux_foley",
    "mux_plan",
    "normalize_loudness",
    "nudge",
    "parse_hits_arg",
    "parse_timecode",
    "place_segment",
    "plan_mix",
    "probe_video",
    "read_audio",
    "read_bext",
    "read_frames",
    "read_timeline",
    "render_comp",
    "render_mix",
    "resample",
    "snap_to_frame",
    "still_video",
    "write_bwf",
    "write_wav",
]
