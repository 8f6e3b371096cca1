"""Source packages: download with `apt-get download`, extract only the Foley-relevant files, catalogue them.

Nothing is installed into the system. A package's .deb goes to `<cache>/debs/`; the files the rules below select
are extracted to `<cache>/extracted/<package>/` at their path inside the package (members of an archive that the
package ships, such as 0 A.D.'s `public.zip`, at their path inside that archive), together with the package's
`debian/copyright` at `usr/share/doc/<package>/copyright` and a marker `EXTRACTED.json`. The extraction streams:
`dpkg-deb --fsys-tarfile` is read as a tar stream and the (stored or deflated) zip inside it member by member,
so the 3.3 GB `public.zip` never lands on disk; only the ~300 MB that the rules select does.

`scan` turns an extracted folder into a `Catalogue`: every selected recording with its category, length, onset
and licence (from the DEP-5 `debian/copyright`: the last `Files:` stanza that matches wins), every art file by
role, and every file that was skipped with the reason (undecodable, empty, silent, too short, a duplicate of
another recording, or the same recording filed under two categories).

Recording ids are `<package>:<path>` with the path inside the package (archive members as `archive!/member`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

MARKER = "EXTRACTED.json"
SCAN_FILE = "catalogue.json"
# Bump when the scan's output or its checks change: cached catalogues of another version are rebuilt.
CATALOGUE_VERSION = 3
# The onset convention (docs/dataset.md, `onset_index`): the first sample at -40 dB relative to the peak.
ONSET_REL_DB = -40.0
ONSET_FLOOR_FACTOR = 6.0  # ... or this many times the RMS of the recording's first 10 ms, if higher
MIN_EVENT_SECONDS = 0.05
MIN_AMBIENCE_SECONDS = 3.0
SILENT_PEAK_DB = -60.0


def default_cache_dir() -> Path:
    """`$MDSGEN_FOLEY_CACHE`, else `~/.cache/mdsgen-foley` (outside the repository on purpose)."""
    env = os.environ.get("MDSGEN_FOLEY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mdsgen-foley"


class SourceError(RuntimeError):
    """A package cannot be downloaded or extracted; the message says what to do."""


# ---- what to take from a package -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AudioRule:
    """Files whose path (inside the package/archive) fully matches `pattern` are recordings of `category`.

    `kind` is "event" (a one-shot placed at an event time) or "ambience" (a bed under a whole clip). A named
    group `action` in the pattern (e.g. arrow or sling) tells the renderer what made the sound.
    """

    category: str
    pattern: str
    kind: str = "event"


@dataclass(frozen=True)
class ArtRule:
    """Files whose path fully matches `pattern` are art for `role` (e.g. "ground:grass", "portrait:horse")."""

    role: str
    pattern: str


@dataclass(frozen=True)
class PackageSource:
    """A Debian package and the rules that pick its Foley recordings and matching art."""

    package: str
    archive: str | None  # path in the package of a zip whose members the rules address (None: the package itself)
    audio: tuple[AudioRule, ...]
    art: tuple[ArtRule, ...]
    extra: tuple[str, ...] = ()  # further members to keep (licence texts), fnmatch patterns
    homepage: str = ""
    attribution: str = ""  # how to credit the package's files

    def rules_digest(self) -> str:
        blob = json.dumps(
            [self.package, self.archive, [asdict(r) for r in self.audio], [asdict(r) for r in self.art], self.extra],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def wanted(self, member: str) -> bool:
        """Whether a member (path inside the archive, or the package) is to be extracted."""
        return (
            any(re.fullmatch(r.pattern, member) for r in self.audio)
            or any(re.fullmatch(r.pattern, member) for r in self.art)
            or any(fnmatch.fnmatchcase(member, p) for p in self.extra)
        )


_A = "audio/"
_T = r"art/textures/terrain/types/"
_S = r"art/textures/skins/"
_P = r"art/textures/ui/session/portraits/gaia/"
_DDS = r"\.(?:png|dds)\.cached\.dds"

ZERO_AD = PackageSource(
    package="0ad-data",
    archive="usr/share/games/0ad/mods/public/public.zip",
    homepage="https://play0ad.com/",
    attribution="0 A.D. by Wildfire Games (https://www.wildfiregames.com/), CC BY-SA 3.0 "
    "(https://creativecommons.org/licenses/by-sa/3.0/)",
    extra=("audio/LICENSE.txt", "art/LICENSE.txt"),
    audio=(
        # struck objects: the recordings are projectiles (arrow, sling stone) hitting a material
        AudioRule("impact_wood", _A + r"attack/impact/(?P<action>arrow|sling)_wood_\d+\.ogg"),
        AudioRule("impact_metal", _A + r"attack/impact/(?P<action>arrow|sling)_metal_\d+\.ogg"),
        AudioRule("impact_stone", _A + r"attack/impact/(?P<action>arrow|sling)_stone_\d+\.ogg"),
        AudioRule("impact_dirt", _A + r"attack/impact/(?P<action>arrow)_dirt_\d+\.ogg"),
        AudioRule("impact_flesh", _A + r"attack/impact/flesh(?P<action>imp|stab)_\d+\.ogg"),
        AudioRule("shield_wood", _A + r"attack/impact/shield_wood_\d+\.ogg"),
        AudioRule("shield_metal", _A + r"attack/impact/shield_metal_\d+\.ogg"),
        AudioRule("sword_clash", _A + r"attack/weapon/swordhit_\d+[ab]?\.ogg"),
        # footsteps (0 A.D.'s fs_rock* are the fs_gravel* recordings again: no rock category, see docs)
        AudioRule("footstep_grass", _A + r"actor/singlesteps/fs_grass\d+\.ogg"),
        AudioRule("footstep_gravel", _A + r"actor/singlesteps/fs_gravel\d+\.ogg"),
        AudioRule("footstep_sand", _A + r"actor/singlesteps/fs_sand\d+\.ogg"),
        AudioRule("footstep_snow", _A + r"actor/singlesteps/fs_snow_\d+\.ogg"),
        AudioRule("footstep_wood", _A + r"actor/singlesteps/fs_wood\d+\.ogg"),
        # tools at work
        AudioRule("axe_tree", _A + r"resource/lumbering/lumber_tree_\d+\.ogg"),
        AudioRule("pick_stone", _A + r"resource/mining/mine_stone_\d+\.ogg"),
        AudioRule("pick_metal", _A + r"resource/mining/mine_metal_\d+\.ogg"),
        AudioRule("hammer_wood", _A + r"resource/construction/con_wood_\d+\.ogg"),
        AudioRule("saw", _A + r"resource/construction/con_saw_\d+\.ogg"),
        # animal calls
        AudioRule("animal_cattle", _A + r"actor/fauna/animal/cattle_\d+\.ogg"),
        AudioRule("animal_chicken", _A + r"actor/fauna/animal/chicken_\d+\.ogg"),
        AudioRule("animal_horse", _A + r"actor/fauna/(?:animal/horse_\w+|death/death_horse_\d+)\.ogg"),
        AudioRule("animal_elephant", _A + r"actor/fauna/animal/elephant_\w+\.ogg"),
        AudioRule("animal_pig", _A + r"actor/fauna/animal/pig_\w+\.ogg"),
        AudioRule("animal_goat", _A + r"actor/fauna/death/goat_\d+\.ogg"),
        AudioRule("animal_sheep", _A + r"actor/fauna/animal/sheep_\d+\.ogg"),
        AudioRule("animal_lion", _A + r"actor/fauna/animal/lion_\w+\.ogg"),
        AudioRule("animal_camel", _A + r"actor/fauna/(?:animal|death|movement)/(?:death_)?camel_\d+\.ogg"),
        # ambience beds
        AudioRule("water", _A + r"ambient/water/\w+\.ogg", kind="ambience"),
        AudioRule("rain", _A + r"ambient/weather/rain_\d+\.ogg", kind="ambience"),
        AudioRule("wind", _A + r"ambient/weather/(?:wind|windgust|windleaves|windstorm|snowstorm)_\d+\.ogg",
                  kind="ambience"),
        AudioRule("fire", _A + r"attack/fire/(?:c_|sp_|sz)\d+\.ogg", kind="ambience"),
    ),
    art=(
        ArtRule("ground:grass", _T + r"(?:temperate/grass_0[1-5]|steppe/grass_0[1-4]|aegean_anatolia/grass_0[1-3]"
                r"|temp_grass_[a-d]|alpine_grass_[a-e]|new_alpine_grass_[a-e]|savanna_grass_[ab]|tropic_grass_[a-f]"
                r"|steppe_grass_[a-d])" + _DDS),
        ArtRule("ground:gravel", _T + r"(?:alpine_arctic/gravel_dirt_01|temp_dirt_gravel(?:_b)?|dirt_gravel_mars"
                r"|dirt_pebbles_wet|medit_river_rocks_dry|steppe_river_rocks|road_stones)" + _DDS),
        ArtRule("ground:sand", _T + r"(?:(?:aegean_anatolia|nubia|sahara|india)/sand_0[1-4]|nubia/sand_ripples"
                r"|desert_sand_smooth(?:_b)?|medit_sand|sand_sahara|sand_dunes|sand_wavey)" + _DDS),
        ArtRule("ground:snow", _T + r"(?:alpine_arctic/snow_0[12]|polar_snow_[ab]|alpine_snow_[ab]|snow_0[12]"
                r"|snow_new|snow)" + _DDS),
        ArtRule("ground:wood", _T + r"bridge_wood_[abc]" + _DDS),
        ArtRule("ground:dirt", _T + r"(?:dirt_brown_[a-e]|medit_dirt(?:_[a-e])?|temp_dirt_a|steppe_dirt_[ab]"
                r"|(?:aegean_anatolia|india|nubia|sahara)/dirt_0[1-4])" + _DDS),
        ArtRule("material:wood", r"art/textures/(?:skins/gaia/log_[ab]|skins/structural/wrld_wood"
                r"|terrain/types/bridge_wood_[abc])" + _DDS),
        ArtRule("material:stone", _S + r"gaia/stone_(?:granite|limestone|marblewhite|medit_[abc]|alpine_a"
                r"|desert_[ab]|tropic|temperate_granite|savanna_[ab])" + _DDS),
        ArtRule("material:metal", _S + r"props/helmet/(?:hele_corinthian_0[1-4]_iron|celt_montefortino_0[12]_iron"
                r"|hele_chalcidean_0[1-5]_silver|iber_montefortino_0[12]_iron|gladiator_01_iron_clean)" + _DDS),
        ArtRule("ore:metal", _S + r"gaia/metal_(?:medit_[abc]|alpine_a|tropic|temperate_granite|granite_greek)"
                + _DDS),
        ArtRule("bark", _S + r"gaia/(?:log_[ab]|banyan_trunk_1)" + _DDS),
        ArtRule("shield:metal", _S + r"props/shield/aspis_01_(?:bronze|copper)" + _DDS),
        ArtRule("shield:wood", _S + r"props/shield/(?:scutum_a_wooden_back_\d+|pelta_[a-e]_wicker_0[1-3])" + _DDS),
        ArtRule("portrait:tree", _P + r"flora_tree_(?:aleppo_pine|apple|carob|pine|baobab)" + _DDS),
        ArtRule("portrait:cattle", _P + r"fauna_cow" + _DDS),
        ArtRule("portrait:chicken", _P + r"fauna_chicken" + _DDS),
        ArtRule("portrait:horse", _P + r"fauna_horse" + _DDS),
        ArtRule("portrait:elephant", _P + r"fauna_elephant_(?:african_bush|asian|north_african)" + _DDS),
        ArtRule("portrait:pig", _P + r"fauna_pig" + _DDS),
        ArtRule("portrait:goat", _P + r"fauna_goat" + _DDS),
        ArtRule("portrait:sheep", _P + r"fauna_sheep" + _DDS),
        ArtRule("portrait:lion", _P + r"fauna_lion" + _DDS),
        ArtRule("portrait:camel", _P + r"fauna_camel(?:_arabian)?" + _DDS),
        ArtRule("portrait:game", _P + r"fauna_(?:deer|gazelle)" + _DDS),
        ArtRule("particle:flame", r"art/textures/particles/flame" + _DDS),
        ArtRule("particle:smoke", r"art/textures/particles/smoke" + _DDS),
        ArtRule("particle:leaf", r"art/textures/particles/leaf_(?:green_a|dry_a)" + _DDS),
        ArtRule("particle:shrapnel", r"art/textures/particles/stone_shrapnel" + _DDS),
        ArtRule("water", _T + r"water_[123]" + _DDS),
    ),
)

SOURCES: dict[str, PackageSource] = {s.package: s for s in (ZERO_AD,)}


# ---- licences (DEP-5 debian/copyright) -----------------------------------------------------------------------
@dataclass(frozen=True)
class CopyrightStanza:
    files: tuple[str, ...]
    copyright: str
    licence: str


def parse_copyright(text: str) -> list[CopyrightStanza]:
    """The `Files:` stanzas of a machine-readable debian/copyright, in file order."""
    stanzas: list[CopyrightStanza] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields:
            stanzas.append(CopyrightStanza(
                files=tuple(fields["files"].split()),
                copyright=" / ".join(s for s in fields.get("copyright", "").splitlines() if s),
                licence=fields.get("license", "").splitlines()[0].strip() if fields.get("license") else "",
            ))
    return stanzas


def licence_for(stanzas: list[CopyrightStanza], *paths: str) -> tuple[str, str]:
    """(licence, copyright) of the last stanza whose Files pattern matches any of `paths` (DEP-5 rule)."""
    found = ("unknown", "unknown")
    for st in stanzas:
        if any(fnmatch.fnmatchcase(p, pat) for pat in st.files for p in paths):
            found = (st.licence or "unknown", st.copyright or "unknown")
    return found


# ---- download and extraction ---------------------------------------------------------------------------------
def find_deb(debs_dir: Path, package: str) -> Path | None:
    """The newest cached .deb of `package` in `debs_dir`, if any."""
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download_deb(package: str, debs_dir: Path) -> Path:
    """`apt-get download PACKAGE` into `debs_dir` (no system install); reuses a cached .deb."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    cached = find_deb(debs_dir, package)
    if cached is not None:
        return cached
    if shutil.which("apt-get") is None:
        raise SourceError(f"apt-get is not available: download {package}'s .deb by hand into {debs_dir}")
    proc = subprocess.run(["apt-get", "download", package], cwd=debs_dir, capture_output=True, text=True)
    deb = find_deb(debs_dir, package)
    if proc.returncode != 0 or deb is None:
        raise SourceError(
            f"apt-get download {package} failed ({proc.stderr.strip()[-400:]}). Run `apt-get update` first "
            "(as root), and check that Debian's main component is configured."
        )
    return deb


