"""Muxing the Foley into a copy of a video: `mux_foley`, and `mux_plan` (copy or re-encode) beforehand."""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
import av.error
import numpy as np

from engine.atomic import atomic_replace
from engine.errors import InvalidRequestError, MuxError, SegmentOutOfRangeError
from engine.media.audio_io import _check_rate
from engine.media.probe import PathLike, VideoInfo, _existing_file, _frame_pts, _open_input, probe_video

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.container import InputContainer, OutputContainer
    from av.packet import Packet
    from av.video.stream import VideoStream

log = logging.getLogger("engine.media")  # the package's logger (the name it had as one module)

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
