"""Engine helpers the editor needs: loudness measurement and normalisation (EBU R128, engine.loudness)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import measure_loudness, normalize_loudness

RATE = 16_000


def _noise(seconds: float, level: float, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def test_normalize_reaches_the_target() -> None:
    wav = _noise(5.0, 0.02)
    before = measure_loudness(wav, RATE)
    out, measured, gain_db = normalize_loudness(wav, RATE, -23.0, peak_ceiling_db=0.0)
    assert measured == pytest.approx(before)
    assert measure_loudness(out, RATE) == pytest.approx(-23.0, abs=0.1)
    assert gain_db == pytest.approx(-23.0 - before, abs=1e-6)
    assert out.dtype == np.float32 and out.shape == wav.shape


def test_gain_is_limited_by_the_peak_ceiling() -> None:
    wav = _noise(3.0, 0.01)
    wav[100] = 0.9  # one loud click: reaching -10 LUFS would clip it
    out, _, gain_db = normalize_loudness(wav, RATE, -10.0, peak_ceiling_db=-1.0)
    assert np.max(np.abs(out)) == pytest.approx(10 ** (-1 / 20), rel=1e-4)
    assert measure_loudness(out, RATE) < -10.0 and gain_db < 20 * np.log10(1 / 0.9)


@pytest.mark.parametrize("wav", [np.zeros(RATE * 2, np.float32), _noise(0.2, 0.1)])
def test_silence_and_very_short_audio_are_left_alone(wav: np.ndarray) -> None:
    out, measured, gain_db = normalize_loudness(wav, RATE, -16.0)
    assert measured == float("-inf") and gain_db == 0.0
    np.testing.assert_array_equal(out, wav)
