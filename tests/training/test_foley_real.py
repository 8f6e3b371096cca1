"""The real-sound Foley dataset builder (training.datasets.foley_real), offline on a tiny fake package.

The fixture lays out an "extracted 0ad-data" folder the way `sources.extract_package` does (files at their path
inside public.zip, debian/copyright, EXTRACTED.json) with short synthetic recordings (sharp attacks after a silent
head, so onsets are well defined) and small images at the art paths, plus deliberately bad files. One real
download test (1.4 GB) is marked slow and runs only with `-m slow`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("pedalboard")
import soundfile as sf
from PIL import Image

from training.datasets import compose, foley_real, sources

SR_SRC = 44_100
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: 0ad

Files: *
Copyright: 2010 Wildfire Games
License: CC-BY-SA-3.0

Files: debian/*
Copyright: 2012 Someone
License: GPL-2+

License: CC-BY-SA-3.0
 (text)
"""
SETTINGS = foley_real.BuildSettings(seed=7, num_clips=8, seconds=4.0, fps=20, width=112, height=112,
                                    val_frac=0.25, test_frac=0.25)


# ---- the fake package ----------------------------------------------------------------------------------------
def _burst(rng: np.random.Generator, head: float, length: float, smooth: float, tone: float | None = None
           ) -> np.ndarray:
    """A recording: `head` s of silence, then an instant attack decaying over `length` s."""
    n = int(length * SR_SRC)
    t = np.arange(n) / SR_SRC
    if tone:
        x = np.sign(np.sin(2 * np.pi * tone * t)) * 0.6 + 0.4 * rng.standard_normal(n)
        env = np.minimum(1.0, 8 * (length - t) / length)
    else:
        x = rng.standard_normal(n)
        if smooth:
            from scipy.signal import lfilter

            x = lfilter([1 - smooth], [1, -smooth], x)
        env = np.exp(-t / (length / 6))
    x = x * env
    x = 0.8 * x / np.abs(x).max()
    return np.concatenate([np.zeros(int(head * SR_SRC)), x]).astype(np.float32)


def _write_audio(root: Path, rel: str, x: np.ndarray) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), x, SR_SRC, format="WAV", subtype="PCM_16")  # WAV data under the .ogg name: sniffed on read


