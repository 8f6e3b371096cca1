"""Media I/O for the engine: probe and read video frames, read audio, write WAV, mux Foley into a video.

Everything here goes through PyAV (FFmpeg), numpy and soundfile; no Qt and no torch.

Time convention: every time this module takes or returns is in seconds *relative to the first video frame* of
the file (its presentation time is `VideoInfo.start_time` on the file's own timeline), so a file whose first frame
sits at 1.5 s (MPEG-TS, edited MP4) behaves like any other. Audio read from a file that has a video stream uses
the same origin, so audio and frames line up.

Frame picking is by presentation time: the frame used for time t is the one being displayed at t, i.e. the frame
with the largest pts <= t. This is right for variable-frame-rate video, where "frame number t * fps" is not.

Rotation: phones store portrait video as landscape pixels plus a display matrix. FFmpeg (and PyAV 18's
`VideoFrame.rotation`) reports the matrix as a counter-clockwise angle; `VideoInfo.rotation` is the clockwise
angle to apply for display, and every frame returned here is already display-oriented.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
import av.error
import numpy as np
import soundfile as sf

from engine.atomic import atomic_replace
from engine.errors import (
    InvalidRequestError,
    MuxError,
    NoAudioStreamError,
    NoVideoStreamError,
    SegmentOutOfRangeError,
    VideoNotFoundError,
    VideoReadError,
)
from engine.spec import SegmentSpec

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer, OutputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = [
    "FrameBatch",
    "MuxPlan",
    "VideoInfo",
    "mux_foley",
    "mux_plan",
    "probe_video",
    "read_audio",
    "read_frames",
    "read_segment_frames",
    "write_wav",
]

PathLike = str | os.PathLike[str]
log = logging.getLogger(__name__)

# Two timestamps closer than this are the same instant (absorbs float rounding of k / fps and of pts * time_base).
_EPS = 1e-6
# The AAC stream of a muxed file runs at 48 kHz: it is what every player, NLE and QtMultimedia expect of video
# audio, and 16 kHz -> 48 kHz is an exact factor of 3, so a Foley sample n lands on output sample 3n with no
# rounding; placing `start` is then exact to 1/48000 s (21 us), far inside the 1 ms budget.
_MUX_RATE = 48_000
_MUX_BIT_RATE = 128_000
_AAC_FRAME = 1024
# Output suffix -> FFmpeg muxer: the one table of what a muxed export may be called (the editor's export dialog and
# its checks read MUX_SUFFIXES). WebM is left out on purpose: it cannot hold AAC.
_MUX_FORMATS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
MUX_SUFFIXES: tuple[str, ...] = tuple(_MUX_FORMATS)
# How far ahead of the video packets the audio packets are written (interleaving).
_INTERLEAVE_AHEAD = 0.5
# The video re-encode when the output container cannot hold the source's codec (Theora or VP8 into MP4): H.264 at
# CRF 18, which x264's documentation calls visually lossless, 4:2:0, every frame at its own timestamp.
_REENCODE_CODEC = "libx264"
_REENCODE_OPTIONS = {"crf": "18", "preset": "fast"}
# Containers that accept equal consecutive DTS (FFmpeg's AVFMT_TS_NONSTRICT); MP4/MOV need them increasing.
_TS_NONSTRICT = ("matroska",)


# ---- data types ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` learns about a file's (first) video stream.

    `duration` runs from the first frame's presentation time to the end of the last frame; `width` and `height`
    are the display size (after rotation; the sample aspect ratio is not applied); `rotation` is the clockwise
    angle (0, 90, 180 or 270) to apply to the stored pixels for display; `start_time` is the first frame's
    presentation time on the file's timeline (the origin of every time this module takes); `container` is
    FFmpeg's demuxer name (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``) and `codec` its codec name (e.g. ``"h264"``).
    """

    path: str
    duration: float
    width: int
    height: int
    rotation: int
    fps: float
    codec: str
    container: str
    start_time: float
    has_audio: bool
    video_stream_index: int
    timecode: str | None = None  # the start timecode the container records ("01:00:00:00"), if any


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


# ---- opening and probing -------------------------------------------------------------------------------------
def _existing_file(path: PathLike) -> Path:
    """The path as a `Path`, or VideoNotFoundError if no such file exists."""
    p = Path(path)
    if not p.exists():
        raise VideoNotFoundError(f"No file at {p}: check the path, or pick the file again.")
    if not p.is_file():
        raise VideoReadError(f"{p} is not a file (a folder?): pick a video file.")
    return p


