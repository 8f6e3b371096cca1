"""Stage 1: the mel VAE (diffusers AutoencoderKL in the engine's `MelVAE`), on random crops of cached mels.

Loss: L1 reconstruction + kl_weight * KL + spectral_weight * spectral (training.losses.vae_losses). The VAE is
convolutional, so it trains on `crop_frames`-wide crops (cheap) and is validated on whole segments (the mel
reconstruction error, L1 and MSE on the normalised [0, 1] mel, over the val clips' first segment). At the end the
latent scale is set to 1 / std of the posterior means over training segments, so that the denoiser sees roughly
unit-variance latents (Stable Diffusion's 0.18215 found the same way).

Outputs: `vae.safetensors` (+ its config in done.json), losses.csv, losses.png, samples.png (real vs reconstructed).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import torch

from engine.audio import to_mel_image
from engine.nn.bundle import save_weights
from engine.nn.vae import MelVAE, VAEConfig
from training.data import batch_indices, step_rng, step_seed
from training.loop import Trainer, autocast, build_optimizer, plot_losses, plot_mels
from training.losses import vae_losses
from training.stages import RunContext, done_record, mark_done

log = logging.getLogger(__name__)
NAME = "vae"


def build_vae(ctx: RunContext, latent_scale: float = 1.0) -> MelVAE:
    c = ctx.cfg.vae
    vcfg = VAEConfig(channel_mode="mono", latent_channels=ctx.spec.latent_channels,
                     block_out_channels=tuple(c.block_out_channels), layers_per_block=c.layers_per_block,
                     norm_num_groups=c.norm_num_groups, latent_scale=latent_scale)
    if vcfg.downsample != ctx.spec.vae_downsample:
        raise ValueError(f"vae.block_out_channels has {len(c.block_out_channels)} levels (downsampling "
                         f"{vcfg.downsample}x) but the spec needs {ctx.spec.vae_downsample}x")
    return MelVAE(config=vcfg)


def segment_mels(ctx: RunContext, store, n: int) -> torch.Tensor:
    """The first segment's mel image of the first n clips of `store` -> (n, H, W) (from the cached mel)."""
    imgs = [to_mel_image(store.mel(i)[:, : ctx.spec.mel_frames], ctx.spec) for i in range(min(n, len(store)))]
    return torch.from_numpy(np.stack(imgs))


def load_trained_vae(ctx: RunContext) -> MelVAE:
    from engine.nn.bundle import load_weights

    rec = done_record(ctx, NAME)
    assert rec is not None
    vae = MelVAE(config=VAEConfig.from_dict(rec["config"]))
    load_weights(vae, ctx.stage_dir(NAME) / "vae.safetensors", what="vae")
    return vae.eval()


@torch.no_grad()
def reconstruction_error(vae: MelVAE, mels: torch.Tensor, batch: int = 4) -> dict[str, float]:
    """Mel reconstruction error of whole segments through the posterior mean: L1 and MSE on the [0, 1] mel."""
    l1, mse = [], []
    for i in range(0, len(mels), batch):
        x = mels[i : i + batch]
        y = vae.decode(vae.encode(x)).clamp(0, 1)
        l1.append((y - x).abs().mean(dim=(1, 2)))
        mse.append((y - x).pow(2).mean(dim=(1, 2)))
    return {"mel_l1": float(torch.cat(l1).mean()), "mel_mse": float(torch.cat(mse).mean())}


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage vae: done, skipped")
        return rec
    c, spec, d = ctx.cfg.vae, ctx.spec, ctx.dist
    sdir = ctx.stage_dir(NAME)
    sdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(ctx.seed)
    vae = build_vae(ctx)
    if c.init_from:
        from engine.nn.bundle import load_weights

        load_weights(vae, c.init_from, what="vae.init_from")
        log.info("stage vae: warm start from %s", c.init_from)
    vae = vae.to(ctx.device)
    params = list(vae.parameters())
    opt = build_optimizer(params, c.optim)
    trainer = Trainer(name=NAME, stage_dir=sdir, loop=c.loop, d=d, modules={"vae": vae}, optimizers={"vae": opt},
                      optim_cfgs={"vae": c.optim}, progress=ctx.progress)
    train = ctx.store(ctx.split("train"))
    val = ctx.store(ctx.val_or_train(c.val_clips))
    val_mels = segment_mels(ctx, val, c.val_clips)
    width = c.crop_frames
    bsz = c.loop.batch_size
    mine = d.shard(bsz)

    def step_fn(step: int) -> dict[str, float]:
        idx = batch_indices(ctx.seed, NAME, step, bsz, len(train))[mine]
        rng = step_rng(ctx.seed, NAME, step, d.rank)
        crops = []
        for i in idx:
            mel = train.mel(int(i))  # (n_mels, frames)
            j = int(rng.integers(0, max(1, mel.shape[1] - width + 1)))
            crops.append(to_mel_image(mel[:, j : j + width], spec))
        x = torch.from_numpy(np.stack(crops)).to(ctx.device)  # (b, H, w)
        g = torch.Generator(ctx.device).manual_seed(step_seed(ctx.seed, NAME, step, d.rank))
        with autocast(ctx.device, ctx.cfg.runtime.bf16):
            post = vae.posterior(x)
            z = post.sample(g)
            y = vae.decode(z)  # latent_scale is 1 while training
        losses = vae_losses(y.float(), x, post, spec, kl_weight=c.kl_weight, spectral_weight=c.spectral_weight)
        gnorm = trainer.backward(losses["loss"], "vae", params, step)
        return {**{k: float(v.detach()) for k, v in losses.items()}, "grad_norm": gnorm}

    def val_fn(step: int) -> dict[str, float]:
        return reconstruction_error(vae, val_mels.to(ctx.device))

    metrics = trainer.run(step_fn, val_fn)
    if not d.is_main:
        d.barrier()
        return done_record(ctx, NAME) or {}
    # latent scale from the posterior means of training segments
    scale = latent_scale(vae, segment_mels(ctx, train, 64).to(ctx.device))
    vae.config = dataclasses.replace(vae.config, latent_scale=scale)
    save_weights(sdir / "vae.safetensors", vae)
    plot_losses(sdir / "losses.csv", sdir / "losses.png", "stage 1: VAE")
    with torch.no_grad():
        rec_imgs = vae.decode(vae.encode(val_mels[:4].to(ctx.device))).clamp(0, 1).cpu().numpy()
    plot_mels([(f"val {i}", [val_mels[i].numpy(), rec_imgs[i]]) for i in range(len(rec_imgs))],
              sdir / "samples.png", "VAE: real | reconstructed", ["real", "reconstructed"])
    out = mark_done(ctx, NAME, {"config": vae.config.to_dict(), "metrics": metrics, "latent_scale": scale,
                                "params": sum(p.numel() for p in params)})
    d.barrier()
    return out


@torch.no_grad()
def latent_scale(vae: MelVAE, mels: torch.Tensor, batch: int = 8) -> float:
    """1 / std of the (unscaled) posterior means of `mels`."""
    zs = [vae.posterior(mels[i : i + batch]).mean for i in range(0, len(mels), batch)]
    std = float(torch.cat(zs).float().std())
    return 1.0 / max(std, 1e-6)
