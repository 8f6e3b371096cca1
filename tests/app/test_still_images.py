"""Still images (PNG/JPEG) open as videos: the editor asks the length (one segment by default), makes the video in
the app's folder of still videos in the background (never beside the image), opens it like any video and
remembers the image; a project whose still video has gone makes it again from the image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import FakeEngine, open_video, wait_for
from PySide6.QtGui import QColor, QImage

from engine import probe_video
from foley_app.document.project import load_project
from foley_app.views.dialogs.prompter import VIDEO_FILTER
from foley_app.views.dialogs.still_dialog import StillLengthDialog

DUR = 8.192


def _png(path: Path, w: int = 161, h: int = 120) -> Path:
    img = QImage(w, h, QImage.Format.Format_RGB32)
    img.fill(QColor(40, 120, 200))
    assert img.save(str(path))
    return path


def test_a_png_opens_as_a_video_made_in_the_stills_folder(qtbot, make_window, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    image = _png(pictures / "photo.png")
    w = make_window(engine=FakeEngine())
    w.prompter_.queue("still_length", 3.0)
    open_video(qtbot, w, image)
    name, default, folder = w.prompter_.still_asked
    assert (name, default, Path(folder)) == ("photo.png", pytest.approx(DUR), w.ctx.stills_dir)
    v = w.doc.video
    assert v is not None and v.source_image == str(image.resolve()) and not v.has_audio
    assert Path(v.path).parent == w.ctx.stills_dir and Path(v.path).is_file()
    assert v.duration == pytest.approx(3.0) and (v.width, v.height) == (162, 120)  # made even
    assert os.listdir(pictures) == ["photo.png"]  # nothing beside the image
    wait_for(qtbot, lambda: w.video_view.image is not None, 10)
    assert w.video_view.image.pixelColor(10, 10).blue() > 150  # the picture shows
    assert w.ctx.settings.recent_files[0] == str(image)  # what the user opened
    assert w.editor.add_segment(0.0) is not None  # a segment fits in 3 s (it is clamped)
    d = w.editor.export_defaults()
    assert Path(d.mp4_path).parent == pictures and Path(d.mp4_path).name == "photo_foley.mp4"

    # the project remembers the image; when its video has gone, opening makes it again
    saved = tmp_path / "photo.foleyproj"
    w.prompter_.queue("save_file", str(saved))
    assert w.editor.save_as()
    assert load_project(saved)[0].video.source_image == str(image.resolve())
    made = Path(v.path)
    made.unlink()  # a cleaned cache
    w2 = make_window(engine=FakeEngine(), name="w2")
    with qtbot.waitSignal(w2.editor.project_opened, timeout=20_000):
        w2.editor.open_path(saved)
    wait_for(qtbot, lambda: w2.doc.video is not None and Path(w2.doc.video.path).is_file(), 20)
    again = Path(w2.doc.video.path)
    assert again.parent == w2.ctx.stills_dir and again != made  # its own stills folder: made again
    assert probe_video(again).duration == pytest.approx(3.0) and w2.doc.is_modified()
    assert w2.prompter_.asked == []  # not asked to locate the video
    assert len(w2.doc.project.segments) == 1


def test_cancelling_the_length_opens_nothing_and_a_bad_image_says_so(qtbot, make_window, tmp_path: Path) -> None:
    image = _png(tmp_path / "photo.jpg")
    w = make_window(engine=FakeEngine())
    w.prompter_.queue("still_length", None)
    assert w.editor.open_path(image) is None and w.doc.video is None
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    w.prompter_.queue("still_length", 2.0)
    job = w.editor.open_path(broken)
    wait_for(qtbot, lambda: job.state == "failed", 20)
    assert w.doc.video is None and w.prompter_.errors
    assert "broken.png" in w.prompter_.errors[-1].what


def test_the_length_dialog_and_the_file_filter(qtbot, tmp_path: Path) -> None:
    dlg = StillLengthDialog("photo.png", DUR, str(tmp_path))
    qtbot.addWidget(dlg)
    assert dlg.value() == pytest.approx(DUR) and dlg.length.suffix() == " s"
    dlg.length.setValue(12.5)
    assert dlg.value() == 12.5
    dlg.length.setValue(0.0)
    assert dlg.value() == 0.5  # the shortest
    assert "*.png" in VIDEO_FILTER.split(";;")[0] and "*.jpeg" in VIDEO_FILTER.split(";;")[0]
