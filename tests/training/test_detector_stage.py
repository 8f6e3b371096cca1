"""The detector stage's pieces: soft targets, pooled P/R/F1, threshold calibration, skipping without annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from training.stages.detector import calibrate, prf, score_hits, soft_target


def test_soft_targets_peak_at_each_onset_slot() -> None:
    y = soft_target(np.array([0.0, 0.5, 8.19]), 8.192, 256, 1.0)
    assert y.shape == (256,) and y.dtype == np.float32
    for slot in (0, int(0.5 / 0.032), 255):
        assert y[slot] == 1.0
    assert y[14] == pytest.approx(np.exp(-0.5), rel=1e-6) and y[16] == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert y[40] == 0.0
    np.testing.assert_array_equal(soft_target(np.array([0.5]), 8.192, 256, 0.0),
                                  np.eye(256, dtype=np.float32)[15])


def test_scores_pool_over_segments() -> None:
    s = score_hits([[1.0, 2.0], [], [3.0]], [[1.05], [4.0], [3.0, 5.0]], 0.1)
    assert (s["tp"], s["predicted"], s["true"]) == (2, 3, 4)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)
    assert prf(0, 0, 0)["f1"] == 1.0 and prf(0, 0, 3)["f1"] == 0.0


def test_calibration_picks_the_best_f1_threshold() -> None:
    truth = [[1.0], [2.0]]

    def hits_at(th: float) -> list[list[float]]:
        return [[1.0, 5.0] if th < 0.3 else [1.0], [2.0] if th < 0.6 else []]

    th, s = calibrate(np.array([0.1, 0.4, 0.7]), hits_at, truth, 0.1)
    assert th == 0.4 and s["f1"] == 1.0


def test_a_run_without_annotations_skips_the_stage(tmp_path: Path, video_12s: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from training.config import load_config
    from training.data import Clip
    from training.loop import Dist
    from training.stages import RunContext
    from training.stages.detector import run

    ctx = RunContext(cfg=load_config("tiny"), run_dir=tmp_path / "run", dist=Dist(), cache_dir=tmp_path / "cache",
                     clips=[Clip(key="a-000", path=str(video_12s), rel="a.mp4", source="a", split="train", start=0.0,
                                 duration=10.0, frames=40)])
    with caplog.at_level("INFO"):
        assert run(ctx) == {}
    assert "no training clip has annotated onsets" in caplog.text
    assert not (tmp_path / "run" / "stages" / "detector" / "done.json").exists()
