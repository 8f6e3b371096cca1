"""Pictures for the views: preview frames (frame-accurate, cached, read ahead while playing) and thumbnails.

Frames come from `engine.read_frames`, which picks by presentation time the frame displayed at each time, so a
seek shows exactly the frame the engine would read there. Decoding runs in I/O jobs; QImages are made off the GUI
thread (QImage, unlike QPixmap, may be). The preview cache holds frames on the k / fps grid in chunks of one
second, keeps the most recently used ones, and reads the next chunk ahead while playing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from engine import read_frames
from foley_app.jobs import Job, JobRunner

PREVIEW_BOX = (640, 360)
THUMB_HEIGHT = 54
CHUNK_SECONDS = 1.0
CACHE_FRAMES = 240


def fit_size(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """(W, H) of a picture scaled to fit in `box` keeping its aspect (even numbers, at least 2)."""
    scale = min(box[0] / max(width, 1), box[1] / max(height, 1), 1.0)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3) -> an owning QImage."""
    arr = np.ascontiguousarray(rgb)
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class FrameSource(QObject):
    """Frame-accurate preview frames of the open video, by time."""

    frame_ready = Signal(float, QImage)  # the time asked for, its frame
    failed = Signal(object)

    def __init__(self, jobs: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.path: str | None = None
        self.fps = 25.0
        self.duration = 0.0
        self.size = PREVIEW_BOX
        self._cache: OrderedDict[int, QImage] = OrderedDict()
        self._loading: set[int] = set()  # chunk indices being read
        self._wanted: float | None = None
        self._generation = 0

    def set_video(self, path: str | None, fps: float = 25.0, duration: float = 0.0, width: int = 640,
                  height: int = 360) -> None:
        self.path = path
        self.fps = fps if fps > 0 else 25.0
        self.duration = duration
        self.size = fit_size(width, height, PREVIEW_BOX)
        self._cache.clear()
        self._loading.clear()
        self._wanted = None
        self._generation += 1

    def frame_index(self, t: float) -> int:
        last = max(0, math.ceil(self.duration * self.fps) - 1)
        return min(max(0, math.floor(t * self.fps + 1e-6)), last)

    def cached(self, t: float) -> QImage | None:
        k = self.frame_index(t)
        img = self._cache.get(k)
        if img is not None:
            self._cache.move_to_end(k)
        return img

    def request(self, t: float, *, read_ahead: bool = False) -> QImage | None:
        """The frame shown at `t` if cached; else None and `frame_ready` follows when it is read."""
        if self.path is None:
            return None
        k = self.frame_index(t)
        img = self.cached(t)
        per_chunk = max(1, round(self.fps * CHUNK_SECONDS))
        chunk = k // per_chunk
        if img is None:
            self._wanted = t
            self._load_chunk(chunk)
        if read_ahead and (k + per_chunk // 2) // per_chunk != chunk:
            nxt = chunk + 1
            if nxt * per_chunk not in self._cache:
                self._load_chunk(nxt)
        return img

    def _load_chunk(self, chunk: int) -> None:
        if chunk in self._loading or self.path is None:
            return
        per_chunk = max(1, round(self.fps * CHUNK_SECONDS))
        first = chunk * per_chunk
        last_frame = self.frame_index(self.duration)
        ks = [k for k in range(first, first + per_chunk) if k <= last_frame]
        if not ks:
            return
        self._loading.add(chunk)
        path, fps, size, gen = self.path, self.fps, self.size, self._generation

        def work(report, should_cancel):
            batch = read_frames(path, [k / fps for k in ks], size=size)
            return [(k, to_qimage(f)) for k, f in zip(ks, batch.frames)]

        def done(_job: Job, frames: list[tuple[int, QImage]]) -> None:
            if gen != self._generation:
                return
            self._loading.discard(chunk)
            for k, img in frames:
                self._cache[k] = img
            while len(self._cache) > CACHE_FRAMES:
                self._cache.popitem(last=False)
            if self._wanted is not None:
                img = self.cached(self._wanted)
                if img is not None:
                    t, self._wanted = self._wanted, None
                    self.frame_ready.emit(t, img)

        def error(_job: Job, exc: BaseException) -> None:
            if gen == self._generation:
                self._loading.discard(chunk)
                self.failed.emit(exc)

        self.jobs.submit("frames", "Reading frames", work, on_result=done, on_error=error)


def thumbnail_times(duration: float, max_count: int = 120, min_spacing: float = 0.5) -> list[float]:
    """Evenly spaced thumbnail times (each the left edge of its tile)."""
    if duration <= 0:
        return []
    n = max(1, min(max_count, math.ceil(duration / min_spacing)))
    return [i * duration / n for i in range(n)]


def read_thumbnails(path: str | Path, duration: float, width: int, height: int,
                    should_cancel=lambda: False) -> list[tuple[float, np.ndarray]]:
    """(time, uint8 RGB) thumbnails across the video: one decoding pass if short, a seek per thumbnail if long."""
    times = thumbnail_times(duration)
    size = fit_size(width, height, (THUMB_HEIGHT * 4, THUMB_HEIGHT))
    if duration <= 120.0:
        batch = read_frames(path, times, size=size)
        return list(zip(times, batch.frames))
    out = []
    for t in times:
        if should_cancel():
            break
        out.append((t, read_frames(path, [t], size=size).frames[0]))
    return out
