"""Audio front-end in numpy + scipy: waveform <-> mel image, Griffin-Lim, level helpers.

Shared by the engine (decoding, Griffin-Lim vocoder), training (feature cache) and the app (spectrogram view).
Two mel conventions, chosen by `SegmentSpec.mel_kind`:

- "diff-foley" (Diff-Foley / the MDSGen paper): |STFT| (n_fft 1024, hop 256, Hann, centred, reflect pad),
  128 Slaney mel bands 125-7600 Hz with Slaney area normalisation, then clamp 1e-5, 20*log10, -20 dB,
  (x + 100) / 100 and clip to [0, 1], i.e. [-80, +20] dB -> [0, 1].
- "audioldm" (the public MDSGen release): |STFT| (hop 160), 64 Slaney bands 0-8000 Hz, natural log of the
  mel clamped at 1e-5 (TacotronSTFT's dynamic-range compression).

`wav_to_mel` returns (n_mels, mel_frames) for either; `to_mel_image` / `from_mel_image` put it in the layout the
VAE sees (time on the column axis for Diff-Foley, on the row axis for AudioLDM).

The mel filterbank and the magnitude STFT are librosa's (`librosa.filters.mel`, `librosa.stft`) computed the same
way in numpy, bit for bit (tests/engine/test_audio.py compares them): librosa imports numba and llvmlite (1-3 s in
a new process, 200 MB in a frozen build) for two functions of a few lines.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from engine.spec import SegmentSpec

_MIN_AMP = 1e-5


_SLANEY_F_SP = 200.0 / 3  # Hz per mel below 1 kHz (Slaney's Auditory Toolbox, librosa's htk=False)
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    f = np.asarray(hz, np.float64)
    log_part = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(f, _SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(f >= _SLANEY_MIN_LOG_HZ, log_part, f / _SLANEY_F_SP)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    m = np.asarray(mel, np.float64)
    log_part = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (np.maximum(m, _SLANEY_MIN_LOG_MEL) - _SLANEY_MIN_LOG_MEL))
    return np.where(m >= _SLANEY_MIN_LOG_MEL, log_part, _SLANEY_F_SP * m)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangles on the Slaney mel scale with Slaney area normalisation: librosa's
    `filters.mel` defaults, same operations in the same precisions (float64 triangles stored as float32, then
    scaled)."""
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))  # band edges and centres, Hz
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


def mel_basis(spec: SegmentSpec) -> np.ndarray:
    """The (n_mels, n_fft/2+1) mel filterbank of `spec`."""
    return _mel_basis(spec.sample_rate, spec.n_fft, spec.n_mels, spec.fmin, spec.fmax)


