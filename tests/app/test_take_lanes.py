"""Take lanes and comping: the current segment's candidates stacked under the Foley track (click auditions from
there, double-click picks the take for that part of the clip), S splits the clip at the playhead, Shift+S removes
the nearest cut, Alt+N picks candidate N at the playhead, an equal-power crossfade centred on every cut (its length
in the segment panel); every edit one undo step; saved in the project (format 4), in the mixdown and the export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import FakeEngine, open_video
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engine import CompPart, render_comp
from foley_app.document import project as proj
from foley_app.document.commands import (
    AcceptTakeCommand,
    EditClipCommand,
    SetCrossfadeCommand,
    comp_label,
    split_clip,
    with_part_take,
    without_cut,
)
from foley_app.document.document import ProjectDocument
from foley_app.document.project import Clip, ClipPart, Segment, Take, VideoRef, load_project, save_project
from foley_app.export import ExportRequest
from foley_app.views.main_window import A_JOIN_CUT, A_SPLIT_CLIP

SR = 16_000
ALT, SHIFT = Qt.KeyboardModifier.AltModifier, Qt.KeyboardModifier.ShiftModifier


def _doc_with_takes(n: int = 3, length: int = SR * 2) -> tuple[ProjectDocument, Segment]:
    doc = ProjectDocument()
    rng = np.random.default_rng(1)
    seg = Segment(id="s1", number=1, start=1.0, duration=length / SR)
    takes = [Take(k, 10 + k, doc.audio.add((0.2 * rng.standard_normal(length)).astype(np.float32)),
                  {"start": 1.0}, -20.0) for k in range(n)]
    doc.insert_segment(seg)
    doc.set_takes(seg.id, takes, {}, [])
    return doc, seg


def _comp_of(doc: ProjectDocument, clip: Clip) -> np.ndarray:
    parts = [CompPart(0, clip.audio_id, doc.audio.get(clip.audio_id))]
    parts += [CompPart(round(p.time * SR), p.audio_id, doc.audio.get(p.audio_id)) for p in clip.parts]
    return render_comp(parts, round(clip.crossfade_s * SR))


# ---- document and commands ----------------------------------------------------------------------------------
def test_split_pick_join_and_crossfade_are_undoable_and_the_mixdown_plays_the_comp(qtbot) -> None:
    doc, seg = _doc_with_takes()
    stack = doc.undo_stack
    stack.push(AcceptTakeCommand(doc, seg.id, 0))
    clip = doc.project.clips[0]
    alone = doc.track_audio().copy()
    assert split_clip(doc, clip, 0.01) is None and split_clip(doc, clip, 2.0 - 0.01) is None  # parts too short
    cut = split_clip(doc, clip, 0.5)
    stack.push(EditClipCommand(doc, cut, "Split"))
    assert doc.project.clips[0].take_indices() == [0, 0]
    np.testing.assert_array_equal(doc.track_audio(), alone)  # a cut alone changes nothing
    stack.push(EditClipCommand(doc, split_clip(doc, doc.project.clips[0], 1.2), "Split"))
    c = doc.project.clips[0]
    stack.push(EditClipCommand(doc, with_part_take(doc, c, 1, seg.takes[2]), "Use"))
    c = doc.project.clips[0]
    assert c.take_indices() == [0, 2, 0] and c.label == comp_label("S1", [0, 2, 0]) == "S1 comp #1 #3 #1"
    # the track: take 1 before 0.5 s, take 3 from 0.5 to 1.2 s, take 1 after; 20 ms fades centred on the cuts
    track = doc.track_audio()
    start = round(1.0 * SR)
    mid = start + round(0.85 * SR)
    np.testing.assert_array_equal(track[mid - 100: mid + 100], doc.audio.get(seg.takes[2].audio_id)[
        round(0.85 * SR) - 100: round(0.85 * SR) + 100])
    np.testing.assert_allclose(track[start + 200: start + round(0.5 * SR) - 200],
                               _comp_of(doc, c)[200: round(0.5 * SR) - 200])
    stack.push(SetCrossfadeCommand(doc, c.id, 0.05))
    stack.push(SetCrossfadeCommand(doc, c.id, 0.08))  # a spin box scrolled: one step
    assert doc.project.clips[0].crossfade_s == 0.08
    stack.undo()
    assert doc.project.clips[0].crossfade_s == proj.DEFAULT_COMP_CROSSFADE_S
    stack.push(EditClipCommand(doc, without_cut(doc, doc.project.clips[0], 2), "Join"))
    assert doc.project.clips[0].take_indices() == [0, 2] and doc.project.clips[0].part_times() == [0.0, 0.5]
    for _ in range(4):
        stack.undo()
    assert doc.project.clips[0].parts == [] and doc.project.clips[0].label == "S1 #1"
    np.testing.assert_array_equal(doc.track_audio(), alone)
    while stack.canRedo():
        stack.redo()
    assert doc.project.clips[0].take_indices() == [0, 2]


def test_a_comp_round_trips_and_older_files_open_with_one_take_per_clip(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    a, b = (np.zeros(SR, np.float32), np.ones(SR, np.float32) * 0.1)
    p = proj.Project(VideoRef(str(video), 8.2, 25.0, 160, 120, False),
                     clips=[Clip("c", "s", "S1 comp #1 #2", 0.0, "aa", 1, 0, parts=[ClipPart(0.4, 1, 2, "bb")],
                                 crossfade_s=0.03)])
    path = save_project(p, {"aa": a, "bb": b}, tmp_path / "p.foleyproj")
    data = json.loads(path.read_text())
    assert data["version"] == proj.FORMAT_VERSION == 4
    assert data["clips"][0]["parts"] == [{"time": 0.4, "take_index": 1, "seed": 2, "audio_id": "bb"}]
    q, audio = load_project(path)
    assert q == p and set(audio) == {"aa", "bb"}  # the other take's audio is saved with the clip
    # what version 3 wrote: clips without parts or crossfade
    for c in data["clips"]:
        del c["parts"], c["crossfade_s"]
    data["version"] = 3
    path.write_text(json.dumps(data))
    q, _ = load_project(path)
    assert q.clips[0].parts == [] and q.clips[0].crossfade_s == proj.DEFAULT_COMP_CROSSFADE_S
    data["clips"][0]["crossfade_s"] = 5.0
    path.write_text(json.dumps(data))
    with pytest.raises(proj.ProjectFileError, match="damaged"):
        load_project(path)


# ---- the window ---------------------------------------------------------------------------------------------
def _lane_point(lane, t: float):
    return lane.plot.mapFromScene(lane.vb.mapViewToScene(QPointF(t, 0.0)))


def _double_click(qtbot, lane, t: float) -> None:
    """A double-click as a hand makes it, sent straight to the lane: press, release (a click, which auditions),
    double-click, release. (QTest's mouseDClick after another click in the same test is turned into something
    else by its virtual timestamps, and pyqtgraph's scene then sees no double-click.)"""
    view = lane.plot.viewport()
    pos = QPointF(_lane_point(lane, t))
    glob = QPointF(view.mapToGlobal(pos.toPoint()))
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none),
                          (QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)):
        QApplication.sendEvent(view, QMouseEvent(kind, pos, glob, left, buttons, Qt.KeyboardModifier.NoModifier))
    qtbot.wait(1)


