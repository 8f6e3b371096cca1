"""Training on one GPU: the denoiser's inputs packed into one file (training.pack), trained from the pack alone
(training.gpu_train, here on the CPU and without PyAV or soundfile, as on the GPU machine), the CPU stage resuming
from the checkpoint it wrote, and gpu_train's one-line error where pytorch-optimizer (carried as a wheel) is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import REPO, base_args, fork_run, run_cmd, training_env

#: What the GPU machine lacks: engine/ imports the media modules at its top. (pytorch-optimizer is carried there as
#: its wheel; `_gpu_train(..., absent=...)` without it checks the error that says so.)
ABSENT = ("av", "soundfile", "diffusers")


def _gpu_train(*args: str, absent: tuple[str, ...] = ABSENT) -> subprocess.CompletedProcess[str]:
    """`python -m training.gpu_train ARGS` in a process where the modules `absent` cannot be imported."""
    script = (
        "import runpy, sys\n"
        f"for name in {absent!r}:\n"
        "    sys.modules[name] = None  # import fails, importlib.util.find_spec gives None\n"
        "sys.argv = ['training.gpu_train', *sys.argv[1:]]\n"
        "runpy.run_module('training.gpu_train', run_name='__main__', alter_sys=True)\n"
    )
    return subprocess.run(["nice", "-n", "10", sys.executable, "-c", script, *args],
                          cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=300)


def _interrupted_copy(tiny_run: Path, name: str, step: int) -> Path:
    """A run folder like the tiny run's with its denoiser stage stopped at `step` (checkpoint and loss log)."""
    run = fork_run(tiny_run, name, ("vae", "projection"))
    shutil.copy(tiny_run / "config.yaml", run / "config.yaml")
    sdir = run / "stages" / "denoiser"
    sdir.mkdir(parents=True)
    shutil.copy(tiny_run / "stages" / "denoiser" / f"ckpt-{step:08d}.pt", sdir)
    shutil.copy(tiny_run / "stages" / "denoiser" / "losses.csv", sdir)
    return run


