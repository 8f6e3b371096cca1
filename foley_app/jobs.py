"""Background work: `Worker` (a QRunnable with a signals object on the GUI thread) and `JobRunner`.

A job function runs off the GUI thread as ``fn(report, should_cancel) -> result``: `report(fraction, message)`
posts progress (throttled to 10 per second before it reaches the GUI), `should_cancel()` polls the cooperative
cancel flag. Every exception is caught and emitted, never swallowed. Results reach the GUI thread through queued
signals; the runner keeps each worker referenced until its `finished` signal.

Two pools: a one-thread pool for inference (loading the model and generating run one at a time, in order) and a
small pool for I/O (frames, thumbnails, audio, saving, export).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from engine import Cancelled, EngineError
from foley_app.errors import AppError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1

Report = Callable[[float, str], None]
ShouldCancel = Callable[[], bool]
JobFn = Callable[[Report, ShouldCancel], Any]


@dataclass
class JobProgress:
    fraction: float
    message: str


@dataclass(eq=False)
class Job:
    """A handle on one unit of background work; `meta` carries what it was started for (segment, start, ...)."""

    id: int
    kind: str
    title: str
    inference: bool
    meta: dict[str, Any] = field(default_factory=dict)
    on_result: Callable[[Job, Any], None] | None = None
    on_error: Callable[[Job, BaseException], None] | None = None
    on_progress: Callable[[Job, JobProgress], None] | None = None
    state: str = "queued"  # queued, running, done, failed, cancelled
    progress: JobProgress = field(default_factory=lambda: JobProgress(0.0, "queued"))
    _cancel: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()


class WorkerSignals(QObject):
    """Signals of one worker. Created on the GUI thread, so connections to GUI objects are queued."""

    started = Signal(object)
    progress = Signal(object, object)  # Job, JobProgress
    result = Signal(object, object)  # Job, result
    error = Signal(object, object)  # Job, exception
    finished = Signal(object)


class Worker(QRunnable):
    def __init__(self, job: Job, fn: JobFn) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner holds the reference until `finished`
        self.job = job
        self.fn = fn
        self.signals = WorkerSignals()
        self._last_report = 0.0

    def _report(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_report < PROGRESS_INTERVAL_S:
            return
        self._last_report = now
        self.signals.progress.emit(self.job, JobProgress(float(fraction), message))

    def run(self) -> None:
        job = self.job
        try:
            if job.cancel_requested:
                raise Cancelled(f"{job.title}: cancelled before it started")
            self.signals.started.emit(job)
            result = self.fn(self._report, lambda: job.cancel_requested)
            if job.cancel_requested:
                raise Cancelled(f"{job.title}: cancelled")
        except BaseException as exc:  # emitted, never swallowed: the GUI shows it
            if isinstance(exc, Cancelled):
                log.info("job %s (%s) cancelled", job.id, job.title)
            elif isinstance(exc, (EngineError, AppError, OSError)):  # expected failures: the dialog says it all
                log.warning("job %s (%s) failed: %s", job.id, job.title, exc)
            else:
                log.exception("job %s (%s) failed", job.id, job.title)
            self.signals.error.emit(job, exc)
        else:
            self.signals.result.emit(job, result)
        finally:
            self.signals.finished.emit(job)


class JobRunner(QObject):
    """Queues jobs on the inference or I/O pool, relays their signals on the GUI thread, cancels them."""

    job_queued = Signal(object)
    job_started = Signal(object)
    job_progress = Signal(object, object)
    job_finished = Signal(object)

    def __init__(self, parent: QObject | None = None, *, io_threads: int = 2) -> None:
        super().__init__(parent)
        self.inference_pool = QThreadPool(self)
        self.inference_pool.setMaxThreadCount(1)
        self.io_pool = QThreadPool(self)
        self.io_pool.setMaxThreadCount(io_threads)
        self._ids = itertools.count(1)
        self._workers: dict[int, Worker] = {}
        self._finished: list[Worker] = []
        self._closed = False

    # ---- submitting ---------------------------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        title: str,
        fn: JobFn,
        *,
        inference: bool = False,
        meta: dict[str, Any] | None = None,
        on_result: Callable[[Job, Any], None] | None = None,
        on_error: Callable[[Job, BaseException], None] | None = None,
        on_progress: Callable[[Job, JobProgress], None] | None = None,
    ) -> Job:
        job = Job(next(self._ids), kind, title, inference, dict(meta or {}), on_result, on_error, on_progress)
        worker = Worker(job, fn)
        worker.signals.started.connect(self._on_started)
        worker.signals.progress.connect(self._on_progress)
        worker.signals.result.connect(self._on_result)
        worker.signals.error.connect(self._on_error)
        worker.signals.finished.connect(self._on_finished)
        self._workers[job.id] = worker
        (self.inference_pool if inference else self.io_pool).start(worker)
        self.job_queued.emit(job)
        return job

    # ---- queries and control -----------------------------------------------------------------------------------
    def jobs(self, kind: str | None = None) -> list[Job]:
        return [w.job for w in self._workers.values() if kind is None or w.job.kind == kind]

    def busy(self, kind: str | None = None) -> bool:
        return bool(self.jobs(kind))

    def cancel(self, job: Job) -> None:
        job.cancel()

    def cancel_all(self, kind: str | None = None) -> None:
        for job in self.jobs(kind):
            job.cancel()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for running jobs to stop (True if all stopped in time).

        Results still on their way are dropped: whoever asked for them is closing.
        """
        self._closed = True
        self.cancel_all()
        ok = self.inference_pool.waitForDone(timeout_ms)
        return self.io_pool.waitForDone(timeout_ms) and ok

    # ---- relays (GUI thread) -----------------------------------------------------------------------------------
    def _on_started(self, job: Job) -> None:
        job.state = "running"
        self.job_started.emit(job)

    def _on_progress(self, job: Job, progress: JobProgress) -> None:
        if self._closed:
            return
        job.progress = progress
        if job.on_progress is not None:
            job.on_progress(job, progress)
        self.job_progress.emit(job, progress)

    def _on_result(self, job: Job, result: Any) -> None:
        if self._closed:
            return
        job.state = "done"
        if job.on_result is not None:
            job.on_result(job, result)

    def _on_error(self, job: Job, exc: BaseException) -> None:
        if self._closed:
            return
        job.state = "cancelled" if isinstance(exc, Cancelled) else "failed"
        if job.on_error is not None:
            job.on_error(job, exc)

    def _on_finished(self, job: Job) -> None:
        worker = self._workers.pop(job.id, None)
        if worker is not None:
            # dropped on a later turn of the event loop, not inside its own signal's delivery
            self._finished.append(worker)
            QTimer.singleShot(0, self._finished.clear)
        if not self._closed:
            self.job_finished.emit(job)
