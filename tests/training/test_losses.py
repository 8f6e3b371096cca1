"""training.losses against hand-computed values on tiny tensors: the VAE's reconstruction, KL (per latent element,
weighted) and spectral terms, the vocoder's STFT losses, the GAN losses and the contrastive InfoNCE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from engine.spec import DIFF_FOLEY
from training.losses import (
    Discriminators,
    PeriodDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adv_loss,
    info_nce,
    log_spectral_distance,
    multi_resolution_stft_loss,
    spectral_loss,
    temporal_info_nce,
    vae_losses,
)

LN2 = math.log(2.0)


def _posterior(mean: list, logvar: list) -> DiagonalGaussianDistribution:
    """The VAE's posterior (diffusers) of mean and logvar, each (B, C, h, w)."""
    return DiagonalGaussianDistribution(torch.cat([torch.tensor(mean), torch.tensor(logvar)], dim=1))


# ---- VAE -------------------------------------------------------------------------------------------------------
# Two posteriors of 1 x 1 x 2 latents. Per element KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1 - ln s^2) / 2:
# example 0: m = (1, 0), s^2 = 1 -> 0.5 and 0; example 1: m = 0, s^2 = 2 -> (1 - ln 2) / 2 twice.
MEAN = [[[[1.0, 0.0]]], [[[0.0, 0.0]]]]
LOGVAR = [[[[0.0, 0.0]]], [[[LN2, LN2]]]]
KL_PER_ELEMENT = (0.5 + 0.0 + 2 * (1 - LN2) / 2) / 4


def test_vae_kl_is_nats_per_latent_element_and_weighted() -> None:
    target = torch.zeros(2, 2, 2)
    pred = torch.tensor([[[0.5, -0.5], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]])  # |error| sums to 2 over 8 values
    out = vae_losses(pred, target, _posterior(MEAN, LOGVAR), DIFF_FOLEY, kl_weight=0.5, spectral_weight=0.0)
    assert set(out) == {"loss", "rec_l1", "kl", "spectral"}
    assert out["rec_l1"].item() == pytest.approx(0.25, abs=1e-7)
    assert out["kl"].item() == pytest.approx(KL_PER_ELEMENT, rel=1e-6)
    assert out["spectral"].item() == 0.0  # not computed when its weight is 0
    assert out["loss"].item() == pytest.approx(0.25 + 0.5 * KL_PER_ELEMENT, rel=1e-6)
    without_kl = vae_losses(pred, target, _posterior(MEAN, LOGVAR), DIFF_FOLEY, kl_weight=0.0, spectral_weight=0.0)
    assert without_kl["loss"].item() == pytest.approx(0.25, abs=1e-7)
    assert without_kl["kl"].item() == pytest.approx(KL_PER_ELEMENT, rel=1e-6)  # reported whatever its weight


def test_vae_kl_does_not_grow_with_the_latent_size_or_the_batch() -> None:
    """A mean over latent elements, not a sum: the same per-element posterior gives the same KL on a latent four
    times as wide or a batch twice as large (a sum would make kl_weight mean something else for every size)."""
    zeros = torch.zeros(2, 2, 2)
    kl = lambda post: vae_losses(zeros, zeros, post, DIFF_FOLEY, kl_weight=1.0, spectral_weight=0.0)["kl"].item()  # noqa: E731
    wide = _posterior(torch.tensor(MEAN).repeat(1, 1, 1, 4).tolist(), torch.tensor(LOGVAR).repeat(1, 1, 1, 4).tolist())
    batch = _posterior(MEAN * 2, LOGVAR * 2)
    assert kl(wide) == pytest.approx(KL_PER_ELEMENT, rel=1e-6)
    assert kl(batch) == pytest.approx(KL_PER_ELEMENT, rel=1e-6)
    assert kl(_posterior([[[[0.0, 0.0]]]], [[[[0.0, 0.0]]]])) == 0.0  # the prior itself
    assert vae_losses(zeros, zeros, _posterior(MEAN, LOGVAR), DIFF_FOLEY, kl_weight=0.0,
                      spectral_weight=1.0)["loss"].item() == 0.0  # a perfect reconstruction


# A diff-foley mel m in [0, 1] is the magnitude 10^((100 m - 80) / 20): 0.8 -> 1, 1.0 -> 10.
TARGET = torch.full((1, 2, 2), 0.8)
PRED = torch.tensor([[[1.0, 0.8], [0.8, 0.8]]])


