"""`ProjectDocument`: the open project as a QObject with signals and the undo stack (QtCore/QtGui only).

Views read the document and subscribe to its signals; they change it only by pushing commands
(`foley_app.document.commands`) onto `undo_stack`. The low-level mutators below (`insert_segment`, ...) are for
those commands. What is not an edit (the current segment, the auditioned take, the original audio read from the
video, the selected hit) is state here too, but has no undo.

Hits found by the detector are a fact about the picture, as the original audio is: they enter a segment whose hits
are still `HITS_PENDING` through `set_detected_hits` (marks the project modified, no undo entry: an undo step for
work the user did not ask for would only be redone by the next detection). Every change the user makes to hits is
a command. `hits_token(seg_id)` changes with every change of a segment's hits, so a detection started before an
edit can tell that its result is stale.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from foley_app.document.project import (
    HITS_DETECTED,
    HITS_PENDING,
    HITS_STATES,
    SAMPLE_RATE,
    AudioStore,
    Clip,
    Marker,
    Project,
    Segment,
    Take,
    VideoRef,
)
from foley_app.document.timeline import CompPart, MixClip, db_to_gain, render_comp, render_mix


class ProjectDocument(QObject):
    """The project being edited, its audio store, undo stack and file path."""

    project_replaced = Signal()
    segments_changed = Signal()  # added, removed or moved
    segment_changed = Signal(str)  # one segment moved or got new takes
    hits_changed = Signal(str)  # one segment's hits (or their state) changed
    clips_changed = Signal()
    markers_changed = Signal()  # a marker added, removed or renamed
    current_segment_changed = Signal(str)  # "" for none
    current_take_changed = Signal(str, int)
    selection_changed = Signal()
    selected_clip_changed = Signal(str)
    selected_hit_changed = Signal()
    original_audio_changed = Signal()
    modified_changed = Signal(bool)
    path_changed = Signal()
    revision_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = Project()
        self.audio = AudioStore()
        self.undo_stack = QUndoStack(self)
        self.path: Path | None = None
        self.original_audio: np.ndarray | None = None  # mono at project.sample_rate, read from the video
        self.revision = 0
        self._current_segment = ""
        self._current_take: dict[str, int] = {}
        self._selected_segments: set[str] = set()
        self._selected_clip = ""
        self._selected_hit: tuple[str, float] | None = None
        self._hits_tokens: dict[str, int] = {}
        self._extra_modified = False  # changes with no undo entry (a recovered or relinked project)
        self._track_cache: tuple[int, np.ndarray] | None = None
        self._clips_revision = 0
        self.undo_stack.cleanChanged.connect(_clean_changed_relay(self))

    def _on_clean_changed(self, _clean: bool) -> None:
        self.modified_changed.emit(self.is_modified())

    # ---- whole-document operations ------------------------------------------------------------------------
    def replace(self, project: Project, audio: dict[str, np.ndarray], path: Path | None, *,
                modified: bool = False) -> None:
        """Make `project` the open project (new, opened, or recovered); clears the undo history."""
        self.project = project
        self.audio = AudioStore()
        for audio_id, samples in audio.items():
            self.audio.add(samples, audio_id)
        self.path = path
        self.original_audio = None
        self._current_segment = project.segments[0].id if project.segments else ""
        self._current_take = {}
        self._selected_segments = set()
        self._selected_clip = ""
        self._selected_hit = None
        self._hits_tokens = {}
        self._extra_modified = modified
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._bump(clips=True)
        self.project_replaced.emit()
        self.path_changed.emit()
        self.modified_changed.emit(self.is_modified())

    def new_for_video(self, video: VideoRef, sample_rate: int = SAMPLE_RATE) -> None:
        """A new project for `video` whose takes, mix and exports are at `sample_rate` (fixed for the project)."""
        self.replace(Project(video=video, sample_rate=int(sample_rate)), {}, None)

    def mark_saved(self, path: Path) -> None:
        self.path = path
        self._extra_modified = False
        self.undo_stack.setClean()
        self.path_changed.emit()
        self.modified_changed.emit(self.is_modified())

    def mark_modified(self) -> None:
        self._extra_modified = True
        self._bump()
        self.modified_changed.emit(True)

    def is_modified(self) -> bool:
        return self._extra_modified or not self.undo_stack.isClean()

    def set_original_audio(self, audio: np.ndarray | None) -> None:
        self.original_audio = audio
        self.original_audio_changed.emit()

    def display_name(self) -> str:
        if self.path is not None:
            return self.path.name
        if self.project.video is not None:
            return Path(self.project.video.path).name
        return "Untitled"

    # ---- facts ------------------------------------------------------------------------------------------------
    @property
    def video(self) -> VideoRef | None:
        return self.project.video

    @property
    def sample_rate(self) -> int:
        return self.project.sample_rate

    def total_samples(self) -> int:
        """Length of the Foley track: the video's length (at least the end of the last clip if no video)."""
        ends = [round(c.start * self.sample_rate) + len(self.audio.get(c.audio_id)) for c in self.project.clips]
        if self.project.video is not None:
            return int(np.ceil(self.project.video.duration * self.sample_rate))
        return max(ends, default=0)

    def segment(self, seg_id: str) -> Segment | None:
        return self.project.segment(seg_id)

    def clip_audio(self, clip: Clip) -> np.ndarray:
        """What a clip plays before its gain: its take, or for a comped clip its parts' takes crossfaded at the
        cuts (`engine.render_comp`)."""
        first = self.audio.get(clip.audio_id)
        if not clip.parts:
            return first
        sr = self.sample_rate
        parts = [CompPart(0, clip.audio_id, first)]
        parts += [CompPart(round(p.time * sr), p.audio_id, self.audio.get(p.audio_id)) for p in clip.parts]
        return render_comp(parts, round(clip.crossfade_s * sr))

    def mix_clips(self) -> list[MixClip]:
        return [
            MixClip(c.id, round(c.start * self.sample_rate), self.clip_audio(c), db_to_gain(c.gain_db))
            for c in self.project.clips
        ]

    def track_audio(self) -> np.ndarray:
        """The rendered Foley track (cached until the clips change)."""
        if self._track_cache is None or self._track_cache[0] != self._clips_revision:
            mix = render_mix(self.mix_clips(), self.total_samples(), self.sample_rate)
            mix.setflags(write=False)
            self._track_cache = (self._clips_revision, mix)
        return self._track_cache[1]

    @property
    def clips_revision(self) -> int:
        return self._clips_revision

    # ---- non-undoable view state --------------------------------------------------------------------------
    @property
    def current_segment_id(self) -> str:
        return self._current_segment

    def current_segment(self) -> Segment | None:
        return self.project.segment(self._current_segment)

    def set_current_segment(self, seg_id: str) -> None:
        if seg_id != self._current_segment:
            self._current_segment = seg_id
            self.current_segment_changed.emit(seg_id)

    def selected_segment_ids(self) -> list[str]:
        """The selected segments (always including the current one), in timeline order."""
        chosen = self._selected_segments | ({self._current_segment} if self._current_segment else set())
        return [s.id for s in sorted(self.project.segments, key=lambda s: s.start) if s.id in chosen]

    def set_segment_selection(self, seg_ids: set[str]) -> None:
        ids = {s for s in seg_ids if self.project.segment(s) is not None}
        if ids != self._selected_segments:
            self._selected_segments = ids
            self.selection_changed.emit()

    def current_take_index(self, seg_id: str) -> int:
        seg = self.project.segment(seg_id)
        if seg is None or not seg.takes:
            return -1
        return min(self._current_take.get(seg_id, 0), len(seg.takes) - 1)

    def current_take(self, seg_id: str | None = None) -> Take | None:
        sid = self._current_segment if seg_id is None else seg_id
        seg = self.project.segment(sid)
        k = self.current_take_index(sid)
        return seg.takes[k] if seg is not None and k >= 0 else None

    def set_current_take(self, seg_id: str, index: int) -> None:
        if self._current_take.get(seg_id) != index:
            self._current_take[seg_id] = index
            self.current_take_changed.emit(seg_id, index)

    @property
    def selected_clip_id(self) -> str:
        return self._selected_clip

    def set_selected_clip(self, clip_id: str) -> None:
        if clip_id != self._selected_clip:
            self._selected_clip = clip_id
            self.selected_clip_changed.emit(clip_id)

    @property
    def selected_hit(self) -> tuple[str, float] | None:
        """(segment id, hit time) of the selected hit marker, or None."""
        return self._selected_hit

    def set_selected_hit(self, seg_id: str = "", t: float = 0.0) -> None:
        """Select one hit of a segment ("" = none)."""
        seg = self.project.segment(seg_id)
        value = (seg_id, t) if seg is not None and t in seg.hits else None
        if value != self._selected_hit:
            self._selected_hit = value
            self.selected_hit_changed.emit()

    def hits_token(self, seg_id: str) -> int:
        """Changes whenever the segment's hits change (a detection compares it with the one it started with)."""
        return self._hits_tokens.get(seg_id, 0)

    def set_detected_hits(self, seg_id: str, hits: list[float]) -> None:
        """The detector's hits for a segment whose hits are pending (no undo entry; the project is modified)."""
        seg = self.project.segment(seg_id)
        assert seg is not None and seg.hits_state == HITS_PENDING, f"segment {seg_id} does not wait for hits"
        self.set_segment_hits(seg_id, hits, HITS_DETECTED)
        self.mark_modified()

    # ---- mutators for commands ------------------------------------------------------------------------------
    def _bump(self, *, clips: bool = False) -> None:
        self.revision += 1
        if clips:
            self._clips_revision += 1
        self.revision_changed.emit(self.revision)

    def insert_segment(self, segment: Segment, index: int | None = None) -> None:
        segs = self.project.segments
        segs.insert(len(segs) if index is None else index, segment)
        self.project.next_segment_number = max(self.project.next_segment_number, segment.number + 1)
        self._bump()
        self.segments_changed.emit()

    def remove_segment(self, seg_id: str) -> tuple[Segment, int]:
        segs = self.project.segments
        index = next(i for i, s in enumerate(segs) if s.id == seg_id)
        seg = segs.pop(index)
        self._selected_segments.discard(seg_id)
        if self._selected_hit is not None and self._selected_hit[0] == seg_id:
            self.set_selected_hit()
        if self._current_segment == seg_id:
            self.set_current_segment(segs[min(index, len(segs) - 1)].id if segs else "")
        self._bump()
        self.segments_changed.emit()
        return seg, index

    def set_segment_start(self, seg_id: str, start: float) -> None:
        seg = self.project.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        seg.start = start
        self._bump()
        self.segment_changed.emit(seg_id)
        self.segments_changed.emit()

    def set_segment_hits(self, seg_id: str, hits: list[float], state: str) -> None:
        """Replace a segment's hits (sorted, inside the segment) and their state."""
        seg = self.project.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        assert state in HITS_STATES, f"hits state {state!r}"
        assert all(0.0 <= t < seg.duration for t in hits), f"hits outside {seg.label}: {hits}"
        seg.hits, seg.hits_state = sorted(hits), state
        self._hits_tokens[seg_id] = self.hits_token(seg_id) + 1
        sel = self._selected_hit
        if sel is not None and sel[0] == seg_id and sel[1] not in seg.hits:
            self.set_selected_hit()
        self._bump()
        self.hits_changed.emit(seg_id)

    def set_takes(self, seg_id: str, takes: list[Take], generation: dict, warnings: list[str]) -> None:
        seg = self.project.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        seg.takes, seg.generation, seg.warnings = takes, generation, warnings
        self._current_take.pop(seg_id, None)
        self._bump()
        self.segment_changed.emit(seg_id)

    def insert_clip(self, clip: Clip, index: int | None = None) -> None:
        clips = self.project.clips
        clips.insert(len(clips) if index is None else index, clip)
        self._bump(clips=True)
        self.clips_changed.emit()

    def remove_clip(self, clip_id: str) -> tuple[Clip, int]:
        clips = self.project.clips
        index = next(i for i, c in enumerate(clips) if c.id == clip_id)
        clip = clips.pop(index)
        if self._selected_clip == clip_id:
            self.set_selected_clip("")
        self._bump(clips=True)
        self.clips_changed.emit()
        return clip, index

    def insert_marker(self, marker: Marker) -> None:
        """Add a marker at its place in time order."""
        ms = self.project.markers
        index = next((i for i, m in enumerate(ms) if (m.time, m.id) > (marker.time, marker.id)), len(ms))
        ms.insert(index, marker)
        self._bump()
        self.markers_changed.emit()

    def remove_marker(self, marker_id: str) -> Marker:
        ms = self.project.markers
        index = next(i for i, m in enumerate(ms) if m.id == marker_id)
        marker = ms.pop(index)
        self._bump()
        self.markers_changed.emit()
        return marker

    def set_marker_name(self, marker_id: str, name: str) -> None:
        marker = self.project.marker(marker_id)
        assert marker is not None, f"no marker {marker_id}"
        marker.name = name
        self._bump()
        self.markers_changed.emit()

    def replace_clip(self, clip: Clip) -> Clip:
        """Put `clip` in the place of the clip with its id (a new comp, crossfade or gain); returns the old one."""
        clips = self.project.clips
        index = next(i for i, c in enumerate(clips) if c.id == clip.id)
        old, clips[index] = clips[index], clip
        self._bump(clips=True)
        self.clips_changed.emit()
        return old

    def set_clip_gain(self, clip_id: str, gain_db: float) -> None:
        clip = self.project.clip(clip_id)
        assert clip is not None, f"no clip {clip_id}"
        clip.gain_db = gain_db
        self._bump(clips=True)
        self.clips_changed.emit()


def _clean_changed_relay(document: ProjectDocument):
    """The undo stack's `cleanChanged` handler, which outlives neither the document nor the stack.

    The stack is the document's Qt child, so Qt deletes it inside the document's destructor, and the stack clears
    itself there, emitting `cleanChanged` into a half-destroyed document: a bound method as the slot makes
    PySide6 <= 6.11 raise "Slot 'ProjectDocument::' not found" from the event loop (6.12 lets it through to a
    deleted C++ object). A plain function that holds the document weakly and checks both objects is called
    instead, and does nothing once either is going away.
    """
    ref = weakref.ref(document)

    def relay(clean: bool) -> None:
        doc = ref()
        if doc is None or not shiboken6.isValid(doc) or not shiboken6.isValid(doc.undo_stack):
            return
        doc._on_clean_changed(clean)

    return relay
