"""Configs: every shipped YAML loads and validates; overrides are typed; digests follow what a stage depends on."""

from __future__ import annotations

import pytest

from training.config import CONFIG_DIR, ConfigError, load_config, stage_digest, to_yaml


@pytest.mark.parametrize("name", ["tiny", "default", "paper-t", "paper-s", "paper-b"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(name)
    assert cfg.name == name
    assert (CONFIG_DIR / f"{name}.yaml").is_file()
    assert to_yaml(cfg)


def test_tiny_inherits_default_and_overrides_are_typed() -> None:
    cfg = load_config("tiny", ["denoiser.loop.steps=7", "runtime.bf16=true", "vae.optim.lr=3e-4",
                               "denoiser.overrides.depth=2", "data.inputs=[a, b]"])
    assert cfg.denoiser.loop.steps == 7 and cfg.runtime.bf16 is True and cfg.vae.optim.lr == 3e-4
    assert cfg.denoiser.overrides["depth"] == 2 and cfg.data.inputs == ["a", "b"]
    assert cfg.denoiser.optim.name == "adan"  # from default.yaml
    assert cfg.vae.optim.warmup_steps == 5  # tiny's partial mapping merged over default's


@pytest.mark.parametrize("override, words", [
    ("denoiser.loop.stepz=3", "unknown config key"),
    ("denoiser.loop.steps=many", "expected an integer"),
    ("runtime.bf16=3", "expected true/false"),
    ("denoiser.optim.name=sgd", "not one of"),
    ("nokey", "key=value"),
    ("spec=nope", "spec"),
])
def test_bad_overrides_name_the_key(override: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_config("tiny", [override])


def test_stage_digests_depend_on_their_inputs_only() -> None:
    a = load_config("tiny")
    b = load_config("tiny", ["denoiser.loop.steps=99", "evaluate.steps=3", "data.workers=4"])
    assert stage_digest(a, "vae") == stage_digest(b, "vae")
    assert stage_digest(a, "denoiser") != stage_digest(b, "denoiser")
    c = load_config("tiny", ["vae.loop.steps=5"])
    assert stage_digest(a, "denoiser") != stage_digest(c, "denoiser")  # the denoiser depends on the VAE
    assert stage_digest(a, "vocoder") == stage_digest(c, "vocoder")
