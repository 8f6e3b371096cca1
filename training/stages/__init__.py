"""The training stages and what they share: the run context, stage folders and the "done" records.

A stage writes its outputs into `runs/<name>/stages/<stage>/`, then `done.json` last (atomically): a stage whose
`done.json` exists (with the digest of the config it was trained with) is skipped; one whose digest differs stops
the run with a message, so a changed config never silently reuses a stale stage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.atomic import atomic_write_text
from engine.spec import SegmentSpec
from training.config import TrainConfig, resolve_spec, stage_digest
from training.data import Clip, ClipStore
from training.loop import Dist, StageError

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """Everything a stage needs: config, spec, run folder, process group, data."""

    cfg: TrainConfig
    run_dir: Path
    dist: Dist
    clips: list[Clip] = field(default_factory=list)
    cache_dir: Path | None = None
    data_report: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    @property
    def spec(self) -> SegmentSpec:
        return resolve_spec(self.cfg)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def seed(self) -> int:
        return self.cfg.runtime.seed

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / "stages" / stage

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]

    def store(self, clips: list[Clip]) -> ClipStore:
        assert self.cache_dir is not None, "data not prepared"
        return ClipStore(self.cache_dir, clips)

    def val_or_train(self, n: int) -> list[Clip]:
        """Up to n validation clips (falling back to train clips when the val split is empty)."""
        clips = self.split("val") or self.split("train")
        return clips[:n]


#: Stages that only package or measure the trained models: cheap, so a stale one is redone rather than refused.
REDONE_WHEN_STALE = ("export", "evaluate")


def done_record(ctx: RunContext, stage: str) -> dict[str, Any] | None:
    """The stage's done.json if it finished with the current config; None if it has not finished."""
    path = ctx.stage_dir(stage) / "done.json"
    if not path.is_file():
        return None
    rec = json.loads(path.read_text(encoding="utf-8"))
    want = stage_digest(ctx.cfg, stage)
    if rec.get("digest") != want and stage in REDONE_WHEN_STALE:
        log.info("stage %s: made from other models or settings (digest %s != %s); it will be redone", stage,
                 rec.get("digest"), want)
        return None
    if rec.get("digest") != want:
        raise StageError(
            f"stage {stage} in {ctx.run_dir} was trained with another config (digest {rec.get('digest')} != {want}). "
            f"Use a new run name (--set name=...), or delete {ctx.stage_dir(stage)} (and the stages after it) "
            "to retrain it."
        )
    return rec


def mark_done(ctx: RunContext, stage: str, info: dict[str, Any]) -> dict[str, Any]:
    rec = {"stage": stage, "digest": stage_digest(ctx.cfg, stage), **info}
    atomic_write_text(ctx.stage_dir(stage) / "done.json", json.dumps(rec, indent=1, default=float) + "\n")
    return rec


def load_trained_optional(ctx: RunContext, stage: str, build: Callable[[dict[str, Any]], torch.nn.Module],
                          weights: str, what: str) -> torch.nn.Module | None:
    """The module an optional stage trained (`build(done_record["config"])` with `weights` of its stage folder, in
    eval mode), or None if the stage did not run or was skipped."""
    from engine.nn.bundle import load_weights

    rec = done_record(ctx, stage)
    if rec is None or rec.get("skipped"):
        return None
    module = build(rec["config"])
    load_weights(module, ctx.stage_dir(stage) / weights, what=what)
    return module.eval()


def require(ctx: RunContext, stage: str) -> dict[str, Any]:
    rec = done_record(ctx, stage)
    if rec is None:
        raise StageError(f"stage {stage} has not finished in {ctx.run_dir}; run it first (or run all stages)")
    return rec
