"""The editor driven through its window (offscreen): keys, jobs, stale results, fill, audio devices, errors.

A `FakeEngine` (the engine's generate contract, noise out) keeps these fast; test_end_to_end.py runs the real engine.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeEngine, open_video, wait_for
from media_writers import make_test_video
from PySide6.QtCore import Qt

from foley_app.document.timeline import crossfade_spans


@pytest.fixture(scope="module")
def clip30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("media") / "clip30.mp4", seconds=30.0, fps=25, with_audio=True)


def key(qtbot, window, k, mod=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window, k, mod)


def test_keyboard_marks_nudges_and_transport(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    doc, pb = w.doc, w.ctx.playback
    pb.seek(2.0)
    key(qtbot, w, Qt.Key.Key_I)  # no segment yet: I adds one starting here
    seg = doc.current_segment()
    assert seg is not None and seg.start == pytest.approx(2.0)
    key(qtbot, w, Qt.Key.Key_Right)  # playhead one frame on
    assert pb.position == pytest.approx(2.0 + 1 / 24)
    key(qtbot, w, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)  # one second on
    assert pb.position == pytest.approx(3.0 + 1 / 24)
    key(qtbot, w, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)  # nudge the segment one frame
    key(qtbot, w, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert seg.start == pytest.approx(2.0 + 2 / 24)
    assert doc.undo_stack.count() == 2  # the nudges are one undo step
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert seg.start == pytest.approx(2.0)
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert seg.start == pytest.approx(2.0 + 2 / 24)
    pb.seek(11.0)
    key(qtbot, w, Qt.Key.Key_O)  # the segment ends here (clamped inside the video)
    assert seg.end == pytest.approx(11.0, abs=1 / 24)
    pb.seek(0.5)
    key(qtbot, w, Qt.Key.Key_N)  # a second segment at the playhead
    assert len(doc.project.segments) == 2 and doc.current_segment().start == pytest.approx(0.5)
    key(qtbot, w, Qt.Key.Key_BracketRight)
    assert doc.current_segment_id == doc.project.segments[0].id or doc.current_segment().start == 0.5
    key(qtbot, w, Qt.Key.Key_Delete)
    assert len(doc.project.segments) == 1
    # J/K/L shuttle (picture only away from 1x), K stops
    key(qtbot, w, Qt.Key.Key_L)
    key(qtbot, w, Qt.Key.Key_L)
    assert pb.playing and pb.rate == 2.0
    key(qtbot, w, Qt.Key.Key_K)
    assert not pb.playing
    key(qtbot, w, Qt.Key.Key_J)
    assert pb.playing and pb.rate == -1.0
    key(qtbot, w, Qt.Key.Key_K)
    for act in w.actions_.values():  # every shortcut is named in its tooltip
        if act.shortcuts():
            assert "(" in act.toolTip(), act.text()


def test_dragging_a_segment_snaps_to_frames_and_is_one_undo_step(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    sid = w.editor.add_segment(1.0)
    region = w.timeline._regions[sid]
    n = w.doc.undo_stack.count()
    for x in (1.2, 1.73, 2.411):  # live drag: the region follows, snapped, the document does not change yet
        region.on_drag(sid, x, False)
        lo, _ = region.getRegion()
        assert abs(lo * 24 - round(lo * 24)) < 1e-6
    assert w.doc.segment(sid).start == 1.0
    region.on_drag(sid, 2.411, True)
    assert w.doc.segment(sid).start == pytest.approx(58 / 24) and w.doc.undo_stack.count() == n + 1


def test_results_for_moved_or_deleted_segments_are_dropped(qtbot, make_window, video_12s: Path) -> None:
    eng = FakeEngine()
    eng.gate = threading.Event()
    w = make_window(engine=eng)
    open_video(qtbot, w, video_12s)
    ed, doc = w.editor, w.doc
    moved = ed.add_segment(1.0)
    deleted = ed.add_segment(4.0)
    kept = ed.add_segment(3.0)
    jobs = ed.generate([moved, deleted, kept])
    assert len(jobs) == 3
    assert eng.started.wait(5)  # the first job is running
    ed.select_segment(deleted)
    ed.delete_selected_segments()  # its queued job is cancelled: it never runs
    eng.gate.set()
    assert w.ctx.jobs.inference_pool.waitForDone(10_000)  # both results are computed, not yet delivered
    ed.move_segment(moved, 2.0)  # the user moves the segment before the result reaches the document
    dropped = []
    ed.generation_dropped.connect(lambda sid, why: dropped.append((sid, why)))
    wait_for(qtbot, lambda: not w.ctx.jobs.busy("generate"), 10)
    assert dropped == [(moved, "the segment was moved")]
    assert doc.segment(moved).takes == [] and len(doc.segment(kept).takes) == 2
    assert [c[1] for c in eng.calls] == [1.0, 3.0]
    # a generation running while its segment is deleted is cancelled between steps
    eng.gate.clear()
    eng.started.clear()
    ed.generate([kept])
    assert eng.started.wait(5)
    ed.select_segment(kept)
    ed.delete_selected_segments()
    wait_for(qtbot, lambda: not w.ctx.jobs.busy("generate"), 10)
    assert "cancelled" in w.statusBar().currentMessage()


def test_generate_shows_seeds_regenerates_with_new_ones_and_auditions_on_a_null_device(
        qtbot, make_window, video_12s: Path, null_audio) -> None:
    w = make_window(engine=FakeEngine(), candidates=4)
    open_video(qtbot, w, video_12s)
    w.ctx.playback.seek(1.0)
    key(qtbot, w, Qt.Key.Key_N)
    with qtbot.waitSignal(w.editor.generation_applied, timeout=10_000):
        key(qtbot, w, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    seg = w.doc.current_segment()
    assert [t.seed for t in seg.takes] == [0, 1, 2, 3]
    model = w.panel.model
    assert model.rowCount() == 4 and model.index(2, 1).data() == "2"
    assert "seeds 0–3" in w.panel.info.text()
    with qtbot.waitSignal(w.editor.generation_applied, timeout=10_000):
        key(qtbot, w, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert [t.seed for t in seg.takes] == [4, 5, 6, 7]
    key(qtbot, w, Qt.Key.Key_3)  # audition candidate 3 with the picture from the segment start
    pb = w.ctx.playback
    assert pb.playing and pb.audition == (seg.id, 2) and pb._audio_live
    assert "Audio:" in w.audio_label.text() and "no output" not in w.audio_label.text()
    wait_for(qtbot, lambda: pb._consumed > 1600, 5)  # the device is pulling samples
    key(qtbot, w, Qt.Key.Key_1)  # flip to candidate 1 without going back to the start
    assert pb.audition == (seg.id, 0) and pb.current_time() >= 1.0
    assert model.index(0, 3).data().startswith("▶")
    key(qtbot, w, Qt.Key.Key_Return)  # accept the one being heard
    assert w.doc.project.clips[0].seed == 4
    key(qtbot, w, Qt.Key.Key_Escape)
    assert pb.audition is None and not pb.playing
    assert w.prompter_.errors == []


def test_no_audio_device_is_a_clear_non_fatal_message(qtbot, make_window, video_12s: Path, no_audio) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    pb = w.ctx.playback
    key(qtbot, w, Qt.Key.Key_Space)
    assert pb.playing and not pb._audio_live  # the picture plays on a wall clock
    [msg] = w.prompter_.errors
    assert msg.title == "No audio output" and msg.warning and "keep working" in msg.todo
    assert "no output device" in w.audio_label.text()
    wait_for(qtbot, lambda: pb.current_time() > 0.2, 5)
    key(qtbot, w, Qt.Key.Key_Space)
    assert not pb.playing and pb.position > 0.2
    key(qtbot, w, Qt.Key.Key_Space)  # said once, not at every play
    key(qtbot, w, Qt.Key.Key_Space)
    assert len(w.prompter_.errors) == 1
    # everything else keeps working: generate, audition (silently), accept
    w.editor.add_segment(0.0)
    with qtbot.waitSignal(w.editor.generation_applied, timeout=10_000):
        w.editor.generate()
    w.editor.audition(1)
    assert pb.playing and pb.audition is not None
    w.editor.accept()
    assert len(w.doc.project.clips) == 1


def test_fill_whole_video_splices_overlapping_segments_with_crossfades(qtbot, make_window, clip30: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, clip30)
    w.ctx.settings.fill_overlap = 1.6
    jobs = w.editor.fill_whole_video()
    assert len(jobs) == 5  # 0, 6.56, 13.12, 19.68, 21.8 s
    wait_for(qtbot, lambda: not w.ctx.jobs.busy("generate"), 30)
    doc = w.doc
    assert len(doc.project.clips) == 5 and all(s.takes for s in doc.project.segments)
    spans = crossfade_spans(doc.mix_clips())
    assert len(spans) == 4 and all((b - a) / 16000 >= 1.6 - 1e-3 for a, b in spans)
    track = doc.track_audio()
    assert track.shape == (30 * 16000,)
    assert np.sqrt(np.mean(track[: 29 * 16000].reshape(-1, 1600) ** 2, axis=1)).min() > 0.05  # no gap anywhere
    # the whole fill undoes step by step back to an empty project
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert doc.project.segments == [] and doc.project.clips == []


def test_unreadable_video_says_what_to_do(qtbot, make_window, tmp_path: Path) -> None:
    w = make_window(engine=FakeEngine())
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    w.editor.open_path(bad)
    wait_for(qtbot, lambda: bool(w.prompter_.errors), 10)
    [msg] = w.prompter_.errors
    assert msg.title == "Cannot open the video" and "broken.mp4" in msg.what and "Choose another file" in msg.todo
    assert w.doc.video is None


def test_missing_model_bundle_gives_a_dialog_and_videos_still_open(qtbot, make_window, video_12s: Path,
                                                                   tmp_path: Path) -> None:
    w = make_window()
    w.ctx.engine.load(str(tmp_path / "no-such-bundle"), "auto")
    wait_for(qtbot, lambda: w.ctx.engine.state == "failed", 20)
    [msg] = w.prompter_.errors
    assert msg.title == "Model bundle not available" and "Preferences" in msg.todo
    assert "not loaded" in w.model_label.text()
    open_video(qtbot, w, video_12s)
    w.editor.add_segment(1.0)
    assert w.doc.current_segment() is not None
    w.editor.generate()  # says again why it cannot generate, does not crash
    assert len(w.prompter_.errors) == 2 and w.prompter_.errors[1].title == "Model bundle not available"


def test_the_random_test_bundle_is_shown_as_such(qtbot, make_window) -> None:
    w = make_window(engine=FakeEngine())
    assert "RANDOM WEIGHTS" in w.model_label.text()
    assert w.panel.random_banner.isVisibleTo(w.panel)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write to read-only folders")
def test_saving_into_a_read_only_folder(qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    _read_only_case(qtbot, make_window, video_12s, tmp_path)


def _read_only_case(qtbot, make_window, video, tmp_path: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video)
    w.editor.add_segment(1.0)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        w.prompter_.queue("save_file", str(locked / "film.foleyproj"))
        assert not w.editor.save()
    finally:
        locked.chmod(0o700)
    [msg] = w.prompter_.errors
    assert msg.title == "Folder is read-only" and "nothing was lost" in msg.todo
    assert w.doc.is_modified() and w.doc.path is None


def test_read_only_and_full_disk_errors_keep_the_work(qtbot, make_window, video_12s: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The same paths as above, with the OS errors injected (this also runs as root)."""
    import foley_app.editor as editor_mod

    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    w.editor.add_segment(1.0)
    for err, title in ((PermissionError(errno.EACCES, "Permission denied", str(tmp_path)), "Folder is read-only"),
                       (OSError(errno.ENOSPC, "No space left on device"), "Disk full")):
        def fail(*_a, err=err, **_k):
            raise err

        monkeypatch.setattr(editor_mod, "save_project", fail)
        w.prompter_.queue("save_file", str(tmp_path / "film.foleyproj"))
        assert not w.editor.save()
        assert w.prompter_.errors[-1].title == title
        assert w.doc.is_modified() and w.doc.project.segments


