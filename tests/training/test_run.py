"""`python -m training.run --config tiny` end to end: the run folder, the bundle (`foley generate` loads it), the
provenance in its manifest, skipping finished stages, refusing a changed config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _train_helpers import REPO, base_args, fork_run, run_cmd, training_env

from engine.manifest import load_manifest

STAGES = ("vae", "vocoder", "projection", "denoiser", "export", "evaluate")


def test_run_folder_layout(tiny_run: Path) -> None:
    assert (tiny_run / "config.yaml").is_file() and (tiny_run / "train.log").is_file()
    report = json.loads((tiny_run / "data_report.json").read_text())
    assert report["clips"] == 8 and report["skipped"] == {}
    assert {s: report["splits"][s]["clips"] for s in ("train", "val", "test")} == {"train": 4, "val": 2, "test": 2}
    for stage in STAGES:
        assert (tiny_run / "stages" / stage / "done.json").is_file(), stage
    for stage in ("vae", "vocoder", "projection", "denoiser"):
        sdir = tiny_run / "stages" / stage
        assert (sdir / "losses.csv").is_file() and (sdir / "losses.png").stat().st_size > 1000, stage
        assert (sdir / "samples.png").stat().st_size > 1000, stage
        assert list(sdir.glob("ckpt-*.pt")), stage
    assert (tiny_run / "stages" / "evaluate" / "samples.png").is_file()
    metrics = json.loads((tiny_run / "stages" / "evaluate" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["clips"] == 2
    assert metrics["onset"]["gt"] == ["annotated"]
    assert metrics["onset"]["real@0.1s"]["acc"] >= 0.8  # the detector finds the synthetic impacts
    assert 0.0 <= metrics["onset"]["generated@0.1s"]["acc"] <= 1.0
    assert np.isfinite(metrics["mel"]["vae_mel_l1"]) and metrics["mel"]["griffin_lim_lsd"] > 0
    conditions = ["generated", "real", "vocoded", "reconstruction", "shuffled"]
    assert metrics["conditions"] == conditions
    for cond in conditions:  # every metric for every control
        assert 0.0 <= metrics["onset"][f"{cond}@0.1s"]["acc"] <= 1.0, cond
        assert 0.0 <= metrics["alignment"][cond]["accuracy"] <= 1.0, cond
        assert metrics["fad"][cond] >= 0.0, cond
    assert metrics["alignment"]["classifier"]["train_clips"] == 4
    assert "| generated |" in (tiny_run / "stages" / "evaluate" / "summary.md").read_text()


def test_bundle_manifest_carries_config_report_and_metrics(tiny_run: Path) -> None:
    from engine.manifest import load_manifest

    m = load_manifest(tiny_run / "bundle")
    assert not m.random_weights and m.name == "tiny"
    assert m.provenance["training_config"]["denoiser"]["preset"] == "tiny"  # engine.nn.presets.TINY_DENOISER
    assert m.components["denoiser"].config["depth"] == 3
    assert "name: tiny" in m.provenance["training_config_yaml"]
    assert m.provenance["data_report"]["clips"] == 8
    assert {"vae", "vocoder", "projection", "denoiser", "test"} <= set(m.metrics)
    assert m.components["vocoder"].type in ("vocos", "griffin-lim")
    assert m.onnx.get("graphs"), "the ONNX graphs were exported into the bundle"
    assert m.sampler_defaults["steps"] == 10


def test_foley_generate_loads_the_bundle(tiny_run: Path, synthetic_videos: Path, tmp_path: Path) -> None:
    video = sorted(synthetic_videos.glob("*.mp4"))[0]
    cmd = [sys.executable, "-m", "engine", "generate", str(video), "--start", "0.5", "--candidates", "2",
           "--steps", "4", "--bundle", str(tiny_run / "bundle"), "--out", str(tmp_path), "--quiet", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wavs = sorted(tmp_path.glob("*.wav"))
    assert len(wavs) == 2 and "RANDOM" not in proc.stderr


def test_the_torch_backend_generates_from_the_bundle_too(tiny_run: Path, synthetic_videos: Path) -> None:
    from engine import load_engine

    engine = load_engine(tiny_run / "bundle", backend="torch", threads=1)
    try:
        res = engine.generate(sorted(synthetic_videos.glob("*.mp4"))[1], 1.0, candidates=1, steps=3)
    finally:
        engine.close()
    wav = res.candidates[0].audio
    assert wav.shape == (131_072,) and np.all(np.isfinite(wav)) and np.abs(wav).max() > 0


def test_rerun_skips_finished_stages(tiny_run: Path, synthetic_videos: Path, train_root: Path) -> None:
    before = {p: p.stat().st_mtime for p in (tiny_run / "stages").rglob("*.safetensors")}
    proc = run_cmd(base_args(synthetic_videos, train_root, "tiny"))
    assert "bundle:" in proc.stdout
    log = (tiny_run / "train.log").read_text()
    for stage in ("vae", "vocoder", "projection", "denoiser", "export", "evaluate"):
        assert f"stage {stage}: done, skipped" in log
    assert before == {p: p.stat().st_mtime for p in (tiny_run / "stages").rglob("*.safetensors")}


def test_a_changed_config_is_refused_not_silently_reused(tiny_run: Path, synthetic_videos: Path,
                                                         train_root: Path) -> None:
    config_before = (tiny_run / "config.yaml").read_text()
    proc = run_cmd([*base_args(synthetic_videos, train_root, "tiny"), "--set", "vae.kl_weight=1e-5"], check=False)
    assert proc.returncode == 2
    assert "stage vae" in proc.stderr and "another config" in proc.stderr
    assert (tiny_run / "config.yaml").read_text() == config_before


def test_a_stale_export_is_redone_with_the_new_settings(tiny_run: Path, synthetic_videos: Path,
                                                        train_root: Path) -> None:
    """Export packages the trained stages: other settings (here the sampler steps and the vocoder choice, which is
    the export's, not the vocoder stage's) re-export instead of refusing or silently keeping the old bundle."""
    run = fork_run(tiny_run, "reexport", ("vae", "vocoder", "projection", "denoiser", "export"))
    shutil.copytree(tiny_run / "bundle", run / "bundle")
    before = load_manifest(run / "bundle")
    flip = "griffin-lim" if before.components["vocoder"].type != "griffin-lim" else "neural"
    args = [*base_args(synthetic_videos, train_root, "reexport"), "--stages", "export",
            "--set", f"export.sampler_steps={before.sampler_defaults['steps'] + 3}", "--set", f"vocoder.use={flip}"]
    run_cmd(args)
    assert "stage export: made from other models or settings" in (run / "train.log").read_text()
    after = load_manifest(run / "bundle")
    assert after.sampler_defaults["steps"] == before.sampler_defaults["steps"] + 3
    assert (after.components["vocoder"].type == "griffin-lim") == (flip == "griffin-lim")
    log_before = (run / "train.log").read_text()
    run_cmd(args)
    assert "stage export: done, skipped" in (run / "train.log").read_text()[len(log_before):]


@pytest.mark.parametrize("bad, words", [(["--set", "vae.loop.steps=x"], "expected an integer"),
                                        (["--stages", "vea"], "unknown stage")])
def test_bad_command_lines_fail_clearly(bad: list[str], words: str, tmp_path: Path) -> None:
    proc = run_cmd(["--config", "tiny", "--runs-dir", str(tmp_path), *bad], check=False)
    assert proc.returncode == 2 and words in proc.stderr


def test_the_evaluate_command_scores_a_bundle_with_its_controls(tiny_run: Path, synthetic_videos: Path,
                                                                 train_root: Path, tmp_path: Path) -> None:
    """`python -m training.evaluate BUNDLE --data DIR`, reusing the run's feature cache (no preprocessing)."""
    cmd = [sys.executable, "-m", "training.evaluate", str(tiny_run / "bundle"), "--data", str(synthetic_videos),
           "--config", "tiny", "--cache", str(train_root / "cache"), "--metrics", "onset,fad",
           "--controls", "shuffled", "--steps", "4", "--out", str(tmp_path / "eval"), "--no-progress",
           "--threads", "1"]
    proc = subprocess.run(cmd, cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["conditions"] == ["generated", "real", "shuffled"] and metrics["steps"] == 4
    assert metrics["bundle"]["name"] == "tiny" and metrics["split"] == "test"
    assert metrics["onset"]["real@0.1s"]["acc"] >= 0.8
    assert "| shuffled |" in proc.stdout
    assert not (tmp_path / "eval" / "cache").exists(), "the given cache was used"


@pytest.mark.parametrize("extra, words", [(["--metrics", "onset,nope"], "unknown metric"),
                                          (["--metrics", "mel"], "training.run")])
def test_the_evaluate_command_refuses_bad_requests(tiny_run: Path, synthetic_videos: Path, tmp_path: Path,
                                                   extra: list[str], words: str) -> None:
    cmd = [sys.executable, "-m", "training.evaluate", str(tiny_run / "bundle"), "--data", str(synthetic_videos),
           "--config", "tiny", "--out", str(tmp_path), *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr[-2000:]


def test_the_evaluate_command_names_a_missing_bundle(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "training.evaluate", str(tmp_path / "nothing"), "--data", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, env=training_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "error:" in proc.stderr and "nothing" in proc.stderr


def test_the_masking_ablation_trains_each_kind_on_the_base_runs_stages(tiny_run: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "training.ablation", "--base", str(tiny_run), "--kinds", "none,sam", "--steps", "3",
           "--batch-size", "2", "--max-clips", "1", "--eval-steps", "2", "--threads", "1", "--no-progress",
           "--set", "evaluate.candidates=2", "--out", str(tmp_path)]
    proc = subprocess.run(["nice", "-n", "10", *cmd], cwd=REPO, env=training_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((tmp_path / "ablation.json").read_text())
    assert [r["kind"] for r in result["rows"]] == ["none", "sam"]
    for r in result["rows"]:
        run = tiny_run.parent / f"tiny-mask-{r['kind']}"
        assert (run / "stages" / "vae").is_symlink(), "the base run's VAE is reused, not retrained"
        cfg = (run / "config.yaml").read_text()
        assert f"mask_kind: {r['kind']}" in cfg
        assert "candidates: 2" in cfg, "--set reaches every kind's config"
        assert r["clips"] == 1 and 0.0 <= r["alignment_acc"] <= 1.0 and r["val_eps_mse"] > 0
    assert "SAM (random tokens)" in (tmp_path / "ablation.md").read_text()
    assert "`evaluate.candidates=2`" in (tmp_path / "ablation.md").read_text()
    losses = (tiny_run.parent / "tiny-mask-none" / "stages" / "denoiser" / "losses.csv").read_text()
    assert "mse_masked" not in losses and "mse_masked" in (tiny_run / "stages" / "denoiser" / "losses.csv").read_text()


def test_the_ablation_uses_the_base_runs_feature_cache(tmp_path: Path) -> None:
    from training.ablation import base_cache_dir

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yaml").write_text("inherit: tiny\nname: base\n", encoding="utf-8")
    assert base_cache_dir(base) == base / "cache", "training.run's default cache folder"
    (base / "config.yaml").write_text(f"inherit: tiny\nname: base\ndata:\n  cache_dir: {tmp_path / 'shared'}\n",
                                      encoding="utf-8")
    assert base_cache_dir(base) == tmp_path / "shared", "a run that shared another run's cache"
