"""Train and measure the 16 -> 48 kHz bandwidth extension (`engine.bwe`, `engine.nn.bwe`) on full-band recordings.

    python -m training.bwe train --out RUN [--minutes 8] [--cache ~/.cache/mdsgen-foley]   # resumes from RUN
    python -m training.bwe measure --out RUN                                               # test-split LSD
    python -m training.bwe add --out RUN --bundle BUNDLE                      # put it into a bundle (+ ONNX graph)
    python -m training.bwe figure --out RUN --bundle B --video V --start S   # a generated take at 16 vs 48 kHz

Data: every full-band (44.1 kHz or more: `Recording.full_band`) recording of the extracted source catalogues
(`training.datasets.sources`; 0ad-data's are 44.1/48 kHz, MegaGlest's and OpenArena's often 22 kHz and left out),
split by source recording exactly as the Foley dataset splits them (`foley_real.assign_splits`, split seed 0), so
no test recording is trained on. A recording is mixed to mono and resampled to 48 kHz (the target); its input is
the same audio taken down to 16 kHz and back (what a 16 kHz take holds), or that through the mel and Griffin-Lim
(`--input griffin-lim`: what the engine's vocoder hands the extension). Training: random 128-frame crops of the
concatenated train recordings, a random gain of +-20 dB (the same shift of input and target log magnitudes), L1
on log magnitudes above the cut-off, Adam. `measure` writes RUN/bwe-metrics.json: on the test recordings the
log-spectral distance to the 48 kHz original over the full band and over 8-24 kHz, for plain resampling and for
the extension, from the real and from the Griffin-Lim 16 kHz input, and RUN/bwe-spectrograms.png. A checkpoint
every minute; a new `train` on the same RUN continues from it.
The val L1 is logged every 100 steps; the last weights are kept (`keep_best` in `train` keeps the best val's).
`python -m training.run` runs the same training as its stage "bwe" (`training.stages.bwe`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from engine import bwe
from engine.atomic import atomic_write_text
from engine.nn.bundle import load_weights, save_weights
from engine.nn.bwe import BandwidthNet, BweConfig

log = logging.getLogger("training.bwe")
GAP_S = 0.05
CROP = 128
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff")


def recordings_by_split(cache: Path, min_rate: int = 44_100) -> dict[str, list[Path]]:
    """Local paths of the catalogued full-band recordings under `cache/extracted`, by split (train/val/test).

    The splits are the Foley dataset's (every extracted package's catalogue, cross-package duplicates dropped,
    `foley_real.assign_splits` with split seed 0); a recording the catalogue does not flag `full_band` (under
    44.1 kHz: many of MegaGlest's and OpenArena's are 22 kHz) or below `min_rate` holds no band to extend to and is
    left out of every split.
    """
    from training.datasets import foley_real, sources

    packages = sources.extracted_packages(cache)
    if not packages:
        raise SystemExit(f"error: no source catalogue under {cache / 'extracted'}; run "
                         "`python -m training.datasets.foley_real fetch` first")
    try:
        recs = sources.prepare(cache, packages, download=False, log=log.info).recordings
    except sources.SourceError as err:
        raise SystemExit(f"error: {err}") from err
    split_of = foley_real.assign_splits(recs, 0.1, 0.1, 0)  # over all of them, as the dataset splits them
    out: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for r in sorted(recs, key=lambda r: r.id):
        if r.full_band and r.sample_rate >= min_rate:
            out[split_of[r.id]].append(cache / "extracted" / r.local)
    return out


def load_mono(path: Path, rate: int = bwe.SR_HIGH) -> np.ndarray:
    """A recording mixed to mono, at `rate` (`engine.bwe.resample`)."""
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return bwe.resample(x.mean(axis=1), sr, rate)


def load_48k(path: Path) -> np.ndarray:
    return load_mono(path, bwe.SR_HIGH)


def stream(paths: list[Path]) -> np.ndarray:
    """The recordings end to end at 48 kHz with GAP_S of silence between them, length a multiple of 3."""
    gap = np.zeros(int(GAP_S * bwe.SR_HIGH), np.float32)
    parts = [p for path in paths for p in (load_48k(path), gap)]
    x = np.concatenate(parts) if parts else np.zeros(3 * bwe.HOP, np.float32)
    return x[: len(x) - len(x) % 3]


def band_limited(x48: np.ndarray) -> np.ndarray:
    """What a 16 kHz take of the 48 kHz signal holds, back at 48 kHz (the input of the extension)."""
    return bwe.upsample(bwe.downsample(x48))[: len(x48)]


#: What the network is trained on as its 16 kHz input: the recording taken down to 16 kHz ("real"), or that through
#: the default spec's mel and Griffin-Lim ("griffin-lim": what the engine's vocoder makes of a mel, the input the
#: shipped model gives it).
INPUTS = ("real", "griffin-lim")


def vocoded(x16: np.ndarray, n_iter: int = 32) -> np.ndarray:
    """16 kHz audio through the default spec's mel and Griffin-Lim (`engine.audio`), segment by segment."""
    from engine.audio import griffin_lim, wav_to_mel
    from engine.spec import DIFF_FOLEY as spec

    out = np.zeros(len(x16), np.float32)
    for i, a in enumerate(range(0, len(x16), spec.num_samples)):
        chunk = x16[a : a + spec.num_samples]
        out[a : a + len(chunk)] = griffin_lim(wav_to_mel(chunk, spec), spec, n_iter=n_iter, seed=i)[: len(chunk)]
    return out


