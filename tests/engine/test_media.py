"""Tests of engine.media: every file is made here with PyAV (tests/media_writers.py), small (64x48) and short
(about 2 s)."""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
from media_writers import Painter, write_audio_only, write_painted_video, write_timecode_video

from engine import media
from engine.errors import (
    MuxError,
    NoAudioStreamError,
    NoVideoStreamError,
    SegmentOutOfRangeError,
    VideoNotFoundError,
    VideoReadError,
)
from engine.media import FrameBatch, VideoInfo, audio_io
from engine.spec import DIFF_FOLEY

W, H = 64, 48
BITS = 6  # frame index written as 6 black/white vertical bars


# ---- helpers that make media ---------------------------------------------------------------------------------
def _bars(index: int, width: int = W, height: int = H) -> np.ndarray:
    """An RGB frame showing `index` in binary: bar k (left to right) is white if bit k is set."""
    img = np.zeros((height, width, 3), np.uint8)
    for k in range(BITS):
        if index >> k & 1:
            img[:, k * width // BITS : (k + 1) * width // BITS] = 255
    return img


def _index_of(img: np.ndarray) -> int:
    """Read back the frame index `_bars` drew (samples the middle of each bar)."""
    h, w = img.shape[:2]
    value = 0
    for k in range(BITS):
        lo, hi = k * w // BITS, (k + 1) * w // BITS
        cell = img[h // 4 : 3 * h // 4, lo + (hi - lo) // 4 : hi - (hi - lo) // 4]
        if cell.mean() > 127:
            value |= 1 << k
    return value


def _quadrant(_: int) -> np.ndarray:
    """A frame with a white top-left quadrant on black: shows which way the picture is turned."""
    img = np.zeros((H, W, 3), np.uint8)
    img[: H // 2, : W // 2] = 255
    return img


def _make_video(path: Path, codec: str, *, painter: Painter = _bars, **kwargs: Any) -> Path:
    """`media_writers.write_painted_video` at W x H; frame i shows `painter(i)` (the bars of i unless told)."""
    return write_painted_video(path, codec, size=(W, H), painter=painter, **kwargs)


def _indices(batch: FrameBatch) -> list[int]:
    return [_index_of(f) for f in batch.frames]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _video_packets(path: Path) -> list[tuple[bytes, Fraction | None, Fraction | None, bool]]:
    """(bytes, pts s, dts s, keyframe) of every video packet, as exact fractions of a second."""
    rows = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = vs.time_base
        for p in c.demux(vs):
            if p.size == 0:
                continue
            rows.append(
                (
                    bytes(p),
                    None if p.pts is None else p.pts * tb,
                    None if p.dts is None else p.dts * tb,
                    p.is_keyframe,
                )
            )
    return rows


def _decode_audio_raw(path: Path) -> tuple[np.ndarray, float, int]:
    """Decode the audio with plain PyAV: (samples, time of sample 0 relative to the first video frame, rate).

    The decoder drops the AAC priming the container signals (edit list / skip samples); the first frame's pts says
    where the rest starts.
    """
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        first_video = next(c.decode(vs))
        v0 = float(first_video.pts * vs.time_base)
    with av.open(str(path)) as c:
        aus = c.streams.audio[0]
        frames = list(c.decode(aus))
        t0 = float(frames[0].pts * aus.time_base)
        x = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
        return x, t0 - v0, aus.rate


def _lag(signal: np.ndarray, ref: np.ndarray) -> int:
    """Index in `signal` where `ref` matches best (cross-correlation peak)."""
    corr = np.correlate(signal, ref, mode="valid")
    return int(np.argmax(corr))


def _burst(rate: int, n: int, seed: int = 1) -> np.ndarray:
    """A deterministic noise burst (sharp correlation peak, unlike a tone)."""
    return (np.random.default_rng(seed).uniform(-0.5, 0.5, n)).astype(np.float32)


# ---- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def mp4(media_dir: Path) -> Path:
    """2 s of H.264 in MP4 at 10 fps with an AAC track; frame i shows i in bars."""
    return _make_video(media_dir / "src.mp4", "libx264", audio_click_at=0.5)


# ---- reading containers --------------------------------------------------------------------------------------
CONTAINERS = [
    ("mp4", "libx264", None, "h264"),
    ("webm", "libvpx-vp9", None, "vp9"),
    ("mkv", "libx264", "matroska", "h264"),
    ("mov", "mpeg4", None, "mpeg4"),
    # PyAV's wheel has a Theora decoder but no encoder: mpeg4 in AVI stands in for a fifth format.
    ("ogv", "libtheora", "ogg", "theora") if "libtheora" in av.codecs_available else ("avi", "mpeg4", None, "mpeg4"),
]


@pytest.mark.parametrize(("ext", "codec", "fmt", "codec_name"), CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_read_frames_containers(tmp_path: Path, ext: str, codec: str, fmt: str | None, codec_name: str) -> None:
    path = _make_video(tmp_path / f"v.{ext}", codec, fmt=fmt)
    info = media.probe_video(path)
    assert (info.width, info.height, info.rotation) == (W, H, 0)
    assert info.codec == codec_name
    assert info.fps == pytest.approx(10.0)
    assert info.duration == pytest.approx(2.0, abs=1e-3)
    assert info.start_time == pytest.approx(0.0)
    assert not info.has_audio
    times = [0.0, 0.15, 0.5, 0.99, 1.95]
    batch = media.read_frames(path, times)
    assert batch.frames.shape == (5, H, W, 3) and batch.frames.dtype == np.uint8
    assert _indices(batch) == [0, 1, 5, 9, 19]
    np.testing.assert_allclose(batch.source_times, [0.0, 0.1, 0.5, 0.9, 1.9], atol=1e-6)
    np.testing.assert_allclose(batch.times, times)
    assert not batch.held_last and batch.first_held_index is None and batch.warnings == []


def test_read_frames_resizes_and_seeks_mid_file(mp4: Path) -> None:
    batch = media.read_frames(mp4, [1.2, 1.25, 1.3], size=(32, 20))
    assert batch.frames.shape == (3, 20, 32, 3)
    assert _indices(batch) == [12, 12, 13]
    assert batch.info.has_audio


def test_variable_frame_rate_picks_displayed_frame(tmp_path: Path) -> None:
    pts_ms = [0, 40, 100, 300, 310, 700, 1000, 1050]
    path = _make_video(tmp_path / "vfr.mp4", "libx264", pts=pts_ms, time_base=Fraction(1, 1000), fps=25)
    times = [0.0, 0.039, 0.04, 0.099, 0.2, 0.305, 0.31, 0.5, 0.999, 1.0, 1.06]
    batch = media.read_frames(path, times)
    expected = [int(np.searchsorted(pts_ms, t * 1000, side="right")) - 1 for t in times]
    assert expected == [0, 0, 1, 1, 2, 3, 4, 4, 5, 6, 7]
    assert _indices(batch) == expected
    np.testing.assert_allclose(batch.source_times, [pts_ms[i] / 1000 for i in expected], atol=1e-6)
    assert not batch.held_last and batch.warnings == []
    late = media.read_frames(path, [0.305, 5.0])  # starts mid-file (a seek) and ends past the end
    assert _indices(late) == [3, 7]
    assert late.held_last and late.first_held_index == 1 and len(late.warnings) == 1


@pytest.mark.parametrize(
    ("pyav_ccw", "rotation", "corner"),
    [(90, 270, "bottom-left"), (-90, 90, "top-right"), (180, 180, "bottom-right")],
)
def test_rotation_is_applied(tmp_path: Path, pyav_ccw: int, rotation: int, corner: str) -> None:
    # PyAV 18's set_display_rotation writes the container's display matrix (counter-clockwise degrees, like
    # VideoFrame.rotation); VideoInfo.rotation is the clockwise angle to apply.
    path = _make_video(tmp_path / "rot.mp4", "libx264", rotation=pyav_ccw, painter=_quadrant, n=5)
    info = media.probe_video(path)
    assert info.rotation == rotation
    disp_w, disp_h = (H, W) if rotation in (90, 270) else (W, H)
    assert (info.width, info.height) == (disp_w, disp_h)
    for size in (None, (30, 40)):
        batch = media.read_frames(path, [0.0], size=size)
        out_w, out_h = size or (disp_w, disp_h)
        frame = batch.frames[0]
        assert frame.shape == (out_h, out_w, 3)
        bright = {
            "top-left": frame[: out_h // 3, : out_w // 3].mean(),
            "top-right": frame[: out_h // 3, -out_w // 3 :].mean(),
            "bottom-left": frame[-out_h // 3 :, : out_w // 3].mean(),
            "bottom-right": frame[-out_h // 3 :, -out_w // 3 :].mean(),
        }
        assert max(bright, key=bright.__getitem__) == corner
        assert bright[corner] > 200 and sorted(bright.values())[2] < 50


def test_rotation_helper_turns_clockwise() -> None:
    frame = av.VideoFrame.from_ndarray(_quadrant(0), format="rgb24")
    turned = media._to_rgb(frame, None, 90)
    assert turned.shape == (W, H, 3)
    assert turned[:5, -5:].mean() == 255 and turned[-5:, :5].mean() == 0  # top-left went to top-right


def test_nonzero_start_time_is_the_origin(tmp_path: Path) -> None:
    for ext, codec, fmt in (("mp4", "libx264", None), ("mkv", "libvpx-vp9", "matroska")):
        path = _make_video(tmp_path / f"late.{ext}", codec, fmt=fmt, start_pts=15)  # first frame at 1.5 s
        info = media.probe_video(path)
        assert info.start_time == pytest.approx(1.5)
        assert info.duration == pytest.approx(2.0, abs=1e-3)
        batch = media.read_frames(path, [0.0, 0.5, 1.55])
        assert _indices(batch) == [0, 5, 15]
        np.testing.assert_allclose(batch.source_times, [0.0, 0.5, 1.5], atol=1e-6)


def test_segment_past_the_end_holds_last_frame(mp4: Path) -> None:
    batch = media.read_segment_frames(mp4, 1.0, DIFF_FOLEY)
    assert batch.frames.shape == (DIFF_FOLEY.num_frames, 224, 224, 3)
    np.testing.assert_allclose(batch.times, 1.0 + np.arange(32) / 4.0)
    assert batch.held_last and batch.first_held_index == 4  # 1.0 + 4/4 = 2.0 s, the end
    small = media.read_segment_frames(mp4, 1.0, DIFF_FOLEY, size=(W, H))
    assert _indices(small)[:5] == [10, 12, 15, 17, 19]
    assert set(_indices(small)[4:]) == {19}
    np.testing.assert_allclose(small.source_times[4:], 1.9, atol=1e-6)
    assert len(batch.warnings) == 1 and "past the end" in batch.warnings[0] and "2.000 s" in batch.warnings[0]


def test_segment_start_outside_is_refused(mp4: Path) -> None:
    for start in (-0.5, 2.0, 7.0):
        with pytest.raises(SegmentOutOfRangeError, match=r"from 0 to 2\.000 s"):
            media.read_segment_frames(mp4, start, DIFF_FOLEY)
    with pytest.raises(SegmentOutOfRangeError):
        media.read_frames(mp4, [-0.1, 0.2])


# ---- read errors ---------------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFoundError, match="No file"):
        media.probe_video(tmp_path / "nope.mp4")
    with pytest.raises(VideoNotFoundError):
        media.read_frames(tmp_path / "nope.mp4", [0.0])
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for generic callers
        media.read_segment_frames(tmp_path / "nope.mp4", 0.0, DIFF_FOLEY)


def test_garbage_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="convert it to MP4"):
        media.probe_video(junk)
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError):
        media.read_frames(empty, [0.0])


def test_truncated_mp4_is_a_read_error(mp4: Path, tmp_path: Path) -> None:
    # PyAV writes the MP4 index (moov) at the end: the first half holds no index, so nothing can decode.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(VideoReadError):
        media.read_frames(cut, [0.0])


def test_truncated_streamable_file_holds_last_frame(tmp_path: Path) -> None:
    # With the index up front (faststart MP4) the first half still decodes: reading past the data holds the last
    # frame that decodes and says so.
    whole = _make_video(tmp_path / "fast.mp4", "libx264", n=40, container_options={"movflags": "faststart"})
    with av.open(str(whole)) as c:
        positions = [p.pos for p in c.demux(c.streams.video[0]) if p.size]
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(whole.read_bytes()[: positions[len(positions) // 2] + 3])  # cut inside the 21st packet
    batch = media.read_frames(cut, [0.0, 0.5, 3.9])
    idx = _indices(batch)
    assert idx[:2] == [0, 5] and 5 < idx[2] < 39
    assert batch.held_last and batch.first_held_index == 2
    assert any("truncated" in w for w in batch.warnings)


def test_audio_only_files_have_no_video(tmp_path: Path) -> None:
    m4a = write_audio_only(tmp_path / "sound.m4a")
    wav = media.write_wav(tmp_path / "sound.wav", np.zeros(1600, np.float32), 16_000)
    for path in (m4a, wav):
        with pytest.raises(NoVideoStreamError, match="no video stream"):
            media.probe_video(path)
        with pytest.raises(NoVideoStreamError):
            media.read_segment_frames(path, 0.0, DIFF_FOLEY)


# ---- audio ---------------------------------------------------------------------------------------------------
def test_write_wav_atomic_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    mono = rng.uniform(-0.9, 0.9, 16_000).astype(np.float32)
    target = tmp_path / "deep" / "er" / "out.wav"
    assert media.write_wav(target, mono, 16_000) == target
    data, rate = sf.read(target, dtype="float32")
    assert rate == 16_000 and sf.info(str(target)).subtype == "PCM_24"
    np.testing.assert_allclose(data, mono, atol=2.0**-22)
    stereo = rng.uniform(-1.5, 1.5, (800, 2)).astype(np.float32)  # clipped to [-1, 1]
    media.write_wav(target, stereo, 8_000)
    data, _ = sf.read(target, dtype="float32")
    np.testing.assert_allclose(data, np.clip(stereo, -1, 1), atol=2.0**-22)
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.wav"]  # no temp file left
    # A failure mid-write leaves the old file as it was and no temp file behind.
    before = _sha(target)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(audio_io.sf, "write", boom)  # write_wav's soundfile
    with pytest.raises(OSError, match="disk full"):
        media.write_wav(target, mono, 16_000)
    assert _sha(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.wav"]


def test_read_audio_wav_and_errors(tmp_path: Path) -> None:
    x = np.zeros(16_000, np.float32)
    x[4_000] = 0.8
    wav = media.write_wav(tmp_path / "click.wav", x, 16_000)
    y = media.read_audio(wav, 16_000)
    assert y.dtype == np.float32 and y.shape == (16_000,)
    assert int(np.argmax(y)) == 4_000
    z = media.read_audio(wav, 48_000, start=0.2, duration=0.1)
    assert z.shape == (4_800,) and int(np.argmax(z)) == round(0.05 * 48_000)
    assert media.read_audio(wav, 16_000, start=0.9, duration=0.5)[1_600:].max() == 0.0  # padded past the end
    stereo = media.write_wav(tmp_path / "st.wav", np.stack([x, -x], axis=1), 16_000)
    assert media.read_audio(stereo, 16_000, mono=False).shape == (16_000, 2)
    video_only = _make_video(tmp_path / "silent.mp4", "libx264", n=5)
    with pytest.raises(NoAudioStreamError):
        media.read_audio(video_only, 16_000)
    with pytest.raises(VideoNotFoundError):
        media.read_audio(tmp_path / "nope.wav", 16_000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + bytes(range(256)) * 10)
    with pytest.raises(VideoReadError):
        media.read_audio(junk, 16_000)


def test_read_audio_seeks_for_a_late_start(tmp_path: Path) -> None:
    x = np.zeros(5 * 16_000, np.float32)
    x[round(3.7 * 16_000)] = 0.8
    wav = media.write_wav(tmp_path / "long.wav", x, 16_000)
    y = media.read_audio(wav, 16_000, start=3.0, duration=1.0)
    assert y.shape == (16_000,) and int(np.argmax(y)) == round(0.7 * 16_000)
    src = _make_video(tmp_path / "long.mp4", "libx264", n=40)
    foley, burst = _foley(16_000, 0.3)
    out = media.mux_foley(src, foley, 16_000, 3.2, tmp_path / "long_foley.mp4")
    y = media.read_audio(out, 16_000, start=2.6, duration=1.4)
    assert y.shape == (22_400,)
    assert abs(_lag(y, burst) / 16_000 - 0.9) < 1e-3


def test_read_audio_of_video_is_relative_to_first_frame(mp4: Path) -> None:
    y = media.read_audio(mp4, 48_000)
    assert abs(int(np.argmax(np.abs(y))) - 24_000) <= 48  # click at 0.5 s, within 1 ms
    assert len(y) == pytest.approx(96_000, abs=1_024)


# ---- muxing --------------------------------------------------------------------------------------------------
def _foley(rate: int, burst_at: float, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(foley, burst): silence of `length` s with a 30 ms noise burst at `burst_at` s."""
    burst = _burst(rate, int(0.03 * rate))
    audio = np.zeros(int(length * rate), np.float32)
    i = round(burst_at * rate)
    audio[i : i + len(burst)] = burst
    return audio, burst


def _check_mux(src: Path, out: Path, *, start: float, burst_at: float, rate: int) -> None:
    """The output copies the video packets, its audio spans the video and the burst sits at start + burst_at."""
    assert _video_packets(out) == _video_packets(src)
    info_src, info_out = media.probe_video(src), media.probe_video(out)
    assert info_out.rotation == info_src.rotation
    assert info_out.start_time == pytest.approx(info_src.start_time, abs=1e-9)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.audio[0].codec_context.name == "aac"
    expected = start + burst_at
    # plain PyAV decode, placed by the first decoded frame's pts (priming already skipped by the decoder)
    x, t0, arate = _decode_audio_raw(out)
    burst48 = _burst(48_000, int(0.03 * 48_000)) if rate == 48_000 else None
    if burst48 is not None:
        onset = t0 + _lag(x, burst48) / arate
        assert abs(onset - expected) < 1e-3, onset
    end = t0 + len(x) / arate
    assert end >= info_src.duration - 1e-3 and abs(end - info_src.duration) <= 1024 / arate + 1e-3
    # through read_audio, at the Foley's own rate
    y = media.read_audio(out, rate)
    _, burst = _foley(rate, burst_at)
    onset = _lag(y, burst) / rate
    assert abs(onset - expected) < 1e-3, onset
    assert abs(len(y) / rate - info_src.duration) <= 1024 / 48_000 + 1e-3


def test_mux_mp4_copies_video_and_places_foley(mp4: Path, tmp_path: Path) -> None:
    before = _sha(mp4)
    foley, _ = _foley(48_000, 0.3)
    out = media.mux_foley(mp4, foley, 48_000, 0.7, tmp_path / "out" / "foley.mp4")
    assert out == tmp_path / "out" / "foley.mp4"
    _check_mux(mp4, out, start=0.7, burst_at=0.3, rate=48_000)
    assert _sha(mp4) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["foley.mp4"]


def test_mux_resamples_16k_foley(mp4: Path, tmp_path: Path) -> None:
    foley, _ = _foley(16_000, 0.25)
    out = media.mux_foley(mp4, foley, 16_000, 1.3, tmp_path / "foley16.mov")  # runs past the end: cut
    _check_mux(mp4, out, start=1.3, burst_at=0.25, rate=16_000)


def test_mux_late_start_and_rotation(tmp_path: Path) -> None:
    src = _make_video(tmp_path / "late.mp4", "libx264", start_pts=15, rotation=-90)  # first frame at 1.5 s
    foley, _ = _foley(48_000, 0.1)
    out = media.mux_foley(src, foley, 48_000, 0.4561, tmp_path / "late_foley.mp4")
    assert media.probe_video(out).rotation == 90
    _check_mux(src, out, start=0.4561, burst_at=0.1, rate=48_000)


def test_mux_refuses_overwrite_and_source(mp4: Path, tmp_path: Path) -> None:
    foley, _ = _foley(16_000, 0.1)
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(MuxError, match="already exists"):
        media.mux_foley(mp4, foley, 16_000, 0.0, out)
    assert out.read_bytes() == b"precious"
    media.mux_foley(mp4, foley, 16_000, 0.0, out, overwrite=True)
    assert media.probe_video(out).has_audio
    before = _sha(mp4)
    for same in (mp4, mp4.parent / "." / mp4.name):
        with pytest.raises(MuxError, match="another output name"):
            media.mux_foley(same, foley, 16_000, 0.0, same, overwrite=True)
    link = tmp_path / "link.mp4"
    os.symlink(mp4, link)
    with pytest.raises(MuxError, match="source video itself"):
        media.mux_foley(mp4, foley, 16_000, 0.0, link, overwrite=True)
    assert _sha(mp4) == before
    with pytest.raises(SegmentOutOfRangeError):
        media.mux_foley(mp4, foley, 16_000, 2.5, tmp_path / "late.mp4")
    with pytest.raises(MuxError, match=r"\.mkv"):
        media.mux_foley(mp4, foley, 16_000, 0.0, tmp_path / "x.webm")


def test_codec_that_mp4_cannot_hold() -> None:
    assert not media._codec_fits("mp4", "theora") and not media._codec_fits("mp4", "vp8")
    assert media._codec_fits("matroska", "theora") and media._codec_fits("mp4", "h264")


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(c.streams.video[0])]


def test_mux_reencodes_what_mp4_cannot_hold_and_copies_into_mkv(tmp_path: Path) -> None:
    """VP8 (PyAV has no Theora encoder; VP8 is the other codec MP4 cannot hold), at a variable frame rate and
    rotated: to .mp4 it is re-encoded to H.264 with every frame at its own time, upright; to .mkv it is copied."""
    vfr = [0, 1, 3, 4, 7, 8, 9, 12, 13, 15, 16, 17, 20, 22, 23, 26, 27, 28, 30, 33]  # in 1/30 s
    src = _make_video(tmp_path / "src.webm", "libvpx", fmt="webm", pts=vfr, time_base=Fraction(1, 30),
                      painter=_quadrant, n=len(vfr))
    foley, _ = _foley(48_000, 0.2)
    plan = media.mux_plan(src, tmp_path / "vp8.mp4")
    assert (plan.video, plan.source_codec, plan.output_codec) == ("reencode", "vp8", "h264")
    assert "re-encoded to H.264" in plan.note
    out = media.mux_foley(src, foley, 48_000, 0.5, tmp_path / "vp8.mp4")
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    assert _frame_times(out) == pytest.approx(_frame_times(src), abs=1e-9)
    a, b = media.read_frames(src, [0.0, 0.5]).frames, media.read_frames(out, [0.0, 0.5]).frames
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 4  # visually lossless
    y = media.read_audio(out, 48_000)
    _, burst = _foley(48_000, 0.2)
    assert abs(_lag(y, burst) / 48_000 - 0.7) < 1e-3  # the Foley sits where it should, as in a copy
    assert media.mux_plan(src, tmp_path / "vp8.mkv").video == "copy"
    out = media.mux_foley(src, foley, 48_000, 0.5, tmp_path / "vp8.mkv")
    _check_mux(src, out, start=0.5, burst_at=0.2, rate=48_000)
    rot = _make_video(tmp_path / "rot.webm", "libvpx", fmt="webm", rotation=-90, painter=_quadrant, n=5)
    info = media.probe_video(rot)
    if info.rotation != 90:
        pytest.skip("this FFmpeg's WebM muxer does not store the display matrix")
    out = media.mux_foley(rot, foley, 48_000, 0.1, tmp_path / "rot.mp4")
    upright = media.probe_video(out)
    assert upright.rotation == 0 and (upright.width, upright.height) == (info.width, info.height)
    a, b = media.read_frames(rot, [0.2]).frames, media.read_frames(out, [0.2]).frames
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 4  # the same picture, now in the pixels


def test_timestamp_repair_follows_ffmpegs_remuxer() -> None:
    fix = media._repair_timestamps
    assert fix(10, 5, 4, strict=True) == (10, 5)  # in order: untouched
    assert fix(10, 4, 4, strict=True) == (10, 5)  # a repeated DTS moves up one tick (MP4/MOV)
    assert fix(10, 4, 4, strict=False) == (10, 4)  # Matroska allows equal ones
    assert fix(3, 2, 4, strict=True) == (5, 5)  # moved DTS passes its PTS: the PTS follows
    assert fix(6, 9, 4, strict=True) == (6, 6)  # DTS after PTS: both the median of (6, 9, 5)
    assert fix(6, 9, None, strict=True) == (6, 6)
    assert fix(7, None, 4, strict=True) == (7, None)  # missing DTS: the muxer derives it


def test_mux_vfr_b_frame_sources_into_every_container(tmp_path: Path) -> None:
    """Variable frame rate H.264 with B-frames in Matroska (which stores no DTS: FFmpeg derives them) and VP9 in
    WebM, into MP4, MOV and MKV: every frame kept at its time, the Foley in place."""
    vfr = [0, 2, 3, 7, 8, 9, 14, 15, 16, 17, 24, 25, 27, 30, 31, 33, 40, 41, 43, 45, 46, 50, 51, 60]  # 1/60 s
    srcs = [_make_video(tmp_path / "bframes.mkv", "libx264", fmt="matroska", pts=vfr, time_base=Fraction(1, 60),
                        n=len(vfr)),
            _make_video(tmp_path / "vp9.webm", "libvpx-vp9", fmt="webm", pts=vfr, time_base=Fraction(1, 60),
                        n=len(vfr))]
    with av.open(str(srcs[0])) as c:
        dts = [p.dts for p in c.demux(c.streams.video[0]) if p.size]
        assert c.streams.video[0].codec_context.has_b_frames and None in dts  # what the file had
    foley, burst = _foley(48_000, 0.1)
    for src in srcs:
        for suffix in (".mp4", ".mov", ".mkv"):
            out = media.mux_foley(src, foley, 48_000, 0.25, tmp_path / f"{src.stem}_out{suffix}")
            # FFmpeg's MOV muxer refuses VP9 ("only supported in MP4"): that one is re-encoded, the rest copied
            assert media.mux_plan(src, out).video == ("reencode" if (src.suffix, suffix) == (".webm", ".mov")
                                                      else "copy")
            assert _frame_times(out) == pytest.approx(_frame_times(src), abs=1e-3 if suffix == ".mkv" else 1e-9)
            y = media.read_audio(out, 48_000)
            assert abs(_lag(y, burst) / 48_000 - 0.35) < 1e-3, (src.name, suffix)


def test_info_is_frozen(mp4: Path) -> None:
    info = media.probe_video(mp4)
    assert isinstance(info, VideoInfo)
    with pytest.raises(AttributeError):
        info.duration = 1.0  # type: ignore[misc]


def test_the_start_timecode_of_a_mov_is_read(tmp_path: Path) -> None:
    path = write_timecode_video(tmp_path / "tc.mov", "01:00:10:05")  # the MOV muxer writes it as a tmcd track
    assert media.probe_video(path).timecode == "01:00:10:05"


def test_a_file_without_timecode_has_none(mp4: Path) -> None:
    assert media.probe_video(mp4).timecode is None


def test_a_still_image_that_is_not_an_image_is_a_read_error(tmp_path: Path) -> None:
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"\x89PNG not really")
    assert media.is_still_image(fake) and not media.is_still_image(tmp_path / "clip.mp4")
    with pytest.raises((VideoReadError,)):
        media.still_video(fake, tmp_path / "out.mp4", 4.0)
    assert not (tmp_path / "out.mp4").exists()
