"""What every scene family shares: the categories each family shows, the context a scene draws from
(`Ctx`), its events (`SceneEvent`), event timing (`plan_frames`) and the `Scene` base class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.compose import PlacedSound, RecordingBank
from training.datasets.scenes.art import ArtLibrary
from training.datasets.scenes.draw import SKIES, Particles, paint_ground, paint_sky
from training.datasets.sources import ArtFile, Recording

FAMILIES: dict[str, tuple[str, ...]] = {
    "impact": ("impact_wood", "impact_metal", "impact_stone", "impact_dirt", "impact_flesh", "shield_wood",
               "shield_metal", "sword_clash", "swing_whoosh"),
    "walk": ("footstep_grass", "footstep_gravel", "footstep_sand", "footstep_snow", "footstep_wood",
             "footstep_stone", "footstep_metal", "footstep_water"),
    "work": ("axe_tree", "pick_stone", "pick_metal", "hammer_wood", "saw", "hammer_metal"),
    "animals": ("animal_cattle", "animal_chicken", "animal_horse", "animal_elephant", "animal_pig", "animal_goat",
                "animal_sheep", "animal_lion", "animal_camel", "animal_wolf"),
}
AMBIENCES = ("water", "rain", "wind", "fire")


@dataclass
class Ctx:
    """What a scene needs: frame geometry, this split's recordings by category, art, audio, and a used-art log."""

    width: int
    height: int
    fps: int
    n_frames: int
    pool: dict[str, list[Recording]]
    art: ArtLibrary
    bank: RecordingBank
    used_art: dict[str, ArtFile] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    def pick_recording(self, category: str, rng: np.random.Generator) -> Recording:
        recs = self.pool[category]
        return recs[int(rng.integers(len(recs)))]


@dataclass
class SceneEvent:
    frame: int
    category: str
    recording: Recording
    level_db: float
    pitch: float
    point: tuple[float, float]  # world pixels of the contact
    action: str
    lowpass: float | None = None
    max_seconds: float | None = None

    def placed(self, fps: int) -> PlacedSound:
        return PlacedSound(self.recording, self.frame / fps, self.level_db, self.pitch, self.lowpass,
                           self.max_seconds)


def plan_frames(rng: np.random.Generator, fps: int, start: float, end: float, n_max: int, min_gap: float,
                long_gap: tuple[float, float] = (1.1, 2.6), p_long: float = 0.35) -> list[int]:
    """Event frames in [start, end] s: gaps of min_gap..min_gap+0.6 s, or quiet stretches of `long_gap` s."""
    frames: list[int] = []
    t = start + rng.uniform(0, 0.6)
    while len(frames) < n_max and t <= end:
        f = round(t * fps)
        if not frames or f - frames[-1] >= round(min_gap * fps):
            frames.append(f)
        gap = rng.uniform(*long_gap) if rng.random() < p_long else rng.uniform(min_gap, min_gap + 0.6)
        t += gap
    return frames


class Scene:
    family = ""

    def __init__(self, ctx: Ctx, rng: np.random.Generator, categories: list[str]) -> None:
        self.ctx = ctx
        self.rng = rng
        self.categories = categories
        self.W, self.H, self.fps = ctx.width, ctx.height, ctx.fps
        self.events: list[SceneEvent] = []
        self.particles = Particles(ctx.fps)
        self.horizon = int(self.H * rng.uniform(0.3, 0.48))
        self.mood = str(rng.choice(list(SKIES)))
        self.info: dict[str, Any] = {}

    # subclasses: plan() fills events and props; background(); draw(img, draw, f)
    def plan(self) -> None:
        raise NotImplementedError

    def background(self) -> Image.Image:
        raise NotImplementedError

    def draw(self, img: Image.Image, draw: ImageDraw.ImageDraw, f: int) -> None:
        raise NotImplementedError

    def view_points(self) -> list[tuple[float, float]]:
        """World points the camera should keep in view besides the event points (actors, targets)."""
        return []

    def ground_y(self, frac: float) -> float:
        return self.horizon + frac * (self.H - self.horizon)

    def art(self, role: str) -> Image.Image:
        return self.ctx.art.pick(role, self.rng, self.ctx.used_art)

    def base_background(self, patches: list[tuple[int, int, str]]) -> Image.Image:
        img = Image.new("RGB", (self.W, self.H))
        paint_sky(img, self.horizon, self.mood, self.rng)
        tile_px = int(self.W * self.rng.uniform(0.3, 0.7))
        textures = []
        for a, b, role in patches:
            tex = self.art(role)
            if role == "ground:wood":  # boards must run across the picture to read as a floor, not a fence
                g = np.asarray(tex.convert("L"), np.float32)
                if np.abs(np.diff(g, axis=1)).mean() > np.abs(np.diff(g, axis=0)).mean():
                    tex = tex.transpose(Image.Transpose.ROTATE_90)
            if role == "ground:water":  # shallow: the river bed shows through
                tex = Image.blend(tex.convert("RGB"), Image.new("RGB", tex.size, (150, 145, 120)), 0.4)
            textures.append((a, b, tex))
        paint_ground(img, self.horizon, textures, self.rng, tile_px)
        return img


def _active_seconds(x: np.ndarray, sr: int, rel_db: float = -30.0) -> float:
    """Seconds from the onset to the last sample above `rel_db` of the peak."""
    mag = np.abs(x)
    if not mag.size or mag.max() <= 0:
        return 0.0
    idx = np.nonzero(mag >= mag.max() * 10 ** (rel_db / 20))[0]
    return float(idx[-1] - idx[0]) / sr
