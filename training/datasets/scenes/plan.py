"""The clip plan: the family and its categories, the scene's events, the ambience, camera and colour grade
(`plan_clip`), and the frames rendered from it (`ClipPlan.frames`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.compose import AmbienceBed
from training.datasets.scenes.ambience import AmbienceLayer
from training.datasets.scenes.animals import AnimalScene
from training.datasets.scenes.art import ArtLibrary
from training.datasets.scenes.base import AMBIENCES, FAMILIES, Ctx, Scene
from training.datasets.scenes.impact import ImpactScene
from training.datasets.scenes.walk import WalkScene
from training.datasets.scenes.work import WorkScene
from training.datasets.sources import Recording

# RMS of the bed before the master gain (dBFS); events peak around -3 dBFS. Fire crackles are peaky: lower.
AMBIENCE_RMS_DB = {"water": (-34.0, -24.0), "rain": (-36.0, -26.0), "wind": (-34.0, -24.0), "fire": (-38.0, -28.0)}
FAMILY_WEIGHTS = {"impact": 0.3, "walk": 0.25, "work": 0.25, "animals": 0.2}
SCENES = {"impact": ImpactScene, "walk": WalkScene, "work": WorkScene, "animals": AnimalScene}


@dataclass
class Camera:
    zoom: float
    c0: tuple[float, float]
    c1: tuple[float, float]
    shakes: list[tuple[int, float]]
    width: int
    height: int
    n_frames: int

    def centre(self, f: int) -> tuple[float, float]:
        u = f / max(1, self.n_frames - 1)
        dx = dy = 0.0
        for sf, amp in self.shakes:
            age = f - sf
            if 0 <= age < 5:
                dx += amp * math.exp(-age / 1.5) * (1 if age % 2 == 0 else -1)
                dy += amp * 0.5 * math.exp(-age / 1.5) * (-1 if age % 2 == 0 else 1)
        return (self.c0[0] + (self.c1[0] - self.c0[0]) * u + dx, self.c0[1] + (self.c1[1] - self.c0[1]) * u + dy)

    def to_view(self, p: tuple[float, float], f: int) -> tuple[float, float]:
        """A world point in normalised view coordinates ([0, 1] is inside the frame)."""
        cx, cy = self.centre(f)
        return ((p[0] - cx) * self.zoom / self.width + 0.5, (p[1] - cy) * self.zoom / self.height + 0.5)

    def apply(self, img: Image.Image, f: int) -> Image.Image:
        cx, cy = self.centre(f)
        z = self.zoom
        data = (1 / z, 0, cx - self.width / (2 * z), 0, 1 / z, cy - self.height / (2 * z))
        return img.transform((self.width, self.height), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)


def make_camera(rng: np.random.Generator, W: int, H: int, n_frames: int, points: list[tuple[float, float]],
                shakes: list[tuple[int, float]]) -> Camera:
    """A zoom and a slow drift that keep every event point inside the frame."""
    xs = [p[0] for p in points] or [W / 2]
    ys = [p[1] for p in points] or [H / 2]
    margin = 0.12
    span_x = (max(xs) - min(xs)) / W + 2 * margin
    span_y = (max(ys) - min(ys)) / H + 2 * margin
    zmax = max(1.0, min(1.35, 1 / max(span_x, span_y, 1e-3)))
    zoom = float(rng.uniform(1.0, zmax))

    def feasible(lo_pts: float, hi_pts: float, size: float) -> tuple[float, float]:
        half = size / (2 * zoom)
        lo = max(half, hi_pts - half + margin * size / zoom)
        hi = min(size - half, lo_pts + half - margin * size / zoom)
        return (lo, hi) if lo <= hi else ((lo + hi) / 2, (lo + hi) / 2)

    fx = feasible(min(xs), max(xs), W)
    fy = feasible(min(ys), max(ys), H)

    def clamp(v: float, size: float) -> float:  # never show outside the world
        half = size / (2 * zoom)
        return float(min(max(v, half), size - half))

    c0 = (clamp(rng.uniform(*fx), W), clamp(rng.uniform(*fy), H))
    c1 = (clamp(rng.uniform(*fx), W), clamp(rng.uniform(*fy), H))
    return Camera(zoom, c0, c1, shakes, W, H, n_frames)


def colour_matrix(rng: np.random.Generator) -> tuple[float, ...]:
    """A per-clip colour grade: brightness, saturation and a warm/cool tint, as a 3x4 RGB matrix."""
    b = rng.uniform(0.85, 1.12)
    s = rng.uniform(0.75, 1.2)
    tint = rng.uniform(-0.06, 0.06)
    lum = np.array([0.299, 0.587, 0.114])
    m = np.zeros((3, 4))
    for i in range(3):
        m[i, :3] = (1 - s) * lum
        m[i, i] += s
    m[0, :3] *= 1 + tint
    m[2, :3] *= 1 - tint
    m *= b
    return tuple(float(v) for v in m.reshape(-1))


@dataclass
class ClipPlan:
    """Everything about one clip except its pixels and samples: events, ambience, room, camera and metadata."""

    scene: Scene
    ambience: AmbienceLayer | None
    bed: AmbienceBed | None
    camera: Camera
    grade: tuple[float, ...]
    frame_seed: int

    def frames(self) -> Iterator[np.ndarray]:
        """The clip's frames, uint8 (H, W, 3), rendered in order (marks accumulate on the background)."""
        sc = self.scene
        bg = sc.background()
        if self.ambience is not None:
            self.ambience.static(bg)
        fx_rng = np.random.default_rng(self.frame_seed)
        for f in range(sc.ctx.n_frames):
            mark = getattr(sc, "mark", None)
            if mark is not None:
                mark(bg, f)
            img = bg.copy()
            draw = ImageDraw.Draw(img, "RGBA")
            if self.ambience is not None and self.ambience.kind == "water":
                self.ambience.draw(img, draw, f, fx_rng)
            sc.draw(img, draw, f)
            if self.ambience is not None and self.ambience.kind != "water":
                self.ambience.draw(img, draw, f, fx_rng)
            out = self.camera.apply(img, f).convert("RGB", self.grade)
            yield np.asarray(out)