def _texture(rng: np.random.Generator, colour, size: int = 48) -> Image.Image:
    arr = np.clip(np.array(colour, np.float32) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGBA")


def _portrait(colour) -> Image.Image:
    """A bright blob on a dark brown gradient, like 0 A.D.'s portraits."""
    img = Image.new("RGB", (64, 64))
    px = img.load()
    for y in range(64):
        for x in range(64):
            px[x, y] = (40 + y // 4, 30 + y // 5, 20)
    from PIL import ImageDraw

    ImageDraw.Draw(img).ellipse((14, 18, 50, 56), fill=colour)
    return img.convert("RGBA")


def _write_image(root: Path, rel: str, img: Image.Image) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    img.save(p, format="PNG")  # PNG data under the .dds name: Pillow sniffs the content


def make_fake_package(cache: Path) -> Path:
    rng = np.random.default_rng(0)
    root = cache / "extracted" / "0ad-data"
    a = "audio/"
    recordings = {
        "impact_wood": [*(f"attack/impact/arrow_wood_0{i}.ogg" for i in range(1, 5)),
                        "attack/impact/sling_wood_01.ogg"],
        "impact_metal": [f"attack/impact/arrow_metal_0{i}.ogg" for i in range(1, 4)],
        "footstep_grass": [f"actor/singlesteps/fs_grass{i}.ogg" for i in range(1, 5)],
        "footstep_snow": [f"actor/singlesteps/fs_snow_1{i}.ogg" for i in range(1, 4)],
        "axe_tree": [f"resource/lumbering/lumber_tree_0{i}.ogg" for i in range(1, 4)],
        "animal_horse": [f"actor/fauna/animal/horse_attack{i}.ogg" for i in range(1, 4)],
        "animal_cattle": [f"actor/fauna/animal/cattle_0{i}.ogg" for i in range(1, 4)],
    }
    smooth = {"impact_wood": 0.6, "impact_metal": 0.0, "footstep_grass": 0.8, "footstep_snow": 0.9,
              "axe_tree": 0.5}
    for cat, rels in recordings.items():
        for k, rel in enumerate(rels):
            if cat.startswith("animal"):
                x = _burst(rng, rng.uniform(0.01, 0.1), rng.uniform(0.5, 0.8), 0, tone=200 + 60 * k)
            else:
                x = _burst(rng, rng.uniform(0.0, 0.15), rng.uniform(0.12, 0.25), smooth[cat])
            _write_audio(root, a + rel, x)
    for rel in ("ambient/water/river_slow_21.ogg", "ambient/water/river_fast_21.ogg", "ambient/water/waterfall_31.ogg",
                "ambient/weather/rain_11.ogg", "ambient/weather/rain_12.ogg"):
        _write_audio(root, a + rel, (0.3 * rng.standard_normal(int(4 * SR_SRC))).astype(np.float32))
    # bad files: undecodable, empty, silent, an exact duplicate, and one recording filed under two categories
    (root / a / "attack/impact/arrow_wood_09.ogg").write_bytes(b"OggS this is not audio" * 10)
    _write_audio(root, a + "attack/impact/arrow_wood_08.ogg", np.zeros(0, np.float32))
    _write_audio(root, a + "attack/impact/arrow_wood_07.ogg", np.zeros(int(0.3 * SR_SRC), np.float32))
    shutil.copy(root / a / "attack/impact/arrow_wood_01.ogg", root / a / "attack/impact/arrow_wood_06.ogg")
    shutil.copy(root / a / "actor/singlesteps/fs_grass1.ogg", root / a / "actor/singlesteps/fs_gravel1.ogg")

    t = "art/textures/terrain/types/"
    s = "art/textures/skins/"
    pp = "art/textures/ui/session/portraits/gaia/"
    art = {
        t + "temperate/grass_01.png.cached.dds": _texture(rng, (80, 120, 50)),
        t + "alpine_arctic/snow_01.png.cached.dds": _texture(rng, (235, 238, 245)),
        t + "dirt_brown_a.dds.cached.dds": _texture(rng, (125, 95, 65)),
        t + "water_1.dds.cached.dds": _texture(rng, (40, 90, 150)),
        s + "gaia/log_a.dds.cached.dds": _texture(rng, (120, 80, 45)),
        s + "props/helmet/celt_montefortino_01_iron.png.cached.dds": _texture(rng, (170, 175, 185)),
        pp + "fauna_horse.png.cached.dds": _portrait((210, 170, 110)),
        pp + "fauna_cow.png.cached.dds": _portrait((240, 240, 240)),
        pp + "flora_tree_pine.png.cached.dds": _portrait((40, 120, 40)),
        "art/textures/particles/flame.png.cached.dds": _texture(rng, (255, 150, 40), 16),
    }
    for rel, img in art.items():
        _write_image(root, rel, img)
    (root / t / "temperate/grass_02.png.cached.dds").write_bytes(b"not an image")
    (root / "usr/share/doc/0ad-data").mkdir(parents=True)
    (root / "usr/share/doc/0ad-data/copyright").write_text(COPYRIGHT)
    (root / "audio/LICENSE.txt").write_text("CC-BY-SA 3.0, Wildfire Games")
    marker = {"package": "0ad-data", "version": "0.0.26-1+fixture", "deb": "(fixture)", "deb_sha256": "0" * 64,
              "archive": sources.ZERO_AD.archive, "rules_digest": sources.ZERO_AD.rules_digest(), "files": 0,
              "bytes": 0}
    (root / sources.MARKER).write_text(json.dumps(marker))
    return cache


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two builds of the same seed (1 and 2 workers) from the fake package, after one file went missing."""
    base = tmp_path_factory.mktemp("foley_real")
    cache = make_fake_package(base / "cache")
    sources.prepare(cache, download=False, log=lambda m: None)  # scan (and cache the catalogue) first
    (cache / "extracted/0ad-data/audio/actor/fauna/animal/cattle_03.ogg").unlink()  # gone before the build
    a = base / "a"
    b = base / "b"
    foley_real.build(a, SETTINGS, cache_dir=cache, workers=1, download=False, log=lambda m: None)
    foley_real.build(b, SETTINGS, cache_dir=cache, workers=2, download=False, log=lambda m: None)
    return {"a": a, "b": b, "cache": cache}


def _clips(out: Path) -> list[dict]:
    splits = json.loads((out / "splits.json").read_text())
    return [json.loads((out / rel).with_suffix(".json").read_text()) for s in splits for rel in splits[s]]


# ---- tests ---------------------------------------------------------------------------------------------------
def test_layout_the_training_loader_reads(built):
    out = built["a"]
    splits = json.loads((out / "splits.json").read_text())
    assert set(splits) == {"train", "val", "test"}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [4, 2, 2]
    for s, rels in splits.items():
        for rel in rels:
            assert rel.startswith(f"{s}/") and rel.endswith(".mp4")
            assert (out / rel).is_file() and (out / rel).with_suffix(".json").is_file()
    from engine.media import probe_video, read_audio

    clip = out / splits["train"][0]
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (112, 112, 20.0, True)
    assert info.duration == pytest.approx(4.0, abs=1e-6)
    gt = json.loads(clip.with_suffix(".json").read_text())
    audio = read_audio(clip, 16000)
    assert audio.shape == (64000,)  # lossless FLAC: exactly the composed samples, no priming
    pcm = np.round(audio * 32768).astype(np.int16)
    assert hashlib.sha256(pcm.tobytes()).hexdigest() == gt["audio_sha256"]
    assert gt["events"] and all({"time", "category", "source_file", "gain_db", "pitch_semitones"} <= set(e)
                                for e in gt["events"])
    assert {"ambience", "split", "seed", "licences", "sources"} <= set(gt)


def test_same_seed_same_bytes_whatever_the_workers(built):
    a, b = built["a"], built["b"]
    assert (a / "splits.json").read_text() == (b / "splits.json").read_text()
    for rel in [r for v in json.loads((a / "splits.json").read_text()).values() for r in v]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        assert (a / rel).with_suffix(".json").read_text() == (b / rel).with_suffix(".json").read_text()


def test_another_seed_gives_other_clips(built, tmp_path):
    other = dataclasses.replace(SETTINGS, seed=8, num_clips=2)
    foley_real.build(tmp_path / "c", other, cache_dir=built["cache"], download=False, log=lambda m: None)
    a0 = _clips(built["a"])
    c0 = _clips(tmp_path / "c")
    assert {c["audio_sha256"] for c in a0}.isdisjoint({c["audio_sha256"] for c in c0})


def test_splits_are_disjoint_by_source_recording(built):
    out = built["a"]
    manifest = json.loads((out / "manifest.json").read_text())
    split_of = {r["id"]: r["split"] for r in manifest["recordings"]}
    used: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for gt in _clips(out):
        ids = [e["source_file"] for e in gt["events"]] + ([gt["ambience"]["source_file"]] if gt["ambience"] else [])
        for i in ids:
            assert split_of[i] == gt["split"], (gt["clip"], i)
        used[gt["split"]] |= set(ids)
    assert used["train"].isdisjoint(used["val"]) and used["train"].isdisjoint(used["test"])
    assert used["val"].isdisjoint(used["test"])
    # every category with 3+ recordings has one in each split
    for cat, info in manifest["categories"].items():
        total = sum(info["recordings"].values())
        if total >= 3:
            assert all(info["recordings"][s] >= 1 for s in ("train", "val", "test")), cat


def test_duplicates_share_a_split():
    recs = []
    for i, g in enumerate(["a", "a", "b", "c", "d", "e"]):
        recs.append(sources.Recording(
            id=f"p:{i}", package="p", version="1", path_in_package=str(i), local=str(i), category="x",
            kind="event", action="", sample_rate=1, channels=1, duration=1, onset=0, peak_db=0, sha256="",
            group=f"p:{g}", licence="L", copyright="C", attribution=""))
    split_of = foley_real.assign_splits(recs, 0.2, 0.2, 0)
    assert split_of["p:0"] == split_of["p:1"]
    assert sorted(split_of.values()).count("test") >= 1 and "val" in split_of.values()


def _onset_in_mix(x: np.ndarray, t: int, sr: int) -> int:
    """Where the mix's envelope first rises a quarter of the way from the level before `t` to the peak after it."""
    env = np.convolve(np.abs(x), np.ones(8) / 8, "same")
    lo = max(0, t - int(0.06 * sr))
    base = float(np.median(env[lo : max(lo + 1, t - int(0.015 * sr))]))
    peak = float(env[t : t + int(0.03 * sr)].max())
    start = max(0, t - int(0.03 * sr))
    seg = env[start : t + int(0.03 * sr)]
    return start + int(np.argmax(seg > base + 0.25 * (peak - base)))


def test_events_are_aligned_in_sound_and_picture(built):
    from engine.media import read_audio, read_frames

    out = built["a"]
    n_checked = 0
    for gt in _clips(out):
        clip = out / gt["clip"]
        sr, fps, w, h = gt["sample_rate"], gt["fps"], gt["width"], gt["height"]
        x = read_audio(clip, sr)
        frames = read_frames(clip, [k / fps for k in range(round(gt["duration"] * fps))]).frames.astype(np.float32)
        for ev in gt["events"]:
            t = round(ev["time"] * sr)
            assert ev["time"] == pytest.approx(ev["frame"] / fps)
            onset = _onset_in_mix(x, t, sr)
            assert abs(onset - t) <= min(0.010 * sr, sr / fps), (gt["clip"], ev, (onset - t) / sr)
            f = ev["frame"]
            if f >= 2:
                cx, cy = ev["xy"][0] * w, ev["xy"][1] * h
                assert -0.05 <= ev["xy"][0] <= 1.05 and -0.05 <= ev["xy"][1] <= 1.05
                r = max(6, int(0.1 * w))
                win = (slice(max(0, int(cy - r)), max(1, int(cy + r))), slice(max(0, int(cx - r)), max(1, int(cx + r))))
                at = np.abs(frames[f][win] - frames[f - 1][win]).mean()  # the change at the event frame
                before = np.abs(frames[f - 1][win] - frames[f - 2][win]).mean()  # and one frame earlier
                assert at > 3.0 and at > before, (gt["clip"], ev, at, before)
            n_checked += 1
    assert n_checked >= 16


def test_placement_is_sample_exact(tmp_path):
    root = tmp_path / "ex"
    x = np.concatenate([np.zeros(2205), np.ones(10) * 0.001, np.hanning(400) * 0.9, np.zeros(300)]).astype(np.float32)
    (root / "p").mkdir(parents=True)
    sf.write(str(root / "p/a.wav"), x, SR_SRC, subtype="FLOAT")
    rec = sources.Recording(id="p:a", package="p", version="1", path_in_package="a.wav", local="p/a.wav",
                            category="c", kind="event", action="", sample_rate=SR_SRC, channels=1, duration=0.1,
                            onset=0.05, peak_db=0, sha256="", group="p:a", licence="L", copyright="C", attribution="")
    bank = compose.RecordingBank(root)
    for pitch in (0.0, 1.5):
        ev = compose.PlacedSound(rec, time=1.25, level_db=-6.0, pitch_semitones=pitch)
        y, info, _ = compose.mix_clip([ev], None, None, 32000, bank, master_peak_db=-1.0)
        src = compose.shift_pitch(bank.load(rec), pitch)
        assert sources.onset_index(y, 16000) == 20000 == round(1.25 * 16000)  # onset on the event sample
        assert info[0]["onset_in_source"] == pytest.approx(sources.onset_index(src, 16000) / 16000)
        assert np.abs(y).max() == pytest.approx(10 ** (-1 / 20), rel=1e-4)


def test_every_used_file_has_a_licence_record(built):
    out = built["a"]
    with open(out / "attribution.csv") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    for gt in _clips(out):
        ids = {e["source_file"] for e in gt["events"]} | {s["id"] for s in gt["sources"]}
        if gt["ambience"]:
            ids.add(gt["ambience"]["source_file"])
        for i in ids:
            assert i in rows, i
            assert rows[i]["licence"] == "CC-BY-SA-3.0" and rows[i]["copyright"] == "2010 Wildfire Games"
            assert rows[i]["path_in_package"].startswith("usr/share/games/0ad/mods/public/public.zip!/")
        assert gt["licences"] == ["CC-BY-SA-3.0"]
    assert any(r["kind"] == "art" for r in rows.values()) and any(r["kind"] == "audio" for r in rows.values())
    assert "CC-BY-SA-3.0" in (out / "ATTRIBUTION.md").read_text()


def test_bad_and_missing_files_are_skipped_and_reported(built):
    out = built["a"]
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {s["file"].split("!/")[-1]: s["reason"] for s in manifest["skipped"]}
    im = "audio/attack/impact/"
    assert "cannot be decoded" in skipped[im + "arrow_wood_09.ogg"]
    assert skipped[im + "arrow_wood_08.ogg"]  # empty (or undecodable, as libsndfile sees it)
    assert "silent" in skipped[im + "arrow_wood_07.ogg"]
    assert "duplicate of" in skipped[im + "arrow_wood_06.ogg"]
    both = "filed as footstep_grass and footstep_gravel"
    assert both in skipped["audio/actor/singlesteps/fs_gravel1.ogg"]
    assert both in skipped["audio/actor/singlesteps/fs_grass1.ogg"]
    assert "missing" in skipped["audio/actor/fauna/animal/cattle_03.ogg"]
    assert "art cannot be opened" in skipped["art/textures/terrain/types/temperate/grass_02.png.cached.dds"]
    used = {e["source_file"].split("!/")[-1] for gt in _clips(out) for e in gt["events"]}
    assert used.isdisjoint(skipped)
    report = json.loads((out / "build_report.json").read_text())
    assert len(report["skipped"]) == len(manifest["skipped"])


def test_parse_copyright_last_match_wins():
    st = sources.parse_copyright(COPYRIGHT)
    assert [s.licence for s in st] == ["CC-BY-SA-3.0", "GPL-2+"]
    assert sources.licence_for(st, "audio/x.ogg") == ("CC-BY-SA-3.0", "2010 Wildfire Games")
    assert sources.licence_for(st, "debian/rules") == ("GPL-2+", "2012 Someone")


def _zip_bytes(members: dict[str, bytes], deflate: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name == deflate else zipfile.ZIP_STORED)
    return buf.getvalue()


def test_zip_members_are_streamed_without_seeking():
    data = _zip_bytes({"audio/a.ogg": b"A" * 100, "music/b.ogg": b"B" * 5000, "audio/c.ogg": b"C" * 50},
                      deflate="audio/c.ogg")

    class Forward(io.RawIOBase):  # a pipe: read only, no seek
        def __init__(self, b: bytes) -> None:
            self.b, self.i = b, 0

        def readable(self) -> bool:
            return True

        def readinto(self, out) -> int:
            n = min(len(out), len(self.b) - self.i)
            out[:n] = self.b[self.i : self.i + n]
            self.i += n
            return n

    got = dict(sources.iter_zip_stream(io.BufferedReader(Forward(data)), lambda n: n.startswith("audio/")))
    assert got == {"audio/a.ogg": b"A" * 100, "audio/c.ogg": b"C" * 50}


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_extract_package_from_a_deb(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text("Package: 0ad-data\nVersion: 9.9-1\nArchitecture: all\n"
                                        "Maintainer: test <t@example.org>\nDescription: test\n")
    zpath = pkg / sources.ZERO_AD.archive
    zpath.parent.mkdir(parents=True)
    zpath.write_bytes(_zip_bytes({"audio/actor/singlesteps/fs_sand1.ogg": b"sand", "audio/music/x.ogg": b"music",
                                  "art/textures/particles/flame.png.cached.dds": b"img",
                                  "audio/LICENSE.txt": b"licence"}))
    (pkg / "usr/share/doc/0ad-data").mkdir(parents=True)
    (pkg / "usr/share/doc/0ad-data/copyright").write_text(COPYRIGHT)
    deb = tmp_path / "0ad-data_9.9-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True,
                   capture_output=True)
    dest = sources.extract_package(sources.ZERO_AD, deb, tmp_path / "extracted")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["EXTRACTED.json", "art/textures/particles/flame.png.cached.dds", "audio/LICENSE.txt",
                     "audio/actor/singlesteps/fs_sand1.ogg", "usr/share/doc/0ad-data/copyright"]
    marker = json.loads((dest / "EXTRACTED.json").read_text())
    assert marker["version"] == "9.9-1" and marker["files"] == 3


def test_cli_refuses_a_non_empty_out(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    code = foley_real.main(["build", "--out", str(tmp_path), "--num-clips", "1", "--offline", "--nice", "0",
                            "--cache", str(tmp_path / "nocache")])
    assert code == 2 and "not empty" in capsys.readouterr().err
    assert (tmp_path / "x").read_text() == "keep me"


@pytest.mark.slow
def test_real_0ad_build(tmp_path, request):
    """Downloads 0ad-data (1.4 GB) unless cached, extracts it and builds 3 clips. Runs only with `-m slow`."""
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("real download: run with -m slow")
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get")
    settings = foley_real.BuildSettings(seed=0, num_clips=3)
    manifest = foley_real.build(tmp_path / "real", settings, workers=1, packages=["0ad"])
    assert sum(manifest["splits"].values()) == 3
    assert len(manifest["categories"]) >= 25
    assert all(r["licence"] == "CC-BY-SA-3.0" for r in manifest["recordings"])


@pytest.mark.slow
def test_real_other_packages(tmp_path, request):
    """Downloads the six other packages (about 850 MB) unless cached and catalogues them. Only with `-m slow`."""
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("real download: run with -m slow")
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get")
    names = ["openarena", "wesnoth", "sonic-pi", "opensfx", "megaglest", "widelands"]
    cat = sources.prepare(sources.default_cache_dir(), names, log=lambda m: None)
    by_pkg = {p: [r for r in cat.recordings if r.package == p] for p in sources.resolve_packages(names)}
    assert all(by_pkg.values()), {p: len(v) for p, v in by_pkg.items()}
    cats = {r.category for r in cat.recordings}
    assert {"footstep_metal", "footstep_water", "footstep_stone", "hammer_metal", "swing_whoosh", "animal_wolf"} <= cats
    assert not [r.id for r in cat.recordings if r.licence.startswith("unknown")]
    assert {r.licence for r in by_pkg["openttd-opensfx"]} <= {"CC0-1.0", "CC-BY-3.0", "CC-BY-SA-3.0"}


def test_onset_ignores_a_noisy_head():
    sr = 16000
    rng = np.random.default_rng(1)
    clean = np.concatenate([np.zeros(800), np.full(5, 0.02), np.hanning(200)]).astype(np.float32)
    assert sources.onset_index(clean, sr) == 800  # the plain -40 dB rule: 0.02 is above 1 % of the peak
    noisy = clean + (0.01 * rng.standard_normal(clean.size)).astype(np.float32)  # room tone at -40 dBFS
    assert 800 <= sources.onset_index(noisy, sr) <= 830  # not sample 0: the step starts after the room tone


def test_ship_writes_the_bundle_card_attribution_and_silent_demo_clips(built, tmp_path):
    """training.ship on a (random-weight) bundle and this data set: everything a shipped model must carry."""
    import av

    from engine.manifest import load_manifest
    from engine.nn.random_bundle import random_bundle
    from engine.spec import DIFF_FOLEY
    from training import ship

    run = tmp_path / "run"
    random_bundle(run / "bundle", spec=DIFF_FOLEY, preset="T", vocoder="griffin-lim",
                  denoiser_overrides={"temporal_condition": True})
    (run / "stages" / "denoiser").mkdir(parents=True)
    (run / "stages" / "denoiser" / "losses.csv").write_text(
        "step,split,metric,value\n10,train,sec_per_step,2.0\n10,train,loss,0.5\n30,train,sec_per_step,5.0\n")
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "metrics.json").write_text(json.dumps({"clips": 3, "candidates": 1, "steps": 25, "backend": "onnx",
                                                 "alignment": {"classifier": {"val_accuracy": 0.9}}}))
    (ev / "summary.md").write_text("| condition | onset acc @0.1s |\n|---|---|\n| generated | 50.0 % |")
    out, demo = tmp_path / "models" / "default", tmp_path / "demo"
    args = [str(run), "--eval", str(ev), "--data", str(built["a"]), "--out", str(out), "--demo-out", str(demo),
            "--demo-clips", "2"]
    assert ship.main([*args, "--max-mb", "1"]) == 2 and not out.exists()  # over budget: refused, nothing written
    assert ship.main(args) == 0
    m = load_manifest(out)
    assert m.metrics["test"]["clips"] == 3
    # fp16 storage: about half the bytes, and the same model (the torch backend's output barely moves)
    before = sum(p.stat().st_size for p in (run / "bundle").glob("*.safetensors"))
    after = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    assert 0.45 < after / before < 0.6
    check = m.provenance["fp16_storage_check"]
    assert 0 < check["torch_mel_mean_abs_diff"] < 0.01, check
    card = (out / "MODEL_CARD.md").read_text()
    assert "CC BY-SA 3.0" in card and "| generated | 50.0 % |" in card and "90.0 %" in card
    assert "(12 layers, width 192, 3 heads)" in card and "Not the paper's conditioning alone" in card
    assert "- Vocoder: Griffin-Lim (32 iterations)" in card  # this bundle's vocoder
    assert "denoiser 2 min (30 steps); 0.0 h in all" in card  # 10 x 2 s + 20 x 5 s, from the loss log
    assert (out / "attribution.csv").read_text() == (built["a"] / "attribution.csv").read_text()
    clips = json.loads((demo / "test_clips.json").read_text())
    assert 1 <= len(clips) <= 2 and len({c["family"] for c in clips}) == len(clips)
    for c in clips:
        assert c["source"].startswith("a/test/") and c["events"]
        with av.open(str(demo / c["file"])) as f:
            assert len(f.streams.video) == 1 and len(f.streams.audio) == 0 and f.duration > 3e6  # 4 s clips
    assert ship.main(args) == 0 and not out.with_name("default.old").exists()  # re-shipping swaps cleanly
    assert m.sampler_defaults["steps"] == 25 and m.onnx == {}  # as exported (this bundle has no graphs)
    assert ship.main([*args, "--steps", "10"]) == 0 and load_manifest(out).sampler_defaults["steps"] == 10
    assert "DPM-Solver++(2M), 10 steps" in (out / "MODEL_CARD.md").read_text()
    assert ship.main([*args, "--steps", "0"]) == 2
    assert ship.main([*args, "--precision", "int8"]) == 2  # no int8 graph to choose


def test_the_model_card_says_which_metrics_beat_the_shuffled_control():
    from training.ship import control_comparison

    m = {"onset": {"generated@0.1s": {"ap": 0.70}, "shuffled@0.1s": {"ap": 0.68}, "generated@0.3s": {"ap": 0.9}},
         "category": {"generated": {"category_acc": 0.40, "family_acc": 0.5}, "shuffled": {"category_acc": 0.1,
                                                                                             "family_acc": 0.45}},
         "alignment": {"generated": {"accuracy": 0.9}, "shuffled": {"accuracy": 0.2}},
         "fad": {"generated": 100.0, "shuffled": 200.0}}
    text = control_comparison(m)
    above, level = text.split("not clearly above it in")
    assert "category accuracy 40.0 % vs 10.0 %" in above and "alignment accuracy 90.0 %" in above
    assert "FAD 100.0 vs 200.0" in above
    assert "onset AP 0.7 vs 0.68" in level and "scene family accuracy 50.0 % vs 45.0 %" in level
    assert control_comparison({"fad": {"generated": 1.0}}) == ""  # no shuffled control: nothing to say
