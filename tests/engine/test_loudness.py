"""engine.loudness: BS.1770 integrated loudness in numpy, against pyloudnorm (the reference; not a runtime need)."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from engine.audio import measure_loudness, normalize_loudness
from engine.loudness import integrated_loudness, k_weight


def _signals(rate: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rate)
    t = np.arange(int(3.7 * rate)) / rate
    quiet_then_loud = np.concatenate([0.001 * rng.standard_normal(rate), 0.5 * rng.standard_normal(2 * rate)])
    bursts = np.where((t % 1.0) < 0.2, np.sin(2 * np.pi * 60 * t), 0.0) * 0.8  # gating at work: mostly silence
    return {
        "noise": 0.1 * rng.standard_normal(t.size),
        "tone 1 kHz": 0.5 * np.sin(2 * np.pi * 1000 * t),
        "tone 40 Hz": 0.5 * np.sin(2 * np.pi * 40 * t),  # where the high-pass acts
        "tone 10 kHz": 0.3 * np.sin(2 * np.pi * 10_000 * t) if rate > 20_000 else 0.3 * np.sin(2 * np.pi * 6000 * t),
        "quiet then loud": quiet_then_loud,
        "bursts": bursts,
        "stereo": np.stack([0.2 * rng.standard_normal(t.size), 0.05 * rng.standard_normal(t.size)], axis=1),
        "one block": 0.3 * rng.standard_normal(int(0.4 * rate) + 3),
    }


@pytest.mark.parametrize("rate", [16_000, 44_100, 48_000])
def test_agrees_with_pyloudnorm(rate: int) -> None:
    meter = pyloudnorm.Meter(rate)
    for name, x in _signals(rate).items():
        ref = meter.integrated_loudness(x)
        assert integrated_loudness(x, rate) == pytest.approx(ref, abs=1e-3), name


def test_the_filter_is_the_causal_k_weighting_of_pyloudnorm() -> None:
    rate = 48_000
    x = np.random.default_rng(0).standard_normal((rate, 1))
    y = x[:, 0]
    for stage in pyloudnorm.Meter(rate)._filters.values():  # scipy.signal.lfilter of each biquad, from rest
        y = stage.apply_filter(y)
    np.testing.assert_allclose(k_weight(x, rate)[:, 0], y, atol=1e-9)
    # a 997 Hz sine at -20 dBFS peak reads -23.0 LUFS +- 0.1 (EBU Tech 3341's reference: K-weighting's +0.691 dB)
    t = np.arange(10 * rate) / rate
    assert integrated_loudness(0.1 * np.sin(2 * np.pi * 997 * t), rate) == pytest.approx(-23.0, abs=0.1)


def test_silence_short_and_bad_shapes() -> None:
    assert integrated_loudness(np.zeros(16_000), 16_000) == float("-inf")
    with pytest.raises(ValueError, match="shorter than one"):
        integrated_loudness(np.ones(100), 16_000)
    with pytest.raises(ValueError, match="1..5 channels"):
        integrated_loudness(np.ones((16_000, 6)), 16_000)
    # the engine's wrappers keep their contract: -inf for silence or < 0.4 s, a gain towards the target
    assert measure_loudness(np.ones(100, np.float32), 16_000) == float("-inf")
    x = (0.05 * np.random.default_rng(1).standard_normal(48_000)).astype(np.float32)
    out, before, gain = normalize_loudness(x, 48_000, -23.0)
    assert measure_loudness(out, 48_000) == pytest.approx(-23.0, abs=0.01) and gain == pytest.approx(-23.0 - before)
