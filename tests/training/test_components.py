"""Pieces of the recipe: the torch mel front end, Adan, the diffusion loss, the onset metric, the loop's
checkpoint/resume and non-finite-loss stop (on a toy model, in-process)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import audio
from engine.spec import DIFF_FOLEY, DiffusionSchedule
from training.config import LoopConfig, OptimConfig
from training.diffusion import GaussianDiffusion
from training.loop import Dist, LossLog, NonFiniteLossError, Trainer, build_optimizer, list_checkpoints
from training.melspec import TorchMel


def test_torch_mel_matches_the_engine_front_end() -> None:
    rng = np.random.default_rng(0)
    wav = (0.3 * rng.standard_normal(DIFF_FOLEY.num_samples)).astype(np.float32)
    wav[40_000:41_000] *= 8  # a transient
    ours = TorchMel(DIFF_FOLEY).segment(torch.from_numpy(wav)[None])[0].numpy()
    ref = audio.wav_to_mel(wav, DIFF_FOLEY)
    assert ours.shape == ref.shape == (128, 512)
    assert np.abs(ours - ref).max() < 1e-4
    full = TorchMel(DIFF_FOLEY)(torch.from_numpy(wav[:50_000])[None])[0].numpy()
    assert np.abs(full - audio.mel_spectrogram(wav[:50_000], DIFF_FOLEY)).max() < 1e-4


def _adan_reference(params: list[torch.Tensor], grads_seq: list[list[torch.Tensor]], lr: float, betas, wd: float,
                    eps: float) -> list[torch.Tensor]:
    """Adan, Algorithm 1 of Xie et al. (2022) with bias correction and the proximal weight decay (timm/official)."""
    b1, b2, b3 = betas
    ps = [p.clone().double() for p in params]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    n = [torch.zeros_like(p) for p in ps]
    prev = None
    for k, grads in enumerate(grads_seq, 1):
        gs = [g.double() for g in grads]
        for i, g in enumerate(gs):
            diff = g - prev[i] if prev is not None else torch.zeros_like(g)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * diff
            upd = g + b2 * diff
            n[i] = b3 * n[i] + (1 - b3) * upd * upd
            denom = (n[i] / (1 - b3**k)).sqrt() + eps
            step = m[i] / (1 - b1**k) + b2 * v[i] / (1 - b2**k)
            ps[i] = (ps[i] - lr * step / denom) / (1 + lr * wd)
        prev = gs
    return ps


def test_adan_is_the_papers_algorithm_with_timm_defaults() -> None:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))]
    init = [p.detach().clone() for p in params]
    opt = build_optimizer(params, OptimConfig(name="adan", lr=0.01, weight_decay=0.02))
    assert opt.defaults["betas"] == (0.98, 0.92, 0.99) and opt.defaults["eps"] == 1e-8
    grads_seq = [[torch.randn_like(p) for p in params] for _ in range(6)]
    for grads in grads_seq:
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
    ref = _adan_reference(init, grads_seq, 0.01, (0.98, 0.92, 0.99), 0.02, 1e-8)
    for p, r in zip(params, ref):
        assert torch.allclose(p.detach().double(), r, atol=1e-6)


def test_diffusion_loss_is_zero_for_the_true_eps_and_posterior_variance() -> None:
    diff = GaussianDiffusion(DiffusionSchedule())
    torch.manual_seed(0)
    x0 = torch.randn(6, 4, 16, 64) * 0.5
    noise = torch.randn_like(x0)
    t = torch.tensor([1, 10, 100, 500, 900, 999])
    xt = diff.q_sample(x0, t, noise)
    assert (xt[0] - x0[0]).abs().max() < 0.1 and abs(float(xt[-1].std()) - 1.0) < 0.05  # ~x0 .. ~pure noise
    perfect = torch.cat([noise, -torch.ones_like(noise)], dim=1)  # v = -1: the posterior variance exactly
    out = diff.training_losses(perfect, x0, xt, t, noise)
    assert out["mse"].abs().max() < 1e-10 and out["vb"].abs().max() < 1e-5
    worse = diff.training_losses(torch.cat([noise, torch.ones_like(noise)], dim=1), x0, xt, t, noise)
    assert (worse["vb"] > 0).all()  # beta_t instead of the posterior variance costs bits
    snr = diff.training_losses(torch.cat([noise + 0.1, -torch.ones_like(noise)], 1), x0, xt, t, noise,
                               min_snr_gamma=5.0)
    assert snr["mse"][0] < 0.01 * 0.5 and math.isclose(float(snr["mse"][-1]), 0.01, rel_tol=1e-4)


def test_onset_metric_on_known_events() -> None:
    from training.onsets import match_clip
    from training.synthetic import impact_sound

    events = [1.0, 2.5, 4.0, 6.0, 7.5]
    wav = impact_sound(0, 8.192, events, np.random.default_rng(0))
    exact = match_clip(wav, 16_000, events, 8.192, 0.1)
    assert exact.acc == 1.0 and exact.ap == 1.0 and exact.hits == 5
    late = np.concatenate([np.zeros(3200, np.float32), wav[:-3200]])  # 0.2 s late
    assert match_clip(late, 16_000, events, 8.192, 0.1).acc == 0.0
    assert match_clip(late, 16_000, events, 8.192, 0.3).acc == 1.0
    silent = match_clip(np.zeros_like(wav), 16_000, events, 8.192, 0.1)
    assert silent.acc == 0.0 and silent.ap == 0.0


class _Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)


def _toy_trainer(tmp: Path, steps: int, nan_at: int | None = None, crash_at: int | None = None
                 ) -> tuple[Trainer, _Toy]:
    torch.manual_seed(0)
    model = _Toy()
    params = list(model.parameters())
    ocfg = OptimConfig(name="adan", lr=0.05, warmup_steps=2)
    opt = build_optimizer(params, ocfg)
    loop = LoopConfig(steps=steps, batch_size=4, log_every=2, val_every=0, ckpt_every=4, keep_ckpts=2)
    tr = Trainer(name="toy", stage_dir=tmp, loop=loop, d=Dist(), modules={"toy": model}, optimizers={"toy": opt},
                 optim_cfgs={"toy": ocfg}, progress=False)

    def step_fn(step: int) -> dict[str, float]:
        if crash_at is not None and step == crash_at:
            raise KeyboardInterrupt  # a crash between checkpoints
        g = torch.Generator().manual_seed(step)
        x = torch.randn(4, 4, generator=g)
        loss = (model.lin(x) - x.sum(1, keepdim=True)).pow(2).mean()
        if nan_at is not None and step >= nan_at:
            loss = loss * float("nan")
        tr.backward(loss, "toy", params, step)
        return {"loss": float(loss.detach())}

    tr.step_fn = step_fn  # type: ignore[attr-defined]
    return tr, model


def test_trainer_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    ref, ref_model = _toy_trainer(tmp_path / "ref", 11)
    ref.run(ref.step_fn)  # type: ignore[attr-defined]
    crashed, _ = _toy_trainer(tmp_path / "run", 11, crash_at=6)
    with pytest.raises(KeyboardInterrupt):
        crashed.run(crashed.step_fn)  # type: ignore[attr-defined]
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [4]
    resumed, model = _toy_trainer(tmp_path / "run", 11)
    resumed.run(resumed.step_fn)  # type: ignore[attr-defined]
    for a, b in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)
    rows = lambda p: [(r["step"], r["metric"], r["value"]) for r in LossLog(p / "losses.csv").read()  # noqa: E731
                      if r["metric"] != "sec_per_step"]
    assert rows(tmp_path / "run") == rows(tmp_path / "ref")
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [8, 11]  # the newest keep_ckpts


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    tr, _ = _toy_trainer(tmp_path, 20, nan_at=6)
    with pytest.raises(NonFiniteLossError, match=r"NaN/inf at step 6 .*ckpt-00000004\.pt is kept"):
        tr.run(tr.step_fn)  # type: ignore[attr-defined]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4]
    state = torch.load(tmp_path / "ckpt-00000004.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["modules"]["toy"].values())


def test_warm_start_loads_an_earlier_denoiser_and_leaves_only_the_new_temporal_path_at_init(tmp_path: Path) -> None:
    from engine.errors import BundleError
    from engine.nn.bundle import save_weights
    from engine.nn.denoiser import build_denoiser
    from engine.nn.presets import TINY_DENOISER as tiny
    from training.stages.denoiser import warm_start

    torch.manual_seed(0)
    old = build_denoiser(DIFF_FOLEY, "T", **tiny)
    with torch.no_grad():
        for p in old.parameters():
            p.add_(0.05 * torch.randn_like(p))  # trained-looking weights, zero-initialised layers included
    save_weights(tmp_path / "old.safetensors", old)
    new = build_denoiser(DIFF_FOLEY, "T", temporal_condition=True, **tiny)
    assert warm_start(new, str(tmp_path / "old.safetensors")) == ["temporal_feat.bias", "temporal_feat.weight"]
    x, t = torch.randn(2, *DIFF_FOLEY.latent_shape), torch.tensor([5.0, 700.0])
    v = torch.randn(2, DIFF_FOLEY.num_frames, DIFF_FOLEY.feature_dim)
    with torch.no_grad():
        torch.testing.assert_close(new(x, t, v), old(x, t, v), rtol=0, atol=0)
    # another size, or a file that is not weights, is refused with what to give instead
    with pytest.raises(BundleError, match="does not fit.*same preset"):
        warm_start(build_denoiser(DIFF_FOLEY, "T", **{**tiny, "hidden_size": 32}), str(tmp_path / "old.safetensors"))
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BundleError, match="cannot be read.*denoiser.safetensors"):
        warm_start(new, str(tmp_path / "bad.safetensors"))
