"""The readers of user files under a short seeded run of the coverage-guided fuzzer (tests/fuzz_readers.py).

The documented run is 10,000 inputs (README, reliability); this one is 1,500 with a fixed seed, so the same inputs
are tried every time. A finding (an exception that is not a typed error, a hang over 10 s, a crash) fails it, with
libFuzzer's report and the input written into the test's folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_seeded_fuzz_run_ends_in_results_and_typed_errors_only(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris has wheels for x86-64 Linux only")
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "fuzz_readers.py"), "-runs=1500", "-seed=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-6000:]
    assert "Done 1500 runs" in report
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
