"""Export: the Foley track as a WAV and/or muxed into a copy of the video, Broadcast WAV stems, an NLE timeline;
optionally loudness-normalised.

`run_export` is a job function (it runs off the GUI thread on an `ExportSession`, a snapshot of the project). The
mux copies the video stream packet for packet and adds the whole-length Foley track as AAC at 48 kHz from time 0,
so every clip sits where it sits on the timeline, to the sample (`engine.mux_foley`). The stems follow `foley
fill`'s layout in the folder chosen:

    FOLDER/foley.wav            the whole track, 48 kHz 24-bit Broadcast WAV at the video's start timecode
    FOLDER/stems/seg-NNN.wav    each clip as it sounds in the mix (gain, fades, crossfades applied), in time order,
                                its bext time reference = the video's start timecode + the clip's position

Placed at their time references the stems sum to the track (to 24-bit rounding): both are rendered at 48 kHz from
the clips resampled to 48 kHz (a 16 kHz project's clips start at 3x their sample), `engine.clip_stems` and
`engine.render_mix`, with the loudness gain (if any) applied to every clip. The timeline (.otio or FCP7 .xml,
`engine.export_timeline`) holds the video, those stems and the project's markers, and starts at the same timecode.
Every file is written to a temp file and renamed into place; the source video is never a target; a stems export
that replaces an earlier one also removes the earlier stems it did not write again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from engine import (
    MUX_SUFFIXES,
    TIMELINE_SUFFIXES,
    Cancelled,
    MixClip,
    StemClip,
    TimelineMarker,
    clip_stems,
    db_to_gain,
    export_timeline,
    mux_foley,
    mux_plan,
    normalize_loudness,
    parse_timecode,
    probe_video,
    render_mix,
    resample,
    write_bwf,
    write_wav,
)
from foley_app.errors import ExportError, UserMessage

STEM_RATE = 48_000
TRACK_FILE = "foley.wav"  # the whole track, in the stems folder
STEMS_SUBDIR = "stems"
STEM_GLOB = "seg-*.wav"
TIMELINE_FORMATS = (("OpenTimelineIO (.otio)", ".otio"), ("Final Cut Pro 7 XML (.xml)", ".xml"))


@dataclass(frozen=True)
class ExportRequest:
    video_path: str | None
    mp4_path: Path | None
    wav_path: Path | None
    normalize: bool = False
    target_lufs: float = -23.0
    overwrite: bool = False
    stems_dir: Path | None = None  # a folder: foley.wav + stems/seg-NNN.wav (48 kHz 24-bit BWF)
    timeline_path: Path | None = None  # .otio or .xml (needs the stems: it refers to them)


@dataclass(frozen=True)
class ExportSession:
    """What an export reads from the project, taken on the GUI thread: the clips (at the project's rate), the
    track's length, the video's facts for the timeline and the time references, the markers."""

    clips: list[MixClip]
    total_samples: int
    sample_rate: int
    name: str = "Foley"
    labels: dict[str, str] = field(default_factory=dict)  # clip key -> its label ("S3 #1")
    video_duration: float = 0.0
    fps: float = 25.0
    timecode: str | None = None  # the video's start timecode, if known
    markers: tuple[TimelineMarker, ...] = ()


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    stems: list[Path] = field(default_factory=list)
    measured_lufs: float | None = None
    gain_db: float | None = None
    notes: list[str] = field(default_factory=list)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def stems_targets(folder: Path) -> list[Path]:
    """The files of an earlier stems export in `folder` that a new one would replace."""
    old = sorted((folder / STEMS_SUBDIR).glob(STEM_GLOB)) if (folder / STEMS_SUBDIR).is_dir() else []
    return [p for p in (folder / TRACK_FILE, *old) if p.exists()]


def existing_targets(req: ExportRequest) -> list[Path]:
    """What the request would replace: its files that exist, and an earlier stems export in its folder."""
    found = [p for p in (req.mp4_path, req.wav_path, req.timeline_path) if p is not None and p.exists()]
    if req.stems_dir is not None:
        found += stems_targets(req.stems_dir)
    return found


def check_request(req: ExportRequest) -> None:
    """Reject what can be known wrong before any work (ExportError says what to choose instead)."""
    if req.mp4_path is None and req.wav_path is None and req.stems_dir is None and req.timeline_path is None:
        raise ExportError("Nothing to export: choose a video file, a WAV file, stems or a timeline.")
    if req.mp4_path is not None:
        if not req.video_path:
            raise ExportError("There is no video to put the Foley into: open a video first, or export a WAV only.")
        if _same_file(Path(req.video_path), req.mp4_path):
            raise ExportError(f"{req.mp4_path.name} is the source video; it is never overwritten. Choose another name.")
    if req.timeline_path is not None:
        if req.stems_dir is None:
            raise ExportError("A timeline refers to the Foley stems: export the stems too (choose a folder for them).")
        if req.timeline_path.suffix.lower() not in TIMELINE_SUFFIXES:
            raise ExportError(f"{req.timeline_path.name}: a timeline is written as "
                              f"{' or '.join(s for _n, s in TIMELINE_FORMATS)}; choose one of those.")
    if req.stems_dir is not None and req.stems_dir.exists() and not req.stems_dir.is_dir():
        raise ExportError(f"{req.stems_dir} is a file; the stems need a folder. Choose another name.")
    existing = existing_targets(req)
    if existing and not req.overwrite:
        raise ExportError(f"{existing[0]} already exists. Choose another name, or confirm replacing it.")
    track = req.stems_dir / TRACK_FILE if req.stems_dir is not None else None
    targets = [p for p in (req.mp4_path, req.wav_path, track, req.timeline_path) if p is not None]
    for i, a in enumerate(targets):
        if req.video_path and _same_file(Path(req.video_path), a):
            raise ExportError(f"{a.name} is the source video; it is never overwritten. Choose another name.")
        if any(_same_file(a, b) for b in targets[i + 1:]):
            raise ExportError(f"{a} is chosen for two outputs; each output needs a file of its own.")


@dataclass
class ExportDefaults:
    """What the export dialog starts from (the editor's `export_defaults`): the project's names and settings."""

    video_path: str | None
    mp4_path: str
    wav_path: str
    normalize: bool
    target_lufs: float
    sample_rate: int = 16_000  # the project's: the WAV's rate
    stems_dir: str = ""
    timeline_path: str = ""
    markers: int = 0  # how many markers the timeline gets


class PrompterLike(Protocol):
    def error(self, msg: UserMessage) -> None: ...
    def ask(self, title: str, text: str, choices: list[str], default: str, *, details: str = "") -> str: ...


def build_request(video: str | None, mp4: Path | None, wav: Path | None, normalize: bool, target: float,
                  prompter: PrompterLike, *, stems: Path | None = None, timeline: Path | None = None,
                  timeline_suffix: str = ".otio") -> ExportRequest | None:
    """The export dialog's choices as a request: the same rules as `check_request`, put to the user (an error
    that says what to choose, a question before replacing files); None if the user backs out."""
    if mp4 is None and wav is None and stems is None and timeline is None:
        prompter.error(UserMessage("Nothing to export", "Neither the video, the WAV, the stems nor a timeline is "
                                   "selected.", "Tick at least one of them."))
        return None
    if timeline is not None:
        known = [s for _n, s in TIMELINE_FORMATS]
        if timeline.suffix.lower() not in known:
            timeline = timeline.with_name(timeline.name + timeline_suffix)
        if stems is None:
            prompter.error(UserMessage("The timeline needs the stems", "A timeline refers to the Foley stems.",
                                       "Tick the stems too and choose a folder for them."))
            return None
    if stems is not None and stems.exists() and not stems.is_dir():
        prompter.error(UserMessage("Not a folder", f"{stems} is a file; the stems go into a folder.",
                                   "Choose a folder (it is made if it does not exist)."))
        return None
    if mp4 is not None and mp4.suffix.lower() not in MUX_SUFFIXES:
        prompter.error(UserMessage("Unsupported video format", f"{mp4.name} does not end in "
                                   f"{', '.join(MUX_SUFFIXES[:-1])} or {MUX_SUFFIXES[-1]}.",
                                   "Choose one of those (.mkv holds every video codec)."))
        return None
    if wav is not None and wav.suffix.lower() != ".wav":
        wav = wav.with_name(wav.name + ".wav")
    targets = [p for p in (mp4, wav, stems / TRACK_FILE if stems is not None else None, timeline) if p is not None]
    for i, a in enumerate(targets):
        if video and _same_file(Path(video), a):
            prompter.error(UserMessage("That is the source video", f"{a.name} is the video you are working on; the "
                                       "editor never overwrites it.", "Choose another name for the export."))
            return None
        if any(_same_file(a, b) for b in targets[i + 1:]):
            prompter.error(UserMessage("One file for two outputs", f"{a} is chosen for two outputs.",
                                       "Give each output a file of its own."))
            return None
    existing = [p for p in (mp4, wav, timeline) if p is not None and p.exists()]
    earlier_stems = stems_targets(stems) if stems is not None else []
    overwrite = False
    if existing or earlier_stems:
        names = [p.name for p in existing]
        if earlier_stems:
            names.append(f"an earlier stems export in {stems} ({len(earlier_stems)} files)")
        details = "Replacing is atomic: the old file stays intact until the new one is complete."
        if earlier_stems:
            details += " Earlier stems that this export does not write again are removed."
        if prompter.ask("Replace files?", f"{', '.join(names)} already exist{'s' if len(names) == 1 else ''}.",
                        ["Replace", "Cancel"], "Cancel", details=details) != "Replace":
            return None
        overwrite = True
    return ExportRequest(video, mp4, wav, normalize, target, overwrite, stems, timeline)


def resample_to(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (the engine's, Kaiser window); sample 0 stays at time 0."""
    return resample(audio, rate_in, rate_out)


def stems_at(session: ExportSession, rate: int, gain: float = 1.0) -> tuple[list[MixClip], np.ndarray]:
    """The stems (each clip as it sounds in the mix, in time order) and the track at `rate`, from the session's
    clips resampled to it, every clip's gain times `gain`: placed at their starts the stems sum to the track."""
    r = session.sample_rate
    clips = [MixClip(c.key, round(c.start * rate / r), resample_to(np.asarray(c.audio), r, rate), c.gain * gain)
             for c in session.clips]
    total = round(session.total_samples * rate / r)
    stems = sorted(clip_stems(clips, total, rate), key=lambda s: (s.start, s.key))
    return stems, render_mix(clips, total, rate)


def _write_stems(req: ExportRequest, session: ExportSession, gain: float, result: ExportResult,
                 report: Callable[[float, str], None], check: Callable[[], None], span: tuple[float, float]
                 ) -> tuple[list[StemClip], float]:
    """foley.wav + stems/seg-NNN.wav in the request's folder; returns the stems for a timeline and the start
    timecode (s)."""
    assert req.stems_dir is not None
    folder, rate = req.stems_dir, STEM_RATE
    timecode = session.timecode
    if timecode is None and req.video_path and Path(req.video_path).is_file():
        timecode = probe_video(req.video_path).timecode  # a project saved before the editor kept it
    tc_s = parse_timecode(timecode, session.fps)
    tc = round(tc_s * rate)
    stems, track = stems_at(session, rate, gain)
    history = f"A=PCM,F={rate},W=24,M=mono,T=MDSGen Foley editor\r\n"
    ref = session.name.encode("ascii", "replace").decode()[:32]
    lo, hi = span
    written: list[StemClip] = []
    for i, stem in enumerate(stems):
        check()
        name = f"seg-{i:03d}"
        report(lo + (hi - lo) * i / max(len(stems) + 1, 1), f"writing stem {i + 1} of {len(stems)}")
        label = session.labels.get(stem.key, stem.key)
        path = write_bwf(folder / STEMS_SUBDIR / f"{name}.wav", stem.audio, rate, time_reference=tc + stem.start,
                         description=f"Foley stem {name} ({label}) of {session.name} at {stem.start / rate:.3f} s",
                         originator_reference=ref, coding_history=history)
        result.stems.append(path)
        written.append(StemClip(name, path, stem.start, len(stem.audio)))
    check()
    report(lo + (hi - lo) * len(stems) / (len(stems) + 1), f"writing {TRACK_FILE}")
    result.written.append(write_bwf(folder / TRACK_FILE, track, rate, time_reference=tc,
                                    description=f"Foley for {session.name} ({len(stems)} stems)",
                                    originator_reference=ref, coding_history=history))
    keep = {p.name for p in result.stems}
    for old in (folder / STEMS_SUBDIR).glob(STEM_GLOB):  # an earlier export's extra stems would mislead a DAW
        if old.name not in keep:
            old.unlink(missing_ok=True)
    if timecode:
        result.notes.append(f"The stems are placed at the video's start timecode {timecode}.")
    return written, tc_s


def run_export(req: ExportRequest, session: ExportSession, report: Callable[[float, str], None],
               should_cancel: Callable[[], bool]) -> ExportResult:
    check_request(req)
    result = ExportResult()
    clips, total_samples, sample_rate = session.clips, session.total_samples, session.sample_rate

    def check() -> None:
        if should_cancel():
            done = [*result.written, *result.stems]
            raise Cancelled("export cancelled; no file was written" if not done else
                            f"export cancelled after writing {len(done)} file(s): {', '.join(p.name for p in done)}")

    report(0.05, "mixing the Foley track")
    track = render_mix(clips, total_samples, sample_rate)
    check()
    gain = 1.0
    if req.normalize:
        report(0.1, f"normalising loudness to {req.target_lufs:g} LUFS")
        track, measured, gain_db = normalize_loudness(track, sample_rate, req.target_lufs)
        result.measured_lufs, result.gain_db = measured, gain_db
        gain = db_to_gain(gain_db) if math.isfinite(gain_db) else 1.0
        if measured == float("-inf"):
            result.notes.append("The Foley track is silent; loudness normalisation left it unchanged.")
        elif gain_db < req.target_lufs - measured - 0.05:
            result.notes.append(
                f"Normalised to {measured + gain_db:.1f} LUFS, not {req.target_lufs:g}: more gain would clip peaks."
            )
        check()
    if req.wav_path is not None:
        report(0.15, f"writing {req.wav_path.name}")
        result.written.append(write_wav(req.wav_path, track, sample_rate))
        check()
    if req.mp4_path is not None:
        assert req.video_path is not None
        plan = mux_plan(req.video_path, req.mp4_path)
        if plan.video == "reencode":
            result.notes.append(f"The video was re-encoded: {plan.note}")
        report(0.2, f"writing {req.mp4_path.name} ("
                    + ("copying the video stream" if plan.video == "copy" else "re-encoding the video to H.264")
                    + ", encoding AAC)")
        result.written.append(
            mux_foley(req.video_path, track, sample_rate, 0.0, req.mp4_path, overwrite=req.overwrite, plan=plan)
        )
        check()
    if req.stems_dir is not None:
        stems, tc_s = _write_stems(req, session, gain, result, report, check, (0.6, 0.95))
        if req.timeline_path is not None:
            check()
            report(0.95, f"writing {req.timeline_path.name}")
            video = req.video_path if req.video_path and Path(req.video_path).is_file() else None
            if video is None:
                result.notes.append("The video was not found: the timeline holds the Foley stems only.")
            result.written.append(export_timeline(
                req.timeline_path, session.name, video, session.video_duration, session.fps, stems, STEM_RATE,
                list(session.markers), tc_s))
    report(1.0, "done")
    return result
