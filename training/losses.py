"""Losses of every stage: VAE (reconstruction, KL, spectral), vocoder (multi-resolution STFT, mel, adversarial,
feature matching) and its discriminators, the contrastive InfoNCE of the projection stage.

The denoiser's diffusion loss lives in `training.diffusion` (schedule maths apart from the networks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.spec import SegmentSpec
from training.melspec import decompress


# ---------------------------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------------------------
def spectral_loss(pred: Tensor, target: Tensor, spec: SegmentSpec, time_dim: int = -1) -> Tensor:
    """Spectral convergence on linear magnitudes (loud parts count) + L1 of the differences along time (onsets stay
    sharp) and along frequency (harmonics stay sharp).

    pred, target: normalised mel images (B, H, W). The prediction is clamped to the mel's range before the
    exponential (the engine clips there too), so an untrained decoder's outliers cannot blow the loss up.
    """
    freq_dim = -2 if time_dim == -1 else -1
    lp = decompress(pred.float().clamp(0.0, 1.0), spec)
    lt = decompress(target.float(), spec)
    sc = torch.linalg.vector_norm(lt - lp, dim=(-2, -1)) / torch.linalg.vector_norm(lt, dim=(-2, -1)).clamp(min=1e-6)
    dt = (torch.diff(pred, dim=time_dim) - torch.diff(target, dim=time_dim)).abs().mean()
    df = (torch.diff(pred, dim=freq_dim) - torch.diff(target, dim=freq_dim)).abs().mean()
    return sc.mean() + dt + df


def vae_losses(pred: Tensor, target: Tensor, posterior, spec: SegmentSpec, *, kl_weight: float,
               spectral_weight: float) -> dict[str, Tensor]:
    """Reconstruction L1 + kl_weight * KL(q || N(0, I)) (per latent element) + spectral_weight * spectral."""
    rec = (pred.float() - target).abs().mean()
    kl = posterior.kl().mean() / float(posterior.mean[0].numel())  # nats per latent element
    spec_l = spectral_loss(pred, target, spec) if spectral_weight > 0 else pred.new_zeros(())
    total = rec + kl_weight * kl + spectral_weight * spec_l
    return {"loss": total, "rec_l1": rec, "kl": kl, "spectral": spec_l}


# ---------------------------------------------------------------------------------------------------------------
# Vocoder: reconstruction losses
# ---------------------------------------------------------------------------------------------------------------
STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))


def _stft_mag(x: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    window = torch.hann_window(win, device=x.device, dtype=torch.float32)
    s = torch.stft(x.float(), n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=True,
                   return_complex=True)
    return s.abs().clamp(min=1e-7)  # (B, F, T)


def multi_resolution_stft_loss(pred: Tensor, target: Tensor,
                               resolutions: tuple[tuple[int, int, int], ...] = STFT_RESOLUTIONS) -> Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes (Parallel WaveGAN)."""
    total = pred.new_zeros((), dtype=torch.float32)
    for n_fft, hop, win in resolutions:
        mp, mt = _stft_mag(pred, n_fft, hop, win), _stft_mag(target, n_fft, hop, win)
        sc = torch.linalg.vector_norm(mt - mp, dim=(-2, -1)) / torch.linalg.vector_norm(mt, dim=(-2, -1))
        total = total + sc.mean() + (mt.log() - mp.log()).abs().mean()
    return total / len(resolutions)


def log_spectral_distance(pred: Tensor, target: Tensor,
                          resolutions: tuple[tuple[int, int, int], ...] = STFT_RESOLUTIONS) -> Tensor:
    """Per-example mean |log10 magnitude difference| over resolutions (B,): the vocoder's validation error."""
    out = []
    for n_fft, hop, win in resolutions:
        mp, mt = _stft_mag(pred, n_fft, hop, win).clamp(min=1e-5), _stft_mag(target, n_fft, hop, win).clamp(min=1e-5)
        out.append((mt.log10() - mp.log10()).abs().mean(dim=(-2, -1)))
    return torch.stack(out).mean(0)


