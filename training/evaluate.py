"""Stage 6: evaluate the exported bundle on the test split, through the engine exactly as a user runs it.

For each test clip (up to `evaluate.max_clips`), the engine (`engine.load_engine`, backend auto) generates
`candidates` takes for the segment at the clip's start, from the video file itself; the real audio of that segment
comes from the feature cache. Every metric is a function registered in `METRICS` that takes the `EvalContext`
(the items with real and generated audio, ground truth, the run context) and returns a dict of numbers:

- "onset": onset acc / AP / F1 at each tolerance of `evaluate.tolerances` (training.onsets; MMAudio's recipe with
  our tau), for the generated audio and for the real audio (the detector's ceiling), against the annotated event
  times of `<video>.json` beside the video (training.synthetic and the real dataset builder write it), else against
  onsets detected on the real audio (said so in the output: "gt": "detected").
- "mel": mel L1 of generated vs real segment (a weak similarity number), the VAE's mel reconstruction error and the
  neural vocoder's lsd against Griffin-Lim's on the test segments.

Hooks: another metric (e.g. AI-SFX quality, an alignment classifier) is added with
    @register_metric("alignment")
    def alignment(ctx: EvalContext) -> dict[str, float]: ...
and named in `evaluate.metrics`. Results go to `stages/evaluate/metrics.json` and into the bundle manifest's
`metrics.test`; samples.png shows real vs generated mels, and a few generated WAVs are written beside it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import audio
from training.data import Clip
from training.stages import RunContext, done_record, mark_done, require

log = logging.getLogger(__name__)
NAME = "evaluate"

MetricFn = Callable[["EvalContext"], dict[str, Any]]
METRICS: dict[str, MetricFn] = {}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Register an evaluation metric under `name` (listed in `evaluate.metrics` to run)."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        return fn

    return deco


@dataclass
class EvalItem:
    clip: Clip
    start: float  # segment start in the video (s)
    real: np.ndarray  # (num_samples,) the real audio of the segment
    generated: list[np.ndarray]  # candidates, each (num_samples,)
    gt_times: list[float]  # event times within the segment (s)
    gt_source: str  # "annotated" | "detected"


@dataclass
class EvalContext:
    run: RunContext
    bundle_dir: Path
    items: list[EvalItem]
    out_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self):
        return self.run.spec


def load_ground_truth(video: str | Path) -> list[float] | None:
    """Event times (s from the video start) from `<video>.json`, or None if there is none.

    Accepted: {"event_times": [...]}, {"onsets": [...]}, {"times": [...]}, or {"events": [t, ...] or
    [{"time" | "t" | "onset" | "start": t, ...}, ...]}.
    """
    p = Path(video).with_suffix(".json")
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("ground truth %s is not valid JSON; ignored", p)
        return None
    if isinstance(data, list):
        data = {"events": data}
    if not isinstance(data, dict):
        return None
    for key in ("event_times", "onsets", "times"):
        if isinstance(data.get(key), list) and all(isinstance(x, (int, float)) for x in data[key]):
            return [float(x) for x in data[key]]
    events = data.get("events")
    if isinstance(events, list):
        out = []
        for e in events:
            if isinstance(e, (int, float)):
                out.append(float(e))
            elif isinstance(e, dict):
                for k in ("time", "t", "onset", "start"):
                    if isinstance(e.get(k), (int, float)):
                        out.append(float(e[k]))
                        break
        return out
    return None


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------
@register_metric("onset")
def onset_metrics(ctx: EvalContext) -> dict[str, Any]:
    from training.onsets import match_clip, summarize

    sr, dur = ctx.spec.sample_rate, ctx.spec.duration
    out: dict[str, Any] = {"gt": sorted({it.gt_source for it in ctx.items})}
    for tau in ctx.run.cfg.evaluate.tolerances:
        gen = [match_clip(w, sr, it.gt_times, dur, tau) for it in ctx.items for w in it.generated]
        real = [match_clip(it.real, sr, it.gt_times, dur, tau) for it in ctx.items]
        out[f"generated@{tau:g}s"] = summarize(gen)
        out[f"real@{tau:g}s"] = summarize(real)
    return out


@register_metric("mel")
def mel_metrics(ctx: EvalContext) -> dict[str, Any]:
    import torch

    from training.stages.vae import load_trained_vae, reconstruction_error
    from training.stages.vocoder import griffin_lim_scores, load_trained_vocoder, score, vocode

    spec = ctx.spec
    real = np.stack([it.real for it in ctx.items])
    mels = np.stack([audio.wav_to_mel(w, spec) for w in real])
    gen_l1 = [float(np.abs(audio.wav_to_mel(g, spec) - m).mean()) for it, m in zip(ctx.items, mels)
              for g in it.generated]
    vae = load_trained_vae(ctx.run)
    rec = reconstruction_error(vae, torch.from_numpy(audio.to_mel_image(mels, spec)))
    voc = load_trained_vocoder(ctx.run)
    ours = score(ctx.run, vocode(voc, mels, torch.device("cpu")), real, mels)
    gl, _ = griffin_lim_scores(ctx.run, real, mels, ctx.run.cfg.vocoder.griffin_lim_iters)
    return {"generated_vs_real_mel_l1": float(np.mean(gen_l1)), "vae_mel_l1": rec["mel_l1"],
            "vae_mel_mse": rec["mel_mse"], "vocoder_lsd": ours["lsd"], "griffin_lim_lsd": gl["lsd"],
            "vocoder_mel_l1": ours["mel_l1"], "griffin_lim_mel_l1": gl["mel_l1"]}


# ---------------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------------
def collect(ctx: RunContext, bundle_dir: Path) -> list[EvalItem]:
    """Generate for every evaluated test clip through the engine; pair with the real audio and ground truth."""
    from engine.pipeline import load_engine

    c = ctx.cfg.evaluate
    spec = ctx.spec
    clips = (ctx.split("test") or ctx.split("val") or ctx.split("train"))[: c.max_clips]
    if not ctx.split("test"):
        log.warning("the test split is empty: evaluating on %s clips instead", clips[0].split if clips else "no")
    store = ctx.store(clips)
    engine = load_engine(bundle_dir, backend=c.backend)
    items = []
    try:
        for i, clip in enumerate(clips):
            res = engine.generate(clip.path, clip.start, candidates=c.candidates, seed=ctx.seed + i, steps=c.steps,
                                  guidance=c.guidance)
            real = audio.fit_length(store.wav(i), spec.num_samples)
            gt = load_ground_truth(clip.path)
            if gt is not None:
                times = [t - clip.start for t in gt if 0 <= t - clip.start < spec.duration]
                source = "annotated"
            else:
                from training.onsets import SR, detect_onsets

                onsets, _, _ = detect_onsets(real, spec.sample_rate)
                times = [o / SR for o in onsets]
                source = "detected"
            items.append(EvalItem(clip, clip.start, real, [cand.audio for cand in res.candidates], times, source))
    finally:
        engine.close()
    return items


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage evaluate: done, skipped")
        return rec
    require(ctx, "export")
    c = ctx.cfg.evaluate
    sdir = ctx.stage_dir(NAME)
    sdir.mkdir(parents=True, exist_ok=True)
    bundle_dir = ctx.run_dir / "bundle"
    items = collect(ctx, bundle_dir)
    ectx = EvalContext(ctx, bundle_dir, items, sdir)
    results: dict[str, Any] = {"clips": len(items), "split": items[0].clip.split if items else None,
                               "candidates": c.candidates, "steps": c.steps, "guidance": c.guidance}
    for name in c.metrics:
        if name not in METRICS:
            raise ValueError(f"evaluate.metrics names {name!r}, which is not registered; known: {sorted(METRICS)}")
        results[name] = METRICS[name](ectx)
    write_outputs(ectx, results)
    _add_to_manifest(bundle_dir, results)
    return mark_done(ctx, NAME, {"metrics": _finite(results)})


def write_outputs(ectx: EvalContext, results: dict[str, Any]) -> None:
    from engine.manifest import atomic_write_text
    from engine.media import write_wav
    from training.loop import plot_mels

    spec = ectx.spec
    atomic_write_text(ectx.out_dir / "metrics.json", json.dumps(_finite(results), indent=1) + "\n")
    rows = [(f"{it.clip.rel} @{it.start:g}s",
             [audio.wav_to_mel(it.real, spec), audio.wav_to_mel(it.generated[0], spec)]) for it in ectx.items[:4]]
    if rows:
        plot_mels(rows, ectx.out_dir / "samples.png", "test: real | generated (through the engine)",
                  ["real", "generated"])
    for k, it in enumerate(ectx.items[: ectx.run.cfg.evaluate.write_audio]):
        write_wav(ectx.out_dir / f"test{k}_generated.wav", it.generated[0], spec.sample_rate)
        write_wav(ectx.out_dir / f"test{k}_real.wav", it.real, spec.sample_rate)


def _finite(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, recursively."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _add_to_manifest(bundle_dir: Path, results: dict[str, Any]) -> None:
    from engine.manifest import load_manifest, write_manifest

    m = load_manifest(bundle_dir, verify_files=False)
    m.metrics["test"] = _finite(results)
    write_manifest(bundle_dir, m)
