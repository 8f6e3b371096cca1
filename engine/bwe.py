"""Bandwidth extension 16 kHz -> 48 kHz: the numpy front and back end around a small network (`engine.nn.bwe`).

The 16 kHz take is resampled to 48 kHz (polyphase: `engine.resampling`, scipy's `resample_poly` in numpy), which
keeps 0-8 kHz and leaves 8-24 kHz empty. Its STFT at 48 kHz (n_fft 1024, hop 256, periodic Hann, centred:
`engine.audio.stft`) gives the log magnitude of the bins below `CUTOFF_HZ`, from which the network predicts the log
magnitude of every bin above.
The phase of the new band comes from an excitation: the STFT of the full-wave rectified resampled signal, whose
harmonics reach the whole band and whose transients fall where the take's do (the classic non-linear excitation of
bandwidth extension; no iteration). The low band keeps the take's own complex STFT, with a linear cross-fade over
`FADE_BINS` bins at the cut-off, and the inverse STFT gives the 48 kHz waveform.

Written by hand: no registry library does bandwidth extension (audiosr and NU-Wave are hub-weight diffusion models).
Everything here is numpy; the network runs through a callable (the backend's `predict_high_band`: the bundle's
ONNX graph or its torch module), so this module imports neither.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine import audio
from engine.resampling import resample  # (..., n) float at one rate -> float32 at another: plain resampling

SR_LOW = 16_000
SR_HIGH = 48_000
N_FFT = 1024
HOP = 256
N_BINS = N_FFT // 2 + 1  # 513, 46.875 Hz apart
CUTOFF_HZ = 7_500.0  # the mel front end stops at 7.6 kHz: above this the 16 kHz take holds little of its own
LOW_BINS = round(CUTOFF_HZ / (SR_HIGH / N_FFT))  # 160: the network's input bins 0..159
HIGH_BINS = N_BINS - LOW_BINS  # 353: the bins it predicts
FADE_BINS = 8
LOG_FLOOR = float(np.log(1e-5))

#: (B, LOW_BINS, T) float32 log magnitudes -> (B, HIGH_BINS, T) float32 log magnitudes
Predictor = Callable[[np.ndarray], np.ndarray]


class BandwidthError(ValueError):
    """The audio given to the bandwidth extension is not 16 kHz mono; the message says what was given."""


def upsample(wav16: np.ndarray) -> np.ndarray:
    """(..., n) at 16 kHz -> (..., 3n) at 48 kHz: plain resampling."""
    return resample(wav16, SR_LOW, SR_HIGH)


def downsample(wav48: np.ndarray) -> np.ndarray:
    """(..., 3n) at 48 kHz -> (..., n) at 16 kHz, polyphase with its anti-alias filter."""
    return resample(wav48, SR_HIGH, SR_LOW)


def log_magnitude(spec: np.ndarray) -> np.ndarray:
    """Complex or magnitude STFT -> natural log of the magnitude, floored at 1e-5 (float32)."""
    return np.log(np.maximum(np.abs(spec), 1e-5)).astype(np.float32)


def analyse(wav48: np.ndarray) -> np.ndarray:
    """(B, n) at 48 kHz -> its complex STFT (B, N_BINS, 1 + n // HOP)."""
    return audio.stft(np.atleast_2d(wav48), n_fft=N_FFT, hop_length=HOP)


def network_input(spec48: np.ndarray) -> np.ndarray:
    """The network's input from a 48 kHz STFT: log magnitude of the bins below the cut-off, (B, LOW_BINS, T)."""
    return log_magnitude(spec48[:, :LOW_BINS])


def _fade() -> np.ndarray:
    """Weight of the predicted band per bin (N_BINS,): 0 below the cut-off, a ramp over FADE_BINS, then 1."""
    w = np.zeros(N_BINS, np.float32)
    w[LOW_BINS:] = 1.0
    w[LOW_BINS : LOW_BINS + FADE_BINS] = (np.arange(FADE_BINS, dtype=np.float32) + 1.0) / (FADE_BINS + 1.0)
    return w


def extend(wav16: np.ndarray, predict: Predictor) -> np.ndarray:
    """16 kHz takes (n,) or (B, n) -> 48 kHz (3n,) or (B, 3n) with the band above the cut-off predicted."""
    x = np.asarray(wav16, np.float32)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise BandwidthError(f"bandwidth extension takes 16 kHz mono audio (n,) or (B, n); got shape {x.shape}")
    single = x.ndim == 1
    up = upsample(np.atleast_2d(x))  # (B, 3n)
    spec = analyse(up)  # (B, F, T)
    high_log = np.asarray(predict(network_input(spec)), np.float32)  # (B, HIGH_BINS, T)
    if high_log.shape != (spec.shape[0], HIGH_BINS, spec.shape[2]):
        raise BandwidthError(f"the bandwidth network gave shape {high_log.shape}, expected "
                             f"{(spec.shape[0], HIGH_BINS, spec.shape[2])}")
    rectified = np.abs(up)
    excitation = analyse(rectified - rectified.mean(axis=-1, keepdims=True))
    phase = excitation / (np.abs(excitation) + 1e-12)
    mag = np.zeros(spec.shape, np.float32)
    mag[:, LOW_BINS:] = np.exp(np.minimum(high_log, 5.0))  # a cap: no prediction can blow up the output
    w = _fade()[None, :, None]
    out_spec = (1.0 - w) * spec + w * (mag * phase)
    out = audio.istft(out_spec.astype(np.complex64), n_fft=N_FFT, hop_length=HOP, length=up.shape[-1])
    return out[0] if single else out


def log_spectral_distance(ref48: np.ndarray, est48: np.ndarray, *, low_hz: float = 0.0,
                          active_db: float = -60.0) -> float:
    """Log-spectral distance (dB, lower is better) of two 48 kHz signals over the bins from `low_hz` up.

    sqrt of the mean over bins of (10 log10 P_ref - 10 log10 P_est)^2, averaged over the frames where the
    reference is within `active_db` of its loudest frame (silence says nothing about a band). Powers are floored
    at 1e-10 (-100 dB), so an empty band scores its level below the reference rather than infinity.
    """
    n = min(ref48.shape[-1], est48.shape[-1])
    a = np.abs(analyse(ref48[..., :n])[0]) ** 2
    b = np.abs(analyse(est48[..., :n])[0]) ** 2
    lo = round(low_hz / (SR_HIGH / N_FFT))
    energy = 10.0 * np.log10(a.sum(axis=0) + 1e-10)
    active = energy >= energy.max() - (-active_db)
    d = 10.0 * np.log10(a[lo:, active] + 1e-10) - 10.0 * np.log10(b[lo:, active] + 1e-10)
    return float(np.mean(np.sqrt(np.mean(d**2, axis=0))))
