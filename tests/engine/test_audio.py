from __future__ import annotations

import numpy as np
import pytest

from engine import audio
from engine.spec import AUDIOLDM, DIFF_FOLEY


def _test_signal(n: int, sr: int = 16_000) -> np.ndarray:
    """Decaying tones plus noise bursts: a Foley-like signal with onsets."""
    t = np.arange(n) / sr
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-(t % 1.0) * 5)
    bursts = 0.1 * rng.standard_normal(n) * ((t % 2.0) < 0.15)
    return (tone + bursts).astype(np.float32)


def test_mel_shape_and_range() -> None:
    mel = audio.wav_to_mel(_test_signal(DIFF_FOLEY.num_samples), DIFF_FOLEY)
    assert mel.shape == (128, 512) and mel.dtype == np.float32
    assert mel.min() >= 0.0 and mel.max() <= 1.0 and mel.max() > 0.5


def test_silence_maps_to_zero_and_loud_tones_clip_at_one() -> None:
    assert audio.wav_to_mel(np.zeros(DIFF_FOLEY.num_samples, np.float32), DIFF_FOLEY).max() == 0.0
    # Diff-Foley's range tops out at +20 dB of mel magnitude: a full-scale tone saturates (a fact of the front-end)
    loud = np.sin(2 * np.pi * 1000 * np.arange(DIFF_FOLEY.num_samples) / 16000).astype(np.float32)
    assert audio.wav_to_mel(loud, DIFF_FOLEY).max() == 1.0


def test_diff_foley_normalisation_formula() -> None:
    """[-80, +20] dB -> [0, 1]: amplitude 10 (+20 dB after the -20 dB offset is 0 dB ...) checked pointwise."""
    lin = np.array([1e-6, 1e-5, 1e-3, 1.0, 10.0, 100.0], np.float32)
    got = audio.compress(lin, DIFF_FOLEY)
    want = np.clip((20 * np.log10(np.maximum(lin, 1e-5)) - 20 + 100) / 100, 0, 1)
    np.testing.assert_allclose(got, want, atol=1e-6)
    inside = (want > 0) & (want < 1)
    np.testing.assert_allclose(audio.decompress(got, DIFF_FOLEY)[inside], lin[inside], rtol=1e-4)


def test_mel_pads_and_cuts_to_the_segment() -> None:
    short = _test_signal(50_000)
    assert audio.wav_to_mel(short, DIFF_FOLEY).shape == (128, 512)
    long = _test_signal(200_000)
    np.testing.assert_array_equal(audio.wav_to_mel(long, DIFF_FOLEY),
                                  audio.wav_to_mel(long[: DIFF_FOLEY.num_samples], DIFF_FOLEY))


def test_mel_round_trip_through_griffin_lim_is_bounded() -> None:
    """wav -> mel -> Griffin-Lim -> mel stays close: mean error < 2.5 % of the [-80, 20] dB range."""
    mel = audio.wav_to_mel(_test_signal(DIFF_FOLEY.num_samples), DIFF_FOLEY)
    wav = audio.griffin_lim(mel, DIFF_FOLEY, n_iter=32, seed=0)
    assert wav.shape == (DIFF_FOLEY.num_samples,)
    mel2 = audio.wav_to_mel(wav, DIFF_FOLEY)
    err = np.abs(mel - mel2)
    assert err.mean() < 0.025, err.mean()
    # and a different signal is far away (the bound is not vacuous)
    other = audio.wav_to_mel(np.roll(_test_signal(DIFF_FOLEY.num_samples), 8000), DIFF_FOLEY)
    assert np.abs(mel - other).mean() > 4 * err.mean()


