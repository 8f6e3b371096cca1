"""Source packages: download with `apt-get download`, extract only the Foley-relevant files, catalogue them.

Nothing is installed into the system. A package's .deb goes to `<cache>/debs/`; the files the rules below select
are extracted to `<cache>/extracted/<package>/` together with the package's `debian/copyright` at
`usr/share/doc/<package>/copyright` and a marker `EXTRACTED.json`. Plain files land at their path inside the
package; members of a container the package ships land under the container's path: 0 A.D.'s `public.zip` (the
package's `archive`: its members at their path inside it), OpenArena's `pak0.pk3` (a zip) and OpenTTD's
`opensfx.cat` (`read_cat`, a table of RIFF entries that carry their own title, credit and licence) as
`<container path>/<member>`. The extraction streams: `dpkg-deb --fsys-tarfile` is read as a tar stream and the
(stored or deflated) zip inside it member by member, so the 3.3 GB `public.zip` never lands on disk; only what
the rules select does. Per-file facts that only the container knows (OpenSFX's licence per entry) are kept in
`FILES.json` beside the marker.

`scan` turns an extracted folder into a `Catalogue`: every selected recording with its category, length, onset,
sample rate (`full_band`: 44.1 kHz or more, what the 48 kHz bandwidth extension may train on) and licence (from
the DEP-5 `debian/copyright`: the last `Files:` stanza that matches wins; a container's own per-file licence where
it has one; the package's stated licence where its debian/copyright is not machine-readable), every art file by
role, and every file that was skipped with the reason (undecodable, empty, silent, too short, a duplicate of
another recording, or the same recording filed under two categories). `prepare` merges the packages' catalogues
and drops a recording that duplicates one of an earlier package (`drop_cross_package_duplicates`).

Recording ids are `<package>:<path>` with the path inside the package (container members as `container!/member`).
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
FILES_META = "FILES.json"  # per-file licence, credit and source group that a container (opensfx.cat) states
# Bump when the scan's output or its checks change: cached catalogues of another version are rebuilt.
# 4: Recording.full_band, per-file licences from containers and stanza sources, fingerprints for cross-package
# duplicates, the source group of derived recordings.
CATALOGUE_VERSION = 4
# The 48 kHz bandwidth extension needs recordings that hold the band above 8 kHz up to 22 kHz: 44.1 kHz or more.
FULL_BAND_RATE = 44_100
# Containers read whole into memory (a random-access zip) up to this size; bigger zips are streamed.
MAX_IN_MEMORY_CONTAINER = 512 << 20
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
class Container:
    """A file in the package whose members the rules address as `<path>/<member>` (ids: `<path>!/<member>`)."""

    path: str  # path in the package
    format: str  # "zip" (also .pk3) | "cat" (OpenTTD's sound container, `read_cat`)


@dataclass(frozen=True)
class PackageSource:
    """A Debian package and the rules that pick its Foley recordings and matching art.

    The rules' patterns match a file's path in the extracted folder: its path inside `archive` when the package
    has one (0 A.D.), else its path in the package, a container's members as `<container path>/<member>`.
    """

    package: str
    archive: str | None  # path in the package of a zip whose members the rules address (None: the package itself)
    audio: tuple[AudioRule, ...]
    art: tuple[ArtRule, ...]
    extra: tuple[str, ...] = ()  # further members to keep (licence texts), fnmatch patterns
    homepage: str = ""
    attribution: str = ""  # how to credit the package's files
    name: str = ""  # the short name the command line takes (`--packages 0ad,openarena`); default the package
    containers: tuple[Container, ...] = ()
    # (installed prefix, prefix in debian/copyright): a package whose copyright names its upstream paths
    copyright_aliases: tuple[tuple[str, str], ...] = ()
    # (licence, copyright) where debian/copyright has no machine-readable Files stanzas (what its text states)
    licence_fallback: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return self.name or self.package

    def rules_digest(self) -> str:
        parts: list[Any] = [self.package, self.archive, [asdict(r) for r in self.audio],
                            [asdict(r) for r in self.art], self.extra]
        if self.containers:
            parts.append([asdict(c) for c in self.containers])
        blob = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def wanted(self, member: str) -> bool:
        """Whether a member (path inside the archive, or the package) is to be extracted."""
        return (
            any(re.fullmatch(r.pattern, member) for r in self.audio)
            or any(re.fullmatch(r.pattern, member) for r in self.art)
            or any(fnmatch.fnmatchcase(member, p) for p in self.extra)
        )

    def package_path(self, rel: str) -> str:
        """The path in the package of an extracted file (archive and container members as `container!/member`)."""
        if self.archive:
            return f"{self.archive}!/{rel}"
        for c in self.containers:
            if rel.startswith(c.path + "/"):
                return f"{c.path}!/{rel[len(c.path) + 1:]}"
        return rel


_A = "audio/"
_T = r"art/textures/terrain/types/"
_S = r"art/textures/skins/"
_P = r"art/textures/ui/session/portraits/gaia/"
_DDS = r"\.(?:png|dds)\.cached\.dds"

ZERO_AD = PackageSource(
    package="0ad-data",
    name="0ad",
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
        ArtRule("ground:stone", _T + r"(?:(?:aegean_anatolia|india)/paving_0[12]|alpine_arctic/paving_stones_0[12]"
                r"|temperate/paving_00[123]|sahara/paving_stones_0[01]|nubia/paving_stones_01|medit_city_pavement"
                r"|medit_city_tile(?:_02)?|road_roman|desert_city_tile)" + _DDS),
        ArtRule("ground:water", _T + r"water_[123]" + _DDS),  # shallow water to wade through
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
        ArtRule("portrait:wolf", _P + r"fauna_(?:arctic_)?wolf" + _DDS),
        ArtRule("portrait:game", _P + r"fauna_(?:deer|gazelle)" + _DDS),
        ArtRule("particle:flame", r"art/textures/particles/flame" + _DDS),
        ArtRule("particle:smoke", r"art/textures/particles/smoke" + _DDS),
        ArtRule("particle:leaf", r"art/textures/particles/leaf_(?:green_a|dry_a)" + _DDS),
        ArtRule("particle:shrapnel", r"art/textures/particles/stone_shrapnel" + _DDS),
        ArtRule("water", _T + r"water_[123]" + _DDS),
    ),
)

# OpenArena (FPS): footsteps on metal, in water and on hard floors, fires and wind. GPL-2+ (`Files: *`).
_OA_PAK = "usr/share/games/openarena/baseoa/pak0.pk3"
_OA = re.escape(_OA_PAK) + "/sound/"
OPENARENA = PackageSource(
    package="openarena-data",
    name="openarena",
    archive=None,
    containers=(Container(_OA_PAK, "zip"),),
    homepage="https://openarena.ws/",
    attribution="OpenArena by the OpenArena Team and contributors (https://openarena.ws/), GPL-2+",
    extra=(_OA_PAK + "/CREDITS", _OA_PAK + "/COPYING"),
    audio=(
        AudioRule("footstep_metal", _OA + r"player/footsteps/clank\d\.wav"),
        AudioRule("footstep_water", _OA + r"player/footsteps/splash\d\.wav"),
        AudioRule("footstep_stone", _OA + r"player/footsteps/(?:step|boot)\d\.wav"),  # boots on a hard floor
        AudioRule("fire", _OA + r"world/(?:fire[12]|firesoft)\.wav", kind="ambience"),
        AudioRule("wind", _OA + r"world/wind[12]\.wav", kind="ambience"),
    ),
    art=(),
)

# Battle for Wesnoth: weapons swung through the air (the *-miss sounds are whooshes), wolves, a camp fire.
# Its debian/copyright is not machine-readable; it states GPL-2+ for the whole package.
_WS = r"usr/share/games/wesnoth/1\.16/data/core/sounds/"
WESNOTH = PackageSource(
    package="wesnoth-1.16-data",
    name="wesnoth",
    archive=None,
    homepage="https://www.wesnoth.org/",
    attribution="Battle for Wesnoth by David White and the Wesnoth contributors (https://www.wesnoth.org/), GPL-2+",
    licence_fallback=("GPL-2+", "2003-2009 David White and the Battle for Wesnoth contributors"),
    audio=(
        AudioRule("swing_whoosh", _WS + r"(?:miss-[123]|(?P<action>dagger|staff|mace|club|spear)-(?:swish|miss))"
                  r"\.(?:wav|ogg)"),
        AudioRule("animal_wolf", _WS + r"wolf-growl-\d\.ogg"),
        AudioRule("fire", _WS + r"ambient/campfire\.ogg", kind="ambience"),
    ),
    art=(),
)

# Sonic Pi's samples (freesound, mostly CC0; debian/copyright names them by their upstream path etc/samples/).
_SP = r"usr/share/sonic-pi/samples/"
SONIC_PI = PackageSource(
    package="sonic-pi-samples",
    name="sonic-pi",
    archive=None,
    homepage="https://sonic-pi.net/",
    attribution="Sonic Pi samples (https://sonic-pi.net/), from freesound.org; credits per file",
    copyright_aliases=(("usr/share/sonic-pi/samples/", "etc/samples/"),),
    extra=("usr/share/sonic-pi/samples/README.md",),
    audio=(
        AudioRule("swing_whoosh", _SP + r"perc_swash\.flac"),
    ),
    art=(),
)

# OpenSFX, OpenTTD's base sounds: one .cat container whose entries state title, credit and licence (CC0, CC-BY,
# CC-BY-SA); animals, wind. Entries are extracted as osfx_NN_<title>.wav.
_OS_CAT = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
_OS = re.escape(_OS_CAT) + "/osfx_"
OPENSFX = PackageSource(
    package="openttd-opensfx",
    name="opensfx",
    archive=None,
    containers=(Container(_OS_CAT, "cat"),),
    homepage="https://github.com/OpenTTD/OpenSFX",
    attribution="OpenSFX, the OpenTTD base sound set (https://github.com/OpenTTD/OpenSFX); the collection is "
    "CC BY-SA 3.0, each sound's own licence and credit as recorded",
    extra=("usr/share/games/openttd/baseset/opensfx/license.txt",),
    audio=(
        AudioRule("animal_sheep", _OS + r"\d+_sheep\.wav"),
        AudioRule("animal_cattle", _OS + r"\d+_cow\.wav"),
        AudioRule("animal_horse", _OS + r"\d+_horse\.wav"),
        AudioRule("animal_lion", _OS + r"\d+_tropical_lion_roar\.wav"),
        AudioRule("wind", _OS + r"\d+_(?:heavy_)?wind\.wav", kind="ambience"),
    ),
    art=(),
)

# MegaGlest (RTS): an anvil, chopping and mining, farm and wild animals, rain and wind. CC-BY-SA-3.0 (`Files: *`).
# Spoken lines (`*_ack*`, `*_select*` of people) are not taken; the cows' and pigs' ack/select are their calls.
_MG = r"usr/share/games/megaglest/"
_MGC = _MG + r"techs/megapack/commondata/sounds/"
_MGF = _MG + r"techs/megapack/factions/\w+/units/"
_MGT = _MG + r"tilesets/\w+/sounds/"
MEGAGLEST = PackageSource(
    package="megaglest-data",
    name="megaglest",
    archive=None,
    homepage="https://megaglest.org/",
    attribution="MegaGlest by The Glest Team and the MegaGlest team (https://megaglest.org/), CC BY-SA 3.0 "
    "(https://creativecommons.org/licenses/by-sa/3.0/)",
    audio=(
        AudioRule("hammer_metal", _MGC + r"anvil\d\.wav"),
        AudioRule("axe_tree", _MGC + r"worker_harvest_wood\d\.wav"),
        AudioRule("pick_stone", _MGC + r"worker_mine\d\.wav"),
        AudioRule("animal_cattle", r"(?:" + _MGC + r"cow_(?:ack|select|die)\d|" + _MGT + r"mudchute_cow_\d)"
                  r"\.(?:wav|ogg)"),
        AudioRule("animal_pig", r"(?:" + _MGC + r"pig_(?:ack|select|die)\d|" + _MGF + r"wild_sow/sounds/"
                  r"pig_attack\d)\.wav"),
        AudioRule("animal_sheep", _MGF + r"sheep/sounds/sheep(?:_die)?\d+\.wav"),
        AudioRule("animal_chicken", r"(?:" + _MGF + r"chicken/sounds/chicken_(?:die|standing)\d|" + _MGT
                  + r"(?:chicken|rooster))\.(?:wav|ogg)"),
        AudioRule("animal_elephant", _MGF + r"elephant/sounds/ele(?:attack)?\d\.wav"),
        AudioRule("animal_wolf", _MGT + r"wolf\.wav"),
        AudioRule("rain", _MGT + r"rain\.(?:ogg|wav)", kind="ambience"),
        AudioRule("wind", _MGT + r"wind\.ogg", kind="ambience"),
    ),
    art=(),
)

# Widelands: farm animals and wolves. Its work sounds (woodcutting, hammering, smiths, saws) are loops of several
# strikes in one file, which a one-strike event cannot show; they are not taken. GPL-2+ (`Files: *`).
_WL = r"usr/share/games/widelands/data/sound/"
WIDELANDS = PackageSource(
    package="widelands-data",
    name="widelands",
    archive=None,
    homepage="https://www.widelands.org/",
    attribution="Widelands by the Widelands Development Team (https://www.widelands.org/), GPL-2+",
    audio=(
        AudioRule("animal_cattle", _WL + r"farm/ox_\d\d\.ogg"),
        AudioRule("animal_horse", _WL + r"farm/horse_\d\d\.ogg"),
        AudioRule("animal_sheep", _WL + r"farm/sheep_\d\d\.ogg"),
        AudioRule("animal_wolf", _WL + r"animals/wolf_\d\d\.ogg"),
    ),
    art=(),
)

SOURCES: dict[str, PackageSource] = {
    s.package: s for s in (ZERO_AD, OPENARENA, WESNOTH, SONIC_PI, OPENSFX, MEGAGLEST, WIDELANDS)
}


def resolve_packages(names: list[str] | None) -> list[str]:
    """Package names for short names or package names (`0ad`, `openarena-data`, ...); None or [] = all."""
    if not names:
        return list(SOURCES)
    by_key = {s.key: s.package for s in SOURCES.values()} | {p: p for p in SOURCES}
    out: list[str] = []
    for n in names:
        if n.strip() not in by_key:
            raise ValueError(f"unknown package {n!r}: choose from {', '.join(s.key for s in SOURCES.values())}")
        if by_key[n.strip()] not in out:
            out.append(by_key[n.strip()])
    return [p for p in SOURCES if p in out]  # catalogue order: earlier packages win duplicates


# ---- licences (DEP-5 debian/copyright) -----------------------------------------------------------------------
@dataclass(frozen=True)
class CopyrightStanza:
    files: tuple[str, ...]
    copyright: str
    licence: str
    source: str = ""  # a stanza's own Source (sonic-pi-samples names each file's freesound page)


def parse_copyright(text: str) -> list[CopyrightStanza]:
    """The `Files:` stanzas of a machine-readable debian/copyright, in file order ([] for a free-form one)."""
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
                source=" ".join(fields.get("source", "").split()),
            ))
    return stanzas


def licence_for(stanzas: list[CopyrightStanza], *paths: str) -> tuple[str, str]:
    """(licence, copyright) of the last stanza whose Files pattern matches any of `paths` (DEP-5 rule); a stanza's
    Source is appended to its copyright."""
    found = ("unknown", "unknown")
    for st in stanzas:
        if any(fnmatch.fnmatchcase(p, pat) for pat in st.files for p in paths):
            cop = st.copyright or "unknown"
            found = (st.licence or "unknown", f"{cop} ({st.source})" if st.source else cop)
    return found


def copyright_paths(source: PackageSource, rel: str) -> list[str]:
    """The paths under which debian/copyright may name an extracted file: its local path, its path in the package
    (container members as `container!/member`, and the container itself) and the package's upstream aliases."""
    pkg = source.package_path(rel)
    paths = [rel, pkg]
    if "!/" in pkg:
        paths.append(pkg.split("!/", 1)[0])
    for installed, upstream in source.copyright_aliases:
        paths += [upstream + p[len(installed):] for p in list(paths) if p.startswith(installed)]
    return paths


