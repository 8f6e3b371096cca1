"""Export: the Foley track as a WAV and/or muxed into a copy of the video, optionally loudness-normalised.

`run_export` is a job function (it runs off the GUI thread on a snapshot of the clips). The mux copies the video
stream packet for packet and adds the whole-length Foley track as AAC at 48 kHz from time 0, so every clip sits
where it sits on the timeline, to the sample (`engine.mux_foley`). Every file is written to a temp file and renamed
into place; the source video is never a target.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine import Cancelled, mux_foley, mux_plan, normalize_loudness, write_wav
from foley_app.document.timeline import MixClip, render_mix
from foley_app.errors import ExportError


@dataclass(frozen=True)
class ExportRequest:
    video_path: str | None
    mp4_path: Path | None
    wav_path: Path | None
    normalize: bool = False
    target_lufs: float = -23.0
    overwrite: bool = False


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    measured_lufs: float | None = None
    gain_db: float | None = None
    notes: list[str] = field(default_factory=list)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_request(req: ExportRequest) -> None:
    """Reject what can be known wrong before any work (ExportError says what to choose instead)."""
    if req.mp4_path is None and req.wav_path is None:
        raise ExportError("Nothing to export: choose a video file, a WAV file, or both.")
    if req.mp4_path is not None:
        if not req.video_path:
            raise ExportError("There is no video to put the Foley into: open a video first, or export a WAV only.")
        if _same_file(Path(req.video_path), req.mp4_path):
            raise ExportError(f"{req.mp4_path.name} is the source video; it is never overwritten. Choose another name.")
    for target in (req.mp4_path, req.wav_path):
        if target is not None and target.exists() and not req.overwrite:
            raise ExportError(f"{target} already exists. Choose another name, or confirm replacing it.")
    if req.mp4_path is not None and req.wav_path is not None and _same_file(req.mp4_path, req.wav_path):
        raise ExportError("The video and the WAV must be different files.")


def run_export(req: ExportRequest, clips: list[MixClip], total_samples: int, sample_rate: int,
               report: Callable[[float, str], None], should_cancel: Callable[[], bool]) -> ExportResult:
    check_request(req)
    result = ExportResult()

    def check() -> None:
        if should_cancel():
            raise Cancelled("export cancelled; no file was written" if not result.written else
                            f"export cancelled after writing {', '.join(p.name for p in result.written)}")

    report(0.05, "mixing the Foley track")
    track = render_mix(clips, total_samples, sample_rate)
    check()
    if req.normalize:
        report(0.3, f"normalising loudness to {req.target_lufs:g} LUFS")
        track, measured, gain_db = normalize_loudness(track, sample_rate, req.target_lufs)
        result.measured_lufs, result.gain_db = measured, gain_db
        if measured == float("-inf"):
            result.notes.append("The Foley track is silent; loudness normalisation left it unchanged.")
        elif gain_db < req.target_lufs - measured - 0.05:
            result.notes.append(
                f"Normalised to {measured + gain_db:.1f} LUFS, not {req.target_lufs:g}: more gain would clip peaks."
            )
        check()
    if req.wav_path is not None:
        report(0.45, f"writing {req.wav_path.name}")
        result.written.append(write_wav(req.wav_path, track, sample_rate))
        check()
    if req.mp4_path is not None:
        assert req.video_path is not None
        plan = mux_plan(req.video_path, req.mp4_path)
        if plan.video == "reencode":
            result.notes.append(f"The video was re-encoded: {plan.note}")
        report(0.6, f"writing {req.mp4_path.name} ("
                    + ("copying the video stream" if plan.video == "copy" else "re-encoding the video to H.264")
                    + ", encoding AAC)")
        result.written.append(
            mux_foley(req.video_path, track, sample_rate, 0.0, req.mp4_path, overwrite=req.overwrite, plan=plan)
        )
    report(1.0, "done")
    return result
