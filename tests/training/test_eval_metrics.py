"""The evaluation's own models: the AI-SFX embedding (category accuracy, FAD) and the alignment classifier."""

from __future__ import annotations

import numpy as np
import pytest

from engine.spec import DIFF_FOLEY
from training.alignment import AlignConfig, AlignNet, Pairs, predict, train_classifier
from training.sfx_embed import frechet_distance, nearest_label_accuracy

SR = 16_000


def _sound(kind: str, rng: np.random.Generator, seconds: float = 8.192) -> np.ndarray:
    """Three families of test sounds with per-instance variation: tonal hits, noise bursts, a low rumble."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = 0.002 * rng.standard_normal(n)
    for start in rng.uniform(0.2, seconds - 0.8, size=5):
        k = np.arange(int(0.5 * SR))
        env = np.exp(-k / SR / rng.uniform(0.05, 0.15))
        i = int(start * SR)
        if kind == "tone":
            f = rng.uniform(900, 1400)
            y[i : i + len(k)] += 0.5 * env * np.sin(2 * np.pi * f * k / SR)
        elif kind == "noise":
            y[i : i + len(k)] += 0.4 * env * rng.standard_normal(len(k))
    if kind == "rumble":
        y += 0.3 * np.sin(2 * np.pi * rng.uniform(50, 80) * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    return y.astype(np.float32)


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 8))
    assert abs(frechet_distance(a, a)) < 1e-6
    shifted = frechet_distance(a, a + 2.0)
    assert shifted == pytest.approx(8 * 4.0, rel=1e-6)  # |mu1 - mu2|^2, same covariance
    assert frechet_distance(a, 3 * a) > frechet_distance(a, 1.5 * a) > 0


def test_nearest_label_accuracy_never_matches_the_excluded_reference() -> None:
    refs = np.eye(3)
    labels = ["a", "b", "c"]
    q = np.eye(3)
    assert nearest_label_accuracy(q, labels, refs, labels) == 1.0
    assert nearest_label_accuracy(q, labels, refs, labels, exclude=[0, 1, 2]) == 0.0


def test_the_sfx_embedding_separates_kinds_of_sound() -> None:
    pytest.importorskip("aisfx", reason="aisfx is installed by packaging/setup.sh")
    from training.sfx_embed import SfxEmbedder

    rng = np.random.default_rng(1)
    kinds = ["tone", "noise", "rumble"] * 3
    emb = SfxEmbedder().embed([_sound(k, rng) for k in kinds], SR)
    assert all(e.blocks.shape == (6, 512) for e in emb)  # 8.2 s -> 6 blocks of 2.3 s, hop 1.16 s
    clips = np.stack([e.clip for e in emb])
    acc = nearest_label_accuracy(clips, kinds, clips, kinds, exclude=list(range(len(kinds))))
    assert acc >= 0.8, acc  # chance is 1/3
    same = [clips[i] @ clips[j] for i in range(9) for j in range(9) if i != j and kinds[i] == kinds[j]]
    diff = [clips[i] @ clips[j] for i in range(9) for j in range(9) if kinds[i] != kinds[j]]
    assert np.mean(same) > np.mean(diff)


class _FakeStore:
    """Clips whose video features carry a spike at each event frame and whose mel has a burst at the same time."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        spec = DIFF_FOLEY
        self._feats, self._mels = [], []
        for _ in range(n):
            frames = 40
            cols = round(frames * spec.sample_rate / (spec.video_fps * spec.hop_length)) + 1
            feats = 0.1 * rng.standard_normal((frames, 1280)).astype(np.float32)
            mel = 0.2 + 0.02 * rng.standard_normal((spec.n_mels, cols)).astype(np.float32)
            for f in np.sort(rng.choice(frames, size=5, replace=False)):
                feats[f, :64] += 3.0
                c = round(f * spec.sample_rate / (spec.video_fps * spec.hop_length))
                mel[:, c : c + 6] += 0.5
            self._feats.append(feats)
            self._mels.append(mel)

    def __len__(self) -> int:
        return len(self._feats)

    def feats(self, i: int) -> np.ndarray:
        return self._feats[i]

    def mel(self, i: int) -> np.ndarray:
        return self._mels[i]


def test_pairs_label_aligned_other_and_shifted_audio() -> None:
    store = _FakeStore(6, 0)
    pairs = Pairs(store, DIFF_FOLEY)
    assert pairs.max_start == [7] * 6  # 10 s clips: a full 8.192 s window starts at most 1.75 s in
    cfg = AlignConfig(gain_db=0.0)
    v, m, y, kind = pairs.batch(np.random.default_rng(0), 16, cfg)
    assert v.shape == (16, 32, 1280) and m.shape == (16, 128, 512)
    assert y.tolist() == [1.0] * 8 + [0.0] * 8 and kind.tolist() == [0] * 8 + [1] * 4 + [2] * 4
    def events(k: int) -> tuple[set[int], set[int]]:  # frames with a video spike, frames with a mel burst
        loud = m[k].mean(0) > 0.5
        starts = np.flatnonzero(loud & ~np.concatenate([[False], loud[:-1]]))  # first column of each burst
        per_frame = DIFF_FOLEY.sample_rate / (DIFF_FOLEY.video_fps * DIFF_FOLEY.hop_length)  # 15.625 columns
        return set(np.flatnonzero(v[k, :, :64].mean(1) > 1.5).tolist()), {round(c / per_frame) for c in starts} - {32}

    for k in range(8):  # aligned pairs: the bursts sit where the spikes are
        seen, heard = events(k)
        assert seen and seen == heard, k
    for k in range(12, 16):  # shifted pairs: they do not
        seen, heard = events(k)
        assert seen != heard, k


def test_the_alignment_classifier_learns_sync_and_rejects_shifted_audio() -> None:
    cfg = AlignConfig(width=32, steps=150, batch_size=32, lr=3e-3, seed=0)
    model, info = train_classifier(_FakeStore(24, 1), _FakeStore(8, 2), DIFF_FOLEY, cfg, progress=False)
    assert isinstance(model, AlignNet)
    assert info["val_accuracy"] > 0.8, info
    assert info["val_shifted_rejected"] > 0.6, info
    store = _FakeStore(4, 3)
    pairs = Pairs(store, DIFF_FOLEY)
    aligned = predict(model, np.stack([pairs.video(i, 0) for i in range(4)]),
                      np.stack([pairs.audio(i, 0) for i in range(4)]))
    shifted = predict(model, np.stack([pairs.video(i, 0) for i in range(4)]),
                      np.stack([pairs.audio(i, 6) for i in range(4)]))
    assert aligned.mean() > shifted.mean() + 0.3