@pytest.mark.parametrize("spec", [DIFF_FOLEY, AUDIOLDM], ids=["diff-foley", "audioldm"])
def test_mel_inverse_is_librosas_nnls(spec) -> None:
    """`mel_to_magnitude` (clipped pseudo-inverse) gives what librosa's mel_to_stft (NNLS by L-BFGS-B) gives."""
    import librosa

    rng = np.random.default_rng(3)
    sig = _test_signal(spec.num_samples) + 0.01 * rng.standard_normal(spec.num_samples).astype(np.float32)
    mel = audio.linear_mel(sig, spec)[..., :200]
    ours = audio.mel_to_magnitude(mel, spec)
    ref = librosa.feature.inverse.mel_to_stft(mel, sr=spec.sample_rate, n_fft=spec.n_fft, power=1.0,
                                              fmin=spec.fmin, fmax=spec.fmax)
    assert ours.shape == ref.shape == (spec.n_fft // 2 + 1, 200) and ours.min() >= 0
    assert np.abs(ours - ref).sum() / np.abs(ref).sum() < 1e-4
    # and it inverts the filterbank: the mel of the estimate is the mel, up to the clipping's small error
    assert np.abs(audio.mel_basis(spec) @ ours - mel).sum() / mel.sum() < 0.05  # measured 0.4-3.7 %


def test_numpy_stft_pair_matches_librosa_and_inverts() -> None:
    """Griffin-Lim's numpy STFT is librosa's (periodic Hann, centred, reflect padding), and istft inverts it."""
    import librosa

    x = _test_signal(20_000)[None]
    ours = audio.stft(x, n_fft=1024, hop_length=256)
    ref = librosa.stft(x[0], n_fft=1024, hop_length=256, window="hann", center=True, pad_mode="reflect")
    assert ours.shape == (1, *ref.shape)
    assert np.abs(ours[0] - ref).max() < 1e-4 * np.abs(ref).max()
    back = audio.istft(ours, n_fft=1024, hop_length=256, length=20_000)
    np.testing.assert_allclose(back, x, atol=1e-4)


def test_griffin_lim_is_as_good_as_librosas() -> None:
    """Same algorithm as librosa.griffinlim (which compiles numba code in every new process): same mel error."""
    import librosa

    mel = audio.wav_to_mel(_test_signal(DIFF_FOLEY.num_samples), DIFF_FOLEY)
    ours = audio.wav_to_mel(audio.griffin_lim(mel, DIFF_FOLEY, n_iter=16, seed=0), DIFF_FOLEY)
    mag = audio.mel_to_magnitude(audio.decompress(np.concatenate([mel, mel[:, -1:]], -1), DIFF_FOLEY), DIFF_FOLEY)
    ref = librosa.griffinlim(mag, n_iter=16, hop_length=256, win_length=1024, window="hann", center=True,
                             length=DIFF_FOLEY.num_samples, init="random", random_state=np.random.RandomState(0))
    e_ours, e_ref = np.abs(ours - mel).mean(), np.abs(audio.wav_to_mel(ref, DIFF_FOLEY) - mel).mean()
    assert e_ours < 1.1 * e_ref, (e_ours, e_ref)


def test_griffin_lim_is_seeded() -> None:
    mel = audio.wav_to_mel(_test_signal(DIFF_FOLEY.num_samples), DIFF_FOLEY)
    a = audio.griffin_lim(mel, DIFF_FOLEY, n_iter=4, seed=1)
    b = audio.griffin_lim(mel, DIFF_FOLEY, n_iter=4, seed=1)
    np.testing.assert_array_equal(a, b)


def test_audioldm_mel_is_natural_log_with_floor() -> None:
    wav = _test_signal(AUDIOLDM.num_samples)
    mel = audio.wav_to_mel(wav, AUDIOLDM)
    assert mel.shape == (64, 816)
    assert mel.min() >= np.log(1e-5) - 1e-6
    lin = audio.linear_mel(wav, AUDIOLDM)[:, :816]
    np.testing.assert_allclose(mel, np.log(np.maximum(lin, 1e-5)), rtol=1e-5, atol=1e-5)
    # AudioLDM's mel image is time-first
    assert audio.to_mel_image(mel, AUDIOLDM).shape == (816, 64)
    np.testing.assert_array_equal(audio.from_mel_image(audio.to_mel_image(mel, AUDIOLDM), AUDIOLDM), mel)


def test_mel_basis_is_slaney_between_fmin_and_fmax() -> None:
    import librosa

    basis = audio.mel_basis(DIFF_FOLEY)
    assert basis.shape == (128, 513)
    freqs = librosa.fft_frequencies(sr=16000, n_fft=1024)
    used = freqs[basis.sum(axis=0) > 0]
    assert used.min() >= 125 - 16 and used.max() <= 7600 + 16


@pytest.mark.parametrize("spec", [DIFF_FOLEY, AUDIOLDM], ids=["diff-foley", "audioldm"])
def test_mel_basis_and_stft_are_librosas_bit_for_bit(spec) -> None:
    """The numpy filterbank and magnitude STFT equal librosa.filters.mel and |librosa.stft| exactly (the runtime
    does not import librosa: numba and llvmlite would cost seconds at start-up and 200 MB in the frozen app)."""
    librosa = pytest.importorskip("librosa")

    ref = librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels, fmin=spec.fmin,
                              fmax=spec.fmax)
    np.testing.assert_array_equal(audio.mel_basis(spec), ref)
    rng = np.random.default_rng(5)
    # one segment, a batch, a signal shorter than the FFT, and one longer than an FFT block of frames
    for wav in (_test_signal(spec.num_samples), rng.standard_normal((2, 3, 9000)).astype(np.float32),
                _test_signal(700), _test_signal((audio._STFT_BLOCK_FRAMES + 300) * spec.hop_length)):
        ours = audio.stft_magnitude(wav, spec)
        want = np.abs(librosa.stft(wav, n_fft=spec.n_fft, hop_length=spec.hop_length, win_length=spec.win_length,
                                   window="hann", center=True, pad_mode="reflect"))
        assert ours.dtype == want.dtype == np.float32
        np.testing.assert_array_equal(ours, want)


def test_peak_normalize_and_rms() -> None:
    x = np.array([0.1, 0.3, -0.1, 0.5], np.float32)
    y = audio.peak_normalize(x, 0.5)
    assert np.max(np.abs(y)) == pytest.approx(0.5) and abs(y.mean()) < 1e-6
    assert audio.rms_dbfs(np.zeros(10, np.float32)) == float("-inf")
    assert audio.rms_dbfs(np.ones(10, np.float32)) == pytest.approx(0.0)


def test_limit_peak_only_turns_down_what_would_clip() -> None:
    quiet = np.array([0.2, -0.5, 0.98], np.float32)
    same, gain = audio.limit_peak(quiet)
    assert same is quiet and gain == 0.0
    loud = np.array([0.5, -2.0, 1.0], np.float32)
    out, gain = audio.limit_peak(loud)
    np.testing.assert_allclose(out, loud * (audio.PEAK_CEILING / 2.0), rtol=1e-6)
    assert np.abs(out).max() == pytest.approx(audio.PEAK_CEILING) and gain == pytest.approx(20 * np.log10(0.495))
