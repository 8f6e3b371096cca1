"""One `QUndoCommand` per user edit. Views push these; nothing else changes the document's content.

Every command keeps what it needs to undo itself (the removed segment, the previous takes, the replaced clip).
Audio is never deleted from the store by an undo, so a redo finds it again; unreferenced audio is dropped from
disk when the project is saved. Hit edits keep the segment's hits and their state before and after (snapshots),
so an undo also hands a segment back to the detector when its hits were still pending or detected.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtGui import QUndoCommand

from foley_app.document.document import ProjectDocument
from foley_app.document.project import (
    HITS_DETECTED,
    HITS_PENDING,
    HITS_USER,
    Clip,
    ClipPart,
    Marker,
    Segment,
    Take,
    new_id,
)
from foley_app.document.timeline import shift_hits

# merge ids (QUndoCommand.id): consecutive commands with the same id may merge
_ID_NUDGE = 1001
_ID_GAIN = 1002
_ID_CROSSFADE = 1003

MIN_COMP_PART_S = 0.05  # no part shorter than this: a cut this close to another (or an end) is refused


class AddSegmentCommand(QUndoCommand):
    def __init__(self, doc: ProjectDocument, start: float, duration: float, *, number: int | None = None) -> None:
        self.doc = doc
        n = number if number is not None else doc.project.next_segment_number
        self.segment = Segment(id=new_id(), number=n, start=start, duration=duration)
        super().__init__(f"Add segment {self.segment.label}")
        self._prev_current = doc.current_segment_id

    def redo(self) -> None:
        self._prev_next = self.doc.project.next_segment_number
        self.doc.insert_segment(self.segment)
        self.doc.set_current_segment(self.segment.id)

    def undo(self) -> None:
        self.doc.remove_segment(self.segment.id)
        self.doc.project.next_segment_number = self._prev_next
        if self.doc.segment(self._prev_current) is not None:
            self.doc.set_current_segment(self._prev_current)


class RemoveSegmentsCommand(QUndoCommand):
    """Delete segments and their takes (clips already on the track stay)."""

    def __init__(self, doc: ProjectDocument, seg_ids: list[str]) -> None:
        self.doc = doc
        self.seg_ids = [s for s in seg_ids if doc.segment(s) is not None]
        labels = ", ".join(doc.segment(s).label for s in self.seg_ids)  # type: ignore[union-attr]
        super().__init__(f"Delete segment{'s' if len(self.seg_ids) > 1 else ''} {labels}")
        self._removed: list[tuple[Segment, int]] = []

    def redo(self) -> None:
        self._removed = [self.doc.remove_segment(s) for s in self.seg_ids]

    def undo(self) -> None:
        for seg, index in reversed(self._removed):
            self.doc.insert_segment(seg, index)
        if self._removed:
            self.doc.set_current_segment(self._removed[0][0].id)


class MoveSegmentCommand(QUndoCommand):
    """Move a segment to a new start. Keyboard nudges of one segment merge into one undo step.

    Its hits stay at their picture times (shifted by the move; those that leave the segment are dropped); detected
    hits become pending again, so the detector looks at the new place.
    """

    def __init__(self, doc: ProjectDocument, seg_id: str, new_start: float, *, old_start: float | None = None,
                 nudge: bool = False) -> None:
        self.doc = doc
        self.seg_id = seg_id
        seg = doc.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        self.old = seg.start if old_start is None else old_start
        self.new = new_start
        self.nudge = nudge
        self._hits_base = seg.start
        self.old_hits = (list(seg.hits), seg.hits_state)
        self._duration = seg.duration
        super().__init__(f"{'Nudge' if nudge else 'Move'} segment {seg.label}")

    def _new_hits(self) -> tuple[list[float], str]:
        hits, state = self.old_hits
        shifted = shift_hits(hits, self.new - self._hits_base, self._duration)
        return shifted, (HITS_PENDING if state == HITS_DETECTED else state)

    def id(self) -> int:
        return _ID_NUDGE if self.nudge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveSegmentCommand) or other.seg_id != self.seg_id or not other.nudge:
            return False
        self.new = other.new
        self.redo()  # the hits again from this command's originals: one pushed out by a nudge comes back
        return True

    def redo(self) -> None:
        self.doc.set_segment_start(self.seg_id, self.new)
        self.doc.set_segment_hits(self.seg_id, *self._new_hits())

    def undo(self) -> None:
        self.doc.set_segment_start(self.seg_id, self.old)
        self.doc.set_segment_hits(self.seg_id, *self.old_hits)


class SetTakesCommand(QUndoCommand):
    """A generation's result: the segment's candidates (replacing earlier ones)."""

    def __init__(self, doc: ProjectDocument, seg_id: str, takes: list[Take], generation: dict[str, Any],
                 warnings: list[str]) -> None:
        self.doc = doc
        self.seg_id = seg_id
        seg = doc.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        self.new = (takes, generation, warnings)
        self.old = (list(seg.takes), dict(seg.generation), list(seg.warnings))
        super().__init__(f"Generate {len(takes)} candidate{'s' if len(takes) != 1 else ''} for {seg.label}")

    def redo(self) -> None:
        self.doc.set_takes(self.seg_id, *self.new)

    def undo(self) -> None:
        self.doc.set_takes(self.seg_id, *self.old)


class AcceptTakeCommand(QUndoCommand):
    """Put a take on the Foley track at the time it was generated for (replacing the segment's earlier clip)."""

    def __init__(self, doc: ProjectDocument, seg_id: str, take_index: int, *, gain_db: float | None = None) -> None:
        self.doc = doc
        seg = doc.segment(seg_id)
        assert seg is not None and 0 <= take_index < len(seg.takes), f"no take {take_index} in {seg_id}"
        take = seg.takes[take_index]
        self.replaced = doc.project.clip_for_segment(seg_id)
        gain = gain_db if gain_db is not None else (self.replaced.gain_db if self.replaced else 0.0)
        self.clip = Clip(
            id=new_id(), segment_id=seg_id, label=f"{seg.label} #{take.index + 1}",
            start=take.start_in(seg), audio_id=take.audio_id, seed=take.seed,
            take_index=take.index, gain_db=gain,
        )
        super().__init__(f"Accept {seg.label} candidate {take.index + 1}")
        self._replaced_index = -1

    def redo(self) -> None:
        if self.replaced is not None:
            _, self._replaced_index = self.doc.remove_clip(self.replaced.id)
        self.doc.insert_clip(self.clip)
        self.doc.set_selected_clip(self.clip.id)

    def undo(self) -> None:
        self.doc.remove_clip(self.clip.id)
        if self.replaced is not None:
            self.doc.insert_clip(self.replaced, self._replaced_index)


class RemoveClipCommand(QUndoCommand):
    def __init__(self, doc: ProjectDocument, clip_id: str) -> None:
        self.doc = doc
        clip = doc.project.clip(clip_id)
        assert clip is not None, f"no clip {clip_id}"
        self.clip_id = clip_id
        super().__init__(f"Remove clip {clip.label} from the track")
        self._removed: tuple[Clip, int] | None = None

    def redo(self) -> None:
        self._removed = self.doc.remove_clip(self.clip_id)

    def undo(self) -> None:
        assert self._removed is not None
        self.doc.insert_clip(*self._removed)


class SetClipGainCommand(QUndoCommand):
    """Change a clip's gain (dB). Successive changes of one clip (a spin box being scrolled) merge."""

    def __init__(self, doc: ProjectDocument, clip_id: str, gain_db: float) -> None:
        self.doc = doc
        clip = doc.project.clip(clip_id)
        assert clip is not None, f"no clip {clip_id}"
        self.clip_id = clip_id
        self.old = clip.gain_db
        self.new = float(gain_db)
        super().__init__(f"Gain of {clip.label}")

    def id(self) -> int:
        return _ID_GAIN

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetClipGainCommand) or other.clip_id != self.clip_id:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc.set_clip_gain(self.clip_id, self.new)

    def undo(self) -> None:
        self.doc.set_clip_gain(self.clip_id, self.old)


