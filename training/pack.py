"""`python -m training.pack RUN_DIR --out PACK.npz [--max-mib 60]`: the denoiser stage's inputs in one file.

Everything the denoiser's training step needs, for the train and val splits, so that `python -m training.gpu_train`
can train on a machine that has torch and numpy but neither the data set nor the VAE: the VAE posterior (mean, std)
of every crop from the run's latents cache, the projected 4 fps video features of every clip, the clips'
ground-truth onset times (the hit tracks are made from them per crop and step), the crop index (clip, first
frame, split), the latent scale, the resolved config and the denoiser stage's config digest, and the state to
continue from: the stage's newest checkpoint, else the `denoiser.init_from` warm-start weights.

Storage is chosen by measurement, the most exact plan that fits the budget (each array's deflated size in the
zip, measured): float32; float16; float16 mean with log(std) in 8 or 4 bits (a range per (crop, channel): the
posterior std spans orders of magnitude within one latent); then 8-bit features (a range per frame); then one std
per (crop, channel); then an 8-bit mean. Floats are stored as byte planes (lossless; the exponent bytes deflate
well). The state goes into the pack when it fits beside the data, else into a second file beside it
(`<pack>.state.pt` or `<pack>.init.safetensors`); the report says which, and what each plan measured.

Measured on the 1000-clip real data set (hits-lever-base, crop stride 0.25 s: 7200 train + val crops of 4x16x64):
see README.md, "Training on one GPU".
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("training.pack")

FORMAT = "mdsgen-foley-denoiser-pack"
VERSION = 1
MIB = 1 << 20
LEVEL = 6  # zlib level of the zip entries (numpy's savez_compressed uses the same default)
SPLITS = ("train", "val")
REPO = Path(__file__).resolve().parents[1]

#: Storage plans, most exact first: (mean, std, feats) codecs.
PLANS: tuple[tuple[str, str, str], ...] = (
    ("f32", "f32", "f32"),
    ("f16", "f16", "f16"),
    ("f16", "l8", "f16"),
    ("f16", "l4", "f16"),
    ("f16", "l8", "q8"),
    ("f16", "l4", "q8"),
    ("f16", "cc", "q8"),
    ("q8", "l4", "q8"),
    ("q8", "cc", "q8"),
)
CODECS = {
    "f32": "float32 (stored as 4 byte planes, which deflate better)",
    "f16": "float16 (as 2 byte planes)",
    "q8": "8 bits, affine per (crop, channel) [latents] or per frame [features]",
    "l8": "8 bits of log(std), affine per (crop, channel)",
    "l4": "4 bits of log(std), affine per (crop, channel), two to a byte",
    "cc": "float16, one value per (crop, channel) (the mean over the latent's h x w)",
}


class PackError(RuntimeError):
    """The pack cannot be made or read as asked; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------------------------
# Codecs
# ---------------------------------------------------------------------------------------------------------------
def _affine(x: np.ndarray, axes: tuple[int, ...], levels: int) -> dict[str, np.ndarray]:
    """Uniform quantisation to `levels` codes over `axes` (a range per remaining index): x ~ lo + q * step."""
    x = np.asarray(x, np.float32)
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    step = (hi - lo) / (levels - 1)
    step = np.where(step > 0, step, 1.0).astype(np.float32)
    q = np.clip(np.rint((x - lo) / step), 0, levels - 1).astype(np.uint8)
    return {"q": q, "lo": lo.astype(np.float32), "step": step}


def _planes(x: np.ndarray, dtype: Any) -> np.ndarray:
    """The bytes of `x` as `dtype`, one plane per byte of a value: (itemsize, *x.shape) uint8."""
    a = np.ascontiguousarray(x, dtype)
    return np.ascontiguousarray(np.moveaxis(a.view(np.uint8).reshape(*a.shape, a.itemsize), -1, 0))


def _unplanes(p: np.ndarray, dtype: Any) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(np.asarray(p, np.uint8), 0, -1)).view(dtype)[..., 0]


def _pack4(q: np.ndarray) -> np.ndarray:
    flat = q.reshape(len(q), -1)
    if flat.shape[1] % 2:
        flat = np.pad(flat, ((0, 0), (0, 1)))
    return np.ascontiguousarray((flat[:, 0::2] << 4) | flat[:, 1::2])


