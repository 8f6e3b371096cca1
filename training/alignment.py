"""An audio-visual alignment classifier for the evaluation, after Diff-Foley's "alignment accuracy".

Diff-Foley trains a classifier that tells whether a (video, audio) pair is in sync, with negatives made of audio from
another video and audio shifted in time, and reports the share of generated samples it judges aligned. Ours is
trained the same way on the *training* split of the feature cache, and is independent of the bundle under test:

    video  EfficientNet-Lite0 features (32 frames at 4 fps, 1280-d, the cache's) and their frame-to-frame change
           -> LayerNorm, Linear, GELU, Conv1d k3 -> (128, 32), unit length per frame
    audio  the segment's normalised mel (128 x 512) -> avg-pool 4, Conv1d k5, GELU, avg-pool 4, Conv1d k3 -> (128, 32)
    sync   the 32 x 32 cosine similarities of video frame t and audio frame s -> 2 x Conv2d 3x3 -> mean on the
           diagonal band (|t - s| <= 1), mean off it, their difference, and the clip-level similarity -> MLP -> logit

Training (on the cache's training split): each step takes `batch_size` clips, a video crop (start 0-1.75 s into
the clip), its aligned audio and the same clip's audio shifted by at least `min_shift_frames` (1 s); the head is
trained with weighted BCE on aligned (1) vs the next clip's audio and the shifted audio (0), and the embeddings also
with CAVP-style InfoNCE (which audio belongs to which video across the batch; which audio frame to which video frame
within a clip). Audio gets a random gain of +-10 dB (mel offset) so level alone tells nothing. The decision
threshold is calibrated on the validation split (balanced accuracy over aligned / other-clip / shifted pairs drawn
from a fixed seed). The model is cached next to the feature cache (`<cache>/alignment/<digest>.safetensors` + `.json`
with its validation scores) and rebuilt only when its inputs change.
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
    steps: int = 1500
    batch_size: int = 32  # clips per step: 32 aligned, 32 other-clip and 32 shifted pairs
    lr: float = 1e-3
    min_shift_frames: int = 4  # 1 s at 4 fps
    gain_db: float = 10.0
    seed: int = 0
    version: int = 4


class AlignNet(nn.Module):
    def __init__(self, n_mels: int, width: int = 128) -> None:
        super().__init__()
        # frame features and their change from the previous frame (an impact shows as a change in the picture)
        self.video = nn.Sequential(nn.LayerNorm(2 * BACKBONE_DIM), nn.Linear(2 * BACKBONE_DIM, width), nn.GELU())
        self.video_t = nn.Conv1d(width, width, 3, padding=1)
        self.audio = nn.Sequential(  # 16 mel columns per video frame -> 4 (64 ms) -> 1
            nn.AvgPool1d(4), nn.Conv1d(n_mels, width, 5, padding=2), nn.GELU(),
            nn.AvgPool1d(4), nn.Conv1d(width, width, 3, padding=1),
        )
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.sim = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.GELU(), nn.Conv2d(16, 16, 3, padding=1), nn.GELU())
        self.head = nn.Sequential(nn.Linear(16 * 3 + 1, 32), nn.GELU(), nn.Linear(32, 1))

    def embed_video(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, 1280) -> unit-length frame embeddings (B, W, T)."""
        f = feats.float()
        delta = torch.cat([torch.zeros_like(f[:, :1]), f[:, 1:] - f[:, :-1]], dim=1)
        return F.normalize(self.video_t(self.video(torch.cat([f, delta], dim=-1)).transpose(1, 2)), dim=1)

    def embed_audio(self, mel: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, n_mels, L) -> unit-length frame embeddings (B, W, frames)."""
        a = self.audio(mel.float())
        if a.shape[-1] != frames:
            a = F.interpolate(a, size=frames, mode="linear", align_corners=False)
        return F.normalize(a, dim=1)

    def similarity(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """(B, T, T): scaled cosine similarity of video frame t and audio frame s."""
        return torch.einsum("bwt,bws->bts", v, a) * self.scale

    def score(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        sim = self.similarity(v, a)
        h = self.sim(sim[:, None])  # (B, 16, T, T)
        idx = torch.arange(sim.shape[-1], device=sim.device)
        band = ((idx[:, None] - idx[None, :]).abs() <= 1).to(h.dtype)  # the diagonal: in sync within a frame
        on = (h * band).sum((-1, -2)) / band.sum()
        off = (h * (1 - band)).sum((-1, -2)) / (1 - band).sum()
        semantic = (F.normalize(v.mean(-1), dim=-1) * F.normalize(a.mean(-1), dim=-1)).sum(-1, keepdim=True)
        return self.head(torch.cat([on, off, on - off, semantic * self.scale], dim=-1)).squeeze(-1)

    def forward(self, feats: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """feats (B, T, 1280), mel (B, n_mels, L) with L = 16 T -> logit (B,) of "in sync"."""
        v = self.embed_video(feats)
        return self.score(v, self.embed_audio(mel, v.shape[-1]))


def contrastive_losses(model: AlignNet, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """CAVP-style InfoNCE on aligned pairs: clip level across the batch (which audio belongs to which video) and
    frame level within each clip (which audio frame belongs to which video frame)."""
    vm, am = F.normalize(v.mean(-1), dim=-1), F.normalize(a.mean(-1), dim=-1)
    logits = vm @ am.T * model.scale
    target = torch.arange(len(v), device=v.device)
    semantic = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    sim = model.similarity(v, a)  # (B, T, T)
    frames = torch.arange(sim.shape[-1], device=v.device).repeat(len(v))
    temporal = F.cross_entropy(sim.reshape(-1, sim.shape[-1]), frames)
    return semantic + temporal


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

    def triplets(self, rng: np.random.Generator, n: int, cfg: AlignConfig
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n distinct clips: video crop, aligned audio, the same clip's audio shifted by >= min_shift_frames
        (another clip's audio where the clip is too short to shift). Random gain on both audio crops."""
        idx = rng.choice(len(self.feats), size=min(n, len(self.feats)), replace=False)
        vs, ms, ss = [], [], []
        for i in map(int, idx):
            f = int(rng.integers(self.max_start[i] + 1))
            far = [g for g in range(self.max_start[i] + 1) if abs(g - f) >= cfg.min_shift_frames]
            vs.append(self.video(i, f))
            ms.append(self.audio(i, f) + rng.uniform(-cfg.gain_db, cfg.gain_db) / 100.0)
            shifted = self.audio(i, int(rng.choice(far))) if far else self.audio((i + 1) % len(self.feats), 0)
            ss.append(shifted + rng.uniform(-cfg.gain_db, cfg.gain_db) / 100.0)
        return np.stack(vs), np.stack(ms).astype(np.float32), np.stack(ss).astype(np.float32)

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
        v, m, s_ = (torch.from_numpy(x) for x in pairs.triplets(rng, cfg.batch_size, cfg))
        ve = model.embed_video(v)
        ae, se = model.embed_audio(m, ve.shape[-1]), model.embed_audio(s_, ve.shape[-1])
        # the decision: aligned vs another clip's audio (the next in the batch) vs the same clip's audio shifted
        logits = torch.cat([model.score(ve, ae), model.score(ve, ae.roll(1, 0)), model.score(ve, se)])
        y = torch.cat([torch.ones(len(v)), torch.zeros(2 * len(v))])
        weight = torch.cat([torch.full((len(v),), 2.0), torch.ones(2 * len(v))])  # balance the classes
        loss = F.binary_cross_entropy_with_logits(logits, y, weight=weight) / 1.5 + contrastive_losses(model, ve, ae)
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
        p = predict(model, v, m)
        # The decision threshold is calibrated on the validation split (never the test split): the one with the
        # best balanced accuracy between aligned pairs and the two kinds of misaligned pairs. A classifier trained
        # on a few hundred clips scores unseen aligned pairs lower than the ones it trained on, so 0.5 would call
        # almost everything unseen "not in sync".
        cands = np.unique(np.concatenate([p, [0.5]]))
        def balanced(t: float) -> float:
            return float(np.mean(p[kind == 0] > t) / 2 + np.mean(p[kind != 0] <= t) / 2)
        threshold = float(max(cands, key=balanced))
        pred = p > threshold
        info.update(threshold=threshold, val_balanced_accuracy=balanced(threshold),
                    val_accuracy=float(np.mean(pred == (y > 0.5))), val_aligned_recall=float(pred[kind == 0].mean()),
                    val_other_video_rejected=float(1 - pred[kind == 1].mean()),
                    val_shifted_rejected=float(1 - pred[kind == 2].mean()) if np.any(kind == 2) else None,
                    val_pairs=len(y), val_accuracy_at_0_5=float(np.mean((p > 0.5) == (y > 0.5))))
    return model, info


def load_or_train(cache_dir: Path, train_clips: list[Clip], val_clips: list[Clip], spec: SegmentSpec,
                  cfg: AlignConfig | None = None, progress: bool = True) -> tuple[AlignNet, dict[str, Any]]:
    """The classifier for these training clips (trained once, then loaded from `<cache>/alignment/`)."""
    from safetensors.torch import load_file, save_file

    from engine.atomic import atomic_write_text

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
