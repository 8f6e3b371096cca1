"""Helpers of the training tests (a plain module: tests import it by name, pytest's rootdir-relative mode)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
THREADS = "1"  # bitwise reproducible runs (parallel CPU reductions are not order-stable)


def training_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    return env


def run_cmd(args: list[str], *, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m training.run ARGS` in a subprocess (nice 10: the machine is shared)."""
    cmd = ["nice", "-n", "10", sys.executable, "-m", "training.run", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-6000:]}")
    return proc


def base_args(videos: Path, root: Path, name: str) -> list[str]:
    """The tiny config on the session's clips and cache, in run folder root/runs/name."""
    return ["--config", "tiny", "--data", str(videos), "--name", name, "--runs-dir", str(root / "runs"),
            "--set", f"data.cache_dir={root / 'cache'}", "--set", f"runtime.threads={THREADS}", "--no-progress"]


def fork_run(tiny_run: Path, name: str, stages: tuple[str, ...]) -> Path:
    """A new run folder holding copies of the tiny run's finished `stages` (their config digests match)."""
    new = tiny_run.parent / name
    shutil.rmtree(new, ignore_errors=True)
    for s in stages:
        shutil.copytree(tiny_run / "stages" / s, new / "stages" / s)
    return new
