"""`python -m training.gpu_train PACK.npz --out STAGE_DIR --minutes 9 [--device cuda] [--steps N]`

Trains the denoiser stage from a pack (`python -m training.pack`) alone: no data set, no VAE, no registry; torch,
numpy, pytorch-optimizer (for the stage's Adan, `training.loop.build_optimizer`, as on the CPU) and this
repository's engine/ and training/ are all it needs. PyAV and soundfile may be missing: engine/ imports them at its
top but training never calls them, so stand-ins take their place. pytorch-optimizer is carried, not copied: its
wheel is pure Python, so `pip download pytorch-optimizer==VERSION --no-deps -d wheels/` on a machine with the
registry (VERSION as `.venv/bin/pip show pytorch-optimizer` reports), carry `wheels/` along and `pip install
--no-deps wheels/*.whl` on the GPU machine; without it the command stops and says so. The step is the stage's own
(`training.stages.denoiser.make_step_fn`: the same batches, posterior sampling, noises, timesteps, condition drops,
TAM masks, hit tracks with jitter and video shifts, drawn from (seed, stage, step)), under bf16 autocast on CUDA.

It continues from the newest `ckpt-<step>.pt` in STAGE_DIR, else from the pack's state (a checkpoint of the CPU run,
or the warm-start weights), and stops at the config's `denoiser.loop.steps`, after `--steps N` steps, or when the
wall-clock budget `--minutes` (counted from the start of the process) would be passed, writing checkpoints on the
config's `ckpt_every` and always at the end, in the format of `training.loop.Trainer`: copy STAGE_DIR's newest
`ckpt-*.pt` and `losses.csv` into `runs/<name>/stages/denoiser/` and the CPU command `python -m training.run ...
--stages denoiser` resumes from it. `gpu_train.json` in STAGE_DIR says where it started and stopped and why.
"""

from __future__ import annotations

import os

# as training.run: a fixed thread count before torch loads MKL (bitwise reproducible CPU runs)
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("OMP_DYNAMIC", "FALSE")

import argparse
import dataclasses
import importlib
import json
import logging
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

START = time.monotonic()
log = logging.getLogger("training.gpu_train")

#: Modules engine/ imports at its top for media input/output, which training from a pack never calls.
MEDIA_MODULES = ("av", "av.error", "soundfile")


def shim_missing_modules(names: tuple[str, ...] = MEDIA_MODULES) -> list[str]:
    """Put stand-ins into sys.modules for `names` that cannot be imported; using one raises ImportError."""
    shimmed: list[str] = []
    for name in names:
        present = sys.modules.get(name)
        if present is not None:
            if (present.__doc__ or "").startswith("stand-in for "):
                shimmed.append(name)  # put in by an earlier call: still a stand-in
            continue
        try:
            importlib.import_module(name)
            continue
        except ImportError:
            pass
        mod = types.ModuleType(name)
        mod.__doc__ = f"stand-in for {name} (not installed): training.gpu_train needs no media input/output"

        def missing(attr: str, _name: str = name) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)

            class Unavailable(Exception):  # an exception class, so that `except av.error.X:` still compiles
                def __new__(cls, *a: Any, **k: Any) -> Any:
                    raise ImportError(f"{_name}.{attr}: {_name} is not installed on this machine")

            Unavailable.__name__ = attr
            return Unavailable

        mod.__getattr__ = missing  # type: ignore[method-assign]
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent and sys.modules.get(parent) is not None:
            setattr(sys.modules[parent], child, mod)
        shimmed.append(name)
    return shimmed


import numpy as np  # noqa: E402
import torch  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# The optimiser: pytorch-optimizer's Adan, as the CPU stage builds it
# ---------------------------------------------------------------------------------------------------------------
#: What to do where pytorch-optimizer cannot be imported (one line: main prints it after "error: ").
MISSING_PYTORCH_OPTIMIZER = (
    "optim.name 'adan' needs the pytorch-optimizer package, which this machine cannot import; its wheel is pure "
    "Python, so carry it here: on a machine with the package registry run `pip download "
    "pytorch-optimizer==VERSION --no-deps -d wheels/` (VERSION: what `.venv/bin/pip show pytorch-optimizer` "
    "reports in the repository that made the pack), carry wheels/ along, then run `pip install --no-deps "
    "wheels/*.whl` on this machine")


