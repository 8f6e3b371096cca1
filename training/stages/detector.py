"""Stage "detector": the hit detector (engine.nn.hit_detector) on motion features, against the clips' onsets.

Data: the per-frame motion (`engine.motion.read_frame_motion`) of every train and val clip, decoded once and
cached in the run's feature cache (`<cache>/motion-v<version>/<clip>.npz`). A training sample is a segment crop
at a random start inside its clip, pooled into slots by `engine.motion.slot_features` (so the detector sees the
features exactly as the engine computes them); its target is the clip's annotated onsets (`clip_onsets`, from the
videos' JSON sidecars) on the same slots (`engine.hits.hit_track`), widened by a Gaussian of `label_sigma` slots
(peak 1) so that a hit one slot off is not a full miss. Loss: BCE with logits, positives weighted by `pos_weight`.

Validation: the first and the last segment crop of each val clip; the onset probabilities go through the engine's
peak picking (`engine.hit_detection.pick_peaks`) and are scored as precision / recall / F1 at +-`tolerance` s. The
threshold is calibrated on the val split to maximise F1, and so is the motion-peak baseline's
(`engine.hit_detection.motion_peak_hits`) for a fair comparison; both go into the detector's config, which the
export puts into the bundle. A run without annotated clips skips the stage with a log line (the bundle then has no
detector). Outputs: `hit_detector.safetensors`, losses.csv/png, samples.png (val crops: motion, probability, hits).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.hit_detection import match_hits, motion_peak_hits, pick_peaks, sigmoid
from engine.hits import DEFAULT_SLOTS, hit_track
from engine.motion import (
    GLOBAL,
    MOTION_VERSION,
    NUM_CHANNELS,
    FrameMotion,
    MotionFeatures,
    read_frame_motion,
    slot_features,
)
from engine.nn.bundle import save_weights
from engine.nn.hit_detector import HitDetector, HitDetectorConfig, hit_detector_config
from training.data import Clip, _atomic_savez, batch_indices, step_rng
from training.loop import Trainer, build_optimizer, plot_losses
from training.stages import RunContext, done_record, load_trained_optional, mark_done

log = logging.getLogger("training.stages.detector")  # also when run as __main__
NAME = "detector"

#: Thresholds tried by the calibration: on the detector's probabilities, and on the baseline's global channel.
PROB_THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.025), 3)
BASELINE_THRESHOLDS = np.round(np.arange(0.25, 5.01, 0.125), 3)


# ---- scores --------------------------------------------------------------------------------------------------
def prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (an empty prediction of an empty truth is perfect)."""
    p = tp / n_pred if n_pred else float(n_true == 0)
    r = tp / n_true if n_true else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}


def score_hits(predicted: Sequence[Sequence[float]], truth: Sequence[Sequence[float]],
               tolerance: float) -> dict[str, float]:
    """P / R / F1 pooled over segments: `predicted[i]` and `truth[i]` are the hit times of segment i."""
    tp = sum(match_hits(p, t, tolerance) for p, t in zip(predicted, truth))
    n_pred, n_true = sum(len(p) for p in predicted), sum(len(t) for t in truth)
    return {**prf(tp, n_pred, n_true), "tp": tp, "predicted": n_pred, "true": n_true}


def calibrate(candidates: np.ndarray, hits_at: Any, truth: Sequence[Sequence[float]], tolerance: float
              ) -> tuple[float, dict[str, float]]:
    """The threshold of `candidates` whose hits (`hits_at(threshold)`: one list per segment) have the best F1
    (ties: the lower threshold), and its scores."""
    best: tuple[float, dict[str, float]] | None = None
    for th in candidates:
        s = score_hits(hits_at(float(th)), truth, tolerance)
        if best is None or s["f1"] > best[1]["f1"] + 1e-12:
            best = (float(th), s)
    assert best is not None, "no threshold to try"
    return best


