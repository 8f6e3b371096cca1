"""engine.resampling: numpy polyphase resampling with scipy's filter and alignment (scipy is the reference here; the
engine itself imports only scipy.fft)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from engine.resampling import lowpass_taps, resample

RATES = [(16_000, 48_000), (48_000, 16_000), (44_100, 48_000), (48_000, 44_100), (16_000, 44_100),
         (22_050, 16_000), (8_000, 48_000), (16_000, 16_001)]


@pytest.mark.parametrize(("rate_in", "rate_out"), RATES)
@pytest.mark.parametrize("n", [1, 2, 7, 100, 16_384 + 5])
def test_agrees_with_scipy_resample_poly(rate_in: int, rate_out: int, n: int) -> None:
    x = np.random.default_rng(n).standard_normal((2, 3, n)).astype(np.float32)
    g = np.gcd(rate_in, rate_out)
    ref = resample_poly(x, rate_out // g, rate_in // g, axis=-1)
    y = resample(x, rate_in, rate_out)
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=2e-6)


def test_the_filter_is_scipys_kaiser_design() -> None:
    from scipy.signal import firwin

    for up, down in ((3, 1), (1, 3), (160, 147)):
        mr = max(up, down)
        np.testing.assert_allclose(lowpass_taps(up, down), firwin(20 * mr + 1, 1 / mr, window=("kaiser", 5.0)) * up,
                                   rtol=1e-12, atol=1e-15)


def test_a_tone_keeps_its_time_and_level_and_images_are_removed() -> None:
    t = np.arange(16_000) / 16_000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    up = resample(tone, 16_000, 48_000)
    assert up.shape == (48_000,)
    t48 = np.arange(48_000) / 48_000
    mid = slice(1000, -1000)  # away from the edges' filter transients
    np.testing.assert_allclose(up[mid], np.sin(2 * np.pi * 1000 * t48)[mid], atol=2e-3)  # sample 0 stays at t = 0
    spec = np.abs(np.fft.rfft(up[mid] * np.hanning(up[mid].size)))
    freqs = np.fft.rfftfreq(up[mid].size, 1 / 48_000)
    assert spec[freqs > 8_500].max() < 1e-3 * spec.max()  # the images at 15 and 17 kHz are filtered out


def test_equal_rates_and_empty_input_and_bad_rates() -> None:
    x = np.ones((2, 5), np.float64)
    same = resample(x, 16_000, 16_000)
    assert same.dtype == np.float32 and np.array_equal(same, x)
    assert resample(np.zeros((3, 0), np.float32), 16_000, 48_000).shape == (3, 0)
    for bad in ((0, 16_000), (16_000, -1), (16_000.5, 48_000)):
        with pytest.raises(ValueError, match="positive whole numbers"):
            resample(x, *bad)
