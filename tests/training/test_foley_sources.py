"""The Foley dataset's other source packages (training.datasets.sources): path rules, the .pk3 and .cat readers,
per-file licences, cross-package duplicates, splits stratified by package, the full-band flag the 48 kHz extension
reads, and a build whose scenes show the new categories.

Offline: small fake packages are built in the test (a .deb with `dpkg-deb --build`, or an extracted folder laid out
as `sources.extract_package` leaves it) from synthetic recordings and images.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("pedalboard")
import soundfile as sf
from test_foley_real import _burst, _clips, _onset_in_mix, _portrait, _texture, _write_image

from training.datasets import foley_real, sources

OA, WS, SP, OS, MG, WL = (sources.SOURCES[p] for p in ("openarena-data", "wesnoth-1.16-data", "sonic-pi-samples",
                                                      "openttd-opensfx", "megaglest-data", "widelands-data"))
PAK = "usr/share/games/openarena/baseoa/pak0.pk3"
CAT = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
MGS = "usr/share/games/megaglest/techs/megapack/"
WSS = "usr/share/games/wesnoth/1.16/data/core/sounds/"


def _category(source: sources.PackageSource, rel: str) -> str | None:
    rule = next((r for r in source.audio if __import__("re").fullmatch(r.pattern, rel)), None)
    return rule.category if rule else None


def _wav_bytes(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _sound(seed: int, length: float = 0.3, sr: int = 44_100, tone: float | None = None) -> np.ndarray:
    """A synthetic recording whose envelope is its own (a seeded wobble), so no two are near-duplicates."""
    rng = np.random.default_rng(seed)
    x = _burst(rng, 0.02, length, 0.3, tone=tone)
    wobble = np.repeat(rng.uniform(0.25, 1.0, len(x) // 441 + 1), 441)[: len(x)]
    x = (x * wobble).astype(np.float32)
    if sr != 44_100:  # _burst makes 44.1 kHz; take every other sample for 22.05 kHz (content stays below 11 kHz)
        x = x[:: 44_100 // sr]
    return x


# ---- the rules ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, rel, category", [
    (OA, f"{PAK}/sound/player/footsteps/clank3.wav", "footstep_metal"),
    (OA, f"{PAK}/sound/player/footsteps/splash1.wav", "footstep_water"),
    (OA, f"{PAK}/sound/player/footsteps/step2.wav", "footstep_stone"),
    (OA, f"{PAK}/sound/player/footsteps/boot4.wav", "footstep_stone"),
    (OA, f"{PAK}/sound/player/footsteps/energy1.wav", None),  # sci-fi pads, no surface a scene can show
    (OA, f"{PAK}/sound/world/fire2.wav", "fire"),
    (OA, f"{PAK}/sound/world/wind1.wav", "wind"),
    (OA, f"{PAK}/sound/player/sarge/death1.wav", None),  # voices
    (OA, "usr/share/games/openarena/missionpack/mp-pak0.pk3/sound/voices/rott/yes.ogg", None),
    (WS, WSS + "miss-2.ogg", "swing_whoosh"),
    (WS, WSS + "dagger-swish.wav", "swing_whoosh"),
    (WS, WSS + "mace-miss.ogg", "swing_whoosh"),
    (WS, WSS + "mace.ogg", None),  # a hit on a body: not a whoosh
    (WS, WSS + "wolf-growl-3.ogg", "animal_wolf"),
    (WS, WSS + "wolf-die-1.ogg", None),
    (WS, WSS + "ambient/campfire.ogg", "fire"),
    (WS, WSS + "human-hit-1.ogg", None),
    (SP, "usr/share/sonic-pi/samples/perc_swash.flac", "swing_whoosh"),
    (SP, "usr/share/sonic-pi/samples/bd_808.flac", None),  # drums
    (OS, f"{CAT}/osfx_36_sheep.wav", "animal_sheep"),
    (OS, f"{CAT}/osfx_37_cow.wav", "animal_cattle"),
    (OS, f"{CAT}/osfx_67_tropical_lion_roar.wav", "animal_lion"),
    (OS, f"{CAT}/osfx_57_heavy_wind.wav", "wind"),
    (OS, f"{CAT}/osfx_24_helicopter.wav", None),
    (MG, MGS + "commondata/sounds/anvil3.wav", "hammer_metal"),
    (MG, MGS + "commondata/sounds/worker_harvest_wood2.wav", "axe_tree"),
    (MG, MGS + "commondata/sounds/worker_mine5.wav", "pick_stone"),
    (MG, MGS + "commondata/sounds/worker_ack3.wav", None),  # spoken lines are never taken
    (MG, MGS + "commondata/sounds/worker_select1.wav", None),
    (MG, MGS + "commondata/sounds/swordman_attack4.wav", None),  # battle cries, not sword hits
    (MG, MGS + "commondata/sounds/cow_ack2.wav", "animal_cattle"),  # a cow's "ack" is its moo
    (MG, MGS + "commondata/sounds/pig_die3.wav", "animal_pig"),
    (MG, MGS + "factions/persian/units/sheep/sounds/sheep10.wav", "animal_sheep"),
    (MG, MGS + "factions/egypt/units/chicken/sounds/chicken_standing2.wav", "animal_chicken"),
    (MG, MGS + "factions/persian/units/elephant/sounds/eleattack3.wav", "animal_elephant"),
    (MG, MGS + "factions/persian/units/magician/sounds/select2.wav", None),
    (MG, "usr/share/games/megaglest/tilesets/autumn/sounds/rain.ogg", "rain"),
    (MG, "usr/share/games/megaglest/tilesets/winter/sounds/wind.ogg", "wind"),
    (MG, "usr/share/games/megaglest/tilesets/desert2/sounds/wolf.wav", "animal_wolf"),
    (MG, "usr/share/games/megaglest/tilesets/autumn/sounds/rooster.ogg", "animal_chicken"),
    (MG, "usr/share/games/megaglest/data/core/menu/sound/click_a.wav", None),
    (WL, "usr/share/games/widelands/data/sound/farm/ox_01.ogg", "animal_cattle"),
    (WL, "usr/share/games/widelands/data/sound/farm/sheep_02.ogg", "animal_sheep"),
    (WL, "usr/share/games/widelands/data/sound/animals/wolf_00.ogg", "animal_wolf"),
    (WL, "usr/share/games/widelands/data/sound/woodcutting/woodcutting.ogg", None),  # several chops in one file
    (WL, "usr/share/games/widelands/data/music/intro.ogg", None),
])
def test_rules_map_package_paths_to_categories(source, rel, category):
    assert _category(source, rel) == category
    assert source.wanted(rel) == (category is not None)


def test_every_event_category_has_a_scene_and_every_ambience_a_layer():
    from training.datasets import scenes

    shown = {c for cats in scenes.FAMILIES.values() for c in cats}
    for s in sources.SOURCES.values():
        for r in s.audio:
            assert (r.category in scenes.AMBIENCES) if r.kind == "ambience" else (r.category in shown), r


def test_package_names_resolve():
    assert sources.resolve_packages(None) == list(sources.SOURCES)
    assert sources.resolve_packages(["openarena", "0ad", "megaglest-data"]) == ["0ad-data", "openarena-data",
                                                                                  "megaglest-data"]
    with pytest.raises(ValueError, match="unknown package"):
        sources.resolve_packages(["quake"])


# ---- the .cat and .pk3 readers, licences ----------------------------------------------------------------------
def _cat_bytes(entries: list[tuple[str, bytes, str]]) -> bytes:
    """An OpenTTD .cat: offset table (bit 31 set), then per entry a length-prefixed description, the RIFF data and a
    trailer naming the source file."""
    blobs = []
    for desc, wav, fname in entries:
        d = desc.encode("latin-1") + b"\0"
        f = fname.encode() + b"\0"
        blobs.append((len(wav), bytes([len(d)]) + d + wav + b"\0" + bytes([len(f)]) + f))
    off = 8 * len(entries)
    table = b""
    for size, blob in blobs:
        table += struct.pack("<II", off | 0x80000000, size)
        off += len(blob)
    return table + b"".join(blob for _, blob in blobs)


CAT_ENTRIES = [
    ('"Cow". Original "Cow - Moan 2 - 96kHz.wav" by "Jarred Gib". Edited by "Wuzzy". License: Creative Commons '
     'Zero 1.0.', "src/wav/osfx_37.wav"),
    ('"Horse". Original "20060419.horse.neigh.wav" by "dobroide". Edited by "Wuzzy". License: Creative Commons '
     'Attribution 3.0 Unported.', "src/wav/osfx_38.wav"),
    ('"Sheep". Original "Corner of a sheep field in summer" by David R Barnes. Edited by "Wuzzy". License: Creative '
     'Commons Attribution-ShareAlike 3.0 Unported.', "src/wav/osfx_36.wav"),
    ('"Helicopter". By Someone. License: Creative Commons Zero 1.0.', "src/wav/osfx_24.wav"),
]


def test_read_cat_gives_entries_with_their_licence_credit_and_name():
    wavs = [_wav_bytes(_sound(i, tone=300 + 50 * i), 44_100) for i in range(len(CAT_ENTRIES))]
    data = _cat_bytes([(d, w, f) for (d, f), w in zip(CAT_ENTRIES, wavs)])
    entries = sources.read_cat(data)
    assert [e.data for e in entries] == wavs
    assert [e.local_name for e in entries] == ["osfx_37_cow.wav", "osfx_38_horse.wav", "osfx_36_sheep.wav",
                                               "osfx_24_helicopter.wav"]
    assert [e.licence for e in entries] == ["CC0-1.0", "CC-BY-3.0", "CC-BY-SA-3.0", "CC0-1.0"]
    assert entries[0].credit == 'Original "Cow - Moan 2 - 96kHz.wav" by "Jarred Gib". Edited by "Wuzzy"'
    assert entries[0].originals == ["Cow - Moan 2 - 96kHz.wav"] and entries[3].originals == []
    with pytest.raises(sources.SourceError):
        sources.read_cat(data[:40])  # truncated


def _deb(tmp: Path, package: str, files: dict[str, bytes], copyright_text: str) -> Path:
    pkg = tmp / f"pkg-{package}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(f"Package: {package}\nVersion: 1.0-1\nArchitecture: all\n"
                                        "Maintainer: test <t@example.org>\nDescription: test\n")
    for rel, data in {**files, f"usr/share/doc/{package}/copyright": copyright_text.encode()}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_bytes(data)
    deb = tmp / f"{package}_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
OA_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright:
  © 2005-2012 OpenArena Team
  © 1997-2006 id Software, Inc.
License: GPL-2+

Files: debian/*
Copyright: 2010 Someone
License: GPL-2+
"""


