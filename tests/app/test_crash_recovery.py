"""Crash recovery under SIGKILL (tests/crash_recovery.py, README reliability): the editor, driven by a seeded script,
killed at 4 moments aimed in turn at any moment, an autosave, a save and a generation, started again after each:
the project file always parses, the next start works on a state no older than the autosave interval (recovery is
offered where it is needed). The documented run makes 10 kills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigkill_at_four_moments_loses_no_edit_older_than_the_autosave_interval(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    out = tmp_path / "crash.json"
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "crash_recovery.py"), "--kills", "4", "--seed", "2",
                           "--max-delay", "5", "--work", str(tmp_path / "work"), "--cache", str(tmp_path / "cache"),
                           "--json", str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert out.is_file(), (proc.stdout + proc.stderr)[-6000:]
    rep = json.loads(out.read_text())
    assert len(rep["kills"]) == 4 and rep["edits"] > 0, rep
    assert proc.returncode == 0 and rep["passed"] and rep["recoveries_ok"] == 4, json.dumps(rep["kills"], indent=1)
    assert rep["recovered"] >= 1  # at least one start took its work back from an autosave
