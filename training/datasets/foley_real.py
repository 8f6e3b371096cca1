"""Build the real-sound Foley dataset: `python -m training.datasets.foley_real build --out DIR --seed S`.

Source recordings come from Debian packages (the sound effects of 0 A.D., OpenArena, Battle for Wesnoth, Sonic Pi,
OpenSFX, MegaGlest and Widelands: `sources.SOURCES`; `--packages` picks some), fetched with `apt-get download` into
a cache outside the repository (no system install) and extracted selectively (`sources/`). Each clip is a
rendered scene whose visible events cause those sounds at their exact frames (`scenes/`), with the recordings
placed at the event times, varied in gain, pitch and room, over an optional ambience bed (`compose.py`).

Output (the training loader reads it as a folder of videos with sound):

    DIR/train/00000.mp4 + 00000.json, DIR/val/..., DIR/test/...   H.264 video + 16 kHz mono FLAC audio, ground truth
    DIR/splits.json        {"train": [clip paths], "val": [...], "test": [...]} relative to DIR
    DIR/manifest.json      settings, packages, categories per split, every recording (with its split) and art file
    DIR/attribution.csv    every source file used: package, version, path in package, licence, copyright
    DIR/ATTRIBUTION.md     the licence summary that must travel with the data
    DIR/build_report.json  skipped source files with reasons, timings, sizes

Splits are by source recording: every recording (with its exact and near duplicates, in any package) belongs to
exactly one split, and a clip draws all its sounds from its split's pool, so test sounds are never heard in
training. Everything is a pure function of (packages, seed, settings): clip i uses the generator seeded with
(seed, i), whichever worker builds it, so the same command gives byte-identical files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets import compose, scenes, sources

FORMAT = "mdsgen-foley-real/1"
SPLITS = ("train", "val", "test")
ONSET_CONVENTION = (
    "An event's time is the presentation time of its impact frame (frame / fps). The recording, after resampling to "
    "the clip rate, pitch shift and distance filter, is placed so that its onset sample - the first sample whose "
    "magnitude reaches -40 dB relative to its peak, or 6x the RMS of its first 10 ms if that is higher (recordings "
    "that start on room tone), capped at half the peak - lands on round(time * sample_rate). peak_offset is how "
    "long after that the signal first reaches half its peak."
)


@dataclass(frozen=True)
class BuildSettings:
    seed: int = 0
    num_clips: int = 2000
    seconds: float = 10.0
    fps: int = 20
    width: int = 224
    height: int = 224
    sample_rate: int = compose.SAMPLE_RATE
    val_frac: float = 0.1
    test_frac: float = 0.1
    split_seed: int = 0
    crf: int = 26
    ambience_prob: float = 0.65

    def __post_init__(self) -> None:
        if self.num_clips < 1:
            raise ValueError("num_clips must be >= 1")
        if self.sample_rate % self.fps:
            raise ValueError(f"sample_rate {self.sample_rate} must be a multiple of fps {self.fps} (frame-exact "
                             "events land on whole samples)")
        if abs(self.seconds * self.fps - round(self.seconds * self.fps)) > 1e-9:
            raise ValueError("seconds * fps must be a whole number of frames")
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        if not (0 <= self.val_frac < 1 and 0 <= self.test_frac < 1 and self.val_frac + self.test_frac < 1):
            raise ValueError("val_frac and test_frac must be in [0, 1) and sum to less than 1")

    @property
    def n_frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def num_samples(self) -> int:
        return round(self.seconds * self.sample_rate)


# ---- splits --------------------------------------------------------------------------------------------------
def _rank(key: str, split_seed: int) -> str:
    return hashlib.sha256(f"{split_seed}:{key}".encode()).hexdigest()


def assign_splits(recordings: list[sources.Recording], val_frac: float, test_frac: float,
                  split_seed: int) -> dict[str, str]:
    """Recording id -> split. Per category and package, the recording groups (a group: recordings edited from one
    source recording) are ranked by a hash of (split_seed, group): the first ceil(n * test_frac) go to test, the
    next ceil(n * val_frac) to val, the rest to train. A (category, package) with 3+ groups has at least one in each
    split (when the fractions are > 0); with 2, one in train and one in test; with 1, train only. Independent of the
    build seed, so every build with one split_seed shares a test set; stratified by package, so adding or leaving
    out a package never moves another package's recordings between splits.
    """
    by_cat: dict[tuple[str, str], list[str]] = {}
    for r in recordings:
        groups = by_cat.setdefault((r.category, r.package), [])
        if r.group not in groups:
            groups.append(r.group)
    group_split: dict[str, str] = {}
    for _key, groups in sorted(by_cat.items()):
        ranked = sorted(groups, key=lambda g: _rank(g, split_seed))
        n = len(ranked)
        n_test = min(n - 1, math.ceil(n * test_frac)) if n > 1 and test_frac > 0 else 0
        n_val = min(n - 1 - n_test, math.ceil(n * val_frac)) if n > 2 and val_frac > 0 else 0
        for i, g in enumerate(ranked):
            group_split[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return {r.id: group_split[r.group] for r in recordings}


def clip_splits(settings: BuildSettings) -> list[str]:
    """The split of each clip index: round(N * frac) clips for val and test, spread by the seed."""
    n = settings.num_clips
    n_test = round(n * settings.test_frac)
    n_val = round(n * settings.val_frac)
    order = np.random.default_rng([settings.seed, 0xC11F]).permutation(n)
    out = ["train"] * n
    for k, i in enumerate(order):
        if k < n_test:
            out[int(i)] = "test"
        elif k < n_test + n_val:
            out[int(i)] = "val"
    return out


# ---- one clip ------------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(catalogue_json: dict[str, Any], extracted_root: str, split_of: dict[str, str],
                 settings_json: dict[str, Any], nice: int) -> None:
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    cat = sources.Catalogue.from_json(catalogue_json)
    pools: dict[str, dict[str, list[sources.Recording]]] = {s: {} for s in SPLITS}
    for r in cat.recordings:
        pools[split_of[r.id]].setdefault(r.category, []).append(r)
    _WORKER.update(
        settings=BuildSettings(**settings_json),
        pools=pools,
        bank=compose.RecordingBank(Path(extracted_root), settings_json["sample_rate"]),
        art=scenes.ArtLibrary(Path(extracted_root), cat.art_by_role()),
    )


def _build_clip_worker(job: tuple[int, str, str]) -> dict[str, Any]:
    index, split, out_dir = job
    return build_clip(index, split, Path(out_dir), _WORKER["settings"], _WORKER["pools"][split],
                      _WORKER["bank"], _WORKER["art"])


def _record(r: sources.Recording | sources.ArtFile, role: str) -> dict[str, Any]:
    return {"id": r.id, "package": r.package, "version": r.version, "path_in_package": r.path_in_package,
            "role": role, "licence": r.licence, "copyright": r.copyright, "attribution": r.attribution}


def build_clip(index: int, split: str, out_dir: Path, settings: BuildSettings,
               pool: dict[str, list[sources.Recording]], bank: compose.RecordingBank,
               art: scenes.ArtLibrary) -> dict[str, Any]:
    """Render, compose, encode and write clip `index`; returns its ground truth (also written as JSON)."""
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    rng = np.random.default_rng([settings.seed, index])
    ctx = scenes.Ctx(settings.width, settings.height, settings.fps, settings.n_frames, pool, art, bank)
    plan = scenes.plan_clip(ctx, rng, settings.ambience_prob)
    sc = plan.scene
    events = sorted(sc.events, key=lambda e: e.frame)
    room = compose.Room(room_size=float(rng.uniform(0.05, 0.5)), damping=float(rng.uniform(0.3, 0.8)),
                        wet_level=float(rng.uniform(0.02, 0.14)))
    master_peak = float(rng.uniform(-6.0, -1.0))
    audio, ev_info, mix_info = compose.mix_clip([e.placed(settings.fps) for e in events], plan.bed, room,
                                                settings.num_samples, bank, master_peak)
    pcm = compose.to_pcm16(audio)
    rel = f"{split}/{index:05d}.mp4"
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    write_clip(path, plan.frames(), pcm, settings)  # renders while encoding (art is picked during rendering)
    t2 = time.perf_counter()

    used: dict[str, dict[str, Any]] = {}
    ev_out = []
    for e, info in zip(events, ev_info):
        used[e.recording.id] = _record(e.recording, "audio")
        u, v = plan.camera.to_view(e.point, e.frame)
        ev_out.append({
            "time": round(e.frame / settings.fps, 6), "frame": e.frame, "category": e.category,
            "source_file": e.recording.id, "gain_db": round(info["gain_db"], 3),
            "pitch_semitones": round(e.pitch, 3), "level_db": round(e.level_db, 3),
            "onset_in_source": round(info["onset_in_source"], 6), "peak_offset": round(info["peak_offset"], 6),
            "seconds": round(info["seconds"], 4),
            "lowpass_hz": None if e.lowpass is None else round(e.lowpass, 1), "action": e.action,
            "xy": [round(u, 4), round(v, 4)],
        })
    amb = None
    if plan.bed is not None:
        used[plan.bed.recording.id] = _record(plan.bed.recording, "audio")
        amb = {"category": plan.bed.recording.category, "source_file": plan.bed.recording.id,
               "offset": round(plan.bed.offset, 4), "rms_db": round(plan.bed.rms_db, 3),
               "gain_db": round(mix_info["ambience"]["gain_db"], 3)}
    for a in sorted(ctx.used_art.values(), key=lambda a: a.id):
        used[a.id] = _record(a, a.role)
    gt: dict[str, Any] = {
        "format": FORMAT,
        "clip": rel,
        "split": split,
        "seed": settings.seed,
        "index": index,
        "duration": settings.seconds,
        "fps": settings.fps,
        "width": settings.width,
        "height": settings.height,
        "sample_rate": settings.sample_rate,
        "num_samples": settings.num_samples,
        "video": {"codec": "h264", "pix_fmt": "yuv420p"},
        "audio": {"codec": "flac", "channels": 1, "bits": 16},
        "scene": {"family": sc.family, "categories": sc.categories, "sky": sc.mood, **sc.info,
                  "ambience_visual": None if plan.ambience is None else plan.ambience.kind,
                  "camera": {"zoom": round(plan.camera.zoom, 3),
                             "from": [round(v, 1) for v in plan.camera.c0],
                             "to": [round(v, 1) for v in plan.camera.c1]}},
        "events": ev_out,
        "ambience": amb,
        "room": room.to_json(),
        "master_gain_db": round(mix_info["master_gain_db"], 3),
        "master_peak_db": round(master_peak, 3),
        "sources": list(used.values()),
        "licences": sorted({u["licence"] for u in used.values()}),
        "onset_convention": ONSET_CONVENTION,
        "audio_sha256": hashlib.sha256(pcm.tobytes()).hexdigest(),
    }
    (out_dir / f"{split}/{index:05d}.json").write_text(json.dumps(gt, indent=1))
    gt["_timing"] = {"compose": t1 - t0, "render_encode": t2 - t1, "cpu": time.process_time() - cpu0,
                     "bytes": path.stat().st_size}
    return gt


def write_clip(path: Path, frames, pcm: np.ndarray, settings: BuildSettings) -> None:
    """Encode frames (H.264, yuv420p) and int16 mono audio (FLAC, lossless) into an MP4, atomically.

    FLAC in MP4 keeps the composed samples exactly (no AAC priming delay or codec smear to undo), starts at time 0
    with the first frame, and decodes with any FFmpeg/PyAV. libx264 runs single-threaded with `cpu-independent`:
    without it, the x264 in PyAV's wheel gives different bytes for identical frames from run to run on this
    machine (measured at widths 112 and 224, not 128; its CPU-specific lookahead/mb-tree code), and with it the
    bytes also do not depend on the CPU's instruction set.
    """
    import av

    from engine.atomic import atomic_replace

    fps, sr = settings.fps, settings.sample_rate
    with atomic_replace(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps,
                            options={"crf": str(settings.crf), "preset": "medium", "threads": "1",
                                     "g": str(2 * fps), "x264-params": "cpu-independent=1"})
        vs.width, vs.height, vs.pix_fmt = settings.width, settings.height, "yuv420p"
        vs.time_base = Fraction(1, fps)
        a_s = out.add_stream("flac", rate=sr, layout="mono")
        a_s.time_base = Fraction(1, sr)
        chunk = 4096
        a_pos = 0

        def push_audio(until: int | None) -> None:
            nonlocal a_pos
            while a_pos < len(pcm) and (until is None or a_pos < until):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[None, a_pos : a_pos + chunk]),
                                                format="s16", layout="mono")
                fr.sample_rate = sr
                fr.pts = a_pos
                fr.time_base = Fraction(1, sr)
                out.mux(a_s.encode(fr))
                a_pos += chunk
            if until is None:
                out.mux(a_s.encode(None))

        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
            push_audio(round((i + 1) / fps * sr) + sr // 2)
        out.mux(vs.encode(None))
        push_audio(None)


# ---- the whole dataset ---------------------------------------------------------------------------------------
_OWNED = ("splits.json", "manifest.json", "attribution.csv", "ATTRIBUTION.md", "build_report.json")


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty: choose another --out, or pass --overwrite")
        for s in SPLITS:
            shutil.rmtree(out / s, ignore_errors=True)
        for name in _OWNED:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def check_files(cat: sources.Catalogue, extracted_root: Path) -> None:
    """Drop catalogued files that are missing from the extracted folder now, recording why."""
    keep = []
    for r in cat.recordings:
        p = extracted_root / r.local
        if p.is_file() and p.stat().st_size > 0:
            keep.append(r)
        else:
            cat.skipped.append({"file": r.id, "reason": f"missing from {extracted_root} at build time"})
    cat.recordings = keep
    keep_a = []
    for a in cat.art:
        if (extracted_root / a.local).is_file():
            keep_a.append(a)
        else:
            cat.skipped.append({"file": a.id, "reason": f"art missing from {extracted_root} at build time"})
    cat.art = keep_a


def build(out: Path, settings: BuildSettings, *, cache_dir: Path | None = None, workers: int = 1,
          download: bool = True, overwrite: bool = False, nice: int = 0, packages: list[str] | None = None,
          log=print) -> dict[str, Any]:
    """Build the dataset into `out`; returns the manifest (also written to `out/manifest.json`)."""
    t_start = time.perf_counter()
    cache_dir = Path(cache_dir) if cache_dir is not None else sources.default_cache_dir()
    out = Path(out)
    _prepare_out(out, overwrite)
    cat = sources.prepare(cache_dir, packages, download=download, log=log)
    extracted = cache_dir / "extracted"
    check_files(cat, extracted)
    if not cat.recordings:
        raise sources.SourceError("no usable recordings were found: see the skipped list with `info`")
    split_of = assign_splits(cat.recordings, settings.val_frac, settings.test_frac, settings.split_seed)
    clip_split = clip_splits(settings)
    jobs = [(i, clip_split[i], str(out)) for i in range(settings.num_clips)]
    init_args = (cat.to_json(), str(extracted), split_of, asdict(settings), nice)
    results: list[dict[str, Any]] = []
    t_clips = time.perf_counter()
    log(f"build: {settings.num_clips} clips into {out} with {workers} worker(s)")

    def progress(k: int) -> None:
        if k == settings.num_clips or k % max(1, settings.num_clips // 20) == 0:
            el = time.perf_counter() - t_clips
            log(f"build: {k}/{settings.num_clips} clips, {el:.0f} s, "
                f"eta {el / k * (settings.num_clips - k):.0f} s")

    if workers <= 1:
        _init_worker(*init_args[:4], 0)
        for k, job in enumerate(jobs, 1):
            results.append(_build_clip_worker(job))
            progress(k)
    else:
        ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
        with ctx.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
            for k, res in enumerate(pool.imap_unordered(_build_clip_worker, jobs, chunksize=1), 1):
                results.append(res)
                progress(k)
    results.sort(key=lambda r: r["index"])
    t_end = time.perf_counter()
    manifest = write_index(out, settings, cat, split_of, results, workers=workers,
                           seconds=t_end - t_start, clip_seconds=t_end - t_clips)
    log(f"build: done in {t_end - t_start:.0f} s; {manifest['build']['bytes'] / 1e6:.1f} MB, "
        f"{manifest['build']['bytes_per_clip'] / 1e3:.0f} kB and "
        f"{manifest['build']['seconds_per_clip_per_worker']:.2f} s per clip per worker "
        f"({manifest['build']['cpu_seconds_per_clip']:.2f} s of CPU)")
    return manifest


def write_index(out: Path, settings: BuildSettings, cat: sources.Catalogue, split_of: dict[str, str],
                results: list[dict[str, Any]], *, workers: int, seconds: float, clip_seconds: float) -> dict[str, Any]:
    """splits.json, manifest.json, attribution.csv, ATTRIBUTION.md and build_report.json."""
    splits = {s: [r["clip"] for r in results if r["split"] == s] for s in SPLITS}
    (out / "splits.json").write_text(json.dumps(splits, indent=1))

    use_count: dict[str, int] = {}
    for r in results:
        for src in r["sources"]:
            use_count[src["id"]] = use_count.get(src["id"], 0) + 1
    categories: dict[str, Any] = {}
    for rec in cat.recordings:
        c = categories.setdefault(rec.category, {"kind": rec.kind, "recordings": dict.fromkeys(SPLITS, 0),
                                                 "events": dict.fromkeys(SPLITS, 0)})
        c["recordings"][split_of[rec.id]] += 1
    for r in results:
        for e in r["events"]:
            categories[e["category"]]["events"][r["split"]] += 1
        if r["ambience"] is not None:
            categories[r["ambience"]["category"]]["events"][r["split"]] += 1
    total_bytes = sum(r["_timing"]["bytes"] for r in results)
    n = max(1, len(results))
    build_info = {
        "seconds": round(seconds, 2),
        "clip_seconds": round(clip_seconds, 2),
        "workers": workers,
        "seconds_per_clip_per_worker": round(clip_seconds * max(1, workers) / n, 3),
        "cpu_seconds_per_clip": round(sum(r["_timing"]["cpu"] for r in results) / n, 3),
        "compose_seconds_per_clip": round(sum(r["_timing"]["compose"] for r in results) / n, 3),
        "render_encode_seconds_per_clip": round(sum(r["_timing"]["render_encode"] for r in results) / n, 3),
        "bytes": total_bytes,
        "bytes_per_clip": round(total_bytes / n),
    }
    manifest = {
        "format": FORMAT,
        "generator": "training.datasets.foley_real",
        "settings": asdict(settings),
        "onset_convention": ONSET_CONVENTION,
        "splits": {s: len(v) for s, v in splits.items()},
        "packages": cat.packages,
        "categories": dict(sorted(categories.items())),
        "recordings": [{"id": r.id, "package": r.package, "version": r.version, "path_in_package": r.path_in_package,
                        "category": r.category, "kind": r.kind, "split": split_of[r.id], "duration": r.duration,
                        "sample_rate": r.sample_rate, "full_band": r.full_band, "onset": r.onset,
                        "sha256": r.sha256, "group": r.group, "licence": r.licence, "copyright": r.copyright,
                        "used_in_clips": use_count.get(r.id, 0)} for r in cat.recordings],
        "art": [{"id": a.id, "role": a.role, "path_in_package": a.path_in_package, "licence": a.licence,
                 "used_in_clips": use_count.get(a.id, 0)} for a in cat.art],
        "skipped": cat.skipped,
        "licence_texts": cat.licence_texts,
        "build": build_info,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))

    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        for src in r["sources"]:
            row = rows.setdefault(src["id"], {**src, "clips": 0})
            row["clips"] += 1
    with open(out / "attribution.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "kind", "category_or_role", "split", "package", "version", "path_in_package", "licence",
                    "copyright", "attribution", "clips"])
        rec_by_id = {r.id: r for r in cat.recordings}
        for fid in sorted(rows):
            row = rows[fid]
            rec = rec_by_id.get(fid)
            kind = "audio" if row["role"] == "audio" else "art"
            w.writerow([fid, kind, rec.category if rec else row["role"], split_of.get(fid, ""), row["package"],
                        row["version"], row["path_in_package"], row["licence"], row["copyright"],
                        row["attribution"], row["clips"]])

    licences = sorted({(row["package"], row["licence"], row["copyright"], row["attribution"]) for row in rows.values()})
    lines = ["# Attribution and licences", "",
             "This dataset was generated by `python -m training.datasets.foley_real`. Its clips contain (and are "
             "derived from) the following third-party files; `attribution.csv` lists every file with its path in "
             "its package. The clips are adaptations of these works and carry the same licence terms (share-alike "
             "where the source is CC BY-SA or GPL).", ""]
    for pkg, lic, cop, attr in licences:
        n_files = sum(1 for row in rows.values() if row["package"] == pkg and row["licence"] == lic)
        lines.append(f"- **{pkg}**: {n_files} files, licence {lic}, copyright {cop}. Credit: {attr}")
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")

    report = {"skipped": cat.skipped, "build": build_info,
              "per_clip": [{"clip": r["clip"], **{k: round(v, 3) if isinstance(v, float) else v
                                                 for k, v in r["_timing"].items()}} for r in results]}
    (out / "build_report.json").write_text(json.dumps(report, indent=1))
    return manifest


# ---- command line --------------------------------------------------------------------------------------------
def summary(cat: sources.Catalogue, split_of: dict[str, str], settings: BuildSettings | None = None,
            skipped: bool = True) -> str:
    """The catalogue as Markdown tables: recordings per category (by split and by package), per package (minutes,
    full-band share, licences), the clips per split of a build with `settings`, then the skipped files."""
    pkgs = [p for p in sources.SOURCES if any(r.package == p for r in cat.recordings)]
    key = {p: sources.SOURCES[p].key for p in pkgs}
    by: dict[str, dict[str, int]] = {}
    kinds: dict[str, str] = {}
    for r in cat.recordings:
        row = by.setdefault(r.category, {**dict.fromkeys(SPLITS, 0), **dict.fromkeys(pkgs, 0)})
        row[split_of[r.id]] += 1
        row[r.package] += 1
        kinds[r.category] = r.kind
    head = ["category", "kind", "train", "val", "test", *(key[p] for p in pkgs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(by, key=lambda c: (kinds[c], c)):
        cells = [c, kinds[c], *(str(by[c][s]) for s in SPLITS), *(str(by[c][p]) if by[c][p] else "" for p in pkgs)]
        lines.append("| " + " | ".join(cells) + " |")
    tot = {s: sum(1 for r in cat.recordings if split_of[r.id] == s) for s in SPLITS}
    lines.append("| **all** | | " + " | ".join(str(tot[s]) for s in SPLITS) + " | "
                 + " | ".join(str(sum(1 for r in cat.recordings if r.package == p)) for p in pkgs) + " |")
    lines += ["", f"{len(by)} categories ({sum(1 for k in kinds.values() if k == 'event')} event, "
              f"{sum(1 for k in kinds.values() if k == 'ambience')} ambience), {len(cat.recordings)} recordings.", "",
              "| package | version | recordings | minutes | categories | full band (>= 44.1 kHz) | licences |",
              "|---|---|---|---|---|---|---|"]
    versions = {m["package"]: m.get("version", "?") for m in cat.packages}
    for p in pkgs:
        recs = [r for r in cat.recordings if r.package == p]
        lic: dict[str, int] = {}
        for r in recs:
            lic[r.licence] = lic.get(r.licence, 0) + 1
        lic_s = ", ".join(f"{k} ({v})" for k, v in sorted(lic.items(), key=lambda kv: -kv[1]))
        lines.append(f"| {p} | {versions.get(p, '?')} | {len(recs)} | {sum(r.duration for r in recs) / 60:.1f} | "
                     f"{len({r.category for r in recs})} | {sum(r.full_band for r in recs)} | {lic_s} |")
    roles: dict[str, int] = {}
    for a in cat.art:
        roles[a.role] = roles.get(a.role, 0) + 1
    lines.append("")
    if settings is not None:
        cs = clip_splits(settings)
        lines.append(f"clips of a {settings.num_clips}-clip build: "
                     + ", ".join(f"{s} {cs.count(s)}" for s in SPLITS))
    lines.append(f"art: {len(cat.art)} files in {len(roles)} roles; skipped: {len(cat.skipped)} files")
    if skipped:
        lines += [f"  skipped {s['file']}: {s['reason']}" for s in cat.skipped]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.datasets.foley_real", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = BuildSettings()

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--cache", type=Path, default=None,
                       help=f"download/extract cache (default {sources.default_cache_dir()}; $MDSGEN_FOLEY_CACHE)")
        q.add_argument("--offline", action="store_true", help="never call apt-get; use the cache as it is")
        q.add_argument("--packages", type=lambda v: [x for x in v.split(",") if x.strip()], default=None,
                       help="comma-separated source packages by short or package name (default: all of "
                            f"{','.join(s.key for s in sources.SOURCES.values())})")
        q.add_argument("--package", action="append", default=None, help=argparse.SUPPRESS)  # older spelling
        q.add_argument("--split-seed", type=int, default=d.split_seed)
        q.add_argument("--val-frac", type=float, default=d.val_frac)
        q.add_argument("--test-frac", type=float, default=d.test_frac)

    b = sub.add_parser("build", help="build the dataset")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--seed", type=int, default=d.seed)
    b.add_argument("--num-clips", type=int, default=d.num_clips)
    b.add_argument("--seconds", type=float, default=d.seconds)
    b.add_argument("--fps", type=int, default=d.fps)
    b.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=(d.width, d.height))
    b.add_argument("--crf", type=int, default=d.crf, help="H.264 quality (lower = bigger files)")
    b.add_argument("--ambience-prob", type=float, default=d.ambience_prob)
    b.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    b.add_argument("--nice", type=int, default=10, help="niceness of the build processes (0 to keep)")
    b.add_argument("--overwrite", action="store_true", help="replace a previous build in --out")
    common(b)
    f = sub.add_parser("fetch", help="download, extract and catalogue the source packages, then print a summary")
    common(f)
    i = sub.add_parser("info", help="print the catalogue: recordings per category, split and package, licences, "
                                    "skipped files")
    i.add_argument("--num-clips", type=int, default=d.num_clips, help="show the clips per split of this build")
    i.add_argument("--no-skipped", action="store_true", help="leave out the list of skipped files")
    common(i)
    args = p.parse_args(argv)
    packages = [*(args.packages or []), *(args.package or [])] or None

    def log(msg: str) -> None:
        print(msg, flush=True)

    try:
        if args.cmd == "build":
            if args.nice:
                with contextlib.suppress(OSError):
                    os.nice(args.nice)
            settings = BuildSettings(seed=args.seed, num_clips=args.num_clips, seconds=args.seconds, fps=args.fps,
                                     width=args.size[0], height=args.size[1], val_frac=args.val_frac,
                                     test_frac=args.test_frac, split_seed=args.split_seed, crf=args.crf,
                                     ambience_prob=args.ambience_prob)
            build(args.out, settings, cache_dir=args.cache, workers=args.workers, download=not args.offline,
                  overwrite=args.overwrite, packages=packages, log=log)
            return 0
        cache = args.cache or sources.default_cache_dir()
        cat = sources.prepare(cache, packages, download=(args.cmd == "fetch" and not args.offline), log=log)
        check_files(cat, cache / "extracted")
        settings = BuildSettings(num_clips=getattr(args, "num_clips", d.num_clips), val_frac=args.val_frac,
                                 test_frac=args.test_frac, split_seed=args.split_seed)
        print(summary(cat, assign_splits(cat.recordings, args.val_frac, args.test_frac, args.split_seed), settings,
                      skipped=not getattr(args, "no_skipped", False)))
        return 0
    except (sources.SourceError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
