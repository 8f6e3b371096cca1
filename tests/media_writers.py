"""The test media, written with PyAV: every video, audio-only file and image the tests make comes from here.

Importable from every test (pytest puts tests/ on sys.path for tests/conftest.py) and from the scripts in tests/
(run as `python tests/X.py`, their folder is on sys.path). PyAV is imported inside each writer, so importing this
module costs nothing.

    make_test_video            a bouncing square whose colour changes every second, H.264 or VP8, optional AAC tone
    write_painted_video        frame i = painter(i) (tests/engine/test_media.py's bars and quadrants): any codec,
                               container, timestamps, time base, rotation, container options; optional AAC click
    write_audio_only           1 s of silent AAC, no video stream (an .m4a)
    write_timecode_video       black H.264 frames with a start timecode in the stream's metadata (MOV: a tmcd track)
    write_flash_video          a moving square with whole white frames at given indices, keyframes every `gop` only
    write_video_without_audio  a small grey H.264 MP4 with no audio stream
    write_tiny_mp4             6 frames of 32x24 H.264 and 0.75 s of silent AAC, to a path or a binary file object
    write_png                  an RGB image as a PNG written by FFmpeg's encoder
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from engine.media.encode import encode_audio, encode_video

Painter = Callable[[int], np.ndarray]


def make_test_video(path: Path, *, seconds: float = 12.0, fps: int = 24, size: tuple[int, int] = (160, 120),
                    codec: str = "libx264", with_audio: bool = False) -> Path:
    """A video of a bouncing square whose colour changes every second (so frames are tellable apart)."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, fps)
        a_stream = None
        if with_audio:
            a_stream = out.add_stream("aac", rate=16000)
            a_stream.layout = "mono"

        def frames() -> Iterator[np.ndarray]:
            for i in range(round(seconds * fps)):
                img = np.full((h, w, 3), 30, np.uint8)
                sec = i // fps
                x = int((w - 20) * abs(np.sin(i / fps * 2.0)))
                img[h // 2 - 10 : h // 2 + 10, x : x + 20] = ((sec * 70) % 255, (sec * 130) % 255, 200)
                yield img

        encode_video(out, vs, frames(), fps)
        if a_stream is not None:
            t = np.arange(int(seconds * 16000)) / 16000
            encode_audio(out, a_stream, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    return path


def write_painted_video(
    path: Path,
    codec: str,
    *,
    size: tuple[int, int],
    painter: Painter,
    fmt: str | None = None,
    n: int = 20,
    fps: int = 10,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    start_pts: int = 0,
    rotation: float | None = None,
    container_options: dict[str, str] | None = None,
    audio_click_at: float | None = None,
) -> Path:
    """Encode a small video of `size` = (W, H); frame i shows `painter(i)`. pts are frame numbers (1/fps) unless
    `pts` is given (in `time_base`, which then is the stream's and the codec's time base too).

    With `audio_click_at`, an AAC track (48 kHz mono) with a single click at that time (s) is added too.
    """
    import av

    width, height = size
    with av.open(str(path), mode="w", format=fmt, options=container_options or {}) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        if time_base is not None:
            vs.codec_context.time_base = time_base
            vs.time_base = time_base
        if rotation is not None:
            vs.set_display_rotation(rotation)
        aus = None
        if audio_click_at is not None:
            aus = out.add_stream("aac", rate=48_000, layout="mono")
        frame_pts = pts if pts is not None else [start_pts + i for i in range(n)]
        for i, p in enumerate(frame_pts):
            frame = av.VideoFrame.from_ndarray(painter(i), format="rgb24")
            frame.pts = p
            if time_base is not None:
                frame.time_base = time_base
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if aus is not None and audio_click_at is not None:
            total = int(len(frame_pts) / fps * 48_000)
            sig = np.zeros(total, np.float32)
            sig[int(audio_click_at * 48_000)] = 0.9
            for k in range(0, total, 1024):
                chunk = sig[k : k + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None].copy(), format="fltp", layout="mono")
                frame.sample_rate = 48_000
                frame.pts = k
                out.mux(aus.encode(frame))
            out.mux(aus.encode(None))
    return path


def write_audio_only(path: Path, fmt: str = "mp4") -> Path:
    """An AAC-only file (an .m4a): 1 s of silence at 48 kHz mono."""
    import av

    with av.open(str(path), mode="w", format=fmt) as out:
        aus = out.add_stream("aac", rate=48_000, layout="mono")
        for k in range(0, 48_000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 48_000
            frame.pts = k
            out.mux(aus.encode(frame))
        out.mux(aus.encode(None))
    return path


def write_timecode_video(path: Path, timecode: str, *, frames: int = 10, fps: int = 25,
                         size: tuple[int, int] = (64, 48)) -> Path:
    """Black H.264 frames whose stream metadata holds `timecode` ("01:00:10:05"); the MOV muxer writes it as a
    tmcd track."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.metadata["timecode"] = timecode
        encode_video(out, vs, (np.zeros((h, w, 3), np.uint8) for _ in range(frames)), fps)
    return path


def write_flash_video(path: Path, *, flashes: Collection[int], fps: int = 20, gop: int = 40, seconds: float = 10.0,
                      size: tuple[int, int] = (160, 120)) -> Path:
    """H.264 at `fps`: a grey scene with a moving square; the whole picture white on each frame of `flashes` and the
    frame after; keyframes every `gop` frames exactly (no scene-cut keyframes at the flashes)."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, fps)
        vs.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        white = {k + d for k in flashes for d in (0, 1)}

        def frames() -> Iterator[np.ndarray]:
            for i in range(round(seconds * fps)):
                img = np.full((h, w, 3), 40, np.uint8)
                x = int((w - 20) * abs(np.sin(i / fps)))
                img[h // 2 - 10 : h // 2 + 10, x : x + 20] = (200, 100, 50)
                if i in white:
                    img[:] = 255
                yield img

        encode_video(out, vs, frames(), fps)
    return path


def write_video_without_audio(path: Path, seconds: float = 9.0, fps: int = 8) -> Path:
    """A small H.264 MP4 (64x48, a grey level that changes every frame) with no audio stream."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.time_base = Fraction(1, fps)
        encode_video(out, vs, (np.full((48, 64, 3), (i * 9) % 255, np.uint8) for i in range(round(seconds * fps))),
                     fps)
    return path


def write_tiny_mp4(target: str | Path | IO[bytes]) -> None:
    """An MP4 of 6 frames of 32x24 H.264 at 8 fps and 12 000 samples of silent 16 kHz AAC, to a path or a binary
    file object (tests/fuzz_readers.py's seed video)."""
    import av

    with av.open(target if not isinstance(target, Path) else str(target), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=8)
        vs.width, vs.height, vs.pix_fmt = 32, 24, "yuv420p"
        vs.time_base = Fraction(1, 8)
        a = out.add_stream("aac", rate=16_000, layout="mono")
        for i in range(6):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        for k in range(0, 12_000, 1024):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16_000, k
            out.mux(a.encode(fr))
        out.mux(a.encode(None))


def write_png(path: Path, img: np.ndarray) -> Path:
    """`img` (uint8 (H, W, 3) RGB) as a PNG written by FFmpeg's encoder."""
    import av

    h, w = img.shape[:2]
    with av.open(str(path), "w", format="image2") as c:
        st = c.add_stream("png", rate=1)
        st.width, st.height, st.pix_fmt = w, h, "rgb24"
        c.mux(st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(st.encode(None))
    return path