@needs_dpkg
def test_pk3_members_are_extracted_and_licensed_per_file(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("sound/player/footsteps/clank1.wav", _wav_bytes(_sound(1), 22_050))
        z.writestr("sound/player/footsteps/splash1.wav", _wav_bytes(_sound(2), 44_100),
                   compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("sound/player/sarge/death1.wav", _wav_bytes(_sound(3), 22_050))  # a voice: not taken
        z.writestr("CREDITS", b"the OpenArena team")
    deb = _deb(tmp_path, "openarena-data", {PAK: buf.getvalue()}, OA_COPYRIGHT)
    dest = sources.extract_package(OA, deb, tmp_path / "extracted")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == sorted(["EXTRACTED.json", f"{PAK}/CREDITS", f"{PAK}/sound/player/footsteps/clank1.wav",
                            f"{PAK}/sound/player/footsteps/splash1.wav", "usr/share/doc/openarena-data/copyright"])
    cat = sources.scan(OA, dest)
    recs = {r.category: r for r in cat.recordings}
    assert set(recs) == {"footstep_metal", "footstep_water"}
    r = recs["footstep_metal"]
    assert r.id == f"openarena-data:{PAK}!/sound/player/footsteps/clank1.wav"
    assert r.path_in_package == f"{PAK}!/sound/player/footsteps/clank1.wav"
    assert r.licence == "GPL-2+" and r.copyright.startswith("© 2005-2012 OpenArena Team")
    assert (r.sample_rate, r.full_band) == (22_050, False) and recs["footstep_water"].full_band
    assert cat.licence_texts == [f"openarena-data/{PAK}/CREDITS"]


@needs_dpkg
def test_cat_entries_are_extracted_with_their_own_licence(tmp_path):
    wavs = [_wav_bytes(_sound(i, length=0.5, tone=300 + 50 * i), 44_100) for i in range(len(CAT_ENTRIES))]
    data = _cat_bytes([(d, w, f) for (d, f), w in zip(CAT_ENTRIES, wavs)])
    copyright_text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\n"
                      "Copyright: Various\nLicense: GPL-2+ or CDDL\n\nFiles: src/wav/*\nCopyright: Various\n"
                      "License: CC-BY-SA-3.0\n")
    deb = _deb(tmp_path, "openttd-opensfx", {CAT: data}, copyright_text)
    dest = sources.extract_package(OS, deb, tmp_path / "extracted")
    assert sorted(p.name for p in (dest / CAT).iterdir()) == ["osfx_36_sheep.wav", "osfx_37_cow.wav",
                                                              "osfx_38_horse.wav"]  # no rule for the helicopter
    facts = json.loads((dest / sources.FILES_META).read_text())
    assert facts[f"{CAT}/osfx_38_horse.wav"]["licence"] == "CC-BY-3.0"
    cat = sources.scan(OS, dest)
    by = {r.category: r for r in cat.recordings}
    assert by["animal_cattle"].licence == "CC0-1.0" and by["animal_sheep"].licence == "CC-BY-SA-3.0"
    assert by["animal_horse"].copyright == 'Original "20060419.horse.neigh.wav" by "dobroide". Edited by "Wuzzy"'
    assert by["animal_horse"].path_in_package == f"{CAT}!/osfx_38_horse.wav"
    assert by["animal_cattle"].group == "openttd-opensfx:original:Cow - Moan 2 - 96kHz.wav"


def test_licences_from_upstream_paths_sources_and_free_form_copyrights(tmp_path):
    sp = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\n"
          "Copyright: 2016 Samuel Aaron\nLicense: MIT\n\nFiles: etc/samples/perc_swash.flac\n"
          "Copyright: 2008 qubodup\nSource: http://freesound.org/people/qubodup/sounds/60009/\nLicense: CC0\n")
    st = sources.parse_copyright(sp)
    rel = "usr/share/sonic-pi/samples/perc_swash.flac"
    assert "etc/samples/perc_swash.flac" in sources.copyright_paths(SP, rel)
    assert sources.licence_for(st, *sources.copyright_paths(SP, rel)) == (
        "CC0", "2008 qubodup (http://freesound.org/people/qubodup/sounds/60009/)")
    assert sources.licence_for(st, *sources.copyright_paths(SP, "usr/share/sonic-pi/samples/x.flac"))[0] == "MIT"
    # Wesnoth's debian/copyright is free text: the package's stated licence is used
    root = _extracted(tmp_path, WS, {WSS + "miss-1.ogg": (_sound(5), 44_100)},
                      "Upstream Author: David White\n\nLicense:\n  GNU General Public License version 2 or later\n")
    rec = sources.scan(WS, root).recordings[0]
    assert (rec.licence, rec.copyright) == WS.licence_fallback


