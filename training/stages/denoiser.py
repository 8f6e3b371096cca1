"""Stage 4: the MDSGen denoiser on cached VAE latents, conditioned on the trained projection's features.

First, once (rank 0, cached in the feature cache and keyed by the VAE weights): the latent posterior (mean, std)
of every segment crop on a `data.crop_stride` grid of every clip, from the exact segment mel the engine would make
(`TorchMel.segment`), and the projected 4 fps video features of every clip (the projection is frozen here, as
CAVP is in the paper).

Per step (reference sections 1.7, 1.10; MDT v1's recipe): one timestep t per sample, two independent noises; an
unmasked pass and a TAM-masked pass (`enable_mask=True`, ratio `mask_ratio`; `mask_kind` fam/sam/none for the
paper's ablation) through the side interpolator; loss =
mean(mse + vb_weight * vb) of the unmasked pass + mask_weight * the same of the masked pass, where mse is the
eps-MSE (optionally Min-SNR weighted) and vb the learned-variance term (training.diffusion); each pass drops the
video condition with probability `drop_prob` (y = 0, the null condition of the sampler). Optimiser Adan, EMA of
the weights (the EMA goes into the bundle).

Validation: eps-MSE of the EMA model at fixed timesteps and noises on val crops, with the condition and with the
null condition (the gap says how much the video helps). samples.png: real mel | VAE reconstruction | generated
(the engine's numpy DPM-Solver, guidance 5, on the EMA model).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import torch

from engine.audio import from_mel_image, wav_to_mel
from engine.hits import hit_track, jitter_times
from engine.manifest import sha256_file
from engine.nn.bundle import save_weights
from engine.nn.denoiser import MDSGen, build_denoiser
from engine.sampling import NoiseScheduleVP, sample_dpmpp_2m
from engine.spec import DiffusionSchedule
from training.data import _atomic_savez, batch_indices, crop_starts, step_seed
from training.diffusion import GaussianDiffusion
from training.loop import EMA, Trainer, autocast, build_optimizer, plot_losses, plot_mels
from training.melspec import TorchMel
from training.stages import RunContext, done_record, mark_done, require
from training.stages.projection import load_trained_projection
from training.stages.vae import load_trained_vae

log = logging.getLogger(__name__)
NAME = "denoiser"


class LatentSet:
    """Cached latents of segment crops: posterior mean/std (N, C, h, w), the clip index and first frame of each."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, clip: np.ndarray, frame: np.ndarray) -> None:
        self.mean, self.std, self.clip, self.frame = mean, std, clip, frame

    def subset(self, mask: np.ndarray) -> LatentSet:
        return LatentSet(self.mean[mask], self.std[mask], self.clip[mask], self.frame[mask])

    def __len__(self) -> int:
        return len(self.clip)


def latents_path(ctx: RunContext) -> Any:
    vae_sha = sha256_file(ctx.stage_dir("vae") / "vae.safetensors")
    key = hashlib.sha256(f"{vae_sha}:{ctx.cfg.data.crop_stride}:{len(ctx.clips)}:"
                         f"{','.join(c.key for c in ctx.clips)}".encode()).hexdigest()[:16]
    return ctx.cache_dir / f"latents-{key}.npz"


@torch.no_grad()
def cache_latents(ctx: RunContext, batch: int = 8) -> LatentSet:
    """Encode every crop of every clip once (rank 0), or load the cache."""
    path = latents_path(ctx)
    if ctx.dist.is_main and not path.is_file():
        from tqdm import tqdm

        spec = ctx.spec
        vae = load_trained_vae(ctx).to(ctx.device)
        melfn = TorchMel(spec).to(ctx.device)
        store = ctx.store(ctx.clips)
        jobs = [(ci, s) for ci, cl in enumerate(ctx.clips) for s in crop_starts(cl, spec, ctx.cfg.data.crop_stride)]
        means, stds = [], []
        sr = spec.sample_rate
        for j in tqdm(range(0, len(jobs), batch), desc="latents", unit="batch", disable=not ctx.progress):
            part = jobs[j : j + batch]
            wav = torch.from_numpy(np.stack([
                np.pad(w := store.wav(ci)[round(s * sr) : round(s * sr) + spec.num_samples],
                       (0, spec.num_samples - len(w))) for ci, s in part
            ])).to(ctx.device)
            mel = melfn.segment(wav)  # (b, n_mels, mel_frames)
            img = mel if spec.time_axis == "col" else mel.transpose(1, 2)
            with autocast(ctx.device, ctx.cfg.runtime.bf16):
                post = vae.posterior(img)
            means.append(post.mean.float().cpu().numpy())
            stds.append(post.std.float().cpu().numpy())
        _atomic_savez(path, mean=np.concatenate(means), std=np.concatenate(stds),
                      clip=np.array([ci for ci, _ in jobs], np.int64),
                      frame=np.array([round(s * spec.video_fps) for _, s in jobs], np.int64))
    ctx.dist.barrier()
    with np.load(path) as z:
        return LatentSet(z["mean"], z["std"], z["clip"], z["frame"])


