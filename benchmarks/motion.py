"""What the hit detector's motion features cost per segment, at 480p, 720p and 1080p.

    python -m benchmarks.motion                 # 30 fps H.264 sources, best of 3, prints a markdown table
    python -m benchmarks.motion --fps 24 --repeats 5 --out motion.json

For each size, a 10 s H.264 video (libx264 `veryfast`: CABAC and B-frames, as cameras and editors write them;
keyframe every 2 s; moving gradients and shapes, so the stream has realistic motion) is written with PyAV to a
temporary folder, then the features of one 8.192 s segment starting at 1 s are computed (`engine.motion
.segment_motion`, a fresh cache each time: decode + greyscale + differences + pooling), and, for reference, the same
frames only decoded (no conversion). The cached call's cost is timed too. Times are the best of `--repeats` (the
machine is shared; the load average is printed beside them). No torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from engine.media.encode import encode_video

SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
START, SECONDS = 1.0, 10.0


def write_video(path: Path, size: tuple[int, int], fps: int, seconds: float = SECONDS) -> Path:
    """A synthetic H.264 video with moving content (see the module doc)."""
    import av

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, fps)
        vs.options = {"preset": "veryfast", "g": str(2 * fps)}

        def frames() -> Iterator[np.ndarray]:
            for i in range(round(seconds * fps)):
                t = i / fps
                base = 110 + 60 * np.sin(xx / 90.0 + 1.3 * t) * np.cos(yy / 70.0 - 0.7 * t)  # (h, w) drifting waves
                img = np.repeat(base[..., None], 3, axis=2)
                for k in range(3):  # three squares on their own paths
                    cx = int((0.5 + 0.4 * np.sin(t * (0.8 + 0.3 * k) + k)) * (w - h // 6))
                    cy = int((0.5 + 0.4 * np.cos(t * (0.6 + 0.2 * k) + 2 * k)) * (h - h // 6))
                    img[cy : cy + h // 6, cx : cx + h // 6] = (40 + 80 * k, 200 - 60 * k, 90)
                yield np.clip(img, 0, 255).astype(np.uint8)

        encode_video(out, vs, frames(), fps)
    return path


def decode_only(path: Path, start: float, duration: float) -> int:
    """Decode the frames of the segment (from the keyframe before it), as `read_frame_motion` does, and nothing
    else; returns how many were decoded."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        c.seek(int((start - 0.1) / s.time_base), stream=s, backward=True)
        n = 0
        for f in c.decode(s):
            n += 1
            if f.time is not None and f.time >= start + duration:
                break
    return n


def best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(path: Path, repeats: int) -> dict[str, float]:
    from engine.motion import MotionCache, segment_motion
    from engine.spec import DIFF_FOLEY

    duration = DIFF_FOLEY.duration
    feats = segment_motion(path, START, duration, 256, cache=MotionCache())  # warm-up (file cache, libraries)
    frames = len(feats.frame_motion.times)
    cold = best(lambda: segment_motion(path, START, duration, 256, cache=MotionCache()), repeats)
    cache = MotionCache()
    segment_motion(path, START, duration, 256, cache=cache)
    warm = best(lambda: segment_motion(path, START, duration, 256, cache=cache), repeats)
    dec = best(lambda: decode_only(path, START, duration), repeats)
    return {"frames": frames, "features_s": cold, "decode_only_s": dec, "cached_s": warm,
            "ms_per_frame": 1000 * cold / frames, "mb": path.stat().st_size / 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.motion", description=__doc__.split("\n\n")[0])
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"a subset of {','.join(SIZES)}")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    rows: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="motion-bench-") as tmp:
        for name in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            path = write_video(Path(tmp) / f"{name}.mp4", SIZES[name], args.fps)
            rows[name] = measure(path, args.repeats)
    load_after = os.getloadavg()
    print(f"motion features of one 8.192 s segment, {args.fps} fps H.264 (libx264 veryfast), best of {args.repeats}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.1f} -> {load_after[0]:.1f}")
    print("| source | frames | features (decode + motion) | decode only | per frame | cached |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} {'x'.join(map(str, SIZES[name]))} ({r['mb']:.1f} MB) | {r['frames']} | "
              f"{1000 * r['features_s']:.0f} ms | {1000 * r['decode_only_s']:.0f} ms | {r['ms_per_frame']:.2f} ms | "
              f"{1e6 * r['cached_s']:.0f} us |")
    if args.out:
        Path(args.out).write_text(json.dumps({"fps": args.fps, "repeats": args.repeats, "load": [load_before,
                                              load_after], "sizes": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
