"""Orchestration: one subprocess per measurement (`run_worker`), the bundles per preset, the rows of a full run
(`run_all`) and of the shipped model (`shipped_rows`)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.generation.common import DEFAULT_PRESET, MODEL, ROOT, machine
from engine.spec import EDM2_GUIDANCE_INTERVAL


def run_worker(kind: str, args: dict[str, Any], *, log: bool = True) -> dict[str, Any]:
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "benchmarks.generation", "--worker", kind, "--args", json.dumps(args)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark worker {kind} {args} failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if log:
        print(f"  {kind} {json.dumps({k: v for k, v in args.items() if k != 'dir'})}: "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return out


def _reusable(bdir: Path) -> bool:
    """Whether a bundle from an earlier run (--work) has graphs exported at this engine's opset."""
    from engine.errors import BundleError
    from engine.graphs import OPSET
    from engine.manifest import load_manifest

    try:
        return load_manifest(bdir, verify_files=False).onnx.get("opset") == OPSET
    except BundleError:
        return False


class Row(NamedTuple):
    """One row of the shipped model's table: how `foley generate` is run."""

    precision: str  # the denoiser graph: int8 or fp32
    candidates: int
    steps: int | None  # None: --steps
    rate: int  # output rate: 16000 (as generated, no rate stage) or 48000 (the bandwidth extension)
    interval: tuple[float, float] | None = None  # guidance interval (None: every step guided)
    order: int = 2  # DPM-Solver++ order
    prepared: bool = False  # the segment prepared ahead (engine.prepare, as the editor does): no decode, no features


GUIDANCE_INTERVAL = EDM2_GUIDANCE_INTERVAL  # the shipped model's sampler default since issue #17
#: the shipped model's rows: MDSGen's sampler (every step guided) before the shipped default (the guidance
#: interval), then the default's variants, then the other levers of issue #17 (judged by training/recipes/speed.sh)
SHIPPED_ROWS = (Row("int8", 4, None, 16_000), Row("int8", 4, None, 16_000, GUIDANCE_INTERVAL),
                Row("int8", 4, None, 48_000, GUIDANCE_INTERVAL), Row("int8", 1, None, 16_000, GUIDANCE_INTERVAL),
                Row("fp32", 4, None, 16_000, GUIDANCE_INTERVAL),
                Row("int8", 4, None, 16_000, GUIDANCE_INTERVAL, prepared=True),
                Row("int8", 4, 15, 16_000), Row("int8", 4, 15, 16_000, GUIDANCE_INTERVAL),
                Row("int8", 4, 15, 16_000, GUIDANCE_INTERVAL, prepared=True),
                Row("int8", 4, 10, 16_000, GUIDANCE_INTERVAL), Row("int8", 4, 15, 16_000, order=3))


def shipped_rows(opts: argparse.Namespace, rows: tuple[Row, ...] = SHIPPED_ROWS) -> dict[str, Any]:
    out: dict[str, Any] = {"dir": str(opts.bundle), "rows": []}
    for r in rows:
        steps = r.steps or opts.steps
        row = run_worker("generate", {"dir": str(opts.bundle), "backend": "onnx", "precision": r.precision,
                                      "candidates": r.candidates, "steps": steps, "repeats": opts.repeats,
                                      "sample_rate": r.rate, "guidance_interval": r.interval,
                                      "solver_order": r.order, "prepared": r.prepared})
        out["rows"].append({"precision": r.precision, "candidates": r.candidates, "steps": steps,
                            "guidance_interval": list(r.interval) if r.interval else None, "solver_order": r.order,
                            "prepared": r.prepared, **row})
    return out


def run_all(opts: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
                           "load_before": os.getloadavg(), "options": vars(opts).copy(), "model": MODEL}
    started = time.perf_counter()
    work = Path(opts.work) if opts.work else Path(tempfile.mkdtemp(prefix="foley-bench-"))
    print(f"benchmark: work folder {work}", file=sys.stderr)
    res["gemm"] = run_worker("gemm", {"n": 2048, "repeats": 3 if opts.quick else 5})
    res["bundles"], res["generate"] = {}, []
    for preset in opts.presets:
        bdir = work / f"bundle-{preset}"
        if not _reusable(bdir):
            res["bundles"][preset] = run_worker("build", {"preset": preset, "dir": str(bdir)})
        else:
            from engine.manifest import load_manifest

            graphs = load_manifest(bdir, verify_files=False).onnx["graphs"]
            res["bundles"][preset] = {"reused": True, "parity": {
                g: {"fp32": e["parity"]["max_abs_diff"],
                    **{v: ve["parity"]["max_abs_diff"] for v, ve in e["variants"].items()}}
                for g, e in graphs.items()}}
        runs = (("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"))
        for backend, precision in runs if preset in opts.torch_presets else runs[1:]:
            for n in (1, 4):
                row = run_worker("generate", {"dir": str(bdir), "backend": backend, "precision": precision,
                                              "candidates": n, "steps": opts.steps, "repeats": opts.repeats})
                res["generate"].append({"preset": preset, "backend": backend, "precision": precision,
                                        "candidates": n, "steps": opts.steps, **row})
        if preset == DEFAULT_PRESET:  # the memory arena, on (onnxruntime's default) vs off (ours)
            row = run_worker("generate", {"dir": str(bdir), "backend": "onnx", "precision": "int8", "candidates": 4,
                                          "steps": opts.steps, "repeats": opts.repeats, "memory_arena": True})
            res["arena_on"] = {"preset": preset, "backend": "onnx", "precision": "int8", "candidates": 4,
                               "steps": opts.steps, **row}
        if preset == DEFAULT_PRESET:
            res.setdefault("denoiser_options", {})[preset] = run_worker(
                "denoiser_options", {"dir": str(bdir), "candidates": 4, "repeats": opts.repeats + 1})
    # sampler steps (speed side of the steps/quality trade-off), default preset, ONNX default precision
    bdir = work / f"bundle-{DEFAULT_PRESET}"
    res["steps"] = []
    for steps in (10, 15, 20, 25):
        row = run_worker("generate", {"dir": str(bdir), "backend": "onnx", "precision": "int8", "candidates": 4,
                                      "steps": steps, "repeats": opts.repeats})
        res["steps"].append({"steps": steps, **row})
    if opts.bundle:  # the shipped default model itself (trained weights, its own VAE and vocoder sizes)
        res["shipped"] = shipped_rows(opts)
    res["stages"] = run_worker("stages", {"dir": str(work / "stages"), "candidates": 4, "repeats": opts.repeats})
    if not opts.no_peer:
        res["peer"] = run_worker("peer", {"candidates": 4, "steps": opts.peer_steps})
    res["load_after"] = os.getloadavg()
    res["wall_s"] = time.perf_counter() - started
    return res