def test_spectral_loss_by_hand() -> None:
    """Spectral convergence ||10 - 1|| / ||(1, 1, 1, 1)|| = 9 / 2, plus the mean |difference| along time
    (0.2 and 0 -> 0.1) and along frequency (0.1)."""
    assert spectral_loss(PRED, TARGET, DIFF_FOLEY).item() == pytest.approx(4.5 + 0.1 + 0.1, rel=1e-6)
    assert spectral_loss(TARGET, TARGET, DIFF_FOLEY).item() == 0.0
    # the prediction is clamped to [0, 1] before the exponential only: 1.5 is as loud as 1.0 (4.5), while the
    # differences see the raw 0.7 (0.35 + 0.35)
    over = torch.tensor([[[1.5, 0.8], [0.8, 0.8]]])
    assert spectral_loss(over, TARGET, DIFF_FOLEY).item() == pytest.approx(4.5 + 0.35 + 0.35, rel=1e-6)


def test_vae_total_adds_the_weighted_spectral_term() -> None:
    post = _posterior([[[[1.0, 0.0]]]], [[[[0.0, 0.0]]]])  # KL 0.5 over 2 elements: 0.25 per element
    out = vae_losses(PRED, TARGET, post, DIFF_FOLEY, kl_weight=0.1, spectral_weight=0.5)
    assert out["rec_l1"].item() == pytest.approx(0.05, rel=1e-6)  # |0.2| / 4
    assert out["kl"].item() == pytest.approx(0.25, rel=1e-6)
    assert out["spectral"].item() == pytest.approx(4.7, rel=1e-6)
    assert out["loss"].item() == pytest.approx(0.05 + 0.1 * 0.25 + 0.5 * 4.7, rel=1e-6)


# ---- vocoder: STFT losses ----------------------------------------------------------------------------------------
@pytest.fixture
def noise() -> torch.Tensor:
    return 0.1 * torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))


def test_multi_resolution_stft_loss_of_scaled_copies(noise: torch.Tensor) -> None:
    """pred = k * target scales every magnitude by k: spectral convergence |1 - k|, log-magnitude L1 |ln k|, the
    same at every resolution (a mean over resolutions, not a sum)."""
    assert multi_resolution_stft_loss(noise, noise).item() == 0.0
    assert multi_resolution_stft_loss(2 * noise, noise).item() == pytest.approx(1.0 + LN2, rel=1e-5)
    assert multi_resolution_stft_loss(0.5 * noise, noise).item() == pytest.approx(0.5 + LN2, rel=1e-5)
    one = ((256, 64, 256),)
    assert multi_resolution_stft_loss(2 * noise, noise, one).item() == pytest.approx(1.0 + LN2, rel=1e-5)


