"""Stage 3: the video projection head (engine.nn.frame_encoder.VideoProjection), contrastive against the audio.

CAVP-style (reference section 5), on cached frozen EfficientNet-Lite0 features: per training video, K windows of
`window_frames` frames (4 s at 4 fps) at least `min_shift_frames` apart; the video windows go through the
projection, the matching mel windows through a small training-only audio tower (convolutions over mel frames,
pooled to the video rate); each window's embedding is the max over its time steps, L2-normalised. Loss = semantic
InfoNCE across videos (first window of each) + temporal_weight * InfoNCE across the K windows of each video,
with a learned logit scale (initialised to 1/0.07).

Validation: semantic top-1 retrieval (video -> audio across val clips) and temporal top-1 (which of a clip's own
windows), plus both losses. Outputs: `projection.safetensors`, losses.csv/png, samples.png (frame-level
video-audio similarity of val clips: a bright diagonal means the head tells times apart).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.nn.bundle import save_weights
from engine.nn.frame_encoder import BACKBONE_DIM, FrameEncoderConfig, VideoProjection
from training.data import batch_indices, step_rng
from training.loop import Trainer, autocast, build_optimizer, plot_losses
from training.losses import info_nce, temporal_info_nce
from training.stages import RunContext, done_record, mark_done

log = logging.getLogger(__name__)
NAME = "projection"


class AudioTower(nn.Module):
    """Training-only audio encoder: mel window (B, n_mels, L) -> per-video-frame embeddings (B, W, D), L2-normed."""

    def __init__(self, *, n_mels: int, channels: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(n_mels, channels, 5, padding=2), nn.GELU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(channels, channels, 5, padding=2), nn.GELU(),
        )
        self.out = nn.Linear(channels, out_dim)

    def forward(self, mel: torch.Tensor, frames: int) -> torch.Tensor:
        h = self.net(mel)  # (B, C, L / 2)
        h = F.adaptive_avg_pool1d(h, frames).transpose(1, 2)  # (B, W, C) at the video rate
        return F.normalize(self.out(h), dim=-1)  # (B, W, D)


def build_projection(ctx: RunContext) -> VideoProjection:
    return VideoProjection(config=projection_config(ctx))


def projection_config(ctx: RunContext) -> FrameEncoderConfig:
    return FrameEncoderConfig(feature_dim=ctx.spec.feature_dim, temporal_kernel=ctx.cfg.projection.temporal_kernel)


def load_trained_projection(ctx: RunContext) -> VideoProjection:
    from engine.nn.bundle import load_weights

    proj = build_projection(ctx)
    load_weights(proj, ctx.stage_dir(NAME) / "projection.safetensors", what="projection")
    return proj.eval()


def mel_columns(ctx: RunContext, frame: int) -> int:
    """The mel column at the time of video frame `frame`."""
    s = ctx.spec
    return round(frame * s.sample_rate / (s.video_fps * s.hop_length))


def window_starts(rng: np.random.Generator | None, n_frames: int, window: int, k: int, min_shift: int) -> list[int]:
    """k window starts in [0, n_frames - window], at least min_shift apart (shrunk if the clip is too short).

    With rng None: evenly spread (validation).
    """
    span = max(0, n_frames - window)
    if k == 1:
        return [int(rng.integers(0, span + 1)) if rng is not None else 0]
    shift = min(min_shift, span // (k - 1))
    if rng is None:
        return [round(i * span / (k - 1)) for i in range(k)]
    for _ in range(64):
        starts = np.sort(rng.integers(0, span + 1, size=k))
        if np.all(np.diff(starts) >= shift):
            return [int(s) for s in starts]
    base = int(rng.integers(0, span - shift * (k - 1) + 1))
    return [base + i * shift for i in range(k)]


def gather_windows(ctx: RunContext, store, idx, starts_list, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Video features (B, K, W, 1280) and mel windows (B, K, n_mels, L) of clips idx at the given starts."""
    length = mel_columns(ctx, window)
    v, a = [], []
    for i, starts in zip(idx, starts_list):
        feats, mel = store.feats(int(i)), store.mel(int(i))
        vv, aa = [], []
        for f in starts:
            vv.append(feats[f : f + window])
            col = mel_columns(ctx, f)
            m = mel[:, col : col + length]
            if m.shape[1] < length:
                m = np.pad(m, ((0, 0), (0, length - m.shape[1])))
            aa.append(m)
        v.append(np.stack(vv))
        a.append(np.stack(aa))
    return torch.from_numpy(np.stack(v)), torch.from_numpy(np.stack(a))


