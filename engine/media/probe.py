"""Probing a video file: `probe_video` and its `VideoInfo`, and the opening, error and timestamp helpers the
other media modules share.

Time convention (the whole `engine.media` package): every time taken or returned is in seconds *relative to the
first video frame* of the file; its presentation time on the file's own timeline is `VideoInfo.start_time`.
`VideoInfo.rotation` is the clockwise angle to apply to the stored pixels for display.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error

from engine.errors import NoVideoStreamError, SegmentOutOfRangeError, VideoNotFoundError, VideoReadError

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

PathLike = str | os.PathLike[str]

# Two timestamps closer than this are the same instant (absorbs float rounding of k / fps and of pts * time_base).
_EPS = 1e-6


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
