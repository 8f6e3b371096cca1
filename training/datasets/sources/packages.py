"""What to take from a package: the rule types (`AudioRule`, `ArtRule`, `Container`, `PackageSource`)
and every package's rules (`SOURCES`), with the short names the command line takes (`resolve_packages`)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any


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