def _unpack4(p: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty((len(p), p.shape[1] * 2), np.uint8)
    out[:, 0::2] = p >> 4
    out[:, 1::2] = p & 15
    return out[:, : int(np.prod(shape[1:]))].reshape(shape)


def encode(x: np.ndarray, codec: str, kind: str) -> dict[str, np.ndarray]:
    """Arrays (name suffix -> array) that store `x` with `codec`; `kind` latent (N, C, h, w) or feats (rows, dim)."""
    if codec == "f32":
        return {"_f32p": _planes(x, np.float32)}
    if codec == "f16":
        return {"_f16p": _planes(x, np.float16)}
    if codec == "q8":
        return {f"_{k}": v for k, v in _affine(x, (2, 3) if kind == "latent" else (1,), 256).items()}
    if kind != "latent":
        raise ValueError(f"codec {codec} is for latents")
    if codec in ("l8", "l4"):
        a = _affine(np.log(np.maximum(np.asarray(x, np.float32), 1e-30)), (2, 3), 256 if codec == "l8" else 16)
        if codec == "l4":
            a["q"] = _pack4(a["q"])
        return {f"_{k}": v for k, v in a.items()}
    if codec == "cc":
        return {"_cc": np.asarray(x, np.float32).mean(axis=(2, 3)).astype(np.float16)}
    raise ValueError(f"unknown codec {codec!r}")


def decode(z: Any, name: str, codec: str, shape: tuple[int, ...]) -> np.ndarray:
    """float32 array `name` of shape `shape` from the pack's arrays `z` (a mapping, e.g. np.load's NpzFile)."""
    shape = tuple(int(n) for n in shape)
    if codec == "f32":
        out = _unplanes(z[f"{name}_f32p"], np.float32)
    elif codec == "f16":
        out = _unplanes(z[f"{name}_f16p"], np.float16).astype(np.float32)
    elif codec in ("q8", "l8", "l4"):
        q = np.asarray(z[f"{name}_q"])
        if codec == "l4":
            q = _unpack4(q, shape)
        out = (z[f"{name}_lo"] + q.astype(np.float32) * z[f"{name}_step"]).astype(np.float32)
        if codec != "q8":
            out = np.exp(out)
    elif codec == "cc":
        cc = np.asarray(z[f"{name}_cc"], np.float32)
        out = np.broadcast_to(cc[:, :, None, None], shape).copy()
    else:
        raise PackError(f"the pack stores {name} with codec {codec!r}, which this version does not know")
    if out.shape != shape:
        raise PackError(f"the pack's {name} has shape {out.shape}, expected {shape}")
    return np.ascontiguousarray(out, np.float32)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def deflated_size(a: np.ndarray) -> int:
    """Bytes of `a` as a deflated .npy zip entry (what the pack spends on it, give or take its zip header)."""
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    data = _npy(a)
    n = 0
    for i in range(0, len(data), 16 * MIB):
        n += len(c.compress(data[i : i + 16 * MIB]))
    return n + len(c.flush()) + 100  # + the zip's local header and central directory entry


def _bytes_array(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8)


def _json_array(obj: Any) -> np.ndarray:
    return _bytes_array(json.dumps(obj, indent=1, default=float).encode("utf-8"))


def read_json(z: Any, name: str = "meta") -> Any:
    return json.loads(bytes(np.asarray(z[name], np.uint8)).decode("utf-8"))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed .npz (np.load reads it), written to a temporary file and renamed."""
    from engine.atomic import atomic_replace

    with atomic_replace(path) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=LEVEL, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)


# ---------------------------------------------------------------------------------------------------------------
# What a run holds
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class StageInputs:
    """The denoiser stage's inputs of one run, for the train and val crops (in the cache's order)."""

    cfg: Any
    digest: str
    scale: float
    mean: np.ndarray  # (N, C, h, w) float32
    std: np.ndarray
    crop_clip: np.ndarray  # (N,) index into clips
    crop_frame: np.ndarray
    crop_split: np.ndarray  # (N,) 0 train, 1 val
    clips: list[dict[str, Any]]  # key, split, frames
    feats: list[np.ndarray]  # per clip (T, 512) float32
    onsets: list[np.ndarray]  # per clip, s from the clip start
    latents_file: str
    vae_sha256: str


def run_context(run_dir: Path) -> Any:
    """A RunContext of a finished-enough run folder: its config.yaml, its feature cache's index; no preprocessing."""
    from training.config import ConfigError, load_config
    from training.data import load_index
    from training.loop import Dist
    from training.stages import RunContext

    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise PackError(f"{run_dir} has no config.yaml: give a run folder that training.run made")
    try:
        cfg = load_config(str(cfg_path))
    except ConfigError as exc:
        raise PackError(f"{cfg_path}: {exc}") from exc
    cache_dir = Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else run_dir / "cache"
    if not (cache_dir / "index.json").is_file():
        raise PackError(f"the run's feature cache {cache_dir} has no index.json: preprocess first (training.run)")
    ctx = RunContext(cfg=cfg, run_dir=run_dir, dist=Dist(), cache_dir=cache_dir, progress=False)
    ctx.clips = load_index(cache_dir)
    return ctx


