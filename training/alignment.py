"""An audio-visual alignment classifier for the evaluation, after Diff-Foley's "alignment accuracy".

Diff-Foley trains a classifier that tells whether a (video, audio) pair is in sync, with negatives made of audio from
another video and audio shifted in time, and reports the share of generated samples it judges aligned. Ours is
trained the same way on the *training* split of the feature cache, and is independent of the bundle under test:

    video  EfficientNet-Lite0 features (32 frames at 4 fps, 1280-d, the cache's)  -> LayerNorm, Linear -> (128, 32)
    audio  the segment's normalised mel (128 x 512)  -> avg-pool 4, Conv1d k5, GELU, avg-pool 4, Conv1d k3 -> (128, 32)
    fused  concat (256, 32) -> 3 x Conv1d k3 (dilations 1, 2, 4), GELU -> max over time -> Linear -> logit

Batches are half aligned pairs (video crop and audio crop at the same time, crop start 0-2 s into the clip), a
quarter other-clip audio at the same time, a quarter the same clip's audio shifted by at least `min_shift_frames`
(1 s). Audio gets a random gain of +-10 dB (mel offset) so level alone tells nothing. The model is cached next to the
feature cache (`<cache>/alignment/<digest>.safetensors` + `.json` with its validation accuracy on the val split, with
negatives drawn the same way from a fixed seed) and rebuilt only when its inputs change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.spec import SegmentSpec
from training.data import Clip, ClipStore

log = logging.getLogger(__name__)

BACKBONE_DIM = 1280


@dataclass
class AlignConfig:
    width: int = 128
    steps: int = 2500
    batch_size: int = 64
    lr: float = 1e-3
    min_shift_frames: int = 4  # 1 s at 4 fps
    gain_db: float = 10.0
    seed: int = 0
    version: int = 1


class AlignNet(nn.Module):
    def __init__(self, n_mels: int, width: int = 128) -> None:
        super().__init__()
        self.video = nn.Sequential(nn.LayerNorm(BACKBONE_DIM), nn.Linear(BACKBONE_DIM, width), nn.GELU())
        self.audio = nn.Sequential(  # 16 mel columns per video frame -> 4 (64 ms) -> 1
            nn.AvgPool1d(4), nn.Conv1d(n_mels, width, 5, padding=2), nn.GELU(),
            nn.AvgPool1d(4), nn.Conv1d(width, width, 3, padding=1), nn.GELU(),
        )
        layers: list[nn.Module] = []
        ch = 2 * width
        for dil in (1, 2, 4):
            layers += [nn.Conv1d(ch, width, 3, padding=dil, dilation=dil), nn.GELU()]
            ch = width
        self.fuse = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, feats: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """feats (B, T, 1280), mel (B, n_mels, L) with L = 16 T -> logit (B,) of "in sync"."""
        v = self.video(feats.float()).transpose(1, 2)  # (B, W, T)
        a = self.audio(mel.float())  # (B, W, L / 16)
        a = F.interpolate(a, size=v.shape[-1], mode="linear", align_corners=False) if a.shape[-1] != v.shape[-1] else a
        h = self.fuse(torch.cat([v, a], dim=1))  # (B, W, T)
        return self.head(h.amax(dim=-1)).squeeze(-1)


class Pairs:
    """Video/mel crops of a set of clips, and batches of aligned and misaligned pairs."""

    def __init__(self, store: ClipStore, spec: SegmentSpec) -> None:
        self.spec = spec
        self.frames = spec.num_frames
        self.cols = spec.mel_frames
        self.feats = [store.feats(i).astype(np.float32) for i in range(len(store))]
        self.mels = [store.mel(i).astype(np.float32) for i in range(len(store))]
        self.max_start = [max(0, min(len(f) - self.frames, self._max_col(m))) for f, m in zip(self.feats, self.mels)]

    def _max_col(self, mel: np.ndarray) -> int:
        """The last video frame at which a full mel window still fits."""
        f = 0
        while self._col(f + 1) + self.cols <= mel.shape[1]:
            f += 1
        return f

    def _col(self, frame: int) -> int:
        s = self.spec
        return round(frame * s.sample_rate / (s.video_fps * s.hop_length))

    def video(self, i: int, f: int) -> np.ndarray:
        v = self.feats[i][f : f + self.frames]
        return np.pad(v, ((0, self.frames - len(v)), (0, 0))) if len(v) < self.frames else v

    def audio(self, i: int, f: int) -> np.ndarray:
        c = self._col(f)
        m = self.mels[i][:, c : c + self.cols]
        return np.pad(m, ((0, 0), (0, self.cols - m.shape[1]))) if m.shape[1] < self.cols else m

    def batch(self, rng: np.random.Generator, n: int, cfg: AlignConfig
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(video (n, T, 1280), mel (n, n_mels, L), label 1 = in sync, kind 0 aligned / 1 other clip / 2 shifted)."""
        n_clips = len(self.feats)
        vs, ms, ys, kinds = [], [], [], []
        for k in range(n):
            i = int(rng.integers(n_clips))
            f = int(rng.integers(self.max_start[i] + 1))
            kind = 0 if k < n // 2 else (1 if k < 3 * n // 4 else 2)
            if kind == 2:  # shifted: needs room for the minimum shift
                far = [g for g in range(self.max_start[i] + 1) if abs(g - f) >= cfg.min_shift_frames]
                if not far:
                    kind = 1
            if kind == 0:
                m = self.audio(i, f)
            elif kind == 1:
                j = int(rng.integers(n_clips - 1))
                j += j >= i
                m = self.audio(j, min(f, self.max_start[j]))
            else:
                m = self.audio(i, int(rng.choice(far)))
            m = m + rng.uniform(-cfg.gain_db, cfg.gain_db) / 100.0  # the mel is dB / 100 (engine.audio.compress)
            vs.append(self.video(i, f))
            ms.append(m)
            ys.append(1.0 if kind == 0 else 0.0)
            kinds.append(kind)
        return np.stack(vs), np.stack(ms).astype(np.float32), np.asarray(ys, np.float32), np.asarray(kinds)


