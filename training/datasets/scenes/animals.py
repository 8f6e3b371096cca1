"""The `animals` family: animals on a meadow, the one whose call is heard rears up and sends out rings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.compose import shift_pitch
from training.datasets.scenes.art import cutout
from training.datasets.scenes.base import Scene, SceneEvent, _active_seconds


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
