"""Sound-effects embedding for the evaluation: AI-SFX (aisfx 0.1.2, MIT, ISMIR 2022 "X-Sequential-CE").

A CNN-9 trained across nine professional sound-effects libraries; its 512-d embedding is the closest thing to a
Foley-aware FAD encoder that a package registry carries (shared/reference/data-sources.md C.1: 1-NN category
accuracy 0.86 on 0ad clips, chance 0.17). Nothing here is trained by us.

Front end, as the package's librosa path computes it (its `inference.main` reads files; we have arrays): resample to
44.1 kHz, peak-normalise, 96-bin HTK mel (2048 window, 1024 hop, 0-22.05 kHz), log10(1e4 * S + 1), divided by the
package's cross-dataset maximum 9.4578; blocks of 100 frames (2.3 s) with a hop of 50; one 512-d vector per block.
The package's librosa helper returns (mels, frames) and its blocking expects (frames, mels), so we transpose.

Install: `pip install --no-deps aisfx==0.1.2` (packaging/setup.sh does; its pins numpy==1.23.0 and librosa==0.9.2 are
ignored on purpose). Its weights file is a pickled tuple, so it is loaded with weights_only=False: it comes from the
registry package itself, not from user input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SR = 44_100
N_FFT = 2048
HOP = 1024
N_MELS = 96
BLOCK = 100
BLOCK_HOP = 50
SPEC_MAX = 9.457798957824707  # the package's "original" normalisation (min 0)


class SfxEmbeddingUnavailable(RuntimeError):
    """aisfx is not installed."""


@dataclass
class Embedded:
    blocks: np.ndarray  # (n_blocks, 512)

    @property
    def clip(self) -> np.ndarray:
        """One L2-normalised vector per clip: the mean of its block embeddings."""
        v = self.blocks.mean(axis=0)
        return v / (np.linalg.norm(v) + 1e-9)


class SfxEmbedder:
    def __init__(self, device: str = "cpu") -> None:
        try:
            from aisfx.inference import get_path_modelWeights, load_bestModel
        except ImportError as exc:
            raise SfxEmbeddingUnavailable(
                "the sound-effects metrics need aisfx: run `pip install --no-deps aisfx==0.1.2` "
                "(packaging/setup.sh installs it)") from exc
        import torch

        weights, ds_dict = torch.load(get_path_modelWeights(), map_location=device, weights_only=False)
        self.model = load_bestModel(weights, ds_dict, device)
        self.device = device

    @staticmethod
    def features(wav: np.ndarray, sr: int) -> np.ndarray:
        """Log-mel blocks (n_blocks, 100, 96) of one waveform."""
        import librosa

        y = np.asarray(wav, np.float32)
        if sr != SR:
            y = librosa.resample(y, orig_sr=sr, target_sr=SR)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        y = y / (peak if peak > 0 else 1.0)
        spec = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT,
                                              n_mels=N_MELS, fmin=0.0, fmax=SR / 2, htk=True, norm=1.0, power=2.0)
        spec = (np.log10(spec * 10000.0 + 1.0) / SPEC_MAX).T  # (frames, 96)
        if spec.shape[0] < BLOCK:
            spec = np.pad(spec, ((0, BLOCK - spec.shape[0]), (0, 0)))
        starts = range(0, spec.shape[0] - BLOCK + 1, BLOCK_HOP)
        return np.stack([spec[s : s + BLOCK] for s in starts]).astype(np.float32)

    def embed(self, wavs: list[np.ndarray], sr: int, batch: int = 64) -> list[Embedded]:
        import torch

        feats = [self.features(w, sr) for w in wavs]
        flat = np.concatenate(feats)
        out = []
        with torch.inference_mode():
            for i in range(0, len(flat), batch):
                x = torch.from_numpy(flat[i : i + batch]).to(self.device)
                out.append(self.model.get_embedding(x).float().cpu().numpy())
        emb = np.concatenate(out)
        res, k = [], 0
        for f in feats:
            res.append(Embedded(emb[k : k + len(f)]))
            k += len(f)
        return res


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings (n, d), as FAD computes it.

    tr sqrt(S1 S2) is taken as the sum of the square roots of the eigenvalues of S1^1/2 S2 S1^1/2 (symmetric PSD),
    which stays real and finite when the covariances are singular (fewer samples than dimensions).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # S1^1/2
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = float(np.sum(np.sqrt(np.clip(ev, 0.0, None))))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def nearest_label_accuracy(queries: np.ndarray, query_labels: list[str], refs: np.ndarray, ref_labels: list[str],
                           exclude: list[int] | None = None) -> float:
    """1-NN (cosine) accuracy: query i takes the label of its nearest reference, never reference exclude[i]."""
    sims = queries @ refs.T  # rows are L2-normalised
    if exclude is not None:
        sims[np.arange(len(queries)), exclude] = -np.inf
    pred = sims.argmax(axis=1)
    return float(np.mean([ref_labels[j] == lab for j, lab in zip(pred, query_labels)]))
