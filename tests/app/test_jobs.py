"""Workers and the job runner: results, errors, cancellation, throttled progress, one inference at a time."""

from __future__ import annotations

import threading
import time
import types

import pytest

from engine import Cancelled
from foley_app import jobs
from foley_app.jobs import JobRunner


@pytest.fixture
def runner(qapp):
    r = JobRunner()
    yield r
    r.shutdown(5000)


def test_result_progress_and_finish_arrive_on_the_gui_thread(qtbot, runner: JobRunner, monkeypatch) -> None:
    main = threading.get_ident()
    seen: dict = {"progress": [], "threads": set()}
    clock = types.SimpleNamespace(now=1000.0)  # the throttle's clock, set by the job: no wall-clock timing
    monkeypatch.setattr(jobs, "time", types.SimpleNamespace(monotonic=lambda: clock.now))

    def work(report, should_cancel):
        seen["worker"] = threading.get_ident()
        for i in range(50):
            clock.now = 1000.0 + i / 256  # one report every 1/256 s (exact in binary): 0.19 s in all
            report(i / 50, f"step {i}")
        report(1.0, "done")
        return 42

    def on_progress(job, p) -> None:
        seen["progress"].append(p.fraction)
        seen["threads"].add(threading.get_ident())

    results = []
    with qtbot.waitSignal(runner.job_finished, timeout=5000):
        runner.submit("t", "test", work, on_result=lambda j, r: results.append(r), on_progress=on_progress)
    assert results == [42] and seen["worker"] != main and seen["threads"] == {main}
    # throttled to one per PROGRESS_INTERVAL_S (0.1 s): the first, the first 26/256 s later (25/256 s is too soon),
    # and the final one always
    assert jobs.PROGRESS_INTERVAL_S == 0.1
    assert seen["progress"] == [0.0, 26 / 50, 1.0]
    assert not runner.busy()


def test_errors_are_emitted_not_swallowed(qtbot, runner: JobRunner) -> None:
    errors = []

    def work(report, should_cancel):
        raise OSError(28, "No space left on device")

    with qtbot.waitSignal(runner.job_finished, timeout=5000):
        job = runner.submit("t", "test", work, on_error=lambda j, e: errors.append(e))
    assert isinstance(errors[0], OSError) and job.state == "failed"


def test_cancel_is_cooperative_and_queued_jobs_never_start(qtbot, runner: JobRunner) -> None:
    started = threading.Event()
    ran = []

    def long(report, should_cancel):
        started.set()
        while not should_cancel():
            time.sleep(0.01)
        raise Cancelled("stopped")

    errors = []
    first = runner.submit("gen", "first", long, inference=True, on_error=lambda j, e: errors.append(e))
    second = runner.submit("gen", "second", lambda r, c: ran.append(1), inference=True,
                           on_error=lambda j, e: errors.append(e))
    assert started.wait(5)
    assert second.state == "queued"  # one inference at a time
    runner.cancel_all("gen")
    qtbot.waitUntil(lambda: not runner.busy(), timeout=5000)
    assert ran == [] and first.state == second.state == "cancelled"
    assert all(isinstance(e, Cancelled) for e in errors) and len(errors) == 2


def test_finished_jobs_leave_nothing_behind_and_shutdown_ends_the_threads(qtbot, qapp) -> None:
    """The soak's leak, in miniature: every job, its function's closure and its result are released once it
    finished (a Python QRunnable per job was never released by PySide: +53 MB over 95 generations), the worker
    threads are a fixed few, and shutdown joins them."""
    import gc
    import weakref

    import numpy as np

    runner = JobRunner(io_threads=2)
    before = {t.ident for t in threading.enumerate()}
    refs: list[weakref.ref] = []
    done: list[int] = []

    def submit(i: int, inference: bool) -> None:
        payload = np.full(250_000, i, np.float32)  # 1 MB the function's closure holds
        refs.append(weakref.ref(payload))
        job = runner.submit("t", f"job {i}", lambda report, cancel, p=payload: p * 2, inference=inference,
                            on_result=lambda j, r: done.append(int(r[0])))
        refs.append(weakref.ref(job))

    for i in range(40):
        submit(i, inference=i % 2 == 0)
    qtbot.waitUntil(lambda: len(done) == 40 and not runner.busy(), timeout=20_000)
    assert sorted(done) == [2 * i for i in range(40)]
    assert runner.thread_count() <= 3  # one inference thread, two I/O threads, however many jobs
    # every delivery is made once nothing is busy (a job's finished signal is its last); the threads have let go of
    # their last job once their pools are idle (the counts drop after `del job, fn`)
    assert runner.inference_pool.waitForDone(5000) and runner.io_pool.waitForDone(5000)
    gc.collect()
    assert [r for r in refs if r() is not None] == []
    assert runner.shutdown(5000) and runner.thread_count() == 0
    assert {t.ident for t in threading.enumerate()} <= before


def test_emitting_signals_does_not_steal_true(qtbot, runner: JobRunner) -> None:
    """PySide 6.12's SignalInstance.emit dropped a reference to True per call, which crashed the process
    (`bool_dealloc`) after some thousand signals; foley_app.qt_compat gives it back."""
    import sys

    from foley_app import qt_compat

    assert qt_compat.emit_steals_true(500) == 0
    n = 0

    def count(j, r) -> None:
        nonlocal n
        n += 1

    before = sys.getrefcount(True)
    for _ in range(200):
        runner.submit("t", "t", lambda report, cancel: (report(1.0, "done"), True)[1], on_result=count)
    qtbot.waitUntil(lambda: n == 200 and not runner.busy(), timeout=20_000)
    assert sys.getrefcount(True) - before > -50  # 200 jobs emit some 800 signals: no steady loss


def test_none_and_true_cannot_be_freed_by_the_bindings_lost_references() -> None:
    import sys

    from foley_app import qt_compat

    if qt_compat.SINGLETONS_PINNED:
        assert min(sys.getrefcount(x) for x in (None, True, False)) > 2**39
    else:  # CPython 3.12+ (immortal) or a binding without the defect
        assert sys.version_info >= (3, 12) or not qt_compat.EMIT_PATCHED


def test_the_installed_binding_loses_no_references_to_none_true_or_false(qtbot) -> None:
    """pyproject pins PySide6 below 6.12: 6.12.0 on CPython 3.11 drops a reference per call (1000 rounds of these
    calls freed True and aborted the process; CI died of a segfault in a worker thread under it). This is the
    probe that chose the pin: it fails on 6.12.0 and passes on 6.9.3, 6.10.3 and 6.11.3."""
    import sys

    from PySide6.QtCore import QCoreApplication, QObject, Signal
    from PySide6.QtWidgets import QLabel

    class Probe(QObject):
        ping = Signal()
        value = Signal(int)

    probe, label = Probe(), QLabel()
    qtbot.addWidget(label)

    def counts() -> list[int]:
        return [sys.getrefcount(x) for x in (None, True, False)]

    before = counts()
    for i in range(300):
        probe.ping.emit()
        probe.value.emit(i)
        label.setText(f"x{i}")
        QCoreApplication.processEvents()
        label.text()
        label.isVisible()
    lost = [b - a for b, a in zip(before, counts())]
    assert max(lost) < 20, f"references lost to None/True/False over 300 rounds: {lost}"