def test_take_lanes_audition_comp_and_export(qtbot, make_window, video_12s: Path, tmp_path: Path,
                                             null_audio) -> None:
    w = make_window(engine=FakeEngine(), candidates=3)
    open_video(qtbot, w, video_12s)
    doc, pb, tl, ed = w.doc, w.ctx.playback, w.timeline, w.editor
    lanes = tl.take_lanes
    assert not lanes.isVisible() and lanes.lanes == []
    pb.seek(1.0)
    qtbot.keyClick(w, Qt.Key.Key_N)
    with qtbot.waitSignal(ed.generation_applied, timeout=10_000):
        qtbot.keyClick(w, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    seg = doc.current_segment()
    assert lanes.isVisible() and [ln.index for ln in lanes.lanes] == [0, 1, 2]
    t, y = lanes.waveform(1)
    assert t[0] == pytest.approx(seg.start, abs=0.01) and np.abs(y).max() > 0  # at the time it was made for
    assert not w.actions_[A_SPLIT_CLIP].isEnabled()

    # a click on lane 2 auditions candidate 2 with the picture from there
    lane2 = lanes.lanes[1]
    qtbot.mouseClick(lane2.plot.viewport(), Qt.MouseButton.LeftButton, pos=_lane_point(lane2, 4.0))
    assert pb.audition == (seg.id, 1) and pb.current_time() == pytest.approx(4.0, abs=0.1)
    qtbot.keyClick(w, Qt.Key.Key_Escape)

    # a double-click on a lane with no clip yet puts that candidate on the track
    lane1 = lanes.lanes[0]
    _double_click(qtbot, lane1, 3.0)
    assert [c.take_index for c in doc.project.clips] == [0]
    assert lanes.comp_spans(0) and lanes.comp_spans(1) == []

    # S splits at the playhead; a double-click on lane 3 after the cut gives that part to candidate 3
    pb.seek(4.0)
    qtbot.keyClick(w, Qt.Key.Key_S)
    clip = doc.project.clips[0]
    assert clip.part_times() == [0.0, pytest.approx(3.0, abs=1 / 24)] and w.actions_[A_JOIN_CUT].isEnabled()
    lane3 = lanes.lanes[2]
    _double_click(qtbot, lane3, 6.0)
    clip = doc.project.clips[0]
    assert clip.take_indices() == [0, 2]
    (a3, b3), = lanes.comp_spans(2)
    assert a3 == pytest.approx(4.0, abs=1 / 24) and b3 == pytest.approx(seg.start + seg.duration, abs=0.01)
    # Alt+2 at the playhead: candidate 2 for the part under it (the first)
    pb.seek(2.0)
    qtbot.keyClick(w, Qt.Key.Key_2, ALT)
    clip = doc.project.clips[0]
    assert clip.take_indices() == [1, 2] and clip.label == "S1 comp #2 #3"
    assert "2 parts" in w.panel.clip_label.text()

    # the crossfade: the panel's spin box, one undo step
    assert w.panel.crossfade.isEnabled()
    w.panel.crossfade.setValue(50)
    assert doc.project.clips[0].crossfade_s == pytest.approx(0.05)
    a, b = round(seg.start * SR), round((seg.start + seg.duration) * SR)
    edge = 100  # the mixdown's 5 ms fades where the clip meets silence
    np.testing.assert_allclose(doc.track_audio()[a + edge: b - edge],
                               _comp_of(doc, doc.project.clips[0])[edge:-edge], atol=1e-6)

    # the export writes the comp (the track WAV at the project's rate)
    out = tmp_path / "foley.wav"
    with qtbot.waitSignal(ed.export_finished, timeout=30_000):
        ed.start_export(ExportRequest(None, None, out))
    assert w.prompter_.errors == []
    wav, rate = sf.read(out, dtype="float32")
    assert rate == SR
    np.testing.assert_allclose(wav, doc.track_audio(), atol=1e-4)

    # Shift+S removes the cut; undo brings it back; the comp is saved with the project
    qtbot.keyClick(w, Qt.Key.Key_S, SHIFT)
    assert doc.project.clips[0].parts == []
    doc.undo_stack.undo()
    assert doc.project.clips[0].take_indices() == [1, 2]
    path = tmp_path / "comp.foleyproj"
    assert ed._write(path)
    q, audio = load_project(path)
    assert q.clips[0].take_indices() == [1, 2] and q.clips[0].crossfade_s == pytest.approx(0.05)
    assert {q.clips[0].audio_id, q.clips[0].parts[0].audio_id} <= set(audio)