def test_several_segments_at_once(qtbot, make_window, clip30: Path) -> None:
    eng = FakeEngine()
    w = make_window(engine=eng)
    open_video(qtbot, w, clip30)
    a, b, c = (w.editor.add_segment(t) for t in (1.0, 9.0, 18.0))
    tl = w.timeline
    tl._regions[a].on_click(a, Qt.KeyboardModifier.NoModifier)  # click S1, Ctrl+click S3
    tl._regions[c].on_click(c, Qt.KeyboardModifier.ControlModifier)
    assert w.doc.selected_segment_ids() == [a, c]
    key(qtbot, w, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)  # nudges both, one undo step
    assert [w.doc.segment(s).start for s in (a, b, c)] == pytest.approx([1.04, 9.0, 18.04])
    key(qtbot, w, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)  # generates both, in order, one at a time
    wait_for(qtbot, lambda: not w.ctx.jobs.busy("generate"), 20)
    assert [call[1] for call in eng.calls] == pytest.approx([1.04, 18.04])
    assert w.doc.segment(a).takes and w.doc.segment(c).takes and not w.doc.segment(b).takes
    w.doc.undo_stack.undo()  # the last generation
    w.doc.undo_stack.undo()
    w.doc.undo_stack.undo()  # the nudge of both
    assert [w.doc.segment(s).start for s in (a, c)] == pytest.approx([1.0, 18.0])


