"""Training with hits: the crops' hit tracks, the hit path's optimiser group, adopting a bundle, the shift test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import REPO, base_args, run_cmd, training_env


def test_tiny_run_trains_a_hit_aware_denoiser_and_exports_its_condition_graph(tiny_run: Path) -> None:
    from engine.manifest import load_manifest

    m = load_manifest(tiny_run / "bundle")
    assert m.components["denoiser"].config["hit_slots"] == 8  # the default recipe's, inherited by tiny
    assert [t["name"] for t in m.onnx["graphs"]["condition"]["inputs"]] == ["video_features", "hits"]
    rows = [r.split(",") for r in (tiny_run / "stages" / "denoiser" / "losses.csv").read_text().splitlines()[1:]]
    val = {r[2] for r in rows if r[1] == "val"}
    assert {"eps_mse", "eps_mse_other_hits", "eps_mse_no_hits", "eps_mse_null"} <= val


def test_crop_hits_are_the_clip_onsets_of_each_crop_and_jitter_is_seeded() -> None:
    from types import SimpleNamespace

    from engine.spec import DIFF_FOLEY
    from training.stages.denoiser import LatentSet, crop_hits

    ctx = SimpleNamespace(spec=DIFF_FOLEY, cfg=SimpleNamespace(denoiser=SimpleNamespace(overrides={"hit_slots": 8})))

    onsets = [np.array([0.5, 2.0, 9.0]), np.array([1.0])]
    lat = LatentSet(np.zeros((3, 1)), np.zeros((3, 1)), np.array([0, 0, 1]), np.array([0, 4, 0]))  # frame 4 = 1 s
    tr = crop_hits(onsets, lat, np.arange(3), ctx).numpy()
    assert tr.shape == (3, 32, 8)
    from engine.hits import track_times

    assert track_times(tr[0], 8.192) == [0.48, 1.984]  # 9.0 s is past the crop
    assert track_times(tr[1], 8.192) == [0.992, 8.0]  # the crop starting at 1 s: 2.0 -> 1.0, 9.0 -> 8.0; 0.5 is
    #                                                   before it
    assert track_times(tr[2], 8.192) == [0.992]
    other = crop_hits(onsets, lat, np.arange(3), ctx, shift=1).numpy()
    np.testing.assert_array_equal(other[0], tr[1])
    a = crop_hits(onsets, lat, np.arange(3), ctx, rng=np.random.default_rng(3), jitter=0.05).numpy()
    b = crop_hits(onsets, lat, np.arange(3), ctx, rng=np.random.default_rng(3), jitter=0.05).numpy()
    np.testing.assert_array_equal(a, b)


def test_parameter_groups_get_their_learning_rate_multiplier_and_no_decay() -> None:
    from training.config import LoopConfig, OptimConfig
    from training.loop import Trainer, build_optimizer

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    cfg = OptimConfig(name="adamw", lr=1e-3, weight_decay=0.02, warmup_steps=0)
    opt = build_optimizer([{"params": a.parameters()}, {"params": b.parameters(), "lr_mult": 10.0,
                                                        "weight_decay": 0.0}], cfg)
    tr = Trainer.__new__(Trainer)
    tr.optimizers, tr.optim_cfgs, tr.loop = {"m": opt}, {"m": cfg}, LoopConfig(steps=10)
    tr.set_lr(5)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2])
    assert [g["weight_decay"] for g in opt.param_groups] == [0.02, 0.0]


def test_a_run_adopts_a_bundles_vae_projection_and_vocoder(tiny_run: Path, synthetic_videos: Path,
                                                         train_root: Path) -> None:
    """--from-bundle: the stages are written from the bundle's weights, and a denoiser warm-started from the
    bundle's trains on them (its latent set is the bundle VAE's)."""
    from safetensors.torch import load_file

    bundle = tiny_run / "bundle"
    name = "adopted"
    args = [*base_args(synthetic_videos, train_root, name), "--from-bundle", str(bundle), "--stages", "denoiser",
            "--set", f"denoiser.init_from={bundle / 'denoiser.safetensors'}", "--set", "denoiser.loop.steps=4",
            "--set", "denoiser.loop.val_every=0", "--set", "vocoder.use=griffin-lim"]
    run_cmd(args)
    run = train_root / "runs" / name
    for stage in ("vae", "projection", "vocoder", "denoiser"):
        rec = json.loads((run / "stages" / stage / "done.json").read_text())
        assert ("adopted_from" in rec) == (stage != "denoiser"), stage
    a = load_file(str(run / "stages" / "vae" / "vae.safetensors"))
    b = load_file(str(tiny_run / "stages" / "vae" / "vae.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    p = load_file(str(run / "stages" / "projection" / "projection.safetensors"))
    q = load_file(str(tiny_run / "stages" / "projection" / "projection.safetensors"))
    assert all(torch.equal(p[k], q[k]) for k in q)
    # a bundle whose VAE does not fit the run's config is refused with the difference
    bad = run_cmd([*base_args(synthetic_videos, train_root, "adopt-bad"), "--from-bundle", str(bundle),
                   "--stages", "denoiser", "--set", "vae.block_out_channels=[8,8,8,8]"], check=False)
    assert bad.returncode == 2 and "VAE differs" in bad.stderr


def test_shift_estimate_recovers_a_known_delay() -> None:
    from training.evaluate import estimate_shift

    sr = 16000
    rng = np.random.default_rng(0)
    base = np.zeros(131072, np.float32)
    for t in (0.6, 1.9, 3.1, 4.4, 6.0):
        i = round(t * sr)
        base[i : i + 1600] += rng.standard_normal(1600).astype(np.float32) * np.exp(-np.arange(1600) / 300)
    for shift in (-0.5, 0.25):
        moved = np.roll(base, round(shift * sr))
        assert abs(estimate_shift(moved, base, sr) - shift) < 0.03


def test_evaluate_runs_the_hit_controls_and_the_shift_test(tiny_run: Path, synthetic_videos: Path,
                                                          train_root: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "training.evaluate", str(tiny_run / "bundle"), "--data", str(synthetic_videos),
           "--config", "tiny", "--cache", str(train_root / "cache"), "--metrics", "onset,shift",
           "--controls", "shuffled,gt_hits,no_hits", "--hits", "truth", "--steps", "3", "--max-clips", "2",
           "--out", str(tmp_path / "eval"), "--no-progress", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["conditions"] == ["generated", "real", "shuffled", "gt_hits", "no_hits"]
    assert m["hits"] == "truth" and m["hits_sources"] == {"user": 2}
    sh = m["shift"]
    assert sh["clips"] == 2 and set(sh["per_shift"]) == {"-0.5", "-0.25", "+0.25", "+0.5"}
    assert sh["largest_shift"] == 0.5 and isinstance(sh["slope"], float)


def test_a_run_on_another_mel_front_end_adopts_the_projection_and_warm_starts_its_own_vae(
        tiny_run: Path, synthetic_videos: Path, train_root: Path) -> None:
    """spec foley-16k from a diff-foley bundle: the VAE is trained (not adopted), starting from the bundle's
    weights (lr 0 keeps them exactly), the projection and the vocoder choice are adopted; a spec that differs in
    more than the mel is refused."""
    from safetensors.torch import load_file

    from engine.spec import AUDIOLDM, DIFF_FOLEY, FOLEY_16K
    from training.adopt import mel_only_difference

    assert mel_only_difference(DIFF_FOLEY, FOLEY_16K) and not mel_only_difference(DIFF_FOLEY, AUDIOLDM)
    bundle = tiny_run / "bundle"
    name = "fullband"
    run_cmd([*base_args(synthetic_videos, train_root, name), "--from-bundle", str(bundle), "--stages", "vae",
             "--set", "spec=foley-16k", "--set", f"data.cache_dir={train_root / 'cache-16k'}",
             "--set", f"vae.init_from={bundle / 'vae.safetensors'}", "--set", "vae.loop.steps=1",
             "--set", "vae.optim.lr=0.0", "--set", "vae.optim.warmup_steps=0", "--set", "vocoder.use=griffin-lim"])
    stages = train_root / "runs" / name / "stages"
    assert "adopted_from" not in json.loads((stages / "vae" / "done.json").read_text())
    assert "adopted_from" in json.loads((stages / "projection" / "done.json").read_text())
    a = load_file(str(stages / "vae" / "vae.safetensors"))
    b = load_file(str(bundle / "vae.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float()) for k in a)
