"""The measurements, each run in its own process (`python -m benchmarks.generation --worker KIND --args JSON`):
a clean peak memory per figure, and an ONNX worker never imports torch."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.generation.common import MODEL, START, VAE_SIZES, VIDEO, VOCODER_SIZES, _best, peak_rss_bytes


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

    def one() -> Any:
        # a new segment (decode and features included), unless the row times a segment prepared ahead (the
        # editor's `prepare` when a segment is marked): then the engine's caches hold its features and motion
        if not args.get("prepared"):
            e.feature_cache.clear()
            e.motion_cache.clear()
        return e.generate(VIDEO, START, candidates=n, seed=0, steps=steps, sample_rate=rate, guidance_interval=gi,
                          solver_order=order)

    _, res = _best(one, args["repeats"])
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