def _read_error(path: Path, err: BaseException, what: str = "read") -> VideoReadError:
    """A VideoReadError that says what failed and what to try."""
    return VideoReadError(
        f"Could not {what} {path.name}: {err}. The file is not a video FFmpeg can read, or it is corrupt or "
        "truncated; re-export or re-download it, or convert it to MP4 (H.264) and try again."
    )


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator[InputContainer]:
    """Open a file for reading; FFmpeg errors become VideoReadError."""
    try:
        container = av.open(str(path), mode="r")
    except av.error.FileNotFoundError as err:
        raise VideoNotFoundError(f"No file at {path}: check the path, or pick the file again.") from err
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as err:
        raise _read_error(path, err, "open") from err
    try:
        yield container
    finally:
        container.close()


def _is_real_video(stream: VideoStream) -> bool:
    """False for cover art (an MP3's or M4A's attached picture), which is a video stream of one still image."""
    return not (stream.disposition & av.stream.Disposition.attached_pic)


def _no_streams(path: Path) -> VideoReadError:
    """The error for a file FFmpeg opens but finds no stream in (e.g. an MP4 cut before its index)."""
    return VideoReadError(
        f"{path.name} opens but holds no readable stream: it is truncated (an MP4 whose recording was cut "
        "short loses its index) or not a media file. Re-export or re-download it and try again."
    )


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    """The first real video stream, or NoVideoStreamError (VideoReadError if the file has no stream at all)."""
    if not container.streams:
        raise _no_streams(path)
    for stream in container.streams.video:
        if _is_real_video(stream):
            return stream
    kinds = sorted({s.type for s in container.streams}) or ["nothing"]
    raise NoVideoStreamError(
        f"{path.name} holds no video stream (it has: {', '.join(kinds)}): pick a video file, not an audio file."
    )


def _frame_pts(frame: VideoFrame | AudioFrame) -> int | None:
    """The frame's presentation timestamp (falling back on its decode timestamp), in its stream's time base."""
    return frame.pts if frame.pts is not None else frame.dts


def _rotation_cw(frame: VideoFrame) -> int:
    """Clockwise display rotation from the frame's display matrix, snapped to 0/90/180/270."""
    ccw = frame.rotation  # PyAV: the counter-clockwise angle of the display matrix, in [-180, 180]
    return round(-ccw / 90.0) % 4 * 90


