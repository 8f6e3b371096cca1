"""`Editor`: what the menus, keys and buttons do. It turns user intents into commands and background jobs.

Views emit intents; the editor checks them, pushes commands on the document's undo stack, and runs long work
(probing and reading videos, generating, exporting) as jobs. A generation job remembers the segment and the start
it was made for; when its result arrives, it enters the document (through a command) only if that segment still
exists at that start in the same video; otherwise it is dropped and the status bar says so. Moving or deleting a
segment also cancels the jobs made for it.

Hits. Every segment whose hits are pending (new, moved, loaded from an older project, or handed back with "Detect
Hits Again") is sent to the model's hit detector in the background, on the inference pool, shortly after the
segments stop changing. The result enters the segment only if the segment still exists at the start it was
detected for, its hits are still pending and unchanged since (`ProjectDocument.hits_token`). A model without a
detector detects nothing (the status bar says so once per model); the user adds hits by hand. A generation passes
the segment's hits as they are (`[]` = none), except while detection has not finished on a model with a detector:
then it passes "auto", so the engine detects them itself and the takes follow the picture either way.

Markers are named points on the video (Ctrl+M at the playhead, on the frame shown there): added, renamed and
deleted as commands, jumped to by the list or by next/previous; they go into the exported timeline.

Still images (PNG/JPEG) open as videos: the editor asks how long the video should be (one segment by default), makes
it with `engine.still_video` in the background in the app's folder of still videos (`AppContext.stills_dir`, in the
user's cache folder; never beside the image), and opens it; the project remembers the image, so a project whose
still video has gone (a cleaned cache, another machine) makes it again from the image when it opens.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine import (
    DIFF_FOLEY,
    MAX_HITS,
    MUX_SUFFIXES,
    Cancelled,
    GenerationResult,
    InvalidRequestError,
    NoAudioStreamError,
    TimelineMarker,
    VideoInfo,
    check_hits,
    is_still_image,
    mel_spectrogram,
    probe_video,
    read_audio,
    resample,
    still_video,
)
from foley_app.autosave import find_recoverable
from foley_app.context import AppContext, EngineState
from foley_app.document.commands import (
    AcceptTakeCommand,
    AddHitCommand,
    AddMarkerCommand,
    AddSegmentCommand,
    ClearHitsCommand,
    EditClipCommand,
    MoveHitCommand,
    MoveSegmentCommand,
    RedetectHitsCommand,
    RemoveClipCommand,
    RemoveHitCommand,
    RemoveMarkersCommand,
    RemoveSegmentsCommand,
    RenameMarkerCommand,
    SetClipGainCommand,
    SetCrossfadeCommand,
    SetTakesCommand,
    split_clip,
    with_part_take,
    without_cut,
)
from foley_app.document.project import (
    HITS_PENDING,
    HITS_USER,
    PROJECT_SUFFIX,
    Clip,
    Segment,
    Take,
    VideoRef,
    load_project,
    save_project,
)
from foley_app.document.timeline import clamp_hit, fill_starts, floor_to_frame, format_time, place_segment, segment_at
from foley_app.errors import UserMessage, explain
from foley_app.export import ExportDefaults, ExportRequest, ExportResult, ExportSession, run_export
from foley_app.frames import FrameSource, read_thumbnails
from foley_app.jobs import Job, SegmentJobMeta

log = logging.getLogger(__name__)

MEL_DEBOUNCE_MS = 250
DETECT_DEBOUNCE_MS = 300  # hit detection waits until the segments stop changing (a run of nudges, a fill)
MAX_PREPARED_PER_PASS = 8  # segments prepared ahead per pass (a whole-video fill marks many; the engine keeps 64)


class PrompterLike(Protocol):
    def error(self, msg: UserMessage) -> None: ...
    def info(self, title: str, text: str) -> None: ...
    def ask(self, title: str, text: str, choices: list[str], default: str, *, details: str = "") -> str: ...
    def open_file(self, title: str, directory: str, filters: str) -> str | None: ...
    def save_file(self, title: str, suggested: str, filters: str) -> str | None: ...
    def export_options(self, defaults: Any) -> ExportRequest | None: ...
    def recover(self, description: str) -> str: ...
    def still_length(self, image_name: str, default: float, folder: str) -> float | None: ...


def level_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else float("-inf")


def video_ref(info: VideoInfo, path: str, source_image: str = "") -> VideoRef:
    return VideoRef(path=str(Path(path).resolve()), duration=float(info.duration), fps=float(info.fps or 25.0),
                    width=int(info.width), height=int(info.height), has_audio=bool(info.has_audio),
                    timecode=info.timecode, source_image=source_image)


def still_video_path(folder: Path, image: Path, length: float) -> Path:
    """Where the video of a still image lasting `length` s is made: named by the image and a digest of its path."""
    digest = hashlib.sha1(str(image.resolve()).encode("utf-8")).hexdigest()[:10]
    return folder / f"{image.stem}-{digest}-{length:g}s.mp4"


def make_still_video(image: Path, out: Path, length: float) -> Path:
    """The still image's video at `out`: reused when it is there and newer than the image, else made."""
    if not (out.is_file() and out.stat().st_mtime >= image.stat().st_mtime):
        still_video(image, out, length)
    return out