def require_optimizer(cfg: Any) -> None:
    """Stop with MISSING_PYTORCH_OPTIMIZER before any work when the config's Adan cannot be built here."""
    from training.loop import StageError

    if cfg.denoiser.optim.name != "adan":
        return
    try:
        import pytorch_optimizer  # noqa: F401
    except ImportError as exc:
        raise StageError(MISSING_PYTORCH_OPTIMIZER) from exc


def describe_optimizer(opt: torch.optim.Optimizer) -> str:
    """'Adan (pytorch-optimizer 4.1.0)', 'AdamW (torch)': the class and the package it came from."""
    from importlib import metadata

    top = type(opt).__module__.partition(".")[0]
    if top == "pytorch_optimizer":
        try:
            return f"{type(opt).__name__} (pytorch-optimizer {metadata.version('pytorch-optimizer')})"
        except metadata.PackageNotFoundError:
            return f"{type(opt).__name__} (pytorch-optimizer)"
    return f"{type(opt).__name__} ({top})"


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------
def config_of(meta: dict[str, Any]) -> Any:
    """The pack's resolved TrainConfig (checked against its recorded denoiser digest)."""
    from training.config import TrainConfig, from_dict, stage_digest
    from training.pack import PackError

    cfg = from_dict(TrainConfig, meta["config"])
    got = stage_digest(cfg, "denoiser")
    if got != meta["digest"]:
        raise PackError(f"the pack's config gives denoiser digest {got}, the pack says {meta['digest']}: it was "
                        "made by another version of training/; pack again with this one")
    return cfg


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: --device cuda, but torch sees no CUDA device here (use --device cpu)")
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return dev


def place_state(pack: Any, out: Path) -> str:
    """Write the pack's checkpoint (and loss log) into `out` unless `out` already holds one as new; say what."""
    from engine.atomic import atomic_write_bytes
    from training.loop import list_checkpoints
    from training.pack import PackError

    st = pack.meta.get("state")
    mine = list_checkpoints(out)
    if mine:
        return f"continues from its own {mine[-1][1].name}"
    if st is None:
        return "starts at step 0 from the initialisation (the pack holds no state)"
    if pack.state is None:
        if st["kind"] == "init":
            return "init"
        raise PackError(f"the pack's checkpoint is in a second file, {st['file']}, which is not beside "
                        f"{pack.path}: copy it there too")
    if st["kind"] == "checkpoint":
        atomic_write_bytes(out / st["name"], pack.state)
        if pack.losses_csv is not None and not (out / "losses.csv").exists():
            (out / "losses.csv").write_bytes(pack.losses_csv)
        return f"continues from the CPU run's {st['name']} (step {st['step']})"
    return "init"


def warm_start_from_pack(model: Any, pack: Any, cfg: Any) -> str:
    """Load the pack's warm-start weights (embedded, beside it, or the config's init_from path if the repository
    carries it with the same sha256) into `model`; returns what was loaded."""
    import hashlib

    from training.pack import PackError, resolve_init
    from training.stages.denoiser import warm_start

    st = pack.meta["state"]
    blob = pack.state
    src = "the pack" if st.get("embedded") else st.get("file")
    if blob is None:
        p = resolve_init(st.get("init_from") or cfg.denoiser.init_from or "")
        if p is None or hashlib.sha256(p.read_bytes()).hexdigest() != st["sha256"]:
            raise PackError(f"the pack's warm-start weights are in a second file, {st['file']}, which is not "
                            f"beside {pack.path} (nor is {st.get('init_from')} here with the same sha256): copy it "
                            "there too")
        blob, src = p.read_bytes(), str(p)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "init.safetensors"
        path.write_bytes(blob)
        fresh = warm_start(model, str(path))
    return f"warm start from {src} (left at init: {', '.join(fresh) or 'nothing'})"


