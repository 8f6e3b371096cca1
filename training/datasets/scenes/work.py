"""The `work` family: tools at work (axe, pick, hammer, saw), the strike at the event frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from training.datasets.compose import shift_pitch
from training.datasets.scenes.art import cutout, opaque_crop
from training.datasets.scenes.base import Scene, SceneEvent, _active_seconds, plan_frames
from training.datasets.scenes.draw import _PARTICLE_COLOURS, Person, Swing, draw_flash, draw_tool


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
