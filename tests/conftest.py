"""Shared fixtures: a tiny RANDOM-weight bundle (never a model: tests only) and generated videos."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import pytest
from media_writers import make_test_video  # tests/stall.py and tests/crash_recovery.py take it from here too

# the tiny denoiser of the fixtures (and of tests/stall.py, tests/crash_recovery.py): one copy, torch-free
from engine.nn.presets import TINY_DENOISER


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