@functools.lru_cache(maxsize=8)
def _mel_pinv(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    return np.linalg.pinv(_mel_basis(sample_rate, n_fft, n_mels, fmin, fmax).astype(np.float64)).astype(np.float32)


def mel_to_magnitude(mel_linear: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """Linear-magnitude mel (..., n_mels, frames) -> a non-negative |STFT| (..., n_fft/2+1, frames).

    The filterbank's non-negative least-squares inverse as librosa's `mel_to_stft` computes it: its L-BFGS-B starts
    from the clipped pseudo-inverse and, on our mels, stops there (relative difference 2e-7, measured on two real
    validation segments; tests/engine/test_audio.py checks < 1e-4 on a synthetic one), but takes 0.7-2.4 s per 8 s
    segment on one core, ten times Griffin-Lim's own 32 iterations. So the pseudo-inverse is computed once per spec
    and clipped here.
    """
    pinv = _mel_pinv(spec.sample_rate, spec.n_fft, spec.n_mels, spec.fmin, spec.fmax)  # (F, n_mels)
    return np.maximum(np.einsum("fm,...mt->...ft", pinv, np.asarray(mel_linear, np.float32), optimize=True), 0.0)


def fit_length(wav: np.ndarray, num_samples: int) -> np.ndarray:
    """Zero-pad or cut the last axis to `num_samples`."""
    n = wav.shape[-1]
    if n == num_samples:
        return wav
    if n > num_samples:
        return wav[..., :num_samples]
    pad = [(0, 0)] * (wav.ndim - 1) + [(0, num_samples - n)]
    return np.pad(wav, pad)


@functools.lru_cache(maxsize=8)
def _stft_window(n_fft: int, win_length: int) -> np.ndarray:
    """float64 periodic Hann of `win_length` centred in `n_fft` (librosa's `get_window` + `pad_center`): the values of
    `scipy.signal.get_window("hann", win_length)` (a symmetric window of win_length + 1 from -pi to pi, last point
    dropped), computed as scipy does so that the mel stays bit-exact; scipy.signal itself stays out of the engine."""
    fac = np.linspace(-np.pi, np.pi, win_length + 1)
    window = (np.zeros(win_length + 1) + 0.5 + 0.5 * np.cos(fac))[:-1]
    left = (n_fft - win_length) // 2
    return np.pad(window, (left, n_fft - win_length - left))


_STFT_BLOCK_FRAMES = 2048  # frames per FFT call: bounds the float64 frame copies to 16 MB on any length


def stft_magnitude(wav: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """|STFT| of (..., n) -> (..., n_fft/2+1, frames), centred with reflect padding (librosa convention).

    librosa.stft's arithmetic: float32 samples times a float64 window, a float64 FFT, rounded to complex64."""
    x = np.ascontiguousarray(wav, dtype=np.float32)
    pad = spec.n_fft // 2
    x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, spec.n_fft, axis=-1)[..., :: spec.hop_length, :]
    window = _stft_window(spec.n_fft, spec.win_length)
    out = np.empty((*frames.shape[:-1], spec.n_fft // 2 + 1), np.float32)  # (..., frames, F)
    for i in range(0, frames.shape[-2], _STFT_BLOCK_FRAMES):
        block = np.fft.rfft(frames[..., i : i + _STFT_BLOCK_FRAMES, :] * window, axis=-1)
        out[..., i : i + _STFT_BLOCK_FRAMES, :] = np.abs(block.astype(np.complex64))
    return np.swapaxes(out, -1, -2)


def linear_mel(wav: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """Magnitude mel of (..., n) -> (..., n_mels, frames), no log, all frames of the centred STFT."""
    return np.einsum("mf,...ft->...mt", mel_basis(spec), stft_magnitude(wav, spec), optimize=True)


def compress(mel_linear: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """Linear magnitude mel -> the model's normalised mel (see the module docstring)."""
    m = np.maximum(mel_linear, _MIN_AMP)
    if spec.mel_kind == "audioldm":
        return np.log(m).astype(np.float32)
    db = 20.0 * np.log10(m) - 20.0
    return np.clip((db + 100.0) / 100.0, 0.0, 1.0).astype(np.float32)


def decompress(mel: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """Inverse of `compress` (up to its clipping): normalised mel -> linear magnitude mel."""
    if spec.mel_kind == "audioldm":
        return np.exp(mel).astype(np.float32)
    db = mel.astype(np.float64) * 100.0 - 100.0
    return np.power(10.0, (db + 20.0) / 20.0).astype(np.float32)


def wav_to_mel(wav: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """A segment's waveform (..., n) -> normalised mel (..., n_mels, spec.mel_frames).

    The waveform is padded or cut to `spec.num_samples` first; the centred STFT's last frame is dropped, so
    131072 samples give exactly 512 frames.
    """
    wav = fit_length(np.asarray(wav, dtype=np.float32), spec.num_samples)
    return compress(linear_mel(wav, spec)[..., : spec.mel_frames], spec)


def mel_spectrogram(wav: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """Normalised mel of a waveform of any length (..., n) -> (..., n_mels, n // hop + 1), for display and analysis."""
    return compress(linear_mel(np.asarray(wav, dtype=np.float32), spec), spec)


def to_mel_image(mel: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """(..., n_mels, frames) -> the VAE's (..., H, W) layout (`spec.mel_image_shape`)."""
    return mel if spec.time_axis == "col" else np.swapaxes(mel, -1, -2)


def from_mel_image(image: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """The VAE's (..., H, W) layout -> (..., n_mels, frames)."""
    return image if spec.time_axis == "col" else np.swapaxes(image, -1, -2)


def griffin_lim(mel: np.ndarray, spec: SegmentSpec, *, n_iter: int = 32, seed: int = 0,
                momentum: float = 0.99) -> np.ndarray:
    """Normalised mel (n_mels, frames) -> waveform (spec.num_samples,) float32, as Diff-Foley decodes.

    Mel inverse by non-negative least squares (`mel_to_magnitude`), then the fast Griffin-Lim of Perraudin et al.
    (librosa's algorithm: momentum 0.99, a seeded random initial phase so that results are reproducible) on this
    module's STFT pair. librosa's `griffinlim` computes the same but its inverse STFT is numba code that compiles
    or loads for 1.7-14 s in every new process (measured: 14.6 s in a fresh install's first generation). The STFT
    pair runs on scipy's FFT (numpy 2's float32 rfft was several times slower on these frames), which releases the
    GIL, so `FoleyEngine.mel_to_audio` runs several takes in threads.
    """
    mel = np.asarray(mel)
    # the centred STFT of num_samples has mel_frames + 1 frames; repeat the last one that wav_to_mel dropped
    mel = np.concatenate([mel, mel[..., -1:]], axis=-1)
    mag = mel_to_magnitude(decompress(mel, spec), spec)  # (F, T)
    return griffin_lim_magnitude(mag, spec, n_iter=n_iter, seed=seed, momentum=momentum)


def griffin_lim_magnitude(magnitude: np.ndarray, spec: SegmentSpec, *, n_iter: int = 32, seed: int = 0,
                          momentum: float = 0.99) -> np.ndarray:
    """|STFT| (n_fft/2+1, mel_frames + 1) -> waveform (spec.num_samples,): `griffin_lim`'s phase retrieval alone."""
    mag = np.asarray(magnitude, np.float32)[None]  # (1, F, T)
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(mag.shape)).astype(np.complex64)  # (1, F, T)
    kw = {"n_fft": spec.n_fft, "hop_length": spec.hop_length}
    coef = np.float32(momentum / (1.0 + momentum))
    rebuilt = None
    for _ in range(n_iter):
        previous = rebuilt
        rebuilt = stft(istft(mag * angles, length=spec.num_samples, **kw), **kw)  # (1, F, T)
        angles = rebuilt.copy() if previous is None else rebuilt - coef * previous
        angles *= 1.0 / (np.abs(angles) + 1e-16)
    return istft(mag * angles, length=spec.num_samples, **kw)[0]


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as torch.hann_window and librosa use


def stft(wav: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Complex STFT of (B, n) -> (B, n_fft/2+1, 1 + n // hop): periodic Hann, centred with reflect padding (librosa's
    and torch's convention)."""
    pad = n_fft // 2
    x = np.pad(np.asarray(wav, np.float32), [(0, 0), (pad, pad)], mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[:, ::hop_length]  # (B, T, n_fft)
    return scipy.fft.rfft(frames * _hann(n_fft), axis=-1).transpose(0, 2, 1)  # complex64: float32 in


@functools.lru_cache(maxsize=8)
def _overlap_add_envelope(n_fft: int, hop: int, frames: int) -> np.ndarray:
    """Sum of the squared Hann windows at every sample of the overlap-added signal, (n_fft + hop*(frames-1),)."""
    return _overlap_add((_hann(n_fft) ** 2)[None, None, :].repeat(frames, axis=1), hop)[0]


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """(B, T, n) frames -> (B, n + hop*(T-1)) overlap-added signal."""
    b, t, n = frames.shape
    out = np.zeros((b, n + hop * (t - 1)), dtype=frames.dtype)
    if n % hop == 0:  # n/hop strided adds of whole blocks, no per-frame loop
        r = n // hop
        blocks = frames.reshape(b, t, r, hop)  # (B, T, r, hop)
        for j in range(r):
            out[:, j * hop : j * hop + t * hop] += blocks[:, :, j, :].reshape(b, t * hop)
    else:
        for k in range(t):
            out[:, k * hop : k * hop + n] += frames[:, k]
    return out


def istft(spec: np.ndarray, *, n_fft: int, hop_length: int, length: int) -> np.ndarray:
    """Inverse STFT of a complex (B, n_fft/2+1, T) spectrum -> (B, length) float32.

    The numpy twin of torch.istft with a periodic Hann window and center=True: frames are irfft'd, windowed,
    overlap-added and divided by the summed squared window; the n_fft/2 padding is cut. (librosa.istft computes the
    same but compiles numba code for seconds in a new process.)
    """
    frames = scipy.fft.irfft(np.asarray(spec, np.complex64), n=n_fft, axis=1)  # (B, n_fft, T) float32
    frames = frames.transpose(0, 2, 1) * _hann(n_fft)  # (B, T, n_fft)
    signal = _overlap_add(frames, hop_length)  # (B, n_fft + hop*(T-1))
    env = _overlap_add_envelope(n_fft, hop_length, frames.shape[1])
    start = n_fft // 2
    signal, env = signal[:, start : start + length], env[start : start + length]
    out = np.zeros((signal.shape[0], length), dtype=np.float32)
    n = signal.shape[1]
    out[:, :n] = signal / np.where(env > 1e-11, env, 1.0).astype(np.float32)
    return out


#: Peak ceiling of generated audio: -0.09 dBFS, below the point where a fixed-point WAV or AAC encoder clips.
PEAK_CEILING = 0.99


def limit_peak(wav: np.ndarray, ceiling: float = PEAK_CEILING) -> tuple[np.ndarray, float]:
    """Scale a waveform down (never up) so that its peak is at most `ceiling`; returns it and the gain in dB (<= 0).

    Decoded mels at the top of the Diff-Foley range (+20 dB) make waveforms beyond full scale, which a WAV file
    would clip (2-4 % of the samples of the shipped model's loud takes); one gain keeps the take's dynamics."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak <= ceiling:
        return wav, 0.0
    gain = ceiling / peak
    return (wav * gain).astype(np.float32), float(20.0 * np.log10(gain))


def peak_normalize(wav: np.ndarray, peak: float = 0.5) -> np.ndarray:
    """Remove the mean and scale to `peak` (AudioLDM's waveform pre-normalisation); silence stays silence."""
    w = wav - np.mean(wav, axis=-1, keepdims=True)
    m = np.max(np.abs(w), axis=-1, keepdims=True)
    return np.where(m > 1e-8, w * (peak / np.maximum(m, 1e-8)), w).astype(np.float32)


def rms_dbfs(wav: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    r = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    return 20.0 * np.log10(r) if r > 0 else float("-inf")


# ---- loudness (EBU R128 / ITU-R BS.1770, engine.loudness; used by the editor's export) ------------------------


def measure_loudness(wav: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS of mono (n,) or (n, channels) audio; -inf for silence or audio under 0.4 s."""
    from engine.loudness import BLOCK_S, integrated_loudness

    data = np.asarray(wav, dtype=np.float64)
    if data.shape[0] < int(BLOCK_S * sample_rate) or not np.any(data):
        return float("-inf")
    return integrated_loudness(data, sample_rate)


def normalize_loudness(
    wav: np.ndarray, sample_rate: int, target_lufs: float = -23.0, *, peak_ceiling_db: float = -1.0
) -> tuple[np.ndarray, float, float]:
    """Scale audio linearly to `target_lufs` (two-pass: measure, then one gain), never peaking above the ceiling.

    Returns (audio float32, measured LUFS before, gain applied in dB). Silence (or audio under 0.4 s) is returned
    unchanged with gain 0. If the gain needed would push a sample above `peak_ceiling_db` dBFS the gain is lowered
    to the ceiling, so the result is then quieter than the target (compare the returned gain with the target).
    """
    data = np.asarray(wav, dtype=np.float32)
    measured = measure_loudness(data, sample_rate)
    if not np.isfinite(measured):
        return data.copy(), measured, 0.0
    gain_db = float(target_lufs - measured)
    peak = float(np.max(np.abs(data)))
    if peak > 0:
        gain_db = min(gain_db, peak_ceiling_db - 20.0 * np.log10(peak))
    out = (data * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    return out, measured, gain_db