# ---- catalogue: duplicates across packages, splits, the 48 kHz list -------------------------------------------
DEP5 = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\n"
        "Copyright: 2001-2008 The Glest Team\nLicense: CC-BY-SA-3.0\n")


def _extracted(cache: Path, source: sources.PackageSource, files: dict[str, tuple[np.ndarray, int]],
               copyright_text: str = DEP5, images: dict[str, object] | None = None) -> Path:
    """An extracted package as extract_package leaves it (files at their local paths, copyright, marker)."""
    root = cache / "extracted" / source.package
    for rel, (x, sr) in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / rel), x, sr, format="WAV", subtype="PCM_16")  # WAV data under any name: sniffed
    for rel, img in (images or {}).items():
        _write_image(root, rel, img)
    doc = root / f"usr/share/doc/{source.package}/copyright"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(copyright_text)
    marker = {"package": source.package, "version": "1.0-1+fixture", "deb": "(fixture)", "deb_sha256": "0" * 64,
              "archive": source.archive, "rules_digest": source.rules_digest(), "files": len(files), "bytes": 0}
    (root / sources.MARKER).write_text(json.dumps(marker))
    return root


def test_cross_package_duplicates_are_dropped_from_the_later_package(tmp_path):
    howl = _sound(11, length=3.5, tone=180)
    _extracted(tmp_path, WS, {WSS + "wolf-growl-1.ogg": (howl, 44_100)}, "free-form")
    wolf = "usr/share/games/megaglest/tilesets/birch_forest/sounds/wolf.wav"
    _extracted(tmp_path, MG, {wolf: (0.5 * howl, 44_100),  # the same howl, 6 dB down
                              MGS + "commondata/sounds/cow_die1.wav": (_sound(12, length=0.8, tone=150), 44_100)})
    cat = sources.prepare(tmp_path, ["megaglest", "wesnoth"], download=False, log=lambda m: None)
    assert {r.id.split("/")[-1] for r in cat.recordings} == {"wolf-growl-1.ogg", "cow_die1.wav"}
    (why,) = [s["reason"] for s in cat.skipped if s["file"].endswith("wolf.wav")]
    assert why == (f"duplicate of wesnoth-1.16-data:{WSS}wolf-growl-1.ogg (in wesnoth-1.16-data, filed as "
                   "animal_wolf)")  # catalogue order: Wesnoth comes before MegaGlest
    alone = sources.prepare(tmp_path, ["megaglest"], download=False, log=lambda m: None)
    assert sorted(r.category for r in alone.recordings) == ["animal_cattle", "animal_wolf"]  # alone it is kept


