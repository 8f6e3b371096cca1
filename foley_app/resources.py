"""Locates the top-level `resources/` folder in a source checkout, an installed package, or a frozen build."""

from __future__ import annotations

import sys
from pathlib import Path


def root() -> Path:
    """`resources/` beside the packages (dev and editable installs) or inside a PyInstaller bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def path(*parts: str) -> Path:
    return root().joinpath(*parts)
