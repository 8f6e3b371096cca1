"""Stage 2: the Vocos-style neural vocoder (engine.nn.vocoder), mel -> 16 kHz waveform.

Training crops: `segment_frames` mel frames of a clip's cached mel (plus the next frame, which the centred STFT of
those samples has) against the matching samples of the cached waveform. Loss: mel_weight * L1 of the output's mel
(the engine's front end, in torch) + stft_weight * multi-resolution STFT loss, and from `adv_start` on the
least-squares adversarial and feature-matching losses against multi-period and multi-resolution discriminators.

Validation: whole val segments through `Vocoder.forward` (as the engine runs it) and through Griffin-Lim (the
engine's fallback, same iterations as the bundle would use); both are scored by the multi-resolution log-spectral
distance to the real waveform (`lsd`, lower is better) and the L1 of their re-analysed mel. The neural vocoder is
used by default only if its lsd beats Griffin-Lim's (`vocoder.use: auto`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from engine import audio
from engine.nn.bundle import save_weights
from engine.nn.vocoder import Vocoder, VocoderConfig, istft
from training.data import batch_indices, step_rng
from training.loop import Trainer, autocast, build_optimizer, plot_losses, plot_mels
from training.losses import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_adv_loss,
    log_spectral_distance,
    multi_resolution_stft_loss,
)
from training.melspec import TorchMel
from training.stages import RunContext, done_record, mark_done

log = logging.getLogger(__name__)
NAME = "vocoder"


def build_vocoder(ctx: RunContext) -> Vocoder:
    c, s = ctx.cfg.vocoder, ctx.spec
    return Vocoder(config=VocoderConfig(n_mels=s.n_mels, n_fft=s.n_fft, hop_length=s.hop_length, dim=c.dim,
                                        intermediate_dim=c.intermediate_dim, num_layers=c.num_layers))


def load_trained_vocoder(ctx: RunContext) -> Vocoder:
    from engine.nn.bundle import load_weights

    rec = done_record(ctx, NAME)
    assert rec is not None
    voc = Vocoder(config=VocoderConfig.from_dict(rec["config"]))
    load_weights(voc, ctx.stage_dir(NAME) / "vocoder.safetensors", what="vocoder")
    return voc.eval()


def val_segments(ctx: RunContext, clips, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(wavs (n, num_samples), exact segment mels (n, n_mels, mel_frames)) of the first segment of each clip."""
    store = ctx.store(clips[:n])
    wavs = np.stack([audio.fit_length(store.wav(i), ctx.spec.num_samples) for i in range(len(store))])
    mels = np.stack([audio.wav_to_mel(w, ctx.spec) for w in wavs])
    return wavs, mels


def griffin_lim_scores(ctx: RunContext, wavs: np.ndarray, mels: np.ndarray, n_iter: int
                       ) -> tuple[dict[str, float], np.ndarray]:
    gl = np.stack([audio.griffin_lim(m, ctx.spec, n_iter=n_iter, seed=0) for m in mels])
    return score(ctx, gl, wavs, mels), gl


def score(ctx: RunContext, pred: np.ndarray, wavs: np.ndarray, mels: np.ndarray) -> dict[str, float]:
    """lsd (multi-resolution log-spectral distance to the real audio) and mel_l1 (of the re-analysed mel)."""
    lsd = log_spectral_distance(torch.from_numpy(pred), torch.from_numpy(wavs))
    re = np.stack([audio.wav_to_mel(p, ctx.spec) for p in pred])
    return {"lsd": float(lsd.mean()), "mel_l1": float(np.abs(re - mels).mean())}


@torch.no_grad()
def vocode(voc: Vocoder, mels: np.ndarray, device: torch.device) -> np.ndarray:
    return np.stack([voc(torch.from_numpy(m[None]).to(device))[0].float().cpu().numpy() for m in mels])


def use_neural_vocoder(use: str, beats_griffin_lim: bool) -> bool:
    """The export's choice: `vocoder.use` neural / griffin-lim, or (auto) the neural one if it beat Griffin-Lim's
    validation lsd. Not part of the stage: the trained weights do not depend on it, so a run may re-export with
    another choice (`--set vocoder.use=griffin-lim --stages export`)."""
    return use == "neural" or (use == "auto" and beats_griffin_lim)