def _stream_rate(stream: VideoStream) -> float | None:
    """The stream's average frame rate, or its guessed rate, if FFmpeg knows one."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


def _scan_end(path: Path, stream_index: int, fallback_frame_ticks: int) -> tuple[int, int] | None:
    """(end, last pts) of a video stream in stream ticks, from its packets; end is max(pts + duration).

    Container metadata is not used: MP4 reports the duration from the first frame while Matroska reports the
    end time, and truncated files report what they once were. Instead this seeks to the last keyframe and
    demuxes (does not decode) the packets after it; if that seek fails, it demuxes the whole file.
    """

    def scan(container: InputContainer, seek: bool) -> tuple[int, int] | None:
        stream = container.streams[stream_index]
        if seek:
            try:
                container.seek(2**62, stream=stream, backward=True)
            except (av.error.FFmpegError, OverflowError):
                return None
        found: tuple[int, int] | None = None
        try:
            for packet in container.demux(stream):
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None or packet.size == 0:
                    continue
                end = ts + (packet.duration or fallback_frame_ticks)
                found = (end, ts) if found is None else (max(found[0], end), max(found[1], ts))
        except av.error.FFmpegError:
            pass  # a truncated or damaged tail: keep what was read
        return found

    for seek in (True, False):
        with _open_input(path) as container:
            found = scan(container, seek)
        if found is not None:
            return found
    return None


def _probe(container: InputContainer, stream: VideoStream, path: Path) -> tuple[VideoInfo, float]:
    """Probe an open container: decode the first frame (start time, rotation, size) and scan the end.

    Returns the info and the presentation time of the last frame's packet (s from the first frame), which tells a
    reader whose decode stops earlier that the file is damaged or truncated.
    """
    tb = stream.time_base or Fraction(1, av.time_base)
    first: VideoFrame | None = None
    try:
        for frame in container.decode(stream):
            first = frame
            break
    except av.error.FFmpegError as err:
        raise _read_error(path, err, "decode") from err
    if first is None:
        raise VideoReadError(
            f"No frame of {path.name} could be decoded: the file is empty, corrupt or truncated. "
            "Re-export or re-download it, or convert it to MP4 (H.264) and try again."
        )
    first_pts = _frame_pts(first)
    if first_pts is None:
        first_pts = stream.start_time or 0
    start_time = float(first_pts * tb)
    rotation = _rotation_cw(first)
    width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)

    rate = _stream_rate(stream)
    frame_ticks = max(1, round(1.0 / (rate * tb))) if rate else 1
    found = _scan_end(path, stream.index, frame_ticks)
    duration = float(found[0] * tb) - start_time if found is not None else 0.0
    last_frame = float(found[1] * tb) - start_time if found is not None else 0.0
    if duration <= 0:  # no usable packet timing: fall back on the container's word
        if container.duration is not None:
            duration = container.duration / av.time_base
        elif stream.duration is not None:
            duration = float(stream.duration * tb)
        else:
            duration = 1.0 / rate if rate else 0.0
    if rate is None:
        rate = stream.frames / duration if stream.frames and duration > 0 else 0.0

    info = VideoInfo(
        path=str(path),
        duration=duration,
        width=int(width),
        height=int(height),
        rotation=rotation,
        fps=float(rate),
        codec=stream.codec_context.codec.canonical_name,
        container=container.format.name,
        start_time=start_time,
        has_audio=len(container.streams.audio) > 0,
        video_stream_index=stream.index,
        timecode=_timecode(container, stream),
    )
    return info, last_frame


def _timecode(container: InputContainer, stream: VideoStream) -> str | None:
    """The start timecode FFmpeg reports (MOV tmcd track, MXF, Matroska tag), if any."""
    for meta in (stream.metadata, container.metadata, *(s.metadata for s in container.streams.data)):
        tc = meta.get("timecode") if meta else None
        if tc:
            return str(tc)
    return None


def probe_video(path: PathLike) -> VideoInfo:
    """Describe the first video stream of a file (and its start timecode, if the container records one).

    Decodes the first frame (for its presentation time and rotation) and demuxes the last GOP (for the end time).

    Raises:
        VideoNotFoundError: no such file.
        VideoReadError: not a media file, or corrupt so that no frame decodes.
        NoVideoStreamError: a media file without video (WAV, audio-only M4A, MP3 with cover art).
    """
    return _probe_path(_existing_file(path))[0]


def check_segment_start(start: float, info: VideoInfo) -> None:
    """Raise SegmentOutOfRangeError, naming the valid range, unless 0 <= start < the video's duration."""
    if not math.isfinite(start) or start < 0 or start >= info.duration:
        raise SegmentOutOfRangeError(
            f"Segment start {start:.3f} s lies outside the video: choose a start from 0 to "
            f"{info.duration:.3f} s (exclusive; the video is {info.duration:.3f} s long)."
        )


def _probe_path(path: Path) -> tuple[VideoInfo, float]:
    """`probe_video` plus the last frame's time (see `_probe`)."""
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        return _probe(container, stream, path)


# ---- reading frames ------------------------------------------------------------------------------------------
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


