"""Generation speed on this machine: per stage, torch vs ONNX, presets, peak memory, GEMM peaks and a peer.

    python -m benchmarks.generation            # the full run (~10 min on 2 cores); rewrites docs/benchmarks.md
    python -m benchmarks.generation --quick    # preset T only, fewer repeats (~3 min); prints, writes no doc
    python -m benchmarks.generation --repeats 1 --torch-presets T   # what the committed doc ran (shared machine)
    python -m benchmarks.generation --rates    # the shipped model at 16 vs 48 kHz output only (~1 min); no doc

Every measurement runs in its own subprocess (`--worker`), so that each figure has a clean peak memory and no
runtime's threads disturb another's: an ONNX worker never imports torch. All models have RANDOM weights (speed
only, never quality) and the production shapes: the DIFF_FOLEY spec (4x16x64 latent, 256 tokens, 32 video frames,
128x512 mel, 131072 samples). The bundle per preset is: the MDSGen denoiser preset, the EfficientNet-Lite0 frame
encoder with its projection, a small mono VAE and the default Vocos-style vocoder (see `MODEL` below).

Timings are the best of `--repeats` runs after one warm-up (the machine is shared: the best run is the one least
disturbed); the load average before and after the run is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
VIDEO = ROOT / "resources" / "demo" / "bbb_excerpt.mp4"
START = 1.0
BEGIN, END = "<!-- BEGIN GENERATED: python -m benchmarks.generation -->", "<!-- END GENERATED -->"

#: The benchmark model around each denoiser preset (random weights). The VAE and vocoder sizes of the trained
#: default model are not decided yet; these are the small ones the stage sweep below finds fast.
MODEL: dict[str, Any] = {
    "vae": {"block_out_channels": [32, 64, 128, 128], "layers_per_block": 1, "norm_num_groups": 32},
    "vocoder": {"dim": 256, "intermediate_dim": 768, "num_layers": 8},
}
DEFAULT_PRESET = "T"  # the benchmark's "default model": the fastest preset, the one the demo ships
VAE_SIZES = {
    "vae-tiny (32,32,32,32)": {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1, "norm_num_groups": 8},
    "vae-small (32,64,128,128)": MODEL["vae"],
    "vae-medium (64,128,256,256) x2": {"block_out_channels": [64, 128, 256, 256], "layers_per_block": 2,
                                       "norm_num_groups": 32},
}
VOCODER_SIZES = {
    "vocos-small (128, 4 layers)": {"dim": 128, "intermediate_dim": 384, "num_layers": 4},
    "vocos-default (256, 8 layers)": MODEL["vocoder"],
}
TARGETS = {"total_s": 1.5, "gemm_fraction": 0.80, "peer_speedup": 100.0, "peak_gb": 1.0}


# ---------------------------------------------------------------------------------------------------------------
# Helpers (no torch)
# ---------------------------------------------------------------------------------------------------------------
def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM on Linux, ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", cpuinfo).group(1)  # type: ignore[union-attr]
        flags = set(re.search(r"flags\s*:\s*(.*)", cpuinfo).group(1).split())  # type: ignore[union-attr]
        info["isa"] = sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
                                                        "amx_int8", "avx_vnni", "fma"})
    except (OSError, AttributeError):
        info["cpu"] = platform.processor()
    info["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    info["numpy"] = np.__version__
    return info


def _best(fn, repeats: int, budget_s: float = 15.0) -> tuple[float, Any]:
    """Best wall time of `fn()` over `repeats` runs (stops early once a run alone exceeds `budget_s`)."""
    best, best_out = float("inf"), None
    for _i in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if dt < best:
            best, best_out = dt, out
        if dt > budget_s:
            break
    return best, best_out


# ---------------------------------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# ---------------------------------------------------------------------------------------------------------------
def worker_build(args: dict[str, Any]) -> dict[str, Any]:
    """Write a RANDOM-weight bundle for one preset with the benchmark model and export its ONNX graphs."""
    import torch

    from engine.nn.bundle import write_bundle
    from engine.nn.denoiser import build_denoiser, count_parameters
    from engine.nn.export import export_onnx
    from engine.nn.frame_encoder import FrameEncoderConfig, VideoFeatureModel, load_pretrained_backbone_state
    from engine.nn.vae import MelVAE, VAEConfig
    from engine.nn.vocoder import Vocoder, VocoderConfig
    from engine.spec import DIFF_FOLEY as spec

    torch.manual_seed(0)
    den = build_denoiser(spec, args["preset"])
    with torch.no_grad():  # zero-initialised output layers would make eps exactly 0
        for key, p in den.named_parameters():
            if ("final_layer" in key or "adaLN_modulation" in key) and p.dim() > 1:
                p.normal_(0.0, 0.02)
    vae = MelVAE(config=VAEConfig(latent_channels=spec.latent_channels, **{
        k: tuple(v) if isinstance(v, list) else v for k, v in MODEL["vae"].items()}))
    fe = VideoFeatureModel(config=FrameEncoderConfig(feature_dim=spec.feature_dim))
    fe.encoder.backbone.load_state_dict(load_pretrained_backbone_state(), strict=False)
    voc = Vocoder(config=VocoderConfig(n_mels=spec.n_mels, n_fft=spec.n_fft, hop_length=spec.hop_length,
                                       **MODEL["vocoder"]))
    t0 = time.perf_counter()
    write_bundle(args["dir"], name=f"bench-{args['preset']}", spec=spec, denoiser=den, vae=vae, frame_encoder=fe,
                 vocoder=voc, random_weights=True, description="RANDOM weights: speed benchmark only")
    m = export_onnx(args["dir"])
    def n_params(*modules: torch.nn.Module) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    params = {"denoiser": count_parameters(den), "vae_decoder": n_params(vae.vae.decoder, vae.vae.post_quant_conv),
              "vocoder": n_params(voc), "frame_encoder": n_params(fe)}
    parity = {g: {"fp32": e["parity"]["max_abs_diff"],
                  **{v: ve["parity"]["max_abs_diff"] for v, ve in e["variants"].items()}}
              for g, e in m.onnx["graphs"].items()}
    return {"export_s": time.perf_counter() - t0, "params": params, "parity": parity}


def worker_generate(args: dict[str, Any]) -> dict[str, Any]:
    """Load a bundle on one backend and time full generations (one warm-up, then the best of `repeats`)."""
    from engine import load_engine

    t0 = time.perf_counter()
    opts = ({"precision": args["precision"], "memory_arena": args.get("memory_arena", False)}
            if args["backend"] == "onnx" else None)
    e = load_engine(args["dir"], backend=args["backend"], backend_options=opts)
    load_s = time.perf_counter() - t0
    n, steps, rate = args["candidates"], args["steps"], args.get("sample_rate")
    rate = e.sample_rate if rate is None else rate  # the generated rate unless a row asks for another
    gi = tuple(args["guidance_interval"]) if args.get("guidance_interval") else None
    order = int(args.get("solver_order", 2))
    e.generate(VIDEO, START, candidates=n, seed=0, steps=2, sample_rate=rate)  # warm-up: allocations, caches
    _, res = _best(lambda: e.generate(VIDEO, START, candidates=n, seed=0, steps=steps, sample_rate=rate,
                                      guidance_interval=gi, solver_order=order), args["repeats"])
    return {"load_s": load_s, "timings": res.timings, "peak_rss": peak_rss_bytes(),
            "torch_imported": "torch" in sys.modules, "providers": e.backend.providers_in_use,
            "sample_rate": res.sample_rate, "rate_stage": res.settings["rate_stage"]}


def ort_gemm_peaks(n: int, reps: int) -> dict[str, float]:
    """onnxruntime's fp32 MatMul and int8 DynamicQuantizeMatMul rates (FLOP/s) on n x n products, the right-hand
    matrix a constant (prepacked) as the models' weights are; DynamicQuantizeMatMul is the kernel the int8 denoiser
    runs (uint8 x int8 on VNNI)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from engine.backends.onnx_backend import session_options

    flops = 2.0 * n**3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)

    def rate(node: Any, weights: list[np.ndarray]) -> float:
        inits = [numpy_helper.from_array(w, name) for w, name in zip(weights, node.input[1:])]
        g = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])], initializer=inits)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
        model.ir_version = 8
        s = ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
        s.run(None, {"A": a})
        return flops / _best(lambda: s.run(None, {"A": a}), reps)[0]

    return {
        "fp32 onnxruntime MatMul": rate(helper.make_node("MatMul", ["A", "W"], ["Y"]),
                                        [rng.standard_normal((n, n), dtype=np.float32)]),
        "int8 onnxruntime DynamicQuantizeMatMul": rate(
            helper.make_node("DynamicQuantizeMatMul", ["A", "W", "S", "Z"], ["Y"], domain="com.microsoft"),
            [rng.integers(-127, 128, (n, n), dtype=np.int8), np.array(0.01, np.float32), np.array(0, np.int8)]),
    }


