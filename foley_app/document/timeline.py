"""Time math of the editor: frame snapping, segment placement, fill plans, and the Foley track mixdown.

Pure numpy, no Qt. Times are seconds from the first video frame (the engine's convention); segments snap to the
video's frame grid k / fps so that a segment start is always a frame the engine reads exactly.

Mixdown with equal-power crossfades. Clips are ordered by start. Where clip B starts before the clip A before it
has ended, A fades out with cos and B fades in with sin over the overlap, so cos^2 + sin^2 = 1 keeps the power of
uncorrelated takes constant. An overlap ends no later than the next clip's start, so at most two clips sound at
any instant and the weights stay a partition of power; a clip whose whole span is covered by later clips is
silent where it is covered, and of two clips with the same start the later one replaces the earlier. Edges that
meet silence get a 5 ms fade so a cut never clicks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

EDGE_FADE_S = 0.005
DEFAULT_FILL_OVERLAP_S = 1.6  # FoleyTune's chunk overlap; Kdenlive asks for >= 0.5 s handles


class _HasSpan(Protocol):
    id: str
    start: float
    duration: float


_Span = TypeVar("_Span", bound=_HasSpan)


# ---- frames and segments -------------------------------------------------------------------------------------
def snap_to_frame(t: float, fps: float) -> float:
    """The frame-grid time k / fps nearest to `t`."""
    if fps <= 0:
        return t
    return round(t * fps) / fps


def floor_to_frame(t: float, fps: float) -> float:
    """The last frame-grid time at or before `t` (with a tolerance for float noise)."""
    if fps <= 0:
        return t
    return math.floor(t * fps + 1e-6) / fps


def max_segment_start(video_duration: float, segment_duration: float, fps: float) -> float:
    """The latest frame-aligned start at which a whole segment still fits in the video (0 for a short video)."""
    return max(0.0, floor_to_frame(video_duration - segment_duration, fps))


def place_segment(start: float, segment_duration: float, video_duration: float, fps: float) -> float:
    """`start` snapped to the nearest frame and clamped so that the segment lies inside the video."""
    hi = max_segment_start(video_duration, segment_duration, fps)
    return min(max(snap_to_frame(start, fps), 0.0), hi)


def nudge(start: float, frames: int, segment_duration: float, video_duration: float, fps: float) -> float:
    """Move a segment start by a whole number of frames, staying inside the video."""
    return place_segment(start + frames / fps, segment_duration, video_duration, fps)


def fill_starts(video_duration: float, segment_duration: float, overlap: float, fps: float) -> list[float]:
    """Segment starts that cover the whole video, neighbours overlapping by at least `overlap` seconds.

    Starts are k * hop (hop = duration - overlap, floored to frames) and a last one flush with the video's end.
    """
    if overlap < 0 or overlap >= segment_duration:
        raise ValueError(f"overlap must be in [0, {segment_duration:.3f}) s, got {overlap}")
    last = max_segment_start(video_duration, segment_duration, fps)
    hop = max(floor_to_frame(segment_duration - overlap, fps), 1.0 / fps if fps > 0 else 1e-3)
    starts: list[float] = []
    k = 0
    while k * hop < last - 1e-9:
        starts.append(floor_to_frame(k * hop, fps) if fps > 0 else k * hop)
        k += 1
    starts.append(last)
    return starts


# ---- hits ----------------------------------------------------------------------------------------------------
HIT_DECIMALS = 4  # hits are kept to 0.1 ms (as the engine's check_hits rounds them)


def clamp_hit(t: float, segment_duration: float) -> float:
    """A hit time (s from the segment start) kept inside [0, duration): the segment's last 0.1 ms is its end."""
    return round(min(max(t, 0.0), segment_duration - 10.0 ** -HIT_DECIMALS), HIT_DECIMALS)


def shift_hits(hits: Sequence[float], delta: float, segment_duration: float) -> list[float]:
    """Hits after their segment's start moved by `delta` s, kept at the same picture times: each becomes
    t - delta; those that leave [0, duration) are dropped."""
    out = {round(t - delta, HIT_DECIMALS) for t in hits}
    return sorted(t for t in out if 0.0 <= t < segment_duration)


def segment_at(segments: Sequence[_Span], t: float, prefer: str = "") -> _Span | None:
    """The segment whose [start, end) holds time `t`: `prefer` (an id) if it does, else the latest-starting one."""
    inside = [s for s in segments if s.start <= t < s.start + s.duration]
    chosen = next((s for s in inside if s.id == prefer), None)
    return chosen or max(inside, key=lambda s: s.start, default=None)