# ---- audio ---------------------------------------------------------------------------------------------------
def _check_rate(sample_rate: int) -> int:
    """A positive integer sample rate, else InvalidRequestError."""
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidRequestError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return int(sample_rate)


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float audio ((n,) or (n, channels), nominally in [-1, 1]) as a 24-bit PCM WAV, atomically.

    Writes a temp file in the same directory, fsyncs it and renames it over `path`, so a reader never sees a
    half-written file and a crash leaves the old file intact. Creates parent directories. Samples are clipped
    to [-1, 1]. Returns the path written.
    """
    rate = _check_rate(sample_rate)
    data = np.asarray(audio)
    if data.ndim not in (1, 2) or (data.ndim == 2 and data.shape[1] < 1):
        raise InvalidRequestError(f"audio must have shape (n,) or (n, channels), got {data.shape}")
    if not np.issubdtype(data.dtype, np.floating):
        raise InvalidRequestError(f"audio must be floating point in [-1, 1], got dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise InvalidRequestError("audio holds NaN or infinite samples")
    data = np.clip(data, -1.0, 1.0).astype(np.float32, copy=False)

    target = Path(path)
    with atomic_replace(target, suffix=".part") as tmp:
        sf.write(str(tmp), data, rate, subtype="PCM_24", format="WAV")
    return target


def _first_video_time(container: InputContainer) -> float | None:
    """Presentation time (s) of the first video frame, or None if there is no real video stream."""
    for stream in container.streams.video:
        if not _is_real_video(stream):
            continue
        tb = stream.time_base or Fraction(1, av.time_base)
        try:
            for frame in container.decode(stream):
                pts = _frame_pts(frame)
                return float(pts * tb) if pts is not None else None
        except av.error.FFmpegError:
            return None
        return None
    return None


def _decode_resampled(
    container: InputContainer, stream: AudioStream, resampler: av.AudioResampler
) -> tuple[float | None, list[np.ndarray]]:
    """Decode an audio stream through a resampler: (time of the first decoded sample, resampled chunks).

    The swresample resampler compensates its own filter delay, so output sample 0 sits at the first input
    frame's time and the output is contiguous from there.
    """
    tb = stream.time_base or Fraction(1, stream.rate or 1)
    first_time: float | None = None
    chunks: list[np.ndarray] = []
    channels = resampler.layout.nb_channels if resampler.layout is not None else 0

    def take(frames: list[AudioFrame]) -> None:
        for out in frames:
            arr = out.to_ndarray()
            chunks.append(arr.reshape(-1, channels or out.layout.nb_channels))

    try:
        for frame in container.decode(stream):
            if first_time is None:
                pts = _frame_pts(frame)
                first_time = float(pts * tb) if pts is not None else 0.0
            take(resampler.resample(frame))
    except av.error.FFmpegError:
        if first_time is None:
            raise
    take(resampler.resample(None))
    return first_time, chunks


def read_audio(
    path: PathLike, sample_rate: int, start: float = 0.0, duration: float | None = None, mono: bool = True
) -> np.ndarray:
    """Decode the first audio stream of any container to float32 at `sample_rate`.

    `start` is in seconds from the first video frame if the file has video (so audio lines up with
    `read_frames`), else from the audio stream's first sample; the stream's own start time and the codec's
    priming (AAC encoder delay, as the container signals it) are honoured. Returns shape (n,) if `mono` (a
    downmix), else (n, channels). With `duration` the result has exactly round(duration * sample_rate) samples,
    zero-padded where the stream has none; without it, it runs to the end of the stream.

    Raises:
        VideoNotFoundError: no such file.
        VideoReadError: not a media file, or no audio decodes.
        NoAudioStreamError: the file has no audio stream.
        InvalidRequestError / SegmentOutOfRangeError: a bad rate or duration / a negative start.
    """
    rate = _check_rate(sample_rate)
    if not math.isfinite(start) or start < 0:
        raise SegmentOutOfRangeError(f"start must be >= 0 s, got {start}")
    if duration is not None and (not math.isfinite(duration) or duration < 0):
        raise InvalidRequestError(f"duration must be a non-negative number of seconds or None, got {duration}")
    p = _existing_file(path)
    with _open_input(p) as container:
        if not container.streams:
            raise _no_streams(p)
        if not container.streams.audio:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise NoAudioStreamError(
                f"{p.name} holds no audio stream (it has: {', '.join(kinds)}): pick a file with sound."
            )
        origin = _first_video_time(container)
    # A fresh open for the audio: decoding the first video frame above dropped the audio packets demuxed with it,
    # and the first audio packet is the one that carries the priming to skip and the exact start timestamp.
    with _open_input(p) as container:
        stream = container.streams.audio[0]
        tb = stream.time_base or Fraction(1, stream.rate or 1)
        stream_start = float((stream.start_time or 0) * tb)
        # Where the stream says it ends (MP4 and WAV know it to the sample; decoders emit whole codec frames).
        stream_end = stream_start + float(stream.duration * tb) if stream.duration else math.inf
        if origin is None:
            origin = stream_start
        # Seek near the start only when it saves real work; land 0.5 s early so the codec's overlap settles.
        seek_to = origin + start - 0.5
        if start > 2.0 and seek_to > stream_start:
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(math.floor(seek_to / tb), stream=stream, backward=True)
        resampler = av.AudioResampler(format="flt", layout="mono" if mono else None, rate=rate)
        try:
            first_time, chunks = _decode_resampled(container, stream, resampler)
        except av.error.FFmpegError as err:
            raise _read_error(p, err, "decode the audio of") from err
        channels = 1 if mono else max(1, stream.codec_context.channels)
    data = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, channels), np.float32)
    if first_time is None:
        first_time = origin
    if math.isfinite(stream_end):
        data = data[: max(0, round((stream_end - first_time) * rate))]
    offset = round((origin + start - first_time) * rate)  # index in `data` of the first wanted sample
    want = round(duration * rate) if duration is not None else max(0, len(data) - offset)
    out = np.zeros((want, data.shape[1]), np.float32)
    lo, hi = max(offset, 0), min(offset + want, len(data))
    if hi > lo:
        out[lo - offset : hi - offset] = data[lo:hi]
    return out[:, 0].copy() if mono else out


# ---- muxing --------------------------------------------------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    """True if two paths name the same file (resolving links; by inode when both exist)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _output_format(out: Path) -> str:
    """The FFmpeg muxer for an output suffix, or MuxError naming the supported ones."""
    fmt = _MUX_FORMATS.get(out.suffix.lower())
    if fmt is None:
        hint = " (WebM cannot hold AAC audio)" if out.suffix.lower() == ".webm" else ""
        raise MuxError(
            f"Cannot write {out.name}{hint}: choose a name ending in "
            f"{', '.join(sorted(_MUX_FORMATS))}; .mkv holds every video codec."
        )
    return fmt