def _rec(pkg: str, name: str, category: str = "x", group: str = "", sr: int = 44_100) -> sources.Recording:
    return sources.Recording(
        id=f"{pkg}:{name}", package=pkg, version="1", path_in_package=name, local=f"{pkg}/{name}",
        category=category, kind="event", action="", sample_rate=sr, channels=1, duration=1.0, onset=0.0,
        peak_db=0.0, sha256="", group=f"{pkg}:{group or name}", licence="L", copyright="C", attribution="",
        full_band=sr >= sources.FULL_BAND_RATE)


def test_splits_are_by_source_recording_and_stable_when_packages_are_added():
    a = [_rec("a", f"{i}.wav") for i in range(12)]
    b = [_rec("b", f"{i}.wav") for i in range(7)] + [_rec("b", "edit1.wav", group="orig"),
                                                     _rec("b", "edit2.wav", group="orig")]
    alone = foley_real.assign_splits(a, 0.1, 0.1, 0)
    both = foley_real.assign_splits(a + b, 0.1, 0.1, 0)
    assert {k: v for k, v in both.items() if k.startswith("a:")} == alone  # b does not move a's recordings
    assert both["b:edit1.wav"] == both["b:edit2.wav"]  # edited from one original: one split
    for pkg in ("a", "b"):  # each package's share of the category is spread over all three splits
        assert {v for k, v in both.items() if k.startswith(pkg + ":")} == {"train", "val", "test"}


