"""Hits: the onset times of a segment's sounds, as the user edits them and as the denoiser receives them.

A *hit* is a time in seconds from the segment start where a sound begins (the audible onset of an impact, a
footfall, a tool stroke). The denoiser of a hit-aware bundle takes them as a *hit track*: the segment is cut into
`lines x slots` slots, `lines` being the token grid's time lines (32 columns of 0.256 s for the Diff-Foley spec)
and `slots` the slots per line (8 of 32 ms by default), and a slot is 1 where a hit falls, else 0. Stacked per
line, the track keeps the position of a hit inside its column.

No torch here: the engine builds tracks with numpy, training builds them with the same function.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from engine.errors import InvalidRequestError

#: Slots per token time line when a config does not say (32 ms slots on the Diff-Foley grid).
DEFAULT_SLOTS = 8
#: Where the hits of a generation came from (recorded in each take's sidecar as "hits_source").
HitsSource = Literal["detected", "user", "none", "ignored"]
#: At most this many hits per segment (more than one every 32 ms is not a hit track any more).
MAX_HITS = 256


def hit_shape(denoiser_config: dict) -> tuple[int, int]:
    """(time lines, slots per line) of a denoiser config dict (the manifest's); (lines, 0) if it takes no hits."""
    rows, cols = (int(s) // int(denoiser_config.get("patch_size", 2)) for s in denoiser_config["input_size"])
    lines = cols if denoiser_config.get("time_axis", "col") == "col" else rows
    return (lines, int(denoiser_config.get("hit_slots", 0) or 0))


def slot_seconds(duration: float, lines: int, slots: int) -> float:
    """Length of one slot in seconds."""
    return duration / (lines * slots)


def hit_track(times: Iterable[float], duration: float, lines: int, slots: int) -> np.ndarray:
    """Hit times (s from the segment start) -> the (lines, slots) float32 track; times outside [0, duration) are
    dropped (a hit exactly at the end belongs to the next segment)."""
    track = np.zeros(lines * slots, np.float32)
    width = slot_seconds(duration, lines, slots)
    for t in times:
        if 0.0 <= t < duration:
            track[min(int(t / width), lines * slots - 1)] = 1.0
    return track.reshape(lines, slots)


def track_times(track: np.ndarray, duration: float) -> list[float]:
    """The slot start times of a track's set slots (the inverse of `hit_track` up to the slot grid)."""
    flat = np.asarray(track).reshape(-1)
    width = duration / flat.size
    return [round(float(i) * width, 4) for i in np.flatnonzero(flat > 0.5)]


def jitter_times(times: Sequence[float], rng: np.random.Generator, sigma: float) -> list[float]:
    """Training augmentation: each hit moved by N(0, sigma) seconds, so that a detector's imprecision of about one
    slot does not matter to the denoiser."""
    if sigma <= 0 or not len(times):
        return list(times)
    return [float(t) + float(d) for t, d in zip(times, rng.normal(0.0, sigma, len(times)))]


def check_hits(times: Iterable[object], duration: float) -> list[float]:
    """Validate user hit times: numbers, finite, inside [0, duration); sorted, duplicates removed.

    Raises `InvalidRequestError` with a one-line message that says what to do."""
    out: list[float] = []
    for t in times:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)):
            raise InvalidRequestError(f"hit time {t!r} is not a number; give seconds from the segment start")
        v = float(t)
        if not math.isfinite(v):
            raise InvalidRequestError(f"hit time {t!r} is not a finite number of seconds")
        if not 0.0 <= v < duration:
            raise InvalidRequestError(
                f"hit time {v:g} s lies outside the segment (0 to {duration:g} s from its start); times are "
                "relative to the segment start")
        out.append(round(v, 4))
    out = sorted(set(out))
    if len(out) > MAX_HITS:
        raise InvalidRequestError(f"{len(out)} hits in one segment; at most {MAX_HITS} are allowed")
    return out


def parse_hits_arg(value: str, duration: float) -> list[float] | Literal["auto"]:
    """The CLI's `--hits`: "auto", "none", "T1,T2,..." (seconds from the segment start) or a JSON file holding a
    list of times, or {"hits": [...]} (what `foley hits` prints). Raises `InvalidRequestError` on bad input."""
    v = value.strip()
    if v.lower() == "auto":
        return "auto"
    if v.lower() in ("none", ""):
        return []
    if v.lower().endswith(".json") or Path(v).is_file():
        p = Path(v).expanduser()
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidRequestError(f"hits file {p} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequestError(f"hits file {p} is not readable JSON ({exc})") from None
        if isinstance(data, dict):
            data = data.get("hits")
        if isinstance(data, list) and all(isinstance(h, dict) for h in data):
            data = [h.get("time") for h in data]
        if not isinstance(data, list):
            raise InvalidRequestError(f"hits file {p} must hold a list of times or {{\"hits\": [...]}}")
        return check_hits(data, duration)
    parts = [p.strip() for p in v.split(",") if p.strip()]
    times: list[object] = []
    for p in parts:
        try:
            times.append(float(p))
        except ValueError:
            raise InvalidRequestError(f"--hits: {p!r} is not a number; give auto, none, T1,T2,... or a .json "
                                      "file") from None
    return check_hits(times, duration)
