"""Time math of the editor: segment hits and timecode display; the frame snapping, fill plans and the mixdown
are the engine's (`engine.timeline`, shared with `foley fill`) and re-exported here for the document layer.

Pure numpy, no Qt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, TypeVar

from engine import (
    DEFAULT_COMP_CROSSFADE_S,
    DEFAULT_FILL_OVERLAP_S,
    EDGE_FADE_S,
    MAX_COMP_CROSSFADE_S,
    ClipPlan,
    CompPart,
    MixClip,
    clip_stems,
    comp_cut_spans,
    crossfade_spans,
    db_to_gain,
    fill_starts,
    floor_to_frame,
    max_segment_start,
    nudge,
    place_segment,
    plan_mix,
    render_comp,
    render_mix,
    snap_to_frame,
)

__all__ = [
    "DEFAULT_COMP_CROSSFADE_S",
    "DEFAULT_FILL_OVERLAP_S",
    "EDGE_FADE_S",
    "MAX_COMP_CROSSFADE_S",
    "ClipPlan",
    "CompPart",
    "MixClip",
    "clamp_hit",
    "clip_stems",
    "comp_cut_spans",
    "crossfade_spans",
    "db_to_gain",
    "fill_starts",
    "floor_to_frame",
    "format_time",
    "max_segment_start",
    "nudge",
    "place_segment",
    "plan_mix",
    "render_comp",
    "render_mix",
    "segment_at",
    "shift_hits",
    "snap_to_frame",
]


class _HasSpan(Protocol):
    id: str
    start: float
    duration: float


_Span = TypeVar("_Span", bound=_HasSpan)


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
