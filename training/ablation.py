"""`python -m training.ablation`: the paper's masking ablation (MDSGen Table 5) at a small budget on our data.

    python -m training.ablation --base runs/default-s1 --steps 400 --set vocoder.use=griffin-lim

For each mask kind (none: the plain DiT loss; sam: random tokens, MDT's mask; fam: whole frequency lines; tam: whole
time lines, MDSGen's choice) a run `<base>-mask-<kind>` beside the base run trains only the denoiser, with the same
steps, batch, seed and everything else, on the base run's feature cache and its finished VAE, vocoder and projection
(linked, not copied: their config digests match). Each is evaluated through the engine (torch backend, no ONNX
export: the graphs compute the same thing) on the first `--max-clips` test clips with the evaluation's metrics, and
the table goes to `--out` (ablation.md, ablation.json). Runs resume like any training run.
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

from training.alignment import AlignConfig
from training.config import ConfigError, load_config

log = logging.getLogger("training.ablation")
KINDS = ("none", "sam", "fam", "tam")
SHARED_STAGES = ("vae", "vocoder", "projection")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.ablation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="a training run folder whose vae/vocoder/projection are done")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    ap.add_argument("--steps", type=int, default=250, help="denoiser steps, the same for every kind")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-clips", type=int, default=40, help="test clips to evaluate")
    ap.add_argument("--eval-steps", type=int, default=25, help="sampler steps of the evaluation")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="docs/ablation", help="folder for ablation.md and ablation.json")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a further config override for every kind (e.g. vocoder.use=griffin-lim); repeatable")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def base_cache_dir(base: Path) -> Path:
    """The feature cache the base run used: its `data.cache_dir`, else `<base>/cache` (training.run's default)."""
    cfg = load_config(str(base / "config.yaml"), [])
    return Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else base / "cache"


def kind_config(base: Path, kind: str, args: argparse.Namespace):
    overrides = [
        f"name={json.dumps(f'{base.name}-mask-{kind}')}",
        f"runs_dir={json.dumps(str(base.parent))}",
        f"data.cache_dir={json.dumps(str(base_cache_dir(base)))}",
        f"denoiser.mask_kind={kind}",
        f"denoiser.loop.steps={args.steps}",
        f"denoiser.loop.batch_size={args.batch_size}",
        f"denoiser.loop.val_every={args.steps}",
        f"denoiser.loop.ckpt_every={max(1, args.steps // 4)}",
        "export.onnx=false",
        "evaluate.backend=torch",
        f"evaluate.max_clips={args.max_clips}",
        f"evaluate.steps={args.eval_steps}",
        "evaluate.metrics=[onset, category, fad, alignment]",
        "evaluate.controls=[]",
        "evaluate.write_audio=0",
        f"evaluate.alignment_steps={AlignConfig.steps}",  # the evaluation's classifier (cached with the features)
    ]
    if args.threads > 0:
        overrides.append(f"runtime.threads={args.threads}")
    if (base / "synthetic").is_dir():  # a synthetic-data base run (the tests): use its clips, do not make new ones
        overrides.append(f"data.inputs={json.dumps([str(base / 'synthetic')])}")
    overrides.extend(args.overrides)  # last, so they win; the same for every kind
    return load_config(str(base / "config.yaml"), overrides)


def link_shared_stages(base: Path, run_dir: Path) -> None:
    for stage in SHARED_STAGES:
        src = base / "stages" / stage
        if not (src / "done.json").is_file():
            raise ConfigError(f"the base run {base} has not finished stage {stage}; train it first")
        dst = run_dir / "stages" / stage
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            os.symlink(src.resolve(), dst, target_is_directory=True)


def row(kind: str, run_dir: Path) -> dict[str, Any]:
    m = json.loads((run_dir / "stages" / "evaluate" / "metrics.json").read_text(encoding="utf-8"))
    den = json.loads((run_dir / "stages" / "denoiser" / "done.json").read_text(encoding="utf-8"))
    on = m.get("onset", {}).get("generated@0.1s", {})
    return {
        "kind": kind,
        "val_eps_mse": den.get("metrics", {}).get("eps_mse"),
        "onset_acc": on.get("acc"), "onset_ap": on.get("ap"),
        "category_acc": m.get("category", {}).get("generated", {}).get("category_acc"),
        "fad": m.get("fad", {}).get("generated"),
        "alignment_acc": m.get("alignment", {}).get("generated", {}).get("accuracy"),
        "clips": m.get("clips"),
        "train_seconds": json.loads((run_dir / "timings.json").read_text()).get("denoiser")
        if (run_dir / "timings.json").is_file() else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    from training.evaluate import fmt_metric as f

    names = {"none": "no mask", "sam": "SAM (random tokens)", "fam": "FAM (frequency lines)",
             "tam": "TAM (time lines, MDSGen)"}
    lines = ["| mask | val eps-MSE | onset acc @0.1s | onset AP | category acc | FAD (AI-SFX) | alignment acc |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {names[r['kind']]} | {f(r['val_eps_mse'])} | {f(r['onset_acc'], True)} | {f(r['onset_ap'])} "
                     f"| {f(r['category_acc'], True)} | {f(r['fad'])} | {f(r['alignment_acc'], True)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from engine.atomic import atomic_write_text
    from training.run import train

    args = parse_args(argv)
    base = Path(args.base).expanduser().resolve()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not (base / "config.yaml").is_file():
        print(f"error: unknown kinds {bad}" if bad else f"error: {base} is not a training run (no config.yaml)",
              file=sys.stderr)
        return 2
    rows = []
    for kind in kinds:
        try:
            cfg = kind_config(base, kind, args)
            link_shared_stages(base, cfg.run_dir)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        code = train(cfg, ["denoiser", "export", "evaluate"], progress=not args.no_progress)
        if code != 0:
            return code
        log.info("mask %s: %.0f s", kind, time.perf_counter() - t0)
        rows.append(row(kind, cfg.run_dir))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setting = (f"MDSGen-T, {args.steps} denoiser steps of batch {args.batch_size} each (same seed, data, VAE and "
               f"projection: those of `{base.name}`), evaluated on {rows[0]['clips'] if rows else 0} test clips, "
               f"1 take, {args.eval_steps} sampler steps, torch backend."
               + (f" Overrides: {', '.join(f'`{o}`' for o in args.overrides)}." if args.overrides else ""))
    atomic_write_text(out / "ablation.json", json.dumps({"setting": setting, "rows": rows}, indent=1) + "\n")
    atomic_write_text(out / "ablation.md", setting + "\n\n" + table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
