"""The `walk` family: a walker crossing ground patches, a footfall at every event frame."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.scenes.art import _mix
from training.datasets.scenes.base import Scene, SceneEvent
from training.datasets.scenes.draw import _PARTICLE_COLOURS, Person, _ease

# what a footfall throws up, by surface (default: the surface's particle colours)
_STEP_COLOURS = {
    "metal": ((110, 112, 118), (170, 172, 178)), "water": ((150, 190, 225), (235, 245, 255)),
    "stone": ((135, 130, 122), (190, 186, 178)),
}


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
