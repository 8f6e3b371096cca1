"""Data: find the videos, split them by source, preprocess once into a feature cache, and serve training batches.

Input: folders (searched recursively for video suffixes) and/or list files (one path per line, relative to the
list file, optionally followed by a split name: `clips/a.mp4 val`; `#` starts a comment). A folder holding a
`splits.json` = {"train": [relative paths], "val": [...], "test": [...]} is taken as given: its files keep their
split and files it does not list are skipped ("not in splits.json"). Otherwise clips are split train/val/test by
*source video*, deterministically: clips named `<source>_<number>.<ext>` (VGGSound's `<youtube id>_<start>`) and
chunks of one long video share a source, and every source lands wholly in one split (by a seeded hash).

Preprocessing (`preprocess`) runs once per video, in `workers` processes, with a progress bar, and is resumable:
each video's result is a record (`cache/videos/<key>.json`, written last and atomically) beside one `.npz` per
clip (`cache/clips/<key>-<chunk>.npz`), and a video whose record exists is not touched again. A video longer than
`chunk_seconds` is cut into chunks, each a clip. Unreadable, soundless, silent and too-short inputs are skipped
with their reason; `data_report.json` counts them. Per clip the cache holds:

    wav    int16 (n,)                  the clip's audio at the spec's rate (mono)
    mel    float16 (n_mels, n/hop + 1) the normalised mel of the whole clip (engine.audio front end)
    feats  float16 (T, 1280)           frozen EfficientNet-Lite0 features of the frames at k / video_fps

Latents (after stage 1) are cached per segment crop by `training.stages.denoiser`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_replace, atomic_write_text
from engine.spec import SegmentSpec
from training.config import DataConfig

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
CACHE_VERSION = 1
SPLITS_FILE = "splits.json"


class DataError(RuntimeError):
    """The inputs cannot be used (nothing found, no clip left, a cache built with other settings)."""


# ---------------------------------------------------------------------------------------------------------------
# Discovery and splits
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class VideoEntry:
    """One input video."""

    path: str  # absolute
    rel: str  # relative to its input root (reports, splits)
    split: str | None = None  # given by splits.json or a list file, else assigned
    missing: bool = False


def source_id(rel: str) -> str:
    """The source video a clip comes from: its relative path with a trailing `_<number>` run dropped from the stem.

    `vggsound/abc123_000030.mp4` -> `vggsound/abc123`; `take.mp4` -> `take`. Chunks of one file share its source.
    """
    p = Path(rel)
    stem = re.sub(r"(_\d+)+$", "", p.stem) or p.stem
    return str(p.with_name(stem).with_suffix(""))


def _video_files(root: Path, extensions: list[str]) -> list[Path]:
    exts = {e.lower() for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def _read_list_file(path: Path) -> list[VideoEntry]:
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        split = None
        if len(parts) == 2 and parts[1] in SPLITS:
            line, split = parts[0], parts[1]
        p = Path(line)
        full = p if p.is_absolute() else (path.parent / p)
        entries.append(VideoEntry(str(full.resolve()), line, split, missing=not full.is_file()))
        if split is None and len(parts) == 2 and parts[1].lower() in ("training", "validation", "testing"):
            raise DataError(f"{path}:{n}: use the split names train/val/test, not {parts[1]!r}")
    return entries


def discover(inputs: list[str], extensions: list[str]) -> tuple[list[VideoEntry], list[dict[str, str]]]:
    """All input videos (sorted, de-duplicated) and the files skipped at this point (with reasons)."""
    entries: list[VideoEntry] = []
    skipped: list[dict[str, str]] = []
    for item in inputs:
        root = Path(item).expanduser()
        if root.is_dir():
            files = _video_files(root, extensions)
            splits_path = root / SPLITS_FILE
            if splits_path.is_file():
                try:
                    given = json.loads(splits_path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError) as exc:
                    raise DataError(f"{splits_path} is not valid JSON ({exc})") from exc
                if not isinstance(given, dict) or not set(given) <= set(SPLITS):
                    raise DataError(f"{splits_path} must map train/val/test to lists of relative paths")
                where = {str(Path(r)): s for s in SPLITS for r in given.get(s, [])}
                listed = set()
                for f in files:
                    rel = str(f.relative_to(root))
                    if rel in where:
                        entries.append(VideoEntry(str(f.resolve()), rel, where[rel]))
                        listed.add(rel)
                    else:
                        skipped.append({"path": rel, "reason": "not in splits.json", "detail": ""})
                for rel in sorted(set(where) - listed):
                    skipped.append({"path": rel, "reason": "missing", "detail": f"listed in {SPLITS_FILE}"})
            else:
                entries += [VideoEntry(str(f.resolve()), str(f.relative_to(root))) for f in files]
        elif root.is_file():
            for e in _read_list_file(root):
                if e.missing:
                    skipped.append({"path": e.rel, "reason": "missing", "detail": f"listed in {root.name}"})
                else:
                    entries.append(e)
        else:
            raise DataError(f"input {item!r} is neither a folder nor a list file")
    seen: set[str] = set()
    unique = []
    for e in sorted(entries, key=lambda e: (e.rel, e.path)):
        if e.path not in seen:
            seen.add(e.path)
            unique.append(e)
    return unique, skipped


def _unit_hash(text: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def assign_splits(entries: list[VideoEntry], *, val_fraction: float, test_fraction: float, seed: int) -> None:
    """Give every entry without a split one, by source: sources ordered by a seeded hash, cut by the fractions.

    With at least three sources, val and test get at least one source each (when their fraction is > 0).
    """
    todo = [e for e in entries if e.split is None]
    sources = sorted({source_id(e.rel) for e in todo}, key=lambda s: _unit_hash(s, seed))
    n = len(sources)
    n_val = round(n * val_fraction)
    n_test = round(n * test_fraction)
    if n >= 3:
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    n_val, n_test = min(n_val, max(n - 1, 0)), min(n_test, max(n - 1 - n_val, 0))
    where = {s: ("test" if i < n_test else "val" if i < n_test + n_val else "train") for i, s in enumerate(sources)}
    for e in todo:
        e.split = where[source_id(e.rel)]


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing (one video -> clips), resumable and parallel
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrepSettings:
    """Everything that decides what preprocessing writes (its digest guards the cache)."""

    spec: dict[str, Any]
    chunk_seconds: float
    min_seconds: float
    silence_dbfs: float
    image_size: int = 224
    backbone: str = "efficientnet-lite0"
    version: int = CACHE_VERSION

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def prep_spec(spec: SegmentSpec) -> dict[str, Any]:
    """The spec as the cache's settings record it: the latent fields at their defaults (they do not change what
    preprocessing writes), so a latent lever (`spec_overrides`) shares the cache of its spec."""
    defaults = SegmentSpec()
    return {**spec.to_dict(), **{k: getattr(defaults, k) for k in
                                 ("latent_channels", "latent_height", "latent_width", "time_axis", "patch_size")}}


def video_key(entry: VideoEntry) -> str:
    """A file-name-safe unique key: the sanitised relative path plus a hash of the absolute path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", entry.rel)[-80:].strip("_.") or "video"
    return f"{safe}-{hashlib.sha1(entry.path.encode()).hexdigest()[:8]}"