def input_16k(x48: np.ndarray, kind: str = "real") -> np.ndarray:
    """The 16 kHz input of kind `kind` (`INPUTS`) for a 48 kHz recording."""
    if kind not in INPUTS:
        raise ValueError(f"bandwidth-extension input must be one of {INPUTS}, got {kind!r}")
    x16 = bwe.downsample(x48)
    return vocoded(x16) if kind == "griffin-lim" else x16


def features(x48: np.ndarray, kind: str = "real") -> tuple[np.ndarray, np.ndarray]:
    """(input log mags (LOW_BINS, T), target log mags (HIGH_BINS, T)) of one stream, for input `kind`."""
    low = bwe.network_input(bwe.analyse(bwe.upsample(input_16k(x48, kind))[: len(x48)]))[0]
    target = bwe.log_magnitude(bwe.analyse(x48)[0, bwe.LOW_BINS :])
    return low, target


def features_of(x48: np.ndarray, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`features` of every input kind, end to end in time (the target repeated)."""
    pairs = [features(x48, k) for k in kinds]
    return np.concatenate([p[0] for p in pairs], axis=1), np.concatenate([p[1] for p in pairs], axis=1)


def folder_recordings(folders: list[Path], *, val_frac: float = 0.1, test_frac: float = 0.1, seed: int = 0,
                      min_rate: int = 44_100) -> dict[str, list[Path]]:
    """The audio files (wav, flac, ogg, aiff) under `folders` recorded at `min_rate` or more, split by a seeded hash
    of their path relative to their folder (stable when more files arrive); files below the rate hold no high band
    and are left out."""
    import hashlib

    import soundfile as sf

    out: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for folder in folders:
        folder = Path(folder).expanduser()
        files = [folder] if folder.is_file() else sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        for f in files:
            try:
                if sf.info(str(f)).samplerate < min_rate:
                    continue
            except (RuntimeError, sf.LibsndfileError):
                log.warning("skipping %s: not readable audio", f)
                continue
            rel = f.name if folder.is_file() else str(f.relative_to(folder))
            u = int(hashlib.sha256(f"{seed}:{rel}".encode()).hexdigest()[:8], 16) / 2**32
            out["test" if u < test_frac else "val" if u < test_frac + val_frac else "train"].append(f)
    return out


def train(out: Path, paths: dict[str, list[Path]], *, minutes: float = 0.0, steps: int = 0, seed: int = 0,
          batch: int = 32, lr: float = 1e-3, channels: int = BweConfig.channels, val_every: int = 100,
          inputs: tuple[str, ...] = ("real",), keep_best: bool = False) -> dict:
    """Train on `paths["train"]` for `minutes` of wall time or `steps` steps (whichever is given; both: the first
    reached), validating every `val_every` steps on `paths["val"]` (L1 of the high band's log magnitudes) and
    saving the last weights as `out/bwe.safetensors` (`keep_best`: those of the best validation instead;
    measured worse on the test recordings, 11.8 dB LSD against 10.7: the val loss is noisy, docs/results.md).
    `inputs`: the kinds of 16 kHz input trained on (`INPUTS`; several: each recording once per kind).
    Resumes from `out/ckpt.pt` (written every minute). Returns the record also written to `out/bwe.json`."""
    if not paths.get("train"):
        raise ValueError("no training recordings for the bandwidth extension")
    if minutes <= 0 and steps <= 0:
        raise ValueError("give minutes or steps")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.monotonic()
    low, target = features_of(stream(paths["train"]), tuple(inputs))
    log.info("train: %d recordings, %.1f min, features in %.0f s", len(paths["train"]),
             low.shape[1] * bwe.HOP / bwe.SR_HIGH / 60, time.monotonic() - t0)
    vlow, vtarget = features_of(stream(paths["val"]), tuple(inputs)) if paths.get("val") else (None, None)
    net = BandwidthNet(BweConfig(channels=channels))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ckpt, step = out / "ckpt.pt", 0
    best: dict = {"val_l1": float("inf"), "step": 0}
    best_state = None
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        best = {"val_l1": float(state.get("best_val_l1", float("inf"))), "step": int(state.get("best_step", 0))}
        best_state = state.get("best_model")
        rng = np.random.default_rng([seed, step])  # new crops after a resume, not the first run's again
        log.info("resumed at step %d", step)
    floor = bwe.LOG_FLOOR
    lo_t, tg_t = torch.from_numpy(low), torch.from_numpy(target)
    crop = min(CROP, lo_t.shape[1] - 1)
    start, last_ckpt = time.monotonic(), time.monotonic()

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step, "best_val_l1": best["val_l1"],
                    "best_step": best["step"], "best_model": best_state}, tmp)
        tmp.replace(ckpt)

    def validate() -> None:
        nonlocal best_state
        if vlow is None:
            return
        with torch.inference_mode():
            v = float((net(torch.from_numpy(vlow)[None]) - torch.from_numpy(vtarget)[None]).abs().mean())
        if v < best["val_l1"]:
            best.update(val_l1=v, step=step)
            best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
        log.info("step %d loss %.4f val %.4f (best %.4f at %d)", step, float(loss.detach()), v, best["val_l1"],
                 best["step"])

    loss = torch.zeros(())
    while True:
        if minutes > 0 and time.monotonic() - start >= minutes * 60:
            break
        if steps > 0 and step >= steps:
            break
        idx = rng.integers(0, lo_t.shape[1] - crop, size=batch)
        gain = torch.from_numpy(rng.uniform(-20, 20, size=(batch, 1, 1)).astype(np.float32)) * np.log(10) / 20
        x = torch.stack([lo_t[:, i : i + crop] for i in idx]) + gain
        y = torch.stack([tg_t[:, i : i + crop] for i in idx]) + gain
        x, y = x.clamp_min(floor), y.clamp_min(floor)
        loss = (net(x) - y).abs().mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"bandwidth extension: non-finite loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % val_every == 0:
            validate()
        if time.monotonic() - last_ckpt > 60:
            save()
            last_ckpt = time.monotonic()
    if step % val_every:
        validate()
    save()
    if keep_best and best_state is not None:
        net.load_state_dict(best_state)
    save_weights(out / "bwe.safetensors", net)
    rec = {"config": net.config.to_dict(), "inputs": list(inputs), "steps": step,
           "kept_step": best["step"] if keep_best and best_state else step, "best_val_step": best["step"],
           "best_val_l1": best["val_l1"] if best_state else None,
           "train_recordings": len(paths["train"]),
           "val_recordings": len(paths.get("val", []))}
    atomic_write_text(out / "bwe.json", json.dumps(rec, indent=1) + "\n")
    log.info("done: %d steps (kept step %d) -> %s", step, rec["kept_step"], out / "bwe.safetensors")
    return rec


def lsd_rows(net: BandwidthNet, paths: list[Path], inputs: tuple[str, ...] = INPUTS) -> dict:
    """Mean log-spectral distance (dB) to the 48 kHz originals of `paths`, over the full band and over 8-24 kHz, for
    plain resampling of their 16 kHz version and for the extension; "resampled"/"extended" for the real 16 kHz
    input, and the same under "griffin-lim" for the vocoded input (`INPUTS`)."""
    predict = net.predictor()
    rows: dict[str, dict[str, list]] = {k: {"resampled": [], "extended": []} for k in inputs}
    for path in paths:
        ref = load_48k(path)
        ref = ref[: len(ref) - len(ref) % 3]
        if len(ref) < 4 * bwe.N_FFT:
            continue
        for kind in inputs:
            x16 = input_16k(ref, kind)
            for name, est in (("resampled", bwe.upsample(x16)), ("extended", bwe.extend(x16, predict))):
                rows[kind][name].append((bwe.log_spectral_distance(ref, est),
                                         bwe.log_spectral_distance(ref, est, low_hz=8000)))

    def mean(v: list) -> dict:
        a = np.asarray(v, np.float64).reshape(-1, 2)
        return {"lsd_full_db": float(a[:, 0].mean()) if len(a) else None,
                "lsd_8k_24k_db": float(a[:, 1].mean()) if len(a) else None}

    res: dict = {"recordings": len(next(iter(rows.values()))["extended"]) if rows else 0}
    for kind, r in rows.items():
        block = {name: mean(v) for name, v in r.items()}
        if kind == "real":
            res.update(block)
        else:
            res[kind] = block
    return res


def load_net(out: Path) -> BandwidthNet:
    meta = json.loads((out / "bwe.json").read_text())
    net = BandwidthNet(BweConfig.from_dict(meta["config"]))
    return load_weights(net, out / "bwe.safetensors", what="bandwidth extension")


def plot_examples(paths: list[Path], predict, png: Path, n: int = 3) -> None:
    """Spectrograms (0-24 kHz) of `n` test recordings: the original, plain resampling and the extension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picked = [p for p in paths if 1.0 <= len(load_48k(p)) / bwe.SR_HIGH <= 6.0][:n]
    fig, axes = plt.subplots(len(picked), 3, figsize=(12, 2.6 * len(picked)), squeeze=False)
    for row, path in zip(axes, picked, strict=True):
        ref = load_48k(path)
        ref = ref[: len(ref) - len(ref) % 3]
        x16 = bwe.downsample(ref)
        for ax, (name, sig) in zip(row, (("48 kHz original", ref), ("resampled from 16 kHz", bwe.upsample(x16)),
                                         ("bandwidth extension", bwe.extend(x16, predict))), strict=True):
            db = 20 * np.log10(np.abs(bwe.analyse(sig)[0]) + 1e-5)
            ax.imshow(db, origin="lower", aspect="auto", vmin=-100, vmax=db.max(), cmap="magma",
                      extent=(0, len(sig) / bwe.SR_HIGH, 0, bwe.SR_HIGH / 2000))
            ax.set_title(f"{path.stem}: {name}", fontsize=8)
            ax.set_ylabel("kHz", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)


def measure(out: Path, cache: Path, figure: Path | None = None) -> dict:
    net = load_net(out)
    test = recordings_by_split(cache)["test"]
    res = {"command": f"python -m training.bwe measure --out {out}", **lsd_rows(net, test)}
    if figure is not None:
        plot_examples(test, net.predictor(), figure)
    atomic_write_text(out / "bwe-metrics.json", json.dumps(res, indent=1) + "\n")
    return res


#: the model card's known limit on the rate, with the extension (training.ship and `add` write it)
CARD_LIMIT = ("- Generated at 16 kHz mono (mel up to 7.6 kHz), 8.2 s segments; the 48 kHz output's 8-24 kHz band is "
              "predicted from the 16 kHz take by the bandwidth extension: plausible air and brilliance, not the "
              "sound's own (`--sample-rate 16000` gives the take as generated); the editor crossfades segments.")
CARD_LIMIT_OLD = "- 16 kHz mono, 8.2 s segments"


def plot_generated(bundle: Path, video: Path, start: float, png: Path, seed: int = 0) -> dict:
    """Spectrograms (0-24 kHz) of one take the engine generates for `video` at `start`: at 16 kHz (as generated),
    at 48 kHz by plain resampling and at 48 kHz through the bundle's extension (same seed, same noise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine import load_engine

    eng = load_engine(bundle)
    if not eng.has_bwe:
        raise SystemExit(f"error: bundle {bundle} has no bandwidth extension")
    lo = eng.generate(video, start, candidates=1, seed=seed, sample_rate=16_000).candidates[0]
    hi = eng.generate(video, start, candidates=1, seed=seed, sample_rate=48_000).candidates[0]
    eng.close()
    rows = (("16 kHz take, resampled to 48 kHz", bwe.upsample(lo.audio)),
            (f"48 kHz through the extension ({hi.settings['rate_stage']})", hi.audio))
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 5), squeeze=False)
    for ax, (name, sig) in zip(axes[:, 0], rows, strict=True):
        db = 20 * np.log10(np.abs(bwe.analyse(sig)[0]) + 1e-5)
        ax.imshow(db, origin="lower", aspect="auto", vmin=-100, vmax=db.max(), cmap="magma",
                  extent=(start, start + len(sig) / bwe.SR_HIGH, 0, bwe.SR_HIGH / 2000))
        ax.set_title(f"{video.name} at {start:g} s, seed {seed}: {name}", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
    axes[-1, 0].set_xlabel("s", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)
    band = slice(round(8000 / (bwe.SR_HIGH / bwe.N_FFT)), None)
    energy = {name: float(10 * np.log10(np.mean(np.abs(bwe.analyse(sig)[0, band]) ** 2) + 1e-12))
              for name, sig in rows}
    return {"png": str(png), "mean_power_8k_24k_db": energy}


def card_line(manifest) -> str:
    """The model card's line for a bundle's bandwidth extension (empty without one)."""
    comp = manifest.components.get("bwe")
    if comp is None:
        return ""
    m = manifest.metrics.get("bwe", {})
    n_train = m.get("train_recordings") or m.get("recordings", {}).get("train", "?")
    test = m.get("test_lsd") or m.get("val_lsd") or {}
    which = "test" if m.get("test_lsd") else "validation"
    lsd = (f"; {which} log-spectral distance to the 48 kHz originals {test['extended']['lsd_full_db']:.1f} dB "
           f"against {test['resampled']['lsd_full_db']:.1f} dB for plain resampling "
           f"({test.get('recordings', '?')} held-out recordings)" if test.get("extended") else "")
    gl = test.get("griffin-lim", {})
    lsd += (f"; from Griffin-Lim-vocoded input (what the engine gives it) {gl['extended']['lsd_full_db']:.1f} dB "
            "against "
            f"{gl['resampled']['lsd_full_db']:.1f} dB" if gl.get("extended") else "")
    inputs = " and ".join({"real": "the 16 kHz recordings", "griffin-lim": "their Griffin-Lim vocoding"}.get(k, k)
                          for k in m.get("inputs", ["real"]))
    return (f"- Bandwidth extension (the 48 kHz output, `foley generate --sample-rate 48000`, the default): "
            f"engine.nn.bwe, {comp.config.get('channels')} channels, predicts the 7.5-24 kHz log magnitudes of a "
            f"48 kHz STFT from those below; trained {m.get('steps', '?')} steps on {n_train} full-band source "
            f"recordings of the training split, from {inputs}{lsd}.")


def add_to_bundle(run: Path, bundle: Path):
    """Put RUN's trained extension into `bundle` (`engine.nn.bundle.add_component`: weights, manifest entry, ONNX
    graph checked against torch), with its training record and measurements in the manifest's metrics and
    provenance, and its line in the bundle's MODEL_CARD.md when there is one. RUN may also be a bundle (e.g. the
    shipped one): its extension moves over with its record (the extension works on the 16 kHz audio, whatever
    the model that made it)."""
    from engine.manifest import load_manifest, write_manifest
    from engine.nn.bundle import add_component, load_component

    if (run / "manifest.json").is_file():  # RUN is a bundle that has one: its extension, record and all
        source = load_manifest(run)
        if "bwe" not in source.components:
            raise SystemExit(f"{run} has no bandwidth extension to take")
        add_component(bundle, "bwe", load_component(run, source, "bwe"))
        m = load_manifest(bundle)
        m.metrics["bwe"] = dict(source.metrics.get("bwe", {}))
        m.provenance["bwe"] = {**source.provenance.get("bwe", {}), "taken_from": source.name}
    else:
        meta = json.loads((run / "bwe.json").read_text())
        measured = run / "bwe-metrics.json"
        add_component(bundle, "bwe", load_net(run))
        m = load_manifest(bundle)
        m.metrics["bwe"] = {"steps": meta.get("steps"), "inputs": meta.get("inputs", ["real"]),
                            "train_recordings": meta.get("train_recordings"),
                            **({"test_lsd": json.loads(measured.read_text())} if measured.is_file() else {})}
        m.provenance["bwe"] = {"weights": "trained with `python -m training.bwe train` (the recordings of the Foley "
                                          "dataset's training split: the same sources and licences as the model's)",
                               "run": run.name, "command": meta.get("command", "")}
    write_manifest(bundle, m)
    card = bundle / "MODEL_CARD.md"
    if card.is_file():
        lines = [x for x in card.read_text(encoding="utf-8").splitlines() if not x.startswith("- Bandwidth extension")]
        at = next((i + 1 for i, x in enumerate(lines) if x.startswith("- Vocoder:")), None)
        if at is not None:
            lines.insert(at, card_line(m))
        lines = [CARD_LIMIT if x.startswith(CARD_LIMIT_OLD) else x for x in lines]
        atomic_write_text(card, "\n".join(lines) + "\n")
    return load_manifest(bundle)


def main(argv: list[str] | None = None) -> int:
    from training.datasets.sources import default_cache_dir

    p = argparse.ArgumentParser(prog="python -m training.bwe", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("train", "measure", "add", "figure"))
    p.add_argument("--video", type=Path, help="figure: the video of the generated take")
    p.add_argument("--start", type=float, default=0.0, help="figure: the segment start (s)")
    p.add_argument("--bundle", type=Path, help="add: the bundle that gets the trained extension (and its ONNX graph)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=default_cache_dir())
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--channels", type=int, default=BweConfig.channels, help="the network's width")
    p.add_argument("--input", dest="inputs", action="append", choices=INPUTS, default=None,
                   help="the 16 kHz input trained on (repeatable; default real)")
    p.add_argument("--figure", type=Path, help="spectrogram PNG (default RUN/bwe-spectrograms.png)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    if a.command == "figure":
        if a.bundle is None or a.video is None:
            p.error("figure needs --bundle and --video")
        print(json.dumps(plot_generated(a.bundle, a.video, a.start, a.figure or a.out / "bwe-generated.png"),
                         indent=1))
        return 0
    if a.command == "add":
        if a.bundle is None:
            p.error("add needs --bundle")
        m = add_to_bundle(a.out, a.bundle)
        print(f"{a.bundle}: bandwidth extension {m.components['bwe'].type} added "
              f"({'with' if 'bwe' in m.onnx.get('graphs', {}) else 'without'} an ONNX graph)")
        return 0
    if a.command == "train":
        rec = train(a.out, recordings_by_split(a.cache), minutes=a.minutes, lr=a.lr, channels=a.channels,
                    inputs=tuple(a.inputs or ("real",)))
        cmd = (f"python -m training.bwe train --out {a.out.name} --minutes {a.minutes:g} --channels {a.channels} "
               f"--lr {a.lr:g}" + "".join(f" --input {k}" for k in rec["inputs"]))
        atomic_write_text(a.out / "bwe.json", json.dumps({**rec, "command": cmd}, indent=1) + "\n")
    print(json.dumps(measure(a.out, a.cache, a.figure or a.out / "bwe-spectrograms.png"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
