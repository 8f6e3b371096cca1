"""A short soak (tests/soak.py): generations in one process through the engine API and through the editor's job
runner, memory flat after the warm-up, no thread or file descriptor left behind, no finished job left alive
(README, reliability). Resident memory over 10 tiny generations is noisy (malloc arenas of new threads): 60 MB
catches a gross leak; the census of live jobs, and tests/app/test_jobs.py's weak references, catch the runner's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_soak_keeps_memory_threads_and_files_flat(tiny_bundle_gl: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "soak.py"), "--bundle", str(tiny_bundle_gl),
                           "--generations", "14", "--warmup", "4", "--steps", "2", "--candidates", "2",
                           "--max-growth-mb", "60", "--paths", "engine", "jobs", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert "bool_dealloc" not in proc.stderr  # PySide's emit and True (foley_app/qt_compat.py)
    rep = json.loads(out.read_text())
    for path in ("engine", "jobs"):
        r = rep[path]
        assert r["passed"] and r["after"]["threads"] <= r["before"]["threads"], r
        assert r["after"]["fds"] <= r["before"]["fds"] and abs(r["growth_mb"]) < 60, r
    assert rep["jobs"]["live_jobs"] == 0, rep["jobs"]  # the leak itself: one job (+ worker, closure) per job
