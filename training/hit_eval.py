"""`python -m training.hit_eval`: how well a bundle's hit detector finds the annotated onsets, against the baseline.

    python -m training.hit_eval BUNDLE --data DATA [--split test] [--max-clips 100] [--tolerance 0.1] \\
        [--out docs/results/hits-detector.json] [--plot-bbb docs/results/hits-bbb.png]

For the first segment (start 0, the bundle's segment length) of each clip of the split whose video has an
annotation sidecar (`<video>.json`, `training.evaluate.load_ground_truth`), the detector's hits
(`engine.hit_detection`, through the engine as `hits="auto"` gets them) and the motion-peak baseline's (peaks of the
global frame-difference channel, with the threshold calibrated beside the detector on the val split) are matched
one to one with the true onsets within +-tolerance: precision, recall and F1 pooled over the segments, and per
scene family where the sidecars name one. Prints a markdown table; `--out` writes everything as JSON.

`--plot-bbb PNG` draws the first segment of the Big Buck Bunny excerpt (`resources/demo/bbb_excerpt.mp4`: real
footage, out of the training domain, no annotations): thumbnails, the global motion channel, the detector's onset
probability, and both methods' hits.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BBB = ROOT / "resources" / "demo" / "bbb_excerpt.mp4"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.hit_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="a bundle folder with a hit_detector component")
    ap.add_argument("--data", action="append", default=[], help="a data-set folder (with splits.json) or list file")
    ap.add_argument("--split", default="test", help="train, val or test (default test)")
    ap.add_argument("--max-clips", type=int, default=100)
    ap.add_argument("--tolerance", type=float, default=0.1, help="s (default 0.1)")
    ap.add_argument("--backend", default="auto", help="auto, onnx or torch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--plot-bbb", metavar="PNG", help="draw the detector on the Big Buck Bunny excerpt")
    return ap.parse_args(argv)


def scene_family(video: str) -> str | None:
    """The `scene.family` of a data-set sidecar, if it has one."""
    try:
        data = json.loads(Path(video).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    scene = data.get("scene") if isinstance(data, dict) else None
    return scene.get("family") if isinstance(scene, dict) else None


def segment_hits(engine: Any, video: str | Path, start: float) -> dict[str, Any]:
    """The detector's and the baseline's hits for one segment, and the motion and probability behind them."""
    from engine.hit_detection import baseline_settings, motion_peak_hits, pick_peaks, segment_hit_probabilities
    from engine.motion import segment_motion

    t0 = time.perf_counter()
    if engine.has_hit_detector:
        cfg = engine.manifest.components["hit_detector"].config
        feats, prob = segment_hit_probabilities(engine, video, start)
        det = pick_peaks(prob, feats.slot_seconds, threshold=float(cfg["threshold"]),
                         min_distance=float(cfg["min_distance"]), duration=feats.duration)
    else:
        cfg = {}
        feats, prob, det = segment_motion(video, start, engine.spec.duration, 256), None, None
    th, dist = baseline_settings(cfg)
    return {"features": feats, "probability": prob, "detector": det,
            "baseline": motion_peak_hits(feats, threshold=th, min_distance=dist), "seconds": time.perf_counter() - t0}


def evaluate(engine: Any, videos: list[str], tolerance: float) -> dict[str, Any]:
    from training.evaluate import load_ground_truth
    from training.stages.detector import score_hits

    duration = engine.spec.duration
    rows = []
    for v in videos:
        truth = sorted(t for t in (load_ground_truth(v) or []) if 0.0 <= t < duration)
        r = segment_hits(engine, v, 0.0)
        rows.append({"video": v, "family": scene_family(v), "truth": truth, "detector": r["detector"],
                     "baseline": r["baseline"], "seconds": round(r["seconds"], 4)})
    methods = ["detector", "baseline"] if engine.has_hit_detector else ["baseline"]

    def scores(sel: list[dict[str, Any]]) -> dict[str, Any]:
        return {m: score_hits([r[m] for r in sel], [r["truth"] for r in sel], tolerance) for m in methods}

    by_family: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["family"]:
            by_family.setdefault(r["family"], []).append(r)
    return {"overall": scores(rows),
            "families": {f: {"clips": len(sel), **scores(sel)} for f, sel in sorted(by_family.items())},
            "seconds_per_segment": float(np.mean([r["seconds"] for r in rows])) if rows else None,
            "clips": rows}


def table(result: dict[str, Any], tolerance: float) -> str:
    lines = [f"| method | precision | recall | F1 @ +-{tolerance:g} s | hits | true onsets |",
             "|---|---|---|---|---|---|"]
    for m, s in result["overall"].items():
        name = "hit detector (TCN on motion)" if m == "detector" else "motion-peak baseline"
        lines.append(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['predicted']} | "
                     f"{s['true']} |")
    if result["families"]:
        methods = list(result["overall"])
        lines += ["", "| scene family | clips | " + " | ".join(f"F1 {m}" for m in methods) + " |",
                  "|---|---|" + "---|" * len(methods)]
        for f, s in result["families"].items():
            lines.append(f"| {f} | {s['clips']} | " + " | ".join(f"{s[m]['f1']:.3f}" for m in methods) + " |")
    return "\n".join(lines)


def plot_bbb(engine: Any, png: Path, video: Path = BBB, start: float = 0.0, thumbs: int = 8) -> dict[str, Any]:
    """The detector and the baseline on the first segment of an unannotated video (see the module doc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.media import probe_video, read_frames
    from engine.motion import KEYFRAME

    r = segment_hits(engine, video, start)
    feats = r["features"]
    info = probe_video(video)
    duration = min(feats.duration, info.duration - start)
    times = start + (np.arange(thumbs) + 0.5) * duration / thumbs
    w = 160
    h = max(1, round(w * info.height / max(info.width, 1)))
    frames = read_frames(video, times, size=(w, h)).frames
    thumb_h = 12.0 / thumbs * h / w  # inches: a row of thumbnails as wide as the figure
    fig = plt.figure(figsize=(12, thumb_h + 3.2))
    grid = fig.add_gridspec(2, thumbs, height_ratios=[thumb_h, 2.6], hspace=0.18, wspace=0.04)
    for i, fr in enumerate(frames):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(fr)
        ax.set_axis_off()
        ax.set_title(f"{times[i] - start:.2f} s", fontsize=7)
    ax = fig.add_subplot(grid[1, :])
    t = (np.arange(feats.features.shape[0]) + 0.5) * feats.slot_seconds
    ax.plot(t, feats.global_motion, color="0.45", lw=0.9, label="global motion (normalised)")
    keys = t[feats.features[:, KEYFRAME] > 0]
    ax.plot(keys, np.zeros_like(keys), "|", color="0.2", ms=10, label="keyframe")
    top = float(max(feats.global_motion.max(), 1.0))
    if r["probability"] is not None:
        ax.plot(t, r["probability"] * top, color="C0", lw=1.0, label=f"detector probability (x {top:.1f})")
        for k, hit in enumerate(r["detector"]):
            ax.axvline(hit, color="C3", lw=1.4, alpha=0.8, label="detector hits" if k == 0 else None)
    ax.plot(r["baseline"], [top * 1.04] * len(r["baseline"]), "v", color="C2", ms=5, label="baseline hits")
    ax.set_xlim(0, feats.duration)
    ax.set_xlabel(f"s from the segment start ({video.name}, {info.width}x{info.height}, {info.fps:g} fps)",
                  fontsize=8)
    ax.set_ylim(-0.1, top * 1.12)
    ax.legend(fontsize=7, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.tick_params(labelsize=7)
    n_det = "no detector" if r["detector"] is None else f"{len(r['detector'])} detector hits"
    fig.suptitle(f"hits on the first segment of {video.name} (out of domain): {n_det}, "
                 f"{len(r['baseline'])} baseline hits", fontsize=9, y=1.0)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return {"video": str(video), "detector": r["detector"], "baseline": r["baseline"], "png": str(png)}


def main(argv: list[str] | None = None) -> int:
    from engine import load_engine
    from engine.atomic import atomic_write_text
    from engine.errors import EngineError
    from training.data import DataError, discover

    args = parse_args(argv)
    try:
        engine = load_engine(args.bundle, backend=args.backend, device="cpu", threads=args.threads)
        out: dict[str, Any] = {
            "bundle": str(args.bundle), "bundle_name": engine.manifest.name, "backend": engine.backend.name,
            "command": "python -m training.hit_eval " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.processor() or
            platform.machine(), "tolerance": args.tolerance, "segment_seconds": engine.spec.duration,
        }
        if engine.has_hit_detector:
            cfg = engine.manifest.components["hit_detector"].config
            out["thresholds"] = {"detector": cfg.get("threshold"), "baseline": cfg.get("baseline_threshold"),
                                 "min_distance": cfg.get("min_distance")}
        else:
            print(f"note: bundle {args.bundle} has no hit detector: only the baseline is measured", file=sys.stderr)
        if args.data:
            from training.evaluate import load_ground_truth

            entries, _ = discover(args.data, [".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v"])
            videos = [e.path for e in entries if e.split in (args.split, "") and load_ground_truth(e.path) is not None]
            videos = videos[: args.max_clips]
            if not videos:
                print(f"error: no annotated videos of split {args.split!r} in {args.data}", file=sys.stderr)
                return 2
            res = evaluate(engine, videos, args.tolerance)
            out.update({"data": args.data, "split": args.split, "clips": len(videos), **res})
            print(f"{len(videos)} {args.split} clips, first segment each ({engine.spec.duration:g} s), "
                  f"{1000 * res['seconds_per_segment']:.0f} ms per segment")
            print(table(res, args.tolerance))
        if args.plot_bbb:
            out["bbb"] = plot_bbb(engine, Path(args.plot_bbb))
            print(f"figure: {args.plot_bbb} (detector {out['bbb']['detector']}, baseline {out['bbb']['baseline']})")
        engine.close()
    except (EngineError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(out, indent=1, default=float) + "\n")
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
