"""The discrete Gaussian diffusion the denoiser trains with: forward noising and the per-sample training loss.

Written from the descriptions of DDPM (Ho et al. 2020) and improved DDPM (Nichol & Dhariwal 2021) that DiT, MDT and
MDSGen inherit (reference sections 1.9, 1.10): linear beta schedule 1e-4 .. 0.02 over 1000 steps, epsilon
prediction, and a learned variance of the "learned range" kind trained through the variational bound with the mean
branch frozen (the "hybrid" loss). The eps-MSE may be weighted by min(SNR, gamma) / SNR (Min-SNR-gamma, as in the
shipped MDT v2 code) or left plain (MDT v1). Sampling is not here: the engine's numpy DPM-Solver does that.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from engine.spec import DiffusionSchedule


def _gather(a: Tensor, t: Tensor, ndim: int) -> Tensor:
    """Per-sample values a[t] (B,) broadcastable against a (B, ...) tensor of `ndim` dims."""
    return a.to(t.device)[t].float().reshape(-1, *([1] * (ndim - 1)))


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, exp logvar1) || N(mean2, exp logvar2)), elementwise."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x: Tensor, means: Tensor, log_scales: Tensor) -> Tensor:
    """log p(x) under a Gaussian discretised into 256 bins on [-1, 1] (the DDPM decoder term at t = 0)."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


class GaussianDiffusion:
    """Schedule tables (float64, kept on the CPU) and the training loss of an eps + learned-range-variance model."""

    def __init__(self, schedule: DiffusionSchedule) -> None:
        self.schedule = schedule
        n = schedule.num_train_timesteps
        betas = np.linspace(schedule.beta_start, schedule.beta_end, n, dtype=np.float64)
        alphas_cumprod = np.cumprod(1.0 - betas)
        alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
        self.num_timesteps = n
        self.betas = t(betas)
        self.alphas_cumprod = t(alphas_cumprod)
        self.sqrt_alphas_cumprod = t(np.sqrt(alphas_cumprod))
        self.sqrt_one_minus_alphas_cumprod = t(np.sqrt(1.0 - alphas_cumprod))
        self.sqrt_recip_alphas_cumprod = t(np.sqrt(1.0 / alphas_cumprod))
        self.sqrt_recipm1_alphas_cumprod = t(np.sqrt(1.0 / alphas_cumprod - 1.0))
        # log of the posterior variance, clipped because it is 0 at t = 0
        self.posterior_log_variance_clipped = t(np.log(np.append(posterior_variance[1], posterior_variance[1:])))
        self.posterior_mean_coef1 = t(betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod))
        self.posterior_mean_coef2 = t((1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod))
        self.log_betas = t(np.log(betas))
        self.snr = t(alphas_cumprod / (1.0 - alphas_cumprod))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        return _gather(self.sqrt_alphas_cumprod, t, x0.ndim) * x0 + \
            _gather(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise

    def training_losses(self, model_out: Tensor, x0: Tensor, x_t: Tensor, t: Tensor, noise: Tensor, *,
                        learn_sigma: bool = True, min_snr_gamma: float | None = None) -> dict[str, Tensor]:
        """Per-sample losses (B,): `mse` (eps, optionally Min-SNR weighted) and `vb` (bits/dim, frozen mean).

        model_out: (B, 2C, H, W) with learn_sigma (eps, then v in [-1, 1] interpolating the log variance between
        the posterior variance and beta_t), else (B, C, H, W).
        """
        model_out = model_out.float()
        c = x0.shape[1]
        eps = model_out[:, :c]
        dims = tuple(range(1, x0.ndim))
        mse = (noise - eps).pow(2).mean(dim=dims)  # (B,)
        if min_snr_gamma is not None:
            snr = _gather(self.snr, t, 1).reshape(-1)
            mse = mse * torch.clamp(snr, max=min_snr_gamma) / snr
        out = {"mse": mse}
        if not learn_sigma:
            out["vb"] = torch.zeros_like(mse)
            return out
        v = model_out[:, c : 2 * c]
        nd = x0.ndim
        # learned range: log variance between log(posterior variance) and log(beta)
        min_log = _gather(self.posterior_log_variance_clipped, t, nd)
        max_log = _gather(self.log_betas, t, nd)
        frac = (v + 1.0) / 2.0
        model_log_var = frac * max_log + (1.0 - frac) * min_log
        # the mean from the frozen eps prediction (the VLB only trains the variance)
        eps_f = eps.detach()
        pred_x0 = _gather(self.sqrt_recip_alphas_cumprod, t, nd) * x_t - \
            _gather(self.sqrt_recipm1_alphas_cumprod, t, nd) * eps_f
        c1, c2 = _gather(self.posterior_mean_coef1, t, nd), _gather(self.posterior_mean_coef2, t, nd)
        model_mean = c1 * pred_x0 + c2 * x_t
        true_mean = c1 * x0 + c2 * x_t
        kl = normal_kl(true_mean, min_log, model_mean, model_log_var).mean(dim=dims) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var).mean(dim=dims) / math.log(2.0)
        out["vb"] = torch.where(t == 0, nll, kl)
        return out