def run_budget(trainer: Any, step_fn: Any, val_fn: Any, *, max_steps: int | None, deadline: float,
               report_every: float = 30.0) -> dict[str, Any]:
    """`Trainer.run`'s loop (the same loss-log rows, validation and checkpoint steps, the schedule over the
    config's total) that also stops after `max_steps` steps or before the monotonic `deadline`, and checkpoints
    where it stops."""
    loop = trainer.loop
    start = trainer.resume()
    total = loop.steps
    stop = total if max_steps is None else min(total, start + max_steps)
    reason = "total" if stop == total else "steps"
    acc: dict[str, float] = {}
    n_acc = 0
    t0 = time.perf_counter()
    recent: list[float] = []
    save_s = val_s = 0.0
    last_saved = start
    last_report = time.monotonic()
    done = start
    for m in trainer.modules.values():
        m.train()
    for step in range(start, stop):
        if recent:  # room for one more step, then the last validation (when due) and checkpoint
            per = float(np.median(recent[-50:]))
            need = 1.5 * per + 1.5 * save_s + (val_s if step + 1 == total else 0.0) + 5.0
            if time.monotonic() + need > deadline:
                reason = "time"
                break
        ts = time.perf_counter()
        lrs = trainer.set_lr(step)
        metrics = step_fn(step)
        for k, e in trainer.emas.items():
            e.update(trainer.modules[k], step)
        for k, v in metrics.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        n_acc += 1
        done = step + 1
        if done % loop.log_every == 0 or done == total:
            row = {k: v / n_acc for k, v in acc.items()}
            row.update(lrs)
            row["sec_per_step"] = (time.perf_counter() - t0) / n_acc
            trainer.losses.write(done, "train", row)
            acc, n_acc, t0 = {}, 0, time.perf_counter()
        recent.append(time.perf_counter() - ts)
        if val_fn is not None and (done == total or (loop.val_every and done % loop.val_every == 0)):
            tv = time.perf_counter()
            for m in trainer.modules.values():
                m.eval()
            vals = val_fn(done)
            trainer.losses.write(done, "val", vals)
            for m in trainer.modules.values():
                m.train()
            val_s = max(val_s, time.perf_counter() - tv)
            log.info("gpu_train: step %d val %s", done, {k: round(v, 5) for k, v in vals.items()})
            t0 = time.perf_counter()
        if done % loop.ckpt_every == 0 or done == total:
            tc = time.perf_counter()
            trainer.save(done)
            save_s = max(save_s, time.perf_counter() - tc)
            last_saved = done
            t0 += time.perf_counter() - tc
        if time.monotonic() - last_report >= report_every:
            last_report = time.monotonic()
            log.info("gpu_train: step %d/%d, loss %.4g, %.1f steps/s, %.0f s left", done, total,
                     metrics.get("loss", float("nan")), 1.0 / max(1e-9, float(np.median(recent[-50:]))),
                     deadline - time.monotonic())
    if done != last_saved:
        tc = time.perf_counter()
        trainer.save(done)
        save_s = max(save_s, time.perf_counter() - tc)
    for m in trainer.modules.values():
        m.eval()
    return {"start_step": start, "end_step": done, "total_steps": total, "stopped_by": reason,
            "sec_per_step": float(np.median(recent)) if recent else None, "checkpoint_seconds": save_s,
            "val_seconds": val_s}