# ---- data ----------------------------------------------------------------------------------------------------
def slots_per_segment(ctx: RunContext) -> int:
    if ctx.cfg.detector.slots > 0:
        return ctx.cfg.detector.slots
    rows, cols = ctx.spec.token_grid
    return (cols if ctx.spec.time_axis == "col" else rows) * DEFAULT_SLOTS


def motion_path(ctx: RunContext, clip: Clip) -> Path:
    assert ctx.cache_dir is not None, "data not prepared"
    return ctx.cache_dir / f"motion-v{MOTION_VERSION}" / f"{clip.key}.npz"


def clip_motion(ctx: RunContext, clip: Clip) -> FrameMotion:
    """The per-frame motion of a clip (times on the video's timeline), from the cache or decoded into it."""
    path = motion_path(ctx, clip)
    if path.is_file():
        with np.load(path) as z:
            return FrameMotion(times=z["times"], values=z["values"], keyframe=z["keyframe"], end=float(z["end"]))
    m = read_frame_motion(clip.path, clip.start, clip.start + clip.duration)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_savez(path, times=m.times, values=m.values, keyframe=m.keyframe, end=np.float64(m.end))
    return m


def annotated(ctx: RunContext) -> list[tuple[Clip, np.ndarray]]:
    """(clip, onsets in s from the clip start) of every clip whose video has an annotation sidecar."""
    from training.evaluate import load_ground_truth
    from training.stages.denoiser import clip_onsets

    onsets = clip_onsets(ctx)
    return [(c, o) for c, o in zip(ctx.clips, onsets) if load_ground_truth(c.path) is not None]


@dataclasses.dataclass
class Sample:
    """One segment crop: its clip's motion, the crop start on the video's timeline, its onsets (s from start)."""

    motion: FrameMotion
    start: float
    onsets: np.ndarray


def crop(motion: FrameMotion, clip: Clip, onsets: np.ndarray, offset: float, duration: float) -> Sample:
    start = round(clip.start + offset, 3)
    rel = onsets - (start - clip.start)
    return Sample(motion, start, rel[(rel >= 0) & (rel < duration)])


def soft_target(onsets: np.ndarray, duration: float, slots: int, sigma: float) -> np.ndarray:
    """(slots,) float32: 1 at each onset's slot (`hit_track`), a Gaussian of `sigma` slots around it."""
    hard = hit_track(onsets, duration, 1, slots).reshape(-1)
    if sigma <= 0:
        return hard
    reach = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    out = np.zeros(slots + 2 * reach, np.float32)
    for i in np.flatnonzero(hard):
        out[i : i + 2 * reach + 1] = np.maximum(out[i : i + 2 * reach + 1], kernel)
    return out[reach : reach + slots]


