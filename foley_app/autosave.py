"""Autosave and crash recovery.

Each running editor owns a session folder under the autosave root, locked with a QLockFile for as long as it
runs. Every `interval` seconds, if the document changed since the last autosave and is not saved, a snapshot of
the project (JSON + the WAVs it references, written atomically like any save) goes there in a background job. A
clean exit removes the folder; saving the project empties it.

At start-up, a session folder whose lock can be taken belongs to an editor that is no longer running (QLockFile
knows a lock whose process died is stale): it is offered for recovery. A recovered session is `adopt`ed: kept, and
locked, until this session's own autosave of the recovered work is on disk (or the work is saved or closed), so an
editor killed again in between still leaves it to recover (tests/crash_recovery.py found that window).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal

from engine import atomic_write_text
from foley_app.document.document import ProjectDocument
from foley_app.document.project import Project, load_project, read_project_json, save_project
from foley_app.jobs import Job, JobRunner

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "autosave.foleyproj"
META_NAME = "session.json"
LOCK_NAME = "session.lock"


def default_autosave_root() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".mdsgen-foley") / "autosave"


@dataclass
class RecoverableSession:
    """An autosave left by an editor that did not exit cleanly."""

    folder: Path
    meta: dict[str, Any]
    lock: QLockFile

    @property
    def snapshot(self) -> Path:
        return self.folder / SNAPSHOT_NAME

    def describe(self) -> str:
        when = self.meta.get("saved_at_text", "an unknown time")
        name = self.meta.get("display_name", "an untitled project")
        parts = [f"“{name}”, autosaved {when}"]
        if self.meta.get("video"):
            parts.append(f"video: {self.meta['video']}")
        parts.append(f"{self.meta.get('segments', '?')} segment(s), {self.meta.get('clips', '?')} clip(s) on the track")
        return "\n".join(parts)

    def load(self) -> tuple[Project, dict, Path | None]:
        """(project, audio, the project's own file path or None)."""
        project, audio = load_project(self.snapshot)
        path = self.meta.get("project_path")
        return project, audio, Path(path) if path else None

    def discard(self) -> None:
        self.lock.unlock()
        shutil.rmtree(self.folder, ignore_errors=True)

    def release(self) -> None:
        """Leave it for a later start."""
        self.lock.unlock()


def find_recoverable(root: Path) -> list[RecoverableSession]:
    """Autosaves whose editor is gone (newest first). The caller must discard() or release() each."""
    found: list[RecoverableSession] = []
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        lock = QLockFile(str(folder / LOCK_NAME))
        lock.setStaleLockTime(0)  # stale only when its process is gone, never by age
        if not lock.tryLock(0):
            continue  # another editor is running with it
        if not (folder / SNAPSHOT_NAME).is_file():
            lock.unlock()
            shutil.rmtree(folder, ignore_errors=True)  # an empty session: nothing to recover
            continue
        try:
            read_project_json(folder / SNAPSHOT_NAME)
            meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        except Exception as exc:  # a damaged autosave is reported, not fatal
            log.warning("autosave %s is unreadable: %s", folder, exc)
            meta = {"display_name": f"(damaged autosave in {folder.name})"}
        found.append(RecoverableSession(folder, meta, lock))
    found.sort(key=lambda s: s.meta.get("saved_at", 0), reverse=True)
    return found


class Autosaver(QObject):
    """Snapshots the document into this session's folder on a timer."""

    autosaved = Signal(str)  # path of the snapshot
    failed = Signal(object)  # the exception

    def __init__(self, document: ProjectDocument, jobs: JobRunner, root: Path, interval_s: int,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.jobs = jobs
        self.root = root
        self.folder = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self._lock: QLockFile | None = None
        self._saved_revision = -1
        self._job: Job | None = None
        self._failed_once = False
        self._adopted: list[RecoverableSession] = []  # recovered sessions, discarded once our autosave holds them
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.autosave_now)
        self.set_interval(interval_s)
        document.modified_changed.connect(self._on_modified_changed)
        document.project_replaced.connect(self._on_replaced)

    def set_interval(self, seconds: int) -> None:
        if seconds > 0:
            self.timer.start(seconds * 1000)
        else:
            self.timer.stop()

    def _ensure_session(self) -> None:
        if self._lock is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = QLockFile(str(self.folder / LOCK_NAME))
            lock.setStaleLockTime(0)
            if not lock.tryLock(0):
                raise OSError(f"cannot lock the autosave folder {self.folder}")
            self._lock = lock

    def autosave_now(self) -> Job | None:
        """Start a snapshot job if the document has unsaved changes not autosaved yet."""
        doc = self.document
        if not doc.is_modified() or doc.revision == self._saved_revision or self._job is not None:
            return None
        if doc.project.video is None and not doc.project.segments:
            return None
        try:
            self._ensure_session()
        except OSError as exc:
            self._report_failure(exc)
            return None
        project = doc.project.copy()
        audio = doc.audio.snapshot(project.audio_ids())
        revision = doc.revision
        now = time.time()
        meta = {
            "project_path": str(doc.path) if doc.path else "",
            "display_name": doc.display_name(),
            "video": project.video.path if project.video else "",
            "segments": len(project.segments),
            "clips": len(project.clips),
            "saved_at": now,
            "saved_at_text": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "pid": os.getpid(),
        }
        folder = self.folder

        def work(report, should_cancel):
            path = save_project(project, audio, folder / SNAPSHOT_NAME, prune=True)
            atomic_write_text(folder / META_NAME, json.dumps(meta, indent=1))
            return str(path)

        def done(job: Job, path: str) -> None:
            self._job = None
            self._saved_revision = revision
            self._failed_once = False
            self._release_adopted()  # what they held is in our snapshot now
            self.autosaved.emit(path)

        def error(job: Job, exc: BaseException) -> None:
            self._job = None
            self._report_failure(exc)

        self._job = self.jobs.submit("autosave", "Autosave", work, on_result=done, on_error=error, lane="save")
        return self._job

    def adopt(self, session: RecoverableSession) -> None:
        """Keep a recovered session (and its lock) until this session's next autosave, a save or a clean exit."""
        self._adopted.append(session)
        self.autosave_now()

    def _release_adopted(self) -> None:
        while self._adopted:
            self._adopted.pop().discard()

    def _report_failure(self, exc: BaseException) -> None:
        log.warning("autosave failed: %s", exc)
        if not self._failed_once:  # say it once, not every 30 s
            self._failed_once = True
            self.failed.emit(exc)

    def _clear_snapshot(self) -> None:
        for name in (SNAPSHOT_NAME, META_NAME):
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()
        self._saved_revision = -1

    def _on_modified_changed(self, modified: bool) -> None:
        if not modified and self._job is None:
            self._clear_snapshot()
            self._release_adopted()  # saved: the project file holds the recovered work

    def _on_replaced(self) -> None:
        self._saved_revision = -1

    def close_session(self) -> None:
        """A clean exit: remove this session's folder."""
        self.timer.stop()
        self._release_adopted()
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None
        shutil.rmtree(self.folder, ignore_errors=True)
