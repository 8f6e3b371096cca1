"""Motion features of a video segment: *when* things change in the picture, at the video's own frame rate.

A hit detector needs to know when something happens, at a finer grain than the 4 fps frames the denoiser sees.
This module decodes every frame of a region, shrinks each to a small greyscale image and measures how much it
differs from the frame before:

- ``global``: the mean absolute difference over the whole picture,
- ``brighten`` / ``darken``: the positive and negative part of the mean signed difference (a flash, a cut to black),
- ``cell_max`` and ``cell_<row>_<col>``: the mean absolute difference in each cell of a `GRID` x `GRID` grid, and
  the largest of them (a small object's motion, lost in the global mean),
- ``keyframe``: 1 where the frame is a keyframe. Encoders refresh the picture quality at keyframes (every 2 s in
  our data set), which makes frame differences jump with no event behind them; a detector needs the flag to tell
  these jumps apart.

`slot_features` pools those per-frame values into the segment's hit slots (`engine.hits`: 256 slots of 32 ms per
8.192 s segment) by each frame's presentation time, taking the maximum, so that a spike of one or two frames
survives. A slot that no frame falls in (at 20 fps, about one slot in three) holds the value of the slot before,
as a screen keeps showing the previous frame; its keyframe flag is 0. Slots before the first frame and from the
video's end on are 0. The motion channels are then normalised per segment so that a 480p and a 1080p source of
the same content, or a busy and a quiet scene, look alike: each is divided by the 75th percentile of the segment's
``global`` values (at least `SCALE_FLOOR`, so that a still picture's noise stays small) and compressed with
log1p.

`segment_motion` is the one call the engine makes; it keeps its results in a `MotionCache` keyed by the file's
identity (resolved path, size, modification time) and the region, so the editor never decodes a region twice.

numpy and PyAV only: no torch here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import av.error
import numpy as np

from engine.errors import Cancelled, VideoReadError
from engine.media import (
    VideoInfo,
    _existing_file,
    _frame_pts,
    _open_input,
    _probe_path,
    _read_error,
    _seek,
    check_segment_start,
)
from engine.region_cache import RegionCache, file_key

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.reformatter import VideoReformatter
    from av.video.stream import VideoStream

#: Bumped whenever the features change meaning; a detector records the version it was trained on.
MOTION_VERSION = 1
#: Side of the greyscale image every frame is shrunk to (pixels; the aspect ratio is not kept).
IMAGE_SIZE = 64
#: Cells per side of the spatial grid.
GRID = 4
#: The smallest normalisation scale (mean absolute difference, grey levels / 255): about a quarter grey level.
SCALE_FLOOR = 1e-3
#: The percentile of the segment's global differences that normalises it.
SCALE_PERCENTILE = 75.0

#: Per-frame raw values (`FrameMotion.values`), in this order.
RAW_CHANNELS: tuple[str, ...] = (
    "global", "brighten", "darken", *(f"cell_{r}_{c}" for r in range(GRID) for c in range(GRID)),
)
#: The pooled feature channels (`slot_features`), in this order.
CHANNELS: tuple[str, ...] = ("global", "brighten", "darken", "cell_max",
                             *(f"cell_{r}_{c}" for r in range(GRID) for c in range(GRID)), "keyframe")
NUM_CHANNELS = len(CHANNELS)
GLOBAL, KEYFRAME = CHANNELS.index("global"), CHANNELS.index("keyframe")

# two timestamps closer than this are the same instant
_EPS = 1e-6
# frames between two cancellation checks
_CANCEL_EVERY = 16


@dataclass(frozen=True)
class FrameMotion:
    """Per-frame motion of a region of a video.

    times: (N,) presentation times (s from the video's first frame) of the region's frames; values: (N,
    len(RAW_CHANNELS)) float32 differences to the frame before (0 for the video's first frame); keyframe: (N,)
    bool; end: where the video ends (s); info: the probe (None when the values were read back from a cache file);
    warnings: notes for a UI (a file that stopped decoding early).
    """

    times: np.ndarray
    values: np.ndarray
    keyframe: np.ndarray
    end: float
    info: VideoInfo | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MotionFeatures:
    """The motion features of one segment: (slots, NUM_CHANNELS) float32 `features`, and what they came from."""

    features: np.ndarray
    start: float
    duration: float
    frame_motion: FrameMotion
    scale: float  # the normalisation scale of the segment (see the module doc)
    warnings: tuple[str, ...] = ()

    @property
    def slot_seconds(self) -> float:
        return self.duration / self.features.shape[0]

    @property
    def global_motion(self) -> np.ndarray:
        """(slots,) the normalised global channel."""
        return self.features[:, GLOBAL]


# ---- decoding ------------------------------------------------------------------------------------------------
def _grey(frame: VideoFrame, rotation: int, scaler: VideoReformatter) -> np.ndarray:
    """A decoded frame as (IMAGE_SIZE, IMAGE_SIZE) float32 grey levels in [0, 1], display-oriented. One `scaler`
    for all the frames of a pass keeps swscale's context (measured 2-3x faster at 1080p than a new one per
    frame)."""
    g = scaler.reformat(frame, width=IMAGE_SIZE, height=IMAGE_SIZE, format="gray",
                        interpolation="AREA").to_ndarray()
    if rotation:
        g = np.rot90(g, k=-(rotation // 90))
    return g.astype(np.float32) * (1.0 / 255.0)


def frame_differences(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """The raw channels (`RAW_CHANNELS`) of one frame `cur` against the frame before it, both (S, S) greys."""
    d = cur - prev  # (S, S)
    a = np.abs(d)
    cell = IMAGE_SIZE // GRID
    cells = a.reshape(GRID, cell, GRID, cell).mean(axis=(1, 3))  # (GRID, GRID)
    signed = float(d.mean())
    return np.concatenate([[a.mean(), max(signed, 0.0), max(-signed, 0.0)], cells.reshape(-1)]).astype(np.float32)


def _stream(container: InputContainer, info: VideoInfo) -> VideoStream:
    for candidate in container.streams.video:
        if candidate.index == info.video_stream_index:
            return candidate
    return container.streams.video[0]


def read_frame_motion(path: str | os.PathLike[str], start: float, end: float, *,
                      should_cancel: Callable[[], bool] | None = None) -> FrameMotion:
    """Decode every frame shown in [start, end) (s from the first frame) and measure its motion.

    The frame before `start` is decoded too, as the first frame's reference. Raises `VideoNotFoundError`,
    `VideoReadError`, `NoVideoStreamError` (see `engine.media.probe_video`), `SegmentOutOfRangeError` unless
    0 <= start < the video's duration, and `Cancelled` when `should_cancel` says so.
    """
    p = _existing_file(path)
    info, _ = _probe_path(p)
    check_segment_start(start, info)
    frame_len = 1.0 / info.fps if info.fps > 0 else 0.05
    abs_start, abs_end = start + info.start_time, min(end, info.duration) + info.start_time
    times: list[float] = []
    values: list[np.ndarray] = []
    keys: list[bool] = []
    warnings: list[str] = []
    with _open_input(p) as container:
        stream = _stream(container, info)
        stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, av.time_base)
        from av.video.reformatter import VideoReformatter  # here: engine imports where PyAV is absent

        scaler = VideoReformatter()
        back = 0.0
        while True:
            target = max(info.start_time, abs_start - frame_len - back)
            at_start = target <= info.start_time + _EPS
            if not (at_start and back == 0.0):  # a fresh container already stands at the start
                _seek(container, stream, target)
            times, values, keys = [], [], []
            prev: np.ndarray | None = None
            prev_frame: VideoFrame | None = None
            first = True
            frames = container.decode(stream)
            try:
                for n, frame in enumerate(frames):
                    if should_cancel is not None and n % _CANCEL_EVERY == 0 and should_cancel():
                        raise Cancelled("hit detection cancelled")
                    pts = _frame_pts(frame)
                    ft = float(pts * tb) if pts is not None else (times[-1] + info.start_time if times else 0.0)
                    if first and ft > abs_start - 0.5 * frame_len and not at_start:
                        break  # the seek landed after the first frame's reference: go further back
                    first = False
                    if ft >= abs_end - _EPS:
                        break
                    if ft < abs_start - _EPS:  # before the region: only the last one matters, as the reference
                        prev_frame, prev = frame, None
                        continue
                    if prev is None and prev_frame is not None:
                        prev = _grey(prev_frame, info.rotation, scaler)
                    cur = _grey(frame, info.rotation, scaler)
                    values.append(frame_differences(prev, cur) if prev is not None
                                  else np.zeros(len(RAW_CHANNELS), np.float32))
                    times.append(ft - info.start_time)
                    keys.append(bool(frame.key_frame))
                    prev, prev_frame = cur, None
            except av.error.FFmpegError as err:
                if not times:
                    raise _read_error(p, err, "decode") from err
                warnings.append(f"The video stopped decoding at {times[-1]:.3f} s ({err}); the motion after it is "
                                "zero. The file may be truncated or damaged.")
            finally:
                close = getattr(frames, "close", None)
                if close is not None:
                    close()
            if not first or at_start:
                break
            back = 1.0 if back == 0.0 else 2.0 * back
    if not times:
        raise VideoReadError(f"No frame of {p.name} between {start:.3f} s and {end:.3f} s could be decoded: the "
                             "file is corrupt or truncated. Re-export or re-download it and try again.")
    return FrameMotion(times=np.asarray(times, np.float64), values=np.stack(values), keyframe=np.asarray(keys),
                       end=info.duration, info=info, warnings=tuple(warnings))


# ---- pooling -------------------------------------------------------------------------------------------------
def segment_scale(motion: FrameMotion, start: float, duration: float) -> float:
    """The normalisation scale of a segment: the `SCALE_PERCENTILE` of its frames' global differences."""
    inside = (motion.times >= start - _EPS) & (motion.times < start + duration - _EPS)
    g = motion.values[inside, 0]
    return max(float(np.percentile(g, SCALE_PERCENTILE)) if g.size else 0.0, SCALE_FLOOR)


def slot_features(motion: FrameMotion, start: float, duration: float, slots: int) -> tuple[np.ndarray, float]:
    """Pool per-frame motion into `slots` equal slots of [start, start + duration): (slots, NUM_CHANNELS) float32
    features (see the module doc for holding and normalisation) and the scale used."""
    width = duration / slots
    rel = motion.times - start
    inside = (rel >= -_EPS) & (rel < duration - _EPS)
    idx = np.clip(np.floor((rel[inside] + _EPS) / width).astype(np.int64), 0, slots - 1)
    raw = motion.values[inside]  # (n, R)
    scale = segment_scale(motion, start, duration)
    n_raw = len(RAW_CHANNELS)
    pooled = np.zeros((slots, n_raw), np.float32)
    np.maximum.at(pooled, idx, raw)
    has = np.zeros(slots, bool)
    has[idx] = True
    key = np.zeros(slots, np.float32)
    np.maximum.at(key, idx, motion.keyframe[inside].astype(np.float32))
    # hold: a slot without a frame repeats the slot before (from the first frame on, up to the video's end)
    last = np.maximum.accumulate(np.where(has, np.arange(slots), -1))  # index of the latest slot with a frame
    end_slot = math.ceil((motion.end - start) / width - _EPS)
    held = pooled[np.maximum(last, 0)] * (last >= 0)[:, None]  # (slots, R)
    held[max(end_slot, 0):] = 0.0
    held = np.log1p(held / scale)
    cells = held[:, 3:]
    out = np.concatenate([held[:, :3], cells.max(axis=1, keepdims=True), cells, key[:, None]], axis=1)
    assert out.shape == (slots, NUM_CHANNELS), f"{out.shape} != {(slots, NUM_CHANNELS)}"
    return out.astype(np.float32), scale


# ---- the cached entry point ----------------------------------------------------------------------------------
class MotionCache(RegionCache[MotionFeatures]):
    """An in-process LRU of `MotionFeatures`, keyed by the file's identity and the region (thread-safe)."""

    @staticmethod
    def key(path: str | os.PathLike[str], start: float, duration: float, slots: int) -> tuple[object, ...]:
        """(resolved path, size, mtime_ns, start in ms, duration, slots): a rewritten file gets a new key."""
        return file_key(path, round(start * 1000), round(duration, 6), int(slots), MOTION_VERSION)


DEFAULT_CACHE = MotionCache()


def segment_motion(path: str | os.PathLike[str], start: float, duration: float, slots: int, *,
                   cache: MotionCache | None = None,
                   should_cancel: Callable[[], bool] | None = None) -> MotionFeatures:
    """The motion features of the segment [start, start + duration) of a video, from `cache` when it has them.

    The returned arrays are read-only (they are shared through the cache). Raises what `read_frame_motion` does.
    """
    p = _existing_file(path)
    cache = DEFAULT_CACHE if cache is None else cache
    key = cache.key(p, start, duration, slots)
    found = cache.get(key)
    if found is not None:
        return found
    motion = read_frame_motion(p, start, start + duration, should_cancel=should_cancel)
    feats, scale = slot_features(motion, start, duration, slots)
    warnings = list(motion.warnings)
    if motion.end < start + duration - _EPS:
        warnings.append(f"The video ends {motion.end - start:.3f} s into the segment; no motion after that.")
    for a in (feats, motion.times, motion.values, motion.keyframe):
        a.flags.writeable = False
    item = MotionFeatures(features=feats, start=float(start), duration=float(duration), frame_motion=motion,
                          scale=scale, warnings=tuple(warnings))
    cache.put(key, item)
    return item
