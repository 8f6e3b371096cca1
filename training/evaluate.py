"""Evaluate a bundle on the test split, through the engine exactly as a user runs it (stage 6, and a command).

    python -m training.evaluate BUNDLE --data DIR [--cache CACHE] [--max-clips 100] [--out OUT]

For each test clip (up to `evaluate.max_clips`) the engine (`engine.load_engine`, backend auto) generates
`candidates` takes for the segment at the clip's start, from the video file itself; the real audio of that segment
comes from the feature cache. Besides the generated audio, every metric is computed for the controls named in
`evaluate.controls`, so each number has its ceiling and its floor beside it:

- "real": the real test audio (upper bound: what a perfect generator would score);
- "vocoded": the real mel through the bundle's vocoder alone (the vocoder's ceiling);
- "reconstruction": the real mel through the bundle's VAE (encode, decode) and vocoder (the decoder's ceiling);
- "shuffled": audio generated for another test video (clip i + 1), scored against clip i (chance).

Every metric is a function registered in `METRICS` that takes the `EvalContext` and returns a dict of numbers:

- "onset": onset acc / AP / F1 at each tolerance of `evaluate.tolerances` (training.onsets; MMAudio's recipe with
  our tau) against the annotated event times of `<video>.json` beside the video (training.synthetic and the real
  dataset builder write it), else against onsets detected on the real audio (said so: "gt": "detected").
- "category": 1-NN category accuracy in the AI-SFX embedding (training.sfx_embed): each sound takes the category
  of its nearest *real* test sound other than its own clip's; a clip's category is its most frequent annotated event
  category in the segment (also reported: the scene family).
- "fad": Fréchet distance in the AI-SFX embedding (2.3 s blocks) to the real audio of the validation split.
- "alignment": share of (video, audio) pairs that a Diff-Foley-style audio-visual alignment classifier, trained on the
  training split (training.alignment), judges in sync.
- "mel": mel L1 of generated vs real segment, the VAE's mel reconstruction error and the neural vocoder's lsd
  against Griffin-Lim's (training runs only: needs the run's trained VAE and vocoder).

Another metric is added with `@register_metric("name")` and named in `evaluate.metrics`. Results go to
`metrics.json` (in the stage folder, or --out) and into the bundle manifest's `metrics.test` (the stage only);
samples.png shows real vs generated mels, and a few generated WAVs are written beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections import Counter
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
CONTROLS = ("vocoded", "reconstruction", "shuffled", "gt_hits", "no_hits")
HIT_CONTROLS = ("gt_hits", "no_hits")  # generated with the annotated onsets as hits / with none (hit-aware bundles)


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
    category: str | None = None  # the most frequent annotated event category in the segment
    family: str | None = None  # the scene family of the real dataset ("walk", "impact", ...)
    controls: dict[str, list[np.ndarray]] = field(default_factory=dict)  # "reconstruction", "shuffled"
    hits: list[float] = field(default_factory=list)  # the hits the "generated" condition used
    hits_source: str = "none"
    shifted: dict[float, list[np.ndarray]] = field(default_factory=dict)  # shift test: applied shift -> takes
    settings: dict[str, Any] = field(default_factory=dict)  # the generated takes' settings (sampler, hits, ...)

    def audio(self, condition: str) -> list[np.ndarray]:
        if condition == "generated":
            return self.generated
        if condition == "real":
            return [self.real]
        return self.controls.get(condition, [])


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

    @property
    def conditions(self) -> list[str]:
        """generated, real, then the controls that were computed."""
        return ["generated", "real"] + [c for c in CONTROLS if self.items and c in self.items[0].controls]


def _read_annotation(video: str | Path) -> dict[str, Any] | list[Any] | None:
    p = Path(video).with_suffix(".json")
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("ground truth %s is not valid JSON; ignored", p)
        return None


def load_ground_truth(video: str | Path) -> list[float] | None:
    """Event times (s from the video start) from `<video>.json`, or None if there is none.

    Accepted: {"event_times": [...]}, {"onsets": [...]}, {"times": [...]}, or {"events": [t, ...] or
    [{"time" | "t" | "onset" | "start": t, ...}, ...]}.
    """
    data = _read_annotation(video)
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


def load_categories(video: str | Path, start: float, duration: float) -> tuple[str | None, str | None]:
    """(most frequent event category within [start, start + duration), scene family) from `<video>.json`."""
    data = _read_annotation(video)
    if not isinstance(data, dict):
        return None, None
    cats = [e.get("category") for e in data.get("events", []) if isinstance(e, dict)
            and isinstance(e.get("time"), (int, float)) and start <= e["time"] < start + duration
            and isinstance(e.get("category"), str)]
    family = data.get("scene", {}).get("family") if isinstance(data.get("scene"), dict) else None
    return (Counter(cats).most_common(1)[0][0] if cats else None), family


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------
@register_metric("onset")
def onset_metrics(ctx: EvalContext) -> dict[str, Any]:
    from training.onsets import match_clip, summarize

    sr, dur = ctx.spec.sample_rate, ctx.spec.duration
    out: dict[str, Any] = {"gt": sorted({it.gt_source for it in ctx.items})}
    for tau in ctx.run.cfg.evaluate.tolerances:
        for cond in ctx.conditions:
            res = [match_clip(w, sr, it.gt_times, dur, tau) for it in ctx.items for w in it.audio(cond)]
            out[f"{cond}@{tau:g}s"] = summarize(res)
    return out


def _sfx(ctx: EvalContext) -> dict[str, Any]:
    """AI-SFX embeddings of every condition's audio (computed once, shared by "category" and "fad")."""
    if "sfx" not in ctx.extra:
        from training.sfx_embed import SfxEmbedder

        emb = SfxEmbedder()
        sr = ctx.spec.sample_rate
        by_cond = {c: [emb.embed(it.audio(c), sr) for it in ctx.items] for c in ctx.conditions}
        ctx.extra["sfx"] = {"embedder": emb, "by_condition": by_cond}
    return ctx.extra["sfx"]