def stage_inputs(ctx: Any) -> StageInputs:
    """Read the run's latents cache, project its clips' features, collect the onsets (nothing is encoded)."""
    from engine.manifest import sha256_file
    from training.config import stage_digest
    from training.loop import StageError
    from training.stages import done_record, require
    from training.stages.denoiser import NAME, clip_onsets, latents_path, project_all

    try:
        vae_rec = require(ctx, "vae")
        require(ctx, "projection")
        done = done_record(ctx, NAME)
    except StageError as exc:
        raise PackError(str(exc)) from exc
    if done is not None:
        log.warning("pack: the denoiser stage of %s is already done; the pack continues from its last checkpoint",
                    ctx.run_dir)
    path = latents_path(ctx)
    if not path.is_file():
        raise PackError(f"no latents cache {path.name} in {ctx.cache_dir} for this run's VAE and clips: run the "
                        "denoiser stage until it has cached them (its first minutes), or wait for the run that is "
                        "writing them")
    with np.load(path) as z:
        mean, std, clip, frame = z["mean"], z["std"], z["clip"], z["frame"]
    split_of = np.array([ctx.clips[i].split for i in clip])
    keep = np.isin(split_of, SPLITS)
    used = sorted({int(i) for i in clip[keep]})
    renum = {c: k for k, c in enumerate(used)}
    feats_all = project_all(ctx)
    with_hits = int(ctx.cfg.denoiser.overrides.get("hit_slots", 0)) > 0
    onsets_all = clip_onsets(ctx) if with_hits else [np.zeros(0) for _ in ctx.clips]
    return StageInputs(
        cfg=ctx.cfg, digest=stage_digest(ctx.cfg, NAME), scale=float(vae_rec["latent_scale"]),
        mean=np.ascontiguousarray(mean[keep], np.float32), std=np.ascontiguousarray(std[keep], np.float32),
        crop_clip=np.array([renum[int(i)] for i in clip[keep]], np.int32),
        crop_frame=frame[keep].astype(np.int32),
        crop_split=np.array([SPLITS.index(s) for s in split_of[keep]], np.uint8),
        clips=[{"key": ctx.clips[i].key, "split": ctx.clips[i].split, "frames": len(feats_all[i])} for i in used],
        feats=[np.asarray(feats_all[i], np.float32) for i in used],
        onsets=[np.asarray(onsets_all[i], np.float64) for i in used],
        latents_file=path.name, vae_sha256=sha256_file(ctx.stage_dir("vae") / "vae.safetensors"))


@dataclass
class State:
    """What training continues from: a checkpoint of the stage, or the warm-start weights."""

    kind: str  # "checkpoint" | "init"
    path: Path
    step: int = 0
    losses_csv: bytes | None = None  # the stage's loss log up to the checkpoint (it continues in the GPU run)

    @property
    def side_name(self) -> str:
        return ".state.pt" if self.kind == "checkpoint" else ".init.safetensors"


