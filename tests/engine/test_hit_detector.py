"""The hit detector: motion features of a video with known flashes, their cache, peak picking, the network on both
backends, a detector trained from scratch on synthetic flash motion, and `FoleyEngine.detect_hits` end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from media_writers import write_flash_video

from engine import motion
from engine.errors import SegmentOutOfRangeError
from engine.hit_detection import local_maxima, match_hits, motion_peak_hits, pick_peaks, sigmoid
from engine.motion import GLOBAL, KEYFRAME, NUM_CHANNELS, MotionCache, read_frame_motion, segment_motion
from engine.spec import DIFF_FOLEY

FPS = 20
GOP = 40  # a keyframe every 2 s, as in the data set: frames 0, 40, 80, 120, 160
FLASHES = (30, 95, 137)  # a white frame at k and k + 1, none at a keyframe
DURATION = DIFF_FOLEY.duration
SLOTS = 256
SLOT = DURATION / SLOTS


def slot_of(frame: int, start: float = 0.0) -> int:
    return int((frame / FPS - start) / SLOT)


@pytest.fixture(scope="module")
def flash_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_flash_video(tmp_path_factory.mktemp("hits") / "flashes.mp4", flashes=FLASHES, fps=FPS, gop=GOP)


# ---- motion features -----------------------------------------------------------------------------------------
def test_the_flash_slots_carry_the_global_maximum_and_keyframes_are_flagged(flash_video: Path) -> None:
    feats = segment_motion(flash_video, 0.0, DURATION, SLOTS, cache=MotionCache())
    f = feats.features
    assert f.shape == (SLOTS, NUM_CHANNELS) and f.dtype == np.float32
    g = f[:, GLOBAL]
    flash_slots = {slot_of(k + d) for k in FLASHES for d in (0, 2)}  # the flash on, and off two frames later
    for k in FLASHES:
        assert g[slot_of(k)] == pytest.approx(g.max(), rel=0.05), k
    quiet = np.ones(SLOTS, bool)
    for s in flash_slots:
        quiet[max(0, s - 1) : s + 3] = False  # the slot, its held neighbour
    assert g[quiet].max() < 0.5 * min(g[s] for s in flash_slots)
    keys = np.flatnonzero(f[:, KEYFRAME])
    assert list(keys) == [slot_of(k) for k in range(0, 164, GOP)]
    assert {int(k) for k in keys}.isdisjoint(flash_slots)
    # brighten on the flash, darken when it ends
    assert f[slot_of(FLASHES[0]), 1] > 3 and f[slot_of(FLASHES[0]), 2] == 0
    assert f[slot_of(FLASHES[0] + 2), 2] > 3


def test_frames_before_the_region_are_references_only(flash_video: Path) -> None:
    m = read_frame_motion(flash_video, 1.0, 3.0)
    assert m.times[0] == pytest.approx(1.0) and m.times[-1] == pytest.approx(2.95) and len(m.times) == 40
    assert m.values[0, 0] > 0  # the frame at 1.0 s is compared with the one at 0.95 s
    feats = segment_motion(flash_video, 1.0, DURATION, SLOTS, cache=MotionCache())
    assert int(np.argmax(feats.features[:, GLOBAL])) in {slot_of(k, 1.0) for k in FLASHES}


def test_slots_without_a_frame_hold_the_one_before_and_the_video_end_is_zero(flash_video: Path) -> None:
    feats = segment_motion(flash_video, 4.0, DURATION, SLOTS, cache=MotionCache())  # runs 2.19 s past the end
    g = feats.features[:, GLOBAL]
    k = slot_of(FLASHES[1], 4.0)
    assert g[k + 1] == g[k]  # 20 fps on 32 ms slots: the slot after a frame's is empty and holds it
    end = int(np.ceil(6.0 / SLOT))
    assert np.all(feats.features[end:] == 0) and np.any(feats.features[end - 2] > 0)
    assert any("ends" in w for w in feats.warnings)


def test_the_cache_returns_the_same_array_without_decoding(flash_video: Path, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    cache = MotionCache(capacity=2)
    first = segment_motion(flash_video, 0.5, DURATION, SLOTS, cache=cache)

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(motion, "read_frame_motion", no_decode)
    again = segment_motion(flash_video, 0.5004, DURATION, SLOTS, cache=cache)  # same ms
    assert again is first and again.features is first.features and not first.features.flags.writeable
    assert cache.hits == 1 and cache.misses == 1
    monkeypatch.undo()
    other = segment_motion(flash_video, 0.6, DURATION, SLOTS, cache=cache)
    assert other is not first and cache.misses == 2


def test_a_start_outside_the_video_is_a_typed_error(flash_video: Path) -> None:
    with pytest.raises(SegmentOutOfRangeError, match="choose a start"):
        segment_motion(flash_video, 10.5, DURATION, SLOTS, cache=MotionCache())


# ---- peak picking --------------------------------------------------------------------------------------------
def test_peak_picking() -> None:
    s = np.zeros(20)
    s[[2, 3]] = 0.9  # a plateau: its first slot
    s[5] = 0.6  # 0.3 s from slot 2 with 0.1 s slots: kept
    s[6] = 0.5  # not a local maximum
    s[10], s[11] = 0.4, 0.8  # 0.8 wins; 0.4 is below the threshold anyway
    s[19] = 0.7  # the last slot counts
    assert [int(i) for i in local_maxima(s) if s[i] > 0] == [2, 5, 11, 19]  # (slot 0 starts a plateau of zeros)
    assert pick_peaks(s, 0.1, threshold=0.5, min_distance=0.25) == [0.25, 0.55, 1.15, 1.95]
    # min distance: the higher of two close peaks wins
    assert pick_peaks(s, 0.1, threshold=0.5, min_distance=0.35) == [0.25, 1.15, 1.95]
    assert pick_peaks(s, 0.1, threshold=0.5, min_distance=0.25, duration=1.9) == [0.25, 0.55, 1.15]
    assert pick_peaks(np.zeros(8), 0.1, threshold=0.5) == []
    assert pick_peaks(s, 1 / 3, threshold=0.85) == [0.833]  # rounded to 1 ms
    assert sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist() == [0.0, 0.5, 1.0]


def test_matching_uses_each_hit_once() -> None:
    assert match_hits([1.0, 1.05, 3.0], [1.02, 2.0], 0.1) == 1
    assert match_hits([1.0, 2.0], [1.09, 1.95], 0.1) == 2
    assert match_hits([], [1.0], 0.1) == 0


def test_the_baseline_fires_on_every_flash_change(flash_video: Path) -> None:
    feats = segment_motion(flash_video, 0.0, DURATION, SLOTS, cache=MotionCache())
    hits = motion_peak_hits(feats, threshold=2.0, min_distance=0.05)
    for k in FLASHES:
        assert any(abs(h - k / FPS) < 0.04 for h in hits), (k, hits)
        assert any(abs(h - (k + 2) / FPS) < 0.04 for h in hits), (k, hits)  # the flash ending: a false hit


# ---- the network ---------------------------------------------------------------------------------------------
def synthetic_motion(rng: np.random.Generator, seconds: float = 10.0) -> tuple[motion.FrameMotion, np.ndarray]:
    """Per-frame motion like the flash video's: small motion everywhere, keyframe jumps every 2 s (no event), and
    flashes at random frames (on: brighten; off, two frames later: darken) whose onsets are the truth."""
    n = round(seconds * FPS)
    values = np.abs(rng.normal(0.004, 0.002, (n, len(motion.RAW_CHANNELS)))).astype(np.float32)
    values[:, 1:3] *= 0.1
    cell = 3 + (np.arange(n) // int(rng.integers(5, 20)) + int(rng.integers(0, 16))) % 16
    values[np.arange(n), cell] += rng.uniform(0.02, 0.1)  # an object moving from cell to cell
    keyframe = np.zeros(n, bool)
    keyframe[::GOP] = True
    values[keyframe, 0] *= 4.0
    values[keyframe, 3:] *= 4.0
    onsets = []
    for k in sorted(rng.choice(np.arange(3, n - 4), size=int(rng.integers(2, 6)), replace=False)):
        if keyframe[k] or any(abs(k - o) < 4 for o in onsets):
            continue
        level = float(rng.uniform(0.3, 0.9))
        values[k] = level
        values[k, 2] = 0.0
        values[k + 2] = level
        values[k + 2, 1] = 0.0
        onsets.append(int(k))
    times = np.arange(n) / FPS
    return motion.FrameMotion(times=times, values=values, keyframe=keyframe, end=seconds), times[onsets]


STEPS = 300


@pytest.fixture(scope="module")
def trained_detector():  # -> HitDetector
    torch = pytest.importorskip("torch")
    from engine.nn.hit_detector import HitDetector, hit_detector_config
    from training.stages.detector import soft_target

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    det = HitDetector(config=hit_detector_config("tiny", dropout=0.0, threshold=0.5))
    opt = torch.optim.Adam(det.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: 1 thread is ~10x faster than 2 that wait on each other
    for _ in range(STEPS):
        xs, ys = [], []
        for _ in range(8):
            m, onsets = synthetic_motion(rng)
            start = round(float(rng.uniform(0, 1.8)), 3)
            xs.append(motion.slot_features(m, start, DURATION, SLOTS)[0])
            ys.append(soft_target(onsets - start, DURATION, SLOTS, 1.0))
        logits = det(torch.from_numpy(np.stack(xs)))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(np.stack(ys)),
                                                                    pos_weight=torch.tensor(10.0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return det.eval()


def test_a_detector_trained_from_scratch_finds_the_flashes_and_ignores_keyframes(trained_detector) -> None:
    import torch

    rng = np.random.default_rng(123)
    clips = [synthetic_motion(rng) for _ in range(10)]
    x = np.stack([motion.slot_features(m, 0.0, DURATION, SLOTS)[0] for m, _ in clips])
    with torch.no_grad():
        probs = sigmoid(trained_detector(torch.from_numpy(x)).numpy())  # (10, slots)
    found = total = false = 0
    for prob, (_, onsets) in zip(probs, clips):
        hits = pick_peaks(prob, SLOT, threshold=0.5, min_distance=0.1, duration=DURATION)
        truth = [t for t in onsets if t < DURATION]
        tp = match_hits(hits, truth, 0.05)
        found, total, false = found + tp, total + len(truth), false + len(hits) - tp
    assert found >= 0.9 * total and false <= 0.1 * total, (found, total, false)


@pytest.fixture(scope="module")
def detector_bundles(onnx_bundle: Path, tmp_path_factory: pytest.TempPathFactory, trained_detector) -> Path:
    """The tiny ONNX bundle (torch weights too) with the trained detector added (its graph exported)."""
    from engine.nn.bundle import add_hit_detector

    dst = tmp_path_factory.mktemp("bundles") / "tiny_hits"
    shutil.copytree(onnx_bundle, dst)
    manifest = add_hit_detector(dst, trained_detector)
    assert manifest.onnx["graphs"]["hit_detector"]["parity"]["max_abs_diff"] < 1e-4
    return dst


def test_torch_and_onnx_give_the_same_logits(detector_bundles: Path) -> None:
    from engine.backends import get_backend
    from engine.manifest import load_manifest

    manifest = load_manifest(detector_bundles)
    x = np.random.default_rng(0).uniform(0, 4, (2, SLOTS, NUM_CHANNELS)).astype(np.float32)
    outs = {}
    for kind in ("torch", "onnx"):
        be = get_backend(kind, detector_bundles, manifest, device="cpu", threads=1)
        assert be.has_hit_detector
        outs[kind] = be.hit_logits(x)
        assert outs[kind].shape == (2, SLOTS)
        be.close()
    np.testing.assert_allclose(outs["torch"], outs["onnx"], atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_engine_detects_the_flashes(detector_bundles: Path, flash_video: Path, backend: str) -> None:
    from engine import load_engine

    eng = load_engine(detector_bundles, backend=backend, device="cpu", threads=1)
    assert eng.has_hit_detector
    hits = eng.detect_hits(flash_video, 0.0)
    assert len(hits) == len(FLASHES), hits
    for k, h in zip(FLASHES, hits):
        assert abs(h - k / FPS) <= 0.05, (k, hits)
    later = eng.detect_hits(flash_video, 1.0)  # relative to the segment start
    assert all(abs(a - 1.0 - b) <= 0.04 for a, b in zip(hits, later)) and len(later) == len(hits)
    eng.close()


def test_a_bundle_without_a_detector_is_unchanged(tiny_bundle: Path) -> None:
    from engine import load_engine
    from engine.errors import InvalidRequestError

    eng = load_engine(tiny_bundle, backend="torch", device="cpu", threads=1)
    assert not eng.has_hit_detector and not eng.backend.has_hit_detector
    with pytest.raises(InvalidRequestError, match="no hit detector"):
        eng.detect_hits(Path("unused.mp4"), 0.0)
    eng.close()
