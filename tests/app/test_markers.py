"""Markers in the editor: Ctrl+M at the playhead (on its frame, "Marker N"), the Markers list (jump with a double
click or Enter, rename in place, Del deletes), lines on the timeline, previous/next marker keys; every edit one undo
step; saved in the project (format 3; older files open without markers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeEngine, open_video
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from foley_app.document import project as proj
from foley_app.document.commands import AddMarkerCommand, RemoveMarkersCommand, RenameMarkerCommand
from foley_app.document.document import ProjectDocument
from foley_app.document.project import AudioStore, Marker, Project, VideoRef, load_project, save_project
from foley_app.views.main_window import A_ADD_MARKER, A_NEXT_MARKER, A_PREV_MARKER

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def key(qtbot, widget, k, mod=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(widget, k, mod)


def names(doc) -> list[tuple[str, float]]:
    return [(m.name, m.time) for m in doc.project.markers]


# ---- the project file ---------------------------------------------------------------------------------------
def test_markers_and_the_video_facts_round_trip_and_a_format_2_file_opens(tmp_path: Path) -> None:
    video, image = tmp_path / "still.mp4", tmp_path / "photo.png"
    video.write_bytes(b"x")
    image.write_bytes(b"x")
    p = Project(VideoRef(str(video), 8.2, 25.0, 160, 120, False, timecode="01:00:00:00", source_image=str(image)),
                markers=[Marker("a", "door", 1.0, "heavier"), Marker("b", "Marker 2", 4.04)], next_marker_number=3)
    path = save_project(p, AudioStore().snapshot(set()), tmp_path / "p.foleyproj")
    data = json.loads(path.read_text())
    assert data["version"] == proj.FORMAT_VERSION >= 3
    assert data["markers"][0] == {"id": "a", "name": "door", "time": 1.0, "note": "heavier"}
    assert data["video"]["source_image_relative"] == "photo.png"
    q, _ = load_project(path)
    assert q == p

    # a project and its image moved together: the image is found by its relative path
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "photo.png").write_bytes(b"x")
    (moved / "p.foleyproj").write_text(path.read_text())
    image.unlink()
    assert load_project(moved / "p.foleyproj")[0].video.source_image == str((moved / "photo.png").resolve())

    # what version 2 wrote: no markers, no timecode, no source image
    for k in ("markers", "next_marker_number"):
        del data[k]
    for k in ("timecode", "source_image", "source_image_relative"):
        del data["video"][k]
    data["version"] = 2
    path.write_text(json.dumps(data))
    q, _ = load_project(path)
    assert q.markers == [] and q.next_marker_number == 1
    assert q.video.timecode is None and q.video.source_image == ""
    data["markers"] = [{"id": "x", "name": "bad", "time": -1.0}]
    path.write_text(json.dumps(data))
    with pytest.raises(proj.ProjectFileError, match="damaged"):
        load_project(path)


def test_marker_commands_undo_and_redo(qtbot) -> None:
    doc = ProjectDocument()
    stack = doc.undo_stack
    with qtbot.waitSignal(doc.markers_changed):
        stack.push(AddMarkerCommand(doc, 3.0))
    stack.push(AddMarkerCommand(doc, 1.0, "door"))
    assert names(doc) == [("door", 1.0), ("Marker 1", 3.0)] and doc.project.next_marker_number == 3  # time order
    first = doc.project.markers[1].id
    stack.push(RenameMarkerCommand(doc, first, "glass"))
    stack.push(RemoveMarkersCommand(doc, [doc.project.markers[0].id]))
    assert names(doc) == [("glass", 3.0)] and doc.is_modified()
    stack.undo()
    stack.undo()
    assert names(doc) == [("door", 1.0), ("Marker 1", 3.0)]
    stack.undo()
    assert doc.project.next_marker_number == 2  # the name "Marker 2" is free again
    stack.redo()
    stack.redo()
    stack.redo()
    assert names(doc) == [("glass", 3.0)]
    assert [stack.text(i) for i in range(stack.count())] == [
        "Add marker Marker 1", "Add marker door", "Rename marker Marker 1 to glass", "Delete marker door"]


# ---- the window ---------------------------------------------------------------------------------------------
def test_ctrl_m_the_list_the_timeline_and_the_jump_keys(qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    w = make_window(engine=FakeEngine())
    assert not w.actions_[A_ADD_MARKER].isEnabled()  # no video yet
    open_video(qtbot, w, video_12s)  # 24 fps
    doc, pb, panel, tl = w.doc, w.ctx.playback, w.markers_panel, w.timeline
    pb.seek(3.0 + 0.4 / 24)  # between two frames: the marker goes on the frame shown
    key(qtbot, w, Qt.Key.Key_M, CTRL)
    assert names(doc) == [("Marker 1", 3.0)]
    key(qtbot, w, Qt.Key.Key_M, CTRL)  # that frame has one already
    assert len(doc.project.markers) == 1
    pb.seek(7.5)
    key(qtbot, w, Qt.Key.Key_M, CTRL)
    pb.seek(1.0)
    w.actions_[A_ADD_MARKER].trigger()
    assert names(doc) == [("Marker 3", 1.0), ("Marker 1", 3.0), ("Marker 2", 7.5)]
    assert panel.selected_ids() == [doc.project.markers[0].id]  # the new one is selected in the list
    m = panel.model
    assert [(m.index(r, 0).data(), m.index(r, 1).data()) for r in range(m.rowCount())] == [
        ("00:00:01:00", "Marker 3"), ("00:00:03:00", "Marker 1"), ("00:00:07:12", "Marker 2")]
    assert w.panel.tabs.tabText(w.panel.tabs.indexOf(panel)) == "Markers (3)"
    assert tl.marker_labels() == [("Marker 3", 1.0), ("Marker 1", 3.0), ("Marker 2", 7.5)]
    assert tl.marker_lines(tl.foley) == [1.0, 3.0, 7.5] and tl.marker_lines(tl.picture) == [1.0, 3.0, 7.5]

    # previous / next marker (Shift+Down, Shift+Up; also Shift+M, Ctrl+Shift+M)
    pb.seek(2.0)
    key(qtbot, w, Qt.Key.Key_Down, SHIFT)
    assert pb.current_time() == pytest.approx(3.0)
    key(qtbot, w, Qt.Key.Key_Down, SHIFT)
    assert pb.current_time() == pytest.approx(7.5)
    key(qtbot, w, Qt.Key.Key_Down, SHIFT)  # none after the last
    assert pb.current_time() == pytest.approx(7.5)
    key(qtbot, w, Qt.Key.Key_M, CTRL | SHIFT)
    assert pb.current_time() == pytest.approx(3.0)
    key(qtbot, w, Qt.Key.Key_Up, SHIFT)
    key(qtbot, w, Qt.Key.Key_Up, SHIFT)
    assert pb.current_time() == pytest.approx(1.0)
    key(qtbot, w, Qt.Key.Key_M, SHIFT)
    assert pb.current_time() == pytest.approx(3.0)

    # a click on a marker's flag on the timeline: the playhead goes there and the list selects it
    flag = next(item for _ln, item in tl._marker_items if getattr(item, "marker_id", "") == doc.project.markers[2].id)
    flag.on_click(flag.marker_id)
    assert pb.current_time() == pytest.approx(7.5) and panel.selected_ids() == [flag.marker_id]

    # saved and reopened
    saved = tmp_path / "markers.foleyproj"
    w.prompter_.queue("save_file", str(saved))
    assert w.editor.save_as()
    w2 = make_window(engine=FakeEngine(), name="w2")
    with qtbot.waitSignal(w2.editor.project_opened, timeout=20_000):
        w2.editor.open_path(saved)
    assert names(w2.doc) == names(doc) and w2.timeline.marker_labels() == tl.marker_labels()
    assert w2.markers_panel.model.rowCount() == 3
    w2.ctx.playback.seek(5.0)
    key(qtbot, w2, Qt.Key.Key_M, CTRL)
    assert w2.doc.project.markers[2].name == "Marker 4"  # the numbering goes on


def test_the_list_jumps_renames_in_place_and_deletes_each_undone(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    doc, pb, panel, ed = w.doc, w.ctx.playback, w.markers_panel, w.editor
    seg = ed.add_segment(0.0)  # Enter and Delete must not reach the segment's shortcuts from the list
    for t in (2.0, 5.0, 9.0):
        ed.add_marker_at(t)
    w.show_markers_list()
    table = panel.table
    assert w.panel.tabs.currentWidget() is panel
    table.setFocus()
    qtbot.waitUntil(table.hasFocus, timeout=5000)

    # double-click a row: the playhead goes to its marker
    qtbot.waitExposed(table)
    qtbot.wait(50)  # laid out
    rect = table.visualRect(panel.model.index(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # a double click's first half
    assert pb.current_time() == 0.0  # a click only selects
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert pb.current_time() == pytest.approx(5.0)
    # Enter on the current row: the same (and not the window's "accept candidate")
    table.setCurrentIndex(panel.model.index(2, 0))
    key(qtbot, table, Qt.Key.Key_Return)
    assert pb.current_time() == pytest.approx(9.0) and doc.project.clips == []

    # rename in place: F2, type, Enter (the name editor gets Enter; Space and letters stay text)
    table.setCurrentIndex(panel.model.index(0, 1))
    key(qtbot, table, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "Door slam 1")
    key(qtbot, editor, Qt.Key.Key_Return)  # the delegate commits on the next turn of the event loop
    qtbot.waitUntil(lambda: doc.project.markers[0].name == "Door slam 1", timeout=5000)
    assert pb.current_time() == pytest.approx(9.0) and table.state() != table.State.EditingState
    assert len(doc.project.segments) == 1 and doc.project.markers[0].time == 2.0
    assert w.timeline.marker_labels()[0] == ("Door slam 1", 2.0)
    assert not panel.model.setData(panel.model.index(0, 1), "   ")  # an empty name is refused
    assert doc.project.markers[0].name == "Door slam 1"
    key(qtbot, w, Qt.Key.Key_Z, CTRL)
    assert doc.project.markers[0].name == "Marker 1"
    key(qtbot, w, Qt.Key.Key_Z, CTRL | SHIFT)
    assert doc.project.markers[0].name == "Door slam 1"

    # Delete in the list deletes the selected markers, not the segment
    table.setFocus()
    panel.select_marker(doc.project.markers[1].id)
    assert panel.selected_ids() == [doc.project.markers[1].id]
    key(qtbot, table, Qt.Key.Key_Delete)
    assert [m.name for m in doc.project.markers] == ["Door slam 1", "Marker 3"] and doc.segment(seg) is not None
    assert w.timeline.marker_labels() == [("Door slam 1", 2.0), ("Marker 3", 9.0)]
    key(qtbot, w, Qt.Key.Key_Z, CTRL)
    assert [m.name for m in doc.project.markers] == ["Door slam 1", "Marker 2", "Marker 3"]
    key(qtbot, w, Qt.Key.Key_Z, CTRL | SHIFT)
    assert len(doc.project.markers) == 2
    panel.table.selectAll()
    panel.delete_button.click()
    assert doc.project.markers == [] and w.timeline.marker_labels() == []
    w.timeline.setFocus()
    key(qtbot, w, Qt.Key.Key_Delete)  # outside the list, Del is the segment's again
    assert doc.segment(seg) is None
    assert w.prompter_.errors == []


def test_marker_keys_clash_with_no_other_shortcut(qtbot, make_window) -> None:
    w = make_window(engine=FakeEngine())
    bound: dict[str, str] = {}
    for name, act in w.actions_.items():
        for seq in act.shortcuts():
            text = seq.toString()
            assert text not in bound, f"{text} is bound to both {bound[text]} and {name}"
            bound[text] = name
    assert bound["Ctrl+M"] == A_ADD_MARKER and bound["Shift+Down"] == A_NEXT_MARKER
    assert bound["Shift+Up"] == A_PREV_MARKER


def test_markers_need_a_video_and_stay_inside_it(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    seen: list[str] = []
    w.editor.status_message.connect(lambda text, _ms: seen.append(text))
    assert w.editor.add_marker_at(1.0) is None and "Open a video" in seen[-1]
    assert w.editor.jump_to_marker(1) is None
    open_video(qtbot, w, video_12s)
    mid = w.editor.add_marker_at(99.0)
    assert w.doc.project.marker(mid).time == pytest.approx(12.0)
    assert np.isfinite(w.doc.project.marker(mid).time)


def test_a_real_click_on_a_marker_name_goes_to_the_marker(qtbot, make_window, video_12s: Path) -> None:
    from PySide6.QtCore import QPoint, QPointF

    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    mid = w.editor.add_marker_at(4.0, "Footsteps")
    lane = w.timeline.marker_lane
    plot, vb = lane.plot, lane.vb
    qtbot.wait(50)
    at = plot.mapFromScene(vb.mapViewToScene(QPointF(4.0, 0.5)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=at + QPoint(12, 0))  # on its name
    qtbot.waitUntil(lambda: w.ctx.playback.position == pytest.approx(4.0), timeout=2000)
    assert w.markers_panel.selected_ids() == [mid]
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=plot.mapFromScene(vb.mapViewToScene(QPointF(9.0, 0.5))))  # beside it: a plain seek
    qtbot.waitUntil(lambda: w.ctx.playback.position == pytest.approx(9.0, abs=0.1), timeout=2000)