def find_state(ctx: Any) -> State | None:
    """The newest checkpoint of the run's denoiser stage, else its `denoiser.init_from` weights, else None."""
    from training.loop import list_checkpoints
    from training.stages.denoiser import NAME

    sdir = ctx.stage_dir(NAME)
    ckpts = list_checkpoints(sdir) if sdir.is_dir() else []
    if ckpts:
        step, path = ckpts[-1]
        csv = sdir / "losses.csv"
        return State("checkpoint", path, step, csv.read_bytes() if csv.is_file() else None)
    init = ctx.cfg.denoiser.init_from
    if init:
        p = resolve_init(init)
        if p is None:
            raise PackError(f"denoiser.init_from {init!r} is not a file (relative paths: to the working folder or "
                            f"the repository {REPO})")
        return State("init", p)
    return None


def resolve_init(init: str) -> Path | None:
    for p in (Path(init).expanduser(), REPO / init):
        if p.is_file():
            return p.resolve()
    return None


# ---------------------------------------------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------------------------------------------
def _feats_rows(si: StageInputs) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(f) for f in si.feats]).astype(np.int64)
    dim = si.feats[0].shape[1] if si.feats else 512
    rows = np.concatenate(si.feats) if si.feats else np.zeros((0, dim), np.float32)
    return rows, offsets


