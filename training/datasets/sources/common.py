"""What the fetching and the scanning share: the extracted folder's marker and metadata files, the error
type and file hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

MARKER = "EXTRACTED.json"
SCAN_FILE = "catalogue.json"
FILES_META = "FILES.json"  # per-file licence, credit and source group that a container (opensfx.cat) states


class SourceError(RuntimeError):
    """A package cannot be downloaded or extracted; the message says what to do."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
