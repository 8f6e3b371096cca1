"""Faults: kill -9 in the middle of a stage, run the same command again, end with the uninterrupted result; a
NaN loss stops the stage with a clear message and keeps the last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _train_helpers import REPO, base_args, fork_run, run_cmd, training_env


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _rows(stage_dir: Path) -> list[tuple[str, str, str, str]]:
    from training.loop import LossLog

    return [(r["step"], r["split"], r["metric"], r["value"]) for r in LossLog(stage_dir / "losses.csv").read()
            if r["metric"] != "sec_per_step"]


def test_kill_9_mid_stage_then_the_same_command_resumes_to_the_same_result(
        tiny_run: Path, synthetic_videos: Path, train_root: Path) -> None:
    run = fork_run(tiny_run, "killed", ("vae", "projection"))
    args = [*base_args(synthetic_videos, train_root, "killed"), "--stages", "denoiser"]
    sdir = run / "stages" / "denoiser"
    log = run.parent / "killed.stderr"
    with open(log, "w") as err:
        proc = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "training.run", *args], cwd=REPO,
                                env=training_env(), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 600
        while not (sdir / "ckpt-00000010.pt").exists():
            assert proc.poll() is None, f"the run ended before its first checkpoint:\n{log.read_text()}"
            assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (sdir / "done.json").exists(), "killed too late: the stage had already finished"
    assert not list(sdir.glob("*.tmp"))  # atomic checkpoints leave no half file behind
    run_cmd(args)  # the same command again
    ref_dir = tiny_run / "stages" / "denoiser"
    ours, ref = _tensors(sdir / "denoiser.safetensors"), _tensors(ref_dir / "denoiser.safetensors")
    assert ours.keys() == ref.keys()
    for k in ref:
        assert torch.equal(ours[k], ref[k]), f"{k} differs after resuming"
    assert _rows(sdir) == _rows(ref_dir)
    done, ref_done = json.loads((sdir / "done.json").read_text()), json.loads((ref_dir / "done.json").read_text())
    assert done["metrics"] == ref_done["metrics"]


def test_nan_loss_stops_the_stage_and_keeps_the_last_good_checkpoint(
        tiny_run: Path, synthetic_videos: Path, train_root: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from training import diffusion
    from training.run import main

    run = fork_run(tiny_run, "nan", ("vae", "projection"))
    real = diffusion.GaussianDiffusion.training_losses
    calls = {"n": 0}

    def poisoned(self, *a, **k):  # two calls per step: NaN from step 15 on
        out = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] > 30:
            out["mse"] = out["mse"] * float("nan")
        return out

    monkeypatch.setattr(diffusion.GaussianDiffusion, "training_losses", poisoned)
    code = main([*base_args(synthetic_videos, train_root, "nan"), "--stages", "denoiser"])
    err = capsys.readouterr().err
    assert code == 3
    assert "NaN/inf at step 15" in err and "ckpt-00000010.pt is kept" in err and "resume" in err
    sdir = run / "stages" / "denoiser"
    assert sorted(p.name for p in sdir.glob("ckpt-*.pt")) == ["ckpt-00000010.pt"]
    assert not (sdir / "done.json").exists()
    state = torch.load(sdir / "ckpt-00000010.pt", weights_only=False)
    assert state["step"] == 10 and all(torch.isfinite(v).all() for v in state["modules"]["denoiser"].values())
