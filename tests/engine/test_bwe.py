"""The bandwidth extension's framing and resynthesis (engine.bwe) and its network (engine.nn.bwe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import bwe
from engine.nn.bwe import BandwidthNet


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


def test_the_onnx_graph_gives_what_torch_gives(tmp_path):
    from training.bwe import export_onnx

    torch.manual_seed(0)
    net = BandwidthNet()
    path = export_onnx(net, tmp_path / "bwe.onnx")
    x = np.stack([_take(8000), _take(8000, seed=1)])
    via_torch = bwe.extend(x, net.predictor())
    via_onnx = bwe.extend(x, bwe.onnx_predictor(str(path)))
    np.testing.assert_allclose(via_onnx, via_torch, atol=1e-4)
