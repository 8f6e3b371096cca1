"""Autosave and crash recovery: an editor process that dies leaves an autosave; the next start offers it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import FakeEngine, open_video, wait_for

from foley_app.autosave import SNAPSHOT_NAME, find_recoverable

CRASHING_EDITOR = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import numpy as np
    from PySide6.QtCore import QCoreApplication
    app = QCoreApplication([])
    from foley_app.autosave import Autosaver
    from foley_app.document.commands import AcceptTakeCommand, AddSegmentCommand, SetClipGainCommand, SetTakesCommand
    from foley_app.document.document import ProjectDocument
    from foley_app.document.project import Take, VideoRef
    from foley_app.jobs import JobRunner

    root, video = Path(sys.argv[1]), sys.argv[2]
    jobs, doc = JobRunner(), ProjectDocument()
    saver = Autosaver(doc, jobs, root, 0)
    doc.new_for_video(VideoRef(video, 12.0, 24.0, 160, 120, False))
    add = AddSegmentCommand(doc, 1.5, 8.192)
    doc.undo_stack.push(add)
    rng = np.random.default_rng(0)
    takes = [Take(k, k, doc.audio.add((0.1 * rng.standard_normal(131072)).astype(np.float32)),
                  {"start": 1.5, "steps": 25}, -20.0) for k in range(2)]
    doc.undo_stack.push(SetTakesCommand(doc, add.segment.id, takes, {"steps": 25}, []))
    doc.undo_stack.push(AcceptTakeCommand(doc, add.segment.id, 1))
    doc.undo_stack.push(SetClipGainCommand(doc, doc.project.clips[0].id, -4.5))
    saver.autosaved.connect(lambda path: app.quit())
    saver.failed.connect(lambda exc: (print("FAILED", exc), app.quit()))
    saver.autosave_now()
    app.exec()
    print(json.dumps(doc.project.to_dict("m")))
    sys.stdout.flush()
    os._exit(3)  # a crash: no clean shutdown, the lock file stays behind
    """
)


def _crash(root: Path, video: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", CRASHING_EDITOR, str(root), str(video)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 3, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_recovery_after_a_crash(qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    root = tmp_path / "autosave"
    saved = _crash(root, video_12s)
    [folder] = [p for p in root.iterdir() if p.is_dir()]
    assert (folder / SNAPSHOT_NAME).is_file() and (folder / "session.lock").is_file()

    w = make_window(engine=FakeEngine(), autosave_root=root)
    w.prompter_.queue("recover", "recover")
    assert w.editor.check_recovery()
    assert "1 segment(s), 1 clip(s)" in w.prompter_.recover_description
    doc = w.doc
    recovered = doc.project.to_dict("m")
    assert recovered["segments"] == saved["segments"] and recovered["clips"] == saved["clips"]
    assert doc.project.clips[0].gain_db == -4.5 and doc.is_modified() and w.isWindowModified()
    assert doc.path is None
    assert folder.exists()  # the crashed session's folder stays until our own autosave holds its work ...
    wait_for(qtbot, lambda: (w.ctx.autosaver.folder / SNAPSHOT_NAME).is_file(), 10)  # ... its work is ours now
    wait_for(qtbot, lambda: not folder.exists(), 10)  # ... and then it is gone
    # the recovered project is a normal one: it plays and saves
    wait_for(qtbot, lambda: not w.ctx.jobs.busy(), 10)
    w.prompter_.queue("save_file", str(tmp_path / "rescued.foleyproj"))
    assert w.editor.save() and not doc.is_modified()
    assert not (w.ctx.autosaver.folder / SNAPSHOT_NAME).exists()  # a saved project leaves no autosave


def test_discard_later_and_running_sessions(qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    root = tmp_path / "autosave"
    _crash(root, video_12s)
    w = make_window(engine=FakeEngine(), autosave_root=root)
    w.prompter_.queue("recover", "later")
    assert not w.editor.check_recovery()
    assert len(find_recoverable_and_release(root)) == 1  # still there for the next start
    w.prompter_.queue("recover", "discard")
    assert not w.editor.check_recovery()
    assert find_recoverable_and_release(root) == []

    # a session whose editor is still running is never offered
    open_video(qtbot, w, video_12s)
    w.editor.add_segment(1.0)
    with qtbot.waitSignal(w.ctx.autosaver.autosaved, timeout=10_000):
        w.ctx.autosaver.autosave_now()
    assert find_recoverable_and_release(root) == []
    # a clean exit removes the session
    w.ctx.autosaver.close_session()
    assert not w.ctx.autosaver.folder.exists()


def test_autosave_runs_on_its_timer(qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    w = make_window(engine=FakeEngine(), autosave_s=1, autosave_root=tmp_path / "auto")
    open_video(qtbot, w, video_12s)
    with qtbot.waitSignal(w.ctx.autosaver.autosaved, timeout=5000):
        w.editor.add_segment(3.0)
    snapshot = w.ctx.autosaver.folder / SNAPSHOT_NAME
    assert json.loads(snapshot.read_text())["segments"][0]["start"] == pytest.approx(3.0)


def find_recoverable_and_release(root: Path) -> list:
    sessions = find_recoverable(root)
    for s in sessions:
        s.release()
    return sessions
