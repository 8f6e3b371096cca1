"""Tests of engine.sampling: the DPM-Solver++(2M) sampler, its VP schedule and MDSGen's dynamic CFG."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import Cancelled, InvalidRequestError
from engine.sampling import (
    NoiseScheduleVP,
    dpmpp_2m_core,
    dynamic_guidance_scale,
    guided_steps,
    model_timestep,
    sample_dpmpp_2m,
    time_uniform_timesteps,
)

SHAPE = (2, 4, 4, 8)  # (B, C, H, W), small latent
D = int(np.prod(SHAPE[1:]))


@pytest.fixture(scope="module")
def schedule() -> NoiseScheduleVP:
    return NoiseScheduleVP()


def _toy_eps(seed: int = 0):
    """A deterministic noise predictor, nonlinear in x and t: ε(x, t) = tanh(A x)·(0.5 + t/1000) + 0.2 sin(x)."""
    a = np.random.default_rng(seed).standard_normal((D, D)) / np.sqrt(D)  # (D, D)

    def eps(x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(x.shape[0], D)  # (B, D)
        out = np.tanh(flat @ a.T) * (0.5 + t / 1000.0) + 0.2 * np.sin(flat)
        return out.reshape(x.shape)

    return eps


# ---- schedule ------------------------------------------------------------------------------------------------


def test_schedule_reference_facts(schedule: NoiseScheduleVP) -> None:
    assert schedule.marginal_alpha(1.0) ** 2 == pytest.approx(4.04e-5, rel=2e-3)
    assert schedule.marginal_lambda(1.0) == pytest.approx(-5.06, abs=5e-3)
    assert schedule.marginal_lambda(1.0) > -5.1  # DPM-Solver's lambda clip removes nothing


def test_schedule_knots_equal_discrete_alphas_cumprod(schedule: NoiseScheduleVP) -> None:
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1.0 - betas)  # (1000,)
    t_knots = np.arange(1, 1001) / 1000.0
    np.testing.assert_allclose(schedule.marginal_alpha(t_knots) ** 2, abar, rtol=1e-12)
    a, s = schedule.marginal_alpha(t_knots), schedule.marginal_std(t_knots)
    np.testing.assert_allclose(a**2 + s**2, 1.0, rtol=1e-12)
    np.testing.assert_allclose(schedule.marginal_lambda(t_knots), np.log(a / s), rtol=1e-10)


def test_schedule_interpolates_and_extrapolates_linearly(schedule: NoiseScheduleVP) -> None:
    la = schedule.log_alpha_array
    # midway between knots 0.5 and 0.501 (indices 499, 500)
    assert schedule.marginal_log_mean_coeff(0.5005) == pytest.approx(0.5 * (la[499] + la[500]), rel=1e-12)
    # below the first knot 1/N: the first segment extended
    slope = (la[1] - la[0]) * 1000.0
    assert schedule.marginal_log_mean_coeff(0.0005) == pytest.approx(la[0] - 0.0005 * slope, rel=1e-12)
    # inverse_lambda inverts marginal_lambda
    t = np.array([0.01, 0.3, 0.77, 0.999])
    np.testing.assert_allclose(schedule.inverse_lambda(schedule.marginal_lambda(t)), t, rtol=1e-9)


def test_time_grid_and_model_timestep() -> None:
    t = time_uniform_timesteps(25)
    assert t.shape == (26,) and t[0] == 1.0 and t[-1] == pytest.approx(1e-3)
    assert np.all(np.diff(t) < 0)
    assert model_timestep(1.0) == pytest.approx(999.0)
    assert model_timestep(1e-3) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InvalidRequestError):
        time_uniform_timesteps(0)
    with pytest.raises(InvalidRequestError):
        time_uniform_timesteps(10, t_end=0.0)


# ---- dynamic CFG ---------------------------------------------------------------------------------------------


def test_dynamic_guidance_scale_values() -> None:
    assert round(dynamic_guidance_scale(999.0, 5.0, 0.01), 3) == 4.956
    t25 = model_timestep(time_uniform_timesteps(25)[:25])
    w25 = dynamic_guidance_scale(t25, 5.0, 0.01)
    assert w25.mean() == pytest.approx(4.997, abs=5e-4)
    assert np.all((w25 >= 4.956) & (w25 <= 5.0))
    t50 = model_timestep(time_uniform_timesteps(50)[:50])
    assert dynamic_guidance_scale(t50, 5.0, 0.01).mean() == pytest.approx(4.998, abs=5e-4)
    np.testing.assert_array_equal(dynamic_guidance_scale(t25, 1.0, 0.01), 1.0)
    # MDT's default p = 4: w_eff ~ 1 at high noise, ~ w near t = 0
    assert dynamic_guidance_scale(999.0, 5.0, 4.0) == pytest.approx(1.0, abs=1e-6)
    assert dynamic_guidance_scale(0.0, 5.0, 4.0) == pytest.approx(5.0)


def test_guided_combination_matches_analytic_eps(schedule: NoiseScheduleVP) -> None:
    """A guided denoise returning constant halves gives the same sample as a plain one returning the combination."""
    c_val, u_val, w, p, steps = 0.7, -0.3, 3.0, 0.5, 6

    def guided(x: np.ndarray, t: np.ndarray, is_guided: bool) -> np.ndarray:
        assert is_guided
        b = x.shape[0] // 2
        np.testing.assert_array_equal(x[:b], x[b:])
        out = np.empty_like(x)
        out[:b], out[b:] = c_val, u_val
        return out

    def combined(x: np.ndarray, t: np.ndarray, is_guided: bool) -> np.ndarray:
        assert not is_guided
        w_eff = dynamic_guidance_scale(float(t[0]), w, p)
        return np.full_like(x, u_val + w_eff * (c_val - u_val))

    x_T = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    a = sample_dpmpp_2m(x_T, guided, schedule, steps=steps, guidance=w, guidance_power=p)
    b = sample_dpmpp_2m(x_T, combined, schedule, steps=steps, guidance=1.0, guidance_power=p)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # and the guidance did change something
    c = sample_dpmpp_2m(x_T, lambda x, t, g: np.full_like(x, c_val), schedule, steps=steps, guidance=1.0)
    assert np.abs(a - c).max() > 1e-2


# ---- call contract -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("guidance", "steps"), [(5.0, 7), (1.0, 7), (0.0, 12), (5.0, 1)])
def test_denoise_calls_and_batch(schedule: NoiseScheduleVP, guidance: float, steps: int) -> None:
    calls: list[tuple[tuple[int, ...], np.dtype, np.ndarray, bool]] = []
    ticks: list[tuple[int, int]] = []

    def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
        calls.append((x.shape, x.dtype, t.copy(), guided))
        return 0.1 * x

    x_T = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    out = sample_dpmpp_2m(
        x_T, denoise, schedule, steps=steps, guidance=guidance, on_step=lambda i, n: ticks.append((i, n))
    )
    assert out.shape == SHAPE and out.dtype == np.float32
    assert len(calls) == steps
    assert ticks == [(i, steps) for i in range(1, steps + 1)]
    b = SHAPE[0] * (2 if guidance != 1.0 else 1)
    expected_t = model_timestep(time_uniform_timesteps(steps)[:steps])
    for k, (shape, dtype, t, guided) in enumerate(calls):
        assert shape == (b, *SHAPE[1:]) and dtype == np.float32
        assert guided == (guidance != 1.0)
        assert t.shape == (b,) and t.dtype == np.float32
        np.testing.assert_allclose(t, expected_t[k], rtol=1e-6)
    assert calls[0][2][0] == pytest.approx(999.0)


def test_guidance_interval_guides_only_its_noise_levels_at_half_the_batch_elsewhere(schedule: NoiseScheduleVP) -> None:
    steps, interval = 25, (0.28, 5.42)  # EDM2's interval
    t_cont = time_uniform_timesteps(steps)[:steps]
    level = schedule.marginal_std(t_cont) / schedule.marginal_alpha(t_cont)  # σ/α, falling from ~156 to ~0.03
    mask = guided_steps(schedule, steps, interval)
    np.testing.assert_array_equal(mask, (level > 0.28) & (level <= 5.42))
    assert 0 < mask.sum() < steps and not mask[0] and not mask[-1]  # the noisiest and the cleanest steps unguided
    assert guided_steps(schedule, steps, None).all()
    calls: list[tuple[int, bool]] = []

    def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
        calls.append((x.shape[0], guided))
        out = 0.1 * x
        if guided:
            out[x.shape[0] // 2:] *= -1.0  # the null half differs, so guidance matters
        return out

    x_T = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    a = sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=5.0, guidance_interval=interval)
    assert [g for _b, g in calls] == list(mask)
    assert [b for b, _g in calls] == [SHAPE[0] * (2 if g else 1) for g in mask]
    # an interval that holds every level is the plain sampler; one that holds none is the unguided sampler
    full = sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=5.0, guidance_interval=(0.0, 1e9))
    np.testing.assert_array_equal(full, sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=5.0))
    none = sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=5.0, guidance_interval=(1e8, 1e9))
    np.testing.assert_array_equal(none, sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=1.0))
    assert np.abs(a - full).max() > 1e-3 and np.abs(a - none).max() > 1e-3
    with pytest.raises(InvalidRequestError, match="guidance_interval"):
        sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=5.0, guidance_interval=(3.0, 1.0))


@pytest.mark.parametrize("k", [0, 1, 4])
def test_cancel_after_k_steps(schedule: NoiseScheduleVP, k: int) -> None:
    calls = [0]
    done: list[int] = []

    def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
        calls[0] += 1
        return 0.1 * x

    x_T = np.zeros(SHAPE, dtype=np.float32)
    with pytest.raises(Cancelled):
        sample_dpmpp_2m(
            x_T,
            denoise,
            schedule,
            steps=10,
            guidance=5.0,
            on_step=lambda i, n: done.append(i),
            should_cancel=lambda: len(done) >= k,
        )
    assert calls[0] == k
    assert len(done) == k


def test_bad_denoise_shape_and_arguments(schedule: NoiseScheduleVP) -> None:
    x_T = np.zeros(SHAPE, dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        sample_dpmpp_2m(x_T, lambda x, t, g: x[:1], schedule, steps=3, guidance=5.0)
    with pytest.raises(ValueError, match="shape"):
        sample_dpmpp_2m(x_T, lambda x, t, g: x[:, :2], schedule, steps=3, guidance=1.0)
    with pytest.raises(InvalidRequestError):
        sample_dpmpp_2m(x_T, lambda x, t, g: x, schedule, steps=0, guidance=5.0)
    with pytest.raises(InvalidRequestError):
        sample_dpmpp_2m(x_T, lambda x, t, g: x, schedule, steps=3, guidance=float("nan"))


def test_lower_order_final_only_below_10_steps(schedule: NoiseScheduleVP) -> None:
    eps = _toy_eps(3)
    x_T = np.random.default_rng(2).standard_normal(SHAPE).astype(np.float32)

    def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
        return eps(x, float(t[0]))

    for steps, lof in ((5, True), (12, False)):
        t_cont = time_uniform_timesteps(steps)
        ref = dpmpp_2m_core(
            x_T,
            eps,
            schedule.marginal_alpha(t_cont),
            schedule.marginal_std(t_cont),
            model_timestep(t_cont[:steps]),
            lower_order_final=lof,
        )
        out = sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=1.0, lower_order_final=True)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    off = sample_dpmpp_2m(x_T, denoise, schedule, steps=5, guidance=1.0, lower_order_final=False)
    on = sample_dpmpp_2m(x_T, denoise, schedule, steps=5, guidance=1.0, lower_order_final=True)
    assert np.abs(off - on).max() > 1e-4


# ---- agreement with diffusers --------------------------------------------------------------------------------


def _diffusers_reference(order: int, steps: int, eps_seed: int, x_seed: int):
    """diffusers' DPM-Solver++ multistep of `order` ('midpoint' second-order update) run on the toy predictor on
    its own discrete grid: (x_T, eps, its result, and the grid as the core takes it: alphas, sigmas, t_model)."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
        algorithm_type="dpmsolver++", solver_order=order, solver_type="midpoint", lower_order_final=True,
        final_sigmas_type="sigma_min", prediction_type="epsilon", thresholding=False, timestep_spacing="linspace",
    )
    sched.set_timesteps(steps)
    eps = _toy_eps(eps_seed)
    x_T = np.random.default_rng(x_seed).standard_normal(SHAPE).astype(np.float32)
    sample = torch.from_numpy(x_T.copy())
    for t in sched.timesteps:
        model_out = torch.from_numpy(eps(sample.numpy(), float(t)).astype(np.float32))
        sample = sched.step(model_out, t, sample).prev_sample
    sig = sched.sigmas.numpy().astype(np.float64)  # (steps + 1,) VE sigmas sqrt((1 - abar)/abar)
    alphas = 1.0 / np.sqrt(sig**2 + 1.0)
    t_model = sched.timesteps.numpy().astype(np.float64)  # (steps,)
    assert t_model[0] == 999 and len(t_model) == steps
    return x_T, eps, sample.numpy(), (alphas, sig * alphas, t_model)


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


@pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers.*")
@pytest.mark.parametrize(("steps", "lower_order_final"), [(25, False), (20, False), (8, True)])
def test_core_matches_diffusers_dpmsolver_multistep(steps: int, lower_order_final: bool) -> None:
    """diffusers' DPM-Solver++(2M) ('midpoint' = DPM-Solver's 'dpmsolver' update) on its own discrete grid.

    diffusers takes a first-order final step when steps < 15 (with lower_order_final=True), so for >= 15 steps the
    core runs without it and for 8 steps with it.
    """
    x_T, eps, ref, grid = _diffusers_reference(2, steps, 0, 5)
    rel = _rel(dpmpp_2m_core(x_T, eps, *grid, lower_order_final=lower_order_final), ref)
    assert rel < 2e-5, rel
    # the comparison is sensitive: the wrong final-step order is far off
    assert _rel(dpmpp_2m_core(x_T, eps, *grid, lower_order_final=not lower_order_final), ref) > 1e-4


@pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers.*")
@pytest.mark.parametrize(("steps", "lower_order_final"), [(25, False), (15, False), (10, True)])
def test_third_order_core_matches_diffusers_dpmsolver_3m(steps: int, lower_order_final: bool) -> None:
    """order=3 is diffusers' DPM-Solver++(3M) (solver_order=3; its warm-up and second step use the 'midpoint'
    second-order update), including its lower orders at the last two steps below 15 steps."""
    x_T, eps, ref, grid = _diffusers_reference(3, steps, 1, 6)
    rel = _rel(dpmpp_2m_core(x_T, eps, *grid, lower_order_final=lower_order_final, order=3), ref)
    assert rel < 2e-5, rel
    # the third order is not the second
    assert _rel(dpmpp_2m_core(x_T, eps, *grid, lower_order_final=lower_order_final, order=2), ref) > 1e-4
    with pytest.raises(InvalidRequestError, match="order"):
        dpmpp_2m_core(x_T, eps, *grid, order=4)


