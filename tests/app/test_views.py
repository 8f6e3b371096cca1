"""Views: list models pass Qt's model tester, files open by drag and drop and from the recent list, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FakeEngine, open_video, wait_for
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent


def test_models_pass_the_model_tester(qtbot, qtmodeltester, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine(), candidates=3)
    open_video(qtbot, w, video_12s)
    w.editor.add_segment(1.0)
    with qtbot.waitSignal(w.editor.generation_applied, timeout=10_000):
        w.editor.generate()
    w.editor.accept(1)
    qtmodeltester.check(w.panel.model)
    qtmodeltester.check(w.panel.clips_model)
    # editing a gain in the track table is an undoable command
    m = w.panel.clips_model
    assert m.setData(m.index(0, 3), -6.0)
    assert w.doc.project.clips[0].gain_db == -6.0 and w.doc.undo_stack.undoText().startswith("Gain")
    assert not m.setData(m.index(0, 3), "loud")
    w.doc.undo_stack.undo()
    assert w.doc.project.clips[0].gain_db == 0.0


def test_drag_and_drop_and_recent_files(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(video_12s))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.editor.video_opened, timeout=10_000):
        w.dropEvent(drop)
    assert w.ctx.settings.recent_files == [str(video_12s.resolve())]
    w.recent_menu.aboutToShow.emit()
    [act] = [a for a in w.recent_menu.actions() if a.text() == video_12s.name]
    with qtbot.waitSignal(w.editor.video_opened, timeout=10_000):
        act.trigger()
    wait_for(qtbot, lambda: not w.ctx.jobs.busy(), 10)


def test_the_demo_menu_lists_the_shipped_clips_and_opens_them(qtbot, make_window, tmp_path: Path) -> None:
    import json
    import shutil

    from foley_app.resources import demo_videos, path

    shipped = demo_videos()
    names = [d.path.name for d in shipped]
    assert "bbb_excerpt.mp4" in names and sum(n.startswith("test_") for n in names) == 3
    assert names[-1] == "bbb_excerpt.mp4" and "out of domain" in shipped[-1].title
    impact = next(d for d in shipped if d.path.name.startswith("test_impact"))
    assert impact.title.startswith("Impact: ") and "events at 0.8, " in impact.description

    w = make_window(engine=FakeEngine())
    w.demo_menu.aboutToShow.emit()
    titles = [a.text() for a in w.demo_menu.actions()]
    assert titles == [d.title for d in shipped]
    [act] = [a for a in w.demo_menu.actions() if a.text() == impact.title]
    with qtbot.waitSignal(w.editor.video_opened, timeout=10_000) as sig:
        act.trigger()
    assert sig.args == [str(impact.path)]
    wait_for(qtbot, lambda: not w.ctx.jobs.busy(), 10)
    assert w.doc.video is not None and not w.doc.video.has_audio

    # a damaged description keeps the videos; an empty folder gives an empty list
    shutil.copy(path("demo", "bbb_excerpt.mp4"), tmp_path / "a.mp4")
    (tmp_path / "test_clips.json").write_text("{not json", encoding="utf-8")
    assert [d.path.name for d in demo_videos(tmp_path)] == ["a.mp4"]
    (tmp_path / "test_clips.json").write_text(json.dumps([{"file": "a.mp4", "family": "walk"}]), encoding="utf-8")
    assert demo_videos(tmp_path)[0].title == "Walk (test clip)"
    assert demo_videos(tmp_path / "missing") == []


def test_command_line_help() -> None:
    out = subprocess.run([sys.executable, "-m", "foley_app", "--help"], capture_output=True, text=True, timeout=60,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0 and "--bundle" in out.stdout and "foleyproj" in out.stdout


def test_the_preview_shows_the_frame_displayed_at_the_playhead(qtbot, make_window, video_12s: Path) -> None:
    import numpy as np

    from engine import read_frames
    from foley_app.frames import to_qimage

    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    size = w.frames.size
    for t in (0.0, 3.0 + 0.4 / 24, 7.5, 11.99):  # on frames, between frames, the last frame
        w.ctx.playback.seek(t)
        expected = to_qimage(read_frames(video_12s, [t], size=size).frames[0])
        qtbot.waitUntil(lambda e=expected: w.video_view.image is not None and w.video_view.image == e, timeout=10_000)
    assert w.video_view.image != to_qimage(np.zeros((size[1], size[0], 3), np.uint8))


def test_export_choices_never_name_the_source_and_ask_before_replacing(qtbot, make_window, video_12s: Path,
                                                                        tmp_path: Path) -> None:
    from helpers import ScriptedPrompter

    from foley_app.export import ExportDefaults, build_request
    from foley_app.views.dialogs.export_dialog import ExportDialog

    p = ScriptedPrompter()
    assert build_request(str(video_12s), video_12s, None, False, -23.0, p) is None
    assert p.errors[-1].title == "That is the source video"
    assert build_request(str(video_12s), tmp_path / "x.webm", None, False, -23.0, p) is None
    existing = tmp_path / "taken.mp4"
    existing.write_bytes(b"x")
    assert build_request(str(video_12s), existing, None, False, -23.0, p) is None  # "Cancel" by default
    p.queue("ask", "Replace")
    req = build_request(str(video_12s), existing, tmp_path / "track", True, -16.0, p)
    assert req is not None and req.overwrite and req.wav_path == tmp_path / "track.wav" and req.target_lufs == -16.0
    dlg = ExportDialog(ExportDefaults(str(video_12s), str(tmp_path / "a.mp4"), str(tmp_path / "a.wav"), False, -23.0),
                       p)
    qtbot.addWidget(dlg)
    dlg.preset.setCurrentIndex(3)  # web / podcast
    assert dlg.normalize.isChecked() and dlg.target.value() == -16.0
    dlg.wav_check.setChecked(True)
    dlg._accept()
    assert dlg.request is not None and dlg.request.mp4_path == tmp_path / "a.mp4" and dlg.request.normalize


def test_muting_the_original_audio(qtbot, make_window, tmp_path: Path) -> None:
    from media_writers import make_test_video

    video = make_test_video(tmp_path / "with_sound.mp4", seconds=4.0, with_audio=True)
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video)
    wait_for(qtbot, lambda: w.doc.original_audio is not None, 10)
    assert w.timeline.original.isVisibleTo(w) and len(w.ctx.playback._build_mix().sources) == 1
    qtbot.keyClick(w, Qt.Key.Key_M)
    assert w.ctx.playback.mute_original and w.timeline.mute_button.isChecked()
    assert w.ctx.playback._build_mix().sources == ()
    assert w.ctx.settings.mute_original


def test_the_composition_root_opens_the_file_given_on_the_command_line(qtbot, monkeypatch, tmp_path: Path,
                                                                        video_12s: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from foley_app import app as app_mod
    from foley_app.views.main_window import MainWindow

    monkeypatch.setattr(app_mod, "log_dir", lambda: tmp_path / "logs")
    monkeypatch.setattr(app_mod, "setup_logging", lambda folder: None)
    monkeypatch.setattr(app_mod, "install_excepthook", lambda app, folder: None)
    seen = {}

    def fake_exec(self) -> int:
        [win] = [x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow) and x.isVisible()]
        qtbot.waitUntil(lambda: win.doc.video is not None and win.ctx.engine.state == "failed", timeout=20_000)
        seen["video"] = win.doc.video.path
        win.ctx.shutdown()
        win.hide()
        win.deleteLater()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    monkeypatch.setattr("foley_app.views.dialogs.prompter.QMessageBox.exec", lambda self: 0)
    code = app_mod.run([str(video_12s), "--settings", str(tmp_path / "s.ini"), "--autosave-dir",
                        str(tmp_path / "auto"), "--no-recovery", "--bundle", str(tmp_path / "missing-bundle")])
    assert code == 0 and seen["video"] == str(video_12s.resolve())


def test_preferences_and_shortcut_sheet(qtbot, make_window, monkeypatch, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QDialog, QTableWidget

    from foley_app.views.dialogs.preferences_dialog import PreferencesDialog

    w = make_window(engine=FakeEngine())
    dlg = PreferencesDialog(w.ctx.settings, w.ctx.playback.output, w)
    qtbot.addWidget(dlg)
    dlg.candidates.setValue(6)
    dlg.steps.setValue(10)
    dlg.overlap.setValue(2.0)
    dlg.bundle.setText(str(tmp_path / "bundle"))
    assert dlg.output_rate.currentData() == 16_000  # the window's setting (make_window: 16 kHz)
    dlg.output_rate.setCurrentIndex(dlg.output_rate.findData(48_000))
    assert "bandwidth extension" in dlg.output_rate.currentText()
    assert dlg.quality.currentData() == "final"
    dlg.quality.setCurrentIndex(dlg.quality.findData("draft"))
    dlg._save()
    s = w.ctx.settings
    assert (s.candidates, s.steps, s.fill_overlap, s.bundle) == (6, 10, 2.0, str(tmp_path / "bundle"))
    assert s.output_rate == 48_000 and s.quality == "draft"
    with pytest.raises(ValueError, match="output rate"):
        s.output_rate = 44_100
    with pytest.raises(ValueError, match="quality"):
        s.quality = "best"
    assert dlg.bundle_changed
    shown = {}

    def fake_exec(self) -> int:
        table = self.findChild(QTableWidget)
        shown["rows"] = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
        return 0

    monkeypatch.setattr(QDialog, "exec", fake_exec)
    w.show_shortcuts()
    rows = shown["rows"]
    assert rows["Play / Pause"] == "Space" and rows["Generate Foley"] == "Ctrl+G" and rows["Export…"] == "Ctrl+E"
    assert rows["Segment Starts Here"] == "I" and rows["Audition Candidate 3"] == "3"
