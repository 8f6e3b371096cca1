"""Train and measure the 16 -> 48 kHz bandwidth extension (`engine.bwe`, `engine.nn.bwe`) on full-band recordings.

    python -m training.bwe train --out RUN [--minutes 8] [--cache ~/.cache/mdsgen-foley]   # resumes from RUN
    python -m training.bwe measure --out RUN                                               # test-split LSD

Data: every recording of the extracted source catalogues (`training.datasets.sources`; 0ad-data's are 44.1/48 kHz),
split by source recording exactly as the Foley dataset splits them (`foley_real.assign_splits`, split seed 0), so
no test recording is trained on. A recording is mixed to mono and resampled to 48 kHz (the target); its input is
the same audio taken down to 16 kHz and back (what a 16 kHz take holds). Training: random 128-frame crops of the
concatenated train recordings, a random gain of +-20 dB (the same shift of input and target log magnitudes), L1
on log magnitudes above the cut-off, Adam. `measure` writes RUN/bwe-metrics.json: on the test recordings the
log-spectral distance to the 48 kHz original over the full band and over 8-24 kHz, for plain resampling and for
the extension, and RUN/bwe-spectrograms.png. A checkpoint every minute; a new `train` on the same RUN continues from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from engine import bwe
from engine.manifest import atomic_write_text
from engine.nn.bundle import load_weights, save_weights
from engine.nn.bwe import BandwidthNet, BweConfig

log = logging.getLogger("training.bwe")
GAP_S = 0.05
CROP = 128


def recordings_by_split(cache: Path) -> dict[str, list[Path]]:
    """Local paths of every catalogued recording under `cache/extracted`, by split (train/val/test)."""
    from training.datasets import foley_real, sources

    cats = sorted((cache / "extracted").glob(f"*/{sources.SCAN_FILE}"))
    if not cats:
        raise SystemExit(f"error: no source catalogue under {cache / 'extracted'}; run "
                         "`python -m training.datasets.foley_real fetch` first")
    recs = []
    for c in cats:
        recs += sources.Catalogue.from_json(json.loads(c.read_text())["catalogue"]).recordings
    split_of = foley_real.assign_splits(recs, 0.1, 0.1, 0)
    out: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for r in sorted(recs, key=lambda r: r.id):
        out[split_of[r.id]].append(cache / "extracted" / r.local)
    return out


def load_48k(path: Path) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != bwe.SR_HIGH:
        g = np.gcd(sr, bwe.SR_HIGH)
        x = resample_poly(x, bwe.SR_HIGH // g, sr // g).astype(np.float32)
    return x


def stream(paths: list[Path]) -> np.ndarray:
    """The recordings end to end at 48 kHz with GAP_S of silence between them, length a multiple of 3."""
    gap = np.zeros(int(GAP_S * bwe.SR_HIGH), np.float32)
    parts = [p for path in paths for p in (load_48k(path), gap)]
    x = np.concatenate(parts) if parts else np.zeros(3 * bwe.HOP, np.float32)
    return x[: len(x) - len(x) % 3]


def band_limited(x48: np.ndarray) -> np.ndarray:
    """What a 16 kHz take of the 48 kHz signal holds, back at 48 kHz (the input of the extension)."""
    return bwe.upsample(bwe.downsample(x48))[: len(x48)]


def features(x48: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input log mags (LOW_BINS, T), target log mags (HIGH_BINS, T)) of one stream."""
    low = bwe.network_input(bwe.analyse(band_limited(x48)))[0]
    target = bwe.log_magnitude(bwe.analyse(x48)[0, bwe.LOW_BINS :])
    return low, target


