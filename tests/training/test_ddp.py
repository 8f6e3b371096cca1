"""Data parallel: the same command under torchrun with 2 CPU processes (gloo) trains the denoiser stage, the ranks
end with identical weights (checked by the loop itself), the checkpoint is valid, and the first step's unmasked
loss equals a single process's (same global batch, noise and timesteps)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from _train_helpers import REPO, base_args, fork_run, run_cmd, training_env

SHORT = ["--stages", "denoiser", "--set", "runtime.threads=1", "--set", "denoiser.loop.steps=6",
         "--set", "denoiser.loop.ckpt_every=3", "--set", "denoiser.loop.log_every=1",
         "--set", "denoiser.loop.val_every=0"]


def _first_mse(run: Path) -> float:
    from training.loop import LossLog

    rows = LossLog(run / "stages" / "denoiser" / "losses.csv").read()
    return next(float(r["value"]) for r in rows if r["step"] == "1" and r["metric"] == "mse")


def test_torchrun_two_cpu_processes(tiny_run: Path, synthetic_videos: Path, train_root: Path) -> None:
    run = fork_run(tiny_run, "ddp", ("vae", "projection"))
    cmd = ["nice", "-n", "10", sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.run", *base_args(synthetic_videos, train_root, "ddp"), *SHORT]
    env = training_env()
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "weights of all 2 processes agree" in (run / "train.log").read_text()
    sdir = run / "stages" / "denoiser"
    state = torch.load(sdir / "ckpt-00000006.pt", weights_only=False)
    assert state["step"] == 6 and all(torch.isfinite(v).all() for v in state["modules"]["denoiser"].values())
    done = json.loads((sdir / "done.json").read_text())
    assert done["latent_crops"]["train"] > 0

    from engine.nn.bundle import load_weights
    from engine.nn.denoiser import DenoiserConfig, MDSGen

    load_weights(MDSGen(config=DenoiserConfig.from_dict(done["config"])), sdir / "denoiser.safetensors", what="d")

    single = fork_run(tiny_run, "single", ("vae", "projection"))
    run_cmd([*base_args(synthetic_videos, train_root, "single"), *SHORT])
    a, b = _first_mse(run), _first_mse(single)
    assert abs(a - b) <= 1e-5 * abs(b), (a, b)
