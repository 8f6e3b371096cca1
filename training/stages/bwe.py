"""Stage "bwe": the 16 -> 48 kHz bandwidth extension (engine.bwe, engine.nn.bwe) on full-band recordings.

The clips' own audio is 16 kHz, so the extension learns from the recordings they were made of: with
`bwe.catalogue` the Foley dataset's catalogued source recordings (split by source recording exactly as the dataset
builder splits them: no test recording is trained on), plus any folder of `bwe.recordings` (split by a seeded hash
of the file's path); files recorded below `bwe.min_rate` are left out (no high band). The training is
`training.bwe.train` (L1 on the high band's log magnitudes, +-20 dB gain augmentation, Adam, the last weights kept,
resumable from its checkpoint); its budget is wall time (`bwe.minutes`) and/or steps (`bwe.steps`).
Validation also measures the log-spectral distance to the 48 kHz originals of the val recordings, against plain
resampling. With no full-band recording the stage is skipped with a log line and the bundle has no extension (its
48 kHz output is then plain resampling, and says so). Outputs: bwe.safetensors, bwe.json, done.json.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from engine.nn.bwe import BandwidthNet, BweConfig
from training.stages import RunContext, done_record, load_trained_optional, mark_done

log = logging.getLogger("training.stages.bwe")
NAME = "bwe"
VAL_LSD_RECORDINGS = 50  # val recordings whose log-spectral distance the done record reports


def recordings(ctx: RunContext) -> tuple[dict[str, list[Path]], list[str]]:
    """The full-band recordings by split, and notes on what was not found."""
    from training import bwe as bwe_train

    c = ctx.cfg.bwe
    paths: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    notes: list[str] = []
    if c.catalogue:
        from training.datasets.sources import default_cache_dir

        cache = Path(c.cache).expanduser() if c.cache else default_cache_dir()
        try:
            found = bwe_train.recordings_by_split(cache)
        except SystemExit as exc:  # no catalogue: the dataset was not fetched here
            notes.append(str(exc).removeprefix("error: "))
        else:
            for k, v in found.items():
                paths[k] += [p for p in v if _rate(p) >= c.min_rate]
    if c.recordings:
        found = bwe_train.folder_recordings([Path(r) for r in c.recordings], seed=ctx.seed, min_rate=c.min_rate)
        for k, v in found.items():
            paths[k] += v
    return paths, notes


def _rate(path: Path) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(path)).samplerate)
    except (RuntimeError, sf.LibsndfileError):
        return 0


def load_trained_bwe(ctx: RunContext) -> BandwidthNet | None:
    """The trained extension, or None if the stage did not run, was skipped or disabled."""
    return load_trained_optional(ctx, NAME, lambda c: BandwidthNet(BweConfig.from_dict(c)), "bwe.safetensors",
                                 "bandwidth extension")


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage bwe: done, skipped")
        return rec
    c, d = ctx.cfg.bwe, ctx.dist
    if not c.enabled:
        return mark_done(ctx, NAME, {"skipped": "bwe.enabled is false"})
    if ctx.spec.sample_rate != 16_000:
        return mark_done(ctx, NAME, {"skipped": f"the spec generates at {ctx.spec.sample_rate} Hz, the extension "
                                                "takes 16 kHz"})
    paths, notes = recordings(ctx)
    if not paths["train"]:
        why = f"no full-band (>= {c.min_rate} Hz) training recording: set bwe.catalogue or bwe.recordings"
        log.info("stage bwe: skipped (%s%s); the bundle's 48 kHz output will be plain resampling", why,
                 "".join(f"; {n}" for n in notes))
        return mark_done(ctx, NAME, {"skipped": why, "notes": notes})
    if not d.is_main:  # tiny and quick: one process trains it, the others wait
        d.barrier()
        return done_record(ctx, NAME) or {}
    from training import bwe as bwe_train

    threads = torch.get_num_threads()
    if c.threads > 0:
        torch.set_num_threads(c.threads)
    try:
        out = ctx.stage_dir(NAME)
        log.info("stage bwe: %d train / %d val / %d test recordings, budget %s", len(paths["train"]),
                 len(paths["val"]), len(paths["test"]),
                 " and ".join(x for x in (f"{c.minutes:g} min" if c.minutes else "", f"{c.steps} steps" if c.steps
                                          else "") if x))
        trained = bwe_train.train(out, paths, minutes=c.minutes, steps=c.steps, seed=ctx.seed, batch=c.batch_size,
                                  lr=c.lr, channels=c.channels, val_every=c.val_every, inputs=tuple(c.inputs))
        net = bwe_train.load_net(out)
        lsd = bwe_train.lsd_rows(net, paths["val"][:VAL_LSD_RECORDINGS]) if paths["val"] else {}
    finally:
        torch.set_num_threads(threads)
    ext, res = lsd.get("extended", {}), lsd.get("resampled", {})
    if ext:
        log.info("stage bwe: val LSD %.2f dB (resampling %.2f dB), 8-24 kHz %.2f dB (%.2f dB)",
                 ext["lsd_full_db"], res["lsd_full_db"], ext["lsd_8k_24k_db"], res["lsd_8k_24k_db"])
    rec = mark_done(ctx, NAME, {
        "config": trained["config"], "inputs": trained["inputs"], "steps": trained["steps"],
        "best_val_step": trained["best_val_step"],
        "recordings": {k: len(v) for k, v in paths.items()},
        "metrics": {"best_val_l1": trained["best_val_l1"], "val_lsd": lsd},
    })
    d.barrier()
    return rec
