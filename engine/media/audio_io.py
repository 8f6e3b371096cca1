"""Audio input/output: `write_wav` (24-bit PCM, atomic) and `read_audio` (any container, resampled, on the
first video frame's time origin where the file has video)."""

from __future__ import annotations

import contextlib
import math
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error
import numpy as np
import soundfile as sf

from engine.atomic import atomic_replace
from engine.errors import InvalidRequestError, NoAudioStreamError, SegmentOutOfRangeError
from engine.media.probe import (
    PathLike,
    _existing_file,
    _frame_pts,
    _is_real_video,
    _no_streams,
    _open_input,
    _read_error,
)

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer


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
