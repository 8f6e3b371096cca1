"""The training loop shared by every stage: distributed set-up, optimiser and schedule, EMA, atomic checkpoints,
resumption, the loss CSV, non-finite-loss stop, progress bar and loss-curve PNG.

Determinism and resumption. Every random choice of step s (batch indices, crops, noise, timesteps, masks) comes from
generators seeded by (seed, stage, s) (`training.data.step_rng` / `step_seed`), and the learning rate is a function
of s, so a checkpoint needs only the step, the weights, the optimiser and EMA state to continue exactly as an
uninterrupted run would (the global RNG states are saved too, for anything else). Checkpoints are written to a
temporary file, fsynced and renamed (atomic), the newest `keep_ckpts` are kept, and the loss CSV is cut back to the
checkpoint's step on resume, so a run killed at any moment and started again ends with the same weights, metrics
and CSV rows as one that never stopped (on the same machine and thread count; bitwise on the CPU).

Data parallelism (torchrun): every rank draws the same global batch and takes its slice; gradients are averaged
with one all_reduce per optimiser step (a flat buffer), and rank 0 writes checkpoints, logs and outputs. This is
DistributedDataParallel's arithmetic without its wrapper, because the denoiser runs two forward passes per step and
the vocoder alternates two optimisers, which the wrapper handles badly; on a GPU cluster the missing overlap of
communication with the backward pass costs a few percent at these model sizes.
"""

from __future__ import annotations

import copy
import csv
import datetime
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from engine.atomic import atomic_replace
from training.config import LoopConfig, OptimConfig

log = logging.getLogger(__name__)


class StageError(RuntimeError):
    """A stage cannot go on (non-finite loss, a mismatched output); the message says what to do."""


class NonFiniteLossError(StageError):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Distributed context
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def shard(self, n: int) -> slice:
        """This rank's part of a global batch of n (n must divide evenly)."""
        if n % self.world:
            raise StageError(f"the batch size {n} does not divide over {self.world} processes; change batch_size")
        k = n // self.world
        return slice(self.rank * k, (self.rank + 1) * k)

    def all_true(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([0.0 if flag else 1.0])
        dist.all_reduce(t)
        return t.item() == 0.0

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}


def init_distributed(device: str = "auto", backend: str = "auto") -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(f"cuda:{local}" if device == "cuda" else device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        be = backend if backend != "auto" else ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(be, timeout=datetime.timedelta(hours=12))  # rank 0 may preprocess for long
    return Dist(rank=rank, world=world, local_rank=local, device=dev)


def sync_gradients(params: Iterable[nn.Parameter], d: Dist) -> None:
    """Average gradients over ranks with one all_reduce of a flat buffer (a no-op for one process)."""
    if not d.enabled:
        return
    ps = [p for p in params if p.grad is not None]
    if not ps:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in ps])
    dist.all_reduce(flat)
    flat /= d.world
    i = 0
    for p in ps:
        n = p.grad.numel()
        p.grad.copy_(flat[i : i + n].view_as(p.grad))
        i += n


def broadcast_module(module: nn.Module, d: Dist) -> None:
    """Make every rank start from rank 0's weights."""
    if d.enabled:
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, 0)