def _codec_fits(fmt: str, codec_name: str) -> bool:
    """Whether FFmpeg's muxer `fmt` (e.g. "mp4") can store the codec named `codec_name` (e.g. "theora")."""
    with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
        return codec_name in probe.supported_codecs


@dataclass(frozen=True)
class MuxPlan:
    """How `mux_foley` writes the video of `out`: "copy" (packet for packet) or "reencode" (to H.264, when the
    output container cannot hold the source's codec); `note` says so in words for the CLI and the export dialog."""

    video: Literal["copy", "reencode"]
    source_codec: str
    output_codec: str
    note: str


def _can_copy(src: Path, info: VideoInfo, fmt: str) -> bool:
    """Whether muxer `fmt` takes the source's video stream as it is: its codec is in the muxer's list and the muxer
    writes a header for it (the list is not the whole truth: FFmpeg's MOV muxer lists VP9 and then refuses it)."""
    if not _codec_fits(fmt, info.codec):
        return False
    with _open_input(src) as source, av.open(io.BytesIO(), mode="w", format=fmt) as probe:
        try:
            probe.add_stream_from_template(source.streams[info.video_stream_index])
            probe.start_encoding()
        except (ValueError, av.error.FFmpegError):
            return False
    return True


def _plan(src: Path, info: VideoInfo, out: Path, fmt: str) -> MuxPlan:
    if _can_copy(src, info, fmt):
        return MuxPlan("copy", info.codec, info.codec, f"the {info.codec} video is copied as it is (no re-encode)")
    return MuxPlan("reencode", info.codec, "h264",
                   f"a {out.suffix} file cannot hold the source's {info.codec} video: it is re-encoded to H.264 "
                   f"(CRF {_REENCODE_OPTIONS['crf']}, visually lossless; every frame kept at its time). A .mkv "
                   "output keeps the video as it is.")


def mux_plan(video_path: PathLike, out_path: PathLike) -> MuxPlan:
    """What `mux_foley(video_path, ..., out_path)` will do with the video (copy or re-encode), without writing.

    Raises VideoNotFoundError, VideoReadError, NoVideoStreamError for the source and MuxError for an unsupported
    output suffix."""
    out, src = Path(out_path), _existing_file(video_path)
    fmt = _output_format(out)
    return _plan(src, probe_video(src), out, fmt)


def _repair_timestamps(pts: int | None, dts: int | None, last_dts: int | None, *, strict: bool
                       ) -> tuple[int | None, int | None]:
    """A copied packet's (pts, dts) made muxable the way FFmpeg's own remuxer does it (fftools' "Invalid DTS ...
    replacing by guess" and "Non-monotonic DTS ... changing to"): a DTS after its PTS becomes, for both, the median
    of the two and the last DTS + 1; then a DTS not after the last one (not at or after it, for a container that
    allows equal ones) moves up to it + 1, and a PTS that would fall before the new DTS with it. Presentation
    times only move where the source's were inconsistent, by as many ticks of the stream's time base."""
    if dts is None or last_dts is None:
        if pts is not None and dts is not None and dts > pts:
            dts = pts
        return pts, dts
    if pts is not None and dts > pts:
        pts = dts = sorted((pts, dts, last_dts + 1))[1]
    least = last_dts + (1 if strict else 0)
    if dts < least:
        if pts is not None and pts >= dts:
            pts = max(pts, least)
        dts = least
    return pts, dts