@torch.no_grad()
def project_all(ctx: RunContext) -> list[np.ndarray]:
    """The trained projection's (T, 512) features of every clip."""
    proj = load_trained_projection(ctx).to(ctx.device)
    store = ctx.store(ctx.clips)
    return [proj(torch.from_numpy(store.feats(i))[None].to(ctx.device))[0].float().cpu().numpy()
            for i in range(len(ctx.clips))]


def build_model(ctx: RunContext) -> MDSGen:
    c = ctx.cfg.denoiser
    return build_denoiser(ctx.spec, c.preset, mask_ratio=c.mask_ratio, **c.overrides)


#: Parameters a warm start may lack: they are new in this config and zero-initialised (MDSGen's output is unchanged).
WARM_START_NEW = ("temporal_feat.", "hit_proj.")

#: Parameters of the hit path: their own optimiser group (denoiser.hit_lr_mult x lr, no weight decay).
HIT_PARAMS = ("hit_proj.",)


def warm_start(model: MDSGen, path: str) -> list[str]:
    """Load an earlier run's denoiser weights into `model`; returns the parameters left at their init.

    Every weight of the file must fit the model (same preset and grid); the model may have more, but only the
    zero-initialised extensions of `WARM_START_NEW`, so the loaded model computes exactly what the old one did."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from engine.errors import BundleError
    from engine.nn.bundle import is_derived

    try:
        state = load_file(path)
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"denoiser.init_from {path!r} cannot be read ({exc}); give the denoiser.safetensors "
                          "of an earlier run (runs/<name>/stages/denoiser/denoiser.safetensors)") from exc
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state and not is_derived(k))
    fresh = [k for k in missing if k.startswith(WARM_START_NEW)]
    bad = [k for k in missing if k not in fresh]
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape))
    if bad or unexpected or wrong:
        raise BundleError(f"denoiser.init_from {path!r} does not fit this denoiser config (missing {bad[:4]}, "
                          f"unexpected {unexpected[:4]}, wrong shape {wrong[:4]}); warm-start from a run with the "
                          "same preset and spec")
    model.load_state_dict(state, strict=False)
    return fresh


def conditions(feats: list[np.ndarray], lat: LatentSet, rows: np.ndarray, frames: int,
               offsets: np.ndarray | None = None) -> torch.Tensor:
    """(B, frames, 512) video features of latent rows (`offsets`: frames to move each row's window by, clamped to
    the clip)."""
    out = []
    for i, r in enumerate(rows):
        f = feats[lat.clip[r]]
        first = int(lat.frame[r]) + (int(offsets[i]) if offsets is not None else 0)
        first = min(max(first, 0), len(f) - frames)
        out.append(f[first : first + frames])
    return torch.from_numpy(np.stack(out))


def clip_onsets(ctx: RunContext) -> list[np.ndarray]:
    """Ground-truth onset times (s from the clip start) of every clip: the event times of `<video>.json` (the
    foley_real builder places each recording's onset sample exactly there); empty where a video has none."""
    from training.evaluate import load_ground_truth

    out = []
    for c in ctx.clips:
        times = np.asarray(load_ground_truth(c.path) or [], np.float64) - c.start
        out.append(times[(times >= 0) & (times < c.duration)])
    return out


def crop_hits(onsets: list[np.ndarray], lat: LatentSet, rows: np.ndarray, ctx: RunContext, *,
              rng: np.random.Generator | None = None, jitter: float = 0.0, shift: int = 0) -> torch.Tensor:
    """(B, lines, slots) hit tracks of latent rows from their clips' onsets (optionally jittered by N(0, jitter)
    s; `shift` takes the onsets of the row `shift` places on, for the other-clip control)."""
    spec, cfg = ctx.spec, ctx.cfg.denoiser
    lines = spec.token_grid[1] if spec.time_axis == "col" else spec.token_grid[0]
    slots = int(cfg.overrides.get("hit_slots", 0))
    tracks = []
    for i in range(len(rows)):
        src = rows[(i + shift) % len(rows)]
        start = lat.frame[src] / spec.video_fps
        times = list(onsets[lat.clip[src]] - start)
        if rng is not None:
            times = jitter_times(times, rng, jitter)
        tracks.append(hit_track(times, spec.duration, lines, slots))
    return torch.from_numpy(np.stack(tracks))


def make_trainer(ctx: RunContext, model: MDSGen, stage_dir: Any) -> tuple[Trainer, EMA]:
    """The stage's Trainer (`build_optimizer`'s Adan with the hit path in its own group, EMA) for `model` (already
    on the device); checkpoints go into `stage_dir`. Shared by `run` and training.gpu_train."""
    c = ctx.cfg.denoiser
    ema = EMA(model, c.ema_decay, c.ema_warmup)
    hit_params = [p for n, p in model.named_parameters() if n.startswith(HIT_PARAMS)]
    groups = [{"params": [p for n, p in model.named_parameters() if not n.startswith(HIT_PARAMS)]}]
    if hit_params:
        groups.append({"params": hit_params, "lr_mult": c.hit_lr_mult, "weight_decay": 0.0})
    opt = build_optimizer(groups, c.optim)
    trainer = Trainer(name=NAME, stage_dir=stage_dir, loop=c.loop, d=ctx.dist, modules={"denoiser": model},
                      optimizers={"denoiser": opt}, optim_cfgs={"denoiser": c.optim}, emas={"denoiser": ema},
                      progress=ctx.progress)
    return trainer, ema


def make_step_fn(ctx: RunContext, model: MDSGen, trainer: Trainer, diffusion: GaussianDiffusion, train: LatentSet,
                 feats: list[np.ndarray], onsets: list[np.ndarray], scale: float):
    """The training step of the stage: `step_fn(step) -> metrics` (batch, posterior sample, noises, timesteps,
    condition drops, video shift and hit jitter all drawn from (seed, stage, step), the two passes, the loss, the
    optimiser step through `trainer.backward`). Shared by `run` and training.gpu_train."""
    c, spec, d = ctx.cfg.denoiser, ctx.spec, ctx.dist
    params = list(model.parameters())
    with_hits = model.config.hit_slots > 0
    n_t = diffusion.num_timesteps
    bsz = c.loop.batch_size
    mine = d.shard(bsz)
    shape = spec.latent_shape
    learn_sigma = model.config.learn_sigma

    def step_fn(step: int) -> dict[str, float]:
        rows = batch_indices(ctx.seed, NAME, step, bsz, len(train))
        g = torch.Generator().manual_seed(step_seed(ctx.seed, NAME, step))  # global draws, then this rank's rows
        t = torch.randint(0, n_t, (bsz,), generator=g)[mine]
        noise1 = torch.randn(bsz, *shape, generator=g)[mine]
        noise2 = torch.randn(bsz, *shape, generator=g)[mine]
        post_eps = torch.randn(bsz, *shape, generator=g)[mine]
        keep1 = (torch.rand(bsz, generator=g) >= c.drop_prob)[mine]
        keep2 = (torch.rand(bsz, generator=g) >= c.drop_prob)[mine]
        rows = rows[mine]
        mean = torch.from_numpy(train.mean[rows])
        x0 = mean + torch.from_numpy(train.std[rows]) * post_eps if c.sample_posterior else mean
        x0 = (x0 * scale).to(ctx.device)
        offsets = None
        if c.video_shift_prob > 0:  # video from another moment of the clip; the hits and the audio stay
            rng_v = np.random.default_rng(step_seed(ctx.seed, "video-shift", step, d.rank))
            k = max(1, round(c.video_shift_max * spec.video_fps))
            offsets = rng_v.integers(-k, k + 1, len(rows)) * (rng_v.random(len(rows)) < c.video_shift_prob)
        cond = conditions(feats, train, rows, spec.num_frames, offsets).to(ctx.device)
        hits = None
        if with_hits:
            hits = crop_hits(onsets, train, rows, ctx, rng=np.random.default_rng(step_seed(ctx.seed, "hits", step,
                                                                                          d.rank)),
                             jitter=c.hit_jitter).to(ctx.device)
        t, keep1, keep2 = t.to(ctx.device), keep1.to(ctx.device), keep2.to(ctx.device)
        x1 = diffusion.q_sample(x0, t, noise1.to(ctx.device))
        x2 = diffusion.q_sample(x0, t, noise2.to(ctx.device))
        g_mask = torch.Generator(ctx.device).manual_seed(step_seed(ctx.seed, NAME + "-mask", step, d.rank))
        with autocast(ctx.device, ctx.cfg.runtime.bf16):
            out1 = model(x1, t, cond, hits=hits, keep=keep1)
            if c.mask_kind != "none":
                out2, _ = model(x2, t, cond, hits=hits, keep=keep2, enable_mask=True, mask_ratio=c.mask_ratio,
                                generator=g_mask, mask_kind=c.mask_kind)
        l1 = diffusion.training_losses(out1, x0, x1, t, noise1.to(ctx.device), learn_sigma=learn_sigma,
                                       min_snr_gamma=c.min_snr_gamma)
        unmasked = (l1["mse"] + c.vb_weight * l1["vb"]).mean()
        logs = {"mse": float(l1["mse"].detach().mean()), "vb": float(l1["vb"].detach().mean())}
        if c.mask_kind == "none":  # the ablation's "no mask": the plain DiT loss
            loss = unmasked
        else:
            l2 = diffusion.training_losses(out2, x0, x2, t, noise2.to(ctx.device), learn_sigma=learn_sigma,
                                           min_snr_gamma=c.min_snr_gamma)
            masked = (l2["mse"] + c.vb_weight * l2["vb"]).mean()
            loss = unmasked + c.mask_weight * masked
            logs.update(mse_masked=float(l2["mse"].detach().mean()), vb_masked=float(l2["vb"].detach().mean()))
        gnorm = trainer.backward(loss, "denoiser", params, step)
        return {"loss": float(loss.detach()), **logs, "grad_norm": gnorm}

    return step_fn


def make_val_fn(ctx: RunContext, ema: EMA, diffusion: GaussianDiffusion, val: LatentSet, feats: list[np.ndarray],
                onsets: list[np.ndarray], scale: float):
    """The stage's validation: `val_fn(step) -> metrics`, eps-MSE of the EMA model on the first 32 val crops at
    fixed timesteps and noises, with and without the video (and with other crops' hits / no hits)."""
    spec = ctx.spec
    n_t = diffusion.num_timesteps
    shape = spec.latent_shape
    with_hits = ema.module.config.hit_slots > 0
    vrows = np.arange(min(len(val), 32))
    vg = torch.Generator().manual_seed(ctx.seed + 12345)
    v_t = torch.linspace(20, n_t - 20, len(vrows)).round().long()
    v_noise = torch.randn(len(vrows), *shape, generator=vg)
    v_x0 = torch.from_numpy(val.mean[vrows]) * scale
    v_xt = diffusion.q_sample(v_x0, v_t, v_noise)
    v_cond = conditions(feats, val, vrows, spec.num_frames)
    v_hits = {"": None}
    if with_hits:  # the true onsets, and the onsets of another val crop (how much the model follows the track)
        v_hits = {"": crop_hits(onsets, val, vrows, ctx), "_other_hits": crop_hits(onsets, val, vrows, ctx, shift=1),
                  "_no_hits": torch.zeros(len(vrows), *ema.module.config.hit_shape)}

    @torch.no_grad()
    def val_fn(step: int) -> dict[str, float]:
        m = ema.module
        out: dict[str, float] = {}
        for name, keep in (("eps_mse", 1.0), ("eps_mse_null", 0.0)):
            for suffix, h in v_hits.items():
                if keep == 0.0 and suffix:
                    continue  # the null condition drops the hits: one number
                k = torch.full((len(vrows),), keep, device=ctx.device)
                pred = m(v_xt.to(ctx.device), v_t.to(ctx.device), v_cond.to(ctx.device),
                         hits=None if h is None else h.to(ctx.device), keep=k)
                out[name + suffix] = float((m.split_eps(pred).float().cpu() - v_noise).pow(2).mean())
        return out

    return val_fn


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage denoiser: done, skipped")
        return rec
    vae_rec = require(ctx, "vae")
    require(ctx, "projection")
    c, d = ctx.cfg.denoiser, ctx.dist
    sdir = ctx.stage_dir(NAME)
    sdir.mkdir(parents=True, exist_ok=True)
    lat = cache_latents(ctx)
    feats = project_all(ctx)
    split = np.array([ctx.clips[i].split for i in lat.clip])
    train = lat.subset(split == "train")
    val = lat.subset(split == "val") if (split == "val").any() else train
    scale = float(vae_rec["latent_scale"])

    torch.manual_seed(ctx.seed)
    model = build_model(ctx)
    if c.init_from:
        fresh = warm_start(model, c.init_from)
        log.info("denoiser: warm start from %s (left at init: %s)", c.init_from, ", ".join(fresh) or "nothing")
    model = model.to(ctx.device)
    trainer, ema = make_trainer(ctx, model, sdir)
    with_hits = model.config.hit_slots > 0
    onsets = clip_onsets(ctx) if with_hits else []
    diffusion = GaussianDiffusion(DiffusionSchedule())
    step_fn = make_step_fn(ctx, model, trainer, diffusion, train, feats, onsets, scale)
    val_fn = make_val_fn(ctx, ema, diffusion, val, feats, onsets, scale)

    metrics = trainer.run(step_fn, val_fn)
    if not d.is_main:
        d.barrier()
        return done_record(ctx, NAME) or {}
    save_weights(sdir / "denoiser.safetensors", ema.module)
    plot_losses(sdir / "losses.csv", sdir / "losses.png", "stage 4: MDSGen denoiser")
    plot_samples(ctx, ema.module, val, feats, scale, sdir / "samples.png", onsets if with_hits else None)
    out = mark_done(ctx, NAME, {"config": model.config.to_dict(), "metrics": metrics, "ema": True,
                                "latent_crops": {"train": len(train), "val": len(val)},
                                "params": sum(p.numel() for p in model.parameters())})
    d.barrier()
    return out


def load_trained_denoiser(ctx: RunContext) -> MDSGen:
    from engine.nn.bundle import load_weights
    from engine.nn.denoiser import DenoiserConfig

    rec = require(ctx, NAME)
    model = MDSGen(config=DenoiserConfig.from_dict(rec["config"]))
    load_weights(model, ctx.stage_dir(NAME) / "denoiser.safetensors", what="denoiser")
    return model.eval()


@torch.no_grad()
def generate_latents(model: MDSGen, cond: torch.Tensor, *, steps: int, guidance: float, seed: int,
                     device: torch.device, hits: torch.Tensor | None = None) -> np.ndarray:
    """Latents for conditions (B, frames, 512) (and hit tracks) with the engine's numpy DPM-Solver++(2M) and
    dynamic CFG."""
    y = model.encode_condition(cond.to(device), None if hits is None else hits.to(device))  # (B, *cond_shape)
    y_pair = torch.cat([y, torch.zeros_like(y)])

    def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
        out = model.forward_with_condition(torch.from_numpy(x).to(device), torch.from_numpy(t).to(device),
                                           y_pair if guided else y)
        return model.split_eps(out).float().cpu().numpy()

    shape = (model.config.in_channels, *model.config.input_size)
    x_T = np.stack([np.random.default_rng(seed + k).standard_normal(shape, dtype=np.float32)
                    for k in range(cond.shape[0])])
    return sample_dpmpp_2m(x_T, denoise, NoiseScheduleVP(DiffusionSchedule()), steps=steps, guidance=guidance)


@torch.no_grad()
def plot_samples(ctx: RunContext, model: MDSGen, val: LatentSet, feats: list[np.ndarray], scale: float, png,
                 onsets: list[np.ndarray] | None = None) -> None:
    spec = ctx.spec
    vae = load_trained_vae(ctx).to(ctx.device)
    n = min(3, len(val))
    rows = np.arange(n)
    cond = conditions(feats, val, rows, spec.num_frames)
    hits = crop_hits(onsets, val, rows, ctx) if onsets is not None else None
    z = generate_latents(model, cond, steps=ctx.cfg.denoiser.sample_steps, guidance=5.0, seed=0, device=ctx.device,
                         hits=hits)
    gen = vae.decode(torch.from_numpy(z).to(ctx.device)).clamp(0, 1).float().cpu().numpy()
    rec = vae.decode(torch.from_numpy(val.mean[rows] * scale).to(ctx.device)).clamp(0, 1).float().cpu().numpy()
    store = ctx.store(ctx.clips)
    out = []
    for i, r in enumerate(rows):
        clip = int(val.clip[r])
        start = int(val.frame[r]) / spec.video_fps
        wav = store.wav(clip)[round(start * spec.sample_rate) :][: spec.num_samples]
        real = wav_to_mel(wav, spec)
        out.append((f"val {i}", [real, from_mel_image(rec[i], spec), from_mel_image(gen[i], spec)]))
    plot_mels(out, png, "denoiser: real | VAE reconstruction | generated (EMA, 5x CFG)",
              ["real", "reconstructed", "generated"])