@register_metric("category")
def category_metrics(ctx: EvalContext) -> dict[str, Any]:
    from training.sfx_embed import nearest_label_accuracy

    sfx = _sfx(ctx)["by_condition"]
    idx = [i for i, it in enumerate(ctx.items) if it.category is not None]
    if len(idx) < 2:
        return {"note": "fewer than 2 clips with annotated categories"}
    refs = np.stack([sfx["real"][i][0].clip for i in idx])
    cats = [ctx.items[i].category for i in idx]
    fams = [ctx.items[i].family or "" for i in idx]
    out: dict[str, Any] = {"clips": len(idx), "categories": len(set(cats)),
                           "chance": float(max(Counter(cats).values()) / len(cats))}
    for cond in ctx.conditions:
        q, qc, qf, ex = [], [], [], []
        for k, i in enumerate(idx):
            for e in sfx[cond][i]:
                q.append(e.clip)
                qc.append(cats[k])
                qf.append(fams[k])
                ex.append(k)
        if not q:
            continue
        qa = np.stack(q)
        out[cond] = {"category_acc": nearest_label_accuracy(qa, qc, refs, cats, ex),
                     "family_acc": nearest_label_accuracy(qa, qf, refs, fams, ex)}
    return out


@register_metric("fad")
def fad_metrics(ctx: EvalContext) -> dict[str, Any]:
    from training.sfx_embed import frechet_distance

    sfx = _sfx(ctx)
    ref_clips = ctx.run.split("val")[: ctx.run.cfg.evaluate.max_clips] or ctx.run.split("train")[:100]
    store = ctx.run.store(ref_clips)
    n = ctx.spec.num_samples
    ref = sfx["embedder"].embed([audio.fit_length(store.wav(i), n) for i in range(len(ref_clips))],
                                ctx.spec.sample_rate)
    ref_blocks = np.concatenate([e.blocks for e in ref])
    out: dict[str, Any] = {"reference": f"{ref_clips[0].split if ref_clips else '-'} split real audio",
                           "reference_clips": len(ref_clips)}
    for cond in ctx.conditions:
        blocks = [e.blocks for per in sfx["by_condition"][cond] for e in per]
        if blocks:
            out[cond] = frechet_distance(np.concatenate(blocks), ref_blocks)
    return out


