"""Reading video frames by presentation time: `read_frames`, `read_segment_frames` and their `FrameBatch`.

The frame used for time t is the one being displayed at t, i.e. the frame with the largest pts <= t (right for
variable-frame-rate video, where "frame number t * fps" is not). Every frame returned is display-oriented RGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error
import numpy as np

from engine.errors import InvalidRequestError, SegmentOutOfRangeError, VideoReadError
from engine.media.probe import (
    _EPS,
    PathLike,
    VideoInfo,
    _existing_file,
    _frame_pts,
    _open_input,
    _probe_path,
    _read_error,
    check_segment_start,
)
from engine.spec import SegmentSpec

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream


@dataclass
class FrameBatch:
    """Frames read at requested times.

    `frames` is uint8 (T, H, W, 3) RGB in display orientation; `times` the requested times and `source_times`
    the presentation time of the frame used for each (both relative to the first frame). If some requested times
    lie past the end of the video the last frame is repeated there: `held_last` is then True and
    `first_held_index` the first such index. `warnings` holds human-readable notes (held frames, a file that
    stopped decoding early) that a UI can show as they are.
    """

    frames: np.ndarray
    times: np.ndarray
    source_times: np.ndarray
    held_last: bool
    first_held_index: int | None
    info: VideoInfo
    warnings: list[str] = field(default_factory=list)



def _to_rgb(frame: VideoFrame, size: tuple[int, int] | None, rotation: int) -> np.ndarray:
    """A decoded frame as uint8 (H, W, 3) RGB in display orientation, resized to `size` = (W, H) if given.

    The resize happens in swscale before the rotation, so for 90/270 degrees the reformat size is swapped.
    """
    if size is None:
        width, height = frame.width, frame.height
    elif rotation in (90, 270):
        width, height = size[1], size[0]
    else:
        width, height = size
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR").to_ndarray()
    if rotation:
        rgb = np.rot90(rgb, k=-(rotation // 90))  # np.rot90 turns counter-clockwise for positive k
    return np.ascontiguousarray(rgb)


def _validate_times(times: Sequence[float] | np.ndarray) -> np.ndarray:
    """Requested times as a float64 vector; non-negative, finite and ascending, else a typed error."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1:
        raise InvalidRequestError(f"times must be a 1-D sequence of seconds, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InvalidRequestError("times must be finite numbers of seconds")
    if t.size and t[0] < 0:
        raise SegmentOutOfRangeError(f"times must be >= 0 s (relative to the first frame), got {t[0]:.3f} s")
    if np.any(np.diff(t) < 0):
        raise InvalidRequestError("times must be sorted in ascending order")
    return t


@dataclass
class _Pick:
    """The result of one decode pass: a frame array and its source time per requested time."""

    frames: list[np.ndarray]
    source: list[float]
    assigned_in_loop: int  # how many requested times a later frame proved displayed (never held)
    stopped_early: str | None  # the decode error that ended the pass, if any


def _seek(container: InputContainer, stream: VideoStream, seconds: float) -> None:
    """Seek to the keyframe at or before `seconds` (absolute), or raise VideoReadError."""
    tb = stream.time_base or Fraction(1, av.time_base)
    try:
        container.seek(math.floor(seconds / tb), stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError as err:
        raise _read_error(Path(container.name), err, "seek in") from err


def _decode_pick(
    container: InputContainer,
    stream: VideoStream,
    abs_times: np.ndarray,
    *,
    size: tuple[int, int] | None,
    rotation: int,
    from_file_start: bool,
) -> _Pick | None:
    """Decode forward and take, for each time, the frame with the largest pts <= it.

    Returns None if the first frame decoded lies after the first requested time and the decode did not start at
    the file's start: the seek landed too late (a keyframe's pts can exceed its dts) and must go further back.
    """
    tb = stream.time_base or Fraction(1, av.time_base)
    n = len(abs_times)
    out_frames: list[np.ndarray] = []
    out_source: list[float] = []
    prev: VideoFrame | None = None
    prev_time: float | None = None
    prev_rgb: np.ndarray | None = None
    stopped: str | None = None
    frames = container.decode(stream)
    try:
        for frame in frames:
            pts = _frame_pts(frame)
            ft = float(pts * tb) if pts is not None else (prev_time or 0.0)
            if prev is None and ft > abs_times[0] + _EPS and not from_file_start:
                return None
            while len(out_frames) < n and abs_times[len(out_frames)] + _EPS < ft:
                if prev is None or prev_time is None:  # a time before the first frame: show the first frame
                    prev, prev_time, prev_rgb = frame, ft, None
                if prev_rgb is None:
                    prev_rgb = _to_rgb(prev, size, rotation)
                out_frames.append(prev_rgb)
                out_source.append(prev_time)
            if len(out_frames) == n:
                break
            prev, prev_time, prev_rgb = frame, ft, None
    except av.error.FFmpegError as err:
        if prev is None:
            raise _read_error(Path(container.name), err, "decode") from err
        stopped = str(err)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    assigned = len(out_frames)
    if assigned < n:
        if prev is None or prev_time is None:
            raise VideoReadError(
                f"No frame of {Path(container.name).name} could be decoded after seeking: the file is corrupt or "
                "truncated. Re-export or re-download it, or convert it to MP4 (H.264) and try again."
            )
        if prev_rgb is None:
            prev_rgb = _to_rgb(prev, size, rotation)
        out_frames.extend([prev_rgb] * (n - assigned))
        out_source.extend([prev_time] * (n - assigned))
    return _Pick(out_frames, out_source, assigned, stopped)


def _read_frames(
    path: Path, times: np.ndarray, size: tuple[int, int] | None, info: VideoInfo, last_frame: float
) -> FrameBatch:
    """`read_frames` once the file is probed (`last_frame`: see `_probe`) and the times validated."""
    if size is not None:
        width, height = int(size[0]), int(size[1])
        if width <= 0 or height <= 0:
            raise InvalidRequestError(f"size must be (width, height) in positive pixels, got {size}")
        size = (width, height)
    out_w, out_h = size if size is not None else (info.width, info.height)
    if times.size == 0:
        empty = np.zeros((0, out_h, out_w, 3), np.uint8)
        return FrameBatch(empty, times, np.zeros(0), False, None, info)

    abs_times = times + info.start_time
    pick: _Pick | None = None
    with _open_input(path) as container:
        stream = container.streams.video[0]
        for candidate in container.streams.video:
            if candidate.index == info.video_stream_index:
                stream = candidate
        stream.thread_type = "AUTO"
        back = 0.0
        while pick is None:
            target = max(info.start_time, abs_times[0] - back)
            at_start = target <= info.start_time + _EPS
            if not (at_start and back == 0.0):  # a fresh container already stands at the start
                _seek(container, stream, target)
            pick = _decode_pick(
                container, stream, abs_times, size=size, rotation=info.rotation, from_file_start=at_start
            )
            back = 1.0 if back == 0.0 else 2.0 * back

    source = np.asarray(pick.source, dtype=np.float64) - info.start_time
    frames = np.stack(pick.frames)
    warnings: list[str] = []
    end = info.duration
    last = source[-1]
    frame_len = 1.0 / info.fps if info.fps > 0 else 0.0
    ran_out = pick.assigned_in_loop < len(times)  # the decode reached the end of what decodes
    if pick.stopped_early is not None or (ran_out and last < last_frame - _EPS):
        reason = f" ({pick.stopped_early})" if pick.stopped_early else ""
        warnings.append(
            f"The video stopped decoding at {last:.3f} s although it should run to {end:.3f} s{reason}; "
            "the file may be truncated or damaged."
        )
        end = min(end, last + frame_len)
    held = np.zeros(len(times), dtype=bool)
    held[pick.assigned_in_loop :] = times[pick.assigned_in_loop :] >= end - _EPS
    first_held = int(np.argmax(held)) if held.any() else None
    if first_held is not None:
        warnings.append(
            f"{int(held.sum())} of {len(times)} requested frames (from {times[first_held]:.3f} s on) lie past the "
            f"end of the video at {end:.3f} s; the last frame (at {last:.3f} s) is held there."
        )
    return FrameBatch(
        frames=frames,
        times=times,
        source_times=source,
        held_last=first_held is not None,
        first_held_index=first_held,
        info=info,
        warnings=warnings,
    )


def read_frames(path: PathLike, times: Sequence[float] | np.ndarray, size: tuple[int, int] | None = None) -> FrameBatch:
    """Read the frames displayed at `times` (s from the first frame, ascending), display-oriented RGB.

    Seeks once to the keyframe before the first time and decodes forward; each time gets the frame with the
    largest presentation time <= it. `size` = (W, H) resizes (aspect not kept) after rotation. Times past the
    end hold the last frame, reported in `held_last`, `first_held_index` and `warnings`.

    Raises:
        VideoNotFoundError, VideoReadError, NoVideoStreamError: see `probe_video`.
        SegmentOutOfRangeError: a negative time.
        InvalidRequestError: times not 1-D, finite and ascending, or a non-positive size.
    """
    p = _existing_file(path)
    t = _validate_times(times)
    info, last_frame = _probe_path(p)
    return _read_frames(p, t, size, info, last_frame)


def read_segment_frames(
    path: PathLike, start: float, spec: SegmentSpec, size: tuple[int, int] | None = (224, 224)
) -> FrameBatch:
    """Read the `spec.num_frames` frames at start + k / spec.video_fps that a model sees for one segment.

    Raises SegmentOutOfRangeError, naming the valid range, unless 0 <= start < the video's duration; a segment
    that runs past the end holds the last frame and says so (see `FrameBatch`).
    """
    p = _existing_file(path)
    info, last_frame = _probe_path(p)
    check_segment_start(start, info)
    times = start + np.arange(spec.num_frames, dtype=np.float64) / spec.video_fps
    return _read_frames(p, times, size, info, last_frame)
