"""Soak: many generations in one process, through the engine API and through the editor's job runner.

    .venv/bin/python tests/soak.py --generations 100                  # the documented run (the shipped model)
    .venv/bin/python tests/soak.py --generations 100 --bundle B --steps 2 --candidates 1 --json out.json

Each path (`engine`: `FoleyEngine.generate` in a loop; `jobs`: the same through `foley_app.jobs.JobRunner` on its
inference pool, results delivered on a Qt event loop, offscreen) runs `--warmup` generations first, then the rest.
After the warm-up and at the end it reads the process's resident memory (`VmRSS`), its threads (`/proc/self/task`)
and its open file descriptors (`/proc/self/fd`). Pass: memory grows by less than `--max-growth-mb` (50) from the
warm-up to the end, the thread and descriptor counts end where the warm-up left them, and (jobs) no finished job
is left alive (a census of `foley_app.jobs.Job` objects: the leak the runner had, one per job, whatever the noise
of the resident memory). Prints a JSON report;
exit code 1 if a check fails. tests/engine/test_soak.py runs a short version.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO / "resources" / "demo" / "test_impact_00010.mp4"


def vitals() -> dict[str, float]:
    gc.collect()
    rss = 0.0
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024  # kB -> MiB
    return {"rss_mb": rss, "threads": len(os.listdir("/proc/self/task")), "fds": len(os.listdir("/proc/self/fd"))}


def soak_engine(engine: Any, n: int, warmup: int, kw: dict[str, Any]) -> dict[str, Any]:
    for _ in range(warmup):
        engine.generate(VIDEO, 0.0, **kw)
    before, t0 = vitals(), time.perf_counter()
    for i in range(n - warmup):
        engine.generate(VIDEO, 0.5 * (i % 4), seed=i, **kw)
    return {"before": before, "after": vitals(), "seconds": time.perf_counter() - t0}


def soak_jobs(engine: Any, n: int, warmup: int, kw: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from foley_app.jobs import Job, JobRunner

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    runner = JobRunner()
    errors: list[str] = []

    def run(count: int, offset: int) -> None:
        loop = QEventLoop()
        left = [count]

        def finished(_job: Any, _res: Any = None) -> None:
            left[0] -= 1
            if left[0] == 0:
                loop.quit()

        def failed(_job: Any, exc: BaseException) -> None:
            errors.append(repr(exc))
            finished(_job)

        for i in range(count):
            start = 0.5 * ((offset + i) % 4)
            runner.submit("generate", f"soak {offset + i}",
                          lambda report, cancel, s=start, k=offset + i: engine.generate(
                              VIDEO, s, seed=k, should_cancel=cancel,
                              on_progress=lambda p: report(p.fraction, p.message), **kw),
                          inference=True, on_result=finished, on_error=failed)
        QTimer.singleShot(3_600_000, loop.quit)  # a bound, never reached in a passing run
        loop.exec()

    run(warmup, 0)
    before, t0 = vitals(), time.perf_counter()
    run(n - warmup, warmup)
    after = vitals()
    # a census: every finished job must be gone. The loop quits from inside the last job's result delivery, so first
    # let the runner finish delivering (the pools' threads drop their last job once idle) and the event queue drain
    runner.inference_pool.waitForDone(10_000)
    runner.io_pool.waitForDone(10_000)
    for _ in range(3):
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
    gc.collect()
    live = sum(isinstance(o, Job) for o in gc.get_objects())
    runner.shutdown()
    del app
    return {"before": before, "after": after, "seconds": time.perf_counter() - t0, "errors": errors,
            "live_jobs": live}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generations", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--bundle", default=None, help="default: the shipped model")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--paths", nargs="+", default=["engine", "jobs"], choices=["engine", "jobs"])
    p.add_argument("--max-growth-mb", type=float, default=50.0)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from engine import load_engine

    engine = load_engine(a.bundle)
    kw: dict[str, Any] = {"candidates": a.candidates, "steps": a.steps}
    report: dict[str, Any] = {"command": "tests/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                              "bundle": engine.manifest.name, "generations": a.generations, "warmup": a.warmup}
    ok = True
    for path in a.paths:
        res = (soak_engine if path == "engine" else soak_jobs)(engine, a.generations, a.warmup, kw)
        b, e = res["before"], res["after"]
        res["growth_mb"] = e["rss_mb"] - b["rss_mb"]
        res["passed"] = (res["growth_mb"] < a.max_growth_mb and e["threads"] <= b["threads"]
                         and e["fds"] <= b["fds"] and not res.get("errors") and not res.get("live_jobs"))
        ok &= res["passed"]
        report[path] = res
    engine.close()
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