def choose_family(rng: np.random.Generator, pool: dict[str, list[Recording]],
                  art: ArtLibrary) -> tuple[str, list[str]]:
    """A scene family this split can fill, and one to three distinct categories for it."""
    usable: dict[str, list[str]] = {}
    for fam, cats in FAMILIES.items():
        ok = [c for c in cats if pool.get(c)]
        if fam == "animals":
            ok = [c for c in ok if art.has(f"portrait:{c[len('animal_'):]}")]
        if ok:
            usable[fam] = ok
    if not usable:
        raise ValueError("no event category has recordings in this split")
    fams = sorted(usable)
    w = np.array([FAMILY_WEIGHTS.get(f, 0.1) for f in fams])
    fam = fams[int(rng.choice(len(fams), p=w / w.sum()))]
    cats = usable[fam]
    k_max = {"impact": 3, "walk": 3, "work": 2, "animals": 3}[fam]
    k = int(rng.integers(1, min(k_max, len(cats)) + 1))
    chosen = [cats[int(i)] for i in rng.choice(len(cats), k, replace=False)]
    return fam, chosen


def plan_clip(ctx: Ctx, rng: np.random.Generator, ambience_prob: float = 0.65) -> ClipPlan:
    """Plan one clip: scene family and categories, events, ambience, camera and grade (no pixels yet)."""
    fam, cats = choose_family(rng, ctx.pool, ctx.art)
    scene: Scene = SCENES[fam](ctx, rng, cats)
    scene.plan()
    amb_kinds = [k for k in AMBIENCES if ctx.pool.get(k)]
    layer = bed = None
    if amb_kinds and rng.random() < ambience_prob:
        kind = amb_kinds[int(rng.integers(len(amb_kinds)))]
        if kind == "rain":
            scene.mood = "overcast"
        layer = AmbienceLayer(kind, scene, rng)
        rec = ctx.pick_recording(kind, rng)
        offset = float(rng.uniform(0, max(0.0, rec.duration - 1.0)))
        lo, hi = AMBIENCE_RMS_DB[kind]
        bed = AmbienceBed(rec, offset, float(rng.uniform(lo, hi)))
    shakes = [(e.frame, 1.5) for e in scene.events if fam == "impact" and e.category != "swing_whoosh"]
    camera = make_camera(rng, ctx.width, ctx.height, ctx.n_frames,
                         [e.point for e in scene.events] + scene.view_points(), shakes)
    return ClipPlan(scene, layer, bed, camera, colour_matrix(rng), int(rng.integers(2**31)))
