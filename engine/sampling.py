"""DPM-Solver++(2M) sampling with MDSGen's dynamic ("power-cosine") classifier-free guidance, in numpy only.

This module is shared by the torch and the ONNX runtime paths, so it imports neither torch nor diffusers and knows
no model architecture: the network is reached only through a `denoise` callable that predicts the noise ε.

What it reproduces (see the reference, sections 1.10, 3.1 and 3.2):

- The noise schedule is DPM-Solver's `NoiseScheduleVP('discrete', betas=...)` (LuChengTHU's `dpm_solver_pytorch`)
  built from the discrete DDPM schedule the denoiser was trained with (linear β 1e-4 .. 0.02, 1000 steps): log ᾱ is
  interpolated piecewise-linearly in the continuous time t ∈ [1/N, 1] (and extrapolated linearly outside).
- The sampler is DPM-Solver++ multistep of order 2 ('dpmsolver++', solver type 'dpmsolver'; diffusers calls it
  `DPMSolverMultistepScheduler(algorithm_type='dpmsolver++', solver_order=2, solver_type='midpoint')`), with a
  time-uniform grid from t = 1 to t = 1e-3, a first-order first step, the lower-order final step only below 10
  steps, no thresholding and no `denoise_to_zero`. The number of network evaluations equals the step count.
- The continuous time t is fed to the network as the model timestep (t - 1/N)·N, a float in [0, N-1].
- Guidance: ε̂ = ε_u + w_eff(t)·(ε_c - ε_u), with w_eff(t) = 1 + (w-1)·½·(1 - cos(π·(1 - t/T)^p)).
- Optionally (not MDSGen's; issue #17) guidance only on an interval of noise levels (Kynkäänniemi et al. 2024,
  "Applying guidance in a limited interval improves sample and distribution quality in diffusion models"): with
  `guidance_interval=(lo, hi)` the guided pair is evaluated only where lo < σ_t/α_t <= hi (the EDM noise level of
  the VP state; their EDM2 interval is (0.28, 5.42]); elsewhere the network sees the conditional half alone, so
  those steps cost half.

Numerics: the sample handed to and returned from the network is float32; schedule scalars, the solver state and
the stored data predictions are float64 (the latents are small, so this costs nothing next to the network).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

from engine.errors import Cancelled, InvalidRequestError
from engine.spec import DiffusionSchedule

__all__ = [
    "DenoiseFn",
    "EpsFn",
    "NoiseScheduleVP",
    "dpmpp_2m_core",
    "dynamic_guidance_scale",
    "guided_steps",
    "model_timestep",
    "sample_dpmpp_2m",
    "time_uniform_timesteps",
]

ArrayOrFloat = TypeVar("ArrayOrFloat", float, np.ndarray)

#: Below this many steps the final step is taken at first order when `lower_order_final` is set (DPM-Solver v2).
LOWER_ORDER_FINAL_MAX_STEPS = 10


class DenoiseFn(Protocol):
    """The network seen by `sample_dpmpp_2m`: predicts the noise ε of a batch of noisy latents.

    `denoise(x, t, guided) -> eps`, with
      x      (B', C, H, W) float32  noisy latents;
      t      (B',)         float32  model timesteps (t_continuous - 1/N)·N, all equal within a call;
      guided bool                   True: B' = 2B and x = concat([x_B, x_B]); the first half must be evaluated with
                                    the conditions, the second half with the null (unconditional) condition.
                                    False: B' = B and every row is evaluated with its condition only.
      eps    (B', C, H, W)          predicted noise (only the ε channels: a learned-variance half must be dropped
                                    by the callable); any float dtype.
    """

    def __call__(self, x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray: ...


#: The plain noise predictor driven by `dpmpp_2m_core`: eps_fn(x (B, ...) float32, t_model float) -> eps (B, ...).
EpsFn = Callable[[np.ndarray, float], np.ndarray]


def _interpolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of (xp, fp) at x, extrapolated linearly with the end segments.

    This is DPM-Solver's `interpolate_fn` (np.interp would clamp instead of extrapolating).
    x: any shape; xp, fp: (K,), K >= 2, xp strictly increasing. Returns float64 of x's shape.
    """
    x = np.asarray(x, dtype=np.float64)
    k = xp.shape[0]
    idx = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, k - 2)  # segment [idx, idx+1]
    x0, x1 = xp[idx], xp[idx + 1]
    y0, y1 = fp[idx], fp[idx + 1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class NoiseScheduleVP:
    """DPM-Solver's discrete-time VP noise schedule, made continuous by interpolating log ᾱ^½ in t.

    With N training steps and betas β_1..β_N, the knots are t_k = k/N (k = 1..N) and
    log α(t_k) = ½·Σ_{j<=k} log(1 - β_j), so α(t_k)² = ᾱ_k (diffusers' `alphas_cumprod[k-1]`). In between (and
    outside [1/N, 1], by linear extrapolation) log α is piecewise linear in t. Then σ(t) = sqrt(1 - α(t)²) and
    λ(t) = log α(t) - log σ(t) (half the log-SNR). Everything is float64.

    DPM-Solver newer versions drop the knots with λ < -5.1; for the linear 1e-4..0.02 schedule λ_T ≈ -5.06, so
    nothing is dropped and this class does not implement the clip (it refuses schedules that would need it).
    """

    def __init__(self, schedule: DiffusionSchedule | None = None) -> None:
        self.schedule: DiffusionSchedule = schedule if schedule is not None else DiffusionSchedule()
        n = self.schedule.num_train_timesteps
        # betas (N,): torch.linspace-style linear schedule, computed in float64
        self.betas: np.ndarray = np.linspace(self.schedule.beta_start, self.schedule.beta_end, n, dtype=np.float64)
        self.total_N: int = n
        self.T: float = 1.0
        self.t_array: np.ndarray = np.linspace(0.0, 1.0, n + 1, dtype=np.float64)[1:]  # (N,) knots k/N
        self.log_alpha_array: np.ndarray = 0.5 * np.cumsum(np.log1p(-self.betas))  # (N,) log α at the knots
        lam_T = float(self.marginal_lambda(1.0))
        if lam_T < -5.1:
            raise ValueError(
                f"schedule reaches lambda_T = {lam_T:.3f} < -5.1; DPM-Solver would clip it, which is not implemented"
            )

    @property
    def alphas_cumprod(self) -> np.ndarray:
        """ᾱ at the N discrete training steps, (N,) float64."""
        return np.exp(2.0 * self.log_alpha_array)

    def marginal_log_mean_coeff(self, t: ArrayOrFloat) -> ArrayOrFloat:
        """log α(t) for continuous t (float or array of any shape, float64 result of the same shape)."""
        out = _interpolate(np.asarray(t), self.t_array, self.log_alpha_array)
        return float(out) if np.ndim(t) == 0 else out

    def marginal_alpha(self, t: ArrayOrFloat) -> ArrayOrFloat:
        """α(t) = sqrt(ᾱ(t)), the signal coefficient of x_t = α x_0 + σ ε."""
        out = np.exp(self.marginal_log_mean_coeff(np.asarray(t, dtype=np.float64)))
        return float(out) if np.ndim(t) == 0 else out

    def marginal_std(self, t: ArrayOrFloat) -> ArrayOrFloat:
        """σ(t) = sqrt(1 - α(t)²), the noise coefficient."""
        la = self.marginal_log_mean_coeff(np.asarray(t, dtype=np.float64))
        out = np.sqrt(-np.expm1(2.0 * la))
        return float(out) if np.ndim(t) == 0 else out

    def marginal_lambda(self, t: ArrayOrFloat) -> ArrayOrFloat:
        """λ(t) = log α(t) - log σ(t)."""
        la = self.marginal_log_mean_coeff(np.asarray(t, dtype=np.float64))
        out = la - 0.5 * np.log(-np.expm1(2.0 * la))
        return float(out) if np.ndim(t) == 0 else out

    def inverse_lambda(self, lamb: ArrayOrFloat) -> ArrayOrFloat:
        """The continuous t with λ(t) = lamb (inverse of `marginal_lambda`, same interpolation)."""
        lamb_arr = np.asarray(lamb, dtype=np.float64)
        log_alpha = -0.5 * np.logaddexp(0.0, -2.0 * lamb_arr)
        out = _interpolate(log_alpha, self.log_alpha_array[::-1], self.t_array[::-1])
        return float(out) if np.ndim(lamb) == 0 else out


def time_uniform_timesteps(steps: int, t_start: float = 1.0, t_end: float = 1e-3) -> np.ndarray:
    """DPM-Solver's 'time_uniform' grid: (steps + 1,) float64 continuous times from t_start down to t_end."""
    if steps < 1:
        raise InvalidRequestError(f"steps must be at least 1, got {steps}")
    if not 0.0 < t_end < t_start <= 1.0:
        raise InvalidRequestError(f"need 0 < t_end < t_start <= 1, got t_start={t_start}, t_end={t_end}")
    return np.linspace(t_start, t_end, steps + 1, dtype=np.float64)


def model_timestep(t_continuous: ArrayOrFloat, num_train_timesteps: int = 1000) -> ArrayOrFloat:
    """The network's timestep input for a continuous time: (t - 1/N)·N, a float in [0, N-1] for t in [1/N, 1]."""
    n = float(num_train_timesteps)
    out = (np.asarray(t_continuous, dtype=np.float64) - 1.0 / n) * n
    return float(out) if np.ndim(t_continuous) == 0 else out


def dynamic_guidance_scale(
    t_model: ArrayOrFloat, guidance: float, power: float, num_train_timesteps: int = 1000
) -> ArrayOrFloat:
    """MDT's power-cosine CFG scale at model timestep t (0..T-1): w_eff = 1 + (w-1)·½·(1 - cos(π·(1 - t/T)^p)).

    With MDSGen's p = 0.01 and w = 5 this stays between 4.956 (t = 999) and 5.0; w = 1 gives 1 everywhere.
    """
    t = np.asarray(t_model, dtype=np.float64)
    base = np.clip(1.0 - t / float(num_train_timesteps), 0.0, None)
    s = 0.5 * (1.0 - np.cos(np.pi * base**power))
    out = 1.0 + (guidance - 1.0) * s
    return float(out) if np.ndim(t_model) == 0 else out


def dpmpp_2m_core(
    x_T: np.ndarray,
    eps_fn: EpsFn,
    alphas: np.ndarray,
    sigmas: np.ndarray,
    t_model: np.ndarray,
    *,
    lower_order_final: bool = False,
    order: int = 2,
    on_step: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """DPM-Solver++(2M) (or 3M with `order=3`) on an arbitrary grid of (α_i, σ_i), driven by a noise predictor.

    Args:
        x_T: (B, ...) initial noise at grid point 0 (any float dtype).
        eps_fn: eps_fn(x (B, ...) float32, t_model_i float) -> ε (B, ...); the noise prediction at grid point i.
        alphas: (steps + 1,) signal coefficients α_i at the grid points, from the noisiest (i = 0) to the end.
        sigmas: (steps + 1,) noise coefficients σ_i (VP: α² + σ² = 1, though this is not required).
        t_model: (steps,) the model timesteps passed to eps_fn at grid points 0..steps-1 (the end point is never
            evaluated).
        lower_order_final: take the last step at first order (the caller decides when; DPM-Solver does it only
            below 10 steps, diffusers only below 15); with order 3 also the one before it at second order at most
            (diffusers' `lower_order_second`).
        order: 2 (MDSGen's sampler) or 3 (DPM-Solver++(3M), issue #17's lever: the third-order multistep update,
            as diffusers' `solver_order=3`); the first steps warm up at orders 1, 2.
        on_step: called as on_step(i, steps) after step i (1-based) has been taken.
        should_cancel: checked before every eps_fn call; when it returns True, `Cancelled` is raised.

    The update (data prediction x̂0_i = (x_i - σ_i ε_i)/α_i, λ_i = log(α_i/σ_i), h = λ_{i+1} - λ_i):
      first order:  x_{i+1} = (σ_{i+1}/σ_i) x_i - α_{i+1}(e^{-h} - 1) x̂0_i
      second order: D1 = (x̂0_i - x̂0_{i-1}) h/h_prev,
                    x_{i+1} = (σ_{i+1}/σ_i) x_i - α_{i+1}(e^{-h} - 1)(x̂0_i + ½ D1)
      third order (r0 = h_prev/h, r1 = h_prev2/h, D1_0 = (x̂0_i - x̂0_{i-1})/r0, D1_1 = (x̂0_{i-1} - x̂0_{i-2})/r1,
                   D1 = D1_0 + r0/(r0+r1)·(D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0+r1)):
                    x_{i+1} = (σ_{i+1}/σ_i) x_i - α_{i+1}φ1 x̂0_i + α_{i+1}(φ1/h + 1) D1 - α_{i+1}((φ1 + h)/h² - ½) D2
    The first step is first order. eps_fn is called exactly `steps` times.

    Returns (B, ...) float32, the sample at the last grid point.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    t_model = np.asarray(t_model, dtype=np.float64)
    steps = t_model.shape[0]
    if t_model.ndim != 1 or steps < 1:
        raise InvalidRequestError(f"t_model must be a non-empty 1-D array, got shape {t_model.shape}")
    if alphas.shape != (steps + 1,) or sigmas.shape != (steps + 1,):
        raise InvalidRequestError(
            f"alphas and sigmas must have shape ({steps + 1},) for {steps} steps, got {alphas.shape}, {sigmas.shape}"
        )
    if np.any(alphas <= 0) or np.any(sigmas <= 0):
        raise InvalidRequestError("alphas and sigmas must be positive (a zero final sigma is not supported)")
    if order not in (2, 3):
        raise InvalidRequestError(f"order must be 2 or 3, got {order}")
    lambdas = np.log(alphas) - np.log(sigmas)  # (steps + 1,)

    x = np.asarray(x_T, dtype=np.float64)  # (B, ...) solver state in float64

    def data_prediction(i: int) -> np.ndarray:
        """x̂0 at grid point i from one eps_fn call, (B, ...) float64."""
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"sampling cancelled after {i} of {steps} steps")
        eps = np.asarray(eps_fn(x.astype(np.float32), float(t_model[i])))
        if eps.shape != x.shape:
            raise ValueError(f"the noise prediction has shape {eps.shape}, expected {x.shape}")
        return (x - float(sigmas[i]) * eps.astype(np.float64)) / float(alphas[i])

    x0_prev2: np.ndarray | None = None  # x̂0 at grid point i-2, (B, ...)
    x0_prev: np.ndarray | None = None  # x̂0 at grid point i-1, (B, ...)
    x0_cur = data_prediction(0)  # x̂0 at grid point i, (B, ...)
    for i in range(steps):
        h = float(lambdas[i + 1] - lambdas[i])
        phi_1 = math.expm1(-h)  # e^{-h} - 1
        ratio = float(sigmas[i + 1] / sigmas[i])
        a_next = float(alphas[i + 1])
        step_order = min(order, i + 1)  # warm-up: 1, 2, (3)
        if lower_order_final and i == steps - 1:
            step_order = 1
        elif lower_order_final and order == 3 and i == steps - 2:
            step_order = min(step_order, 2)
        if step_order == 1:
            x = ratio * x - (a_next * phi_1) * x0_cur
        elif step_order == 2:
            assert x0_prev is not None
            r0 = float(lambdas[i] - lambdas[i - 1]) / h
            d1 = (1.0 / r0) * (x0_cur - x0_prev)
            x = ratio * x - (a_next * phi_1) * x0_cur - (0.5 * a_next * phi_1) * d1
        else:
            assert x0_prev is not None and x0_prev2 is not None
            r0 = float(lambdas[i] - lambdas[i - 1]) / h
            r1 = float(lambdas[i - 1] - lambdas[i - 2]) / h
            d1_0 = (1.0 / r0) * (x0_cur - x0_prev)
            d1_1 = (1.0 / r1) * (x0_prev - x0_prev2)
            d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
            d2 = (1.0 / (r0 + r1)) * (d1_0 - d1_1)
            x = (ratio * x - (a_next * phi_1) * x0_cur + (a_next * (phi_1 / h + 1.0)) * d1
                 - (a_next * ((phi_1 + h) / h**2 - 0.5)) * d2)
        if on_step is not None:
            on_step(i + 1, steps)
        if i + 1 < steps:
            x0_prev2, x0_prev, x0_cur = x0_prev, x0_cur, data_prediction(i + 1)
    return x.astype(np.float32)


def guided_steps(schedule: NoiseScheduleVP, steps: int, guidance_interval: tuple[float, float] | None, *,
                 t_end: float = 1e-3) -> np.ndarray:
    """(steps,) bool: which of the sampler's denoise calls are guided (all of them without an interval)."""
    t_cont = time_uniform_timesteps(steps, schedule.T, t_end)[:steps]
    if guidance_interval is None:
        return np.ones(steps, dtype=bool)
    lo, hi = guidance_interval
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi):
        raise InvalidRequestError(f"guidance_interval must be two noise levels 0 <= lo < hi, got {guidance_interval}")
    level = np.asarray(schedule.marginal_std(t_cont)) / np.asarray(schedule.marginal_alpha(t_cont))  # σ/α
    return (level > lo) & (level <= hi)


def sample_dpmpp_2m(
    x_T: np.ndarray,
    denoise: DenoiseFn,
    schedule: NoiseScheduleVP,
    *,
    steps: int,
    guidance: float,
    guidance_power: float = 0.01,
    guidance_interval: tuple[float, float] | None = None,
    solver_order: int = 2,
    t_end: float = 1e-3,
    lower_order_final: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Sample with DPM-Solver++(2M) and dynamic CFG, exactly as MDSGen's released inference does.

    Args:
        x_T: (B, C, H, W) initial Gaussian noise (cast to float32).
        denoise: the network, called ONCE per step as denoise(x, t, guided) -> ε (see `DenoiseFn`):
            - guidance != 1: guided=True, x = concat([x_B, x_B]) of shape (2B, C, H, W), t (2B,) float32. Rows
              0..B-1 must be evaluated with the conditions, rows B..2B-1 with the null condition; the sampler then
              uses ε = ε_u + w_eff(t)·(ε_c - ε_u) with `dynamic_guidance_scale`.
            - guidance == 1: guided=False, x of shape (B, C, H, W), t (B,); every row is evaluated with its
              condition only (no unconditional pass is needed).
            It must return ε only, of x's shape (drop a learned-variance half before returning).
        schedule: the continuous VP noise schedule.
        steps: number of solver steps = number of denoise calls (>= 1).
        guidance: nominal CFG scale w (1 = no guidance).
        guidance_power: the power p of the power-cosine CFG schedule (MDSGen: 0.01).
        guidance_interval: (lo, hi) EDM noise levels σ/α; guidance only where lo < σ/α <= hi, the other steps
            call denoise(x, t, False) with the batch of B (None: every step guided, MDSGen's sampler).
        solver_order: 2 (DPM-Solver++(2M), MDSGen's) or 3 (DPM-Solver++(3M)).
        t_end: the continuous end time of the time-uniform grid (from t = 1).
        lower_order_final: DPM-Solver's flag; the last step is first order only when steps < 10.
        on_step: on_step(i, steps) after step i (1-based).
        should_cancel: checked before each denoise call; True raises `Cancelled` (exactly as many denoise calls as
            completed steps have been made).

    Returns (B, C, H, W) float32, the sample at t_end (in the model's latent scale; nothing is denoised to t = 0).
    """
    if not math.isfinite(guidance):
        raise InvalidRequestError(f"guidance must be finite, got {guidance}")
    if not (math.isfinite(guidance_power) and guidance_power > 0):
        raise InvalidRequestError(f"guidance_power must be positive, got {guidance_power}")
    x_T = np.asarray(x_T, dtype=np.float32)
    if x_T.ndim < 1 or x_T.shape[0] < 1:
        raise InvalidRequestError(f"x_T must be a non-empty batch, got shape {x_T.shape}")
    n = schedule.total_N
    t_cont = time_uniform_timesteps(steps, schedule.T, t_end)  # (steps + 1,)
    alphas = np.asarray(schedule.marginal_alpha(t_cont))  # (steps + 1,)
    sigmas = np.asarray(schedule.marginal_std(t_cont))  # (steps + 1,)
    t_model = np.asarray(model_timestep(t_cont[:steps], n))  # (steps,) in [0, N-1]
    guided = guidance != 1.0
    step_guided = {float(tm): g for tm, g in zip(t_model, guided_steps(schedule, steps, guidance_interval,
                                                                       t_end=t_end))}

    def eps_fn(x: np.ndarray, t: float) -> np.ndarray:
        """ε (B, C, H, W) for x (B, C, H, W) float32 at model timestep t, guided or not."""
        b = x.shape[0]
        if not guided or not step_guided[t]:
            t1 = np.full((b,), t, dtype=np.float32)  # (B,)
            return np.asarray(denoise(x, t1, False))
        x2 = np.concatenate([x, x], axis=0)  # (2B, C, H, W): [cond; uncond]
        t2 = np.full((2 * b,), t, dtype=np.float32)  # (2B,)
        out = np.asarray(denoise(x2, t2, True))
        if out.shape != x2.shape:
            raise ValueError(f"the guided noise prediction has shape {out.shape}, expected {x2.shape}")
        out = out.astype(np.float64)
        eps_c, eps_u = out[:b], out[b:]  # (B, C, H, W) each
        w = dynamic_guidance_scale(t, guidance, guidance_power, n)
        return eps_u + w * (eps_c - eps_u)

    return dpmpp_2m_core(
        x_T,
        eps_fn,
        alphas,
        sigmas,
        t_model,
        lower_order_final=lower_order_final and steps < LOWER_ORDER_FINAL_MAX_STEPS,
        order=solver_order,
        on_step=on_step,
        should_cancel=should_cancel,
    )
