"""Workers and the job runner: results, errors, cancellation, throttled progress, one inference at a time."""

from __future__ import annotations

import threading
import time

import pytest

from engine import Cancelled
from foley_app.jobs import JobRunner


@pytest.fixture
def runner(qapp):
    r = JobRunner()
    yield r
    r.shutdown(5000)


def test_result_progress_and_finish_arrive_on_the_gui_thread(qtbot, runner: JobRunner) -> None:
    main = threading.get_ident()
    seen: dict = {"progress": [], "threads": set()}

    def work(report, should_cancel):
        seen["worker"] = threading.get_ident()
        for i in range(50):
            report(i / 50, f"step {i}")
            time.sleep(0.005)
        report(1.0, "done")
        return 42

    def on_progress(job, p) -> None:
        seen["progress"].append(p.fraction)
        seen["threads"].add(threading.get_ident())

    results = []
    with qtbot.waitSignal(runner.job_finished, timeout=5000):
        runner.submit("t", "test", work, on_result=lambda j, r: results.append(r), on_progress=on_progress)
    assert results == [42] and seen["worker"] != main and seen["threads"] == {main}
    assert seen["progress"][-1] == 1.0
    assert len(seen["progress"]) < 10  # 0.25 s of 50 reports, throttled to about 10 per second
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