def test_the_bandwidth_extension_gets_only_full_band_recordings_in_the_dataset_splits(tmp_path):
    from training.bwe import recordings_by_split

    files = {MGS + f"commondata/sounds/anvil{i}.wav": (_sound(20 + i), 22_050) for i in range(1, 5)}
    files |= {MGS + f"factions/persian/units/sheep/sounds/sheep{i}.wav": (_sound(30 + i, tone=400), 44_100)
              for i in range(1, 6)}
    _extracted(tmp_path, MG, files)
    cat = sources.prepare(tmp_path, ["megaglest"], download=False, log=lambda m: None)
    assert {r.category: r.full_band for r in cat.recordings} == {"hammer_metal": False, "animal_sheep": True}
    split_of = foley_real.assign_splits(cat.recordings, 0.1, 0.1, 0)
    got = recordings_by_split(tmp_path)
    paths = {p: s for s, ps in got.items() for p in ps}
    assert sorted(p.name for p in paths) == [f"sheep{i}.wav" for i in range(1, 6)]  # no 22.05 kHz anvil
    for r in cat.recordings:
        if r.full_band:
            assert paths[tmp_path / "extracted" / r.local] == split_of[r.id]  # the dataset's split


# ---- a build whose scenes show the new categories -------------------------------------------------------------
@pytest.fixture(scope="module")
def new_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six clips from fake OpenArena, Wesnoth and MegaGlest packages holding only new categories (footsteps on
    metal, water and stone; an anvil; whooshes; wolves), with 0 A.D.'s art (a fake 0ad-data without recordings)."""
    cache = tmp_path_factory.mktemp("foley_new") / "cache"
    rng = np.random.default_rng(3)
    pp, t = "art/textures/ui/session/portraits/gaia/", "art/textures/terrain/types/"
    art = {pp + "fauna_wolf.png.cached.dds": _portrait((200, 200, 205)),
           t + "temperate/paving_001.png.cached.dds": _texture(rng, (150, 145, 135)),
           t + "water_1.dds.cached.dds": _texture(rng, (40, 90, 150)),
           t + "dirt_brown_a.dds.cached.dds": _texture(rng, (125, 95, 65)),
           "art/textures/skins/props/helmet/celt_montefortino_01_iron.png.cached.dds": _texture(rng, (170, 175, 185))}
    _extracted(cache, sources.ZERO_AD, {}, "Files: *\nCopyright: 2010 Wildfire Games\nLicense: CC-BY-SA-3.0\n",
               images=art)
    fs = f"{PAK}/sound/player/footsteps/"
    _extracted(cache, OA, {**{fs + f"clank{i}.wav": (_sound(40 + i, 0.2), 22_050) for i in range(1, 4)},
                           **{fs + f"splash{i}.wav": (_sound(50 + i, 0.3), 44_100) for i in range(1, 4)},
                           **{fs + f"step{i}.wav": (_sound(60 + i, 0.12), 22_050) for i in range(1, 4)}}, OA_COPYRIGHT)
    _extracted(cache, WS, {**{WSS + f"miss-{i}.ogg": (_sound(70 + i, 0.15), 44_100) for i in range(1, 4)},
                           **{WSS + f"wolf-growl-{i}.ogg": (_sound(80 + i, 0.7, tone=220 + 40 * i), 44_100)
                              for i in range(1, 4)}}, "free-form copyright: GPL-2+")
    _extracted(cache, MG, {MGS + f"commondata/sounds/anvil{i}.wav": (_sound(90 + i, 0.25), 22_050)
                           for i in range(1, 4)})
    settings = foley_real.BuildSettings(seed=5, num_clips=6, seconds=4.0, fps=20, width=112, height=112,
                                        val_frac=0.0, test_frac=0.0, ambience_prob=0.0)
    out = cache.parent / "out"
    foley_real.build(out, settings, cache_dir=cache, workers=1, download=False, log=lambda m: None,
                     packages=["0ad", "openarena", "wesnoth", "megaglest"])
    return out


