"""Locates the top-level `resources/` folder in a source checkout, an installed package, or a frozen build, and
lists the demo videos shipped in `resources/demo/`."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


def root() -> Path:
    """`resources/` beside the packages (dev and editable installs) or inside a PyInstaller bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def path(*parts: str) -> Path:
    return root().joinpath(*parts)


@dataclass(frozen=True)
class DemoVideo:
    path: Path
    title: str  # menu text
    description: str  # tooltip: what is in it and where it comes from


def demo_videos(demo_dir: Path | None = None) -> list[DemoVideo]:
    """The silent test-split clips (described by `test_clips.json`: the categories and event times the picture
    shows) first, then any other video of the folder (the Big Buck Bunny excerpt: real film, out of domain)."""
    demo_dir = demo_dir or path("demo")
    if not demo_dir.is_dir():
        return []
    described: dict[str, dict] = {}
    meta = demo_dir / "test_clips.json"
    if meta.is_file():
        try:
            described = {c["file"]: c for c in json.loads(meta.read_text(encoding="utf-8"))}
        except (ValueError, KeyError, TypeError):
            described = {}  # a damaged description hides the descriptions, not the videos
    out: list[DemoVideo] = []
    for name, c in described.items():
        p = demo_dir / name
        if p.is_file():
            cats = ", ".join(x.replace("_", " ") for x in c.get("categories", []))
            times = ", ".join(f"{e['time']:g}" for e in c.get("events", []))
            family = str(c.get("family", p.stem)).capitalize()
            out.append(DemoVideo(p, f"{family}: {cats} (test clip)" if cats else f"{family} (test clip)",
                                 f"{p.name}: a silent clip of the dataset's test split (never trained on); "
                                 f"events at {times} s"))
    for p in sorted(demo_dir.glob("*.mp4")):
        if p.name not in described:
            out.append(DemoVideo(p, f"{p.stem.replace('_', ' ')} (real film, out of domain)",
                                 f"{p.name}: see resources/demo/ATTRIBUTION.md"))
    return out
