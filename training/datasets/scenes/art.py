"""Art by role: the package's textures, sprites and portraits picked and cached (`ArtLibrary`), the
procedural stand-ins where a package ships none, and the image helpers the scenes build on (opaque crops,
portrait cut-outs, tiling, colours)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.datasets.sources import ArtFile

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
