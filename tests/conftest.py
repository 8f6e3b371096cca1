"""Shared fixtures: a tiny RANDOM-weight bundle (never a model: tests only) and generated videos."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import numpy as np
import pytest

# the tiny denoiser of the fixtures (and of tests/stall.py, tests/crash_recovery.py): one copy, torch-free
from engine.nn.presets import TINY_DENOISER


def make_test_video(path: Path, *, seconds: float = 12.0, fps: int = 24, size: tuple[int, int] = (160, 120),
                    codec: str = "libx264", with_audio: bool = False) -> Path:
    """A video of a bouncing square whose colour changes every second (so frames are tellable apart)."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, fps)
        a_stream = None
        if with_audio:
            a_stream = out.add_stream("aac", rate=16000)
            a_stream.layout = "mono"
        n = round(seconds * fps)
        for i in range(n):
            img = np.full((h, w, 3), 30, np.uint8)
            sec = i // fps
            x = int((w - 20) * abs(np.sin(i / fps * 2.0)))
            img[h // 2 - 10 : h // 2 + 10, x : x + 20] = ((sec * 70) % 255, (sec * 130) % 255, 200)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if a_stream is not None:
            t = np.arange(int(seconds * 16000)) / 16000
            pcm = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for i in range(0, pcm.size, 1024):
                fr = av.AudioFrame.from_ndarray(pcm[None, i : i + 1024].copy(), format="flt", layout="mono")
                fr.sample_rate = 16000
                fr.pts = i
                for p in a_stream.encode(fr):
                    out.mux(p)
            for p in a_stream.encode():
                out.mux(p)
    return path


@pytest.fixture(scope="session")
def video_12s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("media") / "clip12.mp4")


@pytest.fixture(scope="session")
def video_vp8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 s of VP8 in WebM: a codec MP4 cannot hold (PyAV has no Theora encoder)."""
    return make_test_video(tmp_path_factory.mktemp("media") / "film.webm", seconds=9.0, codec="libvpx")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle with random weights on the paper's spec, a tiny denoiser and a tiny Vocos vocoder."""
    pytest.importorskip("torch")
    from engine.nn.random_bundle import random_bundle
    from engine.spec import DIFF_FOLEY

    bdir = tmp_path_factory.mktemp("bundles") / "tiny"
    random_bundle(bdir, spec=DIFF_FOLEY, preset="T", denoiser_overrides=TINY_DENOISER, vocoder="vocos")
    return bdir


@pytest.fixture(scope="session")
def tiny_bundle_gl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same, with the Griffin-Lim vocoder."""
    pytest.importorskip("torch")
    from engine.nn.random_bundle import random_bundle
    from engine.spec import DIFF_FOLEY

    bdir = tmp_path_factory.mktemp("bundles") / "tiny_gl"
    random_bundle(bdir, spec=DIFF_FOLEY, preset="T", denoiser_overrides=TINY_DENOISER, vocoder="griffin-lim")
    return bdir