# ---- exactness on a Gaussian toy problem ---------------------------------------------------------------------
#
# For data N(0, s²I) the optimal noise prediction is analytic, ε*(x_t) = σ_t x_t/(α_t² s² + σ_t²), and the
# probability-flow ODE is linear: it maps x_T to x_T·sqrt(v(t_end)/v(1)) with v(t) = α_t² s² + σ_t². The sampler is
# then a deterministic linear map too, so its scale factor can be compared with the exact one.
#
# Measured relative errors of that factor on the time-uniform grid (the released MDSGen setting):
#   s = 1.0: 25 steps 7.0 %, 50 steps 1.76 %, 100 steps 0.42 %, 200 steps 0.10 %
#   s = 0.5: 25 steps 17 %,  50 steps 5.4 %,  100 steps 1.4 %,  200 steps 0.34 %
# (second-order convergence; the time-uniform grid is coarse in log-SNR near t = 0, where the last step spans
# h ~ 2). On a log-SNR-uniform grid 50 steps give 0.23 % for s = 1, 0.5 and 0.1.


def _gaussian_eps(schedule: NoiseScheduleVP, s: float):
    """ε*(x, t_model) for data N(0, s²I)."""

    def eps(x: np.ndarray, t_model: float) -> np.ndarray:
        tc = t_model / 1000.0 + 1e-3  # back to continuous time
        a, sg = schedule.marginal_alpha(tc), schedule.marginal_std(tc)
        return sg * np.asarray(x, dtype=np.float64) / (a * a * s * s + sg * sg)

    return eps


