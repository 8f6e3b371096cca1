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
    ("denoiser.mask_kind=random", "mask_kind"),
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
    # the bundle is made of every model stage: another vocoder (or anything else) re-exports it
    v = load_config("tiny", ["vocoder.loop.steps=7"])
    assert stage_digest(a, "export") != stage_digest(v, "export") != stage_digest(c, "export")
    assert stage_digest(a, "evaluate") != stage_digest(b, "evaluate")
    # which vocoder the bundle uses is the export's choice: the trained vocoder stays valid
    gl = load_config("tiny", ["vocoder.use=neural"])  # tiny (like default) uses griffin-lim
    assert stage_digest(a, "vocoder") == stage_digest(gl, "vocoder")
    assert stage_digest(a, "export") != stage_digest(gl, "export")


def test_the_mask_kind_changes_the_denoiser_digest_but_tam_keeps_older_runs_valid() -> None:
    import dataclasses

    from training.config import digest

    tam = load_config("tiny")
    assert tam.denoiser.mask_kind == "tam"
    kinds = {k: stage_digest(load_config("tiny", [f"denoiser.mask_kind={k}"]), "denoiser")
             for k in ("fam", "sam", "none")}
    assert len(set(kinds.values()) | {stage_digest(tam, "denoiser")}) == 4
    # the digest a run made before the field existed (no mask_kind key at all) is the "tam" digest
    data = dataclasses.asdict(tam.data)
    for k in ("workers", "cache_dir"):
        data.pop(k)
    parts = {"spec": tam.spec, "data": data, "seed": tam.runtime.seed, "bf16": tam.runtime.bf16}
    for d in ("vae", "projection", "denoiser"):
        section = dataclasses.asdict(getattr(tam, d))
        section["loop"].pop("log_every", None)
        section.pop("mask_kind", None)
        section.pop("init_from", None)  # likewise: unset, it leaves older runs valid
        parts[d] = section
    assert digest(parts) == stage_digest(tam, "denoiser")
    warm = load_config("tiny", ["denoiser.init_from=/runs/a/stages/denoiser/denoiser.safetensors"])
    assert stage_digest(warm, "denoiser") != stage_digest(tam, "denoiser")


def test_spec_overrides_change_the_latent_only_and_share_the_feature_cache() -> None:
    from training.config import resolve_spec
    from training.data import PrepSettings, prep_spec

    base = load_config("default", overrides=["spec=foley-16k"])
    c8 = load_config("default", overrides=["spec=foley-16k", "spec_overrides={latent_channels: 8}"])
    assert resolve_spec(c8).latent_channels == 8 and resolve_spec(c8).name == "foley-16k"
    assert resolve_spec(base) == resolve_spec(c8).__class__(**{**resolve_spec(c8).to_dict(), "latent_channels": 4})
    # the cache's settings do not see the latent; the stages' digests do
    settings = [PrepSettings(spec=prep_spec(resolve_spec(c)), chunk_seconds=10.0, min_seconds=8.192,
                             silence_dbfs=-60.0).digest() for c in (base, c8)]
    assert settings[0] == settings[1]
    assert stage_digest(base, "vae") != stage_digest(c8, "vae")
    # a spec with default latent fields records the same cache settings as before the overrides existed
    assert prep_spec(resolve_spec(base)) == resolve_spec(base).to_dict()
    with pytest.raises(ConfigError, match="only"):
        resolve_spec(load_config("default", overrides=["spec_overrides={fmin: 0.0}"]))
    with pytest.raises(ConfigError, match="spec_overrides"):
        load_config("default", overrides=["spec_overrides={latent_height: 5}"])