# ---------------------------------------------------------------------------------------------------------------
# Vocoder: discriminators (HiFi-GAN multi-period, Vocos/UnivNet multi-resolution), written from the papers
# ---------------------------------------------------------------------------------------------------------------
def _conv_stack(convs: nn.ModuleList, post: nn.Module, h: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Leaky-ReLU conv stack + output conv: (logits flattened, every layer's features for feature matching)."""
    feats = []
    for conv in convs:
        h = F.leaky_relu(conv(h), 0.1)
        feats.append(h)
    h = post(h)
    feats.append(h)
    return h.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into (T / p, p) and runs 2-D convolutions along time (HiFi-GAN's MPD, narrower)."""

    def __init__(self, period: int, channels: int) -> None:
        super().__init__()
        self.period = period
        ch = [1, channels, channels * 2, channels * 4, channels * 4]
        self.convs = nn.ModuleList(
            nn.utils.parametrizations.weight_norm(nn.Conv2d(ch[i], ch[i + 1], (5, 1), (3, 1), padding=(2, 0)))
            for i in range(len(ch) - 1)
        )
        self.post = nn.utils.parametrizations.weight_norm(nn.Conv2d(ch[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        h = x.view(b, 1, -1, self.period)  # (B, 1, T/p, p)
        return _conv_stack(self.convs, self.post, h)


class SpectrogramDiscriminator(nn.Module):
    """2-D convolutions over one STFT resolution's log magnitude (multi-resolution discriminator)."""

    def __init__(self, n_fft: int, channels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList([
            wn(nn.Conv2d(1, channels, (7, 5), (2, 2), padding=(3, 2))),
            wn(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
            wn(nn.Conv2d(channels, channels, (5, 3), (2, 2), padding=(2, 1))),
            wn(nn.Conv2d(channels, channels, 3, padding=1)),
        ])
        self.post = wn(nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        mag = _stft_mag(x, self.n_fft, self.n_fft // 4, self.n_fft)  # (B, F, T)
        h = mag.log()[:, None]  # (B, 1, F, T)
        return _conv_stack(self.convs, self.post, h)


class Discriminators(nn.Module):
    """All discriminators together: forward(wav (B, n)) -> list of (logits, features)."""

    def __init__(self, periods: list[int], ffts: list[int], channels: int) -> None:
        super().__init__()
        self.discs = nn.ModuleList([*(PeriodDiscriminator(p, channels) for p in periods),
                                    *(SpectrogramDiscriminator(n, channels) for n in ffts)])

    def forward(self, wav: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [d(wav) for d in self.discs]


def discriminator_loss(real: list[tuple[Tensor, list[Tensor]]], fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """Least-squares GAN: mean over discriminators of E[(1 - D(real))^2] + E[D(fake)^2]."""
    loss = sum(((1 - r).pow(2).mean() + f.pow(2).mean()) for (r, _), (f, _) in zip(real, fake))
    return loss / len(real)


def generator_adv_loss(fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    return sum((1 - f).pow(2).mean() for f, _ in fake) / len(fake)


def feature_matching_loss(real: list[tuple[Tensor, list[Tensor]]], fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    total, n = 0.0, 0
    for (_, fr), (_, ff) in zip(real, fake):
        for a, b in zip(fr, ff):
            total = total + (a.detach() - b).abs().mean()
            n += 1
    return total / max(n, 1)


# ---------------------------------------------------------------------------------------------------------------
# Contrastive (CAVP)
# ---------------------------------------------------------------------------------------------------------------
def info_nce(a: Tensor, b: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE (CLIP) between matched rows of L2-normalised a (N, D) and b (N, D)."""
    logits = logit_scale * a @ b.t()  # (N, N)
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def temporal_info_nce(a: Tensor, b: Tensor, logit_scale: Tensor) -> Tensor:
    """InfoNCE inside each video: a, b (B, K, D) windows of B videos; mean over videos of the K x K contrast."""
    logits = logit_scale * torch.einsum("bkd,bjd->bkj", a, b)  # (B, K, K)
    bsz, k, _ = logits.shape
    labels = torch.arange(k, device=a.device).repeat(bsz)  # (B*K,)
    l1 = F.cross_entropy(logits.reshape(bsz * k, k), labels)
    l2 = F.cross_entropy(logits.transpose(1, 2).reshape(bsz * k, k), labels)
    return 0.5 * (l1 + l2)
