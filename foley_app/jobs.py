"""Background work: `JobRunner`, two fixed pools of long-lived Python threads whose results reach the GUI thread
through queued Qt signals.

A job function runs off the GUI thread as ``fn(report, should_cancel) -> result``: `report(fraction, message)`
posts progress (throttled to 10 per second before it reaches the GUI), `should_cancel()` polls the cooperative
cancel flag. Every exception is caught and emitted, never swallowed.

Three pools: a one-thread pool for inference (loading the model and generating run one at a time, in order), a
small pool for I/O (frames, thumbnails, audio, export) and a one-thread pool for autosaves (`lane="save"`), which
never wait behind a long export or a slow read (tests/crash_recovery.py caught an autosave queued for 2.6 s
behind reads, so a kill lost edits older than the autosave interval). Each pool is a FIFO queue and a fixed set of
`threading.Thread`s that live as long as the runner (started on first use, joined by `shutdown`). A worker thread
emits the runner's own private signals (the runner is a QObject of the GUI thread; the connections are queued),
so nothing per job is a Qt object: no QRunnable, no signals object, nothing whose lifetime PySide decides. (A
Python QRunnable with auto-delete off, one per job, was never released by PySide: every job leaked its worker,
its job and its function's closure, +53 MB over 95 generations. Handing the pools plain callables instead crashed
PySide at interpreter exit. tests/soak.py measures it; README, reliability.)
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

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


@dataclass(frozen=True)
class SegmentJobMeta:
    """What a generation or hit-detection job was started for: the segment (`segment_id`, `label`, `start`) of
    `video` and the segment's hits token then (a result that no longer fits when it arrives is dropped). A
    generation also carries its `batch` (one error dialog per batch), `auto_accept` (Fill: accept candidate 1)
    and when it was queued (`time.monotonic()`)."""

    segment_id: str
    label: str
    start: float
    video: str
    hits_token: int
    auto_accept: bool = False
    batch: int | None = None
    queued_at: float | None = None


@dataclass(eq=False)
class Job:
    """A handle on one unit of background work; `meta` carries what it was started for (segment, start, ...), for
    the jobs that are about a segment (None for the others)."""

    id: int
    kind: str
    title: str
    inference: bool
    meta: SegmentJobMeta | None = None
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

    @property
    def segment_id(self) -> str | None:
        """The segment the job is about (`meta.segment_id`), None for a job about no segment."""
        return self.meta.segment_id if self.meta is not None else None


class WorkerPool:
    """A FIFO queue served by up to `max_threads` long-lived threads (started as work arrives, never more)."""

    def __init__(self, name: str, max_threads: int, run: Callable[[Job, JobFn], None]) -> None:
        self.name = name
        self._max = max(1, int(max_threads))
        self._run = run
        self._queue: collections.deque[tuple[Job, JobFn]] = collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._active = 0
        self._stopping = False

    def maxThreadCount(self) -> int:
        return self._max

    def start(self, job: Job, fn: JobFn) -> None:
        with self._cond:
            self._stopping = False
            self._queue.append((job, fn))
            if len(self._queue) > self._idle and len(self._threads) < self._max:
                t = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify()

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                while not self._queue and not self._stopping:
                    self._cond.wait()
                self._idle -= 1
                if not self._queue:  # stopping, and nothing left to do
                    self._threads.remove(threading.current_thread())
                    self._cond.notify_all()
                    return
                job, fn = self._queue.popleft()
                self._active += 1
            try:
                self._run(job, fn)
            finally:
                del job, fn  # nothing of a finished job stays referenced by its thread
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    def waitForDone(self, msecs: int = -1) -> bool:
        """Wait until the queue is empty and no job runs (True), or `msecs` passed (False; -1: no limit)."""
        deadline = None if msecs < 0 else time.monotonic() + msecs / 1000
        with self._cond:
            while self._queue or self._active:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, msecs: int) -> bool:
        """Let the threads finish what is queued and exit; join them (True if all exited within `msecs`)."""
        deadline = time.monotonic() + msecs / 1000
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def thread_count(self) -> int:
        with self._cond:
            return len(self._threads)


class JobRunner(QObject):
    """Queues jobs on the inference or I/O pool, relays their signals on the GUI thread, cancels them."""

    job_queued = Signal(object)
    job_started = Signal(object)
    job_progress = Signal(object, object)
    job_finished = Signal(object)

    # emitted by the worker threads, delivered on the runner's (GUI) thread
    _w_started = Signal(object)
    _w_progress = Signal(object, object)  # Job, JobProgress
    _w_result = Signal(object, object)  # Job, result
    _w_error = Signal(object, object)  # Job, exception
    _w_finished = Signal(object)

    def __init__(self, parent: QObject | None = None, *, io_threads: int = 2) -> None:
        super().__init__(parent)
        self.inference_pool = WorkerPool("foley-inference", 1, self._run)
        self.io_pool = WorkerPool("foley-io", io_threads, self._run)
        self.save_pool = WorkerPool("foley-save", 1, self._run)
        self._pools = {"inference": self.inference_pool, "io": self.io_pool, "save": self.save_pool}
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}
        self._closed = False
        queued = Qt.ConnectionType.QueuedConnection
        self._w_started.connect(self._on_started, queued)
        self._w_progress.connect(self._on_progress, queued)
        self._w_result.connect(self._on_result, queued)
        self._w_error.connect(self._on_error, queued)
        self._w_finished.connect(self._on_finished, queued)

    # ---- submitting ---------------------------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        title: str,
        fn: JobFn,
        *,
        inference: bool = False,
        meta: SegmentJobMeta | None = None,
        on_result: Callable[[Job, Any], None] | None = None,
        on_error: Callable[[Job, BaseException], None] | None = None,
        on_progress: Callable[[Job, JobProgress], None] | None = None,
        lane: str | None = None,
    ) -> Job:
        """Queue `fn` on the inference pool (`inference`), the autosave pool (`lane="save"`) or the I/O pool."""
        pool = self._pools[lane or ("inference" if inference else "io")]
        job = Job(next(self._ids), kind, title, inference, meta, on_result, on_error, on_progress)
        if self._closed:  # the runner is shut down: nothing runs any more (whoever asked is closing)
            job.cancel()
            job.state = "cancelled"
            log.debug("job %s (%s) submitted after shutdown: dropped", job.id, title)
            return job
        self._jobs[job.id] = job
        pool.start(job, fn)
        self.job_queued.emit(job)
        return job

    # ---- the worker threads ----------------------------------------------------------------------------------------
    def _run(self, job: Job, fn: JobFn) -> None:
        last = [0.0]

        def report(fraction: float, message: str) -> None:
            now = time.monotonic()
            if fraction < 1.0 and now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0] = now
            self._w_progress.emit(job, JobProgress(float(fraction), message))

        try:
            if job.cancel_requested:
                raise Cancelled(f"{job.title}: cancelled before it started")
            self._w_started.emit(job)
            result = fn(report, lambda: job.cancel_requested)
            if job.cancel_requested:
                raise Cancelled(f"{job.title}: cancelled")
        except BaseException as exc:  # emitted, never swallowed: the GUI shows it
            if isinstance(exc, Cancelled):
                log.info("job %s (%s) cancelled", job.id, job.title)
            elif isinstance(exc, (EngineError, AppError, OSError)):  # expected failures: the dialog says it all
                log.warning("job %s (%s) failed: %s", job.id, job.title, exc)
            else:
                log.exception("job %s (%s) failed", job.id, job.title)
            self._w_error.emit(job, exc)
        else:
            self._w_result.emit(job, result)
        finally:
            self._w_finished.emit(job)

    # ---- queries and control -----------------------------------------------------------------------------------
    def jobs(self, kind: str | None = None) -> list[Job]:
        return [j for j in self._jobs.values() if kind is None or j.kind == kind]

    def busy(self, kind: str | None = None) -> bool:
        return bool(self.jobs(kind))

    def cancel(self, job: Job) -> None:
        job.cancel()

    def cancel_all(self, kind: str | None = None) -> None:
        for job in self.jobs(kind):
            job.cancel()

    def thread_count(self) -> int:
        """Worker threads alive now (at most 1 + io_threads + 1)."""
        return sum(pool.thread_count() for pool in self._pools.values())

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything, wait for running jobs to stop and end the worker threads (True if all in time).

        Results still on their way are dropped: whoever asked for them is closing.
        """
        self._closed = True
        self.cancel_all()
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        for pool in self._pools.values():
            ok &= pool.stop(max(0, int((deadline - time.monotonic()) * 1000)))
        if not ok:
            log.warning("background jobs still running after %d ms: %s", timeout_ms,
                        ", ".join(j.title for j in self._jobs.values()))
        return ok

    # ---- relays (GUI thread) -----------------------------------------------------------------------------------
    def _on_started(self, job: Job) -> None:
        job.state = "running"
        if not self._closed:
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
        self._jobs.pop(job.id, None)
        if not self._closed:
            self.job_finished.emit(job)