def test_multi_resolution_stft_loss_matches_a_direct_computation(noise: torch.Tensor) -> None:
    pred = noise + 0.05 * torch.randn(noise.shape, generator=torch.Generator().manual_seed(1))
    res = ((256, 64, 256), (512, 128, 384))
    want = 0.0
    for n_fft, hop, win in res:
        window = F.pad(torch.hann_window(win, dtype=torch.float64), ((n_fft - win) // 2, (n_fft - win + 1) // 2))
        mags = []
        for x in (pred, noise):
            frames = F.pad(x.double()[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0].unfold(-1, n_fft, hop)
            mags.append(torch.fft.rfft(frames * window).abs().clamp(min=1e-7).transpose(1, 2))  # (B, F, T)
        mp, mt = mags
        sc = (mt - mp).square().sum((-2, -1)).sqrt() / mt.square().sum((-2, -1)).sqrt()
        want += (sc.mean() + (mt.log() - mp.log()).abs().mean()).item() / len(res)
    assert multi_resolution_stft_loss(pred, noise, res).item() == pytest.approx(want, rel=1e-4)


def test_log_spectral_distance_is_per_example_log10(noise: torch.Tensor) -> None:
    pred = noise * torch.tensor([[10.0], [100.0]])
    lsd = log_spectral_distance(pred, noise)
    assert lsd.shape == (2,)
    assert lsd.tolist() == pytest.approx([1.0, 2.0], rel=1e-5)
    assert log_spectral_distance(noise, noise).tolist() == [0.0, 0.0]


# ---- vocoder: GAN losses -----------------------------------------------------------------------------------------
def _outputs(*logits: list[float], feats: list[list[list[float]]] | None = None) -> list:
    feats = feats or [[] for _ in logits]
    return [(torch.tensor(lg), [torch.tensor(f) for f in fs]) for lg, fs in zip(logits, feats)]


def test_least_squares_gan_losses_by_hand() -> None:
    real = _outputs([0.5, 1.5], [1.0, 1.0])
    fake = _outputs([1.0, -1.0], [0.0, 0.5])
    # disc 0: (0.25 + 0.25) / 2 + (1 + 1) / 2 = 1.25; disc 1: 0 + 0.25 / 2 = 0.125; mean over the two
    assert discriminator_loss(real, fake).item() == pytest.approx((1.25 + 0.125) / 2)
    # the generator wants D(fake) = 1: disc 0 (0 + 4) / 2 = 2; disc 1 (1 + 0.25) / 2 = 0.625
    assert generator_adv_loss(fake).item() == pytest.approx((2.0 + 0.625) / 2)
    assert discriminator_loss(_outputs([1.0]), _outputs([0.0])).item() == 0.0
    assert generator_adv_loss(_outputs([1.0, 1.0])).item() == 0.0


def test_feature_matching_is_a_mean_over_layers_and_never_moves_the_real_features() -> None:
    real = _outputs([0.0], [0.0], feats=[[[1.0, 1.0], [0.0]], [[2.0]]])
    fake = _outputs([0.0], [0.0], feats=[[[0.0, 1.0], [3.0]], [[2.0]]])
    for _, fs in real + fake:
        for f in fs:
            f.requires_grad_(True)
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx((0.5 + 3.0 + 0.0) / 3)  # three layers in all, each a mean |difference|
    loss.backward()
    assert all(f.grad is None for _, fs in real for f in fs)
    assert fake[0][1][0].grad.tolist() == pytest.approx([-1 / 6, 0.0])  # d/dx |x - 1| / 2 / 3 at x = 0 (sign 0 at 0)


def test_discriminators_fold_any_length_and_return_every_layer() -> None:
    torch.manual_seed(0)
    disc = PeriodDiscriminator(3, channels=4)
    x = torch.randn(2, 100)  # not a multiple of 3: reflect-padded to 102
    logits, feats = disc(x)
    padded_logits, _ = disc(F.pad(x[:, None], (0, 2), mode="reflect")[:, 0])
    assert torch.equal(logits, padded_logits) and logits.shape[0] == 2
    assert len(feats) == 5 and feats[0].shape == (2, 4, 12, 3)  # 34 rows of 3, stride 3 -> 12
    both = Discriminators([2, 3], [128], channels=4)(torch.randn(2, 512))
    assert len(both) == 3 and all(lg.shape[0] == 2 and len(fs) == 5 for lg, fs in both)


# ---- contrastive -------------------------------------------------------------------------------------------------
def _ce(logits: list[float], label: int) -> float:
    return -logits[label] + math.log(sum(math.exp(v) for v in logits))


def test_info_nce_by_hand_is_symmetric_in_rows_and_columns() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits 2 a b^T = [[2, 1.2], [0, 1.6]]: rows (a -> b) and columns (b -> a) averaged
    rows = (_ce([2.0, 1.2], 0) + _ce([0.0, 1.6], 1)) / 2
    cols = (_ce([2.0, 0.0], 0) + _ce([1.2, 1.6], 1)) / 2
    assert info_nce(a, b, torch.tensor(2.0)).item() == pytest.approx((rows + cols) / 2, rel=1e-6)
    assert info_nce(b, a, torch.tensor(2.0)).item() == pytest.approx((rows + cols) / 2, rel=1e-6)
    assert info_nce(a, a, torch.tensor(100.0)).item() == pytest.approx(0.0, abs=1e-6)  # matched and far apart


def test_temporal_info_nce_is_the_mean_of_each_videos_own_contrast() -> None:
    """Windows are contrasted inside their video only (B x K x K logits): the mean over videos of a K x K InfoNCE."""
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    b = F.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    scale = torch.tensor(5.0)
    per_video = [info_nce(a[i], b[i], scale).item() for i in range(3)]
    assert temporal_info_nce(a, b, scale).item() == pytest.approx(sum(per_video) / 3, rel=1e-6)
    pooled = info_nce(a.flatten(0, 1), b.flatten(0, 1), scale).item()  # one contrast over all 12 windows
    assert temporal_info_nce(a, b, scale).item() != pytest.approx(pooled, rel=1e-3)