def torch_gemm_peaks(n: int, reps: int) -> dict[str, float]:
    """torch's fp32 and bf16 (oneDNN, AVX-512 bf16) matmul rates (FLOP/s) on n x n products, 2 threads."""
    import torch

    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = {}
    with torch.inference_mode():
        for label, (x, y) in {"fp32 torch": (a, b), "bf16 torch (oneDNN)": (a.bfloat16(), b.bfloat16())}.items():
            x @ y
            out[label] = 2.0 * n**3 / _best(lambda x=x, y=y: x @ y, reps)[0]
    return out


def worker_gemm(args: dict[str, Any]) -> dict[str, Any]:
    """The machine's GEMM peak: square n x n products, best of several, in the libraries the engine could use."""
    n, reps = args["n"], args["repeats"]
    out = ort_gemm_peaks(n, reps)
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    out["fp32 numpy"] = 2.0 * n**3 / _best(lambda: a @ a, reps)[0]
    out.update(torch_gemm_peaks(n, reps))
    return {"n": n, "flops_per_s": out}


def worker_denoiser_options(args: dict[str, Any]) -> dict[str, Any]:
    """One denoiser step at the generation's batch (2 x candidates) under every runtime option worth trying."""
    import onnxruntime as ort

    from engine.backends.onnx_backend import session_options
    from engine.manifest import load_manifest

    bdir = Path(args["dir"])
    m = load_manifest(bdir, verify_files=False)
    g = m.onnx["graphs"]["denoiser"]
    # (hidden,) or (1 + lines, hidden): the exporter recorded the condition input's shape (no torch here)
    cond_shape = next(t["shape"][1:] for t in g["inputs"] if t["name"] == "condition")
    cands, reps = args["candidates"], args["repeats"]
    rng = np.random.default_rng(0)

    def feeds(b: int) -> dict[str, np.ndarray]:
        return {"latent": rng.standard_normal((b, *m.spec.latent_shape), dtype=np.float32),
                "timestep": np.full((b,), 500.0, np.float32),
                "condition": rng.standard_normal((b, *cond_shape), dtype=np.float32)}

    batch = 2 * cands
    f_all, f_pair = feeds(batch), feeds(2)
    peaks = ort_gemm_peaks(2048, 3)  # again at the end; the best of both is this worker's reference
    rows: list[dict[str, Any]] = []
    files = {"fp32": bdir / g["file"], "int8": bdir / g["variants"]["int8"]["file"]}
    for precision, path in files.items():
        for opt in ("disable", "basic", "extended", "all"):
            for threads in ((1, 2) if opt == "all" else (2,)):
                s = ort.InferenceSession(str(path), session_options(threads=threads, optimization=opt),
                                         providers=["CPUExecutionProvider"])
                s.run(None, f_all)
                t = _best(lambda s=s: s.run(None, f_all), reps)[0]
                rows.append({"runtime": "onnxruntime", "precision": precision, "optimization": opt,
                             "threads": threads, "batching": f"1 call x batch {batch}", "ms": 1000 * t,
                             "opset": m.onnx["opset"]})
                if opt == "all" and threads == 2:
                    s.run(None, f_pair)
                    t = _best(lambda s=s: [s.run(None, f_pair) for _ in range(cands)], reps)[0]
                    rows.append({"runtime": "onnxruntime", "precision": precision, "optimization": opt,
                                 "threads": threads, "batching": f"{cands} calls x batch 2", "ms": 1000 * t,
                                 "opset": m.onnx["opset"]})
    # torch eager, fp32 and bf16 autocast (the processor has AVX-512 bf16; onnxruntime's CPU EP has no bf16 GEMM)
    import torch

    from engine.nn.bundle import load_component

    den = load_component(bdir, m, "denoiser")
    x, tt, y = (torch.from_numpy(f_all[k]) for k in ("latent", "timestep", "condition"))
    torch.set_num_threads(2)
    with torch.inference_mode():
        den.forward_with_condition(x, tt, y)
        t = _best(lambda: den.forward_with_condition(x, tt, y), reps)[0]
        rows.append({"runtime": "torch eager", "precision": "fp32", "optimization": "-", "threads": 2,
                     "batching": f"1 call x batch {batch}", "ms": 1000 * t})
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref = den.forward_with_condition(x, tt, y)
            t = _best(lambda: den.forward_with_condition(x, tt, y), reps)[0]
        full = den.forward_with_condition(x, tt, y)
        rows.append({"runtime": "torch eager", "precision": "bf16 autocast", "optimization": "-", "threads": 2,
                     "batching": f"1 call x batch {batch}", "ms": 1000 * t,
                     "max_abs_diff_vs_fp32": float((ref.float() - full).abs().max())})
    # the same graph at the other opset: 20 has a Gelu operator (tanh approximation), 17 expands it into 8 ops
    from engine.graphs import DENOISER, MIN_OPSET
    from engine.nn.export import export_graph

    other = 20 if m.onnx["opset"] == MIN_OPSET else MIN_OPSET
    d_other = bdir.parent / f"{bdir.name}-opset{other}"
    export_graph(DENOISER, den, m.spec, d_other, component_type="mdsgen", opset=other)
    for precision, rel in (("fp32", DENOISER.filename), ("int8", DENOISER.variant_filename("int8"))):
        s = ort.InferenceSession(str(d_other / rel), session_options(), providers=["CPUExecutionProvider"])
        s.run(None, f_all)
        t = _best(lambda s=s: s.run(None, f_all), reps)[0]
        rows.append({"runtime": "onnxruntime", "precision": precision, "optimization": "all", "threads": 2,
                     "batching": f"1 call x batch {batch}", "ms": 1000 * t, "opset": other})
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        den.forward_with_condition(x, tt, y)
    for k, v in {**ort_gemm_peaks(2048, 3), **torch_gemm_peaks(2048, 3)}.items():
        peaks[k] = max(v, peaks.get(k, 0.0))
    return {"rows": rows, "flops_per_call": float(counter.get_total_flops()), "batch": batch, "peaks": peaks,
            "opset": m.onnx["opset"]}