def chunk_spans(duration: float, chunk: float, minimum: float) -> list[tuple[float, float]]:
    """(start, length) of the chunks of a video: consecutive `chunk`-second pieces, the last kept if >= minimum."""
    spans = []
    start = 0.0
    while duration - start >= minimum - 1e-6:
        spans.append((start, min(chunk, duration - start)))
        start += chunk
    return spans


def frame_count(seconds: float, fps: float) -> int:
    """How many frames k / fps lie inside [0, seconds)."""
    return max(0, math.ceil(seconds * fps - 1e-6))


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    with atomic_replace(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


class _FeatureExtractor:
    """The frozen frame encoder, built once per process."""

    _instance: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._instance is None:
            import torch

            from engine.nn.frame_encoder import FrameEncoder, load_pretrained_backbone_state

            enc = FrameEncoder()
            enc.backbone.load_state_dict(load_pretrained_backbone_state(), strict=False)
            enc.eval()
            cls._instance = (torch, enc)
        return cls._instance

    @classmethod
    def features(cls, frames: np.ndarray, batch: int = 32) -> np.ndarray:
        """uint8 (T, 224, 224, 3) -> float32 (T, 1280)."""
        torch, enc = cls.get()
        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), batch):
                x = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch])).permute(0, 3, 1, 2).float()
                out.append(enc(x).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1280), np.float32)