# ---------------------------------------------------------------------------------------------------------------
# Optimisers, schedule, EMA
# ---------------------------------------------------------------------------------------------------------------
def build_optimizer(params: Iterable[nn.Parameter] | list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW (torch) or Adan (`pytorch-optimizer`; the same algorithm and defaults as timm's and the paper's).

    `params` may be parameter groups (dicts with "params" and optionally "lr_mult", "weight_decay"): a group's
    learning rate is lr_mult x the schedule's (`Trainer.set_lr`)."""
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
        params = [g for g in groups if g["params"]]  # type: ignore[assignment]
    else:
        params = [p for p in params if p.requires_grad]
    if cfg.name == "adamw":
        betas = tuple(cfg.betas) if cfg.betas else (0.9, 0.999)
        return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adan":
        try:
            from pytorch_optimizer import Adan
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise StageError("optim.name 'adan' needs the pytorch-optimizer package: pip install "
                             "'mdsgen-foley[train]'") from exc
        betas = tuple(cfg.betas) if cfg.betas else (0.98, 0.92, 0.99)
        # weight_decouple=False: the proximal decay of the paper's Algorithm 1 (timm's no_prox=False);
        # foreach=False: the per-parameter path, bitwise reproducible across resumption
        return Adan(params, lr=cfg.lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                    weight_decouple=False, foreach=False)
    raise StageError(f"unknown optimiser {cfg.name!r}")


def lr_at(step: int, cfg: OptimConfig, total: int) -> float:
    """Linear warm-up, then constant or cosine down to min_lr_ratio * lr."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine" and total > cfg.warmup_steps:
        p = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))
    return cfg.lr


class EMA:
    """Exponential moving average of a module's parameters (buffers copied), with optional warm-up of the decay."""

    def __init__(self, module: nn.Module, decay: float, warmup: bool = True) -> None:
        self.decay = decay
        self.warmup = warmup
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = self.decay_at(step)
        for e, p in zip(self.module.parameters(), module.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast for forward passes when enabled (CPU with AVX-512 bf16, or CUDA)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


# ---------------------------------------------------------------------------------------------------------------
# Files: atomic checkpoints and the loss CSV
# ---------------------------------------------------------------------------------------------------------------
_CKPT = re.compile(r"^ckpt-(\d{8})\.pt$")


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_replace(path) as tmp:
        torch.save(obj, tmp)


def list_checkpoints(stage_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for p in stage_dir.glob("ckpt-*.pt"):
        m = _CKPT.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


class LossLog:
    """`losses.csv`: one row per (step, split, metric, value); flushed at once; cut back to a step on resume."""

    FIELDS = ("step", "split", "metric", "value")

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate(self, last_step: int) -> None:
        """Keep the rows with step <= last_step (and drop everything if last_step < 0)."""
        if not self.path.is_file():
            return
        rows = [r for r in self.read() if int(r["step"]) <= last_step]
        with atomic_replace(self.path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.FIELDS)
            w.writeheader()
            w.writerows(rows)

    def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
        new = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(self.FIELDS)
            for k, v in metrics.items():
                w.writerow([step, split, k, f"{float(v):.7g}"])
            f.flush()

    def read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------
class Trainer:
    """Runs `step_fn(step)` for steps [resume point, loop.steps) with logging, validation and checkpoints.

    modules/optimizers/emas are what a checkpoint holds. `step_fn` does the whole step (forward, `backward` below,
    optimiser steps) and returns float metrics; `val_fn(step)` returns validation metrics (rank 0 only).
    """

    def __init__(self, *, name: str, stage_dir: Path, loop: LoopConfig, d: Dist,
                 modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 optim_cfgs: dict[str, OptimConfig], emas: dict[str, EMA] | None = None,  # keyed like modules
                 progress: bool = True) -> None:
        self.name = name
        self.stage_dir = stage_dir
        self.loop = loop
        self.d = d
        self.modules = modules
        self.optimizers = optimizers
        self.optim_cfgs = optim_cfgs
        self.emas = emas or {}
        self.progress = progress
        self.losses = LossLog(stage_dir / "losses.csv")
        self.step = 0

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def save(self, step: int) -> Path:
        path = self.stage_dir / f"ckpt-{step:08d}.pt"
        state = {
            "step": step,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "emas": {k: e.state_dict() for k, e in self.emas.items()},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }
        atomic_torch_save(state, path)
        for _, old in list_checkpoints(self.stage_dir)[: -self.loop.keep_ckpts]:
            old.unlink(missing_ok=True)
        return path

    def resume(self) -> int:
        """Load the newest readable checkpoint; return the step to continue from (0 if none)."""
        for step, path in reversed(list_checkpoints(self.stage_dir)):
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:  # a checkpoint is renamed into place whole, so this is foreign damage
                log.warning("%s: checkpoint %s is unreadable (%s); trying an older one", self.name, path.name, exc)
                continue
            for k, m in self.modules.items():
                m.load_state_dict(state["modules"][k])
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            for k, e in self.emas.items():
                e.load_state_dict(state["emas"][k])
            rng = state.get("rng", {})
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
                np.random.set_state(rng["numpy"])
                random.setstate(rng["python"])
            if self.d.is_main:
                self.losses.truncate(step)
            log.info("%s: resumed from %s", self.name, path.name)
            return step
        if self.d.is_main:
            self.losses.truncate(-1)
        for m in self.modules.values():
            broadcast_module(m, self.d)
        for e in self.emas.values():
            broadcast_module(e.module, self.d)
        return 0

    # ---- one optimiser step --------------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor, opt: str, params: list[nn.Parameter], step: int) -> float:
        """Check the loss, backprop, average gradients over ranks, clip, step `opt`; return the gradient norm."""
        finite = bool(torch.isfinite(loss.detach()).all())
        if not self.d.all_true(finite):
            raise NonFiniteLossError(self._nan_message(step, opt, "loss"))
        optimizer = self.optimizers[opt]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(params, self.d)
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) if grads \
            else torch.zeros(())
        if not bool(torch.isfinite(norm)):
            raise NonFiniteLossError(self._nan_message(step, opt, "gradient"))
        clip = self.optim_cfgs[opt].grad_clip
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        return float(norm)

    def check_ranks_agree(self) -> None:
        """Under data parallelism every rank must hold the same weights; a difference is a bug, not noise."""
        if not self.d.enabled:
            return
        vals = []
        for k in sorted(self.modules):
            for p in self.modules[k].parameters():
                vals.append(p.detach().double().sum())
                vals.append(p.detach().double().abs().sum())
        v = torch.stack(vals)
        hi, lo = v.clone(), v.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        if not torch.equal(hi, lo):
            raise StageError(f"stage {self.name}: the {self.d.world} processes ended with different weights")
        log.info("%s: the weights of all %d processes agree", self.name, self.d.world)

    def _nan_message(self, step: int, opt: str, what: str) -> str:
        ckpts = list_checkpoints(self.stage_dir)
        keep = f"the last good checkpoint {ckpts[-1][1].name} is kept" if ckpts else "no checkpoint was written yet"
        return (f"stage {self.name}: the {what} became NaN/inf at step {step} ({opt}); stopped, {keep}. Lower "
                f"{self.name}.optim.lr, set {self.name}.optim.grad_clip, or turn runtime.bf16 off, then run the same "
                "command again to resume from that checkpoint.")

    def set_lr(self, step: int) -> dict[str, float]:
        lrs = {}
        for k, o in self.optimizers.items():
            lr = lr_at(step, self.optim_cfgs[k], self.loop.steps)
            for g in o.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)
            lrs[f"lr_{k}" if len(self.optimizers) > 1 else "lr"] = lr
        return lrs

    # ---- the loop ------------------------------------------------------------------------------------------
    def run(self, step_fn: Callable[[int], dict[str, float]],
            val_fn: Callable[[int], dict[str, float]] | None = None) -> dict[str, float]:
        from tqdm import tqdm

        start = self.resume()
        total = self.loop.steps
        bar = tqdm(total=total, initial=start, desc=self.name, unit="step", dynamic_ncols=True,
                   disable=not (self.progress and self.d.is_main))
        acc: dict[str, float] = {}
        n_acc = 0
        t0 = time.perf_counter()
        last_val: dict[str, float] = {}
        for m in self.modules.values():
            m.train()
        for step in range(start, total):
            lrs = self.set_lr(step)
            metrics = step_fn(step)
            for k, e in self.emas.items():  # an EMA follows the module of the same name
                e.update(self.modules[k], step)
            for k, v in metrics.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            n_acc += 1
            done = step + 1
            if done % self.loop.log_every == 0 or done == total:
                row = self.d.mean({k: v / n_acc for k, v in acc.items()})
                row.update(lrs)
                row["sec_per_step"] = (time.perf_counter() - t0) / n_acc
                if self.d.is_main:
                    self.losses.write(done, "train", row)
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in ("loss", "loss_g", "loss_d")})
                acc, n_acc, t0 = {}, 0, time.perf_counter()
            if val_fn is not None and (done == total or (self.loop.val_every and done % self.loop.val_every == 0)):
                if self.d.is_main:
                    for m in self.modules.values():
                        m.eval()
                    last_val = val_fn(done)
                    self.losses.write(done, "val", last_val)
                    for m in self.modules.values():
                        m.train()
                self.d.barrier()
                t0 = time.perf_counter()
            if done % self.loop.ckpt_every == 0 or done == total:
                if self.d.is_main:
                    self.save(done)
                self.d.barrier()
            bar.update(1)
        bar.close()
        self.step = total
        self.check_ranks_agree()
        for m in self.modules.values():
            m.eval()
        if val_fn is not None and not last_val and self.d.is_main:
            last_val = self.final_val(val_fn)
        return last_val

    def final_val(self, val_fn: Callable[[int], dict[str, float]]) -> dict[str, float]:
        """Validation metrics of the finished stage (re-read from the CSV if training resumed past its end)."""
        rows = [r for r in self.losses.read() if r["split"] == "val" and int(r["step"]) == self.loop.steps]
        if rows:
            return {r["metric"]: float(r["value"]) for r in rows}
        return val_fn(self.loop.steps)


