"""The catalogue: recordings and art of an extracted package (`scan`), their onsets, the checks that
skip a file (undecodable, empty, silent, too short, duplicate) and the merge across packages."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets.sources.common import FILES_META, MARKER, sha256_file
from training.datasets.sources.licences import copyright_paths, licence_for, parse_copyright
from training.datasets.sources.packages import PackageSource

# Bump when the scan's output or its checks change: cached catalogues of another version are rebuilt.
# 4: Recording.full_band, per-file licences from containers and stanza sources, fingerprints for cross-package
# duplicates, the source group of derived recordings.
CATALOGUE_VERSION = 4
# The 48 kHz bandwidth extension needs recordings that hold the band above 8 kHz up to 22 kHz: 44.1 kHz or more.
FULL_BAND_RATE = 44_100


# The onset convention (docs/dataset.md, `onset_index`): the first sample at -40 dB relative to the peak.
ONSET_REL_DB = -40.0
ONSET_FLOOR_FACTOR = 6.0  # ... or this many times the RMS of the recording's first 10 ms, if higher
MIN_EVENT_SECONDS = 0.05
MIN_AMBIENCE_SECONDS = 3.0
SILENT_PEAK_DB = -60.0


@dataclass
class Recording:
    """One source recording: where it comes from, what it is, and what the builder needs to know about it."""

    id: str  # "<package>:<path in package>"
    package: str
    version: str
    path_in_package: str  # archive members as "<archive>!/<member>"
    local: str  # path relative to the cache's extracted/ folder
    category: str
    kind: str  # "event" | "ambience"
    action: str  # what made the sound (arrow, sling, ...) or ""
    sample_rate: int
    channels: int
    duration: float
    onset: float  # seconds, at the file's own rate (see ONSET_REL_DB)
    peak_db: float
    sha256: str
    group: str  # recordings of one group come from one source recording; they share a split
    licence: str
    copyright: str
    attribution: str
    full_band: bool = False  # sample_rate >= FULL_BAND_RATE: usable as a 48 kHz bandwidth-extension target


@dataclass
class ArtFile:
    id: str
    package: str
    version: str
    path_in_package: str
    local: str
    role: str
    licence: str
    copyright: str
    attribution: str


@dataclass
class Catalogue:
    recordings: list[Recording] = field(default_factory=list)
    art: list[ArtFile] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    packages: list[dict[str, Any]] = field(default_factory=list)  # the EXTRACTED.json markers
    licence_texts: list[str] = field(default_factory=list)  # local paths of licence files shipped with the data
    # recording id -> {"pcm": sha256 of its 16-bit PCM, "env": its 10 ms envelope in dB}: duplicates across packages
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self, fingerprints: bool = False) -> dict[str, Any]:
        out = {
            "version": CATALOGUE_VERSION,
            "recordings": [asdict(r) for r in self.recordings],
            "art": [asdict(a) for a in self.art],
            "skipped": self.skipped,
            "packages": self.packages,
            "licence_texts": self.licence_texts,
        }
        if fingerprints:
            out["fingerprints"] = self.fingerprints
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Catalogue:
        return cls(
            recordings=[Recording(**r) for r in d["recordings"]],
            art=[ArtFile(**a) for a in d["art"]],
            skipped=list(d["skipped"]),
            packages=list(d["packages"]),
            licence_texts=list(d.get("licence_texts", [])),
            fingerprints=dict(d.get("fingerprints", {})),
        )

    def merge(self, other: Catalogue) -> None:
        self.recordings += other.recordings
        self.art += other.art
        self.skipped += other.skipped
        self.packages += other.packages
        self.licence_texts += other.licence_texts
        self.fingerprints.update(other.fingerprints)

    def categories(self) -> dict[str, list[Recording]]:
        out: dict[str, list[Recording]] = {}
        for r in self.recordings:
            out.setdefault(r.category, []).append(r)
        return out

    def art_by_role(self) -> dict[str, list[ArtFile]]:
        out: dict[str, list[ArtFile]] = {}
        for a in self.art:
            out.setdefault(a.role, []).append(a)
        return out


def onset_index(x: np.ndarray, sr: int = 16_000, rel_db: float = ONSET_REL_DB) -> int:
    """Index of a recording's onset: its first sample whose magnitude reaches -40 dB relative to its peak.

    Guard for recordings that start with their own noise floor (0 A.D.'s footsteps begin with up to 0.13 s of room
    tone at -20..-35 dB before the step): the threshold is raised to 6x (+15.6 dB) the RMS of the first 10 ms when
    that is higher, capped at half the peak. On a clean recording (a silent or near-silent head) this is exactly
    the plain -40 dB rule. 0 for silence.
    """
    x = np.asarray(x, np.float32)
    mag = np.abs(x)
    peak = float(mag.max()) if mag.size else 0.0
    if peak <= 0:
        return 0
    head = x[: max(16, int(0.01 * sr))].astype(np.float64)
    floor = float(np.sqrt(np.mean(head**2)))
    thr = min(max(peak * 10 ** (rel_db / 20), ONSET_FLOOR_FACTOR * floor), 0.5 * peak)
    return int(np.argmax(mag >= thr))


def _envelope(x: np.ndarray, sr: int) -> np.ndarray:
    """10 ms RMS envelope in dB (floor -80), for near-duplicate detection."""
    hop = max(1, sr // 100)
    n = len(x) // hop
    if n == 0:
        return np.zeros(0)
    frames = x[: n * hop].reshape(n, hop)
    return 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-4)


def _near_duplicates(a: np.ndarray, b: np.ndarray) -> bool:
    if abs(len(a) - len(b)) > max(2, 0.02 * max(len(a), len(b))):
        return False
    n = min(len(a), len(b))
    if n < 5:
        return bool(n and np.allclose(a[:n], b[:n], atol=1.0))
    a, b = a[:n], b[:n]
    ca, cb = a - a.mean(), b - b.mean()
    den = float(np.sqrt((ca**2).sum() * (cb**2).sum()))
    if not (den > 0 and float((ca * cb).sum()) / den > 0.995):
        return False
    if float(np.abs(a - b).mean()) < 1.5:
        return True
    # the same recording at another gain (MegaGlest ships its winter wind twice, 5 dB apart): compare the frames
    # within 40 dB of both peaks after removing the level difference. Only for 3 s or more: short impacts share
    # their envelope's shape (a decay) too often for a gain-free match to mean the same recording.
    loud = (a > a.max() - 40) & (b > b.max() - 40)
    if n < 300 or loud.sum() < 100:
        return False
    d = a[loud] - b[loud]
    return float(np.abs(d - np.median(d)).mean()) < 1.5


def scan(source: PackageSource, pkg_dir: Path) -> Catalogue:
    """Catalogue an extracted package folder (see the module docstring). Uses no network."""
    import soundfile as sf
    from PIL import Image

    marker = json.loads((pkg_dir / MARKER).read_text())
    version = str(marker.get("version", "unknown"))
    copyright_file = pkg_dir / f"usr/share/doc/{source.package}/copyright"
    stanzas = parse_copyright(copyright_file.read_text(errors="replace")) if copyright_file.exists() else []
    cat = Catalogue(packages=[marker])
    files = sorted(p.relative_to(pkg_dir).as_posix() for p in pkg_dir.rglob("*") if p.is_file())
    for rel in files:
        if any(fnmatch.fnmatchcase(rel, p) for p in source.extra):
            cat.licence_texts.append(f"{source.package}/{rel}")

    meta_path = pkg_dir / FILES_META
    meta: dict[str, dict[str, str]] = json.loads(meta_path.read_text()) if meta_path.exists() else {}

    def licence(rel: str) -> tuple[str, str]:
        own = meta.get(rel, {})
        if own.get("licence"):  # the container states this file's licence (OpenSFX)
            return own["licence"], own.get("copyright") or "unknown"
        if stanzas:
            return licence_for(stanzas, *copyright_paths(source, rel))
        if copyright_file.exists() and source.licence_fallback is not None:
            return source.licence_fallback  # a free-form debian/copyright: what it states for the package
        if copyright_file.exists():
            return ("unknown (debian/copyright is not machine-readable)", "unknown")
        return ("unknown (no debian/copyright)", "unknown")

    # recordings: decode, check, measure
    measured: list[tuple[Recording, np.ndarray, str]] = []  # (recording, envelope, pcm hash)
    for rel in files:
        rule = next((r for r in source.audio if re.fullmatch(r.pattern, rel)), None)
        if rule is None:
            continue
        path = pkg_dir / rel
        ident = f"{source.package}:{source.package_path(rel)}"
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as err:  # libsndfile raises several types for bad files
            cat.skipped.append({"file": ident, "reason": f"cannot be decoded: {err}"})
            continue
        x = data.mean(axis=1) if data.size else np.zeros(0, np.float32)
        duration = len(x) / sr if sr else 0.0
        peak = float(np.abs(x).max()) if x.size else 0.0
        peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
        min_len = MIN_AMBIENCE_SECONDS if rule.kind == "ambience" else MIN_EVENT_SECONDS
        if x.size == 0:
            cat.skipped.append({"file": ident, "reason": "empty (no samples)"})
            continue
        if duration < min_len:
            cat.skipped.append({"file": ident, "reason": f"too short for a {rule.kind} ({duration:.3f} s)"})
            continue
        if peak_db < SILENT_PEAK_DB:
            cat.skipped.append({"file": ident, "reason": f"silent (peak {peak_db:.1f} dBFS)"})
            continue
        if sr < 8000:
            cat.skipped.append({"file": ident, "reason": f"sample rate {sr} Hz is too low"})
            continue
        m = re.fullmatch(rule.pattern, rel)
        action = (m.groupdict().get("action") or "") if m else ""
        lic, cop = licence(rel)
        pcm = np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)
        rec = Recording(
            id=ident, package=source.package, version=version, path_in_package=source.package_path(rel),
            local=f"{source.package}/{rel}", category=rule.category, kind=rule.kind, action=action,
            sample_rate=int(sr), channels=int(data.shape[1]), duration=round(duration, 6),
            onset=round(onset_index(x, sr) / sr, 6), peak_db=round(peak_db, 2), sha256=sha256_file(path),
            group=f"{source.package}:{meta[rel]['group']}" if meta.get(rel, {}).get("group") else ident,
            licence=lic, copyright=cop, attribution=source.attribution, full_band=int(sr) >= FULL_BAND_RATE,
        )
        measured.append((rec, _envelope(x, sr), hashlib.sha256(pcm.tobytes()).hexdigest()))

    # duplicates: the same PCM, or envelopes that match within a fraction of a dB
    parent = list(range(len(measured)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_hash: dict[str, int] = {}
    for i, (_, _, h) in enumerate(measured):
        if h in by_hash:
            parent[find(i)] = find(by_hash[h])
        else:
            by_hash[h] = i
    for i in range(len(measured)):
        for j in range(i + 1, len(measured)):
            if find(i) != find(j) and _near_duplicates(measured[i][1], measured[j][1]):
                parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(measured)):
        groups.setdefault(find(i), []).append(i)
    for members in groups.values():
        recs = [measured[i][0] for i in sorted(members, key=lambda k: measured[k][0].id)]
        cats = sorted({r.category for r in recs})
        if len(cats) > 1:
            for r in recs:
                others = ", ".join(o.id for o in recs if o is not r)
                cat.skipped.append({"file": r.id, "reason": f"the same recording is filed as {' and '.join(cats)} "
                                    f"({others}): it cannot teach either category"})
            continue
        keep = recs[0]
        cat.recordings.append(keep)
        _, env, pcm_hash = next(m for m in measured if m[0] is keep)
        cat.fingerprints[keep.id] = {"pcm": pcm_hash, "env": [round(float(v), 1) for v in env]}
        for r in recs[1:]:
            cat.skipped.append({"file": r.id, "reason": f"duplicate of {keep.id}"})

    # art: must open as an image
    for rel in files:
        roles = [r.role for r in source.art if re.fullmatch(r.pattern, rel)]
        if not roles:
            continue
        ident = f"{source.package}:{source.package_path(rel)}"
        try:
            with Image.open(pkg_dir / rel) as im:
                if im.width < 4 or im.height < 4:
                    raise ValueError(f"{im.width}x{im.height} is too small")
        except Exception as err:
            cat.skipped.append({"file": ident, "reason": f"art cannot be opened: {err}"})
            continue
        lic, cop = licence(rel)
        for role in roles:  # one file may serve several roles (a log is wood and bark)
            cat.art.append(ArtFile(
                id=ident, package=source.package, version=version, path_in_package=source.package_path(rel),
                local=f"{source.package}/{rel}", role=role, licence=lic, copyright=cop,
                attribution=source.attribution,
            ))
    return cat


def drop_cross_package_duplicates(cat: Catalogue, order: list[str]) -> None:
    """Skip every recording that is the same sound (same PCM, or a near-duplicate envelope, as within a package)
    as a recording of an earlier package in `order`; the earlier one is kept, whatever its category. Recordings
    without a fingerprint are kept."""
    rank = {p: i for i, p in enumerate(order)}
    recs = sorted((r for r in cat.recordings if r.id in cat.fingerprints),
                  key=lambda r: (rank.get(r.package, len(rank)), r.id))
    if len({r.package for r in recs}) < 2:
        return
    envs = {r.id: np.asarray(cat.fingerprints[r.id]["env"], np.float64) for r in recs}
    by_len = sorted(recs, key=lambda r: len(envs[r.id]))
    lengths = np.array([len(envs[r.id]) for r in by_len], np.int64)
    first_by_pcm: dict[str, Recording] = {}
    dropped: dict[str, tuple[Recording, Recording]] = {}
    for r in recs:  # earlier packages first, so what a recording is compared with is already settled
        first = first_by_pcm.setdefault(cat.fingerprints[r.id]["pcm"], r)
        if first.package != r.package:
            dropped[r.id] = (r, first)
            continue
        env = envs[r.id]
        tol = max(2, int(0.02 * len(env)))
        lo = int(np.searchsorted(lengths, len(env) - tol))
        hi = int(np.searchsorted(lengths, len(env) + tol, side="right"))
        for other in by_len[lo:hi]:
            if (rank.get(other.package, len(rank)) < rank.get(r.package, len(rank)) and other.id not in dropped
                    and _near_duplicates(envs[other.id], env)):
                dropped[r.id] = (r, other)
                break
    if dropped:
        cat.recordings = [r for r in cat.recordings if r.id not in dropped]
        for r, first in dropped.values():
            cat.skipped.append({"file": r.id, "reason": f"duplicate of {first.id} (in {first.package}, filed "
                                                        f"as {first.category})"})
