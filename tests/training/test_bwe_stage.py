"""Stage "bwe" of training.run: full-band recordings found and split, the extension trained, exported, loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _train_helpers import base_args, fork_run, run_cmd

from training.bwe import folder_recordings


@pytest.fixture(scope="module")
def fullband(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 2 s recordings whose high band follows their low band (harmonics to 20 kHz), 48 and 44.1 kHz, and one
    16 kHz file that has no high band to learn from."""
    folder = tmp_path_factory.mktemp("fullband")
    (folder / "sub").mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        sr = 48_000 if i % 2 else 44_100
        t = np.arange(2 * sr) / sr
        f0 = rng.uniform(150, 600)
        env = np.repeat(rng.uniform(0.05, 1.0, 20), len(t) // 20 + 1)[: len(t)]
        x = env * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, int(20_000 / f0)))
        path = folder / "sub" / f"rec{i:02d}.wav" if i > 5 else folder / f"rec{i:02d}.flac"  # folders are searched
        sf.write(path, (0.1 * x).astype(np.float32), sr)
    sf.write(folder / "narrow.wav", np.zeros(16_000, np.float32), 16_000)
    return folder


def test_folder_recordings_keep_full_band_files_and_split_them_stably(fullband: Path) -> None:
    a = folder_recordings([fullband], val_frac=0.3, test_frac=0.3, seed=0)
    names = sorted(p.name for v in a.values() for p in v)
    assert len(names) == 12 and "narrow.wav" not in names
    assert all(a[k] for k in ("train", "val", "test"))
    assert folder_recordings([fullband], val_frac=0.3, test_frac=0.3, seed=0) == a
    assert folder_recordings([fullband], val_frac=0.3, test_frac=0.3, seed=1) != a
    assert sum(map(len, folder_recordings([fullband], min_rate=48_000).values())) == 6


def test_the_tiny_run_skips_the_stage_without_full_band_audio(tiny_run: Path) -> None:
    done = json.loads((tiny_run / "stages" / "bwe" / "done.json").read_text())
    assert "no full-band" in done["skipped"]
    manifest = json.loads((tiny_run / "bundle" / "manifest.json").read_text())
    assert "bwe" not in manifest["components"]


def test_the_stage_trains_exports_and_the_bundle_delivers_48k(tiny_run: Path, synthetic_videos: Path,
                                                              train_root: Path, fullband: Path) -> None:
    from engine import load_engine

    run = fork_run(tiny_run, "bwe", ("vae", "vocoder", "projection", "denoiser", "detector"))
    run_cmd([*base_args(synthetic_videos, train_root, "bwe"), "--stages", "bwe,export",
             "--set", f"bwe.recordings={json.dumps([str(fullband)])}", "--set", "bwe.steps=40",
             "--set", "bwe.channels=16", "--set", "bwe.val_every=20"])
    done = json.loads((run / "stages" / "bwe" / "done.json").read_text())
    assert done["steps"] == 40 and sum(done["recordings"].values()) == 12
    lsd = done["metrics"]["val_lsd"]
    if lsd:  # the seeded split may leave no val recording; then there is nothing to measure
        assert lsd["extended"]["lsd_8k_24k_db"] < lsd["resampled"]["lsd_8k_24k_db"]
    manifest = json.loads((run / "bundle" / "manifest.json").read_text())
    assert manifest["components"]["bwe"]["type"] == "bwe-conv1d" and "bwe" in manifest["onnx"]["graphs"]
    assert "bwe" in manifest["metrics"]
    eng = load_engine(run / "bundle")
    assert eng.has_bwe and eng.default_output_rate == 48_000
    eng.close()
    # a second run of the same command finds the stage done and does not train again
    proc = run_cmd([*base_args(synthetic_videos, train_root, "bwe"), "--stages", "bwe",
                    "--set", f"bwe.recordings={json.dumps([str(fullband)])}", "--set", "bwe.steps=40",
                    "--set", "bwe.channels=16", "--set", "bwe.val_every=20"])
    assert "stage bwe: done, skipped" in proc.stdout + proc.stderr


def test_the_griffin_lim_input_is_the_recording_as_the_engine_vocodes_it() -> None:
    from engine import bwe
    from training.bwe import features, features_of, input_16k

    rng = np.random.default_rng(0)
    t = np.arange(3 * 48_000) / 48_000
    x48 = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    real, gl = input_16k(x48, "real"), input_16k(x48, "griffin-lim")
    assert real.shape == gl.shape == (48_000,)
    assert 0.3 < np.sqrt(np.mean(gl**2)) / np.sqrt(np.mean(real**2)) < 3.0  # the same level, another waveform
    spec_g = np.abs(bwe.analyse(bwe.upsample(gl))[0])
    peak = round(440 / (48_000 / bwe.N_FFT))
    assert spec_g[peak - 1 : peak + 2].mean() > 10 * spec_g[bwe.LOW_BINS // 2 :].mean()  # the tone survives
    assert np.abs(gl - real).mean() > 1e-3  # not the real input under another name
    low, target = features_of(x48, ("real", "griffin-lim"))
    one_low, one_target = features(x48)
    assert low.shape[1] == 2 * one_low.shape[1] and target.shape[1] == 2 * one_target.shape[1]
    np.testing.assert_array_equal(target[:, : one_target.shape[1]], target[:, one_target.shape[1] :])
    with pytest.raises(ValueError, match="input must be one of"):
        input_16k(x48, "vocos")