# ---------------------------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------------------------
def plot_losses(csv_path: Path, png_path: Path, title: str) -> Path | None:
    """Loss curves (train and val, one panel per metric) from a losses.csv."""
    rows = LossLog(csv_path).read()
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if r["metric"].startswith("lr") or r["metric"] == "sec_per_step":
            continue
        series.setdefault((r["metric"], r["split"]), []).append((int(r["step"]), float(r["value"])))
    metrics = sorted({m for m, _ in series})
    cols = min(3, len(metrics)) or 1
    nrows = math.ceil(len(metrics) / cols) or 1
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.8 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for split in ("train", "val"):
            pts = series.get((m, split))
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, "-" if split == "train" else "o-", label=split, lw=1.2, ms=3)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return png_path


def plot_mels(rows: list[tuple[str, list[np.ndarray]]], png_path: Path, title: str,
              col_titles: list[str] | None = None, markers: list[list[list[float]]] | None = None,
              seconds: float | None = None) -> Path:
    """A grid of mel images: one row per example, columns e.g. real / reconstructed / generated.

    markers[i][j]: times (s) drawn as vertical lines on panel (i, j) (hits, onsets), on a time axis of `seconds`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = max(len(ms) for _, ms in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(4.0 * ncols, 1.9 * len(rows)), squeeze=False)
    for i, (label, mels) in enumerate(rows):
        for j in range(ncols):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(mels) and mels[j] is not None:
                ax.imshow(mels[j], origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
                if markers is not None and seconds and i < len(markers) and j < len(markers[i]):
                    per_s = mels[j].shape[-1] / seconds
                    for t in markers[i][j]:
                        ax.axvline(t * per_s, color="cyan", lw=0.8, alpha=0.9, ymax=0.12)
                name = col_titles[j] if col_titles and j < len(col_titles) else ""
                ax.set_title(f"{label}  {name}".strip(), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return png_path