class Editor(QObject):
    """The editor's behaviour, independent of how the window is laid out."""

    video_opened = Signal(str)
    project_opened = Signal(str)
    project_saved = Signal(str)
    generation_applied = Signal(str)  # segment id
    generation_dropped = Signal(str, str)  # segment id, why
    hits_detected = Signal(str)  # segment id: the detector's hits are in the segment
    export_finished = Signal(object)  # ExportResult
    status_message = Signal(str, int)  # text, milliseconds (0 = until replaced)
    thumbnails_ready = Signal(object)  # list[(t, rgb)]
    track_mel_ready = Signal(object, int)  # mel, clips revision
    video_missing = Signal(str)

    def __init__(self, ctx: AppContext, prompter: PrompterLike, frames: FrameSource,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.document
        self.jobs = ctx.jobs
        self.prompter = prompter
        self.frames = frames
        self._batches = itertools.count(1)
        self._failed_batches: set[int] = set()
        self._mel_timer = QTimer(self)
        self._mel_timer.setSingleShot(True)
        self._mel_timer.setInterval(MEL_DEBOUNCE_MS)
        self._mel_timer.timeout.connect(self._compute_track_mel)
        self.doc.clips_changed.connect(self._mel_timer.start)
        self.doc.project_replaced.connect(self._mel_timer.start)
        self.doc.segments_changed.connect(self._cancel_stale_jobs)
        self._detect_timer = QTimer(self)
        self._detect_timer.setSingleShot(True)
        self._detect_timer.setInterval(DETECT_DEBOUNCE_MS)
        self._detect_timer.timeout.connect(self._on_segments_settled)
        self._prepared: set[tuple[str, float]] = set()  # (video, start) of the segments the engine has prepared
        self._no_detector_noted = False
        self._failed_detections: set[tuple[str, float, int]] = set()
        for sig in (self.doc.segments_changed, self.doc.hits_changed, self.doc.project_replaced):
            sig.connect(self._on_hits_inputs_changed)
        ctx.engine.state_changed.connect(self._on_engine_state)

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _error(self, exc: BaseException, doing: str) -> None:
        self.prompter.error(explain(exc, doing))

    def _status(self, text: str, ms: int = 6000) -> None:
        self.status_message.emit(text, ms)

    @property
    def segment_duration(self) -> float:
        return self.ctx.engine.segment_duration

    # ---- opening ---------------------------------------------------------------------------------------------------
    def confirm_discard(self) -> bool:
        """True if the open project may be replaced (saved first if the user wants)."""
        if not self.doc.is_modified():
            return True
        choice = self.prompter.ask(
            "Save changes?", f"{self.doc.display_name()} has unsaved changes.", ["Save", "Don't Save", "Cancel"],
            "Save", details="If you don't save, the changes are lost (the autosave is removed too).",
        )
        if choice == "Save":
            return self.save()
        return choice == "Don't Save"

    def open_path(self, path: str | Path) -> Job | None:
        p = Path(path)
        if p.suffix == PROJECT_SUFFIX:
            return self.open_project(p)
        return self.open_still(p) if is_still_image(p) else self.open_video(p)

    def open_video(self, path: str | Path, *, confirm: bool = True) -> Job | None:
        if confirm and not self.confirm_discard():
            return None
        path = str(path)
        self._status(f"Opening {Path(path).name}…", 0)

        def work(report: Callable, should_cancel: Callable) -> VideoInfo:
            return probe_video(path)

        def done(_job: Job, info: VideoInfo) -> None:
            self._new_project_for(video_ref(info, path), path)
            v = self.doc.video
            assert v is not None
            self._status(f"Opened {Path(path).name}: {v.duration:.2f} s, {v.width}×{v.height}, {v.fps:.3g} fps, "
                         f"{'with' if v.has_audio else 'no'} audio track")
            self.video_opened.emit(path)

        def failed(_job: Job, exc: BaseException) -> None:
            self._status(f"Could not open {Path(path).name}")
            self._error(exc, f"opening {Path(path).name}")

        return self.jobs.submit("open", f"Opening {Path(path).name}", work, on_result=done, on_error=failed)

    def _new_project_for(self, video: VideoRef, opened: str) -> None:
        """A new project for `video`; `opened` is the file the user opened (the video, or its still image)."""
        self.ctx.playback.stop()
        self.jobs.cancel_all("generate")
        self.doc.new_for_video(video, sample_rate=self.ctx.settings.output_rate)
        self.ctx.settings.add_recent_file(opened)
        self.ctx.settings.last_dir = str(Path(opened).parent)
        self._load_video_media()

    def open_still(self, image: str | Path, *, confirm: bool = True, length: float | None = None) -> Job | None:
        """A still image (PNG/JPEG) as a video of `length` s (asked, one segment by default), made in the
        background in `AppContext.stills_dir`, then opened like any video."""
        image = Path(image)
        if confirm and not self.confirm_discard():
            return None
        folder = self.ctx.stills_dir
        if length is None:
            length = self.prompter.still_length(image.name, self.segment_duration, str(folder))
            if length is None:
                return None
        out = still_video_path(folder, image, float(length))
        self._status(f"Making a {length:g} s video of {image.name}…", 0)

        def work(report: Callable, should_cancel: Callable) -> VideoInfo:
            report(0.1, f"making a {length:g} s video of {image.name}")
            return probe_video(make_still_video(image, out, float(length)))

        def done(_job: Job, info: VideoInfo) -> None:
            self._new_project_for(video_ref(info, str(out), source_image=str(image.resolve())), str(image))
            self._status(f"Opened the still image {image.name} as a {info.duration:.2f} s video ({info.width}×"
                         f"{info.height}, made in {out.parent}; the image is not changed)")
            self.video_opened.emit(str(image))

        def failed(_job: Job, exc: BaseException) -> None:
            self._status(f"Could not open {image.name}")
            self._error(exc, f"opening the image {image.name}")

        return self.jobs.submit("open", f"Making a video of {image.name}", work, on_result=done, on_error=failed)

    def _remake_still(self, project: Any) -> Job:
        """The project's still video has gone (a cleaned cache, another machine): make it again from its image."""
        v = project.video
        image = Path(v.source_image)
        out = still_video_path(self.ctx.stills_dir, image, round(v.duration, 3))
        self._status(f"Making the video of {image.name} again ({v.duration:g} s)…", 0)

        def done(_job: Job, info: VideoInfo) -> None:
            if self.doc.project is not project:
                return  # another project was opened meanwhile
            self.doc.project.video = video_ref(info, str(out), source_image=v.source_image)
            self.doc.mark_modified()
            self.doc.project_replaced.emit()
            self._load_video_media()
            self._status(f"Made the video of {image.name} again in {out.parent}.")

        def failed(_job: Job, exc: BaseException) -> None:
            if self.doc.project is project:
                self._load_video_media()  # says the video is missing
                self._error(exc, f"making the video of {image.name} again")

        return self.jobs.submit(
            "open", f"Making a video of {image.name}",
            lambda report, cancel: probe_video(make_still_video(image, out, round(v.duration, 3))),
            on_result=done, on_error=failed,
        )

    def _load_video_media(self) -> None:
        """Preview frames, thumbnails and the original audio of the document's video, in the background."""
        v = self.doc.video
        if v is None or not Path(v.path).is_file():
            self.frames.set_video(None)
            if v is not None:
                self.video_missing.emit(v.path)
            return
        self.frames.set_video(v.path, v.fps, v.duration, v.width, v.height)
        self.ctx.playback.seek(0.0)  # shows the first frame
        path = v.path
        self.jobs.submit(
            "thumbnails", "Reading thumbnails",
            lambda report, cancel: read_thumbnails(path, v.duration, v.width, v.height, cancel),
            on_result=lambda _j, thumbs: self.thumbnails_ready.emit(thumbs) if self._same_video(path) else None,
            on_error=lambda _j, exc: log.warning("thumbnails: %s", exc),
        )
        if v.has_audio:
            rate = self.doc.sample_rate

            def audio_failed(_job: Job, exc: BaseException) -> None:
                if not isinstance(exc, NoAudioStreamError):
                    self._status(f"The original audio could not be read: {exc}")

            self.jobs.submit(
                "original-audio", "Reading the original audio", lambda report, cancel: read_audio(path, rate),
                on_result=lambda _j, audio: self.doc.set_original_audio(audio) if self._same_video(path) else None,
                on_error=audio_failed,
            )

    def _same_video(self, path: str) -> bool:
        return self.doc.video is not None and self.doc.video.path == path

    def open_project(self, path: str | Path, *, confirm: bool = True) -> Job | None:
        if confirm and not self.confirm_discard():
            return None
        path = Path(path)

        def done(_job: Job, loaded: tuple) -> None:
            project, audio = loaded
            self.ctx.playback.stop()
            self.jobs.cancel_all("generate")
            self.doc.replace(project, audio, path)
            self.ctx.settings.add_recent_file(path)
            self.ctx.settings.last_dir = str(path.parent)
            v = project.video
            if v is not None and not Path(v.path).is_file():
                if v.source_image and Path(v.source_image).is_file():
                    self._remake_still(project)
                    self.project_opened.emit(str(path))
                    return
                self._relink_video(v.path)
            self._load_video_media()
            self._status(f"Opened project {path.name}: {len(project.segments)} segments, {len(project.clips)} clips")
            self.project_opened.emit(str(path))

        return self.jobs.submit(
            "open", f"Opening {path.name}", lambda report, cancel: load_project(path), on_result=done,
            on_error=lambda _j, exc: self._error(exc, f"opening {path.name}"),
        )

    def _relink_video(self, missing: str) -> None:
        choice = self.prompter.ask(
            "Video not found", f"The project's video {missing} was not found.", ["Locate…", "Continue Without Video"],
            "Locate…", details="Locate the video (moved or renamed) to keep working with the picture. Without it you "
            "can still edit and export the Foley track as WAV.",
        )
        if choice != "Locate…":
            return
        found = self.prompter.open_file("Locate the video", str(Path(missing).parent), "All files (*)")
        if not found:
            return
        try:
            info = probe_video(found)
        except Exception as exc:
            self._error(exc, f"opening {Path(found).name}")
            return
        assert self.doc.project.video is not None
        old = self.doc.project.video
        self.doc.project.video = video_ref(info, found)
        if abs(info.duration - old.duration) > 0.5 / max(old.fps, 1.0):
            self.prompter.error(UserMessage(
                "A different video?", f"{Path(found).name} lasts {info.duration:.2f} s; the project's video lasted "
                f"{old.duration:.2f} s.", "Check that it is the same video: segments and clips keep their times.",
                warning=True))
        self.doc.mark_modified()
        self.doc.project_replaced.emit()

    # ---- saving ----------------------------------------------------------------------------------------------------
    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self._write(self.doc.path)

    def save_as(self) -> bool:
        base = self.doc.path or (Path(self.doc.video.path).with_suffix(PROJECT_SUFFIX) if self.doc.video else None)
        folder = Path(self.ctx.settings.last_dir or Path.home())
        suggested = str(base) if base else str(folder / f"untitled{PROJECT_SUFFIX}")
        chosen = self.prompter.save_file("Save project", suggested, f"Foley projects (*{PROJECT_SUFFIX})")
        if not chosen:
            return False
        path = Path(chosen)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        return self._write(path)

    def _write(self, path: Path) -> bool:
        project = self.doc.project
        try:
            written = save_project(project, self.doc.audio.snapshot(project.audio_ids()), path)
        except Exception as exc:
            self._error(exc, f"saving {path.name}")
            self._status(f"The project was NOT saved to {path}")
            return False
        self.doc.mark_saved(written)
        self.ctx.settings.add_recent_file(written)
        self.ctx.settings.last_dir = str(written.parent)
        self._status(f"Saved {written}")
        self.project_saved.emit(str(written))
        return True

    # ---- crash recovery --------------------------------------------------------------------------------------------
    def check_recovery(self) -> bool:
        """Offer autosaves left by editors that crashed; True if one was recovered."""
        recovered = False
        for session in find_recoverable(self.ctx.autosaver.root):
            if recovered:
                session.release()
                continue
            choice = self.prompter.recover(session.describe())
            if choice == "recover":
                try:
                    project, audio, path = session.load()
                except Exception as exc:
                    session.release()
                    self._error(exc, "recovering the autosave")
                    continue
                self.doc.replace(project, audio, path, modified=True)
                self._load_video_media()
                self.ctx.autosaver.adopt(session)  # it is this session's work now: kept until our autosave
                recovered = True
                self._status("Recovered the autosaved work. Save it (Ctrl+S) to keep it.", 0)
            elif choice == "discard":
                session.discard()
            else:
                session.release()
        return recovered

    # ---- segments --------------------------------------------------------------------------------------------------
    def _video_or_status(self) -> VideoRef | None:
        if self.doc.video is None:
            self._status("Open a video first (Ctrl+O).")
        return self.doc.video

    def add_segment(self, start: float) -> str | None:
        v = self._video_or_status()
        if v is None:
            return None
        dur = self.segment_duration
        cmd = AddSegmentCommand(self.doc, place_segment(start, dur, v.duration, v.fps), dur)
        self.doc.undo_stack.push(cmd)
        self.doc.set_segment_selection(set())
        return cmd.segment.id

    def mark_in(self, t: float) -> None:
        """I: the current segment starts at the playhead (a new segment if there is none)."""
        seg = self.doc.current_segment()
        if seg is None:
            self.add_segment(t)
        else:
            self.move_segment(seg.id, t)

    def mark_out(self, t: float) -> None:
        """O: the current segment ends at the playhead (a new segment if there is none)."""
        seg = self.doc.current_segment()
        if seg is None:
            self.add_segment(t - self.segment_duration)
        else:
            self.move_segment(seg.id, t - seg.duration)

    def move_segment(self, seg_id: str, start: float, *, nudge: bool = False) -> None:
        seg, v = self.doc.segment(seg_id), self.doc.video
        if seg is None or v is None:
            return
        new = place_segment(start, seg.duration, v.duration, v.fps)
        if abs(new - seg.start) > 1e-9:
            self.doc.undo_stack.push(MoveSegmentCommand(self.doc, seg_id, new, nudge=nudge))

    def nudge_selected(self, frames: int) -> None:
        v = self.doc.video
        ids = self.doc.selected_segment_ids()
        if v is None or not ids:
            self._status("Select a segment to nudge (click it in the picture lane).")
            return
        if len(ids) > 1:
            self.doc.undo_stack.beginMacro(f"Nudge {len(ids)} segments")
        for sid in ids:
            seg = self.doc.segment(sid)
            if seg is not None:
                self.move_segment(sid, seg.start + frames / v.fps, nudge=True)
        if len(ids) > 1:
            self.doc.undo_stack.endMacro()

    def select_segment(self, seg_id: str, add: bool = False) -> None:
        if add:
            chosen = set(self.doc.selected_segment_ids()) ^ {seg_id}
            self.doc.set_segment_selection(chosen)
            if seg_id in chosen:
                self.doc.set_current_segment(seg_id)
        else:
            self.doc.set_segment_selection(set())
            self.doc.set_current_segment(seg_id)
        if self.doc.selected_hit is not None and self.doc.selected_hit[0] != seg_id:
            self.doc.set_selected_hit()

    def select_next_segment(self, step: int) -> None:
        segs = sorted(self.doc.project.segments, key=lambda s: s.start)
        if not segs:
            return
        ids = [s.id for s in segs]
        cur = self.doc.current_segment_id
        i = (ids.index(cur) + step) % len(ids) if cur in ids else 0
        self.select_segment(ids[i])

    def delete_selected_segments(self) -> None:
        ids = self.doc.selected_segment_ids()
        if ids:
            self.doc.undo_stack.push(RemoveSegmentsCommand(self.doc, ids))

    def _cancel_stale_jobs(self) -> None:
        for job in self.jobs.jobs("generate"):
            m = job.meta
            seg = self.doc.segment(m.segment_id) if m is not None else None
            if seg is None or m is None or abs(seg.start - m.start) > 1e-9:
                job.cancel()

    # ---- generation ------------------------------------------------------------------------------------------------
    def generate(self, seg_ids: list[str] | None = None, *, new_seeds: bool = False, auto_accept: bool = False,
                 batch: int | None = None) -> list[Job]:
        """Queue a generation for each segment (default: the selected ones)."""
        v = self._video_or_status()
        if v is None:
            return []
        ids = seg_ids if seg_ids is not None else self.doc.selected_segment_ids()
        if not ids:
            self._status("Mark a segment first: I or O at the playhead, or Segment ▸ Fill Whole Video.")
            return []
        if self.ctx.engine.state is EngineState.FAILED:
            self._error(self.ctx.engine.error or RuntimeError("no model"), "generating")
            return []
        s = self.ctx.settings
        batch = batch if batch is not None else next(self._batches)
        busy = {j.segment_id for j in self.jobs.jobs("generate")}
        jobs = []
        for sid in ids:
            seg = self.doc.segment(sid)
            if seg is None:
                continue
            if sid in busy:
                self._status(f"{seg.label} is already being generated.")
                continue
            seed = s.base_seed
            if new_seeds and seg.takes:
                seed = max(t.seed for t in seg.takes) + 1
            jobs.append(self._submit_generation(seg, v.path, s.candidates, seed, s.steps or None,
                                                s.guidance or None, auto_accept, batch, s.quality))
        return jobs

    def generation_hits(self, seg: Segment) -> list[float] | str:
        """What a generation of `seg` passes as `hits`: its hits as they are ([] = none), or "auto" while the
        model's detector has not delivered them yet."""
        if seg.hits_state == HITS_PENDING and self.ctx.engine.has_hit_detector:
            return "auto"
        return list(seg.hits)

    def _submit_generation(self, seg: Segment, video: str, candidates: int, seed: int, steps: int | None,
                           guidance: float | None, auto_accept: bool, batch: int, quality: str = "final") -> Job:
        handle = self.ctx.engine
        start, hits, rate = seg.start, self.generation_hits(seg), self.doc.sample_rate
        meta = SegmentJobMeta(segment_id=seg.id, label=seg.label, start=start, video=video,
                              hits_token=self.doc.hits_token(seg.id), auto_accept=auto_accept, batch=batch,
                              queued_at=time.monotonic())

        def work(report: Callable[[float, str], None], should_cancel: Callable[[], bool]) -> GenerationResult:
            engine = handle.require()
            return engine.generate(
                video, start, candidates=candidates, seed=seed, steps=steps, guidance=guidance, hits=hits,
                sample_rate=rate, on_progress=lambda p: report(p.fraction, p.message), should_cancel=should_cancel,
                quality=quality,
            )

        return self.jobs.submit("generate", f"Generating {seg.label}", work, inference=True, meta=meta,
                                on_result=self._on_generated, on_error=self._on_generation_failed)

    def _on_generated(self, job: Job, result: GenerationResult) -> None:
        m = job.meta
        assert m is not None  # every generation is submitted with its segment (`_submit_generation`)
        seg = self.doc.segment(m.segment_id)
        why = ""
        if self.doc.video is None or self.doc.video.path != m.video:
            why = "another video was opened"
        elif seg is None:
            why = "the segment was deleted"
        elif abs(seg.start - m.start) > 1e-9:
            why = "the segment was moved"
        elif result.sample_rate != self.doc.sample_rate:
            why = f"it is at {result.sample_rate} Hz and the project at {self.doc.sample_rate} Hz"
        if why:
            self._status(f"Result for {m.label} dropped: {why} while it was being generated.")
            self.generation_dropped.emit(m.segment_id, why)
            return
        assert seg is not None
        takes = [
            Take(index=c.index, seed=c.seed, audio_id=self.doc.audio.add(c.audio), settings=dict(c.settings),
                 level_db=level_dbfs(c.audio), hits=[float(h) for h in c.settings.get("hits", [])],
                 hits_source=str(c.settings.get("hits_source", "")), start=float(result.start))
            for c in result.candidates
        ]
        generation = {**result.settings, "seconds": round(sum(result.timings.values()), 3)}
        cmd = SetTakesCommand(self.doc, seg.id, takes, generation, list(result.warnings))
        if m.auto_accept:
            self.doc.undo_stack.beginMacro(f"Fill: {seg.label} generated and accepted")
            self.doc.undo_stack.push(cmd)
            self.doc.undo_stack.push(AcceptTakeCommand(self.doc, seg.id, 0))
            self.doc.undo_stack.endMacro()
        else:
            self.doc.undo_stack.push(cmd)
        if result.settings.get("hits_source") == "detected" and self._detection_current(m):
            self._apply_detected(seg, list(result.settings.get("hits", [])))  # what the engine detected itself
        seeds = f"seeds {takes[0].seed}–{takes[-1].seed}" if len(takes) > 1 else f"seed {takes[0].seed}"
        self._status(f"{seg.label}: {len(takes)} candidates ready ({seeds}) in {generation['seconds']:.1f} s. "
                     "Audition with 1–9, accept with Enter.")
        self.generation_applied.emit(seg.id)

    def _on_generation_failed(self, job: Job, exc: BaseException) -> None:
        label = job.meta.label if job.meta is not None else "the segment"
        if isinstance(exc, Cancelled):
            self._status(f"Generation of {label} cancelled.")
            return
        batch = job.meta.batch if job.meta is not None else None
        if batch in self._failed_batches:
            return
        self._failed_batches.add(batch)
        for other in self.jobs.jobs("generate"):  # one dialog per batch; its other jobs would fail the same way
            if (other.meta.batch if other.meta is not None else None) == batch and other is not job:
                other.cancel()
        self._error(exc, f"generating {label}")

    def cancel_generation(self) -> None:
        jobs = self.jobs.jobs("generate")
        for job in jobs:
            job.cancel()
        if jobs:
            self._status(f"Cancelling {len(jobs)} generation job{'s' if len(jobs) > 1 else ''}…")

    def fill_whole_video(self) -> list[Job]:
        """Cover the video with overlapping segments, generate each, accept candidate 1 of each (crossfaded)."""
        v = self._video_or_status()
        if v is None:
            return []
        dur = self.segment_duration
        overlap = min(max(self.ctx.settings.fill_overlap, 0.0), dur / 2)
        starts = fill_starts(v.duration, dur, overlap, v.fps)
        existing = {round(s.start, 6) for s in self.doc.project.segments}
        starts = [t for t in starts if round(t, 6) not in existing]
        if not starts:
            self._status("The video is already covered by segments at the fill positions.")
            return []
        stack = self.doc.undo_stack
        stack.beginMacro(f"Fill whole video ({len(starts)} segments)")
        ids = []
        for t in starts:
            cmd = AddSegmentCommand(self.doc, t, dur)
            stack.push(cmd)
            ids.append(cmd.segment.id)
        stack.endMacro()
        self._status(f"Filling {v.duration:.1f} s with {len(ids)} segments ({overlap:.1f} s crossfades); the first "
                     "candidate of each goes on the track. Cancel with Esc.", 0)
        return self.generate(ids, auto_accept=True)

    # ---- candidates and clips ----------------------------------------------------------------------------------------
    def highlight_take(self, index: int) -> None:
        seg = self.doc.current_segment()
        if seg is not None and 0 <= index < len(seg.takes):
            self.doc.set_current_take(seg.id, index)

    def audition(self, index: int) -> None:
        """Play candidate `index` with the picture; while one plays, switching keeps the position (A/B)."""
        seg = self.doc.current_segment()
        if seg is None or not seg.takes:
            self._status("No candidates to audition: generate first (Ctrl+G).")
            return
        if not 0 <= index < len(seg.takes):
            self._status(f"{seg.label} has {len(seg.takes)} candidates.")
            return
        pb = self.ctx.playback
        flipping = pb.playing and pb.audition is not None and pb.audition[0] == seg.id
        self.doc.set_current_take(seg.id, index)
        pb.audition_take(seg.id, index, restart=not flipping)

    def accept(self, index: int | None = None) -> None:
        seg = self.doc.current_segment()
        if seg is None or not seg.takes:
            self._status("Nothing to accept: generate candidates first (Ctrl+G).")
            return
        k = self.doc.current_take_index(seg.id) if index is None else index
        if not 0 <= k < len(seg.takes):
            return
        self.doc.undo_stack.push(AcceptTakeCommand(self.doc, seg.id, k))
        self._status(f"{seg.label} candidate {k + 1} is on the Foley track.")

    def set_clip_gain(self, clip_id: str, gain_db: float) -> None:
        if self.doc.project.clip(clip_id) is not None:
            self.doc.undo_stack.push(SetClipGainCommand(self.doc, clip_id, gain_db))

    def remove_clip(self, clip_id: str | None = None) -> None:
        cid = clip_id or self.doc.selected_clip_id
        if cid and self.doc.project.clip(cid) is not None:
            self.doc.undo_stack.push(RemoveClipCommand(self.doc, cid))
        else:
            self._status("Select a clip on the Foley track first.")

    # ---- take lanes and comping -----------------------------------------------------------------------------------
    def clip_at(self, t: float) -> Clip | None:
        """The clip that sounds at track time `t`: the selected one if it does, else the current segment's, else
        the latest-starting one."""
        sr = self.doc.sample_rate
        inside = [c for c in self.doc.project.clips
                  if c.start <= t < c.start + len(self.doc.audio.get(c.audio_id)) / sr]
        for want in (lambda c: c.id == self.doc.selected_clip_id,
                     lambda c: c.segment_id == self.doc.current_segment_id):
            chosen = next((c for c in inside if want(c)), None)
            if chosen is not None:
                return chosen
        return max(inside, key=lambda c: c.start, default=None)

    def audition_lane(self, seg_id: str, index: int, t: float) -> None:
        """A click on take lane `index`: that candidate with the picture from `t` (its start if `t` is outside)."""
        seg = self.doc.segment(seg_id)
        if seg is None or not 0 <= index < len(seg.takes):
            return
        self.doc.set_current_segment(seg_id)
        self.doc.set_current_take(seg_id, index)
        self.ctx.playback.audition_take(seg_id, index, at=t)

    def split_at(self, t: float) -> bool:
        """S: cut the clip under the playhead in two parts of the same take (pick another for either with the take
        lanes)."""
        clip = self.clip_at(t)
        if clip is None:
            self._status("No clip under the playhead: accept a candidate first (Return).")
            return False
        new = split_clip(self.doc, clip, t - clip.start)
        if new is None:
            self._status("Too close to a cut or to the clip's end to split here.")
            return False
        self.doc.undo_stack.push(EditClipCommand(self.doc, new, f"Split {clip.label} at {format_time(t)}"))
        self.doc.set_selected_clip(clip.id)
        self._status(f"{clip.label} split at {format_time(t)}: double-click a take lane (or Alt+1…9) to pick "
                     "the take of a part.")
        return True

    def use_take_at(self, seg_id: str, index: int, t: float) -> bool:
        """Let candidate `index` of a segment play in the part of its clip that holds track time `t` (the take
        lanes' double-click, Alt+1…9 at the playhead). A segment with no clip yet gets that candidate as its clip."""
        seg = self.doc.segment(seg_id)
        if seg is None or not 0 <= index < len(seg.takes):
            return False
        clip = self.doc.project.clip_for_segment(seg_id)
        if clip is None:
            self.doc.undo_stack.push(AcceptTakeCommand(self.doc, seg_id, index))
            self._status(f"{seg.label} candidate {index + 1} is on the Foley track.")
            return True
        take = seg.takes[index]
        if abs(take.start_in(seg) - clip.start) > 1e-6:
            self._status(f"Candidate {index + 1} was made for another start of {seg.label}: accept it instead.")
            return False
        part = clip.part_at(t - clip.start)
        if (clip.audio_id if part == 0 else clip.parts[part - 1].audio_id) == take.audio_id:
            return False  # already so
        try:
            new = with_part_take(self.doc, clip, part, take)
        except ValueError as exc:
            self._status(str(exc))
            return False
        what = "the clip" if not clip.parts else f"part {part + 1} of {clip.label}"
        self.doc.undo_stack.push(EditClipCommand(self.doc, new, f"Use {seg.label} candidate {index + 1} in {what}"))
        self._status(f"{what[0].upper()}{what[1:]} plays candidate {index + 1}.")
        return True

    def use_take_at_playhead(self, index: int) -> bool:
        """Alt+1…9: candidate `index` of the current segment for the part under the playhead."""
        seg = self.doc.current_segment()
        if seg is None or not seg.takes:
            self._status("No candidates: generate first (Ctrl+G).")
            return False
        return self.use_take_at(seg.id, index, self.ctx.playback.current_time())

    def join_at(self, t: float) -> bool:
        """Shift+S: remove the cut nearest to `t` of the clip under it (the part before it plays on)."""
        clip = self.clip_at(t)
        if clip is None or not clip.parts:
            self._status("No cut to remove here: S splits a clip at the playhead.")
            return False
        rel = t - clip.start
        k = min(range(1, len(clip.parts) + 1), key=lambda i: abs(clip.parts[i - 1].time - rel))
        self.doc.undo_stack.push(EditClipCommand(self.doc, without_cut(self.doc, clip, k),
                                                 f"Remove a cut of {clip.label}"))
        return True

    def set_crossfade(self, clip_id: str, seconds: float) -> None:
        clip = self.doc.project.clip(clip_id)
        if clip is not None and abs(clip.crossfade_s - seconds) > 1e-9:
            self.doc.undo_stack.push(SetCrossfadeCommand(self.doc, clip_id, seconds))

    # ---- hits --------------------------------------------------------------------------------------------------------
    def add_hit_at(self, t: float) -> None:
        """H: a hit at the playhead, in the segment under it (the current one where segments overlap)."""
        seg = segment_at(self.doc.project.segments, t, prefer=self.doc.current_segment_id)
        if seg is None:
            self._status("No segment under the playhead: hits belong to a segment (add one with N).")
            return
        self.add_hit(seg.id, t - seg.start)

    def add_hit(self, seg_id: str, t: float) -> None:
        """A hit `t` s from the segment's start (clamped into the segment)."""
        seg = self.doc.segment(seg_id)
        if seg is None:
            return
        h = clamp_hit(t, seg.duration)
        if h in seg.hits:
            self._status(f"{seg.label} already has a hit at {h:.3f} s.")
            return
        if len(seg.hits) >= MAX_HITS:
            self._status(f"{seg.label} has {MAX_HITS} hits, the most a segment can have.")
            return
        self.select_segment(seg.id)
        self.doc.undo_stack.push(AddHitCommand(self.doc, seg.id, h))

    def select_hit(self, seg_id: str, t: float) -> None:
        """Select a hit marker ("" = none); its segment becomes the current one."""
        if seg_id and self.doc.segment(seg_id) is not None:
            self.select_segment(seg_id)
        self.doc.set_selected_hit(seg_id, t)

    def move_hit(self, seg_id: str, old: float, new: float) -> None:
        seg = self.doc.segment(seg_id)
        if seg is None or old not in seg.hits:
            return
        h = clamp_hit(new, seg.duration)
        if h != old:
            self.doc.undo_stack.push(MoveHitCommand(self.doc, seg_id, old, h))

    def delete_hit(self, seg_id: str | None = None, t: float | None = None) -> None:
        """Delete a hit (default: the selected one)."""
        if seg_id is None or t is None:
            if self.doc.selected_hit is None:
                self._status("Select a hit first (click its marker in the picture lane).")
                return
            seg_id, t = self.doc.selected_hit
        seg = self.doc.segment(seg_id)
        if seg is not None and t in seg.hits:
            self.doc.undo_stack.push(RemoveHitCommand(self.doc, seg_id, t))

    def delete_selection(self) -> None:
        """Del: the selected hit if there is one, else the selected segments."""
        if self.doc.selected_hit is not None:
            self.delete_hit()
        else:
            self.delete_selected_segments()

    def _hits_macro(self, title: str, commands: list[Any]) -> None:
        stack = self.doc.undo_stack
        if len(commands) > 1:
            stack.beginMacro(title)
        for cmd in commands:
            stack.push(cmd)
        if len(commands) > 1:
            stack.endMacro()

    def clear_hits(self, seg_ids: list[str] | None = None) -> None:
        """No hits in the segments (default: the selected ones); the detector leaves them alone from now on."""
        ids = seg_ids if seg_ids is not None else self.doc.selected_segment_ids()
        segs = [s for s in (self.doc.segment(i) for i in ids) if s is not None]
        todo = [s for s in segs if s.hits or s.hits_state != HITS_USER]
        if not segs:
            self._status("Select a segment first.")
            return
        if not todo:
            self._status("No hits to clear.")
            return
        self._hits_macro(f"Clear hits of {len(todo)} segments", [ClearHitsCommand(self.doc, s.id) for s in todo])

    def redetect_hits(self, seg_ids: list[str] | None = None) -> None:
        """Hand the segments' hits (default: the selected ones) back to the detector."""
        if not self.ctx.engine.has_hit_detector:
            self._status("The model has no hit detector: add hits by hand with H at the playhead.")
            return
        ids = seg_ids if seg_ids is not None else self.doc.selected_segment_ids()
        segs = [s for s in (self.doc.segment(i) for i in ids) if s is not None and s.hits_state != HITS_PENDING]
        if not segs:
            self._status("Hits are being detected already." if ids else "Select a segment first.")
            return
        self._hits_macro(f"Detect hits of {len(segs)} segments again", [RedetectHitsCommand(self.doc, s.id)
                                                                          for s in segs])

    # ---- markers -----------------------------------------------------------------------------------------------------
    def add_marker_at(self, t: float, name: str | None = None) -> str | None:
        """Ctrl+M: a marker on the frame shown at `t` (named "Marker N" unless `name`); its id, or None."""
        v = self._video_or_status()
        if v is None:
            return None
        at = min(max(floor_to_frame(t, v.fps), 0.0), v.duration)
        half_frame = 0.5 / max(v.fps, 1.0)
        there = next((m for m in self.doc.project.markers if abs(m.time - at) < half_frame), None)
        if there is not None:
            self._status(f"{there.name} is on this frame already (rename it in the Markers list).")
            return None
        cmd = AddMarkerCommand(self.doc, at, name.strip() if name else None)
        self.doc.undo_stack.push(cmd)
        self._status(f"{cmd.marker.name} at {format_time(at, v.fps)}. Rename it in the Markers list (F2); "
                     "Shift+Up / Shift+Down jump between markers.")
        return cmd.marker.id

    def rename_marker(self, marker_id: str, name: str) -> bool:
        """True if the marker has that name now (an empty name is refused)."""
        marker = self.doc.project.marker(marker_id)
        if marker is None:
            return False
        name = " ".join(name.split())
        if not name:
            self._status("A marker needs a name.")
            return False
        if name != marker.name:
            self.doc.undo_stack.push(RenameMarkerCommand(self.doc, marker_id, name))
        return True

    def delete_markers(self, marker_ids: list[str]) -> None:
        ids = [i for i in marker_ids if self.doc.project.marker(i) is not None]
        if not ids:
            self._status("Select a marker in the Markers list first.")
            return
        self.doc.undo_stack.push(RemoveMarkersCommand(self.doc, ids))

    def go_to_marker(self, marker_id: str) -> None:
        marker = self.doc.project.marker(marker_id)
        if marker is not None:
            self.ctx.playback.seek(marker.time)

    def jump_to_marker(self, step: int) -> str | None:
        """Shift+Down / Shift+Up: the playhead to the next (step 1) or previous (-1) marker; its id, or None."""
        markers = self.doc.project.markers
        if not markers:
            self._status("No markers yet: Ctrl+M adds one at the playhead.")
            return None
        now, eps = self.ctx.playback.current_time(), 1e-6
        if step > 0:
            found = next((m for m in markers if m.time > now + eps), None)
        else:
            found = next((m for m in reversed(markers) if m.time < now - eps), None)
        if found is None:
            self._status(f"No marker {'after' if step > 0 else 'before'} the playhead.")
            return None
        self.ctx.playback.seek(found.time)
        self._status(found.name, 3000)
        return found.id

    # ---- hit detection (background) ----------------------------------------------------------------------------
    def _on_engine_state(self, state: str) -> None:
        if state == EngineState.LOADING:  # another model: its detector (if any) gets every pending segment anew
            self._no_detector_noted = False
            self._failed_detections.clear()
            self._prepared.clear()
            self.jobs.cancel_all("hits")
            self.jobs.cancel_all("prepare")
        self._on_hits_inputs_changed()

    def _on_hits_inputs_changed(self, *_args: object) -> None:
        for job in self.jobs.jobs("hits"):
            if not self._detection_current(job.meta):
                job.cancel()
        for job in self.jobs.jobs("prepare"):  # a segment moved or removed: its old place needs nothing
            seg = self.doc.segment(job.meta.segment_id) if job.meta is not None else None
            if seg is None or job.meta is None or abs(seg.start - job.meta.start) > 1e-9:
                job.cancel()
        self._detect_timer.start()

    def _detection_current(self, meta: SegmentJobMeta | None) -> bool:
        """Whether a detection (or generation) started with `meta` still fits: same video, the segment at the same
        start, its hits pending and unchanged since."""
        seg = self.doc.segment(meta.segment_id) if meta is not None else None
        return (seg is not None and meta is not None and self._same_video(meta.video)
                and abs(seg.start - meta.start) < 1e-9
                and seg.hits_state == HITS_PENDING and self.doc.hits_token(seg.id) == meta.hits_token)

    def _on_segments_settled(self) -> None:
        self._detect_pending_hits()
        self._prepare_segments()

    def _detect_pending_hits(self) -> None:
        v, handle = self.doc.video, self.ctx.engine
        pending = sorted((s for s in self.doc.project.segments if s.hits_state == HITS_PENDING),
                         key=lambda s: s.start)
        if v is None or not pending or not handle.ready:
            return
        if not handle.has_hit_detector:
            if not self._no_detector_noted:
                self._no_detector_noted = True
                follows = "generation follows them" if handle.takes_hits else "this model does not follow them yet"
                self._status(f"This model has no hit detector: add hits by hand with H at the playhead ({follows}).",
                             10000)
            return
        if not Path(v.path).is_file():
            return
        running = {j.segment_id for j in self.jobs.jobs("hits") if not j.cancel_requested}
        for seg in pending:
            failed = (seg.id, seg.start, self.doc.hits_token(seg.id)) in self._failed_detections
            if seg.id not in running and not failed:
                self._submit_detection(seg, v.path)

    def _submit_detection(self, seg: Segment, video: str) -> Job:
        handle, start = self.ctx.engine, seg.start
        meta = SegmentJobMeta(segment_id=seg.id, label=seg.label, start=start, video=video,
                              hits_token=self.doc.hits_token(seg.id))

        def work(report: Callable[[float, str], None], should_cancel: Callable[[], bool]) -> list[float]:
            return list(handle.require().detect_hits(video, start, should_cancel=should_cancel))

        return self.jobs.submit("hits", f"Detecting hits of {seg.label}", work, inference=True, meta=meta,
                                on_result=self._on_hits_detected, on_error=self._on_detection_failed)

    # ---- preparation (background): a segment's frames and features before Generate ------------------------------
    def _prepare_segments(self) -> None:
        """Let the engine do the per-segment work of a generation (frames, features, motion: `prepare`) for the
        marked segments that have no takes yet, after the detections and before any Generate on the one inference
        thread, once per (video, start): Generate then starts at the denoiser."""
        v, handle = self.doc.video, self.ctx.engine
        if v is None or not handle.ready or not Path(v.path).is_file():
            return
        queued = {(j.meta.video, j.meta.start) for j in self.jobs.jobs("prepare") if j.meta is not None}
        todo = [s for s in sorted(self.doc.project.segments, key=lambda s: s.start)
                if not s.takes and (v.path, s.start) not in self._prepared | queued]
        for seg in todo[:MAX_PREPARED_PER_PASS]:
            self._submit_preparation(seg, v.path)

    def _submit_preparation(self, seg: Segment, video: str) -> Job:
        handle, start = self.ctx.engine, seg.start
        meta = SegmentJobMeta(segment_id=seg.id, label=seg.label, start=start, video=video,
                              hits_token=self.doc.hits_token(seg.id))

        def work(report: Callable[[float, str], None], should_cancel: Callable[[], bool]) -> None:
            handle.require().prepare(video, start, should_cancel=should_cancel)

        def done(_job: Job, _result: None) -> None:
            self._prepared.add((video, start))

        return self.jobs.submit("prepare", f"Preparing {seg.label}", work, inference=True, meta=meta,
                                on_result=done,
                                on_error=lambda _j, exc: log.info("preparing %s: %s", seg.label, exc))

    def _on_hits_detected(self, job: Job, hits: list[float]) -> None:
        m = job.meta
        assert m is not None  # every detection is submitted with its segment (`_submit_detection`)
        seg = self.doc.segment(m.segment_id)
        if seg is None or not self._detection_current(m):
            log.info("hits detected for %s dropped: the segment changed meanwhile", m.label)
            return
        self._apply_detected(seg, hits)

    def _apply_detected(self, seg: Segment, hits: list[float]) -> None:
        try:
            times = check_hits(hits, seg.duration)
        except InvalidRequestError as exc:
            self._failed_detections.add((seg.id, seg.start, self.doc.hits_token(seg.id)))
            self._status(f"The hit detector gave unusable times for {seg.label}: {exc}", 10000)
            return
        self.doc.set_detected_hits(seg.id, times)
        self._status(f"{seg.label}: {len(times)} hit{'s' if len(times) != 1 else ''} detected.")
        self.hits_detected.emit(seg.id)

    def _on_detection_failed(self, job: Job, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            return
        m = job.meta
        assert m is not None  # every detection is submitted with its segment (`_submit_detection`)
        self._failed_detections.add((m.segment_id, m.start, m.hits_token))
        self._status(f"Hit detection of {m.label} failed: {exc} (add hits by hand with H).", 10000)

    # ---- export ------------------------------------------------------------------------------------------------------
    def export_defaults(self) -> ExportDefaults:
        v = self.doc.video
        if v is not None:
            src = Path(v.path)
            named = Path(v.source_image) if v.source_image else src  # a still's video lives in the app's folder
            folder = Path(self.ctx.settings.export_dir) if self.ctx.settings.export_dir else named.parent
            keep = src.suffix.lower() in MUX_SUFFIXES
            mp4 = folder / f"{named.stem}_foley{src.suffix if keep else '.mp4'}"
            base = folder / f"{named.stem}_foley"
        else:
            base = self.doc.path or Path.home() / "foley"
            mp4, base = base.with_suffix(".mp4"), base.with_name(base.stem + "_foley")
        s = self.ctx.settings
        return ExportDefaults(v.path if v is not None and Path(v.path).is_file() else None, str(mp4),
                              str(base.with_name(base.name + ".wav")), s.normalize, s.target_lufs,
                              self.doc.sample_rate, stems_dir=str(base.with_name(base.name + "_stems")),
                              timeline_path=str(base.with_name(base.name + ".otio")),
                              markers=len(self.doc.project.markers))

    def export_session(self) -> ExportSession:
        """The project as the export reads it (a snapshot: the job runs on while the user edits)."""
        doc, v = self.doc, self.doc.video
        name = f"{Path(v.source_image or v.path).stem} Foley" if v is not None else (
            f"{doc.path.stem} Foley" if doc.path is not None else "Foley")
        return ExportSession(
            clips=doc.mix_clips(), total_samples=doc.total_samples(), sample_rate=doc.sample_rate, name=name,
            labels={c.id: c.label for c in doc.project.clips},
            video_duration=v.duration if v is not None else doc.total_samples() / doc.sample_rate,
            fps=v.fps if v is not None else 25.0, timecode=v.timecode if v is not None else None,
            markers=tuple(TimelineMarker(m.name, m.time, m.note) for m in doc.project.markers),
        )

    def export(self) -> Job | None:
        if not self.doc.project.clips:
            self.prompter.error(UserMessage("Nothing to export", "The Foley track is empty.",
                                            "Accept a candidate (Enter) or fill the video first."))
            return None
        request = self.prompter.export_options(self.export_defaults())
        if request is None:
            return None
        return self.start_export(request)

    def start_export(self, request: ExportRequest) -> Job:
        s = self.ctx.settings
        s.normalize, s.target_lufs = request.normalize, request.target_lufs
        target = request.mp4_path or request.wav_path or request.stems_dir or request.timeline_path
        if target is not None:
            s.export_dir = str(target.parent)
        session = self.export_session()

        def done(_job: Job, result: ExportResult) -> None:
            names = "\n".join(str(p) for p in result.written)
            if result.stems:
                n = len(result.stems)
                names += f"\n{n} stem{'s' if n != 1 else ''} in {result.stems[0].parent}"
            extra = ""
            if result.measured_lufs is not None and math.isfinite(result.measured_lufs):
                extra = (f"\n\nLoudness: {result.measured_lufs:.1f} LUFS measured, {result.gain_db:+.1f} dB applied.")
            if result.notes:
                extra += "\n\n" + "\n".join(result.notes)
            self._status(f"Exported {', '.join(p.name for p in result.written)}")
            self.export_finished.emit(result)
            self.prompter.info("Export finished", f"Written:\n{names}{extra}")

        return self.jobs.submit(
            "export", "Exporting", lambda report, cancel: run_export(request, session, report, cancel),
            on_result=done, on_error=lambda _j, exc: self._error(exc, "exporting"),
        )

    # ---- the track's spectrogram -----------------------------------------------------------------------------------
    def _compute_track_mel(self) -> None:
        revision = self.doc.clips_revision
        if not self.doc.project.clips:
            self.track_mel_ready.emit(None, revision)
            return
        track, rate = self.doc.track_audio(), self.doc.sample_rate

        def work(report: Callable, cancel: Callable) -> np.ndarray:
            if rate != DIFF_FOLEY.sample_rate:  # the mel's bands and hop are the spec's: a 48 kHz track spanned 3x
                return mel_spectrogram(resample(track, rate, DIFF_FOLEY.sample_rate), DIFF_FOLEY)
            return mel_spectrogram(track, DIFF_FOLEY)

        self.jobs.submit("mel", "Spectrogram", work,
                         on_result=lambda _j, mel: self.track_mel_ready.emit(mel, revision),
                         on_error=lambda _j, exc: log.warning("track spectrogram: %s", exc))