# ---- OpenTTD's .cat sound container --------------------------------------------------------------------------
@dataclass
class CatEntry:
    """One sound of an OpenTTD .cat: its index, the source file name it was built from, its description (title,
    credit, licence), and its RIFF WAV bytes."""

    index: int
    filename: str  # e.g. "osfx_36.wav" (from the entry's trailer), or "entry_36.wav"
    description: str
    data: bytes

    @property
    def title(self) -> str:
        m = re.match(r'\s*"([^"]*)"', self.description)
        return m.group(1) if m else self.description.split(".")[0]

    @property
    def licence(self) -> str:
        return spdx_licence(self.description)

    @property
    def credit(self) -> str:
        """What the description says about authors: 'Original "x.wav" by "A". Edited by "B".'"""
        d = re.sub(r'^\s*"[^"]*"\.?\s*', "", self.description)
        return re.split(r"\s*Licen[cs]e:", d)[0].strip().rstrip(".") or "unknown"

    @property
    def originals(self) -> list[str]:
        """The source recordings it was edited from (entries made from one original share a split)."""
        return re.findall(r'[Oo]rig(?:i)?nal\s+"([^"]+)"', self.description)

    @property
    def local_name(self) -> str:
        stem = Path(self.filename).stem
        slug = re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_")[:48] or "untitled"
        return f"{stem}_{slug}.wav"


