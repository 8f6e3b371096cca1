"""Denoiser size presets, torch-free: the CLI, tests and training configs name them without building a model.

`PRESETS` are the paper's shapes (T, S, B, L). `TINY_DENOISER` is the one tiny shape of tests, smoke runs and the
`tiny` training recipe (`training/configs/tiny.yaml`: `preset: tiny`): preset T with these fields replaced. It is
not a model (it makes noise): `DenoiserConfig.from_spec(spec, "tiny")` builds it, and so does
`from_spec(spec, "T", **TINY_DENOISER)` (what the test fixtures pass to `random_bundle`).
"""

from __future__ import annotations

from typing import NamedTuple


class Preset(NamedTuple):
    """Transformer shape of a size preset; mlp_ratio 4, patch 2, decode_layer 4 and one side block in all."""

    depth: int
    hidden_size: int
    num_heads: int


PRESETS: dict[str, Preset] = {
    # T is the paper's stated shape (Table 8, DeiT-Tiny). The paper calls it 5 M, but this architecture has
    # 8.39 M (Diff-Foley latent) / 8.69 M (AudioLDM latent) inference-time parameters at that shape.
    "T": Preset(depth=12, hidden_size=192, num_heads=3),
    "S": Preset(depth=12, hidden_size=384, num_heads=6),
    "B": Preset(depth=12, hidden_size=768, num_heads=12),  # the released checkpoint
    "L": Preset(depth=24, hidden_size=1024, num_heads=16),
}

#: The tiny denoiser (tests and smoke runs only): overrides of preset T, 3 blocks of width 64.
TINY_DENOISER: dict[str, int] = {"depth": 3, "hidden_size": 64, "num_heads": 2, "decode_layer": 1}

#: Named shapes for tests and smoke runs, never models: name -> (base preset of `PRESETS`, overrides). Not listed
#: by `foley presets` nor counted by `preset_parameter_counts`.
TEST_PRESETS: dict[str, tuple[str, dict[str, int]]] = {"tiny": ("T", TINY_DENOISER)}


def preset_fields(preset: str) -> dict[str, int]:
    """The config fields a preset name sets (one of `PRESETS` or `TEST_PRESETS`); ValueError for another name."""
    if preset in PRESETS:
        return dict(PRESETS[preset]._asdict())
    if preset in TEST_PRESETS:
        base, overrides = TEST_PRESETS[preset]
        return {**PRESETS[base]._asdict(), **overrides}
    raise ValueError(f"unknown denoiser preset {preset!r}; choose one of {sorted([*PRESETS, *TEST_PRESETS])}")
