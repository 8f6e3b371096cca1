"""Waveforms to draw: the samples of short audio, a min/max envelope of long audio, made off the GUI thread.

A 10 minute track at 48 kHz is 28.8 M samples: handing them to pyqtgraph built a path of every sample on the GUI
thread (2.7 s for 10 minutes at 16 kHz, tests/stall.py). `plot_data` gives at most `MAX_POINTS` points: beyond
that each bin of samples becomes its minimum and maximum (pyqtgraph's own "peak" downsampling, done once).
`WaveformJobs` computes it in an I/O job and hands the result to the GUI thread, dropping answers that a newer
request made stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from foley_app.jobs import Job, JobRunner

MAX_POINTS = 200_000  # 2 per bin: 100 k bins (6 ms each over 10 minutes)
SYNC_SAMPLES = 400_000  # below this (25 s at 16 kHz) the samples are drawn as they are, on the spot


def plot_data(audio: np.ndarray, sample_rate: int, start: float = 0.0,
              max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(t, y) for a curve of mono `audio` starting at `start` seconds: every sample if there are at most
    `max_points`, else per bin the minimum and the maximum, at the bin's start time."""
    a = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = a.size
    if n <= max_points:
        return start + np.arange(n, dtype=np.float64) / sample_rate, a
    per_bin = -(-2 * n // max_points)  # ceil: at most max_points / 2 bins
    bins = n // per_bin
    body = a[: bins * per_bin].reshape(bins, per_bin)
    lo, hi = body.min(axis=1), body.max(axis=1)
    if bins * per_bin < n:  # the ragged end is a bin of its own
        tail = a[bins * per_bin :]
        lo, hi = np.append(lo, tail.min()), np.append(hi, tail.max())
    y = np.empty(2 * lo.size, np.float32)
    y[0::2], y[1::2] = lo, hi
    t = start + np.repeat(np.arange(lo.size, dtype=np.float64) * per_bin / sample_rate, 2)
    return t, y


class WaveformJobs:
    """Per named curve, the latest request wins: `request(name, audio, rate, apply)` calls `apply(t, y)` on the
    GUI thread, at once for short audio, else when an I/O job has made the envelope (unless a later request for
    the same name came meanwhile). Without a job runner everything is done on the spot."""

    def __init__(self, jobs: JobRunner | None) -> None:
        self.jobs = jobs
        self._tokens: dict[str, int] = {}

    def request(self, name: str, audio: np.ndarray | None, sample_rate: int,
                apply: Callable[[np.ndarray, np.ndarray], Any], start: float = 0.0) -> Job | None:
        token = self._tokens.get(name, 0) + 1
        self._tokens[name] = token
        if audio is None or len(audio) == 0:
            apply(np.zeros(0), np.zeros(0, np.float32))
            return None
        if self.jobs is None or len(audio) <= SYNC_SAMPLES:
            apply(*plot_data(audio, sample_rate, start))
            return None

        def done(_job: Job, ty: tuple[np.ndarray, np.ndarray]) -> None:
            if self._tokens.get(name) == token:
                apply(*ty)

        return self.jobs.submit("waveform", "Drawing the waveform",
                                lambda report, cancel: plot_data(audio, sample_rate, start),
                                on_result=done, on_error=lambda _j, _e: None)

    def cancel(self, name: str) -> None:
        """Forget the pending request for `name` (its answer will be dropped)."""
        self._tokens[name] = self._tokens.get(name, 0) + 1
