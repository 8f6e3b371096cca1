"""A few synthetic clips with visible events and matching sounds, for the tiny config and the tests.

Each clip shows a dark scene with a slowly drifting coloured square; at every event a bright disc pops up and
fades (the visible event), and the sound track has an impact at the same instant: a decaying resonant burst whose
pitch and colour depend on the clip's "kind" (so clips of different kinds also sound different, which gives the
contrastive stage something semantic to learn), over a quiet noise floor. Clips are 16 kHz mono AAC in MP4.

Beside every `<clip>.mp4` a `<clip>.json` holds the ground truth in the format the evaluation reads:
`{"events": [{"time": s, "kind": k}, ...], "event_times": [s, ...], "duration": s, "kind": k}`; event times are
when the sound starts (the disc appears on the same video frame, frame times are k / fps).

Names are `src<j>_<i>.mp4`, so the split-by-source rule (`training.data.source_id`) groups clips of one "source".
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.media.encode import encode_audio, encode_video

SAMPLE_RATE = 16_000
_KIND_FREQS = (220.0, 440.0, 880.0, 1760.0, 330.0, 660.0)
_KIND_COLOURS = ((230, 80, 60), (60, 200, 90), (70, 110, 240), (230, 210, 60), (200, 70, 220), (60, 210, 220))


def event_times(rng: np.random.Generator, seconds: float, *, min_gap: float = 0.7, n_range: tuple[int, int] = (4, 8)
                ) -> list[float]:
    """Random event times in [0.3, seconds - 0.4] at least `min_gap` apart, on a 1/48 s grid."""
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    times: list[float] = []
    for _ in range(200):
        if len(times) == n:
            break
        t = round(float(rng.uniform(0.3, seconds - 0.4)) * 48) / 48
        if all(abs(t - u) >= min_gap for u in times):
            times.append(t)
    return sorted(times)


def impact_sound(kind: int, seconds: float, events: list[float], rng: np.random.Generator) -> np.ndarray:
    """(n,) float32: a resonant decaying burst at each event time plus a quiet noise floor."""
    n = round(seconds * SAMPLE_RATE)
    wav = (rng.standard_normal(n) * 10 ** (-50 / 20)).astype(np.float64)  # about -50 dBFS floor
    f0 = _KIND_FREQS[kind % len(_KIND_FREQS)]
    length = int(0.35 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    for ev in events:
        start = round(ev * SAMPLE_RATE)
        env = np.exp(-t / (0.04 + 0.02 * (kind % 3)))
        tone = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 2.7 * f0 * t)
        noise = rng.standard_normal(length) * np.exp(-t / 0.01)  # the click of the hit
        burst = 0.5 * env * (tone + 0.8 * noise) * float(rng.uniform(0.6, 1.0))
        end = min(n, start + length)
        wav[start:end] += burst[: end - start]
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def render_frames(kind: int, seconds: float, events: list[float], fps: int, size: tuple[int, int],
                  rng: np.random.Generator):
    """Yield uint8 (H, W, 3) RGB frames: a drifting square, a bright disc at each event that fades in 0.25 s."""
    w, h = size
    colour = np.array(_KIND_COLOURS[kind % len(_KIND_COLOURS)], np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    radius = min(w, h) * 0.28
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2)[..., None]
    phase = rng.uniform(0, 2 * np.pi)
    for i in range(round(seconds * fps)):
        ts = i / fps
        img = np.full((h, w, 3), 25.0, np.float32)
        sx = int((w - 16) * (0.5 + 0.45 * np.sin(phase + ts * 0.7)))
        img[h - 24 : h - 8, sx : sx + 16] = colour * 0.6
        since = [ts - e for e in events if 0 <= ts - e + 1e-9 < 0.25]
        if since:
            a = 1.0 - since[0] / 0.25
            img = np.where(disc, img * (1 - a) + (0.5 * colour + 127) * a, img)
        yield np.clip(img, 0, 255).astype(np.uint8)


def write_clip(path: Path, *, kind: int, seconds: float = 10.0, seed: int = 0, fps: int = 12,
               size: tuple[int, int] = (128, 96), events: list[float] | None = None,
               audio: np.ndarray | None = None) -> dict:
    """Write one clip (MP4: H.264 + AAC 16 kHz mono) and its ground-truth JSON; returns the ground truth."""
    import av

    rng = np.random.default_rng(seed)
    evs = event_times(rng, seconds) if events is None else list(events)
    wav = impact_sound(kind, seconds, evs, rng) if audio is None else np.asarray(audio, np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.time_base = Fraction(1, fps)
        vs.options = {"preset": "ultrafast", "crf": "28"}
        a_stream = out.add_stream("aac", rate=SAMPLE_RATE)
        a_stream.layout = "mono"
        encode_video(out, vs, render_frames(kind, seconds, evs, fps, size, rng), fps)
        encode_audio(out, a_stream, wav, SAMPLE_RATE)
    truth = {"events": [{"time": t, "kind": kind} for t in evs], "event_times": evs, "duration": seconds,
             "kind": kind, "source": "training.synthetic"}
    path.with_suffix(".json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return truth


def make_dataset(folder: str | Path, *, clips: int = 6, sources: int = 0, seconds: float = 10.0, seed: int = 0
                 ) -> list[Path]:
    """Write `clips` clips into `folder` (skipping ones that exist), spread over `sources` source names."""
    folder = Path(folder)
    n_src = sources if sources > 0 else clips
    paths = []
    for i in range(clips):
        src = i % n_src
        p = folder / f"src{src:02d}_{i:03d}.mp4"
        if not (p.is_file() and p.with_suffix(".json").is_file()):
            write_clip(p, kind=src % len(_KIND_FREQS), seconds=seconds, seed=seed * 1000 + i)
        paths.append(p)
    return paths


if __name__ == "__main__":  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser(description="write synthetic event clips")
    ap.add_argument("folder")
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--sources", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    for p in make_dataset(a.folder, clips=a.clips, sources=a.sources, seconds=a.seconds):
        print(p)
