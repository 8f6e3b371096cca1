"""`foley fill` / engine.fill: a whole video covered by crossfaded segments, written as a BWF track + per-segment
BWF stems (summing to the track), resumable after an interruption, refusing a folder of another fill."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_writers import write_png

pytest.importorskip("torch")

from engine import Cancelled, InvalidRequestError, load_engine, probe_video
from engine.bwf import read_bext
from engine.cli import main
from engine.fill import fill_video


@pytest.fixture(scope="module")
def engine(tiny_bundle: Path):
    return load_engine(tiny_bundle, backend="torch", threads=1)


def _spy(engine) -> list[float]:
    """Record the start of every generation the engine is asked for (the resume must not regenerate)."""
    calls: list[float] = []
    real = engine.generate

    def generate(video, start, **kw):
        calls.append(start)
        return real(video, start, **kw)

    engine.generate = generate  # type: ignore[method-assign]
    return calls


def test_fill_covers_the_video_and_its_stems_sum_to_the_track(engine, video_12s: Path, tmp_path: Path) -> None:
    out = tmp_path / "fill"
    res = fill_video(engine, video_12s, out, overlap=1.6, seed=3, steps=2)
    info = probe_video(video_12s)
    rate = res.sample_rate
    assert res.starts[0] == 0.0 and res.starts[-1] + engine.segment_duration == pytest.approx(info.duration, abs=0.05)
    assert res.generated == len(res.starts) == 2 and res.reused == 0
    track, r = sf.read(res.track, dtype="float32")
    assert r == rate and len(track) == round(info.duration * rate) and np.abs(track).max() > 0
    assert read_bext(res.track).time_reference == 0  # the test clip has no timecode: it starts at 00:00:00:00
    total = np.zeros_like(track)
    for clip, path in zip(res.stem_clips, res.stems):
        stem, _ = sf.read(path, dtype="float32")
        assert read_bext(path).time_reference == clip.start and len(stem) == clip.length
        total[clip.start : clip.start + len(stem)] += stem
    assert np.max(np.abs(total - track)) < 1e-5  # 24-bit rounding of each file, nothing else
    plan = json.loads((out / "fill.json").read_text())
    assert plan["seed"] == 3 and plan["starts"] == res.starts
    sides = [json.loads((out / "segments" / f"seg-{i:03d}.json").read_text()) for i in range(2)]
    assert [s["seed"] for s in sides] == [3, 4]  # segment k gets seed + k


def test_an_interrupted_fill_resumes_without_regenerating(engine, video_12s: Path, tmp_path: Path) -> None:
    out = tmp_path / "fill"
    done: list[str] = []

    def should_cancel() -> bool:
        done[:] = [p.name for p in (out / "segments").glob("seg-*.json")]
        return len(done) >= 1

    with pytest.raises(Cancelled, match="resume"):
        fill_video(engine, video_12s, out, steps=2, should_cancel=should_cancel)
    assert done == ["seg-000.json"] and not (out / "foley.wav").exists()
    first = sf.read(out / "segments" / "seg-000.wav", dtype="float32")[0]
    calls = _spy(engine)
    try:
        res = fill_video(engine, video_12s, out, steps=2)
        assert (res.generated, res.reused) == (1, 1) and calls == [res.starts[1]]
        assert np.array_equal(sf.read(out / "segments" / "seg-000.wav", dtype="float32")[0], first)
        calls.clear()
        again = fill_video(engine, video_12s, out, steps=2)
        assert (again.generated, again.reused) == (0, 2) and calls == []
        assert np.array_equal(sf.read(again.track)[0], sf.read(res.track)[0])
    finally:
        del engine.generate


def test_a_folder_of_another_fill_is_refused_unless_restarted(engine, video_12s: Path, tmp_path: Path) -> None:
    out = tmp_path / "fill"
    fill_video(engine, video_12s, out, steps=2, seed=0)
    with pytest.raises(InvalidRequestError, match="--restart"):
        fill_video(engine, video_12s, out, steps=2, seed=1)
    res = fill_video(engine, video_12s, out, steps=2, seed=1, restart=True)
    assert res.generated == 2 and json.loads((out / "fill.json").read_text())["seed"] == 1
    with pytest.raises(InvalidRequestError, match="overlap"):
        fill_video(engine, video_12s, tmp_path / "o2", overlap=9.0)
    with pytest.raises(InvalidRequestError, match="auto or none"):
        fill_video(engine, video_12s, tmp_path / "o3", hits="[1.0]")


def test_the_fill_command_writes_track_stems_timeline_and_mux(tiny_bundle: Path, video_12s: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out, mp4, otio_path = tmp_path / "out", tmp_path / "scene.mp4", tmp_path / "scene.otio"
    argv = ["fill", str(video_12s), "--out", str(out), "--bundle", str(tiny_bundle), "--steps", "2", "-q",
            "--mux", str(mp4), "--otio", str(otio_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "foley.wav"), str(otio_path), str(mp4)]
    assert probe_video(mp4).has_audio
    from engine.interchange import read_timeline

    tl = read_timeline(otio_path)
    assert sorted(c.name for c in tl.find_clips() if c.name.startswith("seg-")) == ["seg-000", "seg-001"]
    assert [m.name for m in tl.tracks.markers] == ["segment 1", "segment 2"]
    assert main(argv) == 2  # the mux exists: refused (an input error) without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert "0 generated, 2 reused" in capsys.readouterr().err


def test_a_still_image_becomes_a_video_to_generate_from(tiny_bundle: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from engine.media import still_video

    img = np.zeros((121, 161, 3), np.uint8)  # odd size: padded to even for H.264
    img[:, :80] = (40, 160, 60)
    png = write_png(tmp_path / "forest.png", img)  # a PNG written by FFmpeg's encoder
    made = still_video(png, tmp_path / "forest.mp4", 8.2)
    info = probe_video(made)
    assert (info.width, info.height) == (162, 122) and info.duration == pytest.approx(8.2, abs=0.05)
    out = tmp_path / "out"
    assert main(["generate", str(png), "--out", str(out), "--bundle", str(tiny_bundle), "--steps", "2",
                 "--candidates", "1", "-q"]) == 0
    assert "still image" in capsys.readouterr().err
    assert (out / "forest.still-8.192s.mp4").exists() or list(out.glob("forest.still-*.mp4"))
    assert list(out.glob("*.wav"))
    with pytest.raises(InvalidRequestError, match="positive"):
        still_video(png, tmp_path / "x.mp4", 0)
