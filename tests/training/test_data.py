"""Data: discovery, splits by source, the resumable feature cache and its skip reasons, deterministic batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from media_writers import write_video_without_audio

from engine.spec import DIFF_FOLEY
from training import data
from training.config import DataConfig
from training.data import (
    DataError,
    VideoEntry,
    assign_splits,
    batch_indices,
    chunk_spans,
    crop_starts,
    discover,
    preprocess,
    source_id,
)
from training.synthetic import write_clip


def test_source_id_groups_numbered_clips() -> None:
    assert source_id("vgg/abc123_000030.mp4") == "vgg/abc123"
    assert source_id("take.mp4") == "take"
    assert source_id("a/src01_004.mp4") == "a/src01"
    assert source_id("_3.mp4") == "_3"  # never an empty stem


def _touch(folder: Path, *names: str) -> None:
    for n in names:
        p = folder / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_discover_honours_splits_json_and_list_files(tmp_path: Path) -> None:
    root = tmp_path / "set"
    _touch(root, "a/x_1.mp4", "a/x_2.mp4", "b/y.mkv", "c/z.webm", "notes.txt")
    (root / "splits.json").write_text(json.dumps({"train": ["a/x_1.mp4", "a/x_2.mp4"], "val": ["b/y.mkv"],
                                                  "test": ["gone.mp4"]}))
    entries, skipped = discover([str(root)], DataConfig().extensions)
    assert {e.rel: e.split for e in entries} == {"a/x_1.mp4": "train", "a/x_2.mp4": "train", "b/y.mkv": "val"}
    assert {(s["path"], s["reason"]) for s in skipped} == {("c/z.webm", "not in splits.json"),
                                                          ("gone.mp4", "missing")}
    lst = tmp_path / "list.txt"
    lst.write_text("# clips\nset/a/x_1.mp4 test\nset/c/z.webm\nset/missing.mp4\n")
    entries, skipped = discover([str(lst)], DataConfig().extensions)
    assert [(e.rel, e.split) for e in entries] == [("set/a/x_1.mp4", "test"), ("set/c/z.webm", None)]
    assert skipped[0]["reason"] == "missing"
    with pytest.raises(DataError, match="neither a folder nor a list file"):
        discover([str(tmp_path / "nope")], DataConfig().extensions)


def test_splits_are_by_source_deterministic_and_cover_val_test() -> None:
    entries = [VideoEntry(f"/v/s{s}_{i}.mp4", f"s{s}_{i}.mp4") for s in range(10) for i in range(3)]
    assign_splits(entries, val_fraction=0.1, test_fraction=0.1, seed=0)
    by_source: dict[str, set[str]] = {}
    for e in entries:
        by_source.setdefault(source_id(e.rel), set()).add(str(e.split))
    assert all(len(v) == 1 for v in by_source.values())  # a source never straddles splits
    counts = {s: sum(v == {s} for v in by_source.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 8, "val": 1, "test": 1}
    again = [VideoEntry(e.path, e.rel) for e in entries]
    assign_splits(again, val_fraction=0.1, test_fraction=0.1, seed=0)
    assert [e.split for e in again] == [e.split for e in entries]
    few = [VideoEntry(f"/v/s{s}.mp4", f"s{s}.mp4") for s in range(3)]
    assign_splits(few, val_fraction=0.1, test_fraction=0.1, seed=0)
    assert sorted(str(e.split) for e in few) == ["test", "train", "val"]


def test_chunks_and_crops() -> None:
    assert chunk_spans(21.0, 10.0, 8.192) == [(0.0, 10.0), (10.0, 10.0)]
    assert chunk_spans(18.5, 10.0, 8.192) == [(0.0, 10.0), (10.0, 8.5)]
    assert chunk_spans(5.0, 10.0, 8.192) == []
    clip = data.Clip("k", "p", "r", "s", "train", 0.0, 10.0, 40)
    assert crop_starts(clip, DIFF_FOLEY, 0.5) == [0.0, 0.5, 1.0, 1.5]
    assert crop_starts(clip, DIFF_FOLEY, 1.0) == [0.0, 1.0]


def test_batch_indices_are_a_pure_function_of_the_step() -> None:
    n, b = 10, 4
    seen = np.concatenate([batch_indices(0, "s", step, b, n) for step in range(5)])  # 20 samples = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert np.array_equal(batch_indices(0, "s", 3, b, n), batch_indices(0, "s", 3, b, n))
    assert not np.array_equal(batch_indices(0, "s", 0, b, n), batch_indices(1, "s", 0, b, n))


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good 21 s clip (two 10 s chunks, the 1 s rest dropped) and one of each kind of bad input."""
    root = tmp_path_factory.mktemp("messy")
    write_clip(root / "good_1.mp4", kind=0, seconds=21.0, seed=1)
    write_clip(root / "short_1.mp4", kind=1, seconds=4.0, seed=2)
    write_clip(root / "quiet_1.mp4", kind=2, seconds=9.0, seed=3, audio=np.zeros(9 * 16000, np.float32))
    write_video_without_audio(root / "mute_1.mp4")
    (root / "broken_1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def test_preprocess_skips_bad_inputs_with_reasons_and_resumes(messy_folder: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = DataConfig(inputs=[str(messy_folder)], workers=1)
    index = preprocess(cfg, DIFF_FOLEY, tmp_path / "cache", progress=False)
    rep = index.report
    assert rep["skipped"] == {"no audio": 1, "silent": 1, "too short": 1, "unreadable": 1}
    assert {s["path"] for s in rep["skipped_files"]} == {"short_1.mp4", "quiet_1.mp4", "mute_1.mp4", "broken_1.mp4"}
    assert [(c.rel, c.start, c.duration, c.frames) for c in index.clips] == [("good_1.mp4", 0.0, 10.0, 40),
                                                                           ("good_1.mp4", 10.0, 10.0, 40)]
    store = data.ClipStore(tmp_path / "cache", index.clips)
    assert store.wav(1).shape == (160_000,) and store.feats(1).shape == (40, 1280)
    assert store.mel(0).shape == (128, 160_000 // 256 + 1) and 0 <= store.mel(0).min() <= store.mel(0).max() <= 1
    # the same call again touches no video: every record exists
    monkeypatch.setattr(data, "process_video", lambda *a, **k: pytest.fail("re-processed a cached video"))
    again = preprocess(cfg, DIFF_FOLEY, tmp_path / "cache", progress=False)
    assert [c.key for c in again.clips] == [c.key for c in index.clips]
    # other preprocessing settings against the same cache are refused
    with pytest.raises(DataError, match="other preprocessing settings"):
        preprocess(DataConfig(inputs=[str(messy_folder)], silence_dbfs=-40.0), DIFF_FOLEY, tmp_path / "cache",
                   progress=False)