def choose_plan(si: StageInputs, budget: int, fixed: int,
                measure: Callable[[np.ndarray], int] = deflated_size) -> tuple[tuple[str, str, str], dict[str, Any]]:
    """The most exact plan whose measured size (+ `fixed` bytes of the other arrays) fits `budget` bytes."""
    rows, _ = _feats_rows(si)
    sources = {"mean": (si.mean, "latent"), "std": (si.std, "latent"), "feats": (rows, "feats")}
    sizes: dict[tuple[str, str], int] = {}

    def size(name: str, codec: str) -> int:
        if (name, codec) not in sizes:
            x, kind = sources[name]
            sizes[name, codec] = sum(measure(a) for a in encode(x, codec, kind).values())
        return sizes[name, codec]

    tried = []
    for plan in PLANS:
        total = fixed + sum(size(n, c) for n, c in zip(("mean", "std", "feats"), plan))
        tried.append({"plan": dict(zip(("mean", "std", "feats"), plan)), "bytes": total})
        log.info("pack: plan mean %s, std %s, feats %s: %.2f MiB", *plan, total / MIB)
        if total <= budget:
            return plan, {"tried": tried}
    smallest = min(tried, key=lambda t: t["bytes"])
    raise PackError(f"the pack does not fit {budget / MIB:.3g} MiB: even its smallest storage ({smallest['plan']}) "
                    f"takes {smallest['bytes'] / MIB:.2f} MiB for {len(si.mean)} crops of "
                    f"{'x'.join(map(str, si.mean.shape[1:]))} and {len(si.feats)} clips; raise --max-mib or pack "
                    "fewer clips (data.max_clips)")


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def make_pack(run_dir: Path, out: Path, *, max_mib: float = 60.0, with_state: bool = True) -> dict[str, Any]:
    """Write the pack of `run_dir` to `out` (and the state beside it if it does not fit); return the report."""
    from training.config import to_yaml

    t0 = time.perf_counter()
    ctx = run_context(run_dir)
    si = stage_inputs(ctx)
    if not len(si.mean) or not (si.crop_split == 0).any():
        raise PackError(f"{run_dir} has no train crops to pack")
    state = find_state(ctx) if with_state else None
    budget = int(max_mib * MIB)
    rows, offsets = _feats_rows(si)
    onset_offsets = np.cumsum([0] + [len(o) for o in si.onsets]).astype(np.int64)
    onset_times = np.concatenate(si.onsets) if si.onsets else np.zeros(0)
    base: dict[str, np.ndarray] = {
        "crop_clip": si.crop_clip, "crop_frame": si.crop_frame, "crop_split": si.crop_split,
        "feat_offsets": offsets, "onset_times": np.asarray(onset_times, np.float64), "onset_offsets": onset_offsets,
    }
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "run_dir": str(run_dir), "run": ctx.cfg.name, "digest": si.digest, "latent_scale": si.scale,
        "config": ctx.cfg.to_dict(), "config_yaml": to_yaml(ctx.cfg), "latents_file": si.latents_file,
        "vae_sha256": si.vae_sha256, "latent_shape": list(si.mean.shape[1:]), "feature_dim": int(rows.shape[1]),
        "crops": {s: int((si.crop_split == i).sum()) for i, s in enumerate(SPLITS)}, "clips": si.clips,
    }
    fixed = sum(deflated_size(a) for a in base.values()) + 64 * 1024  # + meta (measured below, kept small)
    plan, measured = choose_plan(si, budget, fixed)
    arrays = dict(base)
    for name, codec, (x, kind) in zip(("mean", "std", "feats"), plan,
                                      ((si.mean, "latent"), (si.std, "latent"), (rows, "feats"))):
        arrays.update({name + suffix: a for suffix, a in encode(x, codec, kind).items()})
    data_bytes = sum(deflated_size(a) for a in arrays.values())
    meta["plan"] = dict(zip(("mean", "std", "feats"), plan))
    meta["plans_measured"] = measured["tried"]
    meta["errors"] = quantisation_errors(si, plan, rows, arrays)
    side: Path | None = None
    if state is not None:
        blob = state.path.read_bytes()
        st = {"kind": state.kind, "name": state.path.name, "step": state.step, "sha256": _sha256(blob),
              "bytes": len(blob), "source": str(state.path)}
        if state.kind == "init":
            st["init_from"] = ctx.cfg.denoiser.init_from
        if state.losses_csv is not None:
            arrays["losses_csv"] = _bytes_array(state.losses_csv)
        blob_arr = _bytes_array(blob)
        room = budget - data_bytes - len(json.dumps(meta)) - 4096
        if deflated_size(blob_arr) <= room:
            arrays["state"] = blob_arr
            st["embedded"] = True
        else:
            side = out.with_name(out.name.removesuffix(".npz") + state.side_name)
            side.write_bytes(blob)
            st["embedded"] = False
            st["file"] = side.name
        meta["state"] = st
    else:
        meta["state"] = None
    arrays["meta"] = _json_array(meta)
    write_npz(out, arrays)
    size = out.stat().st_size
    if size > budget:  # the measured sizes are the zip's own, so this only happens at the edge
        out.unlink()
        raise PackError(f"the pack came out at {size / MIB:.2f} MiB, over --max-mib {max_mib:g}; raise it a little")
    report = {"pack": str(out), "bytes": size, "mib": round(size / MIB, 3), "budget_mib": max_mib,
              "plan": meta["plan"], "crops": meta["crops"], "clips": len(si.clips), "digest": si.digest,
              "errors": meta["errors"], "state": meta["state"], "side_file": str(side) if side else None,
              "seconds": round(time.perf_counter() - t0, 1)}
    return report


def quantisation_errors(si: StageInputs, plan: tuple[str, str, str], rows: np.ndarray,
                        arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """How far the stored values are from the cached ones, in units of the training target (x latent_scale)."""
    out: dict[str, float] = {}
    for name, codec, x in zip(("mean", "std", "feats"), plan, (si.mean, si.std, rows)):
        if codec == "f32":
            out[f"{name}_rms"] = 0.0
            continue
        y = decode(arrays, name, codec, x.shape)
        err = float(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2)))
        out[f"{name}_rms"] = err * (si.scale if name != "feats" else 1.0)
        out[f"{name}_max"] = float(np.max(np.abs(y - x))) * (si.scale if name != "feats" else 1.0)
        if name == "std":
            out["std_relative_rms"] = float(np.sqrt(np.mean((y.astype(np.float64) / np.maximum(x, 1e-30) - 1) ** 2)))
    out["std_scaled_mean"] = float(si.std.mean()) * si.scale  # the posterior noise the step adds, for comparison
    out["mean_scaled_rms"] = float(np.sqrt(np.mean(si.mean.astype(np.float64) ** 2))) * si.scale
    out["feats_scaled_rms"] = float(np.sqrt(np.mean(rows.astype(np.float64) ** 2))) if len(rows) else 0.0
    return out


