"""Hit detection: where the sounds of a segment start, found in the picture.

    detect_segment_hits(engine, video, start)   # what FoleyEngine.detect_hits (hits="auto") calls

The segment's motion features (`engine.motion`, cached per region) go through the bundle's hit detector (the
`hit_detector` component, run by the backend's `hit_logits`), a sigmoid turns its logits into one onset probability
per 32 ms slot, and `pick_peaks` keeps the local maxima above the detector's threshold, at least its
`min_distance` apart (both calibrated on the validation split at training time and stored in the component's
config). A hit's time is the centre of its slot, in seconds from the segment start, rounded to 1 ms.

`motion_peak_hits` is the baseline the detector is measured against: the same peak picking on the segment's global
frame-difference channel, which fires on every change of the picture (keyframes included).

No torch here: the ONNX backend runs the detector without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import BundleError, Cancelled, InvalidRequestError
from engine.motion import MOTION_VERSION, NUM_CHANNELS, MotionCache, MotionFeatures, segment_motion

if TYPE_CHECKING:
    from engine.pipeline import FoleyEngine

#: A hit detector's peak picking when its config does not say.
DEFAULT_MIN_DISTANCE = 0.1
DEFAULT_BASELINE_THRESHOLD = 1.0


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings for large |x|."""
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def local_maxima(scores: np.ndarray) -> np.ndarray:
    """Indices i where scores[i] > scores[i - 1] and scores[i] >= scores[i + 1] (the first slot of a plateau; the
    ends compare with -inf)."""
    s = np.asarray(scores, np.float64).reshape(-1)
    padded = np.concatenate([[-np.inf], s, [-np.inf]])
    return np.flatnonzero((padded[1:-1] > padded[:-2]) & (padded[1:-1] >= padded[2:]))


def pick_peaks(scores: np.ndarray, slot_seconds: float, *, threshold: float,
               min_distance: float = DEFAULT_MIN_DISTANCE, duration: float | None = None) -> list[float]:
    """Hit times (s, slot centres, rounded to 1 ms, ascending) of the local maxima of per-slot `scores` that reach
    `threshold`; of two closer than `min_distance` the higher wins (ties: the earlier). Times stay below
    `duration` (default: the slots' end)."""
    s = np.asarray(scores, np.float64).reshape(-1)
    end = s.size * slot_seconds if duration is None else duration
    cand = [int(i) for i in local_maxima(s) if s[i] >= threshold]
    cand.sort(key=lambda i: (-s[i], i))
    kept: list[float] = []
    for i in cand:
        t = (i + 0.5) * slot_seconds
        if all(abs(t - k) >= min_distance - 1e-9 for k in kept):
            kept.append(t)
    return sorted(r for r in (round(t, 3) for t in kept) if 0.0 <= r < end)


def motion_peak_hits(features: MotionFeatures, *, threshold: float = DEFAULT_BASELINE_THRESHOLD,
                     min_distance: float = DEFAULT_MIN_DISTANCE) -> list[float]:
    """The baseline: peaks of the segment's normalised global frame-difference channel (`pick_peaks`)."""
    return pick_peaks(features.global_motion, features.slot_seconds, threshold=threshold,
                      min_distance=min_distance, duration=features.duration)


def detector_settings(engine: FoleyEngine) -> dict[str, Any]:
    """The bundle's hit-detector config (the manifest's), checked against the motion features this engine makes."""
    comp = engine.manifest.components.get("hit_detector")
    if comp is None:
        raise InvalidRequestError(f"bundle '{engine.manifest.name}' has no hit detector; give the hits yourself")
    cfg = dict(comp.config)
    version, channels = int(cfg.get("motion_version", MOTION_VERSION)), int(cfg.get("in_channels", NUM_CHANNELS))
    if version != MOTION_VERSION or channels != NUM_CHANNELS:
        raise BundleError(
            f"the hit detector of bundle '{engine.manifest.name}' was trained on motion features v{version} with "
            f"{channels} channels, this engine makes v{MOTION_VERSION} with {NUM_CHANNELS}: retrain the detector "
            "(python -m training.run ... --stages detector,export) or update the application"
        )
    return cfg


def segment_hit_probabilities(
    engine: FoleyEngine, video: str | Path, start: float, *, should_cancel: Callable[[], bool] | None = None,
    cache: MotionCache | None = None,
) -> tuple[MotionFeatures, np.ndarray]:
    """The segment's motion features and the detector's onset probability per slot, (slots,) float64.

    cache: where the motion features are kept; default: the engine's `motion_cache` if it has one, else
    `engine.motion.DEFAULT_CACHE`."""
    cfg = detector_settings(engine)
    if Path(video).suffix.lower() in (".npy", ".npz"):
        raise InvalidRequestError("hit detection needs the video itself, not a feature file; give the hits yourself")
    backend = engine.backend
    if not getattr(backend, "has_hit_detector", False):
        raise BundleError(f"the {backend.name} backend did not load the hit detector of bundle "
                          f"'{engine.manifest.name}'; re-export its ONNX graphs or use --backend torch")
    slots = int(cfg.get("slots", 256))
    if cache is None:
        cache = getattr(engine, "motion_cache", None)
    feats = segment_motion(video, start, engine.spec.duration, slots, cache=cache, should_cancel=should_cancel)
    if should_cancel is not None and should_cancel():
        raise Cancelled("hit detection cancelled")
    logits = backend.hit_logits(np.ascontiguousarray(feats.features[None], np.float32))  # (1, slots)
    return feats, sigmoid(np.asarray(logits).reshape(-1))


def detect_segment_hits(engine: FoleyEngine, video: str | Path, start: float, *,
                        should_cancel: Callable[[], bool] | None = None) -> list[float]:
    """Hit times (s from `start`, ascending, within [0, segment duration)) that the bundle's detector finds."""
    cfg = detector_settings(engine)
    feats, prob = segment_hit_probabilities(engine, video, start, should_cancel=should_cancel)
    return pick_peaks(prob, feats.slot_seconds, threshold=float(cfg.get("threshold", 0.5)),
                      min_distance=float(cfg.get("min_distance", DEFAULT_MIN_DISTANCE)), duration=feats.duration)


def baseline_settings(config: dict[str, Any]) -> tuple[float, float]:
    """(threshold, min_distance) of the motion-peak baseline recorded beside a detector (its calibration)."""
    return (float(config.get("baseline_threshold", DEFAULT_BASELINE_THRESHOLD)),
            float(config.get("min_distance", DEFAULT_MIN_DISTANCE)))


def match_hits(predicted: Sequence[float], truth: Sequence[float], tolerance: float) -> int:
    """How many predicted hits match a true one within `tolerance` s, each used once (greedy, closest pairs
    first)."""
    pairs = sorted((abs(p - t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)
                   if abs(p - t) <= tolerance + 1e-9)
    used_p: set[int] = set()
    used_t: set[int] = set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_p)