def run(ctx: RunContext) -> dict[str, Any]:
    rec = done_record(ctx, NAME)
    if rec is not None:
        log.info("stage vocoder: done, skipped")
        return rec
    c, spec, d = ctx.cfg.vocoder, ctx.spec, ctx.dist
    sdir = ctx.stage_dir(NAME)
    sdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(ctx.seed)
    voc = build_vocoder(ctx).to(ctx.device)
    disc = Discriminators(c.disc_periods, c.disc_ffts, c.disc_channels).to(ctx.device)
    melfn = TorchMel(spec).to(ctx.device)
    gparams, dparams = list(voc.parameters()), list(disc.parameters())
    opts = {"gen": build_optimizer(gparams, c.optim), "disc": build_optimizer(dparams, c.disc_optim)}
    trainer = Trainer(name=NAME, stage_dir=sdir, loop=c.loop, d=d, modules={"gen": voc, "disc": disc},
                      optimizers=opts, optim_cfgs={"gen": c.optim, "disc": c.disc_optim}, progress=ctx.progress)
    train = ctx.store(ctx.split("train"))
    seg, hop = c.segment_frames, spec.hop_length
    bsz = c.loop.batch_size
    mine = d.shard(bsz)
    use_gan = c.adv_weight > 0 or c.fm_weight > 0

    def step_fn(step: int) -> dict[str, float]:
        idx = batch_indices(ctx.seed, NAME, step, bsz, len(train))[mine]
        rng = step_rng(ctx.seed, NAME, step, d.rank)
        mels, wavs = [], []
        for i in idx:
            mel, wav = train.mel(int(i)), train.wav(int(i))
            j = int(rng.integers(0, max(1, min(mel.shape[1] - seg - 1, wav.size // hop - seg) + 1)))
            mels.append(mel[:, j : j + seg + 1])
            wavs.append(audio.fit_length(wav[j * hop : (j + seg) * hop], seg * hop))
        mel = torch.from_numpy(np.stack(mels)).to(ctx.device)  # (b, n_mels, seg + 1)
        real = torch.from_numpy(np.stack(wavs)).to(ctx.device)  # (b, seg * hop)
        with autocast(ctx.device, ctx.cfg.runtime.bf16):
            log_mag, phase = voc.net(mel)
        fake = istft(log_mag.float(), phase.float(), n_fft=spec.n_fft, hop_length=hop, length=seg * hop)
        out: dict[str, float] = {}
        adv_on = use_gan and step >= c.adv_start
        if adv_on:
            with autocast(ctx.device, ctx.cfg.runtime.bf16):
                loss_d = discriminator_loss(disc(real), disc(fake.detach()))
            out["loss_d"] = float(loss_d.detach())
            out["grad_norm_d"] = trainer.backward(loss_d.float(), "disc", dparams, step)
        loss_mel = (melfn(fake) - melfn(real)).abs().mean()
        loss_stft = multi_resolution_stft_loss(fake, real)
        loss_g = c.mel_weight * loss_mel + c.stft_weight * loss_stft
        if adv_on:
            disc.requires_grad_(False)
            with autocast(ctx.device, ctx.cfg.runtime.bf16):
                real_out, fake_out = disc(real), disc(fake)
                adv, fm = generator_adv_loss(fake_out), feature_matching_loss(real_out, fake_out)
            disc.requires_grad_(True)
            loss_g = loss_g + c.adv_weight * adv.float() + c.fm_weight * fm.float()
            out.update(adv=float(adv.detach()), fm=float(fm.detach()))
        out["grad_norm"] = trainer.backward(loss_g, "gen", gparams, step)
        out.update(loss_g=float(loss_g.detach()), mel_l1=float(loss_mel.detach()),
                   stft=float(loss_stft.detach()))
        return out

    val_clips = ctx.val_or_train(c.val_clips)
    wavs, mels = val_segments(ctx, val_clips, c.val_clips)
    gl_metrics: dict[str, float] = {}
    gl_wavs: np.ndarray | None = None

    def val_fn(step: int) -> dict[str, float]:
        nonlocal gl_metrics, gl_wavs
        if gl_wavs is None:
            gl_metrics, gl_wavs = griffin_lim_scores(ctx, wavs, mels, c.griffin_lim_iters)
        ours = score(ctx, vocode(voc, mels, ctx.device), wavs, mels)
        return {**ours, **{f"gl_{k}": v for k, v in gl_metrics.items()}}

    metrics = trainer.run(step_fn, val_fn)
    if not d.is_main:
        d.barrier()
        return done_record(ctx, NAME) or {}
    save_weights(sdir / "vocoder.safetensors", voc)
    beats = metrics["lsd"] < metrics["gl_lsd"]
    plot_losses(sdir / "losses.csv", sdir / "losses.png", "stage 2: vocoder")
    pred = vocode(voc, mels[:3], ctx.device)
    if gl_wavs is None:
        gl_wavs = np.stack([audio.griffin_lim(m, spec, n_iter=c.griffin_lim_iters) for m in mels[:3]])
    rows = [(f"val {i}", [mels[i], audio.wav_to_mel(pred[i], spec), audio.wav_to_mel(gl_wavs[i], spec)])
            for i in range(len(pred))]
    plot_mels(rows, sdir / "samples.png",
              f"vocoder: real | neural (lsd {metrics['lsd']:.3f}) | Griffin-Lim (lsd {metrics['gl_lsd']:.3f})",
              ["real", "neural vocoder", "Griffin-Lim"])
    for i in range(min(2, len(pred))):
        from engine.media import write_wav

        write_wav(sdir / f"val{i}_neural.wav", pred[i], spec.sample_rate)
        write_wav(sdir / f"val{i}_real.wav", wavs[i], spec.sample_rate)
    out = mark_done(ctx, NAME, {"config": voc.config.to_dict(), "metrics": metrics, "beats_griffin_lim": beats,
                                "griffin_lim_iters": c.griffin_lim_iters,
                                "params": sum(p.numel() for p in gparams)})
    log.info("vocoder: lsd %.4f vs Griffin-Lim %.4f (%s); the export uses %s (vocoder.use: %s)", metrics["lsd"],
             metrics["gl_lsd"], "beats it" if beats else "does not beat it",
             "the neural vocoder" if use_neural_vocoder(c.use, beats) else "Griffin-Lim", c.use)
    d.barrier()
    return out