def process_video(entry: VideoEntry, settings: PrepSettings, cache_dir: str) -> dict[str, Any]:
    """Preprocess one video into its clips; returns (and writes) its record. Never raises for a bad input."""
    from engine import audio
    from engine.errors import EngineError, NoAudioStreamError, NoVideoStreamError
    from engine.media import probe_video, read_audio, read_frames

    spec = SegmentSpec.from_dict(settings.spec)
    key = video_key(entry)
    record: dict[str, Any] = {"path": entry.path, "rel": entry.rel, "key": key, "split": entry.split,
                              "source": source_id(entry.rel), "settings": settings.digest(), "clips": [],
                              "skipped": []}
    cache = Path(cache_dir)
    try:
        st = os.stat(entry.path)
        record["file"] = {"size": st.st_size, "mtime": st.st_mtime}
    except OSError as exc:
        record["skipped"].append({"reason": "missing", "detail": str(exc)})
        return record

    def skip(reason: str, detail: str, chunk: int | None = None) -> None:
        extra = {"chunk": chunk} if chunk is not None else {}
        record["skipped"].append({"reason": reason, "detail": detail, **extra})

    try:
        info = probe_video(entry.path)
        if not info.has_audio:
            raise NoAudioStreamError("the file has no audio stream")
        spans = chunk_spans(info.duration, settings.chunk_seconds, settings.min_seconds)
        if not spans:
            skip("too short", f"{info.duration:.3f} s < {settings.min_seconds:.3f} s")
            return record
        end = spans[-1][0] + spans[-1][1]
        wav_all = read_audio(entry.path, spec.sample_rate, start=0.0, duration=end)
        fps = spec.video_fps
        times = np.concatenate([s + np.arange(frame_count(d, fps)) / fps for s, d in spans])
        frames = read_frames(entry.path, times, size=(settings.image_size, settings.image_size)).frames
    except NoAudioStreamError as exc:
        skip("no audio", str(exc))
        return record
    except NoVideoStreamError as exc:
        skip("no video", str(exc))
        return record
    except (EngineError, OSError, ValueError, RuntimeError) as exc:
        skip("unreadable", f"{type(exc).__name__}: {exc}")
        return record
    if not np.all(np.isfinite(wav_all)):
        skip("unreadable", "the audio decodes to non-finite samples")
        return record
    feats_all = _FeatureExtractor.features(frames)  # (sum T, 1280)
    offset = 0
    sr = spec.sample_rate
    for k, (start, dur) in enumerate(spans):
        n_frames = frame_count(dur, fps)
        feats = feats_all[offset : offset + n_frames]
        offset += n_frames
        wav = wav_all[round(start * sr) : round(start * sr) + round(dur * sr)]
        level = audio.rms_dbfs(wav)
        if level < settings.silence_dbfs:
            skip("silent", f"RMS {level:.1f} dBFS < {settings.silence_dbfs:.1f} dBFS", k)
            continue
        mel = audio.mel_spectrogram(wav, spec)  # (n_mels, n // hop + 1)
        clip_key = f"{key}-{k:03d}"
        _atomic_savez(cache / "clips" / f"{clip_key}.npz",
                      wav=(np.clip(wav, -1.0, 1.0) * 32767.0).round().astype(np.int16),
                      mel=mel.astype(np.float16), feats=feats.astype(np.float16))
        record["clips"].append({"key": clip_key, "chunk": k, "start": start, "duration": dur,
                                "frames": int(n_frames), "rms_dbfs": round(level, 2)})
    return record


def _record_path(cache: Path, key: str) -> Path:
    return cache / "videos" / f"{key}.json"


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def _work(args: tuple[VideoEntry, PrepSettings, str]) -> dict[str, Any]:
    entry, settings, cache_dir = args
    rec = process_video(entry, settings, cache_dir)
    atomic_write_text(_record_path(Path(cache_dir), rec["key"]), json.dumps(rec) + "\n")
    return rec


@dataclass
class Clip:
    """One preprocessed clip (a chunk of a video)."""

    key: str
    path: str
    rel: str
    source: str
    split: str
    start: float  # s, within the video
    duration: float
    frames: int


@dataclass
class DataIndex:
    """The clips of a preprocessed data set, by split, and the report of what was skipped."""

    cache_dir: Path
    clips: list[Clip]
    report: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]