# ---- comping ------------------------------------------------------------------------------------------------
def comp_label(seg_label: str, take_indices: list[int]) -> str:
    """"S1 #2" for one take, "S1 comp #2 #3 #1" for a comp (the take of each part in order)."""
    if len(take_indices) == 1:
        return f"{seg_label} #{take_indices[0] + 1}"
    return f"{seg_label} comp " + " ".join(f"#{k + 1}" for k in take_indices)


def _relabel(doc: ProjectDocument, clip: Clip) -> Clip:
    seg = doc.segment(clip.segment_id)
    base = seg.label if seg is not None else clip.label.split(" ")[0]
    return dataclasses.replace(clip, label=comp_label(base, clip.take_indices()))


def split_clip(doc: ProjectDocument, clip: Clip, t: float) -> Clip | None:
    """The clip cut at `t` (s from its start): a new part from there on, of the take that played there (so nothing
    sounds different until another take is picked for it). None where a part would be shorter than
    MIN_COMP_PART_S."""
    length = len(doc.audio.get(clip.audio_id)) / doc.sample_rate
    bounds = [*clip.part_times(), length]
    if any(abs(t - b) < MIN_COMP_PART_S for b in bounds) or not 0.0 < t < length:
        return None
    k = clip.part_at(t)
    take_index, seed, audio_id = (clip.take_index, clip.seed, clip.audio_id) if k == 0 else (
        clip.parts[k - 1].take_index, clip.parts[k - 1].seed, clip.parts[k - 1].audio_id)
    parts = sorted([*clip.parts, ClipPart(round(t, 6), take_index, seed, audio_id)], key=lambda p: p.time)
    return dataclasses.replace(clip, parts=parts)


