"""Ambience layers: the visible source of the ambience bed (a river, rain, wind-blown leaves, a camp fire)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.scenes.art import tile
from training.datasets.scenes.base import Scene


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