def train_from_pack(pack_path: Path, out: Path, *, minutes: float, device: str = "auto", steps: int | None = None,
                    bf16: bool | None = None, threads: int | None = None) -> dict[str, Any]:
    deadline = START + minutes * 60.0
    shimmed = shim_missing_modules()
    from engine.spec import DiffusionSchedule
    from training.diffusion import GaussianDiffusion
    from training.loop import Dist
    from training.pack import load_pack
    from training.stages import RunContext
    from training.stages.denoiser import LatentSet, build_model, make_step_fn, make_trainer, make_val_fn

    dev = _resolve_device(device)
    pack = load_pack(pack_path)
    cfg = config_of(pack.meta)
    require_optimizer(cfg)
    if threads is None:
        threads = cfg.runtime.threads
    if dev.type == "cpu" and threads and threads > 0:
        torch.set_num_threads(threads)
    use_bf16 = (dev.type == "cuda") if bf16 is None else bf16
    if dev.type == "cpu" and bf16 is None:
        use_bf16 = cfg.runtime.bf16  # as the CPU run does
    run_cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, bf16=use_bf16))
    ctx = RunContext(cfg=run_cfg, run_dir=out.parent, dist=Dist(device=dev), progress=False)
    out.mkdir(parents=True, exist_ok=True)
    tr = pack.split("train")
    va = pack.split("val")
    lat = LatentSet(pack.mean, pack.std, pack.crop_clip, pack.crop_frame)
    train = lat.subset(tr)
    val = lat.subset(va) if va.any() else train
    begins = place_state(pack, out)

    torch.manual_seed(cfg.runtime.seed)
    model = build_model(ctx)
    if begins == "init":
        begins = warm_start_from_pack(model, pack, cfg)
    model = model.to(dev)
    trainer, ema = make_trainer(ctx, model, out)
    with_hits = model.config.hit_slots > 0
    onsets = pack.onsets if with_hits else []
    diffusion = GaussianDiffusion(DiffusionSchedule())
    step_fn = make_step_fn(ctx, model, trainer, diffusion, train, pack.feats, onsets, pack.scale)
    val_fn = make_val_fn(ctx, ema, diffusion, val, pack.feats, onsets, pack.scale)
    log.info("gpu_train: %s on %s (bf16 %s), %d train / %d val crops, %s; budget %.1f min (%.0f s left)",
             pack.path.name, dev, use_bf16, len(train), len(val), begins, minutes, deadline - time.monotonic())
    result = run_budget(trainer, step_fn, val_fn, max_steps=steps, deadline=deadline)
    last = out / f"ckpt-{result['end_step']:08d}.pt"
    record = {"pack": str(pack.path), "digest": pack.meta["digest"], "run": pack.meta.get("run"),
              "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "bf16": use_bf16, "began": begins, **result, "checkpoint": last.name,
              "wall_seconds": round(time.monotonic() - START, 1), "minutes_budget": minutes,
              "stand_ins": shimmed, "optimizer": describe_optimizer(trainer.optimizers["denoiser"])}
    (out / "gpu_train.json").write_text(json.dumps(record, indent=1, default=float) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.gpu_train", description=__doc__.split("\n\n")[0])
    ap.add_argument("pack", type=Path, help="a pack made by python -m training.pack")
    ap.add_argument("--out", type=Path, required=True, help="the stage folder to write ckpt-<step>.pt into (and to "
                    "continue from, when it holds one)")
    ap.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget of the whole command (default 9)")
    ap.add_argument("--device", default="auto", help="cuda, cuda:N or cpu (default: cuda when there is one)")
    ap.add_argument("--steps", type=int, default=None, help="at most this many steps in this run (default: up to "
                    "the config's denoiser.loop.steps)")
    ap.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA (the CPU follows the config)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: the config's runtime.threads)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    shim_missing_modules()  # before anything imports engine (training.loop writes through engine.atomic)
    from training.loop import NonFiniteLossError, StageError
    from training.pack import PackError

    try:
        rec = train_from_pack(args.pack, args.out, minutes=args.minutes, device=args.device, steps=args.steps,
                              bf16=False if args.no_bf16 else None, threads=args.threads)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (PackError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rec, indent=1, default=float))
    print(f"gpu_train: steps {rec['start_step']} -> {rec['end_step']} of {rec['total_steps']} (stopped by "
          f"{rec['stopped_by']}), {rec['checkpoint']} in {args.out}; copy it and losses.csv into "
          "runs/<name>/stages/denoiser/ and run the CPU stage to resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