_LICENCE_NAMES = (
    (r"Creative Commons Zero 1\.0|CC0", "CC0-1.0"),
    (r"Creative Commons Attribution-ShareAlike 3\.0|CC[- ]BY-SA[- ]3\.0", "CC-BY-SA-3.0"),
    (r"Creative Commons Attribution 3\.0|CC[- ]BY[- ]3\.0", "CC-BY-3.0"),
    (r"Public Domain", "public-domain"),
)


def spdx_licence(description: str) -> str:
    """The licence a description states after `License:` as an SPDX-style name ("unknown" if none is stated)."""
    m = re.search(r"Licen[cs]e:\s*(.*)", description)
    if not m:
        return "unknown"
    text = m.group(1)
    for pat, name in _LICENCE_NAMES:
        if re.search(pat, text):
            return name
    return text.strip().rstrip(".") or "unknown"


def read_cat(data: bytes) -> list[CatEntry]:
    """The entries of an OpenTTD sound container (.cat).

    Layout: a table of (uint32 offset, uint32 size) pairs, little-endian, the first offset also being the table's
    length; bit 31 of an offset marks the "new" format, whose entries are a length-prefixed, NUL-terminated
    description ('"Title". Original "x.wav" by "A". License: ...'), then `size` bytes of RIFF WAV, then a trailer
    (a zero byte and a length-prefixed name of the source file, e.g. src/wav/osfx_36.wav).
    """
    if len(data) < 8:
        raise SourceError("the .cat is too short for its offset table")
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF
    if first % 8 or first < 8 or first > len(data):
        raise SourceError(f"the .cat's offset table is malformed (first offset {first})")
    n = first // 8
    table = [struct.unpack_from("<II", data, 8 * i) for i in range(n)]
    entries = []
    for i, (raw_off, size) in enumerate(table):
        off = raw_off & 0x7FFFFFFF
        if off >= len(data):
            raise SourceError(f".cat entry {i}: offset {off} is past the end")
        nlen = data[off]
        desc = data[off + 1 : off + 1 + nlen].split(b"\0")[0].decode("latin-1").strip()
        start = off + 1 + nlen
        end = start + size
        if end > len(data) or data[start : start + 4] != b"RIFF":
            raise SourceError(f".cat entry {i} ({desc[:40]!r}): no RIFF data at {start}")
        nxt = (table[i + 1][0] & 0x7FFFFFFF) if i + 1 < n else len(data)
        m = re.search(rb"([\w./-]+\.wav)", data[end : max(end, nxt)])
        filename = Path(m.group(1).decode("latin-1")).name if m else f"entry_{i:02d}.wav"
        entries.append(CatEntry(i, filename, desc, data[start:end]))
    return entries


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