def embed(proj: VideoProjection, tower: AudioTower, v: torch.Tensor, a: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings: per frame (B, K, W, D) for video and audio, per window (B, K, D) (max-pooled, L2-normed)."""
    b, k, w, _ = v.shape
    vf = proj(v.reshape(b * k, w, BACKBONE_DIM))  # (B*K, W, D)
    af = tower(a.reshape(b * k, *a.shape[2:]), w)  # (B*K, W, D)
    vw = F.normalize(vf.float().amax(dim=1), dim=-1).reshape(b, k, -1)
    aw = F.normalize(af.float().amax(dim=1), dim=-1).reshape(b, k, -1)
    return vf.reshape(b, k, w, -1), af.reshape(b, k, w, -1), vw, aw


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage projection: done, skipped")
        return rec
    c, spec, d = ctx.cfg.projection, ctx.spec, ctx.dist
    sdir = ctx.stage_dir(NAME)
    sdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(ctx.seed)
    proj = build_projection(ctx).to(ctx.device)
    tower = AudioTower(n_mels=spec.n_mels, channels=c.audio_channels, out_dim=spec.feature_dim).to(ctx.device)
    logit = nn.Module()
    logit.log_scale = nn.Parameter(torch.tensor(float(np.log(c.init_logit_scale))))
    params = [*proj.parameters(), *tower.parameters(), logit.log_scale]
    opt = build_optimizer(params, c.optim)
    trainer = Trainer(name=NAME, stage_dir=sdir, loop=c.loop, d=d,
                      modules={"projection": proj, "audio_tower": tower, "logit": logit},
                      optimizers={"main": opt}, optim_cfgs={"main": c.optim}, progress=ctx.progress)
    train = ctx.store(ctx.split("train"))
    bsz = c.loop.batch_size
    w, k = c.window_frames, c.windows_per_video

    def losses(v: torch.Tensor, a: torch.Tensor) -> dict[str, torch.Tensor]:
        scale = logit.log_scale.exp().clamp(max=100.0)
        with autocast(ctx.device, ctx.cfg.runtime.bf16):
            _, _, vw, aw = embed(proj, tower, v, a)
        sem = info_nce(vw[:, 0], aw[:, 0], scale)
        tem = temporal_info_nce(vw, aw, scale) if k > 1 else torch.zeros((), device=vw.device)
        return {"loss": sem + c.temporal_weight * tem, "semantic": sem, "temporal": tem, "logit_scale": scale}

    def step_fn(step: int) -> dict[str, float]:
        # InfoNCE needs every video of the batch as a negative, so each rank computes the whole (small) batch:
        # identical gradients, averaged, equal one process's; this stage gains nothing from more ranks
        idx = batch_indices(ctx.seed, NAME, step, bsz, len(train))
        rng = step_rng(ctx.seed, NAME, step)
        starts = [window_starts(rng, train.clips[int(i)].frames, w, k, c.min_shift_frames) for i in idx]
        v, a = gather_windows(ctx, train, idx, starts, w)
        out = losses(v.to(ctx.device), a.to(ctx.device))
        gnorm = trainer.backward(out["loss"], "main", params, step)
        return {**{kk: float(vv.detach()) for kk, vv in out.items()}, "grad_norm": gnorm}

    val_clips = ctx.val_or_train(64)
    val = ctx.store(val_clips)
    vstarts = [window_starts(None, cl.frames, w, k, c.min_shift_frames) for cl in val_clips]
    vv, va = gather_windows(ctx, val, range(len(val_clips)), vstarts, w)

    @torch.no_grad()
    def val_fn(step: int) -> dict[str, float]:
        out = losses(vv.to(ctx.device), va.to(ctx.device))
        _, _, vw, aw = embed(proj, tower, vv.to(ctx.device), va.to(ctx.device))
        sem_acc = float((torch.argmax(vw[:, 0] @ aw[:, 0].t(), dim=1) == torch.arange(len(vw))).float().mean())
        tem_logits = torch.einsum("bkd,bjd->bkj", vw, aw)
        tem_acc = float((tem_logits.argmax(-1) == torch.arange(k)).float().mean())
        return {"loss": float(out["loss"]), "semantic": float(out["semantic"]), "temporal": float(out["temporal"]),
                "semantic_top1": sem_acc, "temporal_top1": tem_acc}

    metrics = trainer.run(step_fn, val_fn)
    if not d.is_main:
        d.barrier()
        return done_record(ctx, NAME) or {}
    save_weights(sdir / "projection.safetensors", proj)
    plot_losses(sdir / "losses.csv", sdir / "losses.png", "stage 3: video projection (contrastive)")
    plot_similarity(ctx, proj, tower, val, sdir / "samples.png")
    out = mark_done(ctx, NAME, {"config": proj_config_dict(ctx), "metrics": metrics,
                                "params": sum(p.numel() for p in proj.parameters())})
    d.barrier()
    return out


def proj_config_dict(ctx: RunContext) -> dict[str, Any]:
    return projection_config(ctx).to_dict()


@torch.no_grad()
def plot_similarity(ctx: RunContext, proj: VideoProjection, tower: AudioTower, store, png) -> None:
    """Frame-level cosine similarity, video frames (rows) x audio frames (columns), of up to 3 val clips."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(3, len(store))
    frames = ctx.spec.num_frames
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for i in range(n):
        v, a = gather_windows(ctx, store, [i], [[0]], frames)
        vf, af, _, _ = embed(proj, tower, v.to(ctx.device), a.to(ctx.device))
        sim = (vf[0, 0] @ af[0, 0].t()).float().cpu().numpy()  # (T, T)
        ax = axes[0, i]
        ax.imshow(sim, cmap="viridis", origin="lower")
        ax.set_title(f"val {i}: video x audio frames", fontsize=8)
        ax.set_xlabel("audio frame", fontsize=7)
        ax.set_ylabel("video frame", fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