@register_metric("alignment")
def alignment_metrics(ctx: EvalContext) -> dict[str, Any]:
    from training.alignment import AlignConfig, load_or_train, predict

    cfg = AlignConfig(steps=ctx.run.cfg.evaluate.alignment_steps,
                      seed=ctx.run.seed)
    model, info = load_or_train(ctx.run.cache_dir, ctx.run.split("train"), ctx.run.split("val"), ctx.spec, cfg,
                                progress=ctx.run.progress)
    store = ctx.run.store([it.clip for it in ctx.items])
    frames = ctx.spec.num_frames
    feats = []
    for i in range(len(ctx.items)):
        f = store.feats(i).astype(np.float32)[:frames]
        feats.append(np.pad(f, ((0, frames - len(f)), (0, 0))) if len(f) < frames else f)
    threshold = float(info.get("threshold", 0.5))  # calibrated on the validation split
    out: dict[str, Any] = {"classifier": {k: v for k, v in info.items() if k != "config"}}
    for cond in ctx.conditions:
        v, m = [], []
        for i, it in enumerate(ctx.items):
            for w in it.audio(cond):
                v.append(feats[i])
                m.append(audio.wav_to_mel(w, ctx.spec))
        if not v:
            continue
        p = predict(model, np.stack(v), np.stack(m))
        out[cond] = {"accuracy": float(np.mean(p > threshold)), "mean_p": float(np.mean(p))}
    return out


def _onset_envelope(wav: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """librosa's onset strength of a waveform (the onset metric's front end) and its frame rate."""
    import librosa

    from training.onsets import SR, _resample

    env = librosa.onset.onset_strength(y=_resample(wav, sr), sr=SR, hop_length=512)
    return env.astype(np.float64), SR / 512.0


def estimate_shift(moved: np.ndarray, base: np.ndarray, sr: int, max_shift: float = 1.0) -> float:
    """The lag (s) that best aligns the onset envelope of `moved` with that of `base` (positive: `moved` is
    later), by normalised cross-correlation over lags within +-max_shift."""
    a, rate = _onset_envelope(moved, sr)
    b, _ = _onset_envelope(base, sr)
    a, b = a - a.mean(), b - b.mean()
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    best, best_lag = -np.inf, 0
    for lag in range(-round(max_shift * rate), round(max_shift * rate) + 1):
        x, y = (a[lag:], b[: n - lag]) if lag >= 0 else (a[: n + lag], b[-lag:])
        if len(x) < n // 2:
            continue
        c = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9))
        if c > best:
            best, best_lag = c, lag
    return best_lag / rate