def format_time(t: float, fps: float | None = None) -> str:
    """Timecode "HH:MM:SS:FF" (frames) if fps is given, else "M:SS.mmm"."""
    t = max(0.0, t)
    if fps:
        frames_per_s = max(1, round(fps))
        total = math.floor(t * fps + 1e-6)
        secs, frame = divmod(total, frames_per_s) if abs(fps - frames_per_s) < 1e-3 else (int(t), int(
            (t - int(t)) * fps + 1e-6))
        h, rem = divmod(int(secs), 3600)
        m, s = divmod(rem, 60)
        return f"{h:02d}:{m:02d}:{s:02d}:{frame:02d}"
    minutes, secs = divmod(t, 60.0)
    return f"{int(minutes)}:{secs:06.3f}"


# ---- mixdown -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MixClip:
    """A clip as the mixer sees it: where it starts (sample), its samples and its linear gain."""

    key: str
    start: int
    audio: np.ndarray
    gain: float = 1.0

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


@dataclass(frozen=True)
class ClipPlan:
    """Where one clip is audible and how it fades: fade-in [start, in_end), fade-out [out_start, stop)."""

    key: str
    start: int
    in_end: int
    in_is_crossfade: bool
    out_start: int
    stop: int
    out_is_crossfade: bool


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def plan_mix(clips: Sequence[MixClip]) -> list[ClipPlan]:
    """The fade plan of every clip (in start order; ties keep the given order, the later one wins)."""
    order = sorted(range(len(clips)), key=lambda i: (clips[i].start, i))
    cs = [clips[i] for i in order]
    plans: list[ClipPlan] = []
    for j, c in enumerate(cs):
        prev = cs[j - 1] if j > 0 else None
        nxt = cs[j + 1] if j + 1 < len(cs) else None
        nxt2 = cs[j + 2] if j + 2 < len(cs) else None
        # fade-in: a crossfade with the previous clip where they overlap, ending before the next clip starts
        if prev is not None and prev.end > c.start:
            in_end = min(prev.end, c.end, nxt.start if nxt is not None else c.end)
            if prev.start == c.start:
                in_end = c.start  # same start: the later clip replaces the earlier one
            in_x = True
        else:
            in_end = c.start
            in_x = False
        # fade-out: a crossfade with the next clip over the same span the next clip fades in on
        if nxt is not None and c.end > nxt.start:
            out_start = nxt.start
            stop = min(c.end, nxt.end, nxt2.start if nxt2 is not None else nxt.end)
            if nxt.start == c.start:
                stop = c.start
            out_x = True
        else:
            out_start = stop = c.end
            out_x = False
        plans.append(ClipPlan(c.key, c.start, in_end, in_x, max(out_start, c.start), max(stop, c.start), out_x))
    return plans


def _weights(plan: ClipPlan, length: int, edge: int) -> np.ndarray:
    """The gain curve (length,) of one clip relative to its first sample."""
    w = np.ones(length, np.float64)
    a = plan.in_end - plan.start
    if plan.in_is_crossfade and a > 0:
        x = (np.arange(a) + 0.5) / a
        w[:a] = np.sin(0.5 * np.pi * x)
    elif edge > 0:
        n = min(edge, length)
        w[:n] *= np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
    o0, o1 = plan.out_start - plan.start, plan.stop - plan.start
    if plan.out_is_crossfade:
        n = o1 - o0
        if n > 0:
            x = (np.arange(n) + 0.5) / n
            w[o0:o1] *= np.cos(0.5 * np.pi * x)
        w[max(o1, 0):] = 0.0
    elif edge > 0:
        n = min(edge, length)
        w[length - n :] *= np.cos(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
    return w


def render_mix(clips: Sequence[MixClip], total: int, sample_rate: int, *, edge_fade: float = EDGE_FADE_S) -> np.ndarray:
    """The Foley track: `total` samples with every clip placed, gained and crossfaded (float32)."""
    out = np.zeros(max(0, total), np.float64)
    edge = round(edge_fade * sample_rate)
    by_key = {c.key: c for c in clips}
    for plan in plan_mix(clips):
        c = by_key[plan.key]
        w = _weights(plan, len(c.audio), edge) * c.gain
        lo, hi = max(c.start, 0), min(c.end, total)
        if hi > lo:
            out[lo:hi] += w[lo - c.start : hi - c.start] * c.audio[lo - c.start : hi - c.start]
    return out.astype(np.float32)


def crossfade_spans(clips: Sequence[MixClip]) -> list[tuple[int, int]]:
    """(start, end) samples of every crossfade, for display."""
    return [(p.start, p.in_end) for p in plan_mix(clips) if p.in_is_crossfade and p.in_end > p.start]