def with_part_take(doc: ProjectDocument, clip: Clip, part: int, take: Take) -> Clip:
    """The clip with part `part` (0 = the first) playing `take`, relabelled."""
    audio = doc.audio.get(take.audio_id)
    if len(audio) != len(doc.audio.get(clip.audio_id)):
        raise ValueError(f"take {take.index + 1} is not as long as the clip")
    if part == 0:
        new = dataclasses.replace(clip, audio_id=take.audio_id, seed=take.seed, take_index=take.index)
    else:
        parts = list(clip.parts)
        parts[part - 1] = ClipPart(parts[part - 1].time, take.index, take.seed, take.audio_id)
        new = dataclasses.replace(clip, parts=parts)
    return _relabel(doc, new)


def without_cut(doc: ProjectDocument, clip: Clip, part: int) -> Clip:
    """The clip with the cut at the start of part `part` (>= 1) removed: the part before plays on over it."""
    assert 1 <= part <= len(clip.parts), f"clip {clip.label} has no cut {part}"
    parts = [p for i, p in enumerate(clip.parts, start=1) if i != part]
    return _relabel(doc, dataclasses.replace(clip, parts=parts))


class EditClipCommand(QUndoCommand):
    """Replace a clip by an edited copy of it (a cut added or removed, a take picked for a part): the clip before and
    after are kept whole, so undo and redo swap them."""

    def __init__(self, doc: ProjectDocument, new: Clip, text: str) -> None:
        self.doc = doc
        old = doc.project.clip(new.id)
        assert old is not None, f"no clip {new.id}"
        self.old, self.new = old, new
        super().__init__(text)

    def redo(self) -> None:
        self.doc.replace_clip(self.new)

    def undo(self) -> None:
        self.doc.replace_clip(self.old)


class SetCrossfadeCommand(EditClipCommand):
    """The length of a comped clip's crossfades. Successive changes of one clip (a spin box) merge."""

    def __init__(self, doc: ProjectDocument, clip_id: str, seconds: float) -> None:
        clip = doc.project.clip(clip_id)
        assert clip is not None, f"no clip {clip_id}"
        super().__init__(doc, dataclasses.replace(clip, crossfade_s=float(seconds)), f"Crossfade of {clip.label}")

    def id(self) -> int:
        return _ID_CROSSFADE

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetCrossfadeCommand) or other.new.id != self.new.id:
            return False
        self.new = other.new
        return True


# ---- hits ---------------------------------------------------------------------------------------------------
class _HitsCommand(QUndoCommand):
    """A change of one segment's hits: the hits and their state before and after, and the hit selected after."""

    def __init__(self, doc: ProjectDocument, seg_id: str, hits: list[float], state: str, text: str, *,
                 select: float | None = None) -> None:
        self.doc = doc
        self.seg_id = seg_id
        seg = doc.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        self.old = (list(seg.hits), seg.hits_state)
        self.new = (sorted(hits), state)
        self._select = select
        self._selected_before = doc.selected_hit
        super().__init__(text.format(label=seg.label))

    def redo(self) -> None:
        self.doc.set_segment_hits(self.seg_id, *self.new)
        if self._select is not None:
            self.doc.set_selected_hit(self.seg_id, self._select)

    def undo(self) -> None:
        self.doc.set_segment_hits(self.seg_id, *self.old)
        if self._selected_before is not None:
            self.doc.set_selected_hit(*self._selected_before)