def _resample_mono(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample mono float32 audio with swresample (delay-compensated: sample 0 stays at time 0)."""
    if rate_in == rate_out or audio.size == 0:
        return audio
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
    chunks: list[np.ndarray] = []
    step = 16_384
    for i in range(0, len(audio), step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, i : i + step]), format="flt", layout="mono")
        frame.sample_rate = rate_in
        frame.pts = i
        frame.time_base = Fraction(1, rate_in)
        chunks.extend(o.to_ndarray().reshape(-1) for o in resampler.resample(frame))
    chunks.extend(o.to_ndarray().reshape(-1) for o in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def _audio_frames(foley: np.ndarray, offset: int, total: int, first_pts: int) -> Iterator[AudioFrame]:
    """48 kHz mono AAC input frames of 1024 samples: silence with `foley` from sample `offset`; `total` samples.

    Built frame by frame so a long video never needs its whole soundtrack in memory.
    """
    for k in range(0, total, _AAC_FRAME):
        n = min(_AAC_FRAME, total - k)
        buf = np.zeros(n, np.float32)
        lo, hi = max(k, offset), min(k + n, offset + len(foley))
        if hi > lo:
            buf[lo - k : hi - k] = foley[lo - offset : hi - offset]
        frame = av.AudioFrame.from_ndarray(buf[None], format="fltp", layout="mono")
        frame.sample_rate = _MUX_RATE
        frame.pts = first_pts + k
        frame.time_base = Fraction(1, _MUX_RATE)
        yield frame


def _packet_time(packet: Packet) -> float | None:
    """A packet's decode (else presentation) time in seconds."""
    ts = packet.dts if packet.dts is not None else packet.pts
    if ts is None or packet.time_base is None:
        return None
    return float(ts * packet.time_base)


def _copied_packets(source: InputContainer, in_video: VideoStream, out_video: VideoStream, fmt: str
                    ) -> Iterator[Packet]:
    """The source's video packets for the output stream, their timestamps repaired where the source's would make the
    muxer fail (`_repair_timestamps`)."""
    last_dts: int | None = None
    strict = fmt not in _TS_NONSTRICT
    for packet in source.demux(in_video):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        pts, dts = _repair_timestamps(packet.pts, packet.dts, last_dts, strict=strict)
        packet.pts, packet.dts = pts, dts
        if dts is not None:
            last_dts = dts
        packet.stream = out_video
        yield packet


def _reencoded_packets(source: InputContainer, in_video: VideoStream, out_video: VideoStream, info: VideoInfo
                       ) -> Iterator[Packet]:
    """The source's frames re-encoded (`_REENCODE_CODEC`), each at its own presentation time in the source's time
    base; a rotated source is turned upright in the pixels (the picture shows as in the source)."""
    last_pts: int | None = None
    k = -(info.rotation // 90)
    w, h = out_video.codec_context.width, out_video.codec_context.height
    try:
        for frame in source.decode(in_video):
            pts = _frame_pts(frame)
            pts = (last_pts + 1 if last_pts is not None else 0) if pts is None else pts
            if last_pts is not None and pts <= last_pts:
                continue  # a repeated timestamp: the encoder needs them increasing; the earlier frame stays
            last_pts = pts
            if k:
                rgb = np.rot90(frame.to_ndarray(format="rgb24"), k=k)
                img = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                img = img.reformat(width=w, height=h, format="yuv420p")
            else:
                img = frame.reformat(width=w, height=h, format="yuv420p")
            img.pts, img.time_base = pts, in_video.time_base
            yield from out_video.encode(img)
    except av.error.FFmpegError as err:
        if last_pts is None:
            raise
        log.warning("the source stopped decoding early (%s); the re-encoded video ends there", err)
    yield from out_video.encode(None)


def _write_mux(
    src: Path,
    tmp: Path,
    fmt: str,
    out: Path,
    info: VideoInfo,
    foley48: np.ndarray,
    start: float,
    plan: MuxPlan,
) -> None:
    """Copy (or re-encode, per `plan`) the video of `src` and encode the Foley track into `tmp` (muxer `fmt`)."""
    # AAC priming: the encoder emits 1024 priming samples before sample 0, as a first packet at pts -1024. The
    # MP4/MOV muxer marks them for skipping (an edit list with media_time 1024; FFmpeg's demuxer turns it into
    # skip-samples side data the decoder applies) only when that packet lies at negative time, i.e. when the track
    # starts at time 0; a track starting later gets an empty edit rounded to the movie's 1 ms timescale and its
    # priming plays (measured: 1024 samples late). So the track starts at file time 0, not at the first frame
    # (silence before the first frame costs nothing), or at the first frame floored to a whole ms if that is
    # negative. Matroska signals the delay too (CodecDelay) and keeps ms timestamps, which 0 satisfies.
    audio_start = min(0.0, math.floor(info.start_time * 1000.0) / 1000.0)
    first_pts = round(audio_start * _MUX_RATE)
    video_end = info.start_time + info.duration
    total = math.ceil((video_end - audio_start) * _MUX_RATE - 1e-6)
    offset = round((info.start_time + start - audio_start) * _MUX_RATE)

    with _open_input(src) as source:
        in_video = source.streams[info.video_stream_index]
        try:
            output: OutputContainer = av.open(str(tmp), mode="w", format=fmt)
        except (av.error.FFmpegError, OSError) as err:
            raise MuxError(f"Cannot create {out}: {err}. Check that the folder is writable.") from err
        with output:
            if plan.video == "copy":
                try:
                    out_video = output.add_stream_from_template(in_video)
                except ValueError as err:
                    raise MuxError(f"{out.suffix} cannot hold the source's {info.codec} video ({err}); choose a "
                                   ".mkv output name") from err
                packets = _copied_packets(source, in_video, out_video, fmt)
            else:
                out_video = output.add_stream(_REENCODE_CODEC, options=dict(_REENCODE_OPTIONS))
                out_video.width, out_video.height = info.width + info.width % 2, info.height + info.height % 2
                out_video.pix_fmt = "yuv420p"
                out_video.time_base = in_video.time_base
                out_video.codec_context.time_base = in_video.time_base
                if in_video.average_rate:
                    out_video.codec_context.framerate = in_video.average_rate
                packets = _reencoded_packets(source, in_video, out_video, info)
            out_audio = output.add_stream("aac", rate=_MUX_RATE, layout="mono")
            out_audio.bit_rate = _MUX_BIT_RATE
            frames = _audio_frames(foley48, offset, total, first_pts)
            audio_time = audio_start  # time of the next audio frame to encode

            def push_audio(until: float | None) -> None:
                nonlocal audio_time
                while until is None or audio_time <= until:
                    frame = next(frames, None)
                    if frame is None:
                        output.mux(out_audio.encode(None))
                        audio_time = math.inf
                        return
                    output.mux(out_audio.encode(frame))
                    audio_time += frame.samples / _MUX_RATE

            for packet in packets:
                t = _packet_time(packet)
                if t is not None and audio_time < math.inf:
                    push_audio(t + _INTERLEAVE_AHEAD)
                output.mux(packet)
            if audio_time < math.inf:
                push_audio(None)


# ---- still images ---------------------------------------------------------------------------------------------
STILL_SUFFIXES = (".png", ".jpg", ".jpeg")
STILL_FPS = 25


def is_still_image(path: PathLike) -> bool:
    """Whether `path` names a still image the engine opens as a video (PNG or JPEG, by suffix)."""
    return Path(path).suffix.lower() in STILL_SUFFIXES


def still_video(image: PathLike, out: PathLike, duration: float, *, fps: int = STILL_FPS) -> Path:
    """Make `out` (an MP4) a video of `duration` seconds that shows `image` (PNG/JPEG) on every frame: H.264 at
    `fps`, CRF 18, even size (a pixel of the last row/column repeated if odd), written atomically. The image-to-
    audio use: every reader, the hit detector and the mux then treat it as any video. Returns `out`.

    Raises VideoNotFoundError / VideoReadError (not a readable image), InvalidRequestError (bad duration)."""
    src = _existing_file(image)
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and 0 < duration <= 24 * 3600):
        raise InvalidRequestError(f"a still image's length must be a positive number of seconds, got {duration!r}")
    try:
        with av.open(str(src)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is None:
                raise VideoReadError(f"{src.name} holds no picture; open a PNG or JPEG image")
            frame = next(container.decode(stream), None)
    except av.error.FFmpegError as err:
        raise _read_error(src, err, "decode") from err
    if frame is None:
        raise VideoReadError(f"No picture of {src.name} decodes: the image is empty or damaged")
    rgb = frame.to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    target = Path(out)
    n = max(1, math.ceil(duration * fps - 1e-9))
    try:
        with atomic_replace(target, suffix=".part") as tmp, av.open(str(tmp), mode="w", format="mp4") as output:
            stream = output.add_stream(_REENCODE_CODEC, rate=fps, options=dict(_REENCODE_OPTIONS))
            stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            stream.pix_fmt = "yuv420p"
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            for i in range(n):
                picture.pts = i
                output.mux(stream.encode(picture))
            output.mux(stream.encode(None))
    except av.error.FFmpegError as err:
        raise MuxError(f"Cannot write {target}: {err}") from err
    return target


def mux_foley(
    video_path: PathLike,
    audio: np.ndarray,
    sample_rate: int,
    start: float,
    out_path: PathLike,
    *,
    overwrite: bool = False,
    plan: MuxPlan | None = None,
) -> Path:
    """Write a copy of a video with the Foley as its only audio track.

    The video stream is copied packet for packet (same codec, bytes and timestamps; rotation kept; no re-encode)
    wherever the output container can hold its codec; timestamps that would make the muxer fail (a missing or
    repeated DTS, a DTS after its PTS, as FFmpeg derives for B-frame Matroska sources) are repaired as FFmpeg's
    remuxer does. Where the container cannot hold the codec (Theora or VP8 into MP4) the video is re-encoded to
    H.264 at CRF 18 (visually lossless), every frame at its own timestamp, a rotated source turned upright in the
    pixels; `mux_plan` says beforehand which it will be (pass its result as `plan` so it is not worked out again).
    One 48 kHz mono AAC track is added whose content is silence except `audio` (mono float32 at `sample_rate`),
    whose sample 0 plays at `start` seconds after the first video frame; audio past the video's end is cut. The
    AAC track spans the whole video. The container follows the suffix of `out_path` (.mp4, .m4v, .mov, .mkv). The
    file is written to a temp file beside `out_path` and renamed into place; the source is only read. Other
    streams of the source (its own audio, subtitles) are not copied. Matroska stores times in whole
    milliseconds, so a source with finer timestamps keeps its packets but their times round to 1 ms in .mkv.

    Raises:
        VideoNotFoundError, VideoReadError, NoVideoStreamError: the source cannot be used.
        SegmentOutOfRangeError: `start` is not within [0, duration).
        InvalidRequestError: `audio` is not mono float audio or `sample_rate` is not positive.
        MuxError: `out_path` is the source, already exists (without `overwrite`), has an unsupported suffix, or
            writing failed.
    """
    src = _existing_file(video_path)
    out = Path(out_path)
    rate = _check_rate(sample_rate)
    if _same_file(src, out):
        raise MuxError(f"{out.name} is the source video itself; it is never overwritten. Choose another output name.")
    fmt = _output_format(out)
    if out.exists() and not overwrite:
        raise MuxError(f"{out} already exists: choose another name, or allow overwriting it.")
    if out.exists() and not out.is_file():
        raise MuxError(f"{out} exists and is not a file: choose another name.")

    data = np.asarray(audio)
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 1:
        raise InvalidRequestError(f"audio must be mono, shape (n,), got {data.shape}")
    if not np.issubdtype(data.dtype, np.floating):
        raise InvalidRequestError(f"audio must be floating point in [-1, 1], got dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise InvalidRequestError("audio holds NaN or infinite samples")
    data = np.clip(data, -1.0, 1.0).astype(np.float32)

    info = probe_video(src)
    if not math.isfinite(start) or start < 0 or start >= info.duration:
        raise SegmentOutOfRangeError(
            f"Foley start {start:.3f} s lies outside the video: choose a start from 0 to "
            f"{info.duration:.3f} s (exclusive)."
        )
    plan = plan or _plan(src, info, out, fmt)
    foley48 = _resample_mono(data, rate, _MUX_RATE)

    with atomic_replace(out, suffix=".part") as tmp:
        try:
            _write_mux(src, tmp, fmt, out, info, foley48, start, plan)
        except av.error.FFmpegError as err:
            raise MuxError(
                f"Writing {out.name} failed: {err}. Try a .mkv output name, or re-export the video."
            ) from err
    return out
