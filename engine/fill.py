"""`foley fill`: Foley for a whole video, headless, resumable (the editor's Fill Video without the window).

The video is covered by overlapping segments (`fill_starts`, neighbours overlapping by `overlap` s, the last one
flush with the end); each gets one take (seed + its index) and the takes are mixed with equal-power crossfades
into one track of the video's length (`render_mix`). Everything lands in the output folder:

    OUT/fill.json               the plan: video (size, mtime), bundle, settings, segment starts
    OUT/segments/seg-NNN.wav    each segment's take as generated (+ seg-NNN.json, its sidecar)
    OUT/foley.wav               the whole track, a 24-bit Broadcast WAV at the video's start timecode
    OUT/stems/seg-NNN.wav       each take as it sounds in the mix (fades applied), a BWF at its position

A rerun with the same plan reuses every finished segment (a segment is finished when its WAV and sidecar are
both there: each is written atomically, the sidecar last), so an interrupted fill resumes where it stopped. A
folder holding another plan is refused unless `restart` is given (then its segments are generated again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from engine.atomic import atomic_write_text
from engine.bwf import parse_timecode, write_bwf
from engine.errors import Cancelled, InvalidRequestError
from engine.media import probe_video, write_wav
from engine.timeline import DEFAULT_FILL_OVERLAP_S, MixClip, clip_stems, fill_starts, render_mix

if TYPE_CHECKING:
    from engine.interchange import StemClip
    from engine.pipeline import FoleyEngine, Progress

PLAN_VERSION = 1


@dataclass
class FillResult:
    track: Path
    stems: list[Path]
    segments: list[Path]
    starts: list[float]
    sample_rate: int
    generated: int  # segments generated in this run (the rest were reused)
    reused: int
    stem_clips: list[StemClip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _video_key(video: Path) -> dict[str, Any]:
    st = video.stat()
    return {"path": str(video.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _seg_name(i: int) -> str:
    return f"seg-{i:03d}"


def fill_video(engine: FoleyEngine, video: str | os.PathLike[str], out: str | os.PathLike[str], *,
               overlap: float = DEFAULT_FILL_OVERLAP_S, seed: int = 0, steps: int | None = None,
               guidance: float | None = None, hits: str = "auto", sample_rate: int | None = None,
               restart: bool = False, on_progress: Callable[[Progress], None] | None = None,
               should_cancel: Callable[[], bool] | None = None) -> FillResult:
    """Fill the whole of `video` (see the module docstring). `hits`: "auto" (the detector per segment, where the
    bundle has one) or "none". Raises Cancelled (finished segments stay for the resume), InvalidRequestError for
    bad settings or a folder holding another plan, and the engine's video errors."""
    from engine.pipeline import Progress

    if hits not in ("auto", "none"):
        raise InvalidRequestError(f"fill takes --hits auto or none (per segment), got {hits!r}")
    src = Path(video)
    info = probe_video(src)
    rate = int(sample_rate or engine.default_output_rate)
    if rate not in engine.output_rates:
        raise InvalidRequestError(f"sample rate {rate} Hz is not one of {', '.join(map(str, engine.output_rates))}")
    seg = engine.segment_duration
    try:
        starts = fill_starts(info.duration, seg, overlap, info.fps)
    except ValueError as exc:
        raise InvalidRequestError(f"--overlap: {exc}") from exc
    defaults = engine.manifest.sampler_defaults
    plan = {
        "version": PLAN_VERSION, "video": _video_key(src), "bundle": engine.manifest.name,
        "segment_duration": seg, "overlap": overlap, "seed": seed,
        "steps": int(steps if steps is not None else defaults["steps"]),
        "guidance": float(guidance if guidance is not None else defaults["guidance"]),
        "hits": hits, "sample_rate": rate, "starts": starts,
    }
    root = Path(out)
    plan_path = root / "fill.json"
    if plan_path.exists() and not restart:
        try:
            old = json.loads(plan_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != plan:
            raise InvalidRequestError(
                f"{root} holds a fill of another video or with other settings ({plan_path.name} differs); choose "
                "another --out folder, or pass --restart to start this one again")
    seg_dir = root / "segments"
    seg_dir.mkdir(parents=True, exist_ok=True)
    if restart:
        for f in [*seg_dir.glob("seg-*.*"), *(root / "stems").glob("seg-*.wav")]:
            f.unlink()
    atomic_write_text(plan_path, json.dumps(plan, indent=2) + "\n")

    n = len(starts)
    generated = reused = 0
    warnings: list[str] = []
    clips: list[MixClip] = []
    seg_paths: list[Path] = []
    for i, start in enumerate(starts):
        wav, side = seg_dir / f"{_seg_name(i)}.wav", seg_dir / f"{_seg_name(i)}.json"
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"fill cancelled after {i} of {n} segments; run it again to resume")
        if wav.exists() and side.exists():
            audio, got_rate = sf.read(wav, dtype="float32")
            if got_rate != rate or audio.ndim != 1:
                raise InvalidRequestError(f"{wav} is not a mono {rate} Hz take of this fill; pass --restart")
            reused += 1
        else:
            def progress(p: Progress, i: int = i) -> None:
                if on_progress is not None:
                    on_progress(Progress(p.stage, (i + p.fraction) / n,
                                         f"segment {i + 1} of {n}: {p.message}", p.step, p.total))

            result = engine.generate(src, start, candidates=1, seed=seed + i, steps=steps, guidance=guidance,
                                     hits="auto" if hits == "auto" else [], sample_rate=rate,
                                     on_progress=progress, should_cancel=should_cancel)
            cand = result.candidates[0]
            warnings.extend(w for w in result.warnings if w not in warnings)
            audio = cand.audio
            write_wav(wav, audio, cand.sample_rate)
            atomic_write_text(side, json.dumps({**cand.settings, "sample_rate": cand.sample_rate,
                                                "wav": wav.name, "segment": i}, indent=2) + "\n")
            generated += 1
        clips.append(MixClip(_seg_name(i), round(start * rate), np.asarray(audio, np.float32)))
        seg_paths.append(wav)
        if on_progress is not None:
            on_progress(Progress("segment", (i + 1) / n, f"segment {i + 1} of {n} done"))

    from engine.interchange import StemClip

    total = round(info.duration * rate)
    tc = round(parse_timecode(info.timecode, info.fps) * rate)
    history = f"A=PCM,F={rate},W=24,M=mono,T=MDSGen Foley {engine.manifest.name}\r\n"
    track = write_bwf(root / "foley.wav", render_mix(clips, total, rate), rate, time_reference=tc,
                      description=f"Foley for {src.name} ({n} segments)", originator_reference=engine.manifest.name,
                      coding_history=history)
    stem_dir = root / "stems"
    stems, stem_clips = [], []
    for stem in clip_stems(clips, total, rate):
        p = write_bwf(stem_dir / f"{stem.key}.wav", stem.audio, rate, time_reference=tc + stem.start,
                      description=f"Foley stem {stem.key} of {src.name} at {stem.start / rate:.3f} s",
                      originator_reference=engine.manifest.name, coding_history=history)
        stems.append(p)
        stem_clips.append(StemClip(stem.key, p, stem.start, len(stem.audio)))
    return FillResult(track, stems, seg_paths, starts, rate, generated, reused, stem_clips, warnings)