def _pack(run: Path, out: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from training.pack import main

    code = main([str(run), "--out", str(out), *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_pack_then_three_steps_from_it_then_the_cpu_stage_resumes_to_the_uninterrupted_result(
        tiny_run: Path, synthetic_videos: Path, train_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import load_file

    src = _interrupted_copy(tiny_run, "pack-src", 30)
    pack = tmp_path / "tiny.npz"
    code, out, err = _pack(src, pack, capsys=capsys)
    assert code == 0, err
    assert "state: checkpoint ckpt-00000030.pt (step 30), in the pack" in out
    with np.load(pack) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    assert meta["plan"] == {"mean": "f32", "std": "f32", "feats": "f32"}  # small enough to be exact
    assert meta["digest"] == json.loads((tiny_run / "stages" / "denoiser" / "done.json").read_text())["digest"]
    assert meta["crops"]["train"] > 0 and meta["crops"]["val"] > 0

    # three steps from the pack alone, in a process that cannot import PyAV or soundfile
    stage = tmp_path / "gpu-stage"
    proc = _gpu_train(str(pack), "--out", str(stage), "--device", "cpu", "--steps", "3", "--minutes", "5")
    assert proc.returncode == 0, proc.stderr[-4000:]
    rec = json.loads((stage / "gpu_train.json").read_text())
    assert (rec["start_step"], rec["end_step"], rec["stopped_by"]) == (30, 33, "steps")
    assert rec["optimizer"].startswith("Adan (pytorch-optimizer") and {"av", "soundfile"} <= set(rec["stand_ins"])
    ckpt = stage / "ckpt-00000033.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["step"] == 33 and set(state) == {"step", "modules", "optimizers", "emas", "rng"}

    # copy the checkpoint and the loss log into a run folder; the CPU stage resumes there and finishes
    dst = fork_run(tiny_run, "pack-resumed", ("vae", "projection"))
    (dst / "stages" / "denoiser").mkdir(parents=True)
    for name in (ckpt.name, "losses.csv"):
        shutil.copy(stage / name, dst / "stages" / "denoiser" / name)
    proc = run_cmd([*base_args(synthetic_videos, train_root, "pack-resumed"), "--stages", "denoiser"])
    assert "resumed from ckpt-00000033.pt" in proc.stderr
    done = json.loads((dst / "stages" / "denoiser" / "done.json").read_text())
    ref = json.loads((tiny_run / "stages" / "denoiser" / "done.json").read_text())
    assert done["digest"] == ref["digest"]
    # an exact pack, the stage's own step function and the stage's own Adan (pytorch-optimizer's): the resumed
    # stage ends where the uninterrupted one did (one thread, bitwise)
    ours = load_file(str(dst / "stages" / "denoiser" / "denoiser.safetensors"))
    theirs = load_file(str(tiny_run / "stages" / "denoiser" / "denoiser.safetensors"))
    assert ours.keys() == theirs.keys()
    for k in theirs:
        assert torch.equal(ours[k], theirs[k]), f"{k} differs"
    assert done["metrics"] == ref["metrics"]


def test_pack_over_budget_is_refused_and_a_state_that_does_not_fit_goes_beside_it(
        tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.pack import MIB, load_pack

    src = _interrupted_copy(tiny_run, "pack-budget", 30)
    code, _, err = _pack(src, tmp_path / "small.npz", "--max-mib", "0.05", capsys=capsys)
    assert code == 2
    assert "does not fit 0.05 MiB" in err and "raise --max-mib" in err
    assert not list(tmp_path.glob("small*"))

    code, out, err = _pack(src, tmp_path / "full.npz", capsys=capsys)
    assert code == 0, err
    whole = json.loads(out[: out.rindex("}") + 1])
    ckpt_bytes = whole["state"]["bytes"]
    budget = (whole["bytes"] - ckpt_bytes / 2) / MIB  # the data fits, the checkpoint beside it does not
    code, out, err = _pack(src, tmp_path / "split.npz", "--max-mib", f"{budget:.4f}", capsys=capsys)
    assert code == 0, err
    side = tmp_path / "split.state.pt"
    assert side.is_file() and f"beside it: {side}" in out
    assert (tmp_path / "split.npz").stat().st_size <= budget * MIB
    pack = load_pack(tmp_path / "split.npz")
    assert pack.meta["plan"]["mean"] == "f32" and pack.state == side.read_bytes()
    side.unlink()
    assert load_pack(tmp_path / "split.npz").state is None  # gpu_train then says to copy it


def test_codecs_and_the_plan_choice() -> None:
    from training.pack import PLANS, PackError, StageInputs, choose_plan, decode, encode

    rng = np.random.default_rng(0)
    mean = (rng.standard_normal((6, 4, 16, 64)) * 3).astype(np.float32)
    std = np.exp(rng.standard_normal((6, 4, 16, 64)) - 3).astype(np.float32)
    feats = (rng.standard_normal((20, 512)) * 0.05).astype(np.float32)
    for codec, tol in (("f32", 0.0), ("f16", 2e-3), ("q8", None)):
        y = decode(encode(mean, codec, "latent"), "", codec, mean.shape)
        rng_ = mean.max(axis=(2, 3), keepdims=True) - mean.min(axis=(2, 3), keepdims=True)
        bound = rng_ / 255 / 2 + 1e-6 if tol is None else np.abs(mean) * tol
        assert (np.abs(y - mean) <= bound).all(), codec
    for codec, rel in (("l8", 0.02), ("l4", 0.35)):  # half a step of log(std) over its range in a latent
        y = decode(encode(std, codec, "latent"), "", codec, std.shape)
        assert np.abs(y / std - 1).max() < rel, codec
    y = decode(encode(std, "cc", "latent"), "", "cc", std.shape)
    assert np.allclose(y[:, :, 0, 0], std.mean(axis=(2, 3)), rtol=1e-3)
    y = decode(encode(feats, "q8", "feats"), "", "q8", feats.shape)
    assert np.abs(y - feats).max() <= (feats.max(1) - feats.min(1)).max() / 255 / 2 + 1e-6

    si = StageInputs(cfg=None, digest="", scale=1.0, mean=mean, std=std, crop_clip=np.zeros(6, np.int32),
                     crop_frame=np.zeros(6, np.int32), crop_split=np.zeros(6, np.uint8), clips=[],
                     feats=[feats], onsets=[np.zeros(0)], latents_file="", vae_sha256="")
    sources = {"mean": (mean, "latent"), "std": (std, "latent"), "feats": (feats, "feats")}

    def raw(plan: tuple[str, str, str]) -> int:
        return sum(a.nbytes for n, c in zip(("mean", "std", "feats"), plan)
                   for a in encode(*sources[n][:1], c, sources[n][1]).values())

    for k, plan in enumerate(PLANS):  # the first plan, in order of exactness, that fits
        chosen, _ = choose_plan(si, raw(plan), 0, measure=lambda a: a.nbytes)
        i = PLANS.index(chosen)
        assert i <= k and all(raw(p) > raw(plan) for p in PLANS[:i])
    with pytest.raises(PackError, match="does not fit"):
        choose_plan(si, min(raw(p) for p in PLANS) - 1, 0, measure=lambda a: a.nbytes)


def test_gpu_train_without_pytorch_optimizer_stops_with_one_line_saying_how_to_carry_it(
        tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _interrupted_copy(tiny_run, "pack-no-adan", 30)
    pack = tmp_path / "tiny.npz"
    code, _, err = _pack(src, pack, capsys=capsys)
    assert code == 0, err
    stage = tmp_path / "gpu-stage"
    proc = _gpu_train(str(pack), "--out", str(stage), "--device", "cpu", "--steps", "1", "--minutes", "5",
                      absent=(*ABSENT, "pytorch_optimizer"))
    assert proc.returncode == 2, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: optim.name 'adan' needs the pytorch-optimizer package"), last
    for what in ("pip download pytorch-optimizer==VERSION --no-deps -d wheels/", "pip show pytorch-optimizer",
                 "carry wheels/ along", "pip install --no-deps wheels/*.whl"):
        assert what in last, what
    assert not stage.exists()  # stopped before any work
