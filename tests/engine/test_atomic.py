"""engine.atomic: the one temp-file + fsync + rename of the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import atomic


def test_a_finished_block_replaces_the_file_durably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    target = tmp_path / "a" / "b" / "take.wav"
    with atomic.atomic_replace(target, suffix=".part") as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".take.wav.") and tmp.suffix == ".part"
        tmp.write_bytes(b"new")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    assert len(synced) == 2  # the file, then the folder holding the rename
    assert [p.name for p in target.parent.iterdir()] == ["take.wav"]


def test_a_failed_block_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "project.foley"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic.atomic_replace(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["project.foley"]
    with pytest.raises(KeyboardInterrupt), atomic.atomic_replace(target) as tmp:
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["project.foley"]


def test_text_and_bytes(tmp_path: Path) -> None:
    atomic.atomic_write_text(tmp_path / "x" / "m.json", "{\"ä\": 1}\n")
    assert (tmp_path / "x" / "m.json").read_text(encoding="utf-8") == "{\"ä\": 1}\n"
    atomic.atomic_write_bytes(tmp_path / "b.bin", b"\0\1")
    assert (tmp_path / "b.bin").read_bytes() == b"\0\1"
