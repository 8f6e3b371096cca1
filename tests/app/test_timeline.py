"""Time math and the mixdown: frame snapping, fill plans, equal-power crossfades, gain."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.timeline import _weights
from foley_app.document.timeline import (
    MixClip,
    crossfade_spans,
    fill_starts,
    format_time,
    max_segment_start,
    nudge,
    place_segment,
    plan_mix,
    render_mix,
    snap_to_frame,
)

SR = 16_000


def test_snapping_and_placement() -> None:
    assert snap_to_frame(1.01, 24) == pytest.approx(24 / 24)
    assert snap_to_frame(1.03, 24) == pytest.approx(25 / 24)
    assert place_segment(-3.0, 8.192, 12.0, 24) == 0.0
    assert place_segment(9.0, 8.192, 12.0, 24) == max_segment_start(12.0, 8.192, 24) == pytest.approx(91 / 24)
    assert place_segment(2.0, 8.192, 5.0, 24) == 0.0  # a video shorter than a segment
    assert nudge(2.0, 1, 8.192, 12.0, 24) == pytest.approx(49 / 24)
    assert nudge(0.0, -1, 8.192, 12.0, 24) == 0.0


@pytest.mark.parametrize(("duration", "overlap"), [(12.0, 1.6), (30.0, 1.6), (100.0, 0.5), (8.0, 1.0), (600.0, 2.0)])
def test_fill_covers_the_video_with_the_overlap(duration: float, overlap: float) -> None:
    seg, fps = 8.192, 25.0
    starts = fill_starts(duration, seg, overlap, fps)
    assert starts[0] == 0.0 and starts == sorted(starts)
    assert starts[-1] + seg >= min(duration, seg) - 1e-9  # reaches the end
    for a, b in itertools.pairwise(starts):
        assert a + seg - b >= overlap - 1e-9  # neighbours overlap by at least `overlap`
        assert b - a > 0
    for s in starts:
        assert abs(s * fps - round(s * fps)) < 1e-6  # on frames


def test_one_clip_is_placed_to_the_sample_with_its_gain() -> None:
    audio = np.ones(SR, np.float32)
    out = render_mix([MixClip("a", 1000, audio, 0.5)], 3 * SR, SR)
    assert out.shape == (3 * SR,) and out.dtype == np.float32
    assert np.all(out[:1000] == 0) and np.all(out[1000 + SR :] == 0)
    np.testing.assert_allclose(out[1000 + 200 : 1000 + SR - 200], 0.5)  # away from the 5 ms edge fades
    assert out[1000] < 0.01 and out[1000 + SR - 1] < 0.01  # no click at the edges


def test_overlaps_crossfade_with_equal_power() -> None:
    n = 4 * SR
    clips = [MixClip(k, s, np.ones(n, np.float32)) for k, s in (("a", 0), ("b", 3 * SR), ("c", 6 * SR))]
    plans = plan_mix(clips)
    assert [(p.key, p.in_is_crossfade, p.out_is_crossfade) for p in plans] == [
        ("a", False, True), ("b", True, True), ("c", True, False)]
    assert crossfade_spans(clips) == [(3 * SR, 4 * SR), (6 * SR, 7 * SR)]
    # the squared weights of the clips sum to 1 at every sample they cover (away from the outer edges)
    power = np.zeros(10 * SR)
    for p, c in zip(plans, sorted(clips, key=lambda c: c.start)):
        w = _weights(p, n, 0)
        power[c.start : c.start + n] += w**2
    np.testing.assert_allclose(power, 1.0, atol=1e-9)


def test_uncorrelated_takes_keep_their_level_through_a_crossfade() -> None:
    rng = np.random.default_rng(1)
    n = 4 * SR
    a, b = (rng.standard_normal(n).astype(np.float32) * 0.1 for _ in range(2))
    out = render_mix([MixClip("a", 0, a), MixClip("b", 2 * SR, b)], 6 * SR, SR)
    rms = [float(np.sqrt(np.mean(out[i : i + SR // 4] ** 2))) for i in range(SR, 5 * SR, SR // 4)]
    assert max(rms) / min(rms) < 1.25  # no dip or bump at the join (a linear fade dips by 3 dB)


def test_a_later_clip_at_the_same_start_replaces_the_earlier_one() -> None:
    a, b = np.ones(SR, np.float32), 2 * np.ones(SR, np.float32)
    out = render_mix([MixClip("a", 0, a), MixClip("b", 0, b)], SR, SR, edge_fade=0.0)
    np.testing.assert_allclose(out, 2.0)


def test_timecode() -> None:
    assert format_time(3 + 19 / 24, 24) == "00:00:03:19"
    assert format_time(3725.5, 25) == "01:02:05:12"
    assert format_time(2.5) == "0:02.500"


def test_the_stems_of_a_mix_sum_to_the_mixdown() -> None:
    from engine.timeline import MixClip, clip_stems, render_mix

    rate = 1000
    rng = np.random.default_rng(1)
    clips = [MixClip("a", 0, rng.standard_normal(3000).astype(np.float32), 1.0),
             MixClip("b", 2400, rng.standard_normal(3000).astype(np.float32), 0.5),
             MixClip("c", 2600, rng.standard_normal(500).astype(np.float32), 1.0),  # inside b: cuts it
             MixClip("d", 5000, rng.standard_normal(2000).astype(np.float32), 1.0)]  # runs past the end
    total = 6000
    mix = render_mix(clips, total, rate)
    stems = clip_stems(clips, total, rate)
    summed = np.zeros(total, np.float32)
    for s in stems:
        assert s.gain == 1.0 and s.start >= 0 and s.start + len(s.audio) <= total
        summed[s.start : s.start + len(s.audio)] += s.audio
    assert np.allclose(summed, mix, atol=1e-6)
    assert {s.key for s in stems} <= {"a", "b", "c", "d"} and "d" in {s.key for s in stems}