def batch(samples: Sequence[Sample], duration: float, slots: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (B, slots, NUM_CHANNELS) and soft targets (B, slots) of crops."""
    x = np.stack([slot_features(s.motion, s.start, duration, slots)[0] for s in samples])
    y = np.stack([soft_target(s.onsets, duration, slots, sigma) for s in samples])
    return torch.from_numpy(x), torch.from_numpy(y)


def features_of(sample: Sample, duration: float, slots: int) -> MotionFeatures:
    feats, scale = slot_features(sample.motion, sample.start, duration, slots)
    return MotionFeatures(features=feats, start=sample.start, duration=duration, frame_motion=sample.motion,
                          scale=scale)


# ---- the stage -----------------------------------------------------------------------------------------------
def detector_config(ctx: RunContext, **calibrated: float) -> HitDetectorConfig:
    """The detector's config from the run's `detector` section (ConfigError if the preset or an override is bad)."""
    from training.config import ConfigError

    c = ctx.cfg.detector
    try:
        return hit_detector_config(c.preset, **{**c.overrides, "in_channels": NUM_CHANNELS,
                                                "slots": slots_per_segment(ctx), "motion_version": MOTION_VERSION,
                                                "min_distance": c.min_distance, **calibrated})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"detector.preset / detector.overrides: {exc}") from exc


def load_trained_detector(ctx: RunContext) -> HitDetector | None:
    """The trained detector with its calibrated config, or None if the stage did not run (or was skipped)."""
    return load_trained_optional(ctx, NAME, lambda c: HitDetector(config=HitDetectorConfig.from_dict(c)),
                                 "hit_detector.safetensors", "hit detector")


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage detector: done, skipped")
        return rec
    threads = torch.get_num_threads()
    if ctx.cfg.detector.threads > 0:
        torch.set_num_threads(ctx.cfg.detector.threads)
    try:
        return _train(ctx)
    finally:
        torch.set_num_threads(threads)


def _train(ctx: RunContext) -> dict[str, Any]:
    c, spec, d = ctx.cfg.detector, ctx.spec, ctx.dist
    duration, slots = spec.duration, slots_per_segment(ctx)
    labelled = annotated(ctx)
    train_l = [(cl, o) for cl, o in labelled if cl.split == "train"]
    if c.max_train_clips > 0:
        train_l = train_l[: c.max_train_clips]
    if not train_l or not any(len(o) for _, o in train_l):
        log.info("stage detector: no training clip has annotated onsets (<video>.json event times); skipped, the "
                 "bundle gets no hit detector")
        return {}
    val_l = [(cl, o) for cl, o in labelled if cl.split == "val"][: c.val_clips] or train_l[: c.val_clips]
    sdir = ctx.stage_dir(NAME)
    sdir.mkdir(parents=True, exist_ok=True)
    if d.is_main:
        log.info("stage detector: motion features of %d train + %d val clips", len(train_l), len(val_l))
        for cl, _ in [*train_l, *val_l]:
            clip_motion(ctx, cl)
    d.barrier()
    train = [(clip_motion(ctx, cl), cl, o) for cl, o in train_l]
    train = [t for t in train if t[1].duration >= duration - 1e-6]
    val: list[Sample] = []
    for cl, o in val_l:
        m = clip_motion(ctx, cl)
        for off in sorted({0.0, round(max(0.0, cl.duration - duration), 3)}):
            val.append(crop(m, cl, o, off, duration))
    vx, vy = batch(val, duration, slots, c.label_sigma)
    val_truth = [list(s.onsets) for s in val]
    val_feats = [features_of(s, duration, slots) for s in val]

    torch.manual_seed(ctx.seed)
    det = HitDetector(config=detector_config(ctx)).to(ctx.device)
    params = list(det.parameters())
    opt = build_optimizer(params, c.optim)
    trainer = Trainer(name=NAME, stage_dir=sdir, loop=c.loop, d=d, modules={"hit_detector": det},
                      optimizers={"main": opt}, optim_cfgs={"main": c.optim}, progress=ctx.progress)
    pos_weight = torch.tensor(c.pos_weight, device=ctx.device)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(det(x), y, pos_weight=pos_weight)

    def step_fn(step: int) -> dict[str, float]:
        # the batch is small and the model tiny: every rank computes the whole batch (identical gradients)
        idx = batch_indices(ctx.seed, NAME, step, c.loop.batch_size, len(train))
        rng = step_rng(ctx.seed, NAME, step)
        samples = []
        for i in idx:
            m, cl, o = train[int(i)]
            samples.append(crop(m, cl, o, float(rng.uniform(0.0, max(0.0, cl.duration - duration))), duration))
        x, y = batch(samples, duration, slots, c.label_sigma)
        loss = loss_of(x.to(ctx.device), y.to(ctx.device))
        gnorm = trainer.backward(loss, "main", params, step)
        return {"loss": float(loss.detach()), "grad_norm": gnorm}

    def probabilities() -> np.ndarray:
        with torch.no_grad():
            return sigmoid(det(vx.to(ctx.device)).float().cpu().numpy())  # (N, slots)

    def val_fn(step: int) -> dict[str, float]:
        with torch.no_grad():
            vloss = float(loss_of(vx.to(ctx.device), vy.to(ctx.device)))
        th, s = calibrate_detector(probabilities(), val_feats, val_truth, c.tolerance, c.min_distance)
        return {"loss": vloss, "threshold": th, "precision": s["precision"], "recall": s["recall"], "f1": s["f1"]}

    metrics = trainer.run(step_fn, val_fn)
    if not d.is_main:
        d.barrier()
        return done_record(ctx, NAME) or {}
    prob = probabilities()
    th, det_scores = calibrate_detector(prob, val_feats, val_truth, c.tolerance, c.min_distance)
    bth, base_scores = calibrate(BASELINE_THRESHOLDS,
                                 lambda t: [motion_peak_hits(f, threshold=t, min_distance=c.min_distance)
                                            for f in val_feats], val_truth, c.tolerance)
    det.config = dataclasses.replace(det.config, threshold=th, baseline_threshold=bth)
    log.info("stage detector: val F1 %.3f (P %.3f, R %.3f) at threshold %.3f; motion-peak baseline F1 %.3f (P %.3f, "
             "R %.3f) at %.3f", det_scores["f1"], det_scores["precision"], det_scores["recall"], th,
             base_scores["f1"], base_scores["precision"], base_scores["recall"], bth)
    save_weights(sdir / "hit_detector.safetensors", det)
    plot_losses(sdir / "losses.csv", sdir / "losses.png", "hit detector (BCE; val P/R/F1 at +-0.1 s)")
    plot_val_crops(val[:4], val_feats[:4], prob[:4], det.config, sdir / "samples.png")
    out = mark_done(ctx, NAME, {
        "config": det.config.to_dict(), "metrics": {**metrics, "val_f1": det_scores["f1"],
                                                    "val_precision": det_scores["precision"],
                                                    "val_recall": det_scores["recall"]},
        "calibration": {"tolerance": c.tolerance, "val_segments": len(val), "detector": det_scores,
                        "threshold": th, "baseline": base_scores, "baseline_threshold": bth},
        "params": sum(p.numel() for p in det.parameters()), "train_clips": len(train),
    })
    d.barrier()
    return out


def calibrate_detector(prob: np.ndarray, feats: Sequence[MotionFeatures], truth: Sequence[Sequence[float]],
                       tolerance: float, min_distance: float) -> tuple[float, dict[str, float]]:
    """The probability threshold with the best val F1 (`calibrate`) for per-segment probabilities (N, slots)."""
    return calibrate(PROB_THRESHOLDS,
                     lambda t: [pick_peaks(p, f.slot_seconds, threshold=t, min_distance=min_distance,
                                           duration=f.duration) for p, f in zip(prob, feats)], truth, tolerance)


def plot_val_crops(samples: Sequence[Sample], feats: Sequence[MotionFeatures], prob: np.ndarray,
                   cfg: HitDetectorConfig, png: Path) -> None:
    """Per val crop: the global motion channel, the onset probability, the true, detected and baseline hits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(samples)
    if n == 0:
        return
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.8 * n), squeeze=False)
    for ax, s, f, p in zip(axes[:, 0], samples, feats, prob):
        t = (np.arange(len(p)) + 0.5) * f.slot_seconds
        g = f.features[:, GLOBAL]
        ax.plot(t, g / max(float(g.max()), 1e-6), color="0.6", lw=0.8, label="global motion (scaled)")
        ax.plot(t, p, color="C0", lw=1.0, label="onset probability")
        ax.axhline(cfg.threshold, color="C0", lw=0.5, ls=":")
        for k, h in enumerate(s.onsets):
            ax.axvline(h, color="k", lw=1.2, alpha=0.5, label="truth" if k == 0 else None)
        hits = pick_peaks(p, f.slot_seconds, threshold=cfg.threshold, min_distance=cfg.min_distance,
                          duration=f.duration)
        ax.plot(hits, [1.05] * len(hits), "v", color="C3", label="detector")
        base = motion_peak_hits(f, threshold=cfg.baseline_threshold, min_distance=cfg.min_distance)
        ax.plot(base, [-0.08] * len(base), "^", color="C2", label="baseline")
        ax.set_xlim(0, f.duration)
        ax.set_ylim(-0.15, 1.15)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, ncol=5, loc="upper right")
    axes[-1, 0].set_xlabel("s from the segment start", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


# ---- standalone: the detector alone, without the run's preprocessing -----------------------------------------
def clips_of_videos(inputs: list[str], cfg: Any) -> list[Clip]:
    """Clips as the preprocessing cuts them (same keys, splits and chunks), from the videos alone: no audio, no
    frame features (what the detector needs is the picture and the annotations)."""
    from engine.errors import EngineError
    from engine.media import probe_video
    from training.config import resolve_spec
    from training.data import assign_splits, chunk_spans, discover, frame_count, source_id, video_key

    spec = resolve_spec(cfg)
    minimum = cfg.data.min_seconds if cfg.data.min_seconds is not None else spec.duration
    entries, _ = discover(inputs, cfg.data.extensions)
    if any(not e.split for e in entries):
        assign_splits(entries, val_fraction=cfg.data.val_fraction, test_fraction=cfg.data.test_fraction,
                      seed=cfg.data.split_seed)
    clips = []
    for e in entries:
        try:
            info = probe_video(e.path)
        except EngineError as exc:
            log.warning("skipped %s: %s", e.rel, exc)
            continue
        for k, (start, dur) in enumerate(chunk_spans(info.duration, cfg.data.chunk_seconds, minimum)):
            clips.append(Clip(key=f"{video_key(e)}-{k:03d}", path=e.path, rel=e.rel, source=source_id(e.rel),
                              split=e.split, start=start, duration=dur, frames=frame_count(dur, spec.video_fps)))
    return clips


def main(argv: list[str] | None = None) -> int:
    """`python -m training.stages.detector`: train and calibrate the detector on a data set and put it into a copy
    of a bundle (the stage as `training.run --stages detector` runs it, without the run's preprocessing)."""
    import argparse
    import json
    import shutil
    import sys

    from engine.errors import EngineError
    from engine.nn.bundle import add_hit_detector
    from training.config import ConfigError, load_config
    from training.data import DataError
    from training.loop import StageError, init_distributed
    from training.run import setup_logging

    ap = argparse.ArgumentParser(prog="python -m training.stages.detector", description=main.__doc__)
    ap.add_argument("--data", action="append", required=True, help="a folder of videos with <video>.json event "
                    "times (and a splits.json), or a list file; repeatable")
    ap.add_argument("--out", required=True, help="output folder: stages/detector/, cache/, bundle/")
    ap.add_argument("--config", default="default", help="the training config whose `detector` section is used")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--bundle", default="resources/models/default",
                    help="the bundle copied to OUT/bundle with the detector added ('' for none)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out).expanduser()
    inputs = [str(Path(p).expanduser().resolve()) for p in args.data]
    try:
        cfg = load_config(args.config, [*args.overrides, "data.inputs=" + json.dumps(inputs)])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    handler = setup_logging(out, True)
    if cfg.runtime.threads > 0:
        torch.set_num_threads(cfg.runtime.threads)
    try:
        ctx = RunContext(cfg=cfg, run_dir=out, dist=init_distributed(cfg.runtime.device), progress=not args.no_progress)
        ctx.cache_dir = out / "cache"
        ctx.clips = clips_of_videos(inputs, cfg)
        rec = run(ctx)
        if not rec:
            print("error: no annotated training clips; nothing trained", file=sys.stderr)
            return 2
        if args.bundle:
            dst = out / "bundle"
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(Path(args.bundle).expanduser(), dst)
            det = load_trained_detector(ctx)
            assert det is not None, "the stage finished without a detector"
            add_hit_detector(dst, det)
            print(f"bundle: {dst}")
        cal = rec["calibration"]
        print(f"val F1 {cal['detector']['f1']:.3f} (threshold {cal['threshold']:.3f}); motion-peak baseline F1 "
              f"{cal['baseline']['f1']:.3f} (threshold {cal['baseline_threshold']:.3f})")
    except (ConfigError, DataError, StageError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