def deb_field(deb: Path, name: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    buf = fh.read(n)
    if len(buf) != n:
        raise SourceError("unexpected end of the archive stream (truncated .deb?)")
    return buf


def iter_zip_stream(fh: IO[bytes], want) -> Iterator[tuple[str, bytes]]:
    """(name, data) of the members of a zip read sequentially from a stream, for names `want(name)` accepts.

    Reads local file headers in order (no central directory, no seeking): works for archives that record sizes in
    their local headers (0 A.D.'s public.zip, anything Python's zipfile writes to a file); stored and deflated
    members; CRC-checked. Members that are not wanted are skipped without decompression.
    """
    while True:
        sig = fh.read(4)
        if len(sig) < 4 or sig != b"PK\x03\x04":
            return  # central directory (PK\x01\x02) or end of stream
        (_ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack("<HHHHHIIIHH", _read_exact(fh, 26))
        name = _read_exact(fh, nlen).decode("utf-8" if flags & 0x800 else "cp437")
        extra = _read_exact(fh, xlen)
        if flags & 0x08:
            raise SourceError(f"zip member {name} has a data descriptor: this archive cannot be streamed")
        if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:  # zip64: sizes in the extra field
            i = 0
            while i + 4 <= len(extra):
                tag, size = struct.unpack("<HH", extra[i : i + 4])
                if tag == 1:
                    vals = struct.unpack("<" + "Q" * (size // 8), extra[i + 4 : i + 4 + size])
                    k = 0
                    if usize == 0xFFFFFFFF:
                        usize, k = vals[k], k + 1
                    if csize == 0xFFFFFFFF:
                        csize = vals[k]
                i += 4 + size
        if not want(name) or name.endswith("/"):
            remaining = csize
            while remaining:
                got = fh.read(min(remaining, 1 << 20))
                if not got:
                    raise SourceError("unexpected end of the archive stream (truncated .deb?)")
                remaining -= len(got)
            continue
        raw = _read_exact(fh, csize)
        if method == 0:
            data = raw
        elif method == 8:
            data = zlib.decompress(raw, -15)
        else:
            raise SourceError(f"zip member {name}: compression method {method} is not supported")
        if zlib.crc32(data) != crc or len(data) != usize:
            raise SourceError(f"zip member {name} is corrupt (CRC or size mismatch)")
        yield name, data


def _write_member(root: Path, rel: str, data: bytes) -> None:
    dest = root / rel
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        raise SourceError(f"refusing to extract {rel!r} outside {root}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def extract_package(source: PackageSource, deb: Path, extracted_root: Path) -> Path:
    """Extract what `source`'s rules select from `deb` into `extracted_root/<package>`; returns that folder.

    Streams `dpkg-deb --fsys-tarfile`; an archive inside the package (`source.archive`) is read as a zip stream.
    Writes `EXTRACTED.json` last, so an interrupted extraction is redone.
    """
    dest = extracted_root / source.package
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copyright_path = f"usr/share/doc/{source.package}/copyright"
    counts = {"files": 0, "bytes": 0}
    found_archive = False
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name.lstrip("./")
                if not member.isfile():
                    continue
                if path == copyright_path:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    _write_member(dest, path, fh.read())
                elif source.archive is not None and path == source.archive:
                    found_archive = True
                    fh = tar.extractfile(member)
                    assert fh is not None
                    for name, data in iter_zip_stream(fh, source.wanted):
                        _write_member(dest, name, data)
                        counts["files"] += 1
                        counts["bytes"] += len(data)
                elif source.archive is None and source.wanted(path):
                    fh = tar.extractfile(member)
                    assert fh is not None
                    data = fh.read()
                    _write_member(dest, path, data)
                    counts["files"] += 1
                    counts["bytes"] += len(data)
    finally:
        with contextlib.suppress(Exception):
            proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
    if code != 0:
        raise SourceError(f"dpkg-deb could not read {deb.name}: {err.strip()[-300:]}; delete it and download again")
    if source.archive is not None and not found_archive:
        raise SourceError(f"{deb.name} holds no {source.archive}: is it the right package version?")
    marker = {
        "package": source.package,
        "version": deb_field(deb, "Version"),
        "deb": deb.name,
        "deb_sha256": sha256_file(deb),
        "archive": source.archive,
        "rules_digest": source.rules_digest(),
        **counts,
    }
    (dest / MARKER).write_text(json.dumps(marker, indent=1))
    return dest


# ---- the catalogue -------------------------------------------------------------------------------------------
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
    group: str  # recordings of one group are the same sound (exact or near duplicates); they share a split
    licence: str
    copyright: str
    attribution: str


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

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CATALOGUE_VERSION,
            "recordings": [asdict(r) for r in self.recordings],
            "art": [asdict(a) for a in self.art],
            "skipped": self.skipped,
            "packages": self.packages,
            "licence_texts": self.licence_texts,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Catalogue:
        return cls(
            recordings=[Recording(**r) for r in d["recordings"]],
            art=[ArtFile(**a) for a in d["art"]],
            skipped=list(d["skipped"]),
            packages=list(d["packages"]),
            licence_texts=list(d.get("licence_texts", [])),
        )

    def merge(self, other: Catalogue) -> None:
        self.recordings += other.recordings
        self.art += other.art
        self.skipped += other.skipped
        self.packages += other.packages
        self.licence_texts += other.licence_texts

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
    ca, cb = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    den = float(np.sqrt((ca**2).sum() * (cb**2).sum()))
    return den > 0 and float((ca * cb).sum()) / den > 0.995 and float(np.abs(a[:n] - b[:n]).mean()) < 1.5


def _package_path(source: PackageSource, rel: str) -> str:
    return f"{source.archive}!/{rel}" if source.archive else rel


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

    def licence(rel: str) -> tuple[str, str]:
        if not stanzas:
            return ("unknown (no debian/copyright)", "unknown")
        return licence_for(stanzas, rel, _package_path(source, rel), source.archive or rel)

    # recordings: decode, check, measure
    measured: list[tuple[Recording, np.ndarray, str]] = []  # (recording, envelope, pcm hash)
    for rel in files:
        rule = next((r for r in source.audio if re.fullmatch(r.pattern, rel)), None)
        if rule is None:
            continue
        path = pkg_dir / rel
        ident = f"{source.package}:{_package_path(source, rel)}"
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
            id=ident, package=source.package, version=version, path_in_package=_package_path(source, rel),
            local=f"{source.package}/{rel}", category=rule.category, kind=rule.kind, action=action,
            sample_rate=int(sr), channels=int(data.shape[1]), duration=round(duration, 6),
            onset=round(onset_index(x, sr) / sr, 6), peak_db=round(peak_db, 2), sha256=sha256_file(path),
            group=ident, licence=lic, copyright=cop, attribution=source.attribution,
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
        for r in recs[1:]:
            cat.skipped.append({"file": r.id, "reason": f"duplicate of {keep.id}"})

    # art: must open as an image
    for rel in files:
        roles = [r.role for r in source.art if re.fullmatch(r.pattern, rel)]
        if not roles:
            continue
        ident = f"{source.package}:{_package_path(source, rel)}"
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
                id=ident, package=source.package, version=version, path_in_package=_package_path(source, rel),
                local=f"{source.package}/{rel}", role=role, licence=lic, copyright=cop,
                attribution=source.attribution,
            ))
    return cat


def prepare(
    cache_dir: Path,
    packages: list[str] | None = None,
    *,
    download: bool = True,
    log=print,
) -> Catalogue:
    """Download (if needed and allowed), extract (if needed) and scan (cached) every source package.

    Extraction is redone when the marker is missing or the rules changed; the scan is cached in
    `extracted/<package>/catalogue.json` and redone when the marker or the catalogue version changed.
    """
    cat = Catalogue()
    extracted = cache_dir / "extracted"
    for name in packages or list(SOURCES):
        source = SOURCES[name]
        pkg_dir = extracted / source.package
        marker_path = pkg_dir / MARKER
        marker = json.loads(marker_path.read_text()) if marker_path.exists() else None
        if marker is None or marker.get("rules_digest") != source.rules_digest():
            if not download and find_deb(cache_dir / "debs", source.package) is None:
                raise SourceError(
                    f"{source.package} is not extracted in {extracted} and downloads are off: run "
                    "`python -m training.datasets.foley_real fetch` (or build without --offline)."
                )
            log(f"fetch: apt-get download {source.package} into {cache_dir / 'debs'} ...")
            deb = download_deb(source.package, cache_dir / "debs")
            log(f"extract: {deb.name} -> {pkg_dir} ...")
            extract_package(source, deb, extracted)
            marker = json.loads(marker_path.read_text())
            log(f"extract: {marker['files']} files, {marker['bytes'] / 1e6:.0f} MB")
        scan_path = pkg_dir / SCAN_FILE
        part = None
        if scan_path.exists():
            saved = json.loads(scan_path.read_text())
            if saved.get("version") == CATALOGUE_VERSION and saved.get("marker") == marker:
                part = Catalogue.from_json(saved["catalogue"])
        if part is None:
            log(f"scan: {pkg_dir} ...")
            part = scan(source, pkg_dir)
            scan_path.write_text(json.dumps({"version": CATALOGUE_VERSION, "marker": marker,
                                             "catalogue": part.to_json()}))
        cat.merge(part)
    return cat
