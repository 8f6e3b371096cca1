"""A short soak (tests/soak.py) of the engine API: generations in one process, memory flat after the warm-up, no
thread or file descriptor left behind. The documented run (README, reliability) also soaks the editor's job runner,
whose known leak (a PySide QRunnable per job is never released) is reported there, not asserted here yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_short_soak_keeps_memory_threads_and_files_flat(tiny_bundle_gl: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "soak.py"), "--bundle", str(tiny_bundle_gl),
                           "--generations", "24", "--warmup", "4", "--steps", "2", "--candidates", "2",
                           "--max-growth-mb", "25", "--paths", "engine", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    rep = json.loads(out.read_text())
    for path in ("engine",):  # the job runner's path leaks (README, reliability): measured, not yet asserted
        r = rep[path]
        assert r["passed"] and r["after"]["threads"] <= r["before"]["threads"], r
        assert r["after"]["fds"] <= r["before"]["fds"] and abs(r["growth_mb"]) < 25, r