def _hits_of(doc: ProjectDocument, seg_id: str) -> list[float]:
    seg = doc.segment(seg_id)
    assert seg is not None, f"no segment {seg_id}"
    return list(seg.hits)


class AddHitCommand(_HitsCommand):
    """A hit at `t` s from the segment start (the user's, like every hit edit)."""

    def __init__(self, doc: ProjectDocument, seg_id: str, t: float) -> None:
        hits = _hits_of(doc, seg_id)
        assert t not in hits, f"{seg_id} already has a hit at {t}"
        super().__init__(doc, seg_id, [*hits, t], HITS_USER, f"Add hit at {t:.3f} s to {{label}}", select=t)


class MoveHitCommand(_HitsCommand):
    """Move one hit of a segment from `old` to `new` (s from the segment start)."""

    def __init__(self, doc: ProjectDocument, seg_id: str, old: float, new: float) -> None:
        hits = _hits_of(doc, seg_id)
        assert old in hits, f"{seg_id} has no hit at {old}"
        rest = [h for h in hits if h != old]
        super().__init__(doc, seg_id, sorted({*rest, new}), HITS_USER,
                         f"Move hit of {{label}} from {old:.3f} to {new:.3f} s", select=new)


class RemoveHitCommand(_HitsCommand):
    def __init__(self, doc: ProjectDocument, seg_id: str, t: float) -> None:
        hits = _hits_of(doc, seg_id)
        assert t in hits, f"{seg_id} has no hit at {t}"
        super().__init__(doc, seg_id, [h for h in hits if h != t], HITS_USER, f"Delete hit at {t:.3f} s of {{label}}")


class ClearHitsCommand(_HitsCommand):
    """No hits in the segment (the user's choice: the detector does not fill it again)."""

    def __init__(self, doc: ProjectDocument, seg_id: str) -> None:
        super().__init__(doc, seg_id, [], HITS_USER, "Clear hits of {label}")


class RedetectHitsCommand(_HitsCommand):
    """Hand the segment's hits back to the detector: they stay shown until its result replaces them."""

    def __init__(self, doc: ProjectDocument, seg_id: str) -> None:
        super().__init__(doc, seg_id, _hits_of(doc, seg_id), HITS_PENDING, "Detect hits of {label} again")


# ---- markers ------------------------------------------------------------------------------------------------
class AddMarkerCommand(QUndoCommand):
    """A marker at `time` (s), named `name` or "Marker N" (N counts the markers added to the project)."""

    def __init__(self, doc: ProjectDocument, time: float, name: str | None = None) -> None:
        self.doc = doc
        self._number = doc.project.next_marker_number
        self.marker = Marker(id=new_id(), name=name or f"Marker {self._number}", time=float(time))
        super().__init__(f"Add marker {self.marker.name}")

    def redo(self) -> None:
        self.doc.project.next_marker_number = self._number + 1
        self.doc.insert_marker(self.marker)

    def undo(self) -> None:
        self.doc.remove_marker(self.marker.id)
        self.doc.project.next_marker_number = self._number


class RemoveMarkersCommand(QUndoCommand):
    def __init__(self, doc: ProjectDocument, marker_ids: list[str]) -> None:
        self.doc = doc
        self.markers = [m for m in (doc.project.marker(i) for i in marker_ids) if m is not None]
        names = ", ".join(m.name for m in self.markers)
        super().__init__(f"Delete marker{'s' if len(self.markers) > 1 else ''} {names}")

    def redo(self) -> None:
        for m in self.markers:
            self.doc.remove_marker(m.id)

    def undo(self) -> None:
        for m in self.markers:
            self.doc.insert_marker(m)


class RenameMarkerCommand(QUndoCommand):
    def __init__(self, doc: ProjectDocument, marker_id: str, name: str) -> None:
        self.doc = doc
        marker = doc.project.marker(marker_id)
        assert marker is not None, f"no marker {marker_id}"
        self.marker_id = marker_id
        self.old, self.new = marker.name, name
        super().__init__(f"Rename marker {self.old} to {self.new}")

    def redo(self) -> None:
        self.doc.set_marker_name(self.marker_id, self.new)

    def undo(self) -> None:
        self.doc.set_marker_name(self.marker_id, self.old)
