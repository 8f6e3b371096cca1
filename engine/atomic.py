"""Atomic file replacement: the one way this project writes a file a crash must not leave half-written.

`atomic_replace(path)` yields a temporary path beside `path` (same folder, so the rename is atomic); when the block
succeeds the temp file is fsynced, renamed over `path` and the folder fsynced (the rename itself made durable);
when it raises, the temp file is removed and `path` is untouched. Writers that need a path (PyAV, safetensors,
numpy, torch) write to the yielded path; `atomic_write_bytes` / `atomic_write_text` are the in-memory forms.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in `directory` durable (best effort: not every platform can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_replace(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp file beside `path` (created empty, hidden: `.<name>.<random><suffix>`) for the block to write; on
    success fsync + rename over `path` + fsync of the folder, on failure the temp file is deleted. Creates the
    parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through `atomic_replace`."""
    with atomic_replace(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 `text` to `path` through `atomic_replace`, so a crash never leaves half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))
