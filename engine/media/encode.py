"""Encoding frames and samples into an open PyAV output: the one loop (frame, timestamps, encode, mux, flush) that
every writer of test and data videos shares (the synthetic and benchmark data sets, the tests' media).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np


def encode_video(out: Any, stream: Any, frames: Iterable[np.ndarray], fps: int | Fraction) -> int:
    """Encode RGB frames ((h, w, 3) uint8) into `stream` of the open output `out`, frame i at pts i in 1/fps, and
    flush the encoder. Returns the number of frames."""
    import av

    base = Fraction(1, 1) / Fraction(fps)
    n = 0
    for n, img in enumerate(frames, start=1):
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = n - 1, base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    return n


def encode_audio(out: Any, stream: Any, wav: np.ndarray, rate: int, *, chunk: int = 1024) -> None:
    """Encode mono float32 samples into `stream` of `out` in chunks (pts = the first sample's index), then flush."""
    import av

    samples = np.asarray(wav, np.float32)
    for i in range(0, samples.size, chunk):
        frame = av.AudioFrame.from_ndarray(samples[None, i : i + chunk].copy(), format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
