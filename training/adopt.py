"""Start a run from a shipped bundle: its VAE, video projection and vocoder choice become the run's finished stages.

`python -m training.run --from-bundle resources/models/default ...` trains only what the bundle does not fix (the
denoiser, warm-started with `denoiser.init_from`, the hit detector), on exactly the latent space and video
features the bundle was made with, so a new denoiser can be warm-started from the bundle's and nothing upstream
has to be retrained (the shipped VAE took 28 min, the projection 5 min on 2 cores).

Each adopted stage folder gets the bundle's weights in the stage's own layout and a `done.json` with the run's
config digest and `"adopted_from"` (the bundle and its weights' sha256). Where the run's config disagrees with
the bundle (another VAE shape, another projection kernel), adopting stops with the difference.

A run on another mel front-end than the bundle's (`spec: foley-16k` from a `diff-foley` bundle) adopts only what
does not depend on the mel (the projection, the vocoder choice) and trains its own VAE (warm-started with
`vae.init_from`); the specs must agree on everything else (rate, length, video frames, latent shape).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from engine.errors import BundleError
from engine.manifest import load_manifest
from engine.spec import SegmentSpec
from training.stages import RunContext, done_record, mark_done

log = logging.getLogger(__name__)

ADOPTED_STAGES = ("vae", "vocoder", "projection")


MEL_FIELDS = ("name", "mel_kind", "fmin", "fmax")  # what a front-end change may change (every size stays)


def mel_only_difference(a: SegmentSpec, b: SegmentSpec) -> bool:
    """Whether two segment specs differ only in the mel front-end's band limits or kind."""
    da, db = a.to_dict(), b.to_dict()
    return all(da[k] == db[k] for k in da if k not in MEL_FIELDS)


def adopt_bundle(ctx: RunContext, bundle: str | Path) -> list[str]:
    """Write the run's vae / vocoder / projection stages from `bundle` where they are not done; returns the
    stages written."""
    from safetensors.torch import load_file, save_file

    bdir = Path(bundle).expanduser().resolve()
    m = load_manifest(bdir, onnx=False)
    comps = m.components
    same_mel = m.spec == ctx.spec
    if not same_mel and not mel_only_difference(m.spec, ctx.spec):
        raise BundleError(f"bundle {bdir} has spec {m.spec.name!r}, the run {ctx.spec.name!r}, and they differ in more "
                          "than the mel front-end")
    written: list[str] = []
    provenance = {"bundle": str(bdir), "bundle_name": m.name}

    if not same_mel:
        log.info("the bundle's mel front-end (%s) is not the run's (%s): its VAE is not adopted", m.spec.name,
                 ctx.spec.name)
    elif done_record(ctx, "vae") is None:
        from training.stages.vae import build_vae

        vc = comps["vae"]
        want = build_vae(ctx).config.to_dict()
        got = dict(vc.config)
        diff = {k: (got.get(k), v) for k, v in want.items() if k != "latent_scale" and got.get(k) != v}
        if diff:
            raise BundleError(f"the bundle's VAE differs from the run's vae config: {diff}")
        sdir = ctx.stage_dir("vae")
        sdir.mkdir(parents=True, exist_ok=True)
        state = {k: v.float().contiguous() for k, v in load_file(str(bdir / vc.file)).items()}
        save_file(state, str(sdir / "vae.safetensors"))
        mark_done(ctx, "vae", {"config": got, "latent_scale": float(got["latent_scale"]),
                               "metrics": m.metrics.get("vae", {}), "adopted_from": {**provenance,
                                                                                   "sha256": vc.sha256}})
        written.append("vae")

    if done_record(ctx, "projection") is None:
        from training.stages.projection import build_projection, proj_config_dict

        fc = comps.get("frame_encoder")
        if fc is None or fc.type != "efficientnet-lite0-projection":
            raise BundleError(f"bundle {bdir} has no EfficientNet-Lite0 frame encoder to adopt the projection from")
        proj = build_projection(ctx)
        state = {k[len("projection."):]: v.float() for k, v in load_file(str(bdir / fc.file)).items()
                 if k.startswith("projection.")}
        try:
            proj.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"the bundle's projection does not fit the run's projection config ({exc})") from exc
        sdir = ctx.stage_dir("projection")
        sdir.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in proj.state_dict().items()}, str(sdir / "projection.safetensors"))
        mark_done(ctx, "projection", {"config": proj_config_dict(ctx), "metrics": m.metrics.get("projection", {}),
                                      "adopted_from": {**provenance, "sha256": fc.sha256}})
        written.append("projection")

    if done_record(ctx, "vocoder") is None:
        voc = comps["vocoder"]
        if voc.type != "griffin-lim":
            raise BundleError(f"bundle {bdir} has a {voc.type} vocoder; only a Griffin-Lim bundle can be adopted "
                              "(train the vocoder stage instead)")
        if ctx.cfg.vocoder.use == "neural":
            raise BundleError("vocoder.use is 'neural' but the adopted bundle uses Griffin-Lim")
        ctx.stage_dir("vocoder").mkdir(parents=True, exist_ok=True)
        metrics: dict[str, Any] = dict(m.metrics.get("vocoder", {}))
        mark_done(ctx, "vocoder", {"config": {}, "metrics": metrics, "beats_griffin_lim": False,
                                   "griffin_lim_iters": int(voc.config.get("n_iter", 32)),
                                   "adopted_from": provenance})
        written.append("vocoder")
    if written:
        log.info("adopted %s from bundle %s", ", ".join(written), bdir)
    return written
