"""`python -m training.vocoder_levers`: the decoder chain's vocoder levers on the source recordings, fast.

    python -m training.vocoder_levers --out eval/vocoder-levers [--iters 32 64 128] [--momentum 0.99 0.0]

Issue #15 asks for the vocoder levers to be measured on the vocoded control before any denoiser work. The full
control (`python -m training.evaluate`, 100 test clips) needs the Foley dataset built and preprocessed (about an
hour on 2 cores); this measures the same thing on what the clips are made of: every test-split recording of the
source catalogue (split by source recording exactly as the dataset is), mono at 16 kHz, cut to one segment. Each
condition is embedded with the evaluation's AI-SFX embedder (`training.sfx_embed`) and scored as the evaluation
scores it: category accuracy = 1-NN among the real test recordings (never the recording itself), FAD against the
real val-split recordings. Conditions: "real" (the recording at 16 kHz), and for each Griffin-Lim setting the
mel of the recording padded with silence to a segment (the default spec's, as the VAE sees it) through
`engine.audio.griffin_lim` with that many iterations and that momentum (0.99: the engine's fast Griffin-Lim; 0:
the plain algorithm), cut back to the recording's length; with `--oracle` also the mel's magnitude with the
recording's own phase (a perfect phase for this mel); with `--vae SPEC:DIR` the reconstruction control (the mel
through a VAE, then Griffin-Lim); with `--ceilings` the front-end's own ceilings: the
recording's true |STFT| through Griffin-Lim (what a perfect magnitude would give this phase retrieval), and the true
phase and Griffin-Lim on the mel of other front-ends (the full 0-8 kHz band instead of 125-7600 Hz, 256 bands
instead of 128): a mel whose own ceiling is low cannot be rescued by a vocoder that only inverts it. Writes
OUT/metrics.json and prints a table. Numbers are per recording, not per rendered clip: compare conditions within one
run, not with the evaluation's table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def load_16k(path: Path, n: int) -> tuple[np.ndarray, int]:
    """The recording at 16 kHz mono, padded with silence or cut to `n` samples, and its own length (<= n)."""
    from training.bwe import load_mono

    x = load_mono(path, 16_000)
    out = np.zeros(n, np.float32)
    out[: min(n, len(x))] = x[:n]
    return out, min(n, len(x))


def oracle_phase(x: np.ndarray, spec) -> np.ndarray:
    """The segment's mel turned back into a magnitude (as Griffin-Lim starts) with the recording's own STFT phase:
    what a vocoder with a perfect phase could make of this mel."""
    from engine import audio

    kw = {"n_fft": spec.n_fft, "hop_length": spec.hop_length}
    full = audio.stft(x[None], **kw)  # (1, F, frames + 1)
    mel = audio.wav_to_mel(x, spec)
    mel = np.concatenate([mel, mel[..., -1:]], axis=-1)
    mag = audio.mel_to_magnitude(audio.decompress(mel, spec), spec)[None]
    return audio.istft(mag * (full / (np.abs(full) + 1e-12)), length=spec.num_samples, **kw)[0]


def true_magnitude_griffin_lim(x: np.ndarray, spec, seed: int) -> np.ndarray:
    """The recording's own |STFT| (no mel at all) through Griffin-Lim: the phase retrieval's ceiling."""
    from engine import audio

    mag = np.abs(audio.stft(x[None], n_fft=spec.n_fft, hop_length=spec.hop_length))[0]
    return audio.griffin_lim_magnitude(mag, spec, seed=seed)


def front_ends(spec) -> dict[str, object]:
    """Other mel front-ends of the same STFT (the latent height follows the band count, as the spec requires)."""
    from dataclasses import replace

    return {"mel 128 bands 0-7600 Hz": replace(spec, fmin=0.0),
            "mel 128 bands 125-8000 Hz": replace(spec, fmax=8000.0),
            "mel 128 bands 0-8000 Hz": replace(spec, fmin=0.0, fmax=8000.0),
            "mel 256 bands 0-8000 Hz": replace(spec, n_mels=256, fmin=0.0, fmax=8000.0,
                                              latent_height=2 * spec.latent_height)}


def load_vae(folder: Path):
    """A VAE from a bundle folder (manifest.json) or a run's vae stage folder (done.json), with its weights."""
    from engine.nn.bundle import load_weights
    from engine.nn.vae import MelVAE, VAEConfig

    if (folder / "manifest.json").is_file():
        config = json.loads((folder / "manifest.json").read_text())["components"]["vae"]["config"]
    else:
        config = json.loads((folder / "done.json").read_text())["config"]
    vae = MelVAE(config=VAEConfig.from_dict(config))
    return load_weights(vae, folder / "vae.safetensors", what="vae").eval()


def vae_reconstruction(vae, x: np.ndarray, spec, seed: int) -> np.ndarray:
    """The recording's mel through the VAE (posterior mean, decoded) and Griffin-Lim: the reconstruction control."""
    import torch

    from engine import audio

    img = audio.to_mel_image(audio.wav_to_mel(x, spec)[None], spec).astype(np.float32)
    with torch.inference_mode():
        t = torch.from_numpy(img)
        rec = vae.decode(vae.encode(t)).clamp(0, 1).numpy()
    return audio.griffin_lim(audio.from_mel_image(rec, spec)[0], spec, seed=seed)


