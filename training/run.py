"""`python -m training.run`: train every model of a bundle from a folder of videos, stage by stage, resumably.

    python -m training.run --config tiny                                # CI: synthetic clips, all stages, minutes
    python -m training.run --config default --data /path/to/videos      # the shipped model's recipe
    python -m training.run --config default --data clips.txt --set denoiser.loop.steps=20000 --set runtime.bf16=true
    torchrun --nproc_per_node 2 -m training.run --config tiny           # data parallel (gloo on the CPU)

Stages, in order: preprocess (feature cache) -> vae -> vocoder -> projection -> denoiser -> detector -> export ->
evaluate.
Running the same command again resumes: finished stages are skipped, an interrupted one continues from its last
checkpoint. Run folder: runs/<name>/{config.yaml, data_report.json, train.log, stages/<stage>/..., bundle/}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from training.config import STAGES, ConfigError, TrainConfig, load_config, to_yaml

# Before torch loads MKL: a fixed thread count, so that float reductions split the same way in every run (MKL's
# default may use fewer threads on a busy machine, and a resumed run would then drift from an uninterrupted one).
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("OMP_DYNAMIC", "FALSE")

log = logging.getLogger("training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.run", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default", help="a name in training/configs (tiny, default, paper-t, "
                    "paper-s, paper-b) or a YAML path")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, dotted (e.g. denoiser.loop.steps=500); repeatable")
    ap.add_argument("--data", action="append", default=[], metavar="PATH",
                    help="a folder of videos (recursive) or a list file; repeatable (sets data.inputs)")
    ap.add_argument("--name", help="run name (sets name): the run folder is <runs_dir>/<name>")
    ap.add_argument("--runs-dir", help="where run folders live (sets runs_dir; default runs/)")
    ap.add_argument("--stages", help=f"comma-separated subset of {','.join(STAGES)} (default: all, in order)")
    ap.add_argument("--from-bundle", metavar="BUNDLE",
                    help="adopt the VAE, video projection and vocoder choice of a bundle as finished stages "
                         "(training.adopt); with denoiser.init_from=BUNDLE/denoiser.safetensors a warm start")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return ap.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    overrides = list(args.overrides)
    if args.data:
        overrides.append("data.inputs=" + json.dumps([str(Path(p).expanduser().resolve()) for p in args.data]))
    if args.name:
        overrides.append(f"name={json.dumps(args.name)}")
    if args.runs_dir:
        overrides.append(f"runs_dir={json.dumps(args.runs_dir)}")
    return load_config(args.config, overrides)


def setup_logging(run_dir: Path | None, is_main: bool) -> logging.Handler | None:
    """Log to stderr (INFO on rank 0) and to <run>/train.log; returns the file handler (to remove at the end)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    if not any(isinstance(h, logging.StreamHandler) and getattr(h, "_training", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(fmt)
        h._training = True  # type: ignore[attr-defined]
        root.addHandler(h)
    if run_dir is not None and is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(run_dir / "train.log")
        fh.setFormatter(fmt)
        root.addHandler(fh)
        return fh
    return None


def prepare_data(cfg: TrainConfig, ctx: Any) -> None:
    """Rank 0 preprocesses (or resumes) into the cache; every rank then reads the index and the report."""
    from engine.atomic import atomic_write_text
    from training.data import load_index, preprocess

    run_dir = ctx.run_dir
    cache_dir = Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else run_dir / "cache"
    inputs = list(cfg.data.inputs)
    if not inputs and cfg.data.synthetic_clips > 0:
        synth = run_dir / "synthetic"
        if ctx.dist.is_main:
            from training.synthetic import make_dataset

            make_dataset(synth, clips=cfg.data.synthetic_clips, sources=cfg.data.synthetic_sources,
                         seconds=cfg.data.synthetic_seconds, seed=cfg.runtime.seed)
        inputs = [str(synth)]
    if not inputs:
        raise ConfigError("no data: pass --data FOLDER_OR_LIST (or set data.inputs, or data.synthetic_clips)")
    report_path = run_dir / "data_report.json"
    if ctx.dist.is_main:
        import dataclasses

        dcfg = dataclasses.replace(cfg.data, inputs=inputs)
        index = preprocess(dcfg, ctx.spec, cache_dir, threads=cfg.runtime.threads, progress=ctx.progress)
        atomic_write_text(report_path, json.dumps(index.report, indent=1) + "\n")
        rep = index.report
        log.info("data: %d clips from %d videos (train %d / val %d / test %d); skipped %s",
                 rep["clips"], rep["videos_used"], rep["splits"]["train"]["clips"], rep["splits"]["val"]["clips"],
                 rep["splits"]["test"]["clips"], rep["skipped"] or "nothing")
    ctx.dist.barrier()
    ctx.cache_dir = cache_dir
    ctx.clips = load_index(cache_dir)
    ctx.data_report = json.loads(report_path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = resolve_config(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    stages = [s.strip() for s in args.stages.split(",")] if args.stages else list(STAGES)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"error: unknown stage(s) {unknown}; choose from {', '.join(STAGES)}", file=sys.stderr)
        return 2
    return train(cfg, stages, progress=not args.no_progress, from_bundle=args.from_bundle)


def train(cfg: TrainConfig, stages: list[str], *, progress: bool = True, from_bundle: str | None = None) -> int:
    """Run `stages` of a resolved config; returns the exit code (0; 2: a stated error; 3: a non-finite loss)."""
    import torch

    from engine.atomic import atomic_write_text
    from engine.errors import EngineError
    from training.data import DataError
    from training.loop import NonFiniteLossError, StageError, init_distributed
    from training.stages import RunContext, done_record

    d = init_distributed(cfg.runtime.device, cfg.runtime.dist_backend)
    run_dir = cfg.run_dir
    handler = setup_logging(run_dir, d.is_main)
    if cfg.runtime.threads > 0:
        torch.set_num_threads(cfg.runtime.threads)
    ctx = RunContext(cfg=cfg, run_dir=run_dir, dist=d, progress=progress)
    timings: dict[str, float] = {}
    try:
        for stage in STAGES:  # refuse a changed config before writing anything
            done_record(ctx, stage)
        if d.is_main:
            atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
        log.info("run %s in %s (%d process%s, %s, %d threads, bf16 %s)", cfg.name, run_dir, d.world,
                 "es" if d.world > 1 else "", d.device, torch.get_num_threads(), cfg.runtime.bf16)
        t0 = time.perf_counter()
        prepare_data(cfg, ctx)
        timings["preprocess"] = time.perf_counter() - t0
        if from_bundle and d.is_main:
            from training.adopt import adopt_bundle

            adopt_bundle(ctx, from_bundle)
        d.barrier()
        for stage in stages:
            t0 = time.perf_counter()
            if stage in ("export", "evaluate") and not d.is_main:
                continue
            _stage_module(stage).run(ctx)
            timings[stage] = time.perf_counter() - t0
            log.info("stage %s: %.1f s", stage, timings[stage])
    except NonFiniteLossError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (StageError, DataError, ConfigError, EngineError) as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if d.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    if d.is_main:
        atomic_write_text(run_dir / "timings.json", json.dumps(timings, indent=1) + "\n")
        bundle = run_dir / "bundle"
        if (bundle / "manifest.json").is_file():
            print(f"bundle: {bundle}")
    return 0


def _stage_module(stage: str):
    import importlib

    if stage in ("export", "evaluate"):
        return importlib.import_module(f"training.{stage}")
    return importlib.import_module(f"training.stages.{stage}")


if __name__ == "__main__":
    sys.exit(main())