def iter_container(container: Container, fh: IO[bytes], size: int, want) -> Iterator[tuple[str, bytes, dict]]:
    """(local path, data, per-file facts) of the members of a container in a package that `want(local path)`
    accepts; local paths are `<container path>/<member>`. A zip up to MAX_IN_MEMORY_CONTAINER is read whole and
    opened with zipfile (central directory, CRC-checked), a bigger one streamed; a .cat gives its entries as
    `osfx_NN_<title>.wav` with their licence, credit and originals."""
    import io
    import zipfile

    prefix = container.path + "/"
    if container.format == "zip":
        if size > MAX_IN_MEMORY_CONTAINER:
            for name, data in iter_zip_stream(fh, lambda n: want(prefix + n)):
                yield prefix + name, data, {}
            return
        try:
            with zipfile.ZipFile(io.BytesIO(fh.read())) as z:
                for info in z.infolist():
                    if not info.is_dir() and want(prefix + info.filename):
                        yield prefix + info.filename, z.read(info), {}
        except (zipfile.BadZipFile, zlib.error) as err:
            raise SourceError(f"{container.path} is not a readable zip: {err}") from err
    elif container.format == "cat":
        for e in read_cat(fh.read()):
            rel = prefix + e.local_name
            if want(rel):
                facts = {"title": e.title, "licence": e.licence, "copyright": e.credit,
                         "description": e.description}
                if e.originals:
                    facts["group"] = "original:" + e.originals[0]
                yield rel, e.data, facts
    else:
        raise SourceError(f"{container.path}: unknown container format {container.format!r}")


