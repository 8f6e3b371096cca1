"""FoleyEngine end to end on the torch backend with the tiny random bundle (shapes, seeds, progress, cancel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from engine import (
    BundleError,
    Cancelled,
    FeatureFileError,
    InvalidRequestError,
    Progress,
    SegmentOutOfRangeError,
    audio,
    load_engine,
)
from engine.pipeline import load_feature_file
from engine.spec import DIFF_FOLEY


@pytest.fixture(scope="module")
def engine(tiny_bundle: Path):
    e = load_engine(tiny_bundle, backend="torch")
    yield e
    e.close()


def test_generate_shapes_seeds_and_settings(engine, video_12s: Path) -> None:
    events: list[Progress] = []
    res = engine.generate(video_12s, 2.0, candidates=3, seed=11, steps=4, on_progress=events.append)
    assert len(res.candidates) == 3
    for k, c in enumerate(res.candidates):
        assert c.audio.shape == (DIFF_FOLEY.num_samples,) and c.audio.dtype == np.float32
        assert c.mel.shape == (128, 512) and c.mel.min() >= 0.0 and c.mel.max() <= 1.0
        assert c.seed == 11 + k and c.settings["seed"] == 11 + k and c.settings["steps"] == 4
        assert np.all(np.isfinite(c.audio)) and np.abs(c.audio).max() > 0
    # different seeds give different takes
    assert not np.allclose(res.candidates[0].audio, res.candidates[1].audio)
    assert res.start == 2.0 and res.sample_rate == 16000 and res.video_info is not None
    # progress is monotone, covers the stages and ends at 1
    fr = [p.fraction for p in events]
    assert fr == sorted(fr) and fr[-1] == pytest.approx(1.0)
    assert {"video", "denoise", "decode", "vocode"} <= {p.stage for p in events}
    assert sum(p.stage == "denoise" and p.step > 0 for p in events) == 4


def test_same_seed_same_candidate_whatever_the_batch(engine, video_12s: Path) -> None:
    """Candidate k depends on seed + k only, so one candidate can be regenerated alone."""
    a = engine.generate(video_12s, 0.0, candidates=2, seed=5, steps=3)
    b = engine.generate(video_12s, 0.0, candidates=1, seed=6, steps=3)
    np.testing.assert_allclose(a.candidates[1].mel, b.candidates[0].mel, atol=1e-4)


def test_guidance_interval_and_solver_order_reach_the_sampler_and_the_settings(engine, video_12s: Path) -> None:
    plain = engine.generate(video_12s, 0.0, candidates=1, seed=0, steps=6)
    assert plain.candidates[0].settings["guidance_interval"] is None  # the bundle's default: every step guided
    inner = engine.generate(video_12s, 0.0, candidates=1, seed=0, steps=6, guidance_interval=(0.28, 5.42))
    assert inner.candidates[0].settings["guidance_interval"] == [0.28, 5.42]
    assert np.abs(inner.candidates[0].mel - plain.candidates[0].mel).max() > 1e-4
    every = engine.generate(video_12s, 0.0, candidates=1, seed=0, steps=6, guidance_interval=(0.0, 1e9))
    np.testing.assert_allclose(every.candidates[0].mel, plain.candidates[0].mel, atol=1e-5)
    with pytest.raises(InvalidRequestError, match="guidance_interval"):
        engine.generate(video_12s, 0.0, candidates=1, steps=2, guidance_interval=(2.0, 1.0))
    assert plain.candidates[0].settings["solver_order"] == 2
    third = engine.generate(video_12s, 0.0, candidates=1, seed=0, steps=6, solver_order=3)
    assert third.candidates[0].settings["solver_order"] == 3
    assert np.abs(third.candidates[0].mel - plain.candidates[0].mel).max() > 1e-5
    with pytest.raises(InvalidRequestError, match="solver_order"):
        engine.generate(video_12s, 0.0, candidates=1, steps=2, solver_order=4)


def test_the_video_conditions_the_output(engine, video_12s: Path) -> None:
    a = engine.generate(video_12s, 0.0, candidates=1, seed=0, steps=3)
    b = engine.generate(video_12s, 3.5, candidates=1, seed=0, steps=3)
    assert np.abs(a.candidates[0].mel - b.candidates[0].mel).mean() > 1e-4


def test_cancel_between_steps(engine, video_12s: Path) -> None:
    seen: list[Progress] = []

    def should_cancel() -> bool:
        return any(p.stage == "denoise" and p.step >= 2 for p in seen)

    with pytest.raises(Cancelled):
        engine.generate(video_12s, 0.0, candidates=2, steps=10, on_progress=seen.append, should_cancel=should_cancel)
    assert max(p.step for p in seen if p.stage == "denoise") == 2


def test_segment_past_the_end_holds_the_last_frame_and_says_so(engine, video_12s: Path) -> None:
    res = engine.generate(video_12s, 10.0, candidates=1, steps=2)
    assert any("last frame" in w for w in res.warnings)


def test_bad_requests_raise_typed_errors(engine, video_12s: Path, tmp_path: Path) -> None:
    with pytest.raises(SegmentOutOfRangeError):
        engine.generate(video_12s, 12.5, candidates=1, steps=2)
    with pytest.raises(InvalidRequestError):
        engine.generate(video_12s, -1.0, candidates=1, steps=2)
    with pytest.raises(InvalidRequestError):
        engine.generate(video_12s, 0.0, candidates=0, steps=2)
    with pytest.raises(InvalidRequestError):
        engine.generate(video_12s, 0.0, candidates=1, steps=0)


def test_precomputed_cavp_features(engine, tmp_path: Path) -> None:
    feats = np.random.default_rng(0).standard_normal((40, 512)).astype(np.float32)
    np.savez(tmp_path / "clip.npz", feats)
    res = engine.generate(tmp_path / "clip.npz", 0.0, candidates=1, steps=2)
    assert res.candidates[0].audio.shape == (DIFF_FOLEY.num_samples,)
    # the bundle was trained on EfficientNet features, so the engine says the file is foreign to it
    assert any("trained on efficientnet-lite0" in w for w in res.warnings)
    rows, warnings = load_feature_file(tmp_path / "clip.npz", 4.0, DIFF_FOLEY)
    np.testing.assert_array_equal(rows[:24], feats[16:40])
    np.testing.assert_array_equal(rows[24:], np.repeat(feats[-1:], 8, axis=0))
    assert warnings


@pytest.mark.parametrize("shape", [(40, 256), (40,), (2, 40, 512)])
def test_feature_file_with_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "f.npy", np.zeros(shape, np.float32))
    with pytest.raises(FeatureFileError, match="expected"):
        load_feature_file(tmp_path / "f.npy", 0.0, DIFF_FOLEY)


def test_unreadable_feature_file(tmp_path: Path) -> None:
    (tmp_path / "f.npy").write_bytes(b"not numpy")
    with pytest.raises(FeatureFileError, match="cannot read"):
        load_feature_file(tmp_path / "f.npy", 0.0, DIFF_FOLEY)


def test_griffin_lim_vocoder_bundle(tiny_bundle_gl: Path, video_12s: Path) -> None:
    e = load_engine(tiny_bundle_gl, backend="torch")
    assert not e.backend.has_neural_vocoder and e.describe().vocoder == "griffin-lim"
    d = e.describe().to_dict()  # the dict it is written out as: the keys, order and JSON types of before
    assert list(d) == ["bundle", "name", "random_weights", "backend", "device", "providers", "fallback_reason",
                       "segment_seconds", "sample_rate", "vocoder", "output_rates", "default_output_rate", "bwe"]
    assert d["providers"] == ["torch-cpu"] and d["output_rates"] == [16_000, 48_000] and d["bwe"] is None
    res = e.generate(video_12s, 0.0, candidates=2, steps=2)
    assert res.candidates[0].audio.shape == (DIFF_FOLEY.num_samples,)


def test_griffin_lim_takes_run_in_threads_in_order_with_progress_and_cancel(tiny_bundle_gl: Path) -> None:
    e = load_engine(tiny_bundle_gl, backend="torch")
    mel = np.random.default_rng(0).random((3, DIFF_FOLEY.n_mels, DIFF_FOLEY.mel_frames)).astype(np.float32) * 0.6
    n_iter = int(e.manifest.components["vocoder"].config.get("n_iter", 32))
    seen: list[tuple[int, int]] = []
    wavs = e.mel_to_audio(mel, seeds=[5, 6, 7], on_item=lambda k, n: seen.append((k, n)))
    for k, seed in enumerate([5, 6, 7]):  # each take is its own mel and seed, whichever thread ran it
        np.testing.assert_allclose(wavs[k], audio.griffin_lim(mel[k], DIFF_FOLEY, n_iter=n_iter, seed=seed), atol=1e-6)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(Cancelled):
        e.mel_to_audio(mel, should_cancel=lambda: True)


def test_missing_default_bundle_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import engine.pipeline as pipeline

    monkeypatch.setattr(pipeline, "default_bundle_dir", lambda: tmp_path / "none")
    with pytest.raises(BundleError, match="--bundle"):
        load_engine()


def test_a_segment_generated_again_reuses_its_features_and_prepare_does_the_work_ahead(
        tiny_bundle: Path, video_12s: Path, tmp_path: Path) -> None:
    import os
    import shutil

    e = load_engine(tiny_bundle, backend="torch")
    fresh = load_engine(tiny_bundle, backend="torch")
    try:
        first = e.generate(video_12s, 1.0, candidates=1, seed=3, steps=3)
        assert first.timings["video"] > 0 and e.feature_cache.misses == 1
        again = e.generate(video_12s, 1.0, candidates=1, seed=3, steps=3)  # more takes of the same segment
        assert again.timings["video"] == 0.0 and e.feature_cache.hits == 1  # "features": the condition graph only
        assert again.timings["features"] < first.timings["features"]
        np.testing.assert_array_equal(again.candidates[0].audio, first.candidates[0].audio)
        # prepare: the per-segment work ahead; the generation after it is the same as without it
        e.prepare(video_12s, 4.5)
        ready = e.generate(video_12s, 4.5, candidates=1, seed=0, steps=3)
        assert ready.timings["video"] == 0.0
        cold = fresh.generate(video_12s, 4.5, candidates=1, seed=0, steps=3)
        np.testing.assert_array_equal(ready.candidates[0].audio, cold.candidates[0].audio)
        assert ready.video_info == cold.video_info and ready.warnings == cold.warnings
        # another start, or the file rewritten, is not served from the cache
        assert e.generate(video_12s, 4.6, candidates=1, seed=0, steps=3).timings["video"] > 0
        copy = tmp_path / "v.mp4"
        shutil.copy(video_12s, copy)
        e.prepare(copy, 1.0)
        os.utime(copy, ns=(1, 1))
        assert e.generate(copy, 1.0, candidates=1, seed=0, steps=3).timings["video"] > 0
        with pytest.raises(SegmentOutOfRangeError):  # bad input still gets the readers' typed errors
            e.prepare(video_12s, float("nan"))
    finally:
        e.close()
        fresh.close()


def test_draft_quality_is_the_faster_sampler_and_explicit_settings_override_it(engine, video_12s: Path) -> None:
    from engine import QUALITIES

    draft = engine.generate(video_12s, 0.0, candidates=1, seed=0, quality="draft")
    st = draft.candidates[0].settings
    assert (st["steps"], st["solver_order"], st["quality"]) == (QUALITIES["draft"]["steps"], 2, "draft")
    assert st["guidance_interval"] == [0.28, 5.42]
    final = engine.generate(video_12s, 0.0, candidates=1, seed=0, steps=3)
    assert final.candidates[0].settings["quality"] == "final" and final.candidates[0].settings["solver_order"] == 2
    mine = engine.generate(video_12s, 0.0, candidates=1, seed=0, quality="draft", steps=4, solver_order=3,
                           guidance_interval=None)
    ms = mine.candidates[0].settings
    assert (ms["steps"], ms["solver_order"], ms["guidance_interval"]) == (4, 3, None)
    with pytest.raises(InvalidRequestError, match="quality must be one of final, draft"):
        engine.generate(video_12s, 0.0, candidates=1, quality="best")
