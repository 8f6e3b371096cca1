"""Where a denoiser step's time goes: ONNX Runtime's profiler over the bundle's denoiser graph (issue #17, "the
denoiser's kernels").

    python -m benchmarks.denoiser_profile [--bundle B] [--precision int8|fp32] [--batch 8] [--runs 20] [--json F]
                                          [--try-fusions]

One session with the engine's own options (`engine.backends.onnx_backend.session_options`: the threads, graph
optimisation and arena it uses) and `enable_profiling`; `--runs` denoiser calls at `--batch` rows (8 = 4 candidates
with classifier-free guidance, the shipped step; 4 = the unguided half of a guidance-interval step) after two
warm-up calls. The profile's kernel events are summed per operator type and per node, so the table says which
kinds of work take the step's time (the GEMMs of attention and the MLP, the quantisation around them, softmax,
normalisation, the reshapes and transposes between them) and how the whole compares to the wall time of a call.
`--try-fusions` also times the graph as ONNX Runtime's transformer optimizer fuses it (then int8 as shipped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def profile(bundle: Path, precision: str = "int8", batch: int = 8, runs: int = 20, threads: int | None = None
            ) -> dict[str, Any]:
    """Kernel time per operator type and per node (ms per call), and the mean wall time of a call."""
    import onnxruntime as ort

    from engine.backends.onnx_backend import session_options
    from engine.manifest import load_manifest

    manifest = load_manifest(bundle, verify_files=False)
    graph = manifest.onnx["graphs"]["denoiser"]
    rel = graph["variants"][precision]["file"] if precision != "fp32" else graph["file"]
    shapes = {i["name"]: i["shape"] for i in graph["inputs"]}
    rng = np.random.default_rng(0)
    feeds = {}
    for name, shape in shapes.items():
        dims = [batch if isinstance(d, str) else int(d) for d in shape]
        feeds[name] = (rng.random(dims, dtype=np.float32) * 500.0 if name == "timestep"
                       else rng.standard_normal(dims, dtype=np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(threads=threads)
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "denoiser")
        sess = ort.InferenceSession(str(bundle / rel), so, providers=["CPUExecutionProvider"])
        for _ in range(2):
            sess.run(None, feeds)
        t0 = time.perf_counter()
        for _ in range(runs):
            sess.run(None, feeds)
        wall = (time.perf_counter() - t0) / runs
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    by_node: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    model_runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    counted = model_runs[-runs:]  # the timed calls (the warm-up ones come first)
    start = counted[0]["ts"] if counted else 0
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or e["ts"] < start:
            continue
        op = e.get("args", {}).get("op_name", "?")
        by_op[op] += e["dur"]
        by_node[e["name"][: -len("_kernel_time")]] += e["dur"]
        calls[op] += 1
    scale = 1e-3 / max(1, len(counted))  # us over all timed calls -> ms per call
    kernel = sum(by_op.values()) * scale
    ops = sorted(({"op": k, "ms": v * scale, "share": v * scale / kernel if kernel else 0.0,
                   "nodes": calls[k] // max(1, len(counted))} for k, v in by_op.items()),
                 key=lambda r: -r["ms"])
    nodes = sorted(({"node": k, "ms": v * scale} for k, v in by_node.items()), key=lambda r: -r["ms"])[:15]
    return {"bundle": manifest.name, "precision": precision, "batch": batch, "runs": runs,
            "threads": threads or "engine default", "wall_ms": wall * 1e3, "kernel_ms": kernel,
            "ops": ops, "top_nodes": nodes}


def alternate(sessions: dict[str, Any], feeds: dict[str, np.ndarray], runs: int
              ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each session's first output and its median seconds per call over `runs`, the sessions run in turn (so a
    machine's load falls on all of them alike)."""
    outs = {k: s.run(None, feeds)[0] for k, s in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(runs):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds)
            times[k].append(time.perf_counter() - t0)
    return outs, {k: float(np.median(v)) for k, v in times.items()}


