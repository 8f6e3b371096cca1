"""Comping: a clip made of parts of several takes, equal-power crossfades centred on the cuts (engine.timeline)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import CompPart, comp_cut_spans, render_comp

SR = 16000


def _takes(n: int = 3, length: int = SR) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(length).astype(np.float32) * 0.3 for _ in range(n)]


def test_one_part_is_the_take_itself() -> None:
    (a,) = _takes(1)
    assert render_comp([CompPart(0, "a", a)], 320) is a


def test_outside_the_fades_each_part_is_its_take_exactly_and_the_fade_is_centred_on_the_cut() -> None:
    a, b, c = _takes()
    cuts = [4000, 10000]
    out = render_comp([CompPart(0, "a", a), CompPart(cuts[0], "b", b), CompPart(cuts[1], "c", c)], 320)
    assert out.shape == a.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[:4000 - 160], a[:4000 - 160])
    np.testing.assert_array_equal(out[4000 + 160:10000 - 160], b[4000 + 160:10000 - 160])
    np.testing.assert_array_equal(out[10000 + 160:], c[10000 + 160:])
    assert comp_cut_spans([0, *cuts], len(a), 320) == [(3840, 4160), (9840, 10160)]
    # inside a fade: cos * earlier + sin * later, the weights' squares summing to one
    k = 4000 - 160 + 10
    x = (10 + 0.5) / 320
    expect = np.cos(0.5 * np.pi * x) * a[k] + np.sin(0.5 * np.pi * x) * b[k]
    assert out[k] == pytest.approx(expect, abs=1e-6)


def test_the_crossfade_keeps_the_power_of_uncorrelated_takes() -> None:
    a, b = _takes(2, 4 * SR)
    n = 8000  # a long fade, to measure power over it
    out = render_comp([CompPart(0, "a", a), CompPart(2 * SR, "b", b)], n)
    fade = out[2 * SR - n // 2: 2 * SR + n // 2]
    ref = np.mean(a[: 2 * SR] ** 2)
    assert np.mean(fade ** 2) == pytest.approx(ref, rel=0.08)


def test_a_cut_between_a_take_and_itself_changes_nothing() -> None:
    a, b = _takes(2)
    one = render_comp([CompPart(0, "a", a), CompPart(3000, "b", b)], 320)
    two = render_comp([CompPart(0, "a", a), CompPart(1000, "a", a), CompPart(3000, "b", b)], 320)
    np.testing.assert_array_equal(one, two)


def test_fades_shrink_so_that_close_cuts_never_overlap() -> None:
    spans = comp_cut_spans([0, 100, 160], 1000, 320)
    assert spans == [(70, 130), (130, 190)]  # each at most half the way to its neighbour
    a, b, c = _takes(3, 1000)
    out = render_comp([CompPart(0, "a", a), CompPart(100, "b", b), CompPart(160, "c", c)], 320)
    np.testing.assert_array_equal(out[190:], c[190:])


def test_bad_parts_are_refused() -> None:
    a, b = _takes(2)
    with pytest.raises(ValueError, match="at least one"):
        render_comp([], 320)
    with pytest.raises(ValueError, match="not 0"):
        render_comp([CompPart(5, "a", a)], 320)
    with pytest.raises(ValueError, match="must rise"):
        render_comp([CompPart(0, "a", a), CompPart(len(a), "b", b)], 320)
    with pytest.raises(ValueError, match="samples long"):
        render_comp([CompPart(0, "a", a), CompPart(100, "b", b[:-1])], 320)