@register_metric("shift")
def shift_metrics(ctx: EvalContext) -> dict[str, Any]:
    """The shift test: each clip generated with its annotated hits and with them moved by each shift (same noise).
    The generated onsets' shift, estimated by cross-correlating onset envelopes against the unmoved take, is fitted
    against the applied shift (slope 1 and intercept 0: the sound follows the hits); "kept_at_old" is, for the
    largest shift, the share of the unmoved take's onset matches at the old hit times that are still there (the
    sound moved rather than being duplicated)."""
    from training.onsets import match_clip

    sr, dur = ctx.spec.sample_rate, ctx.spec.duration
    items = [it for it in ctx.items if it.shifted and "gt_hits" in it.controls]
    if not items:
        return {"note": "no shifted generations (a bundle without hits, or evaluate.shifts empty)"}
    applied, est = [], []
    per_shift: dict[str, Any] = {}
    for s in sorted(items[0].shifted):
        e = [estimate_shift(it.shifted[s][0], it.controls["gt_hits"][0], sr) for it in items]
        applied += [s] * len(e)
        est += e
        per_shift[f"{s:+g}"] = {"mean_estimated": float(np.mean(e)), "median_estimated": float(np.median(e))}
    slope, intercept = np.polyfit(np.asarray(applied), np.asarray(est), 1)
    big = max(items[0].shifted, key=lambda x: (abs(x), x))

    def hits_at(wavs: list[np.ndarray], times: list[float]) -> float:
        return float(sum(match_clip(w, sr, times, dur, 0.1).hits for w in wavs))

    before = sum(hits_at(it.controls["gt_hits"], it.gt_times) for it in items)
    after = sum(hits_at(it.shifted[big], it.gt_times) for it in items)
    moved_to = sum(hits_at(it.shifted[big], [t + big for t in it.gt_times if 0 <= t + big < dur]) for it in items)
    return {"clips": len(items), "slope": float(slope), "intercept": float(intercept), "per_shift": per_shift,
            "largest_shift": float(big), "matches_at_old_before": before, "matches_at_old_after": after,
            "kept_at_old": after / before if before else None, "matches_at_new_after": moved_to}


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
# Generation and controls
# ---------------------------------------------------------------------------------------------------------------
def _reconstruct(engine: Any, bundle_dir: Path, real_mels: np.ndarray) -> np.ndarray:
    """Real segments' mels (N, n_mels, frames) through the bundle's VAE (posterior mean) and its vocoder, as the
    engine decodes."""
    import torch

    from engine.nn.bundle import load_component

    vae = load_component(bundle_dir, engine.manifest, "vae").eval()
    mels = audio.to_mel_image(real_mels, engine.spec)
    out = []
    with torch.inference_mode():
        for k in range(0, len(mels), 8):
            z = vae.encode(torch.from_numpy(mels[k : k + 8].astype(np.float32))).numpy()
            out.append(engine.mel_to_audio(engine.latents_to_mel(z), list(range(k, k + len(z)))))
    return np.concatenate(out)


def _interval_arg(value: Any) -> Any:
    """evaluate.guidance_interval -> FoleyEngine.generate's: "default" (the bundle's), None (every step), (lo, hi)."""
    if value == "default":
        return "default"
    return tuple(value) if isinstance(value, (list, tuple)) and value else None


def collect(ctx: RunContext, bundle_dir: Path, *, split: str = "test") -> list[EvalItem]:
    """Generate for every evaluated clip through the engine; pair with the real audio, ground truth and controls."""
    from tqdm import tqdm

    from engine.pipeline import load_engine

    c = ctx.cfg.evaluate
    controls = list(c.controls)
    spec = ctx.spec
    clips = (ctx.split(split) or ctx.split("val") or ctx.split("train"))[: c.max_clips]
    if not ctx.split(split):
        log.warning("the %s split is empty: evaluating on %s clips instead", split,
                    clips[0].split if clips else "no")
    store = ctx.store(clips)
    precision = c.precision
    engine = load_engine(bundle_dir, backend=c.backend,
                         backend_options={"precision": precision} if precision != "auto" else None)
    if c.hits not in ("auto", "truth", "none"):
        raise ValueError(f"evaluate.hits must be auto, truth or none, got {c.hits!r}")
    items = []

    def gen(clip: Clip, start: float, seed: int, hits: Any) -> Any:
        return engine.generate(clip.path, start, candidates=c.candidates, seed=seed, steps=c.steps,
                               guidance=c.guidance, hits=hits, sample_rate=engine.sample_rate,
                               guidance_interval=_interval_arg(c.guidance_interval),
                               solver_order=c.solver_order)

    def hits_for(times: list[float]) -> Any:  # the hits of the "generated" condition for a clip's annotated onsets
        return {"auto": "auto", "truth": times, "none": []}[c.hits]

    try:
        for i, clip in enumerate(tqdm(clips, desc="generate", unit="clip", disable=not ctx.progress, leave=False)):
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
            res = gen(clip, clip.start, ctx.seed + i, hits_for(times))
            category, family = load_categories(clip.path, clip.start, spec.duration)
            item = EvalItem(clip, clip.start, real, [cand.audio for cand in res.candidates], times, source,
                            category, family, hits=list(res.candidates[0].settings.get("hits", [])),
                            hits_source=str(res.candidates[0].settings.get("hits_source", "none")),
                            settings=dict(res.candidates[0].settings))
            if engine.takes_hits:  # same seed: only the hits differ from the generated condition
                wants_gt = "gt_hits" in controls or ("shift" in c.metrics and i < c.shift_clips)
                if wants_gt:
                    item.controls["gt_hits"] = [x.audio for x in gen(clip, clip.start, ctx.seed + i, times).candidates]
                if "no_hits" in controls:
                    item.controls["no_hits"] = [x.audio for x in gen(clip, clip.start, ctx.seed + i, []).candidates]
                if "shift" in c.metrics and i < c.shift_clips:
                    for sft in c.shifts:
                        moved = [t + sft for t in times if 0 <= t + sft < spec.duration]
                        item.shifted[float(sft)] = [x.audio for x in gen(clip, clip.start, ctx.seed + i,
                                                                         moved).candidates]
            items.append(item)
        if "shuffled" in controls and len(items) > 1:
            # audio generated for clip i + 1's video (and its hits), judged against clip i: what a generator that
            # ignores the picture would score. Same seeds as the real generation, so only the video differs.
            for i, it in enumerate(items):
                j = (i + 1) % len(items)
                res = gen(items[j].clip, items[j].start, ctx.seed + i, hits_for(items[j].gt_times))
                it.controls["shuffled"] = [cand.audio for cand in res.candidates]
        real_mels = np.stack([audio.wav_to_mel(it.real, spec) for it in items]) \
            if items and {"vocoded", "reconstruction"} & set(controls) else None
        if "vocoded" in controls and real_mels is not None:
            voc = engine.mel_to_audio(real_mels, list(range(len(real_mels))))
            for it, w in zip(items, voc):
                it.controls["vocoded"] = [w]
        if "reconstruction" in controls and real_mels is not None:
            rec = _reconstruct(engine, bundle_dir, real_mels)
            for it, w in zip(items, rec):
                it.controls["reconstruction"] = [w]
    finally:
        engine.close()
    return items


