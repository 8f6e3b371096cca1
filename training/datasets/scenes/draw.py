"""Drawing shared by the scene families: particles, contact flashes, people and their tools, swings,
arrows, sky and ground."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.scenes.art import _mix, tile

_PARTICLE_COLOURS = {
    "wood": ((150, 105, 60), (200, 160, 100)), "stone": ((120, 120, 115), (190, 188, 180)),
    "metal": ((255, 220, 120), (255, 255, 210)), "dirt": ((110, 85, 55), (170, 140, 100)),
    "flesh": ((120, 20, 20), (170, 40, 30)), "snow": ((240, 242, 250), (255, 255, 255)),
    "sand": ((200, 175, 125), (235, 215, 170)), "grass": ((70, 110, 40), (140, 170, 80)),
    "gravel": ((110, 108, 100), (170, 165, 155)),
}


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