def _gaussian_factor(schedule: NoiseScheduleVP, s: float, t_start: float = 1.0, t_end: float = 1e-3) -> float:
    def var(t: float) -> float:
        return schedule.marginal_alpha(t) ** 2 * s * s + schedule.marginal_std(t) ** 2

    return float(np.sqrt(var(t_end) / var(t_start)))


def _gaussian_sample(schedule: NoiseScheduleVP, s: float, steps: int, x_T: np.ndarray) -> np.ndarray:
    eps = _gaussian_eps(schedule, s)

    def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
        assert not guided
        return eps(x, float(t[0]))

    return sample_dpmpp_2m(x_T, denoise, schedule, steps=steps, guidance=1.0)


def test_gaussian_std_after_50_steps(schedule: NoiseScheduleVP) -> None:
    """Unit-variance data: the 50-step output keeps the std of its input (= s = 1) within 2 %."""
    x_T = np.random.default_rng(7).standard_normal((256, 4, 4, 8)).astype(np.float32)
    out = _gaussian_sample(schedule, 1.0, 50, x_T)
    assert out.std() / x_T.std() == pytest.approx(_gaussian_factor(schedule, 1.0), rel=0.02)
    assert abs(out.std() - 1.0) < 0.03  # x_T's own sample std deviates by ~0.3 %


