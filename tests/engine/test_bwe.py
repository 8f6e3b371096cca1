"""The bandwidth extension's framing and resynthesis (engine.bwe) and its network (engine.nn.bwe)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engine import bwe
from engine.nn.bwe import BandwidthNet, BweConfig


def _take(n: int = 16_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16_000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)
    return bwe.downsample(bwe.upsample(x.astype(np.float32)))  # band-limited like a 16 kHz take


def test_extend_gives_48k_of_the_same_length_and_keeps_the_low_band():
    torch.manual_seed(0)
    predict = BandwidthNet().predictor()
    x = _take()
    y = bwe.extend(x, predict)
    assert y.shape == (3 * len(x),) and y.dtype == np.float32 and np.all(np.isfinite(y))
    batch = bwe.extend(np.stack([x, x[::-1].copy()]), predict)
    assert batch.shape == (2, 3 * len(x))
    np.testing.assert_allclose(batch[0], y, atol=1e-4)
    up = bwe.upsample(x)
    low = np.abs(bwe.analyse(up)[0, : bwe.LOW_BINS - 1])
    low_y = np.abs(bwe.analyse(y)[0, : bwe.LOW_BINS - 1])
    assert np.linalg.norm(low - low_y) / np.linalg.norm(low) < 0.05  # below the fade the take is untouched


def test_the_new_band_is_what_the_predictor_says():
    x = _take()
    quiet = bwe.extend(x, lambda low: np.full((low.shape[0], bwe.HIGH_BINS, low.shape[2]), -30.0, np.float32))
    loud = bwe.extend(x, lambda low: np.full((low.shape[0], bwe.HIGH_BINS, low.shape[2]), -3.0, np.float32))
    band = slice(bwe.LOW_BINS + 2 * bwe.FADE_BINS + 8, None)  # clear of the fade and of the window's leakage
    e_quiet = np.mean(np.abs(bwe.analyse(quiet)[0, band]) ** 2)
    e_loud = np.mean(np.abs(bwe.analyse(loud)[0, band]) ** 2)
    assert e_quiet < 1e-8 < 1e-3 < e_loud


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 10), np.float32), np.zeros(0, np.float32)])
def test_bad_shapes_are_a_typed_error(bad):
    with pytest.raises(bwe.BandwidthError, match="16 kHz mono"):
        bwe.extend(bad, BandwidthNet().predictor())


def test_lsd_counts_an_empty_band_and_not_silence():
    rng = np.random.default_rng(1)
    full = rng.standard_normal(48_000).astype(np.float32) * 0.1
    assert bwe.log_spectral_distance(full, full) == pytest.approx(0.0, abs=1e-6)
    limited = bwe.upsample(bwe.downsample(full))
    assert bwe.log_spectral_distance(full, limited, low_hz=8000) > 20.0  # ~-100 dB where there was noise
    quiet = np.concatenate([full, np.zeros(48_000, np.float32)])
    assert bwe.log_spectral_distance(quiet, quiet * 0.5) == pytest.approx(20 * np.log10(2), abs=0.05)


def test_a_short_training_beats_resampling_on_the_high_band():
    """The training path of training.bwe on a signal whose high band follows its low band: it must learn it."""
    from training import bwe as tbwe

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 48_000 * 4
    t = np.arange(n) / 48_000
    env = np.repeat(rng.uniform(0.05, 1.0, n // 4800), 4800)  # level steps every 0.1 s
    x48 = (env * sum(np.sin(2 * np.pi * 300 * k * t) / k for k in range(1, 60))).astype(np.float32) * 0.1
    low, target = tbwe.features(x48)
    net = BandwidthNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lo_t, tg_t = torch.from_numpy(low)[None], torch.from_numpy(target)[None]
    for _ in range(60):
        loss = (net(lo_t) - tg_t).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x16 = bwe.downsample(x48)
    resampled = bwe.log_spectral_distance(x48, bwe.upsample(x16), low_hz=8000)
    extended = bwe.log_spectral_distance(x48, bwe.extend(x16, net.predictor()), low_hz=8000)
    assert extended < 0.5 * resampled, (extended, resampled)


@pytest.fixture(scope="module")
def bwe_bundle(onnx_bundle, tmp_path_factory):
    """The tiny ONNX bundle (random weights, tests only) with a seeded random extension added, graph and all."""
    import shutil

    from engine.nn.bundle import add_component

    dst = tmp_path_factory.mktemp("bundles") / "tiny_bwe"
    shutil.copytree(onnx_bundle, dst)
    torch.manual_seed(0)
    manifest = add_component(dst, "bwe", BandwidthNet(BweConfig(channels=16)))
    assert manifest.components["bwe"].type == "bwe-conv1d" and "bwe" in manifest.onnx["graphs"]
    assert manifest.onnx["graphs"]["bwe"]["parity"]["max_abs_diff"] <= 1e-3
    return dst


def test_both_backends_run_the_extension_alike(bwe_bundle):
    from engine import load_engine

    x = np.stack([_take(8000), _take(8000, seed=1)])
    outs = {}
    for backend in ("onnx", "torch"):
        eng = load_engine(bwe_bundle, backend=backend)
        assert eng.has_bwe and eng.default_output_rate == 48_000 and eng.output_rates == (16_000, 48_000)
        assert eng.describe().bwe == "bwe-conv1d"
        outs[backend], stage = eng.to_output_rate(x, 48_000)
        assert stage == "bwe-conv1d" and outs[backend].shape == (2, 24_000)
        eng.close()
    np.testing.assert_allclose(outs["onnx"], outs["torch"], atol=1e-4)


def test_generate_at_48k_and_at_16k(bwe_bundle, video_12s):
    from engine import load_engine

    eng = load_engine(bwe_bundle, backend="onnx")
    seen = []
    hi = eng.generate(video_12s, 1.0, candidates=2, steps=2, on_progress=lambda p: seen.append(p))
    assert hi.sample_rate == 48_000 and not hi.warnings
    for c in hi.candidates:
        assert c.sample_rate == 48_000 and c.audio.shape == (3 * eng.spec.num_samples,)
        assert np.max(np.abs(c.audio)) <= 1.0 and np.all(np.isfinite(c.audio))
        assert (c.settings["sample_rate"], c.settings["generated_rate"], c.settings["rate_stage"]) == (
            48_000, 16_000, "bwe-conv1d")
    assert "extend" in hi.timings and seen[-1].stage == "extend" and seen[-1].fraction == pytest.approx(1.0)
    assert all(b.fraction >= a.fraction for a, b in itertools.pairwise(seen))
    lo = eng.generate(video_12s, 1.0, candidates=2, steps=2, sample_rate=16_000)
    assert lo.sample_rate == 16_000 and lo.candidates[0].audio.shape == (eng.spec.num_samples,)
    assert lo.candidates[0].settings["rate_stage"] == "none"
    # the 48 kHz take is the 16 kHz one below the cut-off (same seed, same initial noise)
    down = bwe.downsample(hi.candidates[0].audio)
    ref = lo.candidates[0].audio
    gain = 10 ** ((lo.candidates[0].settings["peak_gain_db"] - hi.candidates[0].settings["peak_gain_db"]) / 20)
    assert np.corrcoef(down * gain, ref)[0, 1] > 0.9
    eng.close()


def test_rates_without_an_extension_and_bad_rates(onnx_bundle, video_12s):
    from engine import load_engine
    from engine.errors import InvalidRequestError

    eng = load_engine(onnx_bundle, backend="onnx")
    assert not eng.has_bwe and eng.default_output_rate == 16_000  # as generated: nothing is added unasked
    res = eng.generate(video_12s, 0.0, candidates=1, steps=2, sample_rate=48_000)
    c = res.candidates[0]
    assert c.sample_rate == 48_000 and c.settings["rate_stage"] == "resample"
    assert any("no bandwidth extension" in w for w in res.warnings)
    for bad in (44_100, 0, 48_000.5, "48000", True):
        with pytest.raises(InvalidRequestError, match="sample_rate"):
            eng.generate(video_12s, 0.0, candidates=1, steps=2, sample_rate=bad)
    eng.close()


def test_cli_writes_48k_takes_with_their_sidecar_and_mux(bwe_bundle, video_12s, tmp_path, capsys):
    import json

    import av
    import soundfile as sf

    from engine.cli import main

    out = tmp_path / "out"
    assert main(["generate", str(video_12s), "--start", "1", "-n", "1", "--steps", "2", "--bundle", str(bwe_bundle),
                 "--out", str(out), "--mux", str(tmp_path / "m.mp4"), "-q"]) == 0
    wav = next(out.glob("*.wav"))
    info = sf.info(str(wav))
    side = json.loads(wav.with_suffix(".json").read_text())
    assert info.samplerate == 48_000 and side["sample_rate"] == 48_000 and side["rate_stage"] == "bwe-conv1d"
    assert side["num_samples"] == info.frames
    with av.open(str(tmp_path / "m.mp4")) as f:
        assert f.streams.audio[0].rate == 48_000
    assert main(["generate", str(video_12s), "-n", "1", "--steps", "2", "--bundle", str(bwe_bundle), "--out",
                 str(tmp_path / "lo"), "--sample-rate", "16000", "-q"]) == 0
    side = json.loads(next((tmp_path / "lo").glob("*.json")).read_text())
    assert side["sample_rate"] == 16_000 and side["rate_stage"] == "none"
    capsys.readouterr()
    assert main(["info", str(bwe_bundle)]) == 0
    assert "48000 Hz through the bandwidth extension (bwe-conv1d)" in capsys.readouterr().out