def extract_package(source: PackageSource, deb: Path, extracted_root: Path) -> Path:
    """Extract what `source`'s rules select from `deb` into `extracted_root/<package>`; returns that folder.

    Streams `dpkg-deb --fsys-tarfile`; an archive inside the package (`source.archive`) is read as a zip stream,
    the package's containers by `iter_container`. Writes `EXTRACTED.json` last, so an interrupted extraction is
    redone.
    """
    dest = extracted_root / source.package
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copyright_path = f"usr/share/doc/{source.package}/copyright"
    counts = {"files": 0, "bytes": 0}
    found_archive = False
    containers = {c.path: c for c in source.containers}
    found_containers: set[str] = set()
    facts: dict[str, dict] = {}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None

    def keep(rel: str, data: bytes) -> None:
        _write_member(dest, rel, data)
        counts["files"] += 1
        counts["bytes"] += len(data)

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
                        keep(name, data)
                elif path in containers:
                    found_containers.add(path)
                    fh = tar.extractfile(member)
                    assert fh is not None
                    for rel, data, fact in iter_container(containers[path], fh, member.size, source.wanted):
                        keep(rel, data)
                        if fact:
                            facts[rel] = fact
                elif source.archive is None and source.wanted(path):
                    fh = tar.extractfile(member)
                    assert fh is not None
                    keep(path, fh.read())
    finally:
        with contextlib.suppress(Exception):
            proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
    if code != 0:
        raise SourceError(f"dpkg-deb could not read {deb.name}: {err.strip()[-300:]}; delete it and download again")
    if source.archive is not None and not found_archive:
        raise SourceError(f"{deb.name} holds no {source.archive}: is it the right package version?")
    missing = sorted(set(containers) - found_containers)
    if missing:
        raise SourceError(f"{deb.name} holds no {', '.join(missing)}: is it the right package version?")
    if facts:
        (dest / FILES_META).write_text(json.dumps(facts, indent=1, sort_keys=True))
    marker = {
        "package": source.package,
        "version": deb_field(deb, "Version"),
        "deb": deb.name,
        "deb_sha256": sha256_file(deb),
        "archive": source.archive,
        "rules_digest": source.rules_digest(),
        **counts,
    }
    if source.containers:
        marker["containers"] = [c.path for c in source.containers]
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