@pytest.mark.parametrize("s", [1.0, 0.5])
def test_gaussian_second_order_convergence_time_uniform(schedule: NoiseScheduleVP, s: float) -> None:
    x_T = np.random.default_rng(8).standard_normal((64, 4, 4, 8)).astype(np.float32)
    exact = _gaussian_factor(schedule, s) * x_T.astype(np.float64)
    err = {}
    for steps in (50, 100, 200):
        out = _gaussian_sample(schedule, s, steps, x_T)
        err[steps] = np.abs(out - exact).max() / np.abs(exact).max()
    assert err[200] < 5e-3
    assert 3.0 < err[50] / err[100] < 5.0  # halving the step divides the error by ~4
    assert 3.0 < err[100] / err[200] < 5.0
    # the output std matches s (sqrt(v(t_end)), which is s up to 1e-4) within 2 % at 200 steps
    assert out.std() / x_T.std() == pytest.approx(s, rel=0.02)


@pytest.mark.parametrize("s", [1.0, 0.5, 0.1])
def test_gaussian_core_log_snr_grid_50_steps(schedule: NoiseScheduleVP, s: float) -> None:
    """On a log-SNR-uniform grid the core is accurate to < 0.5 % in 50 steps, for any data scale."""
    steps = 50
    lam = np.linspace(schedule.marginal_lambda(1.0), schedule.marginal_lambda(1e-3), steps + 1)
    t = schedule.inverse_lambda(lam)  # (steps + 1,)
    x_T = np.random.default_rng(9).standard_normal((64, 4, 4, 8)).astype(np.float32)
    out = dpmpp_2m_core(
        x_T,
        _gaussian_eps(schedule, s),
        schedule.marginal_alpha(t),
        schedule.marginal_std(t),
        model_timestep(t[:steps]),
    )
    exact = _gaussian_factor(schedule, s) * x_T.astype(np.float64)
    np.testing.assert_allclose(out, exact, rtol=5e-3, atol=1e-5)
