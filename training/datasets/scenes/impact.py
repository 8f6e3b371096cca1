"""The `impact` family: targets of distinct materials hit by arrows, sling stones or swords."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.datasets.scenes.art import cutout, opaque_crop
from training.datasets.scenes.base import Scene, SceneEvent, plan_frames
from training.datasets.scenes.draw import _PARTICLE_COLOURS, Person, Swing, draw_arrow, draw_flash, draw_tool

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