def evaluate_bundle(ctx: RunContext, bundle_dir: Path, out_dir: Path, *, split: str = "test") -> dict[str, Any]:
    """Generate, compute every metric of `evaluate.metrics`, write metrics.json, samples.png and WAVs to out_dir."""
    c = ctx.cfg.evaluate
    for name in c.metrics:
        if name not in METRICS:
            raise ValueError(f"evaluate.metrics names {name!r}, which is not registered; known: {sorted(METRICS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    items = collect(ctx, bundle_dir, split=split)
    ectx = EvalContext(ctx, bundle_dir, items, out_dir)
    results: dict[str, Any] = {"clips": len(items), "split": items[0].clip.split if items else None,
                               "candidates": c.candidates, "steps": c.steps, "guidance": c.guidance,
                               "guidance_interval": _effective_interval(items), "solver_order": c.solver_order,
                               "backend": c.backend, "precision": c.precision, "hits": c.hits,
                               "hits_sources": dict(Counter(it.hits_source for it in items)),
                               "conditions": ectx.conditions}
    for name in c.metrics:
        log.info("metric %s", name)
        results[name] = METRICS[name](ectx)
    write_outputs(ectx, results)
    return results


def _effective_interval(items: list[EvalItem]) -> list[float]:
    """The guidance interval the takes were sampled with ([] = every step), from their settings."""
    gi = items[0].settings.get("guidance_interval") if items else None
    return list(gi) if gi else []


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage evaluate: done, skipped")
        return rec
    require(ctx, "export")
    bundle_dir = ctx.run_dir / "bundle"
    results = evaluate_bundle(ctx, bundle_dir, ctx.stage_dir(NAME))
    _add_to_manifest(bundle_dir, results)
    return mark_done(ctx, NAME, {"metrics": _finite(results)})


def write_outputs(ectx: EvalContext, results: dict[str, Any]) -> None:
    from engine.atomic import atomic_write_text
    from engine.media import write_wav
    from training.loop import plot_mels

    spec = ectx.spec
    atomic_write_text(ectx.out_dir / "metrics.json", json.dumps(_finite(results), indent=1) + "\n")
    atomic_write_text(ectx.out_dir / "summary.md", summary_table(results) + "\n")
    rows = [(f"{it.clip.rel} @{it.start:g}s" + (f" ({it.category})" if it.category else ""),
             [audio.wav_to_mel(it.real, spec), audio.wav_to_mel(it.generated[0], spec)]
             + ([audio.wav_to_mel(it.controls["shuffled"][0], spec)] if "shuffled" in it.controls else []))
            for it in ectx.items[:4]]
    if rows:
        cols = ["real", "generated"] + (["generated for another video"] if len(rows[0][1]) > 2 else [])
        plot_mels(rows, ectx.out_dir / "samples.png", "test: real | generated (through the engine)", cols)
    hit_rows = [it for it in ectx.items if "gt_hits" in it.controls][:4]
    if hit_rows:  # the hits drawn on the mels (cyan ticks at the bottom): do the sounds follow them?
        big = max(hit_rows[0].shifted, key=lambda x: (abs(x), x)) if hit_rows[0].shifted else None
        rows, marks = [], []
        for it in hit_rows:
            mels = [audio.wav_to_mel(it.real, spec), audio.wav_to_mel(it.generated[0], spec),
                    audio.wav_to_mel(it.controls["gt_hits"][0], spec)]
            mk = [it.gt_times, it.hits, it.gt_times]
            if big is not None:
                mels.append(audio.wav_to_mel(it.shifted[big][0], spec))
                mk.append([t + big for t in it.gt_times if 0 <= t + big < spec.duration])
            if "no_hits" in it.controls:
                mels.append(audio.wav_to_mel(it.controls["no_hits"][0], spec))
                mk.append([])
            rows.append((f"{it.clip.rel}" + (f" ({it.category})" if it.category else ""), mels))
            marks.append(mk)
        cols = ["real (annotated onsets)", f"generated ({ectx.run.cfg.evaluate.hits} hits)", "true hits"]
        if big is not None:
            cols.append(f"true hits moved {big:+g} s")
        if "no_hits" in hit_rows[0].controls:
            cols.append("no hits")
        plot_mels(rows, ectx.out_dir / "hits-samples.png", "test: the hits (cyan ticks) and the generated sound",
                  cols, markers=marks, seconds=spec.duration)
    for k, it in enumerate(ectx.items[: ectx.run.cfg.evaluate.write_audio]):
        write_wav(ectx.out_dir / f"test{k}_generated.wav", it.generated[0], spec.sample_rate)
        write_wav(ectx.out_dir / f"test{k}_real.wav", it.real, spec.sample_rate)


def fmt_metric(x: Any, pct: bool = False) -> str:
    """A metric for a Markdown table or a model card: '-' when missing or not finite, a percentage for shares,
    3 significant digits below 1 (onset AP, MSE), 3 decimals below 10, one decimal above (FAD)."""
    if not isinstance(x, (int, float)) or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:.1f} %" if pct else f"{x:.3g}" if abs(x) < 1 else f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def summary_table(results: dict[str, Any]) -> str:
    """One Markdown row per condition with the headline numbers (what docs/results.md shows)."""
    conds = results.get("conditions", ["generated", "real"])
    tau = "0.1s"
    head = ["condition", f"onset acc @{tau}", f"onset AP @{tau}", "category acc", "family acc", "FAD (AI-SFX)",
            "alignment acc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fmt = fmt_metric
    for cond in conds:
        on = results.get("onset", {}).get(f"{cond}@0.1s", {})
        cat = results.get("category", {}).get(cond, {})
        al = results.get("alignment", {}).get(cond, {})
        row = [cond, fmt(on.get("acc"), True), fmt(on.get("ap")), fmt(cat.get("category_acc"), True),
               fmt(cat.get("family_acc"), True), fmt(results.get("fad", {}).get(cond)), fmt(al.get("accuracy"), True)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


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


# ---------------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="a bundle folder (with manifest.json)")
    ap.add_argument("--data", action="append", required=True, metavar="PATH",
                    help="the data set (a folder with splits.json, e.g. from training.datasets.foley_real); "
                         "its train split trains the alignment classifier, val is FAD's reference, test is scored")
    ap.add_argument("--cache", help="feature cache folder (reuse a training run's runs/<name>/cache to skip "
                                    "preprocessing; default: <out>/cache)")
    ap.add_argument("--config", default="default", help="training config whose data/evaluate settings apply")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (e.g. evaluate.steps=10)")
    ap.add_argument("--split", default="test", choices=["test", "val", "train"])
    ap.add_argument("--max-clips", type=int, help="clips to evaluate (evaluate.max_clips)")
    ap.add_argument("--candidates", type=int, help="takes per clip (evaluate.candidates)")
    ap.add_argument("--steps", type=int, help="sampler steps (evaluate.steps)")
    ap.add_argument("--backend", help="engine backend: auto, onnx or torch (evaluate.backend)")
    ap.add_argument("--precision", help="ONNX denoiser precision: auto, fp32 or int8 (evaluate.precision)")
    ap.add_argument("--metrics", help="comma-separated metric names (evaluate.metrics); known: "
                                      + ",".join(sorted(METRICS)))
    ap.add_argument("--controls", help="comma-separated controls (evaluate.controls): vocoded,reconstruction,shuffled,"
                                       "gt_hits,no_hits; 'none' for none")
    ap.add_argument("--hits", choices=["auto", "truth", "none"],
                    help="hits of the generated condition (evaluate.hits): the detector's, the annotated onsets, none")
    ap.add_argument("--out", help="output folder (default: eval/<bundle name>)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    from engine.errors import EngineError
    from engine.manifest import load_manifest
    from training.config import ConfigError, load_config
    from training.data import DataError
    from training.loop import init_distributed
    from training.run import prepare_data, setup_logging

    args = parse_args(argv)
    bundle = Path(args.bundle).expanduser().resolve()
    try:
        manifest = load_manifest(bundle)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser() if args.out else Path("eval") / manifest.name
    overrides = list(args.overrides)
    overrides.append("data.inputs=" + json.dumps([str(Path(p).expanduser().resolve()) for p in args.data]))
    overrides.append("data.cache_dir=" + json.dumps(str(Path(args.cache).expanduser() if args.cache
                                                        else out / "cache")))
    overrides.append(f"spec={json.dumps(manifest.spec.name)}")
    for flag, key in (("max_clips", "max_clips"), ("candidates", "candidates"), ("steps", "steps"),
                      ("backend", "backend"), ("precision", "precision"), ("hits", "hits")):
        if getattr(args, flag) is not None:
            overrides.append(f"evaluate.{key}={json.dumps(getattr(args, flag))}")
    if args.metrics:
        overrides.append("evaluate.metrics=" + json.dumps([m.strip() for m in args.metrics.split(",") if m.strip()]))
    if args.controls:
        ctl = [] if args.controls == "none" else [c.strip() for c in args.controls.split(",") if c.strip()]
        overrides.append("evaluate.controls=" + json.dumps(ctl))
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = [m for m in cfg.evaluate.metrics if m not in METRICS] + [c for c in cfg.evaluate.controls
                                                                   if c not in CONTROLS]
    if bad:
        print(f"error: unknown metric or control {bad}; metrics: {sorted(METRICS)}, controls: {list(CONTROLS)}",
              file=sys.stderr)
        return 2
    if "mel" in cfg.evaluate.metrics:
        print("error: the 'mel' metric needs a training run's VAE and vocoder; run it through training.run",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    handler = setup_logging(None, True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    ctx = RunContext(cfg=cfg, run_dir=out, dist=init_distributed("cpu"), progress=not args.no_progress)
    try:
        prepare_data(cfg, ctx)
        results = evaluate_bundle(ctx, bundle, out, split=args.split)
    except (DataError, ConfigError, EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
    results["bundle"] = {"name": manifest.name, "path": str(bundle)}
    from engine.atomic import atomic_write_text

    atomic_write_text(out / "metrics.json", json.dumps(_finite(results), indent=1) + "\n")
    print(summary_table(results))
    print(f"metrics: {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
