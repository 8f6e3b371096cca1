"""`foley`: the headless command line (generate, fill, hits, info, presets, import-official)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.spec import QUALITIES

log = logging.getLogger("foley")


def _video_arg(args: argparse.Namespace, folder: Path, segment_duration: float) -> str:
    """The video to read: the argument itself, or for a still image (PNG/JPEG) a video of it made in `folder`
    (`--still-duration` seconds, default one segment; reused when it is already there with that length)."""
    from engine.media import is_still_image, still_video

    if not is_still_image(args.video):
        return str(args.video)
    length = float(args.still_duration or segment_duration)
    made = folder / f"{Path(args.video).stem}.still-{length:g}s.mp4"
    src = Path(args.video)
    if not made.exists() or (src.exists() and made.stat().st_mtime < src.stat().st_mtime):
        still_video(src, made, length)
        print(f"note: {src.name} is a still image: made {made} ({length:g} s) to generate from", file=sys.stderr)
    return str(made)


def _cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.atomic import atomic_write_text
    from engine.hits import parse_hits_arg
    from engine.media import mux_foley, mux_plan, write_wav
    from engine.pipeline import Progress, load_engine

    engine = load_engine(args.bundle, backend=args.backend, device=args.device, threads=args.threads,
                         backend_options={"precision": args.precision} if args.precision != "auto" else None)
    hits = parse_hits_arg(args.hits, engine.segment_duration)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.video = _video_arg(args, out, engine.segment_duration)
    if engine.manifest.random_weights:
        print(f"warning: bundle '{engine.manifest.name}' holds RANDOM weights: the output is noise, not Foley",
              file=sys.stderr)
    if args.mux and not 0 <= args.mux_candidate < args.candidates:
        raise EngineError(f"--mux-candidate must be between 0 and {args.candidates - 1}")
    bar = tqdm(total=100, unit="%", desc="generate", disable=args.quiet,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

    def on_progress(p: Progress) -> None:
        bar.set_description(p.stage)
        bar.update(round(100 * p.fraction) - bar.n)

    try:
        result = engine.generate(
            args.video, args.start, candidates=args.candidates, seed=args.seed, steps=args.steps,
            guidance=args.guidance, hits=hits, sample_rate=args.sample_rate, on_progress=on_progress,
            guidance_interval=args.guidance_interval, solver_order=args.solver_order, quality=args.quality,
        )
    finally:
        bar.close()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    stem = Path(args.video).stem
    written: list[str] = []
    for cand in result.candidates:
        base = f"{stem}_{result.start:08.3f}s_cand{cand.index}_seed{cand.seed}"
        wav_path, json_path = out / f"{base}.wav", out / f"{base}.json"
        write_wav(wav_path, cand.audio, cand.sample_rate)
        sidecar: dict[str, Any] = {
            **cand.settings, "sample_rate": cand.sample_rate, "num_samples": int(cand.audio.size),
            "wav": wav_path.name, "random_weights": engine.manifest.random_weights,
        }
        atomic_write_text(json_path, json.dumps(sidecar, indent=2) + "\n")
        written.append(str(wav_path))
    if args.mux:
        cand = result.candidates[args.mux_candidate]
        plan = mux_plan(args.video, args.mux)
        if plan.video == "reencode":
            print(f"note: {plan.note}", file=sys.stderr)
        mux_foley(args.video, cand.audio, cand.sample_rate, result.start, args.mux, overwrite=args.overwrite,
                  plan=plan)
        written.append(str(args.mux))
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    used = result.candidates[0].settings
    print(f"{len(result.candidates)} candidates for {result.start:.3f}-{result.start + result.duration:.3f} s "
          f"({engine.backend.name}; {timing}); {result.sample_rate} Hz (rate stage: {used['rate_stage']}); "
          f"hits: {used['hits_source']}"
          + (f" {', '.join(f'{t:.3f}' for t in used['hits'])}" if used["hits"] else ""), file=sys.stderr)
    for w in written:
        print(w)
    return 0


def _cmd_fill(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.bwf import parse_timecode
    from engine.fill import fill_video
    from engine.interchange import TIMELINE_SUFFIXES, TimelineMarker, export_timeline
    from engine.media import mux_foley, mux_plan, probe_video
    from engine.pipeline import Progress, load_engine

    if args.otio and Path(args.otio).suffix.lower() not in TIMELINE_SUFFIXES:
        raise EngineError(f"--otio {args.otio}: write a timeline as {', '.join(TIMELINE_SUFFIXES)}")
    for target in (args.mux, args.otio):
        if target and Path(target).exists() and not args.overwrite:
            raise EngineError(f"{target} already exists; choose another name or pass --overwrite")
    engine = load_engine(args.bundle, backend=args.backend, device=args.device, threads=args.threads,
                         backend_options={"precision": args.precision} if args.precision != "auto" else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = _video_arg(args, out, engine.segment_duration)
    plan = mux_plan(video, args.mux) if args.mux else None  # a bad --mux fails before the generation
    bar = tqdm(total=100, unit="%", desc="fill", disable=args.quiet, bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

    def on_progress(p: Progress) -> None:
        bar.set_description(p.message.split(":")[0])
        bar.update(round(100 * p.fraction) - bar.n)

    try:
        result = fill_video(engine, video, out, overlap=args.overlap, seed=args.seed, steps=args.steps,
                            guidance=args.guidance, hits=args.hits, sample_rate=args.sample_rate,
                            restart=args.restart, on_progress=on_progress)
    except KeyboardInterrupt:
        bar.close()
        print(f"cancelled: the finished segments are kept in {out}; run the same command to resume", file=sys.stderr)
        return 130
    finally:
        bar.close()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    written = [str(result.track)]
    info = probe_video(video)
    if args.otio:
        markers = [TimelineMarker(f"segment {i + 1}", t) for i, t in enumerate(result.starts)]
        export_timeline(args.otio, Path(video).stem + " Foley", video, info.duration, info.fps, result.stem_clips,
                        result.sample_rate, markers, parse_timecode(info.timecode, info.fps))
        written.append(str(args.otio))
    if args.mux:
        import soundfile as sf

        track, rate = sf.read(result.track, dtype="float32")
        if plan is not None and plan.video == "reencode":
            print(f"note: {plan.note}", file=sys.stderr)
        mux_foley(video, track, rate, 0.0, args.mux, overwrite=args.overwrite, plan=plan)
        written.append(str(args.mux))
    print(f"{len(result.starts)} segments ({result.generated} generated, {result.reused} reused) over "
          f"{info.duration:.3f} s at {result.sample_rate} Hz; stems in {out / 'stems'}", file=sys.stderr)
    for w in written:
        print(w)
    return 0


def _cmd_hits(args: argparse.Namespace) -> int:
    import tempfile

    from engine.pipeline import load_engine

    engine = load_engine(args.bundle, backend=args.backend, threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        times = engine.detect_hits(_video_arg(args, Path(tmp), engine.segment_duration), args.start)
    print(json.dumps({"video": str(args.video), "start": float(args.start), "duration": engine.segment_duration,
                      "bundle": engine.manifest.name, "hits": times}, indent=2))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from engine.manifest import load_manifest
    from engine.pipeline import default_bundle_dir

    m = load_manifest(args.bundle or default_bundle_dir(), verify_files=True)
    if args.json:
        print(json.dumps(m.to_dict(), indent=2))
        return 0
    s = m.spec
    lines = [
        f"bundle      {m.name}" + ("   [RANDOM WEIGHTS: a test bundle, not a model]" if m.random_weights else ""),
        f"description {m.description}" if m.description else None,
        f"segment     {s.duration:.3f} s at {s.sample_rate} Hz ({s.num_samples} samples), mel {s.mel_kind} "
        f"{s.n_mels}x{s.mel_frames}, video {s.num_frames} frames at {s.video_fps:g} fps",
        f"latent      {'x'.join(map(str, s.latent_shape))}, token grid {s.token_grid[0]}x{s.token_grid[1]} "
        f"(time on the {'column' if s.time_axis == 'col' else 'row'} axis)",
        f"condition   {m.condition}",
        "output      " + (f"{s.sample_rate} Hz as generated, 48000 Hz through the bandwidth extension "
                          f"({m.components['bwe'].type})" if "bwe" in m.components else
                          f"{s.sample_rate} Hz as generated, 48000 Hz by plain resampling (no bandwidth extension)"),
        f"sampler     {m.sampler_defaults}",
    ]
    for name, c in m.components.items():
        cfg = ", ".join(f"{k}={v}" for k, v in c.config.items() if not isinstance(v, (dict, list)))
        lines.append(f"{name:<11} {c.type} {('(' + c.file + ')') if c.file else ''} {cfg}")
    for gname, g in m.onnx.get("graphs", {}).items():
        variants = ", ".join(f"{v} (parity {meta['parity']['max_abs_diff']:.1e})"
                             for v, meta in g.get("variants", {}).items())
        lines.append(f"onnx        {gname}: {g['file']} (parity {g['parity']['max_abs_diff']:.1e})"
                     + (f"; variants {variants}" if variants else ""))
    for k, v in _flat_items(m.provenance):
        lines.append(f"provenance  {k}: {v}")
    for k, v in m.metrics.items():
        lines.append(f"metric      {k}: {v}")
    print("\n".join(line for line in lines if line))
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from engine.spec import SPECS

    try:
        from engine.nn.denoiser import PRESETS, preset_parameter_counts
    except ImportError as exc:
        raise EngineError("counting parameters needs torch: pip install 'mdsgen-foley[torch]'") from exc
    paper = {"T": 5e6, "S": 33e6, "B": 131e6, "L": 461e6}
    for spec_name in args.spec:
        spec = SPECS[spec_name]
        counts = preset_parameter_counts(spec)
        print(f"spec {spec.name}: latent {'x'.join(map(str, spec.latent_shape))}, {spec.num_tokens} tokens")
        print(f"  {'preset':<7}{'depth':>6}{'width':>7}{'heads':>7}{'inference':>14}{'with side':>14}{'paper':>9}"
              f"{'diff':>9}")
        for name, preset in PRESETS.items():
            inf, total = counts[name]
            diff = 100.0 * (inf - paper[name]) / paper[name]
            print(f"  {name:<7}{preset.depth:>6}{preset.hidden_size:>7}{preset.num_heads:>7}{inf / 1e6:>13.3f}M"
                  f"{total / 1e6:>13.3f}M{paper[name] / 1e6:>8.0f}M{diff:>+8.1f}%")
        print("  T uses the paper's stated shape (12 layers, width 192, 3 heads); that shape cannot give the paper's"
              " '5 M', it has ~8.4-8.7 M.")
    return 0


def _flat_items(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts (an imported bundle's provenance.sources) as dotted keys, one line per leaf."""
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _flat_items(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                out += _flat_items(x, f"{prefix}{k}.{i}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _cmd_import_official(args: argparse.Namespace) -> int:
    try:
        from engine.nn.official import import_official
    except ImportError as exc:
        raise EngineError("importing checkpoints needs torch: pip install 'mdsgen-foley[torch]'") from exc

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"import-official: {msg}", file=sys.stderr)

    result = import_official(
        mdsgen=args.mdsgen, audioldm=args.audioldm, cavp=args.cavp, out=args.out, trusted=args.trust_pickle,
        strip_prefixes=tuple(args.strip_prefix or ()), overwrite=args.overwrite, onnx=not args.no_onnx,
        onnx_precisions=("fp32",) if args.no_int8 else ("fp32", "int8"), progress=say,
    )
    for role, notes in result.notes.items():
        for note in notes:
            say(f"{role}: {note}")
    for name, graph in (result.onnx.get("graphs") or {}).items():
        parity = graph.get("parity", {})
        say(f"onnx {name}: max |torch - onnx| {parity.get('max_abs_diff', float('nan')):.2g} "
            f"(tolerance {parity.get('tolerance', float('nan')):g})" + (" + int8" if graph.get("variants") else ""))
    say(result.manifest.provenance.get("licence", ""))
    print(result.bundle_dir)
    return 0


def _interval(text: str) -> tuple[float, float] | str | None:
    """--guidance-interval: "LO,HI" noise levels, "all" (None: every step guided) or "default"."""
    if text in ("all", "default"):
        return None if text == "all" else text
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO,HI (two numbers) or 'all'") from None
    if not 0.0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"{text!r}: the interval needs 0 <= LO < HI")
    return (lo, hi)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="foley", description="Generate Foley for video segments with MDSGen.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate Foley candidates for one 8.2 s segment of a video")
    g.add_argument("video", help="a video file (anything FFmpeg/PyAV reads) or CAVP features (.npy/.npz, T x 512)")
    g.add_argument("--start", type=float, default=0.0, help="segment start in seconds (default 0)")
    g.add_argument("--candidates", "-n", type=int, default=4, help="how many takes (default 4)")
    g.add_argument("--seed", type=int, default=0, help="candidate k uses seed + k (default 0)")
    g.add_argument("--steps", type=int, default=None, help="sampler steps (default: the bundle's, 25)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default 5)")
    g.add_argument("--guidance-interval", type=_interval, default="default", metavar="LO,HI|all",
                   help="guide only where the noise level sigma/alpha is in (LO, HI] (e.g. 0.28,5.42; the other "
                        "steps cost half), or 'all' (every step); default: the bundle's")
    g.add_argument("--solver-order", type=int, choices=[2, 3], default=None,
                   help="DPM-Solver++ multistep order: 2 (2M, MDSGen's) or 3 (3M); default: the bundle's")
    g.add_argument("--quality", choices=list(QUALITIES), default="final",
                   help="final (the bundle's sampler, default) or draft (15 steps, guidance on the EDM2 interval: "
                        "faster, to audition ideas; a little worse); --steps/--guidance-interval override it")
    g.add_argument("--bundle", default=None, help="model bundle folder (default: the shipped model)")
    g.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    g.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    g.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto",
                   help="ONNX denoiser precision (auto: the bundle's default; int8 on the CPU)")
    g.add_argument("--hits", default="auto", metavar="auto|none|T1,T2,...|FILE.json",
                   help="where the sounds start, in seconds from --start: auto (the bundle's hit detector), none "
                        "(ambience), a comma-separated list, or a JSON file (a list, or {\"hits\": [...]} as "
                        "`foley hits` prints); bundles without hits ignore them (default auto)")
    g.add_argument("--sample-rate", type=int, choices=[16000, 48000], default=None,
                   help="the takes' rate: 48000 (the default of a bundle with a bandwidth extension: its 8-24 kHz "
                        "band predicted; plain resampling for a bundle without one) or 16000 (as generated)")
    g.add_argument("--out", "-o", default="foley_out", help="folder for the WAVs and their JSON sidecars")
    g.add_argument("--mux", default=None, metavar="OUT.mp4", help="also write the video with a candidate as its audio")
    g.add_argument("--mux-candidate", type=int, default=0, help="which candidate goes into --mux (default 0)")
    g.add_argument("--overwrite", action="store_true", help="let --mux replace an existing file")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    g.add_argument("--still-duration", type=float, default=None, metavar="S",
                   help="for a still image (PNG/JPEG): the length of the video made of it (default one segment)")
    g.set_defaults(func=_cmd_generate)

    f = sub.add_parser("fill", help="Foley for a whole video: overlapping segments, one take each, crossfaded; "
                                    "resumable",
                       description="Cover the whole video with overlapping segments (one take each, seed + its "
                                   "index), crossfade them into one track of the video's length and write it as a "
                                   "24-bit Broadcast WAV (OUT/foley.wav) with one stem per segment (OUT/stems/). "
                                   "An interrupted fill resumes with the same command.")
    f.add_argument("video", help="a video file, or a still image (PNG/JPEG, see --still-duration)")
    f.add_argument("--out", "-o", required=True, help="folder for the track, the stems and the resumable segments")
    f.add_argument("--mux", default=None, metavar="OUT.mp4", help="also write the video with the whole track")
    f.add_argument("--otio", default=None, metavar="OUT.otio",
                   help="also write a timeline (video, stems, a marker per segment): .otio, or .xml for Final Cut "
                        "Pro 7 XML (Premiere, Resolve)")
    f.add_argument("--overlap", type=float, default=1.6, help="seconds neighbouring segments overlap (default 1.6)")
    f.add_argument("--seed", type=int, default=0, help="segment k uses seed + k (default 0)")
    f.add_argument("--steps", type=int, default=None, help="sampler steps (default: the bundle's, 25)")
    f.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default 5)")
    f.add_argument("--hits", choices=["auto", "none"], default="auto",
                   help="auto: each segment's hits from the bundle's detector; none: ambience (default auto)")
    f.add_argument("--sample-rate", type=int, choices=[16000, 48000], default=None,
                   help="the track's rate (default: 48000 with a bandwidth extension, else 16000)")
    f.add_argument("--still-duration", type=float, default=None, metavar="S",
                   help="for a still image: the length of the video made of it (default one segment)")
    f.add_argument("--restart", action="store_true", help="start again in an --out folder holding another fill")
    f.add_argument("--overwrite", action="store_true", help="let --mux / --otio replace existing files")
    f.add_argument("--bundle", default=None, help="model bundle folder (default: the shipped model)")
    f.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    f.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    f.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    f.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto")
    f.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    f.set_defaults(func=_cmd_fill)

    h = sub.add_parser("hits", help="print the hits the bundle's detector finds in a segment, as JSON")
    h.add_argument("video", help="a video file")
    h.add_argument("--start", type=float, default=0.0, help="segment start in seconds (default 0)")
    h.add_argument("--bundle", default=None, help="model bundle folder (default: the shipped model)")
    h.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    h.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    h.add_argument("--still-duration", type=float, default=None, metavar="S",
                   help="for a still image: the length of the video made of it (default one segment)")
    h.set_defaults(func=_cmd_hits)

    i = sub.add_parser("info", help="describe a model bundle")
    i.add_argument("bundle", nargs="?", default=None)
    i.add_argument("--json", action="store_true", help="print the whole manifest")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("presets", help="parameter counts of the denoiser presets T, S, B, L")
    r.add_argument("--spec", action="append", choices=["diff-foley", "audioldm"], default=None)
    r.set_defaults(func=_cmd_presets)

    o = sub.add_parser(
        "import-official",
        help="make a bundle of the public MDSGen release (MDSGen-B, AudioLDM VAE + vocoder, CAVP)",
        description="Check the public files against their exact layouts, convert them into a bundle (safetensors "
                    "+ manifest with sources and licences) and export its ONNX graphs with parity checks. Nothing "
                    "is downloaded: see the README for where to get the files.",
    )
    o.add_argument("--mdsgen", required=True, metavar="CKPT", help="MDSGen's mdsgen_audioldm.pt")
    o.add_argument("--audioldm", required=True, metavar="DIR",
                   help="a saved cvssp/audioldm-s-full-v2 pipeline folder (with vae/ and vocoder/) or its hub-cache "
                        "folder")
    o.add_argument("--cavp", required=True, metavar="CKPT", help="Diff-Foley's cavp_epoch66.ckpt")
    o.add_argument("--out", required=True, metavar="BUNDLE", help="the bundle folder to write")
    o.add_argument("--trust-pickle", action="store_true",
                   help="allow full unpickling of .pt/.ckpt/.bin files that hold more than tensors (runs code from "
                        "the file: only for files from a source you trust)")
    o.add_argument("--strip-prefix", action="append", metavar="PREFIX",
                   help="remove PREFIX from every key of the MDSGen checkpoint (e.g. 'module.' for a DataParallel "
                        "re-save)")
    o.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder at --out")
    o.add_argument("--no-onnx", action="store_true", help="skip the ONNX export (the bundle then runs on torch only)")
    o.add_argument("--no-int8", action="store_true", help="export fp32 ONNX graphs only (no int8 denoiser variant)")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    o.set_defaults(func=_cmd_import_official)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "spec", "x") is None:
        args.spec = ["diff-foley", "audioldm"]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
