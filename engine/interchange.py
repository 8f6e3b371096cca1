"""Interchange with an editor's NLE and DAW: an OpenTimelineIO timeline of the video, the Foley stems and markers.

`write_timeline` builds the timeline with the `opentimelineio` package and writes it with OTIO's adapter for the
file's suffix: `.otio` (OTIO's JSON, what Resolve, Hiero and the OTIO tools read), `.xml` (Final Cut Pro 7 XML
through the `otio-fcp-adapter` plug-in: how a timeline reaches Premiere and Resolve), `.otioz` (a bundle with
the media). The video is one clip on a video track; the stems are clips on audio tracks, placed at their sample
positions (a stem's crossfade overlaps its neighbour, so neighbours alternate between two tracks, the way a DAW
checkerboards overlapping regions); markers sit on the timeline's stack. In OTIO's JSON, times are exact
rationals: the video at its frame rate, the stems at their sample rate. Final Cut Pro 7 XML counts in frames of a
SMPTE rate, so there every time is rounded to the nearest frame of the video's rate (25 fps where the video's
rate is not a SMPTE one, e.g. a 20 fps game capture); the stems' BWF time references keep the exact sample. The
timeline starts at the video's start timecode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidRequestError

TIMELINE_SUFFIXES = {".otio": "otio_json", ".xml": "fcp_xml", ".otioz": "otioz"}
FALLBACK_FRAME_RATE = 25.0


@dataclass(frozen=True)
class StemClip:
    """One audio file on the timeline: `path`, its first sample at `start` samples of the video, `length` samples."""

    name: str
    path: Path
    start: int
    length: int


@dataclass(frozen=True)
class TimelineMarker:
    name: str
    time: float  # seconds from the first video frame
    note: str = ""


def _otio():
    try:
        import opentimelineio as otio
    except ImportError as exc:  # a declared dependency: only a broken install gets here
        raise InvalidRequestError("Timeline export needs the opentimelineio package: pip install opentimelineio") \
            from exc
    return otio


def _url(path: Path) -> str:
    return path.resolve().as_uri()


def _lanes(stems: Sequence[StemClip]) -> list[list[StemClip]]:
    """Stems in start order, each on the first lane whose last stem has ended (greedy interval colouring)."""
    lanes: list[list[StemClip]] = []
    for stem in sorted(stems, key=lambda s: (s.start, s.name)):
        for lane in lanes:
            if lane[-1].start + lane[-1].length <= stem.start:
                lane.append(stem)
                break
        else:
            lanes.append([stem])
    return lanes


def smpte_rate(fps: float) -> float:
    """`fps` if SMPTE timecode supports it (23.976, 24, 25, 29.97, 30, 50, 59.94, 60, ...), else 25."""
    otio = _otio()
    try:
        otio.opentime.to_timecode(otio.opentime.RationalTime(0, fps), fps)
        return fps
    except ValueError:
        return FALLBACK_FRAME_RATE


def build_timeline(name: str, video_path: str | os.PathLike[str] | None, video_duration: float, fps: float,
                   stems: Sequence[StemClip], sample_rate: int, markers: Sequence[TimelineMarker] = (),
                   start_timecode_s: float = 0.0, *, audio_in_frames: bool = False):
    """The `opentimelineio.schema.Timeline` of a Foley session (see the module docstring). `audio_in_frames`:
    the stems' ranges in whole frames of `fps` (for formats that count in frames) instead of samples."""
    otio = _otio()
    if fps <= 0 or sample_rate <= 0:
        raise InvalidRequestError(f"a timeline needs a positive frame rate and sample rate, got {fps}, {sample_rate}")
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange

    def samples(n: int):  # a time of the stems: exact samples, or whole frames where the format counts frames
        return rt(round(n * fps / sample_rate), fps) if audio_in_frames else rt(n, sample_rate)

    # Frame rates like 29.97 are kept as given: RationalTime takes any float rate.
    timeline = otio.schema.Timeline(name=name, global_start_time=rt(round(start_timecode_s * fps), fps))
    if video_path is not None:
        frames = max(1, round(video_duration * fps))
        vpath = Path(video_path)
        ref = otio.schema.ExternalReference(target_url=_url(vpath), available_range=tr(rt(0, fps), rt(frames, fps)))
        vtrack = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
        vtrack.append(otio.schema.Clip(name=vpath.name, media_reference=ref,
                                       source_range=tr(rt(0, fps), rt(frames, fps))))
        timeline.tracks.append(vtrack)
    for i, lane in enumerate(_lanes(stems) or [[]]):
        track = otio.schema.Track(name=f"Foley {chr(ord('A') + i)}" if i < 26 else f"Foley {i + 1}",
                                  kind=otio.schema.TrackKind.Audio)
        at = samples(0)
        for stem in lane:
            start, length = samples(stem.start), samples(stem.length)
            if start > at:
                track.append(otio.schema.Gap(source_range=tr(samples(0), start - at)))
            ref = otio.schema.ExternalReference(target_url=_url(Path(stem.path)),
                                                available_range=tr(samples(0), length))
            track.append(otio.schema.Clip(name=stem.name, media_reference=ref, source_range=tr(samples(0), length)))
            at = start + length
        timeline.tracks.append(track)
    for m in markers:
        timeline.tracks.markers.append(otio.schema.Marker(
            name=m.name, marked_range=tr(rt(round(m.time * fps), fps), rt(0, fps)),
            color=otio.schema.MarkerColor.RED, metadata={"mdsgen_foley": {"note": m.note}} if m.note else None))
    return timeline


def export_timeline(path: str | os.PathLike[str], name: str, video_path: str | os.PathLike[str] | None,
                    video_duration: float, fps: float, stems: Sequence[StemClip], sample_rate: int,
                    markers: Sequence[TimelineMarker] = (), start_timecode_s: float = 0.0) -> Path:
    """Build the session's timeline for the path's format (frames of a SMPTE rate for FCP7 XML, exact samples
    otherwise) and write it. Returns the path."""
    fmt = TIMELINE_SUFFIXES.get(Path(path).suffix.lower())
    in_frames = fmt == "fcp_xml"
    rate = smpte_rate(fps) if in_frames else fps
    timeline = build_timeline(name, video_path, video_duration, rate, stems, sample_rate, markers,
                              start_timecode_s, audio_in_frames=in_frames)
    return write_timeline(path, timeline)


def write_timeline(path: str | os.PathLike[str], timeline) -> Path:
    """Write `timeline` with the adapter for the path's suffix (`TIMELINE_SUFFIXES`), atomically for the
    single-file formats. InvalidRequestError for another suffix."""
    otio = _otio()
    target = Path(path)
    adapter = TIMELINE_SUFFIXES.get(target.suffix.lower())
    if adapter is None:
        raise InvalidRequestError(f"{target.name}: a timeline is written as "
                                  f"{', '.join(TIMELINE_SUFFIXES)}; choose one of those suffixes")
    if adapter == "otioz":
        otio.adapters.write_to_file(timeline, str(target), adapter_name=adapter)
        return target
    from engine.atomic import atomic_write_text

    atomic_write_text(target, otio.adapters.write_to_string(timeline, adapter_name=adapter))
    return target


def read_timeline(path: str | os.PathLike[str]):
    """Read a timeline back through OTIO (any adapter it has for the suffix)."""
    otio = _otio()
    target = Path(path)
    adapter = TIMELINE_SUFFIXES.get(target.suffix.lower())
    return otio.adapters.read_from_file(str(target), adapter_name=adapter)