def try_fusions(bundle: Path, batch: int = 8, runs: int = 6, heads: int = 3) -> dict[str, Any]:
    """ONNX Runtime's transformer optimizer (its BERT fusions: attention, SkipLayerNorm, Gelu) on the fp32 graph,
    quantised as the exporter does (`quantize_dynamic`, MatMul, int8 weights); both int8 graphs timed alternately
    in one process (median of `runs`), with the largest output difference."""
    import warnings

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from engine.backends.onnx_backend import session_options
    from engine.manifest import load_manifest

    graph = load_manifest(bundle, verify_files=False).onnx["graphs"]["denoiser"]
    hidden = int(next(i["shape"][-1] for i in graph["inputs"] if i["name"] == "condition"))
    rng = np.random.default_rng(0)
    feeds = {i["name"]: rng.standard_normal([batch if isinstance(d, str) else int(d) for d in i["shape"]],
                                            dtype=np.float32) for i in graph["inputs"]}
    feeds["timestep"] = np.full(batch, 500.0, np.float32)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = optimize_model(str(bundle / graph["file"]), model_type="bert", num_heads=heads, hidden_size=hidden,
                               opt_level=0, use_gpu=False)
        stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
        fused.save_model_to_file(os.path.join(tmp, "fused.onnx"))
        quantize_dynamic(os.path.join(tmp, "fused.onnx"), os.path.join(tmp, "fused.int8.onnx"),
                         op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
        sessions = {name: ort.InferenceSession(path, session_options(), providers=["CPUExecutionProvider"])
                    for name, path in (("shipped int8", str(bundle / graph["variants"]["int8"]["file"])),
                                       ("fused int8", os.path.join(tmp, "fused.int8.onnx")))}
        outs, seconds = alternate(sessions, feeds, runs)
    med = {k: v * 1e3 for k, v in seconds.items()}
    return {"fusions": stats, "ms": med, "ratio": med["fused int8"] / med["shipped int8"],
            "max_abs_diff": float(np.abs(outs["fused int8"] - outs["shipped int8"]).max()), "batch": batch}


def report(res: dict[str, Any], top: int = 14) -> str:
    lines = [f"Denoiser `{res['bundle']}` ({res['precision']}), batch {res['batch']}: {res['wall_ms']:.1f} ms per "
             f"call (wall, mean of {res['runs']}), {res['kernel_ms']:.1f} ms in kernels "
             f"({100 * res['kernel_ms'] / res['wall_ms']:.0f} %; the rest is the session's own overhead)", "",
             "| operator | ms per call | share of kernel time | nodes |", "|---|---:|---:|---:|"]
    for r in res["ops"][:top]:
        lines.append(f"| {r['op']} | {r['ms']:.2f} | {100 * r['share']:.1f} % | {r['nodes']} |")
    rest = res["ops"][top:]
    if rest:
        lines.append(f"| {len(rest)} other types | {sum(r['ms'] for r in rest):.2f} | "
                     f"{100 * sum(r['share'] for r in rest):.1f} % | {sum(r['nodes'] for r in rest)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.denoiser_profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped model)")
    ap.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    ap.add_argument("--batch", type=int, action="append", help="rows per call (repeatable; default 8 and 4)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the engine's)")
    ap.add_argument("--try-fusions", action="store_true",
                    help="also time the graph after ONNX Runtime's transformer optimizer (fused, then int8)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    from engine.pipeline import default_bundle_dir

    bundle = Path(args.bundle) if args.bundle else default_bundle_dir()
    out = []
    for b in args.batch or [8, 4]:
        res = profile(bundle, args.precision, b, args.runs, args.threads)
        out.append(res)
        print(report(res) + "\n")
    if args.try_fusions:
        fz = try_fusions(bundle, runs=max(3, args.runs // 3))
        out.append({"try_fusions": fz})
        print(f"ONNX Runtime's transformer optimizer: fused {fz['fusions'] or 'nothing'}; int8 after it "
              f"{fz['ms']['fused int8']:.1f} ms vs {fz['ms']['shipped int8']:.1f} ms per call at batch {fz['batch']} "
              f"({fz['ratio']:.2f}x), outputs differ by up to {fz['max_abs_diff']:.3g}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