def train(out: Path, cache: Path, minutes: float, seed: int = 0, batch: int = 32, lr: float = 1e-3,
          channels: int = BweConfig.channels) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    paths = recordings_by_split(cache)
    t0 = time.monotonic()
    low, target = features(stream(paths["train"]))
    log.info("train: %d recordings, %.1f min, features in %.0f s", len(paths["train"]),
             low.shape[1] * bwe.HOP / bwe.SR_HIGH / 60, time.monotonic() - t0)
    vlow, vtarget = features(stream(paths["val"]))
    net = BandwidthNet(BweConfig(channels=channels))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ckpt, step = out / "ckpt.pt", 0
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        rng = np.random.default_rng([seed, step])  # new crops after a resume, not the first run's again
        log.info("resumed at step %d", step)
    floor = bwe.LOG_FLOOR
    lo_t, tg_t = torch.from_numpy(low), torch.from_numpy(target)
    start, last_ckpt = time.monotonic(), time.monotonic()

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
        tmp.replace(ckpt)

    while time.monotonic() - start < minutes * 60:
        idx = rng.integers(0, lo_t.shape[1] - CROP, size=batch)
        gain = torch.from_numpy(rng.uniform(-20, 20, size=(batch, 1, 1)).astype(np.float32)) * np.log(10) / 20
        x = torch.stack([lo_t[:, i : i + CROP] for i in idx]) + gain
        y = torch.stack([tg_t[:, i : i + CROP] for i in idx]) + gain
        x, y = x.clamp_min(floor), y.clamp_min(floor)
        loss = (net(x) - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            with torch.inference_mode():
                v = (net(torch.from_numpy(vlow)[None]) - torch.from_numpy(vtarget)[None]).abs().mean()
            log.info("step %d loss %.4f val %.4f", step, float(loss.detach()), float(v))
        if time.monotonic() - last_ckpt > 60:
            save()
            last_ckpt = time.monotonic()
    save()
    save_weights(out / "bwe.safetensors", net)
    export_onnx(net, out / "bwe.onnx")
    atomic_write_text(out / "bwe.json", json.dumps({"config": net.config.to_dict(), "steps": step,
                                                    "train_recordings": len(paths["train"])}, indent=1) + "\n")
    log.info("done: %d steps -> %s", step, out / "bwe.safetensors")


def export_onnx(net: BandwidthNet, path: Path, opset: int = 17) -> Path:
    """The network as an ONNX graph (TorchScript exporter; batch and frame axes dynamic), written atomically."""
    net.eval()
    tmp = path.with_suffix(".onnx.tmp")
    example = torch.zeros(1, net.config.low_bins, 64)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation warning (as engine.nn.export)
        torch.onnx.export(net, (example,), str(tmp), dynamo=False, opset_version=opset, input_names=["low_log"],
                          output_names=["high_log"], dynamic_axes={"low_log": {0: "batch", 2: "frames"},
                                                                   "high_log": {0: "batch", 2: "frames"}})
    tmp.replace(path)
    return path


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
    predict = net.predictor()
    rows = {"resampled": [], "extended": []}
    test = recordings_by_split(cache)["test"]
    for path in test:
        ref = load_48k(path)
        ref = ref[: len(ref) - len(ref) % 3]
        if len(ref) < 4 * bwe.N_FFT:
            continue
        x16 = bwe.downsample(ref)
        for name, est in (("resampled", bwe.upsample(x16)), ("extended", bwe.extend(x16, predict))):
            rows[name].append((bwe.log_spectral_distance(ref, est), bwe.log_spectral_distance(ref, est, low_hz=8000)))
    res = {"recordings": len(rows["extended"]), "command": f"python -m training.bwe measure --out {out}"}
    if figure is not None:
        plot_examples(test, predict, figure)
    for name, v in rows.items():
        a = np.asarray(v)
        res[name] = {"lsd_full_db": float(a[:, 0].mean()), "lsd_8k_24k_db": float(a[:, 1].mean())}
    atomic_write_text(out / "bwe-metrics.json", json.dumps(res, indent=1) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    from training.datasets.sources import default_cache_dir

    p = argparse.ArgumentParser(prog="python -m training.bwe", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("train", "measure"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=default_cache_dir())
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--channels", type=int, default=BweConfig.channels, help="the network's width")
    p.add_argument("--figure", type=Path, help="spectrogram PNG (default RUN/bwe-spectrograms.png)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    if a.command == "train":
        train(a.out, a.cache, a.minutes, lr=a.lr, channels=a.channels)
    print(json.dumps(measure(a.out, a.cache, a.figure or a.out / "bwe-spectrograms.png"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
