from __future__ import annotations

import pytest

from engine.errors import InvalidRequestError
from engine.spec import AUDIOLDM, DIFF_FOLEY, SamplerConfig, SegmentSpec


def test_diff_foley_spec_facts() -> None:
    s = DIFF_FOLEY
    assert s.sample_rate == 16_000 and s.num_samples == 131_072
    assert s.duration == pytest.approx(8.192)
    assert s.mel_image_shape == (128, 512)
    assert s.latent_shape == (4, 16, 64)
    assert s.token_grid == (8, 32) and s.num_tokens == 256
    assert s.time_axis == "col" and s.vae_downsample == 8
    assert s.num_frames == 32 and s.frame_times[-1] == pytest.approx(31 / 4)


def test_audioldm_spec_facts() -> None:
    s = AUDIOLDM
    assert s.num_samples == 130_560 and s.duration == pytest.approx(8.16)
    assert s.mel_frames == 816 and s.mel_image_shape == (816, 64)
    assert s.latent_shape == (8, 204, 16) and s.token_grid == (102, 8) and s.vae_downsample == 4
    assert s.time_axis == "row"


def test_spec_round_trip_and_fingerprint() -> None:
    d = DIFF_FOLEY.to_dict()
    assert SegmentSpec.from_dict(d) == DIFF_FOLEY
    assert DIFF_FOLEY.fingerprint() != AUDIOLDM.fingerprint()
    with pytest.raises(ValueError, match="unknown"):
        SegmentSpec.from_dict({**d, "bogus": 1})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_samples": 131_000},  # not a multiple of the hop
        {"latent_width": 63},  # odd latent
        {"time_axis": "diagonal"},
        {"latent_height": 32},  # mel does not map onto the latent
        {"num_frames": 64},  # 64 frames at 4 fps do not fit in 8.2 s
    ],
)
def test_spec_rejects_inconsistent_sizes(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SegmentSpec(**kwargs)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"candidates": 0}, {"candidates": 65}, {"guidance": -1.0},
                                    {"seed": -1}, {"guidance_power": 0.0}])
def test_sampler_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(InvalidRequestError):
        SamplerConfig(**kwargs)


def test_candidate_seeds_are_consecutive() -> None:
    assert SamplerConfig(seed=7, candidates=3).candidate_seeds() == [7, 8, 9]
