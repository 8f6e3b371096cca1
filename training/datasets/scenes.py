"""Scenes: rendered videos whose visible events cause the sounds, drawn with the source package's own art.

Four scene families, one per clip, each with several events at whole frames and quiet stretches between them:

- `impact`: targets of distinct materials (a wooden board, a stone block, a metal plate, a patch of dirt, a game
  animal, a shield on a post, two crossed swords). Arrows and sling stones fly in and hit them at the event frame
  (arrows stick in wood, dirt and flesh and glance off stone and metal; stones bounce off); swords swing into
  shields or into each other. The target's texture is the material's art from the package.
- `walk`: a walker crosses one to three ground patches (grass, gravel, sand, snow, wooden boards, each a terrain
  texture from the package) and pauses now and then; every footfall lands at an event frame on the patch whose
  recording is heard, leaving a footprint and a puff.
- `work`: tools at work: an axe on a tree (bark texture, tree portrait crown), a pick on a stone or a metal-ore
  boulder, a hammer on a plank, a saw on a log; wind-up, strike at the event frame, chips or sparks.
- `animals`: one to three animals (the package's portraits, cut out) on a meadow; the one whose call is heard
  rears up and sends out sound rings for as long as its call lasts.

An ambience bed (water, rain, wind or fire) may run under any scene, and is always visible: a river band, rain
streaks, blowing leaves, a camp fire. Layout, scale, colours, sky, camera zoom and drift, speeds and timing are
random per clip. At every event frame a contact flash or pop appears exactly at that frame (not one earlier), so
"what is seen at frame k" and "what is heard from sample k * sr / fps" line up; effects linger for about 0.3 s
so that 4 fps sampling still sees them.

All randomness comes from the generator passed in: a clip is a pure function of (catalogue, seed, index).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.datasets.compose import AmbienceBed, PlacedSound, RecordingBank, shift_pitch
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
# RMS of the bed before the master gain (dBFS); events peak around -3 dBFS. Fire crackles are peaky: lower.
AMBIENCE_RMS_DB = {"water": (-34.0, -24.0), "rain": (-36.0, -26.0), "wind": (-34.0, -24.0), "fire": (-38.0, -28.0)}
FAMILY_WEIGHTS = {"impact": 0.3, "walk": 0.25, "work": 0.25, "animals": 0.2}

# fall-back colours when a package ships no art for a role (never for 0 A.D.)
_ROLE_COLOURS = {
    "ground:grass": (88, 120, 50), "ground:gravel": (130, 125, 115), "ground:sand": (205, 180, 130),
    "ground:snow": (235, 238, 245), "ground:wood": (120, 85, 50), "ground:dirt": (125, 95, 65),
    "material:wood": (140, 100, 60), "material:stone": (140, 140, 135), "material:metal": (170, 175, 185),
    "ore:metal": (110, 100, 80), "bark": (90, 65, 45), "water": (40, 90, 150), "ground:stone": (150, 145, 135),
    "ground:water": (50, 100, 150), "ground:metal": (120, 124, 130),
}
# roles whose art may stand in for a missing one (shallow water to wade through: the water texture)
_ROLE_FALLBACK = {"ground:water": "water"}
# what a footfall throws up, by surface (default: the surface's particle colours)
_STEP_COLOURS = {
    "metal": ((110, 112, 118), (170, 172, 178)), "water": ((150, 190, 225), (235, 245, 255)),
    "stone": ((135, 130, 122), (190, 186, 178)),
}
_PARTICLE_COLOURS = {
    "wood": ((150, 105, 60), (200, 160, 100)), "stone": ((120, 120, 115), (190, 188, 180)),
    "metal": ((255, 220, 120), (255, 255, 210)), "dirt": ((110, 85, 55), (170, 140, 100)),
    "flesh": ((120, 20, 20), (170, 40, 30)), "snow": ((240, 242, 250), (255, 255, 255)),
    "sand": ((200, 175, 125), (235, 215, 170)), "grass": ((70, 110, 40), (140, 170, 80)),
    "gravel": ((110, 108, 100), (170, 165, 155)),
}


# ---- art -----------------------------------------------------------------------------------------------------
class ArtLibrary:
    """Picks and loads art by role (RGBA, longest side <= `max_side`), with a per-process cache."""

    def __init__(self, extracted_root: Path, art: dict[str, list[ArtFile]], max_side: int = 512) -> None:
        self.root = Path(extracted_root)
        self.art = {k: sorted(v, key=lambda a: a.id) for k, v in art.items()}
        self.max_side = max_side
        self._cache: OrderedDict[str, Image.Image] = OrderedDict()

    def has(self, role: str) -> bool:
        return bool(self.art.get(role))

    def pick(self, role: str, rng: np.random.Generator, used: dict[str, ArtFile]) -> Image.Image:
        files = self.art.get(role) or self.art.get(_ROLE_FALLBACK.get(role, "")) or []
        if not files:
            return _procedural(role, rng)
        a = files[int(rng.integers(len(files)))]
        used[a.id] = a
        img = self._cache.get(a.id)
        if img is None:
            with Image.open(self.root / a.local) as im:
                img = im.convert("RGBA")
            if max(img.size) > self.max_side:
                img.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
            self._cache[a.id] = img
            if len(self._cache) > 96:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(a.id)
        return img


def _procedural(role: str, rng: np.random.Generator, size: int = 128) -> Image.Image:
    if role == "ground:metal":
        return tread_plate(rng, size)
    base = np.array(_ROLE_COLOURS.get(role, (128, 128, 128)), np.float32)
    noise = rng.normal(0, 18, (size // 4, size // 4, 1)).astype(np.float32)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    return img.convert("RGBA")


def tread_plate(rng: np.random.Generator, size: int = 128) -> Image.Image:
    """A steel floor: brushed grey plate with raised diagonal treads and seams (no package ships one)."""
    grey = float(rng.uniform(105, 150))
    streaks = rng.normal(0, 6, (size, 1, 1)) + rng.normal(0, 4, (size, size, 1))  # brushed along x
    tint = np.array([0.97, 1.0, 1.04], np.float32)
    arr = np.clip((grey + streaks) * tint, 0, 255).astype(np.uint8)
    img = Image.fromarray(np.broadcast_to(arr, (size, size, 3)).copy())
    d = ImageDraw.Draw(img)
    step = size // 8
    for y in range(0, size, step):
        for x in range(0, size, step):
            ox = step // 2 if (y // step) % 2 else 0
            cx, cy = x + ox + step // 2, y + step // 2
            flip = 1 if ((x // step + y // step) % 2) else -1
            dx, dy = step * 0.3, step * 0.12 * flip
            d.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=(int(grey + 45),) * 3, width=2)
            d.line([(cx - dx, cy - dy + 2), (cx + dx, cy + dy + 2)], fill=(int(grey - 45),) * 3, width=1)
    d.line([(0, 0), (size, 0)], fill=(int(grey - 60),) * 3, width=2)  # plate seams
    d.line([(0, 0), (0, size)], fill=(int(grey - 60),) * 3, width=2)
    return img.convert("RGBA")


def opaque_crop(img: Image.Image, rng: np.random.Generator, aspect: float) -> Image.Image:
    """An RGB crop of the opaque part of a texture or atlas, with width/height ratio `aspect`.

    Tries a dozen windows (half to most of the opaque area) and keeps the most opaque; what transparency is left
    is filled with the crop's mean colour.
    """
    alpha = np.asarray(img.getchannel("A")) > 200
    ys, xs = np.nonzero(alpha)
    if len(xs) < 16:
        x0, y0, x1, y1 = 0, 0, img.width, img.height
    else:
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    w, h = x1 - x0, y1 - y0
    best, best_score = (x0, y0, x1, y1), -1.0
    for _ in range(12):
        frac = rng.uniform(0.45, 0.85)
        if w / h > aspect:
            ch = max(4, int(h * frac))
            cw = max(4, min(w, int(ch * aspect)))
        else:
            cw = max(4, int(w * frac))
            ch = max(4, min(h, int(cw / aspect)))
        cx = x0 + int(rng.integers(0, max(1, w - cw + 1)))
        cy = y0 + int(rng.integers(0, max(1, h - ch + 1)))
        score = float(alpha[cy : cy + ch, cx : cx + cw].mean())
        if score > best_score + 1e-9:
            best, best_score = (cx, cy, cx + cw, cy + ch), score
    crop = img.crop(best)
    rgb = crop.convert("RGB")
    if best_score < 0.999:
        fill = Image.new("RGB", crop.size, mean_colour(rgb))
        fill.paste(rgb, (0, 0), crop.getchannel("A"))
        rgb = fill
    return rgb


def cutout(img: Image.Image) -> Image.Image:
    """The subject of a portrait on a plain dark background as RGBA (sprites with real alpha pass through).

    Background = the pixels close to their row's border colour that are connected to the border, so that dark
    parts inside the subject (a black cow's patches) stay.
    """
    from scipy import ndimage

    a = np.asarray(img.getchannel("A"))
    if (a < 128).mean() > 0.05:
        return img
    rgb = np.asarray(img.convert("RGB")).astype(np.float32)
    h, w = rgb.shape[:2]
    # a smooth background model: a quadratic surface per channel fitted to a 3-pixel border
    yy, xx = np.mgrid[0:h, 0:w]
    u, v = xx / max(1, w - 1) - 0.5, yy / max(1, h - 1) - 0.5
    basis = np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], axis=-1)  # (h, w, 6)
    ring = np.zeros((h, w), bool)
    ring[:3], ring[-3:], ring[:, :3], ring[:, -3:] = True, True, True, True
    sel = ring.copy()
    for _ in range(3):  # robust: drop border pixels that belong to the subject (it may touch the border)
        coef, *_ = np.linalg.lstsq(basis[sel], rgb[sel], rcond=None)  # (6, 3)
        resid = np.sqrt(((rgb - basis @ coef) ** 2).sum(axis=2))
        keep = ring & (resid < max(12.0, float(np.percentile(resid[ring], 60))))
        if keep.sum() < 24:
            break
        sel = keep
    bg = basis @ coef
    d = np.sqrt(((rgb - bg) ** 2).sum(axis=2))
    like = ndimage.binary_opening(d < 30.0, iterations=1)
    labels, _ = ndimage.label(like)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    back = np.isin(labels, border[border > 0])
    fg = ndimage.binary_opening(~back, iterations=2)
    lab, n = ndimage.label(fg)
    if n > 1:  # keep the subject: the largest piece and any piece at least a fifth of it
        sizes = ndimage.sum(fg, lab, index=np.arange(1, n + 1))
        fg = np.isin(lab, 1 + np.nonzero(sizes >= 0.2 * sizes.max())[0])
    fg = ndimage.binary_erosion(ndimage.binary_fill_holes(fg), iterations=1)
    m = Image.fromarray((fg * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    out = img.convert("RGB").convert("RGBA")
    out.putalpha(m)
    bbox = m.point(lambda v: 255 if v > 60 else 0).getbbox()
    return out.crop(bbox) if bbox else out


def tile(tex: Image.Image, w: int, h: int, tile_px: int, rng: np.random.Generator, squash: float = 1.0
         ) -> Image.Image:
    """An RGB image of size (w, h) tiled with `tex` scaled so that one tile is `tile_px` wide (and its height
    times `squash`: ground seen at a grazing angle)."""
    t = tex.convert("RGB")
    tw = max(8, tile_px)
    th = max(8, round(t.height * tw / t.width * squash))
    t = t.resize((tw, th), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (w, h))
    ox, oy = int(rng.integers(tw)), int(rng.integers(th))
    for y in range(-oy, h, th):
        for x in range(-ox, w, tw):
            out.paste(t, (x, y))
    return out


def mean_colour(img: Image.Image) -> tuple[int, int, int]:
    arr = np.asarray(img.convert("RGB").resize((16, 16))).reshape(-1, 3).mean(axis=0)
    return tuple(int(v) for v in arr)  # type: ignore[return-value]


def _mix(c1, c2, t: float) -> tuple[int, int, int]:
    return tuple(int(a + (b - a) * t) for a, b in zip(c1, c2))  # type: ignore[return-value]


# ---- context, events, particles ------------------------------------------------------------------------------
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


@dataclass
class _Particle:
    f0: int
    x: float
    y: float
    vx: float
    vy: float
    life: int
    colour: tuple[int, int, int]
    size: float
    gravity: float
    floor: float


class Particles:
    """Bursts of chips, sparks, dust and drops: position from launch velocity and gravity, fading out."""

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self.items: list[_Particle] = []

    def burst(self, f: int, x: float, y: float, n: int, rng: np.random.Generator, colours, speed: float,
              angle: float = -math.pi / 2, spread: float = math.pi, life: float = 0.45, size: float = 2.0,
              gravity: float = 400.0, floor: float = 1e9) -> None:
        c0, c1 = colours
        for _ in range(n):
            a = angle + rng.uniform(-spread / 2, spread / 2)
            v = speed * rng.uniform(0.4, 1.0)
            self.items.append(_Particle(
                f, x, y, v * math.cos(a), v * math.sin(a), max(2, round(life * rng.uniform(0.6, 1.2) * self.fps)),
                _mix(c0, c1, float(rng.random())), size * rng.uniform(0.6, 1.4), gravity, floor,
            ))

    def draw(self, draw: ImageDraw.ImageDraw, f: int) -> None:
        keep = []
        for p in self.items:
            age = f - p.f0
            if age < 0:
                keep.append(p)
                continue
            if age > p.life:
                continue
            keep.append(p)
            t = age / self.fps
            x = p.x + p.vx * t
            y = min(p.floor, p.y + p.vy * t + 0.5 * p.gravity * t * t)
            alpha = int(255 * (1 - age / (p.life + 1)) ** 0.7)
            r = p.size
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*p.colour, alpha))
        self.items = keep


def draw_flash(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, age: int, colour=(255, 248, 215)) -> None:
    """A contact flash: full at the impact frame, half the next frame, gone after."""
    if age < 0 or age > 1:
        return
    rr = r * (1.0 + 0.5 * age)
    alpha = 235 if age == 0 else 110
    pts = []
    for k in range(16):
        a = k * math.pi / 8
        rad = rr if k % 2 == 0 else rr * 0.45
        pts.append((x + rad * math.cos(a), y + rad * math.sin(a)))
    draw.polygon(pts, fill=(*colour, alpha))
    draw.ellipse((x - rr * 0.35, y - rr * 0.35, x + rr * 0.35, y + rr * 0.35), fill=(255, 255, 255, alpha))


def _ease(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3 - 2 * t)


def _rot(x: float, y: float, a: float) -> tuple[float, float]:
    return (x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a))


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


# ---- people and tools ----------------------------------------------------------------------------------------
@dataclass
class Person:
    height: float
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]

    @classmethod
    def random(cls, rng: np.random.Generator, height: float) -> Person:
        shirts = [(150, 40, 40), (40, 70, 140), (60, 110, 60), (170, 140, 60), (110, 60, 120), (200, 200, 190),
                  (90, 70, 50)]
        trousers = [(60, 50, 40), (40, 40, 55), (100, 90, 70), (30, 30, 30)]
        skins = [(235, 200, 170), (200, 150, 110), (150, 100, 70), (110, 75, 50)]
        return cls(height, shirts[int(rng.integers(len(shirts)))], trousers[int(rng.integers(len(trousers)))],
                   skins[int(rng.integers(len(skins)))])

    def draw(self, draw: ImageDraw.ImageDraw, hip: tuple[float, float], feet: list[tuple[float, float]],
             hands: list[tuple[float, float]], facing: int, lean: float = 0.0) -> None:
        h = self.height
        lw = max(2, round(h * 0.07))
        hx, hy = hip
        sx, sy = hx + lean * h * 0.15 * facing, hy - 0.32 * h  # shoulder
        for fx, fy in feet:
            leg = math.hypot(fx - hx, fy - hy)
            bend = max(0.0, 0.5 * h - leg) * 0.8 + h * 0.03
            kx, ky = (hx + fx) / 2 + facing * bend, (hy + fy) / 2
            draw.line([(hx, hy), (kx, ky), (fx, fy)], fill=self.trousers, width=lw, joint="curve")
            draw.line([(fx, fy), (fx + facing * h * 0.07, fy)], fill=(40, 30, 25), width=lw)
        draw.line([(hx, hy), (sx, sy)], fill=self.shirt, width=round(lw * 1.8))
        for ax, ay in hands:
            ex, ey = (sx + ax) / 2 - facing * h * 0.03, (sy + ay) / 2 + h * 0.04
            draw.line([(sx, sy), (ex, ey), (ax, ay)], fill=self.shirt, width=lw, joint="curve")
            draw.ellipse((ax - lw * 0.7, ay - lw * 0.7, ax + lw * 0.7, ay + lw * 0.7), fill=self.skin)
        r = 0.085 * h
        cx, cy = sx + facing * h * 0.01, sy - r * 1.25
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=self.skin)
        draw.ellipse((cx + facing * r * 0.45 - 1, cy - r * 0.2 - 1, cx + facing * r * 0.45 + 1, cy - r * 0.2 + 1),
                     fill=(30, 30, 30))


def draw_tool(draw: ImageDraw.ImageDraw, kind: str, base: tuple[float, float], angle: float, length: float,
              side: int) -> tuple[float, float]:
    """A tool whose handle starts at `base` and points along `angle`; returns where its working end is."""
    bx, by = base
    dx, dy = math.cos(angle), math.sin(angle)
    tip = (bx + dx * length, by + dy * length)
    lw = max(2, round(length * 0.06))
    if kind == "sword":
        grip = (bx + dx * length * 0.18, by + dy * length * 0.18)
        draw.line([base, grip], fill=(70, 45, 30), width=lw + 1)
        px, py = -dy, dx
        g = length * 0.09
        draw.line([(grip[0] - px * g, grip[1] - py * g), (grip[0] + px * g, grip[1] + py * g)], fill=(150, 120, 60),
                  width=lw)
        w = length * 0.045
        blade = [(grip[0] - px * w, grip[1] - py * w), (grip[0] + px * w, grip[1] + py * w), tip]
        draw.polygon(blade, fill=(205, 210, 220))
        draw.line([grip, tip], fill=(240, 243, 250), width=1)
        return tip
    draw.line([base, tip], fill=(110, 75, 40), width=lw)
    px, py = -dy * side, dx * side  # perpendicular, towards the striking side
    if kind == "axe":
        s = length * 0.22
        head = [(tip[0] - dx * s * 0.5, tip[1] - dy * s * 0.5), (tip[0] + px * s * 0.9 - dx * s * 0.7,
                tip[1] + py * s * 0.9 - dy * s * 0.7), (tip[0] + px * s * 1.0 + dx * s * 0.2,
                tip[1] + py * s * 1.0 + dy * s * 0.2), (tip[0] + dx * s * 0.2, tip[1] + dy * s * 0.2)]
        draw.polygon(head, fill=(90, 92, 98))
        return (tip[0] + px * s, tip[1] + py * s)
    if kind == "pick":
        s = length * 0.3
        a = (tip[0] + px * s - dx * s * 0.3, tip[1] + py * s - dy * s * 0.3)
        b = (tip[0] - px * s - dx * s * 0.3, tip[1] - py * s - dy * s * 0.3)
        draw.line([a, tip, b], fill=(80, 82, 88), width=lw + 1, joint="curve")
        return a
    if kind == "hammer":
        s = length * 0.14
        head = [(tip[0] + px * s - dx * s, tip[1] + py * s - dy * s), (tip[0] + px * s + dx * s * 0.6,
                tip[1] + py * s + dy * s * 0.6), (tip[0] - px * s * 0.8 + dx * s * 0.6,
                tip[1] - py * s * 0.8 + dy * s * 0.6), (tip[0] - px * s * 0.8 - dx * s, tip[1] - py * s * 0.8 - dy * s)]
        draw.polygon(head, fill=(70, 70, 75))
        return (tip[0] + px * s, tip[1] + py * s)
    return tip


def draw_arrow(draw: ImageDraw.ImageDraw, tip: tuple[float, float], angle: float, length: float) -> None:
    dx, dy = math.cos(angle), math.sin(angle)
    tail = (tip[0] - dx * length, tip[1] - dy * length)
    draw.line([tail, tip], fill=(120, 85, 45), width=2)
    px, py = -dy, dx
    h = max(3.0, length * 0.1)
    draw.polygon([tip, (tip[0] - dx * h + px * h * 0.45, tip[1] - dy * h + py * h * 0.45),
                  (tip[0] - dx * h - px * h * 0.45, tip[1] - dy * h - py * h * 0.45)], fill=(70, 70, 75))
    for s in (-1, 1):
        draw.line([tail, (tail[0] + dx * h * 1.2 + px * h * 0.5 * s, tail[1] + dy * h * 1.2 + py * h * 0.5 * s)],
                  fill=(225, 225, 215), width=2)


@dataclass
class Swing:
    """A striking tool's angle over time: rest, wind-up, strike at the event frame, hold, recover."""

    rest: float
    raised: float
    contact: float
    frames: list[int]
    fps: int
    windup: float = 0.45
    strike: float = 0.13
    recover: float = 0.35

    def angle(self, f: int) -> float:
        fps = self.fps
        for fe in self.frames:
            t = (f - fe) / fps
            if -self.windup - self.strike <= t < -self.strike:
                return self.rest + (self.raised - self.rest) * _ease((t + self.windup + self.strike) / self.windup)
            if -self.strike <= t < 0:
                u = (t + self.strike) / self.strike
                return self.raised + (self.contact - self.raised) * u * u
            if 0 <= t < 2 / fps:
                return self.contact
            if 2 / fps <= t < 2 / fps + self.recover:
                return self.contact + (self.rest - self.contact) * _ease((t - 2 / fps) / self.recover)
        return self.rest


# ---- backgrounds ---------------------------------------------------------------------------------------------
SKIES = {
    "day": ((70, 125, 200), (175, 205, 235)),
    "haze": ((140, 170, 200), (215, 225, 230)),
    "overcast": ((105, 110, 120), (175, 178, 182)),
    "dusk": ((55, 55, 105), (235, 160, 110)),
}


def paint_sky(img: Image.Image, horizon: int, mood: str, rng: np.random.Generator) -> None:
    top, bottom = SKIES[mood]
    w = img.width
    draw = ImageDraw.Draw(img)
    for y in range(horizon + 1):
        draw.line([(0, y), (w, y)], fill=_mix(top, bottom, y / max(1, horizon)))
    # distant hills
    for k in range(int(rng.integers(0, 3))):
        base = _mix(bottom, (60, 80, 60), 0.35 + 0.2 * k)
        pts = [(0, horizon)]
        n = 6
        for i in range(n + 1):
            pts.append((w * i / n, horizon - rng.uniform(0.02, 0.12) * img.height / (k + 1)))
        pts.append((w, horizon))
        draw.polygon(pts, fill=base)


def paint_ground(img: Image.Image, horizon: int, patches: list[tuple[int, int, Image.Image]],
                 rng: np.random.Generator, tile_px: int) -> None:
    """Ground from the horizon down: vertical bands of textures with feathered seams and distance haze."""
    w, h = img.size
    gh = h - horizon
    for x0, x1, tex in patches:
        band = tile(tex, x1 - x0 + 8, gh, tile_px, rng, squash=0.45)
        mask = Image.new("L", (x1 - x0 + 8, gh), 255)
        md = ImageDraw.Draw(mask)
        for i in range(8):  # feather both seams
            v = int(255 * (i + 1) / 9)
            md.line([(i, 0), (i, gh)], fill=v)
            md.line([(x1 - x0 + 7 - i, 0), (x1 - x0 + 7 - i, gh)], fill=v)
        img.paste(band, (x0 - 4, horizon), mask)
    haze = Image.new("L", (w, gh))
    hd = ImageDraw.Draw(haze)
    for y in range(gh):
        hd.line([(0, y), (w, y)], fill=int(110 * max(0.0, 1 - y / (0.45 * gh)) ** 2))
    img.paste(Image.new("RGB", (w, gh), (200, 210, 220)), (0, horizon), haze)


# ---- scenes --------------------------------------------------------------------------------------------------
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


_MATERIAL = {"impact_wood": "wood", "impact_metal": "metal", "impact_stone": "stone", "impact_dirt": "dirt",
             "impact_flesh": "flesh", "shield_wood": "wood", "shield_metal": "metal", "sword_clash": "metal",
             "swing_whoosh": "air"}
_SWUNG = ("shield", "clash", "swing")  # targets struck by a swing (a swordsman), not by a projectile
WHOOSH_STRIKE = 0.2  # s: a whoosh's fast stroke starts at its event frame and lasts this long


@dataclass
class _Target:
    category: str
    kind: str  # block | dirt | animal | shield | clash | swing (a sword swung through the air)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in world pixels
    sprite: Image.Image | None = None
    scale: float = 1.0  # relative size, drives level and pitch
    side: int = 1  # where a sword attacker stands (-1 left, +1 right)
    person: Person | None = None
    stuck: list[tuple[int, float, float, float, float]] = field(default_factory=list)  # (f, x, y, angle, len)
    hits: list[int] = field(default_factory=list)
    swing: Swing | None = None
    swing2: Swing | None = None
    pivot: tuple[float, float] = (0.0, 0.0)
    pivot2: tuple[float, float] = (0.0, 0.0)
    hip: tuple[float, float] = (0.0, 0.0)
    reach: float = 0.0
    sweep: tuple[float, float] = (0.0, 0.0)  # swing: the arc the blade sweeps (from, to angles)


@dataclass
class _Shot:
    frame: int
    target: int
    action: str  # arrow | sling
    start: tuple[float, float]
    hit: tuple[float, float]
    flight: int
    arc: float
    sticks: bool
    bounce: tuple[float, float] = (0.0, 0.0)
    length: float = 20.0


class ImpactScene(Scene):
    """Targets of distinct materials hit by arrows, sling stones or swords."""

    family = "impact"

    def plan(self) -> None:
        rng, W, H = self.rng, self.W, self.H
        n_t = len(self.categories)
        self.base = self.ground_y(rng.uniform(0.45, 0.8))
        slots = np.linspace(0, W, n_t + 1)
        self.targets: list[_Target] = []
        for i, cat in enumerate(self.categories):
            cx = (slots[i] + slots[i + 1]) / 2 + rng.uniform(-0.05, 0.05) * W
            scale = rng.uniform(0.75, 1.3) * (1.0 if n_t == 1 else 0.85)
            t = self._make_target(cat, cx, scale)
            self.targets.append(t)
        n_ev = int(rng.integers(3, 8))
        frames = plan_frames(rng, self.fps, 0.6, self.ctx.duration - 0.5, n_ev, 0.35)
        self.shots: list[_Shot] = []
        last_swing: dict[int, int] = {}
        for f in frames:
            order = rng.permutation(len(self.targets))
            ti = None
            for j in order:
                t = self.targets[int(j)]
                if t.kind in _SWUNG and f - last_swing.get(int(j), -999) < round(1.0 * self.fps):
                    continue
                ti = int(j)
                break
            if ti is None:
                continue
            t = self.targets[ti]
            rec = self.ctx.pick_recording(t.category, rng)
            level = -3.0 + 6.0 * math.log2(t.scale) + rng.uniform(-3, 1.5)
            pitch = float(np.clip(-2.5 * math.log2(t.scale) + rng.normal(0, 0.7), -2.5, 2.5))
            x0, y0, x1, y1 = t.box
            if t.kind in _SWUNG:
                last_swing[ti] = f
                t.hits.append(f)
                point = self._swing_point(t)
                action = {"shield": "sword hits shield", "clash": "swords clash",
                          "swing": f"{rec.action or 'sword'} swung through the air"}[t.kind]
            else:
                if t.kind == "dirt":
                    point = (rng.uniform(x0 + 4, x1 - 4), self.base + rng.uniform(-2, 4))
                else:
                    point = (rng.uniform(x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0)),
                             rng.uniform(y0 + 0.2 * (y1 - y0), y1 - 0.25 * (y1 - y0)))
                action_kind = rec.action if rec.action in ("arrow", "sling") else "arrow"
                side = -1 if rng.random() < 0.5 else 1
                start = (W / 2 + side * W * 0.65, point[1] - rng.uniform(0.05, 0.35) * H)
                if t.kind == "dirt":
                    start = (point[0] + side * W * rng.uniform(0.4, 0.7), point[1] - rng.uniform(0.3, 0.6) * H)
                sticks = action_kind == "arrow" and _MATERIAL[t.category] in ("wood", "dirt", "flesh")
                shot = _Shot(f, ti, action_kind, start, point, max(4, round(rng.uniform(0.25, 0.45) * self.fps)),
                             rng.uniform(0, 0.12) * H, sticks,
                             bounce=(-side * rng.uniform(30, 80), -rng.uniform(40, 120)),
                             length=rng.uniform(0.1, 0.15) * W)
                self.shots.append(shot)
                t.hits.append(f)
                action = f"{action_kind} hits {_MATERIAL[t.category]}"
            lowpass = float(rng.uniform(3500, 7000)) if t.scale < 0.8 else None
            self.events.append(SceneEvent(f, t.category, rec, level, pitch, point, action, lowpass=lowpass))
        for t in self.targets:
            if t.kind in ("shield", "swing"):
                self._make_swing(t)
            elif t.kind == "clash":
                self._make_swing(t, both=True)
        self.info = {"targets": [{"category": t.category, "kind": t.kind, "box": [round(v, 1) for v in t.box]}
                                 for t in self.targets]}

    def _make_target(self, cat: str, cx: float, scale: float) -> _Target:
        rng, W, H = self.rng, self.W, self.H
        mat = _MATERIAL[cat]
        if cat.startswith("shield"):
            spr = cutout(self.art("shield:metal" if mat == "metal" else "shield:wood"))
            hgt = H * 0.3 * scale
            spr = spr.resize((max(8, round(spr.width * hgt / spr.height)), max(8, round(hgt))),
                             Image.Resampling.LANCZOS)
            y1 = self.base - H * rng.uniform(0.08, 0.15)
            box = (cx - spr.width / 2, y1 - spr.height, cx + spr.width / 2, y1)
            t = _Target(cat, "shield", box, spr, scale, side=1 if cx < W / 2 else -1)  # swordsman inboard
            t.person = Person.random(rng, H * 0.45 * scale)
            return t
        if cat == "swing_whoosh":  # a swordsman alone; the box is where the blade sweeps
            hp = H * 0.45 * scale
            side = 1 if cx < W / 2 else -1  # he stands outboard and swings inboard
            c = (cx - side * hp * 0.15, self.base - hp * 0.6)
            t = _Target(cat, "swing", (c[0] - 4, c[1] - 4, c[0] + 4, c[1] + 4), None, scale, side=side)
            t.person = Person.random(rng, hp)
            return t
        if cat == "sword_clash":
            w = W * 0.45 * scale
            y = self.base - H * rng.uniform(0.2, 0.3) * scale
            return _Target(cat, "clash", (cx - w / 2, y - 10, cx + w / 2, y + 10), None, scale)
        if cat == "impact_dirt":
            w = W * 0.22 * scale
            return _Target(cat, "dirt", (cx - w / 2, self.base - 6, cx + w / 2, self.base + 6), None, scale)
        if cat == "impact_flesh":
            spr = cutout(self.art("portrait:game"))
            hgt = H * 0.32 * scale
            spr = spr.resize((max(8, round(spr.width * hgt / spr.height)), max(8, round(hgt))),
                             Image.Resampling.LANCZOS)
            if rng.random() < 0.5:
                spr = spr.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            box = (cx - spr.width / 2, self.base - spr.height, cx + spr.width / 2, self.base)
            return _Target(cat, "animal", box, spr, scale)
        role = {"wood": "material:wood", "stone": "material:stone", "metal": "material:metal"}[mat]
        w = W * rng.uniform(0.12, 0.2) * scale
        hgt = H * rng.uniform(0.2, 0.34) * scale
        if mat == "stone":
            hgt *= 0.75
            w *= 1.3
        tex = opaque_crop(self.art(role), rng, w / hgt).resize((max(4, round(w)), max(4, round(hgt))),
                                                                Image.Resampling.LANCZOS)
        shade = Image.new("L", tex.size)
        sd = ImageDraw.Draw(shade)
        for x in range(tex.width):  # a rounded, lit-from-the-left look
            u = x / max(1, tex.width - 1)
            sd.line([(x, 0), (x, tex.height)], fill=int(90 * abs(u - 0.35) ** 1.5))
        tex.paste((0, 0, 0), (0, 0), shade)
        if mat == "metal":
            hl = Image.new("L", tex.size)
            hd = ImageDraw.Draw(hl)
            x0 = int(tex.width * 0.28)
            hd.rectangle((x0, 0, x0 + max(2, tex.width // 10), tex.height), fill=90)
            tex.paste((255, 255, 255), (0, 0), hl.filter(ImageFilter.GaussianBlur(2)))
        spr = tex.convert("RGBA")
        box = (cx - w / 2, self.base - hgt, cx + w / 2, self.base)
        return _Target(cat, "block", box, spr, scale)

    def view_points(self) -> list[tuple[float, float]]:
        pts = []
        for t in self.targets:
            pts += [(t.box[0], t.box[1]), (t.box[2], t.box[3])]
            if t.person is not None:
                pts += [(t.hip[0], t.hip[1] - t.person.height * 0.5), (t.hip[0], self.base)]
        return pts

    def _swing_point(self, t: _Target) -> tuple[float, float]:
        x0, y0, x1, y1 = t.box
        if t.kind == "swing":  # the middle of the sweep
            return ((x0 + x1) / 2, (y0 + y1) / 2)
        if t.kind == "shield":
            return ((x0 + x1) / 2 + t.side * (x1 - x0) * 0.25, (y0 + y1) / 2 - (y1 - y0) * 0.1)
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def _make_swing(self, t: _Target, both: bool = False) -> None:
        c = self._swing_point(t)
        if not both:
            assert t.person is not None
            hp = t.person.height
            half_w = (t.box[2] - t.box[0]) / 2
            hip_x = c[0] + t.side * max(0.45 * hp, 0.3 * half_w + 0.3 * hp)
            t.hip = (hip_x, self.base - 0.5 * hp)
            t.pivot = (hip_x, self.base - 0.82 * hp)
            t.reach = math.hypot(c[0] - t.pivot[0], c[1] - t.pivot[1])
            contact = math.atan2(c[1] - t.pivot[1], c[0] - t.pivot[0])
            if t.kind == "swing":  # sweep through c: from well behind it to well past it, fast from the event on
                k = round(WHOOSH_STRIKE * self.fps)
                through = contact
                raised, contact = through + t.side * math.radians(100), through - t.side * math.radians(75)
                t.swing = Swing(through + t.side * math.radians(60), raised, contact, [h + k for h in t.hits],
                                self.fps, windup=0.5, strike=k / self.fps, recover=0.4)
                t.sweep = (raised, contact)
                return
            raised = contact + t.side * math.radians(150)
            t.swing = Swing(contact + t.side * math.radians(70), raised, contact, t.hits, self.fps)
            return
        reach = (t.box[2] - t.box[0]) / 2
        t.reach = reach * 1.05
        t.pivot = (c[0] - reach, c[1] + reach * 0.15)
        t.pivot2 = (c[0] + reach, c[1] + reach * 0.15)
        a1 = math.atan2(c[1] - t.pivot[1], c[0] - t.pivot[0])
        a2 = math.atan2(c[1] - t.pivot2[1], c[0] - t.pivot2[0])
        t.swing = Swing(a1 + math.radians(60), a1 - math.radians(100), a1, t.hits, self.fps, windup=0.35)
        t.swing2 = Swing(a2 - math.radians(60), a2 + math.radians(100), a2, t.hits, self.fps, windup=0.35)

    def background(self) -> Image.Image:
        role = "ground:dirt" if self.rng.random() < 0.6 else "ground:grass"
        if any(t.kind == "dirt" for t in self.targets):
            role = "ground:dirt"
        img = self.base_background([(0, self.W, role)])
        d = ImageDraw.Draw(img, "RGBA")
        for t in self.targets:
            x0, y0, x1, y1 = t.box
            d.ellipse((x0 - 4, self.base - 4, x1 + 4, self.base + 5), fill=(0, 0, 0, 70))  # contact shadow
            if t.kind == "dirt":
                d.ellipse((x0, y0, x1, y1 + 2), fill=(90, 65, 40, 150))
                d.ellipse((x0 + (x1 - x0) * 0.35, y0 + 3, x1 - (x1 - x0) * 0.35, y1 - 1), fill=(200, 60, 50, 170))
            if t.kind == "shield":
                cx = (x0 + x1) / 2
                d.line([(cx, y1 - 4), (cx, self.base)], fill=(95, 70, 45, 255), width=max(3, round(self.W * 0.02)))
        return img

    def _shake(self, t: _Target, f: int) -> float:
        off = 0.0
        for h in t.hits:
            age = f - h
            if 0 <= age < 6:
                off += (4.0 * t.scale) * math.exp(-age / 2.0) * (1 if age % 2 == 0 else -1)
        return off

    def draw(self, img: Image.Image, draw: ImageDraw.ImageDraw, f: int) -> None:
        rng_fx = self.rng
        for t in self.targets:
            dx = self._shake(t, f)
            x0, y0, _x1, _y1 = t.box
            if t.sprite is not None:
                img.paste(t.sprite, (round(x0 + dx), round(y0)), t.sprite)
            for fs, sx, sy, ang, ln in t.stuck:
                if fs <= f:
                    draw_arrow(draw, (sx + dx, sy), ang, ln)
            if t.kind in ("shield", "swing") and t.swing is not None and t.person is not None:
                a = t.swing.angle(f)
                px, py = t.pivot
                hand = (px + math.cos(a) * t.reach * 0.12, py + math.sin(a) * t.reach * 0.12)
                hp = t.person.height
                feet = [(t.hip[0] - hp * 0.1, self.base + 1), (t.hip[0] + hp * 0.1, self.base + 1)]
                t.person.draw(draw, t.hip, feet, [hand], facing=-t.side)
                draw_tool(draw, "sword", hand, a, t.reach * 0.88, -t.side)
            if t.kind == "clash" and t.swing is not None and t.swing2 is not None:
                for pv, sw in ((t.pivot, t.swing), (t.pivot2, t.swing2)):
                    a = sw.angle(f)
                    draw.ellipse((pv[0] - 4, pv[1] - 4, pv[0] + 4, pv[1] + 4), fill=(200, 160, 130))
                    draw_tool(draw, "sword", pv, a, t.reach, 1)
            if t.kind == "swing":
                for h in t.hits:  # the whoosh: a pale sweep of the blade's arc from the event frame, fading
                    age = f - h
                    if 0 <= age < round(0.35 * self.fps):
                        px, py = t.pivot
                        r = t.reach
                        a0, a1 = sorted(math.degrees(a) for a in t.sweep)
                        alpha = int(230 * (1 - age / (0.35 * self.fps)))
                        for dr, wd in ((0.0, 5), (-0.12, 3)):
                            rr = r * (1 + dr)
                            draw.arc((px - rr, py - rr, px + rr, py + rr), a0, a1, fill=(245, 248, 255, alpha),
                                     width=wd)
                continue
            for h in t.hits:
                if h == f:  # the contact frame: spawn effects now
                    ev = next(e for e in self.events if e.frame == f)
                    mat = _MATERIAL[t.category]
                    cols = _PARTICLE_COLOURS["metal" if t.kind in ("shield", "clash") and mat == "metal" else mat]
                    self.particles.burst(f, ev.point[0], ev.point[1], int(rng_fx.integers(8, 16)), rng_fx, cols,
                                         speed=self.W * 0.5, life=0.4, size=1.6, floor=self.base + 4)
        for s in self.shots:
            t = self.targets[s.target]
            age = f - s.frame
            if -s.flight <= age < 0:
                u = (age + s.flight) / s.flight
                x = s.start[0] + (s.hit[0] - s.start[0]) * u
                y = s.start[1] + (s.hit[1] - s.start[1]) * u - s.arc * 4 * u * (1 - u)
                vx = s.hit[0] - s.start[0]
                vy = (s.hit[1] - s.start[1]) - s.arc * 4 * (1 - 2 * u)
                self._draw_projectile(draw, s, (x, y), math.atan2(vy, vx))
            elif age == 0 and s.sticks:
                vx = s.hit[0] - s.start[0]
                vy = (s.hit[1] - s.start[1]) + s.arc * 4
                ang = math.atan2(vy, vx)
                tip = (s.hit[0] + math.cos(ang) * s.length * 0.15, s.hit[1] + math.sin(ang) * s.length * 0.15)
                t.stuck.append((f, tip[0], tip[1], ang, s.length))
                draw_arrow(draw, tip, ang, s.length)
            elif age >= 0 and not s.sticks:
                tt = age / self.fps
                x = s.hit[0] + s.bounce[0] * tt
                y = min(self.base + 2, s.hit[1] + s.bounce[1] * tt + 0.5 * 900 * tt * tt)
                self._draw_projectile(draw, s, (x, y), math.atan2(s.bounce[1] + 900 * tt, s.bounce[0]) + age * 0.6)
        self.particles.draw(draw, f)
        for e in self.events:
            if e.category != "swing_whoosh":  # a whoosh hits nothing: its sweep is its mark
                draw_flash(draw, e.point[0], e.point[1], self.W * 0.045, f - e.frame)

    def _draw_projectile(self, draw: ImageDraw.ImageDraw, s: _Shot, pos: tuple[float, float], ang: float) -> None:
        if s.action == "sling":
            r = max(2.0, self.W * 0.012)
            draw.ellipse((pos[0] - r, pos[1] - r, pos[0] + r, pos[1] + r), fill=(70, 65, 60))
        else:
            draw_arrow(draw, pos, ang, s.length)


class WalkScene(Scene):
    """A walker crossing ground patches; every footfall is an event on the patch under the foot."""

    family = "walk"

    def plan(self) -> None:
        rng, W, H, fps = self.rng, self.W, self.H, self.fps
        k = len(self.categories)
        cuts = np.sort(rng.uniform(0.25, 0.75, k - 1)) * W if k > 1 else np.array([])
        edges = [0, *[int(c) for c in cuts], W]
        self.patches = [(edges[i], edges[i + 1], self.categories[i]) for i in range(k)]
        self.base = self.ground_y(rng.uniform(0.55, 0.85))
        self.person = Person.random(rng, H * rng.uniform(0.38, 0.6))
        h = self.person.height
        period = rng.uniform(0.42, 0.62)
        stride = h * rng.uniform(0.22, 0.32)
        direction = 1 if rng.random() < 0.5 else -1
        x = W * (rng.uniform(0.02, 0.2) if direction > 0 else rng.uniform(0.8, 0.98))
        self.start_x = x
        self.direction0 = direction
        plants: list[tuple[int, int, float]] = []  # (frame, foot, x)
        t = rng.uniform(0.4, 1.0)
        foot = 0
        n_pause = int(rng.integers(0, 3))
        pause_at = set(rng.choice(np.arange(3, 14), n_pause, replace=False).tolist()) if n_pause else set()
        feet_x = [x, x]
        k_step = 0
        while t < self.ctx.duration - 0.35:
            nx = feet_x[1 - foot] + direction * stride
            if not (0.04 * W < nx < 0.96 * W):
                direction = -direction
                nx = feet_x[1 - foot] + direction * stride
            f = round(t * fps)
            if plants and f - plants[-1][0] < 4:
                f = plants[-1][0] + 4
            plants.append((f, foot, nx))
            feet_x[foot] = nx
            foot = 1 - foot
            k_step += 1
            t = f / fps + period * rng.uniform(0.94, 1.06)
            if k_step in pause_at:
                t += rng.uniform(0.7, 1.8)
        self.plants = plants
        self.period = period
        for f, _foot, px in plants:
            cat = next(c for a, b, c in self.patches if a <= px < b) if 0 <= px < W else self.patches[-1][2]
            rec = self.ctx.pick_recording(cat, rng)
            level = -8.0 + 5.0 * math.log2(h / (0.4 * H)) + rng.uniform(-2.5, 2.0)
            pitch = float(np.clip(rng.normal(0, 0.7), -1.5, 1.5))
            self.events.append(SceneEvent(f, cat, rec, level, pitch, (px, self.base), f"footfall on {cat[9:]}",
                                          max_seconds=0.6))
        self.info = {"patches": [{"x0": a, "x1": b, "category": c} for a, b, c in self.patches],
                     "walker_height": round(h, 1), "step_period": round(period, 3)}

    def background(self) -> Image.Image:
        return self.base_background([(a, b, "ground:" + c[len("footstep_"):]) for a, b, c in self.patches])

    def view_points(self) -> list[tuple[float, float]]:
        xs = [p[2] for p in self.plants] or [self.start_x]
        top = self.base - self.person.height * 1.05
        return [(min(xs), top), (max(xs), top)]

    def _foot(self, foot: int, f: int) -> tuple[float, float]:
        """(x, lift) of one foot at frame f."""
        own = [(pf, px) for pf, ft, px in self.plants if ft == foot]
        prev_x = self.start_x
        prev_f = -999
        for pf, px in own:
            if f < pf:
                # the swing starts at the other foot's footfall before this one (or the previous own plant)
                lift_off = max([q for q, ft, _ in self.plants if ft != foot and q < pf] + [prev_f])
                lift_off = max(lift_off, pf - round(self.period * self.fps))
                if f <= lift_off:
                    return prev_x, 0.0
                u = (f - lift_off) / (pf - lift_off)
                return prev_x + (px - prev_x) * _ease(u), math.sin(math.pi * u) * self.person.height * 0.1
            prev_x, prev_f = px, pf
        return prev_x, 0.0

    def draw(self, img: Image.Image, draw: ImageDraw.ImageDraw, f: int) -> None:
        (xa, la), (xb, lb) = self._foot(0, f), self._foot(1, f)
        h = self.person.height
        hip_x = (xa + xb) / 2
        lift = max(la, lb)
        hip_y = self.base - 0.5 * h + 0.25 * lift
        last = [p for p in self.plants if p[0] <= f]
        facing = (1 if last[-1][2] >= (last[-2][2] if len(last) > 1 else self.start_x) else -1) if last \
            else self.direction0
        draw.ellipse((hip_x - h * 0.18, self.base - 3, hip_x + h * 0.18, self.base + 4), fill=(0, 0, 0, 60))
        swing = (xa - xb) / max(1.0, h * 0.3)
        hands = [(hip_x - swing * h * 0.12, hip_y - 0.05 * h), (hip_x + swing * h * 0.12, hip_y - 0.05 * h)]
        self.person.draw(draw, (hip_x, hip_y), [(xa, self.base - la), (xb, self.base - lb)], hands, facing)
        for ev in self.events:
            if ev.frame == f:
                x, y = ev.point
                surface = ev.category[len("footstep_"):]
                cols = _STEP_COLOURS.get(surface) or _PARTICLE_COLOURS.get(surface, _PARTICLE_COLOURS["dirt"])
                light = (_mix(cols[0], (255, 255, 255), 0.45), _mix(cols[1], (255, 255, 255), 0.6))
                wet = surface == "water"  # a splash: more drops, thrown higher
                self.particles.burst(f, x, y - 1, int(self.rng.integers(28, 40) if wet else self.rng.integers(16, 26)),
                                     self.rng, light, speed=h * (2.6 if wet else 1.8), angle=-math.pi / 2,
                                     spread=math.pi * (0.7 if wet else 0.9), life=0.45 if wet else 0.4,
                                     size=max(1.8, h * 0.03), gravity=h * 6, floor=y + 2)
        self.particles.draw(draw, f)
        for ev in self.events:
            age = f - ev.frame
            if ev.category == "footstep_water" and 0 <= age < round(0.6 * self.fps):  # ripples spread and fade
                x, y = ev.point
                r = h * (0.12 + 0.05 * age)
                draw.ellipse((x - r, y - r * 0.3, x + r, y + r * 0.3),
                             outline=(230, 240, 255, max(0, 200 - 16 * age)), width=2)
            if 0 <= age <= 1:  # the footfall: a bright ring where the foot lands, for two frames
                x, y = ev.point
                r = h * (0.16 + 0.08 * age)
                draw.ellipse((x - r, y - r * 0.4, x + r, y + r * 0.4), fill=(255, 255, 240, 70 - 30 * age),
                             outline=(255, 255, 245, 230 - 100 * age), width=3)

    def mark(self, bg: Image.Image, f: int) -> None:
        """Footprints stay on the ground from the footfall on."""
        d = ImageDraw.Draw(bg, "RGBA")
        for ev in self.events:
            if ev.frame == f and ev.category not in ("footstep_water", "footstep_metal"):  # no prints on those
                x, y = ev.point
                r = self.person.height * 0.05
                d.ellipse((x - r, y - r * 0.3, x + r * 1.6, y + r * 0.3), fill=(30, 25, 20, 90))


@dataclass
class _Station:
    category: str
    tool: str
    contact: tuple[float, float]
    person: Person
    pivot: tuple[float, float]
    swing: Swing | None
    side: int
    reach: float
    obj_box: tuple[float, float, float, float]
    sprite: Image.Image | None = None
    crown: Image.Image | None = None
    frames: list[int] = field(default_factory=list)
    active: dict[int, int] = field(default_factory=dict)  # saw: event frame -> active frames


_TOOL = {"axe_tree": "axe", "pick_stone": "pick", "pick_metal": "pick", "hammer_wood": "hammer", "saw": "saw",
         "hammer_metal": "hammer"}
_CHIPS = {"axe_tree": "wood", "pick_stone": "stone", "pick_metal": "metal", "hammer_wood": "wood", "saw": "sand",
          "hammer_metal": "metal"}
_SPARKS = ("pick_metal", "hammer_metal")  # metal struck: a warmer flash


class WorkScene(Scene):
    """Workers striking with axes, picks and hammers, or sawing; the strike or stroke is the event."""

    family = "work"

    def plan(self) -> None:
        rng, W, fps = self.rng, self.W, self.fps
        self.base = self.ground_y(rng.uniform(0.5, 0.8))
        k = len(self.categories)
        slots = np.linspace(0, W, k + 1)
        self.stations: list[_Station] = []
        for i, cat in enumerate(self.categories):
            cx = (slots[i] + slots[i + 1]) / 2 + rng.uniform(-0.04, 0.04) * W
            scale = rng.uniform(0.8, 1.2) * (1.0 if k == 1 else 0.8)
            self.stations.append(self._make_station(cat, cx, scale))
        n_ev = int(rng.integers(3, 7))
        frames = plan_frames(rng, fps, 0.8, self.ctx.duration - 0.6, n_ev * 2, 0.3)
        last: dict[int, int] = {}
        busy_until = -1
        for f in frames:
            if len(self.events) >= n_ev:
                break
            choices = [i for i in rng.permutation(k).tolist()
                       if f - last.get(i, -999) >= round(1.0 * fps) and f > busy_until]
            if not choices:
                continue
            si = choices[0]
            st = self.stations[si]
            rec = self.ctx.pick_recording(st.category, rng)
            level = -4.0 + rng.uniform(-3, 2)
            pitch = float(np.clip(rng.normal(0, 0.7), -1.5, 1.5))
            max_s = None
            if st.tool == "saw":
                x = shift_pitch(self.ctx.bank.load(rec), pitch, self.ctx.bank.sample_rate)
                act = _active_seconds(x, self.ctx.bank.sample_rate)
                st.active[f] = max(3, round(min(act, 1.6) * fps))
                max_s = min(act, 1.6) + 0.2
                busy_until = f + st.active[f]
            st.frames.append(f)
            last[si] = f
            self.events.append(SceneEvent(f, st.category, rec, level, pitch, st.contact,
                                          f"{st.tool} on {st.category.split('_')[-1]}", max_seconds=max_s))
        for st in self.stations:
            if st.swing is not None:
                st.swing.frames = st.frames
        self.info = {"stations": [{"category": s.category, "tool": s.tool,
                                   "box": [round(v, 1) for v in s.obj_box]} for s in self.stations]}

    def _make_station(self, cat: str, cx: float, scale: float) -> _Station:
        rng, W, H = self.rng, self.W, self.H
        side = -1 if rng.random() < 0.5 else 1  # the worker stands on this side of the object
        person = Person.random(rng, H * 0.42 * scale)
        h = person.height
        tool = _TOOL[cat]
        crown = None
        if cat == "axe_tree":
            tw = W * 0.07 * scale
            th = H * 0.5 * scale
            box = (cx - tw / 2, self.base - th, cx + tw / 2, self.base)
            bark = opaque_crop(self.art("bark"), rng, tw / th).resize((max(4, round(tw)), max(4, round(th))))
            sprite = bark.convert("RGBA")
            crown = cutout(self.art("portrait:tree"))
            cw = tw * 4.2
            crown = crown.resize((max(8, round(cw)), max(8, round(crown.height * cw / crown.width))))
            contact = (cx + side * tw / 2, self.base - th * rng.uniform(0.25, 0.4))
            shoulder = (contact[0] + side * h * 0.42, self.base - h * 0.8)
        elif cat in ("pick_stone", "pick_metal"):
            bw, bh = W * 0.26 * scale, H * 0.16 * scale
            box = (cx - bw / 2, self.base - bh, cx + bw / 2, self.base)
            tex = opaque_crop(self.art("material:stone" if cat == "pick_stone" else "ore:metal"), rng, bw / bh)
            sprite = tex.resize((max(4, round(bw)), max(4, round(bh)))).convert("RGBA")
            mask = Image.new("L", sprite.size, 0)
            ImageDraw.Draw(mask).ellipse((0, 0, sprite.width - 1, sprite.height * 2), fill=255)
            shade = Image.new("L", sprite.size, 0)
            sd = ImageDraw.Draw(shade)
            for y in range(sprite.height):
                sd.line([(0, y), (sprite.width, y)], fill=int(100 * y / sprite.height))
            sprite.paste((0, 0, 0, 255), (0, 0), shade)
            sprite.putalpha(mask)
            contact = (cx + side * bw * 0.15, self.base - bh * 0.97)
            shoulder = (cx + side * (bw / 2 + h * 0.15), self.base - h * 0.8)
        elif cat == "hammer_metal":  # a smith's anvil on a stump
            aw, ah = W * 0.24 * scale, H * 0.09 * scale + 4
            top = self.base - H * 0.11 * scale - ah
            box = (cx - aw / 2, top, cx + aw / 2, top + ah)
            sprite = anvil_sprite(self.art("material:metal"), rng, round(aw), round(ah), horn=-side)
            contact = (cx + side * aw * 0.12, top + 1)
            shoulder = (cx + side * (aw / 2 + h * 0.12), self.base - h * 0.8)
        elif cat == "hammer_wood":
            pw, ph = W * 0.3 * scale, H * 0.04 * scale + 3
            top = self.base - H * 0.14 * scale
            box = (cx - pw / 2, top, cx + pw / 2, top + ph)
            tex = opaque_crop(self.art("material:wood"), rng, pw / ph)
            sprite = tex.resize((max(4, round(pw)), max(4, round(ph)))).convert("RGBA")
            contact = (cx + side * pw * 0.2, top)
            shoulder = (cx + side * (pw / 2 + h * 0.12), self.base - h * 0.8)
        else:  # saw
            lw_, lh = W * 0.34 * scale, H * 0.08 * scale
            top = self.base - H * 0.12 * scale - lh
            box = (cx - lw_ / 2, top, cx + lw_ / 2, top + lh)
            tex = opaque_crop(self.art("bark"), rng, lh / lw_).transpose(Image.Transpose.ROTATE_90)
            sprite = tex.resize((max(4, round(lw_)), max(4, round(lh)))).convert("RGBA")
            contact = (cx + side * lw_ * 0.1, top)
            shoulder = (cx + side * (lw_ * 0.1 + h * 0.35), self.base - h * 0.8)
            return _Station(cat, tool, contact, person, shoulder, None, side, h * 0.35, box, sprite)
        reach = math.hypot(contact[0] - shoulder[0], contact[1] - shoulder[1])
        a_c = math.atan2(contact[1] - shoulder[1], contact[0] - shoulder[0])
        turn = math.radians(150 if tool == "axe" else 165)
        swing = Swing(a_c - side * math.radians(-35), a_c + side * turn, a_c, [], self.fps,
                      windup=self.rng.uniform(0.35, 0.55), strike=0.12 if tool != "hammer" else 0.09)
        return _Station(cat, tool, contact, person, shoulder, swing, side, reach, box, sprite, crown)

    def view_points(self) -> list[tuple[float, float]]:
        pts = []
        for st in self.stations:
            pts += [(st.obj_box[0], st.obj_box[1]), (st.obj_box[2], st.obj_box[3])]
            pts += [(st.pivot[0], st.pivot[1] - st.person.height * 0.3), (st.pivot[0], self.base)]
        return pts

    def background(self) -> Image.Image:
        img = self.base_background([(0, self.W, "ground:dirt" if self.rng.random() < 0.5 else "ground:grass")])
        d = ImageDraw.Draw(img, "RGBA")
        for st in self.stations:
            x0, _y0, x1, y1 = st.obj_box
            if st.category in ("hammer_wood", "saw"):  # trestles
                for x in (x0 + (x1 - x0) * 0.15, x1 - (x1 - x0) * 0.15):
                    d.line([(x - 6, self.base), (x, y1), (x + 6, self.base)], fill=(80, 60, 40, 255), width=3)
            elif st.category == "hammer_metal":  # the anvil's stump
                cx, half = (x0 + x1) / 2, (x1 - x0) * 0.22
                d.polygon([(cx - half, y1 - 1), (cx + half, y1 - 1), (cx + half * 1.2, self.base),
                           (cx - half * 1.2, self.base)], fill=(105, 72, 42, 255))
                for k in range(3):
                    xx = cx - half + (k + 1) * half / 2
                    d.line([(xx, y1 + 2), (xx + 1, self.base - 2)], fill=(80, 52, 30, 255), width=1)
            d.ellipse((x0 - 6, self.base - 4, x1 + 6, self.base + 5), fill=(0, 0, 0, 60))
        return img

    def draw(self, img: Image.Image, draw: ImageDraw.ImageDraw, f: int) -> None:
        rng = self.rng
        for st in self.stations:
            x0, y0, x1, _y1 = st.obj_box
            if st.crown is not None:
                cx = (x0 + x1) / 2
                img.paste(st.crown, (round(cx - st.crown.width / 2), round(y0 - st.crown.height * 0.8)), st.crown)
            if st.sprite is not None:
                img.paste(st.sprite, (round(x0), round(y0)), st.sprite)
            h = st.person.height
            hip = (st.pivot[0] + st.side * h * 0.05, st.pivot[1] + 0.32 * h)
            feet = [(hip[0] - h * 0.1, self.base + 1), (hip[0] + h * 0.1, self.base + 1)]
            if st.tool == "saw":
                off = self._saw_offset(st, f)
                length = (x1 - x0) * 0.55
                cx = st.contact[0] + off
                depth = self._saw_depth(st, f)
                blade = [(cx - length / 2, y0 + depth - 5), (cx + length / 2, y0 + depth - 3),
                         (cx + length / 2, y0 + depth + 1), (cx - length / 2, y0 + depth + 1)]
                draw.polygon(blade, fill=(190, 195, 205))
                for i in range(10):
                    tx = cx - length / 2 + i * length / 10
                    draw.line([(tx, y0 + depth + 1), (tx + length / 20, y0 + depth + 3)], fill=(150, 150, 160))
                handle = (cx + st.side * length / 2, y0 + depth - 4)
                draw.rectangle((handle[0] - 3, handle[1] - 6, handle[0] + 3, handle[1] + 2), fill=(110, 75, 40))
                st.person.draw(draw, hip, feet, [handle], facing=-st.side, lean=0.4)
                for fe, act in st.active.items():
                    if fe <= f < fe + act and (f - fe) % 2 == 0:
                        self.particles.burst(f, st.contact[0], y0 + depth + 2, 4, rng,
                                             _PARTICLE_COLOURS["sand"], speed=h * 0.8,
                                             angle=math.pi / 2, spread=1.2, life=0.5, size=1.3, gravity=h * 4,
                                             floor=self.base)
            else:
                assert st.swing is not None
                a = st.swing.angle(f)
                hand = (st.pivot[0] + math.cos(a) * st.reach * 0.18, st.pivot[1] + math.sin(a) * st.reach * 0.18)
                st.person.draw(draw, hip, feet, [hand], facing=-st.side, lean=0.3)
                draw_tool(draw, st.tool, hand, a, st.reach * 0.78, -st.side)
            for fe in st.frames:
                if fe == f:
                    chips = _CHIPS[st.category]
                    n = int(rng.integers(10, 18))
                    self.particles.burst(f, st.contact[0], st.contact[1], n, rng, _PARTICLE_COLOURS[chips],
                                         speed=h * 2.2, angle=-math.pi / 2 - st.side * 0.6, spread=2.0, life=0.45,
                                         size=1.6, gravity=h * 6, floor=self.base + 3)
        self.particles.draw(draw, f)
        for st in self.stations:
            for fe in st.frames:
                draw_flash(draw, st.contact[0], st.contact[1], self.W * (0.035 if st.tool == "saw" else 0.045),
                           f - fe, colour=(255, 235, 170) if st.category in _SPARKS else (255, 248, 215))

    def _saw_offset(self, st: _Station, f: int) -> float:
        for fe, act in st.active.items():
            if fe <= f < fe + act:
                u = (f - fe) / self.fps
                amp = (st.obj_box[2] - st.obj_box[0]) * 0.14
                return amp * math.sin(2 * math.pi * u / 0.36 + math.pi / 2) - amp
        return 0.0

    def _saw_depth(self, st: _Station, f: int) -> float:
        done = sum(min(max(0, f - fe), act) for fe, act in st.active.items())
        return min((st.obj_box[3] - st.obj_box[1]) * 0.6, done * 0.25)

    def mark(self, bg: Image.Image, f: int) -> None:
        d = ImageDraw.Draw(bg, "RGBA")
        for st in self.stations:
            if f in st.frames and st.tool in ("axe", "pick"):
                x, y = st.contact
                r = 3 + len([q for q in st.frames if q <= f])
                d.polygon([(x, y - r), (x - st.side * r, y), (x, y + r * 0.6)], fill=(40, 25, 15, 150))


def anvil_sprite(metal: Image.Image, rng: np.random.Generator, w: int, h: int, horn: int = 1) -> Image.Image:
    """An anvil seen from the side (face, horn towards `horn`, waist, foot), cut from a darkened metal texture."""
    w, h = max(8, w), max(6, h)
    tex = opaque_crop(metal, rng, w / h).resize((w, h), Image.Resampling.LANCZOS)
    tex = Image.blend(tex, Image.new("RGB", (w, h), (45, 47, 52)), 0.55)
    mask = Image.new("L", (w, h), 0)
    md = ImageDraw.Draw(mask)
    face = h * 0.32
    pts = [(w * 0.18, 0), (w * 0.82, 0), (w * 0.82, face), (w * 0.64, face * 1.35), (w * 0.62, h * 0.78),
           (w * 0.8, h * 0.86), (w * 0.8, h - 1), (w * 0.2, h - 1), (w * 0.2, h * 0.86), (w * 0.38, h * 0.78),
           (w * 0.36, face * 1.35), (w * 0.18, face)]
    md.polygon(pts, fill=255)
    md.polygon([(w * 0.18, 0), (0, face * 0.25), (w * 0.18, face)], fill=255)  # the horn
    img = tex.convert("RGBA")
    img.putalpha(mask)
    ImageDraw.Draw(img).line([(w * 0.2, 1), (w * 0.8, 1)], fill=(205, 210, 220, 255), width=2)  # worn face
    return img if horn < 0 else img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _active_seconds(x: np.ndarray, sr: int, rel_db: float = -30.0) -> float:
    """Seconds from the onset to the last sample above `rel_db` of the peak."""
    mag = np.abs(x)
    if not mag.size or mag.max() <= 0:
        return 0.0
    idx = np.nonzero(mag >= mag.max() * 10 ** (rel_db / 20))[0]
    return float(idx[-1] - idx[0]) / sr


class AnimalScene(Scene):
    """Animals on a meadow; the one whose call is heard rears up and sends out rings while it calls."""

    family = "animals"

    def plan(self) -> None:
        rng, W, H, fps = self.rng, self.W, self.H, self.fps
        self.base = self.ground_y(rng.uniform(0.6, 0.9))
        k = len(self.categories)
        slots = np.linspace(0, W, k + 1)
        self.animals: list[dict[str, Any]] = []
        for i, cat in enumerate(self.categories):
            kind = cat[len("animal_"):]
            spr = cutout(self.art(f"portrait:{kind}"))
            scale = rng.uniform(0.8, 1.15) * (1.0 if k == 1 else 0.8)
            hgt = H * 0.4 * scale
            wid = spr.width * hgt / spr.height
            if wid > (slots[1] - slots[0]) * 0.95:
                wid = (slots[1] - slots[0]) * 0.95
                hgt = spr.height * wid / spr.width
            spr = spr.resize((max(8, round(wid)), max(8, round(hgt))), Image.Resampling.LANCZOS)
            if rng.random() < 0.5:
                spr = spr.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            cx = (slots[i] + slots[i + 1]) / 2
            self.animals.append({"category": cat, "sprite": spr, "cx": cx, "scale": scale, "calls": {},
                                 "phase": rng.uniform(0, 6.28)})
        t = rng.uniform(0.4, 1.2)
        n_max = int(rng.integers(2, 6))
        last_animal = -1
        while t < self.ctx.duration - 0.6 and len(self.events) < n_max:
            ai = int(rng.integers(k))
            if k > 1 and ai == last_animal and rng.random() < 0.6:
                ai = (ai + 1) % k
            a = self.animals[ai]
            rec = self.ctx.pick_recording(a["category"], rng)
            pitch = float(np.clip(rng.normal(0, 0.5), -1.0, 1.0))
            x = shift_pitch(self.ctx.bank.load(rec), pitch, self.ctx.bank.sample_rate)
            act = min(2.5, max(0.25, _active_seconds(x, self.ctx.bank.sample_rate)))
            f = round(t * fps)
            a["calls"][f] = round(act * fps)
            spr = a["sprite"]
            point = (a["cx"], self.base - spr.height * 0.8)
            level = -4.0 + 5.0 * math.log2(a["scale"]) + rng.uniform(-2.5, 1.5)
            self.events.append(SceneEvent(f, a["category"], rec, level, pitch, point,
                                          f"{a['category'][7:]} calls", max_seconds=act + 0.4))
            last_animal = ai
            t += act + rng.uniform(0.35, 1.8)
        self.info = {"animals": [{"category": a["category"], "x": round(a["cx"], 1)} for a in self.animals]}

    def background(self) -> Image.Image:
        return self.base_background([(0, self.W, "ground:grass" if self.rng.random() < 0.75 else "ground:dirt")])

    def view_points(self) -> list[tuple[float, float]]:
        pts = []
        for a in self.animals:
            w, h = a["sprite"].size
            pts += [(a["cx"] - w / 2, self.base - h - 8), (a["cx"] + w / 2, self.base)]
        return pts

    def draw(self, img: Image.Image, draw: ImageDraw.ImageDraw, f: int) -> None:
        for a in self.animals:
            spr: Image.Image = a["sprite"]
            calling = next(((fe, n) for fe, n in a["calls"].items() if fe <= f < fe + n), None)
            s, lift = 1.0, 1.5 * math.sin(a["phase"] + f / self.fps * 2.0)
            if calling is not None:
                age = f - calling[0]
                s = 1.12 if age < 2 else 1.08
                lift = 6.0 + 2.5 * math.sin(age * 1.9)
            if abs(s - 1.0) > 1e-3:
                spr = spr.resize((round(spr.width * s), round(spr.height * s)), Image.Resampling.BILINEAR)
            draw.ellipse((a["cx"] - spr.width * 0.4, self.base - 3, a["cx"] + spr.width * 0.4, self.base + 4),
                         fill=(0, 0, 0, 60))
            img.paste(spr, (round(a["cx"] - spr.width / 2), round(self.base - spr.height - lift)), spr)
            if calling is not None:
                age = f - calling[0]
                top = (a["cx"], self.base - spr.height - lift)
                for ring in range(3):
                    rr = (age * 0.9 + ring * 4) % 12 * self.W * 0.012 + self.W * 0.03
                    alpha = 230 if age < 2 else 170
                    draw.arc((top[0] - rr, top[1] - rr, top[0] + rr, top[1] + rr), 200, 340,
                             fill=(255, 255, 255, alpha), width=2)


SCENES = {"impact": ImpactScene, "walk": WalkScene, "work": WorkScene, "animals": AnimalScene}


# ---- ambience layers -----------------------------------------------------------------------------------------
class AmbienceLayer:
    """The visible source of the ambience bed: a river, rain, wind-blown leaves, a camp fire."""

    def __init__(self, kind: str, scene: Scene, rng: np.random.Generator) -> None:
        self.kind = kind
        self.scene = scene
        self.rng = rng
        W, H = scene.W, scene.H
        self.W, self.H = W, H
        if kind == "water":
            self.band = (scene.horizon + 1, scene.horizon + int((H - scene.horizon) * rng.uniform(0.15, 0.28)))
            tex = scene.art("water")
            self.strip = tile(tex, W * 2, self.band[1] - self.band[0], int(W * rng.uniform(0.3, 0.6)), rng,
                              squash=0.5)
            self.flow = rng.uniform(20, 60) * (1 if rng.random() < 0.5 else -1)
        elif kind == "fire":
            vp = scene.view_points()  # pairs of corners: every x between them is taken
            busy = [e.point[0] for e in scene.events]
            for a, b in zip(vp[0::2], vp[1::2]):
                busy += list(np.linspace(a[0], b[0], 8))
            cands = np.linspace(0.08, 0.92, 15) * W  # the fire goes where no actor is
            gaps = [min((abs(c - b) for b in busy), default=W) for c in cands]
            best = [c for c, g in zip(cands, gaps) if g >= max(gaps) - 2]
            self.fire_x = float(best[int(rng.integers(len(best)))])
            base = getattr(scene, "base", scene.ground_y(0.7))  # in front of the actors where there is room
            self.fire_y = min(H - 4.0, max(scene.ground_y(rng.uniform(0.75, 0.95)), base + 0.1 * H))
            self.fire_s = H * rng.uniform(0.12, 0.2)
            self.flame = scene.art("particle:flame")
            smoke = scene.art("particle:smoke")
            if np.asarray(smoke.getchannel("A")).min() > 250:  # an additive sprite: brightness is its opacity
                smoke = smoke.copy()
                smoke.putalpha(smoke.convert("L"))
            self.smoke = smoke
        elif kind == "wind":
            leaf = scene.art("particle:leaf")
            self.leaves = []
            for _ in range(int(rng.integers(10, 22))):
                sz = max(4, int(W * rng.uniform(0.025, 0.05)))
                img = leaf.resize((sz, sz), Image.Resampling.BILINEAR).rotate(float(rng.uniform(0, 360)))
                self.leaves.append((img, rng.uniform(0, W), rng.uniform(0, H), rng.uniform(60, 140),
                                    rng.uniform(0, 6.28)))
            self.gust = 1 if rng.random() < 0.5 else -1
        elif kind == "rain":
            self.n_drops = int(rng.integers(60, 130))
            self.slant = rng.uniform(-0.3, 0.3)

    def static(self, bg: Image.Image) -> None:
        if self.kind == "rain":
            dark = Image.new("RGB", bg.size, (40, 45, 55))
            bg.paste(Image.blend(bg, dark, 0.3))
        if self.kind == "fire":
            d = ImageDraw.Draw(bg, "RGBA")
            x, y, s = self.fire_x, self.fire_y, self.fire_s
            for k in (-1, 1):
                d.line([(x - s * 0.45, y + k * 2), (x + s * 0.45, y - k * 2)], fill=(80, 50, 30),
                       width=max(3, int(s / 8)))
            d.ellipse((x - s * 0.6, y - s * 0.12, x + s * 0.6, y + s * 0.12), fill=(40, 30, 25, 90))

    def draw(self, img: Image.Image, draw: ImageDraw.ImageDraw, f: int, rng: np.random.Generator) -> None:
        t = f / self.scene.fps
        if self.kind == "water":
            off = int(self.flow * t) % self.W
            y0, y1 = self.band
            img.paste(self.strip.crop((off, 0, off + self.W, y1 - y0)), (0, y0))
            for _ in range(6):  # glints
                gx, gy = rng.uniform(0, self.W), rng.uniform(y0, y1)
                draw.line([(gx, gy), (gx + rng.uniform(4, 12), gy)], fill=(230, 240, 255, 140), width=1)
        elif self.kind == "rain":
            for _ in range(self.n_drops):
                x, y = rng.uniform(-20, self.W + 20), rng.uniform(0, self.H)
                ln = rng.uniform(6, 14)
                draw.line([(x, y), (x + self.slant * ln, y + ln)], fill=(200, 210, 230, 150), width=1)
            for _ in range(self.n_drops // 6):
                x, y = rng.uniform(0, self.W), rng.uniform(self.scene.horizon + 5, self.H)
                draw.ellipse((x - 2, y - 1, x + 2, y + 1), outline=(220, 225, 240, 150))
        elif self.kind == "wind":
            for img_l, x0, y0, speed, ph in self.leaves:
                x = (x0 + self.gust * speed * t) % (self.W + 40) - 20
                y = y0 + 12 * math.sin(ph + t * 3.1)
                img.paste(img_l, (int(x), int(y)), img_l)
            for i in range(0, self.W, 6):  # grass tufts bending with the wind
                bend = self.gust * (4 + 3 * math.sin(t * 4 + i * 0.3))
                draw.line([(i, self.H), (i + bend, self.H - 12)], fill=(70, 110, 45, 200), width=2)
        elif self.kind == "fire":
            x, y, s = self.fire_x, self.fire_y, self.fire_s
            draw.ellipse((x - s, y - s * 0.9, x + s, y + s * 0.4), fill=(255, 150, 40, 40))
            for _ in range(9):
                sz = max(4, int(s * rng.uniform(0.3, 0.7)))
                fl = self.flame.resize((sz, int(sz * 1.4)), Image.Resampling.BILINEAR)
                fx = x + rng.uniform(-0.3, 0.3) * s - sz / 2
                fy = y - rng.uniform(0.1, 0.8) * s - sz
                img.paste(fl, (int(fx), int(fy)), fl)
            for k in range(3):
                age = (t * 0.8 + k / 3) % 1.0
                sz = max(4, int(s * (0.3 + 0.6 * age)))
                sm = self.smoke.resize((sz, sz), Image.Resampling.BILINEAR)
                a = sm.getchannel("A").point(lambda v, q=age: int(v * (1 - q) * 0.7))
                sm.putalpha(a)
                img.paste(sm, (int(x - sz / 2 + 10 * age), int(y - s * (1 + 1.5 * age) - sz / 2)), sm)


# ---- camera, colour, the clip --------------------------------------------------------------------------------
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