def main(argv: list[str] | None = None) -> int:
    from engine.atomic import atomic_write_text
    from engine.audio import griffin_lim, wav_to_mel
    from engine.spec import DIFF_FOLEY as spec
    from training.bwe import recordings_by_split
    from training.datasets import sources
    from training.sfx_embed import SfxEmbedder, frechet_distance, nearest_label_accuracy

    p = argparse.ArgumentParser(prog="python -m training.vocoder_levers", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=sources.default_cache_dir())
    p.add_argument("--iters", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--momentum", type=float, nargs="+", default=[0.99])
    p.add_argument("--max-recordings", type=int, default=0, help="cap per split (0: all)")
    p.add_argument("--oracle", action="store_true",
                   help="also the mel's magnitude with the recording's own phase (a perfect phase for this mel)")
    p.add_argument("--ceilings", action="store_true",
                   help="also the true |STFT| through Griffin-Lim and the true phase on other mel front-ends")
    p.add_argument("--vae", action="append", default=[], metavar="SPEC:DIR",
                   help="also the reconstruction control (the mel of spec SPEC through the VAE in DIR, a bundle or a "
                        "run's stages/vae folder, then Griffin-Lim); repeatable")
    a = p.parse_args(argv)
    by_split = recordings_by_split(a.cache)
    cats = {}
    for c in sorted((a.cache / "extracted").glob(f"*/{sources.SCAN_FILE}")):
        for r in sources.Catalogue.from_json(json.loads(c.read_text())["catalogue"]).recordings:
            cats[str(a.cache / "extracted" / r.local)] = r.category
    test, val = by_split["test"], by_split["val"]
    if a.max_recordings:
        test, val = test[: a.max_recordings], val[: a.max_recordings]
    n = spec.num_samples
    emb = SfxEmbedder()
    loaded = [load_16k(q, n) for q in test]
    padded, lengths = [x for x, _ in loaded], [k for _, k in loaded]
    real = [x[:k] for x, k in loaded]
    labels = [cats[str(q)] for q in test]
    t0 = time.perf_counter()
    ref_val = np.concatenate([e.blocks for e in emb.embed([x[:k] for x, k in (load_16k(q, n) for q in val)],
                                                          16_000)])
    conditions: dict[str, list[np.ndarray]] = {"real": real}
    seconds: dict[str, float] = {"real": 0.0}
    for m in a.momentum:
        for it in a.iters:
            name = f"griffin-lim {it} iter, momentum {m:g}"
            t = time.perf_counter()
            conditions[name] = [griffin_lim(wav_to_mel(x, spec), spec, n_iter=it, seed=k, momentum=m)[: lengths[k]]
                                for k, x in enumerate(padded)]
            seconds[name] = (time.perf_counter() - t) / len(real)
    if a.oracle:
        conditions["mel magnitude, true phase (oracle)"] = [oracle_phase(x, spec)[: lengths[k]]
                                                            for k, x in enumerate(padded)]
        seconds["mel magnitude, true phase (oracle)"] = 0.0
    if a.ceilings:
        name = "true |STFT|, griffin-lim 32 iter"
        t = time.perf_counter()
        conditions[name] = [true_magnitude_griffin_lim(x, spec, k)[: lengths[k]] for k, x in enumerate(padded)]
        seconds[name] = (time.perf_counter() - t) / len(real)
        for label, other in front_ends(spec).items():
            conditions[f"{label}, true phase (oracle)"] = [oracle_phase(x, other)[: lengths[k]]
                                                           for k, x in enumerate(padded)]
            seconds[f"{label}, true phase (oracle)"] = 0.0
            name = f"{label}, griffin-lim 32 iter"
            t = time.perf_counter()
            conditions[name] = [griffin_lim(wav_to_mel(x, other), other, seed=k)[: lengths[k]]
                                for k, x in enumerate(padded)]
            seconds[name] = (time.perf_counter() - t) / len(real)
    for item in a.vae:
        from engine.spec import SPECS

        spec_name, _, folder = item.partition(":")
        vspec, vae = SPECS[spec_name], load_vae(Path(folder).expanduser())
        where = Path(folder).expanduser().resolve()
        label = where.parent.parent.name if where.name == "vae" and where.parent.name == "stages" else where.name
        name = f"VAE {label} on the {spec_name} mel, griffin-lim 32 iter"
        t = time.perf_counter()
        conditions[name] = [vae_reconstruction(vae, x, vspec, k)[: lengths[k]] for k, x in enumerate(padded)]
        seconds[name] = (time.perf_counter() - t) / len(real)
    embedded = {c: emb.embed(w, 16_000) for c, w in conditions.items()}
    refs = np.stack([e.clip for e in embedded["real"]])
    rows = {}
    for c, es in embedded.items():
        q = np.stack([e.clip for e in es])
        rows[c] = {"category_acc": nearest_label_accuracy(q, labels, refs, labels, list(range(len(es)))),
                   "fad": frechet_distance(np.concatenate([e.blocks for e in es]), ref_val),
                   "seconds_per_take": seconds[c]}
    res = {"command": "python -m training.vocoder_levers " + " ".join(argv if argv is not None else sys.argv[1:]),
           "recordings": {"test": len(test), "val": len(val)}, "categories": len(set(labels)),
           "chance": max(labels.count(x) for x in set(labels)) / len(labels), "conditions": rows,
           "wall_s": time.perf_counter() - t0}
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out / "metrics.json", json.dumps(res, indent=1) + "\n")
    print(f"{len(test)} test recordings, {res['categories']} categories (chance {res['chance']:.1%}); FAD against "
          f"{len(val)} val recordings")
    print("| condition | category acc | FAD | s per 8.2 s take (1 thread) |\n|---|---|---|---|")
    for c, r in rows.items():
        print(f"| {c} | {r['category_acc']:.1%} | {r['fad']:.1f} | {r['seconds_per_take']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