def preprocess(cfg: DataConfig, spec: SegmentSpec, cache_dir: Path, *, threads: int = 0,
               progress: bool = True) -> DataIndex:
    """Discover, split and preprocess the inputs (resumably); write the index and return it with the report."""
    from tqdm import tqdm

    cache_dir.mkdir(parents=True, exist_ok=True)
    min_seconds = cfg.min_seconds if cfg.min_seconds is not None else spec.duration
    if min_seconds < spec.duration:
        raise DataError(f"data.min_seconds {min_seconds} is below the segment length {spec.duration:.3f} s")
    settings = PrepSettings(spec=prep_spec(spec), chunk_seconds=cfg.chunk_seconds, min_seconds=min_seconds,
                            silence_dbfs=cfg.silence_dbfs)
    stamp = cache_dir / "CACHE.json"
    if stamp.is_file():
        old = json.loads(stamp.read_text(encoding="utf-8"))
        if old.get("settings") != settings.digest():
            raise DataError(
                f"the feature cache {cache_dir} was built with other preprocessing settings ({old.get('params')}); "
                "delete it, or point data.cache_dir elsewhere"
            )
    else:
        atomic_write_text(stamp, json.dumps({"settings": settings.digest(),
                                             "params": dataclasses.asdict(settings)}, indent=1) + "\n")

    entries, skipped = discover(cfg.inputs, cfg.extensions)
    if cfg.max_clips > 0:
        entries = entries[: cfg.max_clips]
    if not entries:
        raise DataError(f"no video found in {cfg.inputs} (suffixes {cfg.extensions})")
    assign_splits(entries, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.split_seed)

    records: dict[str, dict[str, Any]] = {}
    todo = []
    for e in entries:
        rp = _record_path(cache_dir, video_key(e))
        rec = None
        if rp.is_file():
            try:
                rec = json.loads(rp.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                rec = None
        if rec is not None and rec.get("settings") == settings.digest() and _same_file(rec, e.path) and all(
            (cache_dir / "clips" / f"{c['key']}.npz").is_file() for c in rec["clips"]
        ):
            rec["split"] = e.split  # the split may come from a newer splits.json
            records[rec["key"]] = rec
        else:
            todo.append(e)
    bar = tqdm(total=len(entries), initial=len(entries) - len(todo), desc="preprocess", unit="video",
               disable=not progress, dynamic_ncols=True)
    work = [(e, settings, str(cache_dir)) for e in todo]
    if cfg.workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork after torch has started its threads
        with ctx.Pool(min(cfg.workers, len(todo)), initializer=_worker_init, initargs=(1,)) as pool:
            for rec in pool.imap_unordered(_work, work):
                records[rec["key"]] = rec
                bar.update(1)
    else:
        if threads:
            _worker_init(threads)
        for w in work:
            rec = _work(w)
            records[rec["key"]] = rec
            bar.update(1)
    bar.close()

    clips: list[Clip] = []
    for e in entries:
        rec = records[video_key(e)]
        for c in rec["clips"]:
            clips.append(Clip(key=c["key"], path=e.path, rel=e.rel, source=rec["source"], split=str(e.split),
                              start=float(c["start"]), duration=float(c["duration"]), frames=int(c["frames"])))
        for s in rec["skipped"]:
            skipped.append({"path": e.rel, **{k: str(v) for k, v in s.items()}})
    report = make_report(entries, clips, skipped, settings, cfg)
    atomic_write_text(cache_dir / "index.json", json.dumps([dataclasses.asdict(c) for c in clips], indent=0) + "\n")
    if not clips:
        raise DataError(f"no usable clip in {cfg.inputs}: " + json.dumps(report["skipped"]))
    if not [c for c in clips if c.split == "train"]:
        raise DataError("no clip landed in the train split; add videos or lower data.val_fraction/test_fraction")
    return DataIndex(cache_dir, clips, report)


def _same_file(rec: dict[str, Any], path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    f = rec.get("file") or {}
    return f.get("size") == st.st_size and f.get("mtime") == st.st_mtime


def make_report(entries: list[VideoEntry], clips: list[Clip], skipped: list[dict[str, str]], settings: PrepSettings,
                cfg: DataConfig) -> dict[str, Any]:
    """Counts by split and the skip reasons (the run folder's `data_report.json`)."""
    by_split: dict[str, Any] = {}
    for s in SPLITS:
        cs = [c for c in clips if c.split == s]
        by_split[s] = {"clips": len(cs), "videos": len({c.path for c in cs}), "sources": len({c.source for c in cs}),
                       "hours": round(sum(c.duration for c in cs) / 3600, 4)}
    reasons = Counter(s["reason"] for s in skipped)
    return {
        "inputs": list(cfg.inputs),
        "videos_found": len(entries),
        "videos_used": len({c.path for c in clips}),
        "clips": len(clips),
        "splits": by_split,
        "split_rule": "splits.json / list file where given, else by source video (seeded hash)",
        "skipped": dict(sorted(reasons.items())),
        "skipped_files": skipped,
        "preprocessing": {"digest": settings.digest(), **dataclasses.asdict(settings)},
    }


def load_index(cache_dir: Path) -> list[Clip]:
    raw = json.loads((cache_dir / "index.json").read_text(encoding="utf-8"))
    return [Clip(**c) for c in raw]


# ---------------------------------------------------------------------------------------------------------------
# Access to cached clips and deterministic sampling
# ---------------------------------------------------------------------------------------------------------------
class ClipStore:
    """Cached arrays of clips, loaded lazily (an LRU of `capacity` clips); values as float32."""

    def __init__(self, cache_dir: Path, clips: list[Clip], capacity: int = 4096) -> None:
        self.cache_dir = Path(cache_dir)
        self.clips = clips
        self._load = lru_cache(maxsize=capacity)(self._read)

    def __len__(self) -> int:
        return len(self.clips)

    def _read(self, i: int) -> dict[str, np.ndarray]:
        with np.load(self.cache_dir / "clips" / f"{self.clips[i].key}.npz") as z:
            return {"wav": z["wav"], "mel": z["mel"], "feats": z["feats"]}

    def wav(self, i: int) -> np.ndarray:
        return self._load(i)["wav"].astype(np.float32) / 32767.0  # (n,)

    def mel(self, i: int) -> np.ndarray:
        return self._load(i)["mel"].astype(np.float32)  # (n_mels, frames)

    def feats(self, i: int) -> np.ndarray:
        return self._load(i)["feats"].astype(np.float32)  # (T, 1280)


def crop_starts(clip: Clip, spec: SegmentSpec, stride: float) -> list[float]:
    """Segment starts (s, within the clip) on a `stride` grid such that the segment and its frames fit."""
    starts = []
    k = 0
    while True:
        s = k * stride
        if s + spec.duration > clip.duration + 1e-6 or round(s * spec.video_fps) + spec.num_frames > clip.frames:
            break
        starts.append(round(s, 6))
        k += 1
    return starts


@lru_cache(maxsize=8)
def epoch_permutation(seed: int, stream: str, epoch: int, n: int) -> np.ndarray:
    """The sample order of one epoch: a permutation of range(n) that depends only on (seed, stream, epoch)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{stream}:{epoch}".encode()).digest()[:8], "big")
    perm = np.random.default_rng(h).permutation(n)
    perm.flags.writeable = False  # shared through the cache
    return perm


def batch_indices(seed: int, stream: str, step: int, batch: int, n: int) -> np.ndarray:
    """Dataset indices of the global batch of `step`: consecutive slices of per-epoch permutations.

    A pure function of the step, so the data order needs no state to resume: step s always sees the same samples.
    """
    if n <= 0:
        raise DataError(f"no samples for {stream}")
    first = step * batch
    out = np.empty(batch, np.int64)
    for j in range(batch):
        g = first + j
        out[j] = epoch_permutation(seed, stream, g // n, n)[g % n]
    return out


def step_rng(seed: int, stream: str, step: int, rank: int = 0) -> np.random.Generator:
    """The numpy RNG of one step (and rank): crops, windows; resumes exactly without saved state."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{stream}:{step}:{rank}".encode()).digest()[:8], "big")
    return np.random.default_rng(h)


def step_seed(seed: int, stream: str, step: int, rank: int = 0) -> int:
    """A 63-bit seed for the torch generator of one step (and rank)."""
    return int.from_bytes(hashlib.sha256(f"torch:{seed}:{stream}:{step}:{rank}".encode()).digest()[:8], "big") >> 1
