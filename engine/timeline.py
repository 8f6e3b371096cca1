"""Time math shared by the editor and `foley fill`: frame snapping, fill plans, and the Foley track mixdown.

Pure numpy. Times are seconds from the first video frame (the engine's convention); segments snap to the
video's frame grid k / fps so that a segment start is always a frame the engine reads exactly.

Mixdown with equal-power crossfades. Clips are ordered by start. Where clip B starts before the clip A before it
has ended, A fades out with cos and B fades in with sin over the overlap, so cos^2 + sin^2 = 1 keeps the power of
uncorrelated takes constant. An overlap ends no later than the next clip's start, so at most two clips sound at
any instant and the weights stay a partition of power; a clip whose whole span is covered by later clips is
silent where it is covered, and of two clips with the same start the later one replaces the earlier. Edges that
meet silence get a 5 ms fade so a cut never clicks. `clip_stems` gives each clip's samples with its own weights
applied, so the stems placed at their starts sum to the mixdown exactly.

Comping (REAPER's take lanes, Cubase's lane comping): one clip made of parts of a segment's takes, cut at chosen
times with a short equal-power crossfade centred on each cut (`render_comp`); the comped clip then enters the
mixdown like any other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EDGE_FADE_S = 0.005
DEFAULT_COMP_CROSSFADE_S = 0.02  # a cut between takes (REAPER's default item crossfade is 10 ms, Cubase's 20 ms)
MAX_COMP_CROSSFADE_S = 1.0
DEFAULT_FILL_OVERLAP_S = 1.6  # FoleyTune's chunk overlap; Kdenlive asks for >= 0.5 s handles


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
    """The Foley track: `total` samples with every clip placed, gained and crossfaded (float32).

    Summed in float64, rounded to float32 once. The cost follows the clips, not the track's length: both arrays
    start as untouched zero pages and only the spans the clips cover are summed and converted (a 10 minute track
    at 48 kHz with one clip: 1 ms, not 80 ms, on the editor's GUI thread)."""
    n = max(0, total)
    acc = np.zeros(n, np.float64)
    out = np.zeros(n, np.float32)
    edge = round(edge_fade * sample_rate)
    by_key = {c.key: c for c in clips}
    spans: list[tuple[int, int]] = []
    for plan in plan_mix(clips):
        c = by_key[plan.key]
        w = _weights(plan, len(c.audio), edge) * c.gain
        lo, hi = max(c.start, 0), min(c.end, n)
        if hi > lo:
            acc[lo:hi] += w[lo - c.start : hi - c.start] * c.audio[lo - c.start : hi - c.start]
            spans.append((lo, hi))
    spans.sort()
    a = b = -1
    for lo, hi in [*spans, (n + 1, n + 1)]:  # the union of the covered spans, each converted once
        if lo > b:
            if b > a:
                out[a:b] = acc[a:b]
            a, b = lo, hi
        else:
            b = max(b, hi)
    return out


def crossfade_spans(clips: Sequence[MixClip]) -> list[tuple[int, int]]:
    """(start, end) samples of every crossfade, for display."""
    return [(p.start, p.in_end) for p in plan_mix(clips) if p.in_is_crossfade and p.in_end > p.start]


def clip_stems(clips: Sequence[MixClip], total: int, sample_rate: int, *,
               edge_fade: float = EDGE_FADE_S) -> list[MixClip]:
    """Each audible clip as it sounds in the mixdown (gain, fades and crossfades applied to its samples, gain 1),
    cut to the track's [0, total): placed at their starts, they sum to `render_mix`. Clips wholly covered by later
    ones are left out."""
    edge = round(edge_fade * sample_rate)
    by_key = {c.key: c for c in clips}
    stems: list[MixClip] = []
    for plan in plan_mix(clips):
        c = by_key[plan.key]
        w = _weights(plan, len(c.audio), edge) * c.gain
        lo, hi = max(c.start, 0), min(c.end, total)
        if hi <= lo or not np.any(w[lo - c.start : hi - c.start]):
            continue  # wholly covered by later clips, or outside the track
        audio = (w[lo - c.start : hi - c.start] * c.audio[lo - c.start : hi - c.start]).astype(np.float32)
        stems.append(MixClip(c.key, lo, audio, 1.0))
    return stems


# ---- comping -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompPart:
    """One part of a comped clip: from sample `start` (relative to the clip) to the next part, take `key`."""

    start: int
    key: str
    audio: np.ndarray


def comp_cut_spans(starts: Sequence[int], length: int, crossfade: int) -> list[tuple[int, int]]:
    """The crossfade [a, b) around each cut (every start after the first), centred on it and `crossfade` long at
    most: no longer than half the distance to a neighbouring cut or the clip's ends, so fades never overlap."""
    bounds = [0, *starts[1:], length]
    spans = []
    for k in range(1, len(bounds) - 1):
        c = bounds[k]
        half = min(crossfade // 2, (c - bounds[k - 1]) // 2, (bounds[k + 1] - c) // 2)
        spans.append((c - half, c + half))
    return spans


def render_comp(parts: Sequence[CompPart], crossfade: int) -> np.ndarray:
    """The clip that plays each part's take over its span, with an equal-power crossfade centred on every cut.

    Parts are in start order, the first at 0, and all takes as long as the first (a segment's candidates are):
    the result has that length. Outside the fades every sample is its part's take exactly. Neighbouring parts of
    the same take (`key`) are one part: a cut between a take and itself changes nothing. Over a fade the earlier
    take is weighted by cos and the later by sin (power kept for uncorrelated takes, as in the mixdown)."""
    if not parts:
        raise ValueError("a comp needs at least one part")
    length = len(parts[0].audio)
    if parts[0].start != 0:
        raise ValueError(f"the first part starts at sample {parts[0].start}, not 0")
    merged: list[CompPart] = []
    for p in parts:
        if len(p.audio) != length:
            raise ValueError(f"take {p.key!r} is {len(p.audio)} samples long, the clip {length}")
        if merged and not (merged[-1].start < p.start < length):
            raise ValueError(f"part starts must rise inside the clip: {[q.start for q in parts]}")
        if not merged or merged[-1].key != p.key:
            merged.append(p)
    if len(merged) == 1:
        return merged[0].audio
    out = np.empty(length, np.float32)
    starts = [p.start for p in merged]
    spans = comp_cut_spans(starts, length, max(0, crossfade))
    for k, p in enumerate(merged):
        lo = spans[k - 1][1] if k > 0 else 0
        hi = spans[k][0] if k < len(spans) else length
        out[lo:hi] = p.audio[lo:hi]
    for k, (a, b) in enumerate(spans):
        if b > a:
            x = (np.arange(b - a) + 0.5) / (b - a)
            out[a:b] = (np.cos(0.5 * np.pi * x) * merged[k].audio[a:b]
                        + np.sin(0.5 * np.pi * x) * merged[k + 1].audio[a:b]).astype(np.float32)
    return out
