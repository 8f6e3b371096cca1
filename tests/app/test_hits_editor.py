"""Hits in the editor: saved in the project, edited on the timeline (H, drag, Del, clear, detect again), each an
undo step; detected in the background when the model has a detector; passed to generation and kept by each take.

The engine is `FakeEngine` (helpers.py): the engine's generate/detect_hits contract, with a detector when given one.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeEngine, open_video, wait_for
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor

from foley_app.document import project as proj
from foley_app.document.project import (
    HITS_DETECTED,
    HITS_PENDING,
    HITS_USER,
    AudioStore,
    Project,
    Segment,
    Take,
    VideoRef,
    load_project,
    save_project,
)
from foley_app.views import theme
from foley_app.views.main_window import A_ADD_HIT, A_CLEAR_HITS, A_DELETE_SEGMENT, A_REDETECT_HITS

DUR = 8.192  # FakeEngine's segment length


def key(qtbot, window, k, mod=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window, k, mod)


def undo(qtbot, w) -> None:
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def redo(qtbot, w) -> None:
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)


def statuses(w) -> list[str]:
    seen: list[str] = []
    w.editor.status_message.connect(lambda text, _ms: seen.append(text))
    return seen


# ---- the project file ---------------------------------------------------------------------------------------
def test_hits_round_trip_in_the_project_file(tmp_path: Path) -> None:
    store = AudioStore()
    a = store.add(np.zeros(1600, np.float32))
    video = tmp_path / "film.mp4"
    video.write_bytes(b"not really a video")
    take = Take(0, 7, a, {"start": 1.5, "hits": [0.25]}, -20.0, hits=[0.25], hits_source="user")
    segs = [Segment("s1", 1, 1.5, DUR, [take], hits=[0.25, 3.5], hits_state=HITS_USER),
            Segment("s2", 2, 4.0, DUR, hits=[1.0], hits_state=HITS_DETECTED),
            Segment("s3", 3, 6.0, DUR)]
    p = Project(VideoRef(str(video), 20.0, 24.0, 160, 120, False), segs, [], 4)
    path = save_project(p, store.snapshot(p.audio_ids()), tmp_path / "film.foleyproj")
    data = json.loads(path.read_text())
    assert data["version"] == proj.FORMAT_VERSION >= 2
    assert data["segments"][0]["hits"] == [0.25, 3.5] and data["segments"][0]["takes"][0]["hits"] == [0.25]
    q, _ = load_project(path)
    assert q == p
    assert q.segments[2].hits == [] and q.segments[2].hits_state == HITS_PENDING  # not detected yet


def test_an_old_project_file_without_hits_opens(tmp_path: Path) -> None:
    store = AudioStore()
    a = store.add(np.zeros(1600, np.float32))
    video = tmp_path / "film.mp4"
    video.write_bytes(b"x")
    p = Project(VideoRef(str(video), 20.0, 24.0, 160, 120, False),
                [Segment("s1", 1, 1.5, DUR, [Take(0, 7, a, {"start": 1.5}, -20.0)])], [], 2)
    path = save_project(p, store.snapshot(p.audio_ids()), tmp_path / "old.foleyproj")
    data = json.loads(path.read_text())
    data["version"] = 1  # what the editor wrote before hits existed
    seg = data["segments"][0]
    del seg["hits"], seg["hits_state"]
    take = seg["takes"][0]
    del take["hits"], take["hits_source"]
    take["settings"]["hits"], take["settings"]["hits_source"] = [0.5], "detected"  # the engine recorded them
    data["segments"].append({"id": "s2", "number": 2, "start": 5.0, "duration": DUR})
    path.write_text(json.dumps(data))
    q, _ = load_project(path)
    assert [(s.hits, s.hits_state) for s in q.segments] == [([], HITS_PENDING), ([], HITS_PENDING)]
    assert q.segments[0].takes[0].hits == [0.5] and q.segments[0].takes[0].hits_source == "detected"
    data["segments"][0]["hits_state"] = "guessed"
    path.write_text(json.dumps(data))
    with pytest.raises(proj.ProjectFileError, match="damaged"):
        load_project(path)


# ---- editing on the timeline ----------------------------------------------------------------------------------
def test_add_with_h_drag_delete_and_clear_each_undone_and_redone(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())  # no hit detector
    seen = statuses(w)
    open_video(qtbot, w, video_12s)
    doc, pb, tl, ed = w.doc, w.ctx.playback, w.timeline, w.editor
    assert not w.actions_[A_ADD_HIT].isEnabled()  # no segment yet
    ed.add_hit_at(3.0)
    assert "No segment under the playhead" in seen[-1]
    sid = ed.add_segment(1.0)
    pb.seek(3.0)
    seg = doc.segment(sid)
    wait_for(qtbot, lambda: any("no hit detector" in m for m in seen), 5)
    base = doc.undo_stack.count()

    # H: a hit at the playhead, in the segment under it
    key(qtbot, w, Qt.Key.Key_H)
    assert seg.hits == [2.0] and seg.hits_state == HITS_USER and doc.is_modified()
    assert [m.value() for m in tl.hit_markers(sid)] == [pytest.approx(3.0)]
    assert doc.selected_hit == (sid, 2.0) and "1 hit" in tl._labels[sid].toPlainText()
    undo(qtbot, w)
    assert seg.hits == [] and seg.hits_state == HITS_PENDING and tl.hit_markers(sid) == []
    redo(qtbot, w)
    assert seg.hits == [2.0]
    pb.seek(5.5)
    key(qtbot, w, Qt.Key.Key_H)
    key(qtbot, w, Qt.Key.Key_H)  # a hit is there already: nothing new
    assert seg.hits == [2.0, 4.5] and "already has a hit" in seen[-1]
    assert doc.undo_stack.count() == base + 2

    # drag: live preview clamped into the segment, one undo step when released
    marker = tl.hit_markers(sid)[0]
    marker.on_drag(marker, -3.0, False)
    assert marker.value() == pytest.approx(1.0) and seg.hits == [2.0, 4.5]
    marker.on_drag(marker, 3.75, False)
    marker.on_drag(marker, 3.75, True)
    assert seg.hits == [2.75, 4.5] and doc.undo_stack.count() == base + 3
    assert doc.selected_hit == (sid, 2.75)
    last = tl.hit_markers(sid)[1]
    last.on_drag(last, 40.0, True)  # past the end: the segment's last instant
    assert seg.hits == [2.75, pytest.approx(DUR - 1e-4)]
    undo(qtbot, w)
    undo(qtbot, w)
    assert seg.hits == [2.0, 4.5]
    redo(qtbot, w)
    assert seg.hits == [2.75, 4.5]

    # select + Del deletes the hit, not the segment
    tl.hit_markers(sid)[1].on_click(sid, 4.5)  # what a click on the marker does
    assert doc.selected_hit == (sid, 4.5) and w.actions_[A_DELETE_SEGMENT].text() == "&Delete Hit"
    key(qtbot, w, Qt.Key.Key_Delete)
    assert seg.hits == [2.75] and doc.segment(sid) is not None and doc.selected_hit is None
    assert w.actions_[A_DELETE_SEGMENT].text() == "&Delete Segment"
    undo(qtbot, w)
    assert seg.hits == [2.75, 4.5] and doc.selected_hit == (sid, 4.5)
    redo(qtbot, w)
    assert seg.hits == [2.75]

    # the context menus: add a hit where the segment was right-clicked, delete one from its marker's menu
    menu = tl.hit_menu(sid, None, 7.25)
    assert not next(a for a in menu.actions() if "Detect" in a.text()).isEnabled()  # no detector
    menu.actions()[0].trigger()
    assert seg.hits == [2.75, 6.25]
    tl.hit_menu(sid, 6.25, 7.25).actions()[0].trigger()
    assert seg.hits == [2.75]

    # clear all hits of the segment
    w.actions_[A_CLEAR_HITS].trigger()
    assert seg.hits == [] and seg.hits_state == HITS_USER
    undo(qtbot, w)
    assert seg.hits == [2.75]
    redo(qtbot, w)
    assert seg.hits == [] and tl.hit_markers(sid) == []
    key(qtbot, w, Qt.Key.Key_Delete)  # no hit selected: Del deletes the segment, as before
    assert doc.segment(sid) is None
    assert sum("no hit detector" in m for m in seen) == 1  # said once
    assert w.prompter_.errors == []


def test_moving_a_segment_keeps_its_hits_at_their_picture_times(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    ed, doc = w.editor, w.doc
    sid = ed.add_segment(1.0)
    seg = doc.segment(sid)
    for t in (0.5, 3.0):
        ed.add_hit(sid, t)
    ed.move_segment(sid, 2.0)  # one second later: the hit at picture time 1.5 s is now before the segment
    assert seg.hits == [2.0] and seg.hits_state == HITS_USER
    w.doc.undo_stack.undo()
    assert seg.start == 1.0 and seg.hits == [0.5, 3.0]
    n = doc.undo_stack.index()
    ed.nudge_selected(12)  # half a second on, then back: one merged undo step, and the hit comes back
    ed.nudge_selected(12)
    ed.nudge_selected(-24)
    assert doc.undo_stack.index() == n + 1 and seg.start == pytest.approx(1.0) and seg.hits == [0.5, 3.0]
    region = w.timeline._regions[sid]  # a drag previews it: the hit that will leave is hidden, the other stays
    region.on_drag(sid, 2.0, False)
    assert [m.isVisible() for m in w.timeline.hit_markers(sid)] == [False, True]
    region.on_drag(sid, 1.0, True)  # dropped where it was: nothing changes
    assert [m.isVisible() for m in w.timeline.hit_markers(sid)] == [True, True]


# ---- detection in the background --------------------------------------------------------------------------------
def test_background_detection_fills_new_segments_unless_the_user_got_there_first(
        qtbot, make_window, video_12s: Path) -> None:
    eng = FakeEngine(detector=lambda start: [0.5, round(start, 3)])
    w = make_window(engine=eng)
    open_video(qtbot, w, video_12s)
    ed, doc, jobs = w.editor, w.doc, w.ctx.jobs
    with qtbot.waitSignal(ed.hits_detected, timeout=10_000):
        sid = ed.add_segment(1.0)
    seg = doc.segment(sid)
    assert seg.hits == [0.5, 1.0] and seg.hits_state == HITS_DETECTED
    assert doc.undo_stack.count() == 1 and doc.is_modified()  # a fact about the picture, not an undo step
    assert "2 hits" in w.timeline._labels[sid].toPlainText() and "2 (detected)" in w.panel.hits_info.text()
    assert w.actions_[A_REDETECT_HITS].isEnabled()

    # the user adds a hit while detection runs: the detector's result is dropped
    eng.detect_gate = threading.Event()
    other = ed.add_segment(3.0)
    wait_for(qtbot, lambda: len(eng.detect_calls) == 2, 10)
    ed.add_hit(other, 4.0)
    eng.detect_gate.set()
    wait_for(qtbot, lambda: not jobs.busy("hits"), 10)
    assert doc.segment(other).hits == [4.0] and doc.segment(other).hits_state == HITS_USER

    # a segment deleted while its hits are detected: the result goes nowhere
    eng.detect_gate.clear()
    gone = ed.add_segment(2.0)
    wait_for(qtbot, lambda: len(eng.detect_calls) == 3, 10)
    doc.undo_stack.undo()
    assert doc.segment(gone) is None
    eng.detect_gate.set()
    wait_for(qtbot, lambda: not jobs.busy("hits"), 10)
    eng.detect_gate = None

    # moving a detected segment detects again at the new place; undo brings the old hits back
    with qtbot.waitSignal(ed.hits_detected, timeout=10_000):
        ed.move_segment(sid, 2.5)
    assert eng.detect_calls[-1] == 2.5 and seg.hits == [0.5, 2.5]
    doc.undo_stack.undo()
    assert seg.start == 1.0 and seg.hits == [0.5, 1.0] and seg.hits_state == HITS_DETECTED

    # "Detect Hits Again" hands the user's hits back to the detector; undo gives them back
    ed.select_segment(other)
    with qtbot.waitSignal(ed.hits_detected, timeout=10_000):
        w.actions_[A_REDETECT_HITS].trigger()
    assert doc.segment(other).hits == [0.5, 3.0] and doc.segment(other).hits_state == HITS_DETECTED
    doc.undo_stack.undo()
    assert doc.segment(other).hits == [4.0] and doc.segment(other).hits_state == HITS_USER
    assert w.prompter_.errors == []


def test_generation_before_detection_finished_asks_the_engine_to_detect(qtbot, make_window, video_12s: Path) -> None:
    eng = FakeEngine(detector=lambda start: [1.25])
    w = make_window(engine=eng)
    open_video(qtbot, w, video_12s)
    sid = w.editor.add_segment(1.0)
    with qtbot.waitSignal(w.editor.generation_applied, timeout=10_000):
        w.editor.generate([sid])  # queued before the (debounced) detection
    seg = w.doc.segment(sid)
    assert eng.hits_calls == ["auto"]
    assert [t.hits for t in seg.takes] == [[1.25], [1.25]] and seg.takes[0].hits_source == "detected"
    assert seg.hits == [1.25] and seg.hits_state == HITS_DETECTED  # what the engine detected fills the segment
    wait_for(qtbot, lambda: not w.ctx.jobs.busy("hits"), 10)
    assert seg.hits == [1.25]


# ---- generation and takes ---------------------------------------------------------------------------------------
def test_generate_passes_the_segment_hits_and_each_take_keeps_and_shows_its_own(
        qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    eng = FakeEngine()
    w = make_window(engine=eng)
    open_video(qtbot, w, video_12s)
    ed, doc, tl = w.editor, w.doc, w.timeline
    sid = ed.add_segment(1.0)
    seg = doc.segment(sid)
    with qtbot.waitSignal(ed.generation_applied, timeout=10_000):
        ed.generate([sid])
    assert eng.hits_calls == [[]] and seg.takes[0].hits == [] and seg.takes[0].hits_source == "none"
    ed.add_hit(sid, 0.5)
    ed.add_hit(sid, 2.0)
    with qtbot.waitSignal(ed.generation_applied, timeout=10_000):
        ed.generate([sid])
    assert eng.hits_calls[-1] == [0.5, 2.0]
    assert all(t.hits == [0.5, 2.0] and t.hits_source == "user" for t in seg.takes)
    assert tl.take_hit_times() == [pytest.approx(1.5), pytest.approx(3.0)]  # the highlighted take's, beside
    assert "made with 2 hits" in w.panel.hits_info.text()
    ed.move_hit(sid, 2.0, 2.5)  # the segment's hits change; the take keeps those it was made with
    assert seg.hits == [0.5, 2.5] and seg.takes[1].hits == [0.5, 2.0]
    assert tl.take_hit_times() == [pytest.approx(1.5), pytest.approx(3.0)]
    ed.move_segment(sid, 2.0)  # the take stays where it was made for
    assert tl.take_hit_times() == [pytest.approx(1.5), pytest.approx(3.0)]
    w.prompter_.queue("save_file", str(tmp_path / "hits.foleyproj"))
    assert ed.save()
    q, _ = load_project(tmp_path / "hits.foleyproj")
    assert q.segments[0].hits == seg.hits and q.segments[0].takes[1].hits == [0.5, 2.0]
    doc.set_current_take(sid, -1)
    ed.select_segment("")
    assert tl.take_hit_times() == []


def test_hit_markers_are_painted_in_the_segment_band(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    sid = w.editor.add_segment(1.0)
    for t in (1.0, 4.0):
        w.editor.add_hit(sid, t)
    w.editor.select_hit("", 0.0)
    plot = w.timeline.picture.plot
    qtbot.wait(50)
    img = plot.grab().toImage()
    vb = w.timeline.picture.vb
    hit = QColor(theme.HIT)
    for t in (2.0, 5.0):  # picture times of the two hits, in the lower band
        px = plot.mapFromScene(vb.mapViewToScene(QPointF(t, 0.25)))
        colours = [img.pixelColor(px.x() + dx, px.y()) for dx in (-1, 0, 1)]
        assert any(abs(c.red() - hit.red()) + abs(c.green() - hit.green()) + abs(c.blue() - hit.blue()) < 60
                   for c in colours), (t, [c.name() for c in colours])


def test_a_real_click_on_a_marker_selects_its_hit_and_a_click_beside_it_seeks(
        qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    sid = w.editor.add_segment(1.0)
    w.editor.add_hit(sid, 3.0)
    w.editor.select_hit("", 0.0)
    plot, vb = w.timeline.picture.plot, w.timeline.picture.vb
    qtbot.wait(50)

    def at(t: float, y: float):
        return plot.mapFromScene(vb.mapViewToScene(QPointF(t, y)))

    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=at(4.0, 0.2))
    wait_for(qtbot, lambda: w.doc.selected_hit == (sid, 3.0), 2)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=at(10.5, 0.2))  # outside the segment
    wait_for(qtbot, lambda: w.doc.selected_hit is None and w.ctx.playback.position > 10.0, 2)


def test_a_real_mouse_drag_moves_a_hit_in_one_undo_step(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    sid = w.editor.add_segment(1.0)
    w.editor.add_hit(sid, 3.0)
    plot, vb = w.timeline.picture.plot, w.timeline.picture.vb
    n = w.doc.undo_stack.count()
    qtbot.wait(50)

    def at(t: float):
        return plot.mapFromScene(vb.mapViewToScene(QPointF(t, 0.2)))

    vp = plot.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=at(4.0))
    for t in (4.1, 4.5, 5.0, 5.5):
        qtbot.mouseMove(vp, at(t))
        qtbot.wait(10)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at(5.5))
    seg = w.doc.segment(sid)
    wait_for(qtbot, lambda: w.doc.undo_stack.count() == n + 1, 2)
    assert seg.hits == [pytest.approx(4.5, abs=0.05)] and seg.start == 1.0  # the hit moved, not the segment


def test_marked_segments_are_prepared_ahead_once_and_not_after_their_takes(
        qtbot, make_window, video_12s: Path) -> None:
    eng = FakeEngine(detector=lambda start: [0.5])
    w = make_window(engine=eng)
    open_video(qtbot, w, video_12s)
    ed, jobs = w.editor, w.ctx.jobs
    a = ed.add_segment(1.0)
    wait_for(qtbot, lambda: eng.prepare_calls == [1.0] and not jobs.busy("prepare"), 10)
    assert eng.detect_calls == [1.0]  # the detection is queued first: the markers come before the preparation
    ed.add_segment(3.5)
    wait_for(qtbot, lambda: eng.prepare_calls == [1.0, 3.5] and not jobs.busy("prepare"), 10)
    ed.nudge_selected(4)  # the selected segment moves: its new place is prepared, the other one not again
    wait_for(qtbot, lambda: len(eng.prepare_calls) == 3 and not jobs.busy("prepare"), 10)
    assert eng.prepare_calls[2] != 3.5 and eng.prepare_calls.count(1.0) == 1
    jobs_before = len(eng.prepare_calls)
    ed.generate([a])
    wait_for(qtbot, lambda: not jobs.busy("generate") and not jobs.busy("prepare"), 20)
    assert len(eng.prepare_calls) == jobs_before  # a generated segment needs no preparation


def test_the_quality_preference_reaches_the_engine(qtbot, make_window, video_12s: Path) -> None:
    eng = FakeEngine()
    w = make_window(engine=eng)
    open_video(qtbot, w, video_12s)
    sid = w.editor.add_segment(1.0)
    w.ctx.settings.quality = "draft"
    w.editor.generate([sid])
    wait_for(qtbot, lambda: not w.ctx.jobs.busy("generate") and bool(eng.quality_calls), 20)
    assert eng.quality_calls == ["draft"]
