"""VAE (both modes), frame encoder and vocoder modules."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from engine.nn.frame_encoder import (  # noqa: E402
    FrameEncoderConfig,
    VideoFeatureModel,
    load_pretrained_backbone_state,
)
from engine.nn.vae import MelVAE, VAEConfig  # noqa: E402
from engine.nn.vocoder import Vocoder, VocoderConfig  # noqa: E402
from engine.spec import DIFF_FOLEY  # noqa: E402


def _small_vae(mode: str) -> MelVAE:
    torch.manual_seed(0)
    return MelVAE(config=VAEConfig(channel_mode=mode, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                                   layers_per_block=1, norm_num_groups=4)).eval()


@pytest.mark.parametrize("mode", ["mono", "R", "G", "B", "mean"])
def test_vae_maps_the_mel_image_onto_the_spec_latent(mode: str) -> None:
    vae = _small_vae(mode)
    mel = torch.rand(2, *DIFF_FOLEY.mel_image_shape)
    with torch.inference_mode():
        z = vae.encode(mel)
        assert tuple(z.shape) == (2, *DIFF_FOLEY.latent_shape)
        out = vae.decode(z)
    assert tuple(out.shape) == (2, *DIFF_FOLEY.mel_image_shape)
    assert vae.config.downsample == DIFF_FOLEY.vae_downsample
    assert vae.vae.config.in_channels == (1 if mode == "mono" else 3)


def test_image_vae_channel_selection_picks_the_right_channel() -> None:
    """Decode a fixed latent once and check each mode returns its channel of the same 3-channel image."""
    vae = _small_vae("G")
    z = torch.randn(1, *DIFF_FOLEY.latent_shape)
    with torch.inference_mode():
        img = vae.vae.decode(z / vae.config.latent_scale).sample  # (1, 3, H, W)
        for mode, want in {"R": img[:, 0], "G": img[:, 1], "B": img[:, 2], "mean": img.mean(1)}.items():
            vae.config = VAEConfig(**{**vae.config.__dict__, "channel_mode": mode})
            torch.testing.assert_close(vae.decode(z), want)
    assert not torch.allclose(img[:, 0], img[:, 1])  # the channels differ, so the choice matters


def test_vae_latent_scale_round_trip() -> None:
    vae = _small_vae("mono")
    vae.config = VAEConfig(**{**vae.config.__dict__, "latent_scale": 4.0})
    mel = torch.rand(1, *DIFF_FOLEY.mel_image_shape)
    with torch.inference_mode():
        z = vae.encode(mel)
        z_raw = vae.vae.encode(mel[:, None]).latent_dist.mean
    torch.testing.assert_close(z, 4.0 * z_raw)


def test_vae_config_round_trip() -> None:
    cfg = VAEConfig(channel_mode="G", block_out_channels=(16, 32, 64, 64), latent_scale=0.18215)
    assert VAEConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        VAEConfig(channel_mode="X")  # type: ignore[arg-type]


def test_frame_encoder_uses_the_pretrained_backbone() -> None:
    """The shipped ImageNet weights load completely (the classifier head aside) and the features see content."""
    model = VideoFeatureModel(config=FrameEncoderConfig())
    state = load_pretrained_backbone_state()
    result = model.encoder.backbone.load_state_dict(state, strict=False)
    assert result.unexpected_keys == [] and set(result.missing_keys) == {"_fc.weight", "_fc.bias"}
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(1, 4, 3, 224, 224, generator=g) * 255
    frames[0, 2:] = 0.0  # two black frames
    with torch.inference_mode():
        f = model.backbone_features(frames)
        out = model(frames)
    assert tuple(f.shape) == (1, 4, 1280) and tuple(out.shape) == (1, 4, 512)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(1, 4))  # L2-normalised like CAVP
    assert (f[0, 0] - f[0, 2]).abs().mean() > 10 * (f[0, 2] - f[0, 3]).abs().mean()
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_vocoder_output_length_and_dtype() -> None:
    cfg = VocoderConfig(dim=32, intermediate_dim=64, num_layers=1)
    voc = Vocoder(config=cfg).eval()
    with torch.inference_mode():
        wav = voc(torch.rand(2, 128, 512))
    assert tuple(wav.shape) == (2, 512 * 256) and wav.dtype == torch.float32
    assert VocoderConfig.from_dict(cfg.to_dict()) == cfg
