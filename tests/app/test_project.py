"""Project files: versioned JSON + media folder, round trips, atomic writes, clear errors."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from foley_app.document import project as proj
from foley_app.document.project import (
    AudioStore,
    Clip,
    Project,
    Segment,
    Take,
    VideoRef,
    load_project,
    media_dir_for,
    save_project,
)
from foley_app.errors import ProjectFileError


def _project(tmp_path: Path) -> tuple[Project, AudioStore]:
    store = AudioStore()
    rng = np.random.default_rng(0)
    a = store.add((0.1 * rng.standard_normal(16000)).astype(np.float32))
    b = store.add((0.1 * rng.standard_normal(16000)).astype(np.float32))
    video = tmp_path / "film.mp4"
    video.write_bytes(b"not really a video")
    takes = [Take(0, 7, a, {"start": 1.5, "steps": 25}, -20.0), Take(1, 8, b, {"start": 1.5, "steps": 25}, -21.0)]
    seg = Segment("s1", 1, 1.5, 8.192, takes, {"steps": 25, "seed": 7}, ["held the last frame"])
    clip = Clip("c1", "s1", "S1 #2", 1.5, b, 8, 1, -3.0)
    p = Project(VideoRef(str(video), 12.0, 24.0, 160, 120, False), [seg], [clip], 2)
    return p, store


def test_round_trip(tmp_path: Path) -> None:
    p, store = _project(tmp_path)
    path = save_project(p, store.snapshot(p.audio_ids()), tmp_path / "film.foleyproj")
    data = json.loads(path.read_text())
    assert data["format"] == proj.FORMAT and data["version"] == proj.FORMAT_VERSION
    assert sorted(x.name for x in media_dir_for(path).iterdir()) == sorted(f"{i}.wav" for i in p.audio_ids())
    q, audio = load_project(path)
    assert q == p
    for audio_id in p.audio_ids():  # 24-bit PCM: equal to within half an LSB
        np.testing.assert_allclose(audio[audio_id], store.get(audio_id), atol=2 ** -23)


def test_suffix_is_added_and_unreferenced_audio_pruned(tmp_path: Path) -> None:
    p, store = _project(tmp_path)
    path = save_project(p, store.snapshot(p.audio_ids()), tmp_path / "film")
    assert path.name == "film.foleyproj"
    p.segments[0].takes = p.segments[0].takes[1:]  # take 0's audio is referenced by nothing now
    save_project(p, store.snapshot(p.audio_ids()), path)
    assert {x.stem for x in media_dir_for(path).iterdir()} == p.audio_ids()


def test_a_failed_save_leaves_the_previous_project_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p, store = _project(tmp_path)
    path = save_project(p, store.snapshot(p.audio_ids()), tmp_path / "film.foleyproj")
    before = path.read_bytes()
    p.clips[0].gain_db = 6.0

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(proj.os, "replace", full)
    with pytest.raises(OSError):
        save_project(p, store.snapshot(p.audio_ids()), path)
    assert path.read_bytes() == before
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".part")]


def test_a_project_moved_with_its_video_finds_it(tmp_path: Path) -> None:
    p, store = _project(tmp_path)
    save_project(p, store.snapshot(p.audio_ids()), tmp_path / "film.foleyproj")
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("film.foleyproj", "film.mp4"):
        (moved / name).write_bytes((tmp_path / name).read_bytes())
    (moved / "film.media").mkdir()
    for wav in (tmp_path / "film.media").iterdir():
        (moved / "film.media" / wav.name).write_bytes(wav.read_bytes())
    (tmp_path / "film.mp4").unlink()
    q, _ = load_project(moved / "film.foleyproj")
    assert q.video is not None and Path(q.video.path) == (moved / "film.mp4").resolve()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a readable project"),
        (json.dumps({"format": "something-else", "version": 1}), "not a Foley project"),
        ("7", "holds a JSON int, not an object"),  # found by the fuzzer: was an AttributeError
        ("[1, 2]", "holds a JSON list"),
        (json.dumps({"format": proj.FORMAT, "version": 99}), "newer version"),
        (json.dumps({"format": proj.FORMAT, "version": 1, "segments": [{"id": "x"}]}), "damaged"),
    ],
)
def test_bad_project_files_say_what_is_wrong(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.foleyproj"
    path.write_text(content)
    with pytest.raises(ProjectFileError, match=match):
        load_project(path)


def test_missing_audio_is_named(tmp_path: Path) -> None:
    p, store = _project(tmp_path)
    path = save_project(p, store.snapshot(p.audio_ids()), tmp_path / "film.foleyproj")
    victim = next(media_dir_for(path).iterdir())
    victim.unlink()
    with pytest.raises(ProjectFileError, match=victim.name):
        load_project(path)
