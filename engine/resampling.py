"""Polyphase resampling in numpy: the same filter and output alignment as `scipy.signal.resample_poly` (its default
Kaiser window, beta 5, zero padding), so sample 0 stays at time 0 and the result agrees with scipy's to float32
rounding (`tests/engine/test_resample.py`).

Written here rather than imported because `scipy.signal` pulls in scipy's linear algebra, optimisation, sparse and
statistics packages and their OpenBLAS (about 60 MB of the frozen app, `packaging/README.md`) for one function; the
engine keeps only `scipy.fft`. The filter is scipy's design: a windowed-sinc low-pass of 2 * 10 * max(up, down) + 1
taps at the lower Nyquist frequency, times `up`.
"""

from __future__ import annotations

import math

import numpy as np


def lowpass_taps(up: int, down: int) -> np.ndarray:
    """float64 (2 * 10 * max(up, down) + 1,): the anti-alias / anti-image filter of a up/down resampling, gain `up`
    (scipy's `firwin(numtaps, 1 / max_rate, window=("kaiser", 5.0)) * up`)."""
    max_rate = max(up, down)
    numtaps = 2 * 10 * max_rate + 1
    cutoff = 1.0 / max_rate
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, 5.0)
    return h / h.sum() * up  # unit gain at 0 Hz before the interpolation gain


def _upfirdn_len(taps: int, n_in: int, up: int, down: int) -> int:
    """Output length of zero-stuffing n_in samples by `up`, filtering with `taps` taps and keeping every `down`-th."""
    return -(-((n_in - 1) * up + taps) // down)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """(..., n) float at `rate_in` -> (..., ceil(n * rate_out / rate_in)) float32 at `rate_out`, along the last axis.

    Rates are positive integers (Hz); equal rates return the input as float32."""
    if rate_in <= 0 or rate_out <= 0 or int(rate_in) != rate_in or int(rate_out) != rate_out:
        raise ValueError(f"sample rates must be positive whole numbers, got {rate_in!r} -> {rate_out!r}")
    x = np.asarray(x)
    if rate_in == rate_out or x.shape[-1] == 0:
        return x.astype(np.float32, copy=rate_in == rate_out)
    g = math.gcd(int(rate_in), int(rate_out))
    up, down = int(rate_out) // g, int(rate_in) // g
    n_in = x.shape[-1]
    n_out = -(-n_in * up // down)
    half_len = 10 * max(up, down)
    h = lowpass_taps(up, down)
    # put the output samples at the filter's centre (scipy's alignment): pre-pad the filter, drop the delay
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    n_post_pad = 0
    while _upfirdn_len(len(h) + n_pre_pad + n_post_pad, n_in, up, down) < n_out + n_pre_remove:
        n_post_pad += 1
    h = np.concatenate([np.zeros(n_pre_pad), h, np.zeros(n_post_pad)])
    # polyphase: output k of the filtered, zero-stuffed signal is sum_j phase[p][j] * x[m - j], p = (k * down) % up,
    # m = (k * down) // up, phase[p] = h[p::up] (zero-padded to a common length q)
    q = -(-len(h) // up)
    phases = np.zeros((up, q))
    for p in range(up):
        tap = h[p::up]
        phases[p, : len(tap)] = tap
    phases = phases[:, ::-1]  # so that a window x[m - q + 1 .. m] meets the taps in order
    lead = x.shape[:-1]
    rows = x.reshape(-1, n_in).astype(np.float64)
    m_last = (n_pre_remove + n_out - 1) * down // up
    padded = np.pad(rows, ((0, 0), (q - 1, max(0, m_last + 1 - n_in))))  # x[i] = padded[:, i + q - 1]
    if up <= 64:
        out = _by_phase(padded, phases, n_pre_remove, n_out, up, down)
    else:  # many phases of few outputs each (e.g. 147 -> 160): gather the windows of a block of outputs at once
        out = _by_gather(padded, phases, n_pre_remove, n_out, up, down)
    return out.astype(np.float32).reshape(*lead, n_out)


def _by_phase(padded: np.ndarray, phases: np.ndarray, first: int, n_out: int, up: int, down: int) -> np.ndarray:
    """Outputs first + i, first + i + up, ... share one phase and step through the input by `down`: one strided
    multiply-add per tap and phase (no copies of the input windows)."""
    out = np.empty((padded.shape[0], n_out))
    for i in range(min(up, n_out)):
        k = first + i
        p, m = (k * down) % up, (k * down) // up
        count = len(range(i, n_out, up))
        acc = np.zeros((padded.shape[0], count))
        for t, tap in enumerate(phases[p]):
            if tap != 0.0:
                acc += tap * padded[:, m + t : m + t + (count - 1) * down + 1 : down]
        out[:, i::up] = acc
    return out


def _by_gather(padded: np.ndarray, phases: np.ndarray, first: int, n_out: int, up: int, down: int,
               block: int = 1 << 14) -> np.ndarray:
    """Each output's window of the input and its phase's taps, gathered `block` outputs at a time."""
    q = phases.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(padded, q, axis=-1)  # (rows, positions, q)
    out = np.empty((padded.shape[0], n_out))
    for s in range(0, n_out, block):
        pos = np.arange(first + s, first + min(n_out, s + block), dtype=np.int64) * down
        out[:, s : s + len(pos)] = np.einsum("rkq,kq->rk", windows[:, pos // up, :], phases[pos % up])
    return out