# ---------------------------------------------------------------------------------------------------------------
# Reading (training.gpu_train)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Pack:
    """A pack, loaded: float32 arrays as the denoiser stage holds them."""

    path: Path
    meta: dict[str, Any]
    mean: np.ndarray
    std: np.ndarray
    crop_clip: np.ndarray
    crop_frame: np.ndarray
    crop_split: np.ndarray
    feats: list[np.ndarray]
    onsets: list[np.ndarray]
    state: bytes | None
    losses_csv: bytes | None

    @property
    def scale(self) -> float:
        return float(self.meta["latent_scale"])

    def split(self, name: str) -> np.ndarray:
        return self.crop_split == SPLITS.index(name)


def load_pack(path: Path) -> Pack:
    path = Path(path)
    if not path.is_file():
        raise PackError(f"no pack at {path}")
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise PackError(f"{path} is not a denoiser pack (no meta); make one with python -m training.pack")
        meta = read_json(z)
        if meta.get("format") != FORMAT or int(meta.get("version", 0)) > VERSION:
            raise PackError(f"{path} is a {meta.get('format')} v{meta.get('version')} file; this code reads "
                            f"{FORMAT} v{VERSION}")
        n = len(z["crop_clip"])
        shape = (n, *meta["latent_shape"])
        plan = meta["plan"]
        mean = decode(z, "mean", plan["mean"], shape)
        std = decode(z, "std", plan["std"], shape)
        offs = z["feat_offsets"]
        rows = decode(z, "feats", plan["feats"], (int(offs[-1]), int(meta["feature_dim"])))
        feats = [rows[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
        oo, ot = z["onset_offsets"], z["onset_times"]
        onsets = [np.asarray(ot[oo[i] : oo[i + 1]], np.float64) for i in range(len(oo) - 1)]
        state = None
        st = meta.get("state")
        if st is not None:
            if st.get("embedded"):
                state = bytes(z["state"])
            else:
                side = path.with_name(st["file"])
                if side.is_file():
                    state = side.read_bytes()
            if state is not None and _sha256(state) != st["sha256"]:
                raise PackError(f"the pack's {st['kind']} state ({st.get('file') or 'embedded'}) is damaged: its "
                                "sha256 differs from the pack's record; pack again")
        losses = bytes(z["losses_csv"]) if "losses_csv" in z.files else None
        return Pack(path=path, meta=meta, mean=mean, std=std, crop_clip=np.asarray(z["crop_clip"], np.int64),
                    crop_frame=np.asarray(z["crop_frame"], np.int64), crop_split=np.asarray(z["crop_split"]),
                    feats=feats, onsets=onsets, state=state, losses_csv=losses)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.pack", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a run folder (runs/<name>) whose vae and projection stages are done "
                    "and whose latents cache exists")
    ap.add_argument("--out", type=Path, required=True, help="the pack to write (.npz)")
    ap.add_argument("--max-mib", type=float, default=60.0, help="size budget of the pack in MiB (default 60)")
    ap.add_argument("--no-state", action="store_true", help="pack no checkpoint or warm-start weights (the GPU "
                    "run then starts the stage from its initialisation)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    import torch

    torch.set_num_threads(1)  # the projection of the features is small; leave the cores to training runs
    out = args.out if args.out.suffix == ".npz" else args.out.with_suffix(".npz")
    try:
        report = make_pack(args.run_dir.expanduser(), out.expanduser(), max_mib=args.max_mib,
                           with_state=not args.no_state)
    except PackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    st = report["state"]
    print(json.dumps(report, indent=1))
    where = ("none" if st is None else f"{st['kind']} {st['name']} (step {st['step']}), " +
             ("in the pack" if st["embedded"] else f"beside it: {report['side_file']} ({st['bytes'] / MIB:.1f} MiB)"))
    print(f"pack: {report['pack']}: {report['mib']:.2f} MiB of {args.max_mib:g} ({report['crops']['train']} train + "
          f"{report['crops']['val']} val crops, {report['clips']} clips; mean {report['plan']['mean']}, std "
          f"{report['plan']['std']}, feats {report['plan']['feats']}); state: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
