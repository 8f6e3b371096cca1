"""training.compare_evals: the speed levers' table, its tolerance and its checks (metrics.json files made here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.compare_evals import compare, main, table

BUNDLE = Path(__file__).resolve().parents[2] / "resources" / "models" / "default"


def metrics(steps: int = 25, order: int = 2, interval: list[float] | None = None, *, acc: float = 0.83,
            cat: float = 0.10, fam: float = 0.61, fad: float = 179.0, align: float = 0.68,
            clips: int = 100) -> dict:
    return {"clips": clips, "candidates": 1, "hits": "auto", "steps": steps, "solver_order": order,
            "guidance_interval": interval or [], "bundle": {"name": "fullband-s2", "path": str(BUNDLE)},
            "onset": {"generated@0.1s": {"acc": acc, "ap": 0.96}},
            "category": {"generated": {"category_acc": cat, "family_acc": fam}},
            "fad": {"generated": fad}, "alignment": {"generated": {"accuracy": align}}}


@pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(), reason="needs the shipped bundle's schedule")
def test_a_lever_holds_within_the_seed_spread_and_fails_beyond_it() -> None:
    base = metrics()
    noise = metrics(fad=185.0, acc=0.82)  # the seed spread: FAD 6, onset 1 point
    runs = {"base": base, "ok": metrics(15, 3, fad=184.0, acc=0.825),
            "bad": metrics(10, 3, fad=200.0), "interval": metrics(interval=[0.28, 5.42], cat=0.05)}
    rows, tol = compare(base, runs, noise)
    by = {r["name"]: r for r in rows}
    assert tol["fad"] == pytest.approx(6.0) and tol["category"] == pytest.approx(0.02)  # spread, else the floor
    assert by["base"]["worse"] == [] and by["base"]["work"] == pytest.approx(1.0)
    assert by["ok"]["worse"] == [] and by["ok"]["work"] == pytest.approx(15 / 25)
    assert by["bad"]["worse"] == ["fad"]
    assert by["interval"]["worse"] == ["category"]
    assert by["interval"]["work"] == pytest.approx(37 / 50)  # 12 of 25 steps guided
    text = table(rows, tol)
    assert "| bad | DPM-Solver++(3M), 10 steps |" in text and "no: FAD (AI-SFX)" in text
    assert "FAD (AI-SFX) 6.0" in text


def test_runs_of_other_clips_or_bundles_are_refused() -> None:
    with pytest.raises(ValueError, match="clips"):
        compare(metrics(), {"x": metrics(clips=50)})
    other = metrics()
    other["bundle"] = {"name": "other", "path": "/nowhere"}
    with pytest.raises(ValueError, match="another bundle"):
        compare(metrics(), {"x": other})


def test_the_command_skips_unfinished_runs_and_names_a_missing_base(tmp_path: Path, capsys) -> None:
    for name, m in (("base", metrics()), ("3m-15", metrics(15, 3))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
    (tmp_path / "unfinished").mkdir()
    assert main(["--base", str(tmp_path / "base"), str(tmp_path / "base"), str(tmp_path / "3m-15"),
                 str(tmp_path / "unfinished")]) == 0
    out = capsys.readouterr().out
    assert "| 3m-15 |" in out and "unfinished" not in out
    assert main(["--base", str(tmp_path / "missing"), str(tmp_path / "base")]) == 2
    assert "run that evaluation first" in capsys.readouterr().err