def worker_stages(args: dict[str, Any]) -> dict[str, Any]:
    """VAE decoder and vocoder sizes, exported and timed in onnxruntime at the 4-candidate batch."""
    import onnxruntime as ort
    import torch

    from engine.backends.onnx_backend import istft, session_options
    from engine.graphs import VAE_DECODER, VOCODER_VOCOS
    from engine.nn.export import export_graph
    from engine.nn.vae import MelVAE, VAEConfig
    from engine.nn.vocoder import Vocoder, VocoderConfig
    from engine.spec import DIFF_FOLEY as spec

    n, reps = args["candidates"], args["repeats"]
    work = Path(args["dir"])
    rng = np.random.default_rng(0)
    rows = []
    z = rng.standard_normal((n, *spec.latent_shape), dtype=np.float32)
    mel = rng.random((n, spec.n_mels, spec.mel_frames), dtype=np.float32)
    for label, cfg in VAE_SIZES.items():
        torch.manual_seed(0)
        vae = MelVAE(config=VAEConfig(latent_channels=spec.latent_channels, **{
            k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
        d = work / re.sub(r"\W+", "_", label)
        export_graph(VAE_DECODER, vae, spec, d, component_type="autoencoder-kl", precisions=("fp32",))
        s = ort.InferenceSession(str(d / VAE_DECODER.filename), session_options(), providers=["CPUExecutionProvider"])
        s.run(None, {"latent": z})
        t = _best(lambda s=s: s.run(None, {"latent": z}), reps)[0]
        params = sum(p.numel() for p in vae.vae.decoder.parameters())
        rows.append({"stage": "VAE decoder", "model": label, "params": params, "ms": 1000 * t})
    for label, cfg in VOCODER_SIZES.items():
        torch.manual_seed(0)
        voc = Vocoder(config=VocoderConfig(n_mels=spec.n_mels, n_fft=spec.n_fft, hop_length=spec.hop_length, **cfg))
        d = work / re.sub(r"\W+", "_", label)
        export_graph(VOCODER_VOCOS, voc, spec, d, component_type="vocos", precisions=("fp32",))
        s = ort.InferenceSession(str(d / VOCODER_VOCOS.filename), session_options(),
                                 providers=["CPUExecutionProvider"])

        def run(s: Any = s) -> np.ndarray:
            lm, ph = s.run(None, {"mel": mel})
            return istft(lm, ph, n_fft=spec.n_fft, hop_length=spec.hop_length, length=spec.num_samples)

        run()
        t = _best(run, reps)[0]
        rows.append({"stage": "vocoder (network + numpy iSTFT)", "model": label,
                     "params": sum(p.numel() for p in voc.parameters()), "ms": 1000 * t})
    return {"rows": rows, "candidates": n}


def worker_peer(args: dict[str, Any]) -> dict[str, Any]:
    """A Diff-Foley-sized latent U-Net (diffusers UNet2DConditionModel, Stable Diffusion 1.4 configuration, random
    weights), torch fp32, one step at the 4-candidate guidance batch on the same 4x16x64 latent."""
    import torch
    from diffusers import UNet2DConditionModel

    from engine.spec import DIFF_FOLEY as spec

    torch.manual_seed(0)
    torch.set_num_threads(2)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    ).eval()
    params = sum(p.numel() for p in unet.parameters())
    batch = 2 * args["candidates"]
    x = torch.randn(batch, *spec.latent_shape)
    ctx = torch.randn(batch, spec.num_frames, 768)  # the video condition as cross-attention context (32 frames)
    t = torch.full((batch,), 500)
    with torch.inference_mode():
        unet(x, t, encoder_hidden_states=ctx)  # warm-up
        times = []
        for _ in range(args["steps"]):
            t0 = time.perf_counter()
            unet(x, t, encoder_hidden_states=ctx)
            times.append(time.perf_counter() - t0)
    return {"params": params, "batch": batch, "step_s": min(times), "steps_measured": len(times),
            "peak_rss": peak_rss_bytes()}


WORKERS = {"build": worker_build, "generate": worker_generate, "gemm": worker_gemm,
           "denoiser_options": worker_denoiser_options, "stages": worker_stages, "peer": worker_peer}


# ---------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------
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


#: the shipped model's rows: (denoiser precision, candidates, steps or None for --steps, output rate); the 16 kHz rows
#: are the generated rate (no rate stage), the 48 kHz one adds the bandwidth extension
# (precision, candidates, steps (None: --steps), output rate, guidance interval (None: every step guided), solver
# order); the last rows are issue #17's levers, which training.evaluate judges
GUIDANCE_INTERVAL = (0.28, 5.42)  # EDM2's noise levels
SHIPPED_ROWS = (("int8", 4, None, 16_000, None, 2), ("int8", 4, None, 48_000, None, 2),
                ("int8", 1, None, 16_000, None, 2), ("fp32", 4, None, 16_000, None, 2),
                ("int8", 4, 10, 16_000, None, 2), ("int8", 4, 15, 16_000, None, 2),
                ("int8", 4, None, 16_000, GUIDANCE_INTERVAL, 2), ("int8", 4, 15, 16_000, GUIDANCE_INTERVAL, 3),
                ("int8", 4, 15, 16_000, None, 3))


def shipped_rows(opts: argparse.Namespace, rows: tuple = SHIPPED_ROWS) -> dict[str, Any]:
    out: dict[str, Any] = {"dir": str(opts.bundle), "rows": []}
    for precision, n, steps, rate, gi, order in rows:
        steps = steps or opts.steps
        row = run_worker("generate", {"dir": str(opts.bundle), "backend": "onnx", "precision": precision,
                                      "candidates": n, "steps": steps, "repeats": opts.repeats, "sample_rate": rate,
                                      "guidance_interval": gi, "solver_order": order})
        out["rows"].append({"precision": precision, "candidates": n, "steps": steps,
                            "guidance_interval": list(gi) if gi else None, "solver_order": order, **row})
    return out


def rates_report(shipped: dict[str, Any], steps: int) -> str:
    """The 48 kHz path against the 16 kHz one, 4 candidates, int8 (`--rates`, and a target row of the report)."""
    by_rate = {r.get("sample_rate", 16_000): r for r in shipped["rows"]
               if (r["precision"], r["candidates"], r["steps"]) == ("int8", 4, steps)}
    if 16_000 not in by_rate or 48_000 not in by_rate:
        return ""
    lo, hi = by_rate[16_000]["timings"]["total"], by_rate[48_000]["timings"]["total"]
    ok = hi <= 1.2 * lo
    return (f"| 48 kHz output ({by_rate[48_000].get('rate_stage')}) vs 16 kHz, 4 candidates end to end, the shipped "
            f"model | {hi:.2f} s vs {lo:.2f} s (+{100 * (hi / lo - 1):.0f} %, extension "
            f"{by_rate[48_000]['timings'].get('extend', 0.0):.2f} s) | <= +20 % | {'yes' if ok else 'no'} |")


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


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------
def _gf(x: float) -> str:
    return f"{x / 1e9:.0f}"


def _command(o: dict[str, Any]) -> str:
    """The command line that reproduces a run, from its options."""
    parts = ["python -m benchmarks.generation"]
    if o.get("quick"):
        parts.append("--quick")
    parts += ["--presets", *o["presets"], "--steps", str(o["steps"]), "--repeats", str(o["repeats"])]
    if o.get("torch_presets") is not None and list(o["torch_presets"]) != list(o["presets"]):
        parts += ["--torch-presets", *o["torch_presets"]]
    if o.get("bundle") and Path(o["bundle"]).resolve() != (ROOT / "resources" / "models" / "default").resolve():
        parts += ["--bundle", str(o["bundle"])]
    if o.get("no_peer"):
        parts.append("--no-peer")
    else:
        parts += ["--peer-steps", str(o["peer_steps"])]
    return " ".join(parts)


def _peaks(opt: dict[str, Any], fallback: dict[str, float]) -> dict[str, float]:
    """fp32/bf16/int8 peaks measured inside a denoiser-options worker (same process, same load), else `fallback`."""
    p = opt.get("peaks")
    if not p:
        return fallback
    return {"fp32": max(p["fp32 onnxruntime MatMul"], p.get("fp32 torch", 0.0)),
            "bf16": p.get("bf16 torch (oneDNN)", fallback["bf16"]),
            "int8": p["int8 onnxruntime DynamicQuantizeMatMul"]}


def report(res: dict[str, Any]) -> str:
    mach, gemm = res["machine"], res["gemm"]["flops_per_s"]
    peak = {"fp32": max(v for k, v in gemm.items() if k.startswith("fp32")),
            "bf16": gemm["bf16 torch (oneDNN)"], "int8": gemm["int8 onnxruntime DynamicQuantizeMatMul"]}
    steps = res["options"]["steps"]
    L: list[str] = [
        BEGIN,
        f"Run of {res['date']} (`{_command(res['options'])}`, "
        f"{res['wall_s'] / 60:.1f} min): {mach.get('cpu')}, {mach['cores']} cores usable, "
        f"ISA {', '.join(mach.get('isa', []))}; onnxruntime {mach['onnxruntime']}, numpy {mach['numpy']}, "
        f"Python {mach['python']}. Load average (1 min) {res['load_before'][0]:.2f} before, "
        f"{res['load_after'][0]:.2f} after (the machine is shared; figures are the best of "
        f"{res['options']['repeats']} runs after a warm-up, one run when a run takes over 15 s). RANDOM weights, "
        "production shapes, except the shipped default model's rows (its trained weights).",
        "",
        "### Targets",
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
    ]
    gen = res["generate"]

    def find(preset: str, backend: str, precision: str, n: int) -> dict[str, Any] | None:
        for r in gen:
            if (r["preset"], r["backend"], r["precision"], r["candidates"]) == (preset, backend, precision, n):
                return r
        return None

    default = find(DEFAULT_PRESET, "onnx", "int8", 4)
    shipped = [r for r in res.get("shipped", {}).get("rows", [])
               if (r["precision"], r["candidates"], r["steps"]) == ("int8", 4, steps)]
    what = "the shipped default model" if shipped else f"preset {DEFAULT_PRESET} (random weights)"
    if shipped:
        default = {**shipped[0], "preset": DEFAULT_PRESET, "backend": "onnx"}
    opt_t = res.get("denoiser_options", {}).get(DEFAULT_PRESET)
    if default:
        total = default["timings"]["total"]
        L.append(f"| 4 candidates x 8.2 s end to end, {what}, ONNX int8, {steps} steps | "
                 f"{total:.2f} s | <= {TARGETS['total_s']} s | {'yes' if total <= TARGETS['total_s'] else 'no'} |")
        if opt_t:
            engine_row = min((r for r in opt_t["rows"] if r["runtime"] == "onnxruntime" and r["precision"] == "int8"
                              and r["optimization"] == "all" and r["threads"] == 2 and r["batching"].startswith("1 ")
                              and r.get("opset") == opt_t.get("opset", 17)), key=lambda r: r["ms"])
            rate = opt_t["flops_per_call"] / (engine_row["ms"] / 1000)
            p8 = _peaks(opt_t, peak)["int8"]
            L.append(f"| denoiser (preset {DEFAULT_PRESET}, int8, batch {opt_t['batch']}, the engine's settings) "
                     f"share of the int8 GEMM peak measured in the same process | {100 * rate / p8:.0f} % "
                     f"({_gf(rate)} of {_gf(p8)} GFLOP/s) | >= 80 % | "
                     f"{'yes' if rate / p8 >= TARGETS['gemm_fraction'] else 'no'} |")
        if "peer" in res:
            peer_total = res["peer"]["step_s"] * 25
            speedup = peer_total / total
            L.append(f"| speed-up over the Diff-Foley-sized peer (its 25 denoising steps alone vs our whole "
                     f"generation) | {speedup:.0f}x ({peer_total:.0f} s vs {total:.2f} s) | >= 100x | "
                     f"{'yes' if speedup >= TARGETS['peer_speedup'] else 'no'} |")
        rates = rates_report(res.get("shipped", {"rows": []}), steps)
        if rates:
            L.append(rates)
        gb = default["peak_rss"] / 1e9
        L.append(f"| peak memory of the process (load + generate, 4 candidates) | {gb:.2f} GB | <= 1 GB | "
                 f"{'yes' if gb <= TARGETS['peak_gb'] else 'no'} |")
    L += ["", "### Per stage (seconds; 4 and 1 candidates; " f"{steps} DPM-Solver++ steps with guidance)", "",
          "| preset | backend | denoiser precision | cand. | video decode | frame features | denoise | VAE | "
          "vocoder | total | per step | load | peak memory |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(gen, key=lambda r: ("TSBL".index(r["preset"]), -r["candidates"], r["backend"], r["precision"])):
        t = r["timings"]
        L.append(f"| {r['preset']} | {r['backend']} | {r['precision']} | {r['candidates']} | {t['video']:.2f} | "
                 f"{t['features']:.2f} | {t['denoise']:.2f} | {t['decode']:.2f} | {t['vocode']:.2f} | "
                 f"**{t['total']:.2f}** | {1000 * t['denoise'] / r['steps']:.0f} ms | {r['load_s']:.1f} | "
                 f"{r['peak_rss'] / 1e9:.2f} GB |")
    if res.get("shipped"):
        L += ["", "### The shipped default model (resources/models/default, trained weights, ONNX Runtime)", "",
              *shipped_table(res["shipped"])]
    if "arena_on" in res and default:
        a, t = res["arena_on"], default["timings"]
        L += ["", f"onnxruntime's CPU memory arena (its default) on the same run as the T/onnx/int8/4 row: total "
              f"{a['timings']['total']:.2f} s (VAE {a['timings']['decode']:.2f} s), peak memory "
              f"{a['peak_rss'] / 1e9:.2f} GB; without it (the engine's setting): {t['total']:.2f} s (VAE "
              f"{t['decode']:.2f} s), {default['peak_rss'] / 1e9:.2f} GB."]
    L += ["", "### GEMM peak of this machine (square 2048 products, 2 threads)", "", "| kernel | GFLOP/s |",
          "|---|---|"]
    L += [f"| {k} | {_gf(v)} |" for k, v in gemm.items()]
    L += ["", f"Peaks used: fp32 {_gf(peak['fp32'])}, bf16 {_gf(peak['bf16'])}, int8 {_gf(peak['int8'])} GFLOP/s "
          "(int8 counts a multiply-add of 8-bit numbers as 2 operations, like the others)."]
    for preset, o in res.get("denoiser_options", {}).items():
        L += ["", f"### Denoiser options, preset {preset}: one step for 4 candidates with guidance "
              f"({o['flops_per_call'] / 1e9:.1f} GFLOP per step)", "",
              "| runtime | opset | precision | graph optimisation | threads | batching | ms per step | GFLOP/s | "
              "share of its precision's peak |", "|---|---|---|---|---|---|---|---|---|"]
        pk = _peaks(o, peak)
        if o.get("peaks"):
            L.insert(len(L) - 2, f"Shares are of the peaks measured in the same process, before and after these "
                     f"rows: fp32 {_gf(pk['fp32'])}, bf16 {_gf(pk['bf16'])}, int8 {_gf(pk['int8'])} GFLOP/s.\n")
        for r in sorted(o["rows"], key=lambda r: r["ms"]):
            prec = "bf16" if r["precision"].startswith("bf16") else r["precision"]
            rate = o["flops_per_call"] / (r["ms"] / 1000)
            extra = f" (max abs diff vs fp32 {r['max_abs_diff_vs_fp32']:.3f})" if "max_abs_diff_vs_fp32" in r else ""
            L.append(f"| {r['runtime']} | {r.get('opset', '-')} | {r['precision']}{extra} | {r['optimization']} | "
                     f"{r['threads']} | "
                     f"{r['batching']} | {r['ms']:.1f} | {_gf(rate)} | {100 * rate / pk[prec]:.0f} % |")
    L += ["", "### Sampler steps (speed only), preset " f"{DEFAULT_PRESET}, ONNX int8, 4 candidates", "",
          "| steps | denoise s | total s |", "|---|---|---|"]
    L += [f"| {r['steps']} | {r['timings']['denoise']:.2f} | {r['timings']['total']:.2f} |" for r in res["steps"]]
    st = res["stages"]
    L += ["", f"### VAE decoder and vocoder sizes (onnxruntime fp32, {st['candidates']} candidates in one call)", "",
          "| stage | model | parameters | ms |", "|---|---|---|---|"]
    L += [f"| {r['stage']} | {r['model']} | {r['params'] / 1e6:.1f} M | {r['ms']:.0f} |" for r in st["rows"]]
    if "peer" in res:
        p = res["peer"]
        L += ["", "### Peer: Diff-Foley-sized latent U-Net", "",
              f"diffusers UNet2DConditionModel, Stable Diffusion 1.4 configuration, {p['params'] / 1e6:.1f} M "
              f"parameters, random weights, torch fp32, 2 threads, the same 4x16x64 latent, batch {p['batch']} "
              f"(4 candidates x guidance pair), 32-token cross-attention context: **{p['step_s']:.2f} s per step** "
              f"(best of {p['steps_measured']} after a warm-up), so 25 steps take "
              f"**{25 * p['step_s']:.0f} s** (extrapolated from the per-step cost measured in this run; its VAE "
              f"and vocoder are not counted). Peak memory {p['peak_rss'] / 1e9:.2f} GB."]
    L += ["", "### Export parity (max abs difference, torch vs onnxruntime, fixed inputs)", "",
          "| preset | graph | fp32 | int8 |", "|---|---|---|---|"]
    for preset, b in res["bundles"].items():
        for g, d in b.get("parity", {}).items():
            L.append(f"| {preset} | {g} | {d['fp32']:.2e} | {d['int8']:.2e} |" if "int8" in d else
                     f"| {preset} | {g} | {d['fp32']:.2e} | - |")
    L += ["", END]
    return "\n".join(L)


def shipped_table(shipped: dict[str, Any]) -> list[str]:
    L = ["| denoiser precision | cand. | solver, steps | guided | output | video decode | frame features | denoise | "
         "VAE | vocoder | 48 kHz stage | total | load | peak memory |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in shipped["rows"]:
        t = r["timings"]
        gi = r.get("guidance_interval")
        guided = f"σ/α in ({gi[0]:g}, {gi[1]:g}]" if gi else "every step"
        L.append(f"| {r['precision']} | {r['candidates']} | {r.get('solver_order', 2)}M, {r['steps']} | {guided} | "
                 f"{r.get('sample_rate', 16_000) // 1000} kHz "
                 f"| {t['video']:.2f} | {t['features']:.2f} | {t['denoise']:.2f} | {t['decode']:.2f} | "
                 f"{t['vocode']:.2f} | {t.get('extend', 0.0):.2f} | **{t['total']:.2f}** | {r['load_s']:.1f} | "
                 f"{r['peak_rss'] / 1e9:.2f} GB |")
    return L


def write_doc(path: Path, block: str) -> None:
    from engine.atomic import atomic_write_text

    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="preset T only, 1 repeat, 1 peer step; writes no doc")
    p.add_argument("--presets", nargs="+", default=None, choices=["T", "S", "B"], help="default: T S B")
    p.add_argument("--steps", type=int, default=25, help="sampler steps of a generation (default 25)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure, best kept (default 2)")
    p.add_argument("--peer-steps", type=int, default=None, help="peer U-Net steps to time (default 2)")
    p.add_argument("--torch-presets", nargs="*", default=None, choices=["T", "S", "B"],
                   help="presets that also get the torch rows (default: all measured presets)")
    p.add_argument("--no-peer", action="store_true", help="skip the peer U-Net")
    p.add_argument("--rates", action="store_true",
                   help="only the shipped model at 16 and 48 kHz (4 candidates, int8, the same run); writes no doc")
    p.add_argument("--bundle", default=None, help="a trained bundle to time as 'the default model' (default: the "
                                                  "shipped resources/models/default when present)")
    p.add_argument("--no-bundle", action="store_true", help="do not time the shipped default model")
    p.add_argument("--work", default=None, help="folder for the bundles (reused when present)")
    p.add_argument("--doc", default=None, help=f"markdown file to update (default {DOC.relative_to(ROOT)}; "
                                               "--quick writes none unless given)")
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--report-only", default=None, metavar="JSON",
                   help="measure nothing: render the report (and --doc) from a --json file of an earlier run")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--args", default=None, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.worker:
        print(json.dumps(WORKERS[opts.worker](json.loads(opts.args))))
        return 0
    opts.presets = opts.presets or (["T"] if opts.quick else ["T", "S", "B"])
    opts.torch_presets = opts.presets if opts.torch_presets is None else opts.torch_presets
    opts.repeats = opts.repeats or (1 if opts.quick else 2)
    opts.peer_steps = opts.peer_steps or (1 if opts.quick else 2)
    shipped = ROOT / "resources" / "models" / "default"
    if opts.no_bundle:
        opts.bundle = None
    elif opts.bundle is None and (shipped / "manifest.json").is_file():
        opts.bundle = str(shipped)
    if opts.rates:
        if not opts.bundle:
            p.error("--rates needs the shipped model or --bundle")
        rows = tuple(r for r in SHIPPED_ROWS if r[:3] == ("int8", 4, None) and r[4] is None and r[5] == 2)
        shipped = shipped_rows(opts, rows)
        print("\n".join(["| target | measured | goal | met |", "|---|---|---|---|", rates_report(shipped, opts.steps),
                         "", *shipped_table(shipped)]))
        if opts.json:
            Path(opts.json).write_text(json.dumps(shipped, indent=1, default=str))
        return 0
    res = json.loads(Path(opts.report_only).read_text()) if opts.report_only else run_all(opts)
    block = report(res)
    print(block)
    if opts.json and not opts.report_only:
        Path(opts.json).write_text(json.dumps(res, indent=1, default=str))
    doc = Path(opts.doc) if opts.doc else (None if opts.quick else DOC)
    if doc is not None:
        write_doc(doc, block)
        print(f"benchmark: wrote {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
