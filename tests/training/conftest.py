"""Fixtures of the training tests: synthetic clips, a shared feature cache, and one tiny run of every stage.

The tiny run (`python -m training.run --config tiny`, in a subprocess as a user runs it) is made once per session;
the resume, NaN and DDP tests start new runs that reuse its finished stages (copied) and its feature cache, so each
only trains the stage it tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from _train_helpers import base_args, run_cmd


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the tiny run (minutes of training, however fast the test itself) is `slow`."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def synthetic_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.synthetic import make_dataset

    folder = tmp_path_factory.mktemp("train_videos")
    make_dataset(folder, clips=8, sources=4, seconds=10.0, seed=0)
    return folder


@pytest.fixture(scope="session")
def train_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("training")


@pytest.fixture(scope="session")
def tiny_run(synthetic_videos: Path, train_root: Path) -> Path:
    """runs/tiny of `python -m training.run --config tiny` (all stages), made once."""
    run_cmd(base_args(synthetic_videos, train_root, "tiny"))
    return train_root / "runs" / "tiny"