def test_the_editor_runs_without_a_window(qtbot, tmp_path: Path, video_12s: Path) -> None:
    """The composition root builds the editor apart from the views (`build_editor`): open, mark, generate, accept
    and save with no MainWindow anywhere."""
    from helpers import ScriptedPrompter
    from PySide6.QtWidgets import QApplication

    from foley_app.app import build_context, build_editor
    from foley_app.settings import Settings

    settings = Settings(tmp_path / "settings.ini")
    settings.candidates, settings.steps, settings.output_rate = 2, 2, 16_000
    ctx = build_context(settings, autosave_root=tmp_path / "autosave", logs=tmp_path / "logs",
                        stills=tmp_path / "stills")
    try:
        prompter = ScriptedPrompter()
        editor, frames = build_editor(ctx, prompter)
        ctx.engine.set_engine(FakeEngine())
        with qtbot.waitSignal(editor.video_opened, timeout=20_000):
            editor.open_path(video_12s)
        sid = editor.add_segment(2.0)
        with qtbot.waitSignal(editor.generation_applied, timeout=20_000):
            editor.generate([sid])
        seg = ctx.document.segment(sid)
        assert len(seg.takes) == 2 and frames.path == str(video_12s)
        editor.accept(1)
        assert len(ctx.document.project.clips) == 1
        out = tmp_path / "p.foleyproj"
        prompter.queue("save_file", str(out))
        assert editor.save_as() and out.is_file()
        assert not [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    finally:
        ctx.shutdown()