def load_part(source: PackageSource, pkg_dir: Path, marker: dict[str, Any], log=print) -> Catalogue:
    """The scan of one extracted package, from its cache (`catalogue.json`) when current, else scanned now."""
    scan_path = pkg_dir / SCAN_FILE
    if scan_path.exists():
        saved = json.loads(scan_path.read_text())
        if saved.get("version") == CATALOGUE_VERSION and saved.get("marker") == marker:
            return Catalogue.from_json(saved["catalogue"])
    log(f"scan: {pkg_dir} ...")
    part = scan(source, pkg_dir)
    scan_path.write_text(json.dumps({"version": CATALOGUE_VERSION, "marker": marker,
                                     "catalogue": part.to_json(fingerprints=True)}))
    return part


def prepare(
    cache_dir: Path,
    packages: list[str] | None = None,
    *,
    download: bool = True,
    log=print,
) -> Catalogue:
    """Download (if needed and allowed), extract (if needed) and scan (cached) every source package (`packages`:
    package or short names, default all), and merge them, dropping cross-package duplicates.

    Extraction is redone when the marker is missing or the rules changed; the scan is cached in
    `extracted/<package>/catalogue.json` and redone when the marker or the catalogue version changed. With
    downloads off and no `packages` named, the packages that are neither extracted nor downloaded are left out
    (and said so); a named one that is missing is an error.
    """
    cat = Catalogue()
    extracted = cache_dir / "extracted"
    names = resolve_packages(packages)
    if not packages and not download:
        have = [n for n in names if (extracted / n / MARKER).exists() or find_deb(cache_dir / "debs", n)]
        if have and len(have) < len(names):
            log(f"offline: leaving out {', '.join(n for n in names if n not in have)} (not downloaded; run "
                "`python -m training.datasets.foley_real fetch`)")
            names = have
    for name in names:
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
        cat.merge(load_part(source, pkg_dir, marker, log))
    drop_cross_package_duplicates(cat, names)
    return cat


def extracted_packages(cache_dir: Path) -> list[str]:
    """The catalogue's packages that are extracted in `cache_dir` (in catalogue order)."""
    return [p for p in SOURCES if (cache_dir / "extracted" / p / MARKER).exists()]