def test_new_categories_are_seen_and_heard_at_their_frames(new_build):
    from engine.media import read_audio, read_frames

    seen: set[str] = set()
    for gt in _clips(new_build):
        clip = new_build / gt["clip"]
        sr, fps, w, h = gt["sample_rate"], gt["fps"], gt["width"], gt["height"]
        x = read_audio(clip, sr)
        frames = read_frames(clip, [k / fps for k in range(round(gt["duration"] * fps))]).frames.astype(np.float32)
        for ev in gt["events"]:
            seen.add(ev["category"])
            t = round(ev["time"] * sr)
            assert abs(_onset_in_mix(x, t, sr) - t) <= 0.010 * sr, (gt["clip"], ev)
            f = ev["frame"]
            if f >= 2:
                cx, cy = ev["xy"][0] * w, ev["xy"][1] * h
                r = max(6, int(0.1 * w))
                win = (slice(max(0, int(cy - r)), max(1, int(cy + r))), slice(max(0, int(cx - r)), max(1, int(cx + r))))
                at = np.abs(frames[f][win] - frames[f - 1][win]).mean()
                before = np.abs(frames[f - 1][win] - frames[f - 2][win]).mean()
                assert at > 3.0 and at > before, (gt["clip"], ev, at, before)
    assert len(seen) >= 3, seen  # six clips: several of the new families


def test_every_clip_lists_its_sources_with_their_package_licence(new_build):
    expected = {"openarena-data": "GPL-2+", "wesnoth-1.16-data": "GPL-2+", "megaglest-data": "CC-BY-SA-3.0",
                "0ad-data": "CC-BY-SA-3.0"}
    for gt in _clips(new_build):
        by_id = {s["id"]: s for s in gt["sources"]}
        for ev in gt["events"]:
            src = by_id[ev["source_file"]]
            assert src["licence"] == expected[src["package"]] and src["copyright"] not in ("", "unknown")
        assert gt["licences"] == sorted({s["licence"] for s in gt["sources"]})
    manifest = json.loads((new_build / "manifest.json").read_text())
    rates = {r["id"].split("/")[-1]: (r["sample_rate"], r["full_band"]) for r in manifest["recordings"]}
    assert rates["clank1.wav"] == (22_050, False) and rates["splash1.wav"] == (44_100, True)


def test_info_prints_the_table_per_category_and_package(new_build, capsys):
    cache = new_build.parent / "cache"
    code = foley_real.main(["info", "--cache", str(cache), "--offline", "--packages", "openarena,megaglest",
                            "--num-clips", "100"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| category | kind | train | val | test | openarena | megaglest |" in out
    assert "| footstep_metal | event | 1 | 1 | 1 | 3 |  |" in out
    assert "| megaglest-data | 1.0-1+fixture | 3 | " in out and "CC-BY-SA-3.0 (3)" in out
    assert "clips of a 100-clip build: train 80, val 10, test 10" in out
    assert foley_real.main(["info", "--cache", str(cache), "--offline", "--packages", "nope"]) == 2
