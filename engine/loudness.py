"""Integrated loudness (ITU-R BS.1770-4 / EBU R128) in numpy: K-weighting, 400 ms blocks at 75 % overlap, the
absolute (-70 LUFS) and relative (-10 LU) gates. Agrees with pyloudnorm's `Meter.integrated_loudness` (the reference
in `tests/engine/test_loudness.py`) to 0.001 LU.

Written here rather than imported because pyloudnorm filters with `scipy.signal.lfilter`, and scipy.signal pulls
scipy's linear algebra, sparse, optimisation and statistics packages into the frozen app (about 34 MB,
`packaging/README.md`) for two biquads. Loudness is a mean square, so only the filters' magnitude matters: they
are applied in the frequency domain (their exact response on the FFT grid of the signal padded by a second, long
after the 38 Hz high-pass's impulse response has died out), which is also faster than a sample loop. The K-weighting
biquads are the ones pyloudnorm designs at any rate (a +4 dB high shelf at 1500 Hz, Q 1/sqrt(2), and a high-pass at
38 Hz, Q 0.5, by the bilinear transform of the Audio EQ Cookbook's prototypes).
"""

from __future__ import annotations

import math

import numpy as np

BLOCK_S = 0.4  # gating block
OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs
_PAD_S = 1.0  # zeros after the signal before the FFT: the filters' tails fit, nothing wraps around


def _high_shelf(rate: int, gain_db: float = 4.0, fc: float = 1500.0, q: float = 1 / math.sqrt(2)
                ) -> tuple[np.ndarray, np.ndarray]:
    a_ = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    alpha, cw, sa = math.sin(w0) / (2.0 * q), math.cos(w0), 2.0 * math.sqrt(a_)
    b = np.array([a_ * ((a_ + 1) + (a_ - 1) * cw + sa * alpha), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
                  a_ * ((a_ + 1) + (a_ - 1) * cw - sa * alpha)])
    a = np.array([(a_ + 1) - (a_ - 1) * cw + sa * alpha, 2 * ((a_ - 1) - (a_ + 1) * cw),
                  (a_ + 1) - (a_ - 1) * cw - sa * alpha])
    return b / a[0], a / a[0]


def _high_pass(rate: int, fc: float = 38.0, q: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    w0 = 2.0 * math.pi * fc / rate
    alpha, cw = math.sin(w0) / (2.0 * q), math.cos(w0)
    b = np.array([(1 + cw) / 2, -(1 + cw), (1 + cw) / 2])
    a = np.array([1 + alpha, -2 * cw, 1 - alpha])
    return b / a[0], a / a[0]


def k_weighting_response(rate: int, n_fft: int) -> np.ndarray:
    """(n_fft // 2 + 1,) complex: the K-weighting filter's response at the rfft bins of `n_fft` samples."""
    z = np.exp(-1j * 2.0 * np.pi * np.fft.rfftfreq(n_fft))  # z^-1 on the unit circle
    h = np.ones_like(z)
    for b, a in (_high_shelf(rate), _high_pass(rate)):
        h *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return h


def k_weight(data: np.ndarray, rate: int) -> np.ndarray:
    """(n, channels) float64 -> the same K-weighted (causal, as the IIR filters run from rest)."""
    n = data.shape[0]
    n_fft = 1 << math.ceil(math.log2(n + int(_PAD_S * rate)))
    spec = np.fft.rfft(data, n=n_fft, axis=0) * k_weighting_response(rate, n_fft)[:, None]
    return np.fft.irfft(spec, n=n_fft, axis=0)[:n]


def integrated_loudness(data: np.ndarray, rate: int) -> float:
    """Integrated loudness in LUFS of (n,) or (n, channels <= 5) audio of at least one block; -inf when every block
    is below the absolute gate (silence)."""
    x = np.asarray(data, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or not 1 <= x.shape[1] <= len(CHANNEL_GAINS):
        raise ValueError(f"audio must be (samples,) or (samples, 1..5 channels), got shape {np.shape(data)}")
    n = x.shape[0]
    if n < BLOCK_S * rate:
        raise ValueError(f"audio of {n / rate:.3f} s is shorter than one {BLOCK_S} s gating block")
    y = k_weight(x, rate)
    step = 1.0 - OVERLAP
    blocks = round((n / rate - BLOCK_S) / (BLOCK_S * step)) + 1  # half to even, as np.round
    j = np.arange(blocks)
    lo = (BLOCK_S * (j * step) * rate).astype(np.int64)  # the bounds as BS.1770's eq. 3 (and pyloudnorm) round them
    hi = (BLOCK_S * (j * step + 1) * rate).astype(np.int64)
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(y * y, axis=0)])  # (n + 1, ch)
    z = (csum[np.minimum(hi, n)] - csum[lo]) / (BLOCK_S * rate)  # (blocks, ch): each block's mean square
    g = np.asarray(CHANNEL_GAINS[: x.shape[1]])
    power = z @ g  # (blocks,)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(power)
    above = block_lufs >= ABSOLUTE_GATE_LUFS
    if not np.any(above):
        return float("-inf")
    relative = -0.691 + 10.0 * np.log10(power[above].mean()) + RELATIVE_GATE_LU
    gated = (block_lufs > relative) & (block_lufs > ABSOLUTE_GATE_LUFS)
    if not np.any(gated):
        return float("-inf")
    return float(-0.691 + 10.0 * np.log10(z[gated].mean(axis=0) @ g))
