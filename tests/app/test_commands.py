"""The document and its undo commands, without widgets: every edit undoes and redoes exactly."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from foley_app.document.commands import (
    AcceptTakeCommand,
    AddSegmentCommand,
    MoveSegmentCommand,
    RemoveClipCommand,
    RemoveSegmentsCommand,
    SetClipGainCommand,
    SetTakesCommand,
)
from foley_app.document.document import ProjectDocument
from foley_app.document.project import Take, VideoRef


@pytest.fixture
def doc(qapp) -> ProjectDocument:
    d = ProjectDocument()
    d.new_for_video(VideoRef("/videos/film.mp4", 30.0, 25.0, 640, 360, True))
    return d


def _takes(doc: ProjectDocument, start: float, n: int = 3, seed: int = 0) -> list[Take]:
    rng = np.random.default_rng(seed)
    return [Take(k, seed + k, doc.audio.add(0.1 * rng.standard_normal(16000 * 8).astype(np.float32)),
                 {"start": start, "steps": 25}, -20.0) for k in range(n)]


def _state(doc: ProjectDocument) -> dict:
    return copy.deepcopy(doc.project.to_dict("media"))


def test_a_session_of_edits_undoes_to_the_start_and_redoes_to_the_end(doc: ProjectDocument) -> None:
    stack = doc.undo_stack
    states = [_state(doc)]
    add = AddSegmentCommand(doc, 2.0, 8.192)
    stack.push(add)
    sid = add.segment.id
    states.append(_state(doc))
    stack.push(MoveSegmentCommand(doc, sid, 3.0))
    states.append(_state(doc))
    stack.push(SetTakesCommand(doc, sid, _takes(doc, 3.0), {"steps": 25}, []))
    states.append(_state(doc))
    stack.push(AcceptTakeCommand(doc, sid, 1))
    states.append(_state(doc))
    clip_id = doc.project.clips[0].id
    stack.push(SetClipGainCommand(doc, clip_id, -6.0))
    states.append(_state(doc))
    stack.push(AcceptTakeCommand(doc, sid, 2))  # replaces the segment's clip, keeps its gain
    states.append(_state(doc))
    assert len(doc.project.clips) == 1 and doc.project.clips[0].take_index == 2
    assert doc.project.clips[0].gain_db == -6.0
    stack.push(RemoveSegmentsCommand(doc, [sid]))
    states.append(_state(doc))
    assert doc.project.segments == [] and len(doc.project.clips) == 1  # the clip stays on the track
    stack.push(RemoveClipCommand(doc, doc.project.clips[0].id))
    states.append(_state(doc))
    assert doc.is_modified()
    for expected in reversed(states[:-1]):
        stack.undo()
        assert _state(doc) == expected
    assert not doc.is_modified()
    for expected in states[1:]:
        stack.redo()
        assert _state(doc) == expected


def test_keyboard_nudges_merge_into_one_undo_step_and_drags_do_not(doc: ProjectDocument) -> None:
    add = AddSegmentCommand(doc, 2.0, 8.192)
    doc.undo_stack.push(add)
    sid = add.segment.id
    for k in range(1, 6):
        doc.undo_stack.push(MoveSegmentCommand(doc, sid, 2.0 + k / 25, nudge=True))
    assert doc.undo_stack.count() == 2
    doc.undo_stack.push(MoveSegmentCommand(doc, sid, 5.0))
    doc.undo_stack.push(MoveSegmentCommand(doc, sid, 6.0))
    assert doc.undo_stack.count() == 4
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.segment(sid).start == pytest.approx(2.2)
    doc.undo_stack.undo()
    assert doc.segment(sid).start == 2.0


def test_gain_edits_of_one_clip_merge(doc: ProjectDocument) -> None:
    add = AddSegmentCommand(doc, 0.0, 8.192)
    doc.undo_stack.push(add)
    doc.undo_stack.push(SetTakesCommand(doc, add.segment.id, _takes(doc, 0.0), {}, []))
    doc.undo_stack.push(AcceptTakeCommand(doc, add.segment.id, 0))
    cid = doc.project.clips[0].id
    n = doc.undo_stack.count()
    for g in (-1.0, -2.0, -3.5):
        doc.undo_stack.push(SetClipGainCommand(doc, cid, g))
    assert doc.undo_stack.count() == n + 1 and doc.project.clips[0].gain_db == -3.5
    doc.undo_stack.undo()
    assert doc.project.clips[0].gain_db == 0.0


def test_accepted_takes_go_where_they_were_made_even_after_a_move(doc: ProjectDocument) -> None:
    add = AddSegmentCommand(doc, 2.0, 8.192)
    doc.undo_stack.push(add)
    sid = add.segment.id
    doc.undo_stack.push(SetTakesCommand(doc, sid, _takes(doc, 2.0), {}, []))
    doc.undo_stack.push(MoveSegmentCommand(doc, sid, 4.0))
    doc.undo_stack.push(AcceptTakeCommand(doc, sid, 0))
    assert doc.project.clips[0].start == 2.0  # in sync with the picture it was made from


def test_the_track_is_rendered_from_the_clips_and_cached(doc: ProjectDocument) -> None:
    add = AddSegmentCommand(doc, 1.0, 8.192)
    doc.undo_stack.push(add)
    doc.undo_stack.push(SetTakesCommand(doc, add.segment.id, _takes(doc, 1.0), {}, []))
    assert not np.any(doc.track_audio())
    doc.undo_stack.push(AcceptTakeCommand(doc, add.segment.id, 0))
    track = doc.track_audio()
    assert track.shape == (30 * 16000,) and doc.track_audio() is track
    assert not np.any(track[:16000]) and np.any(track[16000:])
    doc.undo_stack.push(SetClipGainCommand(doc, doc.project.clips[0].id, -6.0))
    assert np.abs(doc.track_audio()).max() == pytest.approx(np.abs(track).max() / 2, rel=1e-2)


def test_selection_and_current_segment_follow_deletion(doc: ProjectDocument) -> None:
    cmds = [AddSegmentCommand(doc, t, 8.192) for t in (0.0, 5.0, 10.0)]
    for c in cmds:
        doc.undo_stack.push(c)
    ids = [c.segment.id for c in cmds]
    doc.set_current_segment(ids[1])
    doc.set_segment_selection({ids[0]})
    assert doc.selected_segment_ids() == ids[:2]
    doc.undo_stack.push(RemoveSegmentsCommand(doc, doc.selected_segment_ids()))
    assert [s.id for s in doc.project.segments] == [ids[2]] and doc.current_segment_id == ids[2]
    doc.undo_stack.undo()
    assert [s.id for s in doc.project.segments] == ids