def _digest(train_clips: list[Clip], spec: SegmentSpec, cfg: AlignConfig) -> str:
    h = hashlib.sha256(json.dumps({"clips": [c.key for c in train_clips], "spec": spec.name, "cfg": asdict(cfg)},
                                  sort_keys=True).encode())
    return h.hexdigest()[:16]


def predict(model: AlignNet, feats: np.ndarray, mels: np.ndarray, batch: int = 64) -> np.ndarray:
    """P(in sync) for pairs feats (N, T, 1280), mels (N, n_mels, L)."""
    out = []
    with torch.inference_mode():
        for k in range(0, len(feats), batch):
            logits = model(torch.from_numpy(np.asarray(feats[k : k + batch], np.float32)),
                           torch.from_numpy(np.asarray(mels[k : k + batch], np.float32)))
            out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def train_classifier(train: ClipStore, val: ClipStore | None, spec: SegmentSpec, cfg: AlignConfig,
                     progress: bool = True) -> tuple[AlignNet, dict[str, Any]]:
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = AlignNet(spec.n_mels, cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    pairs = Pairs(train, spec)
    bar = tqdm(range(cfg.steps), desc="alignment classifier", unit="step", disable=not progress, leave=False)
    loss_ema = None
    for _ in bar:
        v, m, y, _ = pairs.batch(rng, cfg.batch_size, cfg)
        logits = model(torch.from_numpy(v), torch.from_numpy(m))
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        lv = float(loss.detach())
        loss_ema = lv if loss_ema is None else 0.98 * loss_ema + 0.02 * lv
        bar.set_postfix(loss=f"{loss_ema:.3f}")
    model.eval()
    info: dict[str, Any] = {"train_loss": loss_ema, "train_clips": len(train)}
    if val is not None and len(val) > 1:
        vp = Pairs(val, spec)
        v, m, y, kind = vp.batch(np.random.default_rng(cfg.seed + 1), 8 * len(val), cfg)
        pred = predict(model, v, m) > 0.5
        info.update(val_accuracy=float(np.mean(pred == (y > 0.5))), val_aligned_recall=float(pred[kind == 0].mean()),
                    val_other_video_rejected=float(1 - pred[kind == 1].mean()),
                    val_shifted_rejected=float(1 - pred[kind == 2].mean()) if np.any(kind == 2) else None,
                    val_pairs=len(y))
    return model, info


def load_or_train(cache_dir: Path, train_clips: list[Clip], val_clips: list[Clip], spec: SegmentSpec,
                  cfg: AlignConfig | None = None, progress: bool = True) -> tuple[AlignNet, dict[str, Any]]:
    """The classifier for these training clips (trained once, then loaded from `<cache>/alignment/`)."""
    from safetensors.torch import load_file, save_file

    from engine.manifest import atomic_write_text

    cfg = cfg or AlignConfig()
    # the cache index lists clips in the order the preprocessing workers finished them: sort, so that the same
    # clips give the same digest and the same model whatever that order was
    train_clips = sorted(train_clips, key=lambda c: c.key)
    val_clips = sorted(val_clips, key=lambda c: c.key)
    if len(train_clips) < 2:
        raise ValueError("the alignment classifier needs at least 2 training clips")
    key = _digest(train_clips, spec, cfg)
    folder = Path(cache_dir) / "alignment"
    weights, meta = folder / f"{key}.safetensors", folder / f"{key}.json"
    if weights.is_file() and meta.is_file():
        model = AlignNet(spec.n_mels, cfg.width)
        model.load_state_dict(load_file(str(weights)))
        return model.eval(), json.loads(meta.read_text(encoding="utf-8"))
    log.info("training the alignment classifier on %d clips (%d steps)", len(train_clips), cfg.steps)
    model, info = train_classifier(ClipStore(cache_dir, train_clips),
                                   ClipStore(cache_dir, val_clips) if val_clips else None, spec, cfg, progress)
    info["config"] = asdict(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(weights)
    atomic_write_text(meta, json.dumps(info, indent=1) + "\n")
    log.info("alignment classifier: %s", {k: v for k, v in info.items() if k.startswith("val")})
    return model, info


def main(argv: list[str] | None = None) -> int:
    """`python -m training.alignment --cache CACHE`: train (or load) the classifier of a feature cache, print its
    validation scores. The evaluation does the same on first use; this only lets it happen ahead of time."""
    import argparse

    from engine.spec import SPECS
    from training.data import load_index

    ap = argparse.ArgumentParser(prog="python -m training.alignment", description=main.__doc__)
    ap.add_argument("--cache", required=True, help="a feature cache (runs/<name>/cache of a training run)")
    ap.add_argument("--spec", default="diff-foley", choices=sorted(SPECS))
    ap.add_argument("--steps", type=int, default=AlignConfig.steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    clips = load_index(Path(args.cache).expanduser())
    _, info = load_or_train(Path(args.cache).expanduser(), [c for c in clips if c.split == "train"],
                            [c for c in clips if c.split == "val"], SPECS[args.spec],
                            AlignConfig(steps=args.steps, seed=args.seed))
    print(json.dumps({k: v for k, v in info.items() if k != "config"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
