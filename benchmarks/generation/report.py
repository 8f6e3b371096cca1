"""The report: the Markdown block of docs/benchmarks.md from a run's results (also `--report-only` from its JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.generation.common import BEGIN, DEFAULT_PRESET, END, ROOT, TARGETS


def shipped_default_interval(shipped: dict[str, Any]) -> list[float] | None:
    """The guidance interval of the rows that time the shipped default (the 48 kHz row's)."""
    return next((r.get("guidance_interval") for r in shipped["rows"] if r.get("sample_rate") == 48_000), None)


def rates_report(shipped: dict[str, Any], steps: int) -> str:
    """The 48 kHz path against the 16 kHz one, 4 candidates, int8 (`--rates`, and a target row of the report)."""
    by_rate = {r.get("sample_rate", 16_000): r for r in shipped["rows"]
               if (r["precision"], r["candidates"], r["steps"], r.get("solver_order", 2), bool(r.get("prepared")))
               == ("int8", 4, steps, 2, False) and r.get("guidance_interval") == shipped_default_interval(shipped)}
    if 16_000 not in by_rate or 48_000 not in by_rate:
        return ""
    lo, hi = by_rate[16_000]["timings"]["total"], by_rate[48_000]["timings"]["total"]
    ok = hi <= 1.2 * lo
    return (f"| 48 kHz output ({by_rate[48_000].get('rate_stage')}) vs 16 kHz, 4 candidates end to end, the shipped "
            f"model | {hi:.2f} s vs {lo:.2f} s (+{100 * (hi / lo - 1):.0f} %, extension "
            f"{by_rate[48_000]['timings'].get('extend', 0.0):.2f} s) | <= +20 % | {'yes' if ok else 'no'} |")


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
    gi = shipped_default_interval(res.get("shipped", {"rows": []}))
    shipped = [r for r in res.get("shipped", {}).get("rows", [])  # the shipped default: a new segment at 16 kHz
               if (r["precision"], r["candidates"], r["steps"], r.get("solver_order", 2), bool(r.get("prepared")),
                   r.get("sample_rate", 16_000)) == ("int8", 4, steps, 2, False, 16_000)
               and r.get("guidance_interval") == gi]
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
    L = ["| denoiser precision | cand. | solver, steps | guided | output | segment | video decode | frame features | "
         "denoise | VAE | vocoder | 48 kHz stage | total | load | peak memory |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in shipped["rows"]:
        t = r["timings"]
        gi = r.get("guidance_interval")
        guided = f"σ/α in ({gi[0]:g}, {gi[1]:g}]" if gi else "every step"
        L.append(f"| {r['precision']} | {r['candidates']} | {r.get('solver_order', 2)}M, {r['steps']} | {guided} | "
                 f"{r.get('sample_rate', 16_000) // 1000} kHz | {'prepared' if r.get('prepared') else 'new'} "
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
