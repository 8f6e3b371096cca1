"""A responsive window (tests/stall.py, README reliability): the GUI event loop's worst stall while the editor loads
a long video, detects hits, generates, accepts a take and exports stays under a bound, and the same meter fails when
the jobs' work is put back on the GUI thread.

The bound here is 150 ms on the stall the editor itself causes (the gap between 5 ms timer ticks minus the time the
GUI thread waited, runnable, for a CPU taken by other processes): 3x the 50 ms target, for a shared, loaded CI
machine; the documented run (10 minutes of video) reports the figures against 50 ms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOUND_MS = 150.0


def _stall(tmp_path: Path, cache: Path, name: str, *extra: str) -> tuple[int, dict]:
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "stall.py"), "--minutes", "3", "--idle", "1",
                           "--own", "--max-ms", str(BOUND_MS), "--cache", str(cache), "--json", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=900)
    assert out.is_file(), (proc.stdout + proc.stderr)[-6000:]
    return proc.returncode, json.loads(out.read_text())


@pytest.mark.slow
def test_the_window_stays_responsive_and_the_meter_catches_work_on_the_gui_thread(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rc, rep = _stall(tmp_path, cache, "threads")
    actions = rep["actions"]
    assert set(actions) >= {"load", "detect", "generate", "accept", "export"} and not rep["errors"], rep
    own = {k: v["worst_own_stall_ms"] for k, v in actions.items()}
    assert rc == 0 and rep["passed"], own
    assert all(own[k] <= BOUND_MS for k in ("load", "detect", "generate", "accept", "export")), own

    rc, rep = _stall(tmp_path, cache, "gui", "--jobs-on-gui-thread", "--actions", "load", "generate", "export")
    own = {k: v["worst_own_stall_ms"] for k, v in rep["actions"].items()}
    assert rc == 1 and not rep["passed"], own
    assert own["generate"] > BOUND_MS and own["export"] > BOUND_MS and own["load"] > BOUND_MS, own
