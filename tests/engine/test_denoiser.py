"""Tests of the MDSGen denoiser: sizes against the reference counts and the released checkpoint layout, TAM
structure, the null condition, and shapes/gradients on tiny configs. Big models are built on the meta device only,
except one B model on CPU for the strict-load test."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from engine.nn.denoiser import (
    PRESETS,
    DenoiserConfig,
    MDSGen,
    build_denoiser,
    count_parameters,
    line_interpolation,
    preset_parameter_counts,
    relative_position_index,
    sincos_pos_embed_2d,
    temporal_aware_mask,
    timestep_embedding,
    token_mask,
)
from engine.spec import AUDIOLDM, DIFF_FOLEY, SegmentSpec

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mdsgen_b_audioldm_state_dict_layout.json"

SPECS = [pytest.param(AUDIOLDM, id="audioldm"), pytest.param(DIFF_FOLEY, id="diff-foley")]


def tiny(spec: SegmentSpec, **overrides: object) -> MDSGen:
    """A small but structurally complete model: 2 encoder blocks, 1 decoder block, the side block."""
    args = {"hidden_size": 64, "num_heads": 2, "depth": 3, "decode_layer": 1, **overrides}
    return build_denoiser(spec, "T", **args)


def randomise_zero_params(model: MDSGen, seed: int = 0) -> MDSGen:
    """Re-draw the zero-initialised tensors (adaLN, final layer) so every path changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def inputs(spec: SegmentSpec, batch: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *spec.latent_shape, generator=g)
    t = torch.tensor([999.0, 12.5, 400.0, 0.0][:batch])
    v = torch.randn(batch, spec.num_frames, spec.feature_dim, generator=g)
    return x, t, v


# ---------------------------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------------------------
# (inference-only, total) measured on this implementation; they reproduce the reference's section 2.2 tables.
AUDIOLDM_COUNTS = {
    "T": (8_688_769, 9_364_537),
    "S": (33_523_873, 36_202_513),
    "B": (131_633_377, 142_299_073),
    "L": (460_182_625, 479_122_145),
}
DIFF_FOLEY_COUNTS = {
    "T": (8_388_881, 9_058_349),
    "S": (32_924_129, 35_590_169),
    "B": (130_433_921, 141_074_417),
    "L": (458_180_161, 477_086_081),
}
REFERENCE_M = {  # reference tables, inference-only, in M (3 decimals)
    "audioldm": {"T": 8.689, "S": 33.524, "B": 131.633, "L": 460.183},
    "diff-foley": {"T": 8.389, "S": 32.924, "B": 130.434, "L": 458.180},
}
PAPER_M = {"S": 33, "B": 131, "L": 461}


def closed_form_counts(spec: SegmentSpec, preset: str, freq: int = 204) -> tuple[int, int]:
    """Independent count from the architecture description (reference section 1.6 and 2.2)."""
    depth, d, heads = PRESETS[preset]
    rows, cols = spec.token_grid
    n, p, c = spec.num_tokens, spec.patch_size, spec.latent_channels
    block = 18 * d * d + 15 * d + heads * ((2 * rows - 1) * (2 * cols - 1) + 3)
    final = 2 * d * d + 2 * d + d * p * p * 2 * c + p * p * 2 * c
    t_emb = freq * d + d + d * d + d
    feat = spec.feature_dim * d + d + 2 * d + spec.num_frames + 1 + 2 * d
    inference = depth * block + final + t_emb + feat + 2 * n * d + d * c * p * p + d
    return inference, inference + block + d


@pytest.mark.parametrize(("spec", "expected"), [(AUDIOLDM, AUDIOLDM_COUNTS), (DIFF_FOLEY, DIFF_FOLEY_COUNTS)])
def test_preset_parameter_counts(spec: SegmentSpec, expected: dict[str, tuple[int, int]]) -> None:
    counts = preset_parameter_counts(spec)
    assert counts == expected
    for name, (inference, _total) in counts.items():
        assert (inference, _total) == closed_form_counts(spec, name)
        assert round(inference / 1e6, 3) == REFERENCE_M[spec.name][name]
        if name in PAPER_M:
            # the paper's latent is within 1 % of its S/B/L counts; the released one has S at 33.52 M (+1.6 %)
            tolerance = 0.01 if spec.name == "diff-foley" else 0.02
            assert abs(inference / 1e6 - PAPER_M[name]) / PAPER_M[name] < tolerance
    # the paper's "T = 5 M" is not reachable with its stated 12 x 192 x 3 shape
    assert counts["T"][0] > 8_000_000


def test_b_total_and_breakdown() -> None:
    with torch.device("meta"):
        model = build_denoiser(AUDIOLDM, "B")
    assert count_parameters(model, inference_only=False) == 142_299_073
    assert count_parameters(model) == 131_633_377

    def size(prefix: str, *, exclude: str | None = None) -> int:
        return sum(
            p.numel()
            for k, p in model.named_parameters()
            if k.startswith(prefix) and (exclude is None or exclude not in k)
        )

    assert size("blocks.", exclude="relative_position_bias_table") == 127_540_224
    assert size("blocks.") - size("blocks.", exclude="relative_position_bias_table") == 438_912
    assert size("sideblocks.") == 10_664_928
    assert size("final_layer.") == 1_230_400
    assert size("t_embedder.") == 748_032
    assert size("mlp_feat.") == 395_520
    assert size("pos_embed") == size("decoder_pos_embed") == 626_688
    assert size("x_embedder.") == 25_344
    assert size("conv1d_feat.") == 1_569
    assert size("mask_token") == 768
    # buffers never count
    assert sum(b.numel() for b in model.buffers()) == 13 * 816 * 816


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint layout
# ---------------------------------------------------------------------------------------------------------------
def _fixture_entries() -> dict[str, tuple[str, list[int]]]:
    if not FIXTURE.exists():
        pytest.skip(f"fixture {FIXTURE} not found (tests/fixtures/ is part of the repository)")
    return {k: (v[0], v[1]) for k, v in json.loads(FIXTURE.read_text())["entries"].items()}


def test_b_state_dict_layout_matches_release() -> None:
    entries = _fixture_entries()
    with torch.device("meta"):
        model = build_denoiser(AUDIOLDM, "B")
    layout = {k: (str(v.dtype).removeprefix("torch."), list(v.shape)) for k, v in model.state_dict().items()}
    assert len(layout) == len(entries) == 177
    assert layout == entries


def test_b_strict_load_of_synthetic_release_checkpoint() -> None:
    entries = _fixture_entries()
    torch.manual_seed(0)
    model = build_denoiser(AUDIOLDM, "B")
    expected_index = relative_position_index((102, 8))
    for block in [*model.blocks, *model.sideblocks]:
        assert torch.equal(block.attn.rel_pos_bias.relative_position_index, expected_index)
        assert block.attn.rel_pos_bias.relative_position_bias_table.shape == (3048, 12)
    # random tensors of the fixture's shapes, as views of one random storage to keep memory small
    biggest = max(math.prod(shape) for _, shape in entries.values())
    g = torch.Generator().manual_seed(1)
    floats = torch.randn(biggest, generator=g)
    ints = torch.randint(0, 3045, (biggest,), generator=g)
    state = {
        k: (floats if dtype == "float32" else ints)[: math.prod(shape)].view(shape)
        for k, (dtype, shape) in entries.items()
    }
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.blocks[7].mlp.fc1.weight, state["blocks.7.mlp.fc1.weight"])
    assert torch.equal(
        model.sideblocks[0].attn.rel_pos_bias.relative_position_index,
        state["sideblocks.0.attn.rel_pos_bias.relative_position_index"],
    )


@pytest.mark.parametrize("spec", SPECS)
def test_strict_load_rejects_wrong_shape_and_missing_key(spec: SegmentSpec) -> None:
    model = tiny(spec)
    good = copy.deepcopy(model.state_dict())
    model.load_state_dict(good, strict=True)

    wrong = dict(good)
    wrong["blocks.0.attn.rel_pos_bias.relative_position_bias_table"] = torch.zeros(10, 2)
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_state_dict(wrong, strict=True)

    missing = dict(good)
    del missing["mask_token"]
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(missing, strict=True)


def test_other_grid_does_not_load() -> None:
    with pytest.raises(RuntimeError):
        tiny(DIFF_FOLEY).load_state_dict(tiny(AUDIOLDM).state_dict(), strict=True)


# ---------------------------------------------------------------------------------------------------------------
# Positional tables, relative index, timestep embedding, initialisation
# ---------------------------------------------------------------------------------------------------------------
def test_relative_position_index_by_hand() -> None:
    index = relative_position_index((2, 3))  # tokens (r, c): 0=(0,0) 1=(0,1) 2=(0,2) 3=(1,0) 4=(1,1) 5=(1,2)
    assert index.dtype == torch.int64 and index.shape == (6, 6)
    # (dr + R - 1) * (2Q - 1) + (dc + Q - 1), (dr, dc) = query - key
    assert index[0, 5] == 0  # (-1, -2)
    assert index[5, 0] == 14  # (1, 2): the largest offset
    assert index[1, 3] == 3  # (-1, 1)
    assert index[3, 1] == 11  # (1, -1)
    assert (index.diagonal() == 7).all()  # (0, 0) is the centre of the 3 x 5 offset window
    # no cls token: the index spans exactly the (2R-1)(2Q-1) offsets; the table's 3 extra BEiT rows stay unused
    for grid in [(2, 3), (8, 32), (102, 8)]:
        index = relative_position_index(grid)
        offsets = (2 * grid[0] - 1) * (2 * grid[1] - 1)
        assert index.min() == 0 and index.max() + 1 == offsets
        assert index.unique().numel() == offsets
    assert relative_position_index((102, 8))[815, 0] == 3044  # = 3048 - 3 - 1


def test_sincos_table_and_timestep_embedding() -> None:
    dim, grid = 16, (3, 5)
    table = sincos_pos_embed_2d(dim, grid)
    assert table.shape == (15, 16)
    r, q = 2, 3
    row = table[r * 5 + q]
    # first half: column index, [sin, cos] with omega_0 = 1; second half: row index
    torch.testing.assert_close(row[0], torch.tensor(math.sin(q)))
    torch.testing.assert_close(row[4], torch.tensor(math.cos(q)))
    torch.testing.assert_close(row[8], torch.tensor(math.sin(r)))
    torch.testing.assert_close(row[12], torch.tensor(math.cos(r)))
    torch.testing.assert_close(row[1], torch.tensor(math.sin(q * 10000 ** (-1 / 4))))

    emb = timestep_embedding(torch.tensor([5.0, 2.5]), 204)
    assert emb.shape == (2, 204)
    torch.testing.assert_close(emb[0, 0], torch.tensor(math.cos(5.0)))
    torch.testing.assert_close(emb[0, 102], torch.tensor(math.sin(5.0)))
    torch.testing.assert_close(emb[1, 1], torch.tensor(math.cos(2.5 * math.exp(-math.log(10000) / 102))))


@pytest.mark.parametrize("spec", SPECS)
def test_initialisation(spec: SegmentSpec) -> None:
    torch.manual_seed(0)
    model = tiny(spec)
    table = sincos_pos_embed_2d(64, spec.token_grid)[None]
    assert model.pos_embed.requires_grad and model.decoder_pos_embed.requires_grad
    torch.testing.assert_close(model.pos_embed.data, table)
    torch.testing.assert_close(model.decoder_pos_embed.data, table)
    for block in [*model.blocks, *model.sideblocks]:
        assert not block.adaLN_modulation[1].weight.any() and not block.adaLN_modulation[1].bias.any()
        assert block.attn.qkv.weight.any() and not block.attn.qkv.bias.any()
    assert not model.final_layer.linear.weight.any() and not model.final_layer.adaLN_modulation[1].weight.any()
    assert model.mask_token.any()
    assert not tiny(spec, mask_ratio=None).mask_token.any()
    # zero-initialised head: the untrained model predicts zeros
    x, t, v = inputs(spec)
    assert not model(x, t, v).any()


def test_config_round_trip_and_validation() -> None:
    config = DenoiserConfig.from_spec(DIFF_FOLEY, "B", decode_layer=2)
    assert config.input_size == (16, 64) and config.in_channels == 4 and config.time_axis == "col"
    assert (config.depth, config.hidden_size, config.num_heads, config.decode_layer) == (12, 768, 12, 2)
    assert config.grid == (8, 32) and config.out_channels == 8 and config.rel_table_rows == 948
    assert DenoiserConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown denoiser preset"):
        DenoiserConfig.from_spec(DIFF_FOLEY, "XXL")
    with pytest.raises(ValueError, match="num_heads"):
        DenoiserConfig.from_spec(DIFF_FOLEY, "B", num_heads=5)
    with pytest.raises(ValueError, match="decode_layer"):
        DenoiserConfig.from_spec(DIFF_FOLEY, "B", decode_layer=13)
    with pytest.raises(ValueError, match="unknown"):
        DenoiserConfig.from_dict({**config.to_dict(), "bogus": 1})


# ---------------------------------------------------------------------------------------------------------------
# Temporal-Aware Masking
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grid", "time_axis", "kept_lines"),
    [((8, 32), "col", 22), ((102, 8), "row", 71)],
)
def test_tam_masks_whole_time_lines(grid: tuple[int, int], time_axis: str, kept_lines: int) -> None:
    batch, (rows, cols) = 6, grid
    n = rows * cols
    line_len = rows if time_axis == "col" else cols
    ids_keep, ids_restore, mask = temporal_aware_mask(batch, grid, time_axis, 0.3, torch.Generator().manual_seed(0))
    assert ids_keep.shape == (batch, kept_lines * line_len) and ids_restore.shape == mask.shape == (batch, n)
    assert (mask.sum(1) == n - kept_lines * line_len).all()
    # every time line entirely kept or entirely masked
    lines = mask.view(batch, rows, cols)  # (B, R, Q)
    lines = lines if time_axis == "row" else lines.transpose(1, 2)  # (B, T, P)
    assert ((lines == lines[:, :, :1]).all(dim=2)).all()
    assert ((1 - lines[:, :, 0]).sum(1) == kept_lines).all()
    # the kept ids are exactly the unmasked tokens
    assert (mask.gather(1, ids_keep) == 0).all()
    # different samples mask different lines
    assert len({tuple(m.tolist()) for m in mask}) == batch
    # ids_restore inverts the shuffle: [kept, masked] gathered with it is the original order
    ids_shuffle = torch.argsort(ids_restore, dim=1)  # (B, N)
    assert torch.equal(ids_shuffle[:, : ids_keep.shape[1]], ids_keep)
    values = torch.randn(batch, n)
    shuffled = values.gather(1, ids_shuffle)  # (B, N): kept first, then masked
    assert torch.equal(shuffled.gather(1, ids_restore), values)


def test_tam_time_axis_matters_and_rejects_bad_ratios() -> None:
    ids_keep, _, _ = temporal_aware_mask(2, (8, 32), "row", 0.3)
    assert ids_keep.shape == (2, 5 * 32)  # the pitfall: rows of the Diff-Foley grid are frequency bands
    with pytest.raises(ValueError):
        temporal_aware_mask(2, (8, 32), "col", 1.0)
    with pytest.raises(ValueError):
        temporal_aware_mask(2, (8, 32), "freq", 0.3)  # type: ignore[arg-type]


def test_the_ablation_masks_keep_frequency_lines_or_single_tokens() -> None:
    grid, batch = (8, 32), 4  # Diff-Foley grid: rows are frequency bands, columns are time
    _, _, fam = token_mask("fam", batch, grid, "col", 0.3, torch.Generator().manual_seed(0))
    rows = fam.view(batch, 8, 32)
    assert ((rows == rows[:, :, :1]).all(dim=2)).all()  # whole frequency lines kept or masked
    assert ((1 - rows[:, :, 0]).sum(1) == 5).all()  # int(8 * 0.7) lines kept
    ids_keep, ids_restore, sam = token_mask("sam", batch, grid, "col", 0.3, torch.Generator().manual_seed(0))
    assert ids_keep.shape == (batch, int(256 * 0.7)) and (sam.sum(1) == 256 - int(256 * 0.7)).all()
    assert (sam.gather(1, ids_keep) == 0).all()
    cols = sam.view(batch, 8, 32)
    assert not ((cols == cols[:, :1, :]).all(dim=1)).all()  # not whole time lines
    values = torch.randn(batch, 256)
    assert torch.equal(values.gather(1, torch.argsort(ids_restore, 1)).gather(1, ids_restore), values)
    _, _, tam = token_mask("tam", batch, grid, "col", 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(tam, temporal_aware_mask(batch, grid, "col", 0.3, torch.Generator().manual_seed(0))[2])
    with pytest.raises(ValueError, match="mask kind"):
        token_mask("random", batch, grid, "col", 0.3)


# ---------------------------------------------------------------------------------------------------------------
# Forward passes on tiny models
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS)
def test_shapes_and_split_eps(spec: SegmentSpec) -> None:
    torch.manual_seed(0)
    model = randomise_zero_params(tiny(spec)).eval()
    x, t, v = inputs(spec)
    with torch.no_grad():
        y = model.encode_condition(v)
        out = model.forward_with_condition(x, t, y)
        out_scalar_t = model.forward_with_condition(x[1:], torch.tensor(12.5), y[1:])
    assert y.shape == (2, 64)
    c = spec.latent_channels
    assert out.shape == (2, 2 * c, spec.latent_height, spec.latent_width)
    assert torch.equal(model.split_eps(out), out[:, :c]) and model.split_eps(out).shape == x.shape
    torch.testing.assert_close(out_scalar_t, out[1:2])
    no_sigma = tiny(spec, learn_sigma=False)
    assert no_sigma(x, t, v).shape == x.shape
    with pytest.raises(ValueError, match="latent"):
        model.forward_with_condition(x.transpose(2, 3), t, y)
    with pytest.raises(ValueError, match="video_feats"):
        model.encode_condition(v[:, :10])


@pytest.mark.parametrize("spec", SPECS)
def test_unpatchify_inverts_patch_order(spec: SegmentSpec) -> None:
    """Token n = r*Q + q, channel (i, j, c) of the head lands at latent (c, r*p + i, q*p + j)."""
    model = tiny(spec)
    (rows, cols), p, c_out = spec.token_grid, spec.patch_size, 2 * spec.latent_channels
    tokens = torch.arange(rows * cols * p * p * c_out, dtype=torch.float32).view(1, rows * cols, p * p * c_out)
    latent = model.unpatchify(tokens)
    r, q, i, j, c = rows - 1, 1, 1, 0, 3
    assert latent[0, c, r * p + i, q * p + j] == tokens[0, r * cols + q, (i * p + j) * c_out + c]


@pytest.mark.parametrize("spec", SPECS)
def test_null_condition_and_condition_paths(spec: SegmentSpec) -> None:
    torch.manual_seed(0)
    model = randomise_zero_params(tiny(spec))
    x, t, v = inputs(spec)
    with torch.no_grad():
        y = model.encode_condition(v)
        cond = model.forward_with_condition(x, t, y)
        null = model.forward_with_condition(x, t, torch.zeros_like(y))
        assert not torch.allclose(cond, null, atol=1e-4)
        # encode once + per-step pass == training pass with every condition kept; no hidden dropout by default
        torch.testing.assert_close(model(x, t, v, keep=torch.ones(2)), cond)
        torch.testing.assert_close(model(x, t, v), cond)
        # null condition == dropped condition == a model whose Reducer output is zero (c = t_emb only)
        torch.testing.assert_close(model(x, t, v, keep=torch.zeros(2)), null)
        torch.testing.assert_close(model(x, t, v, drop_prob=1.0), null)
        mixed = model(x, t, v, keep=torch.tensor([1.0, 0.0]))
        torch.testing.assert_close(mixed, torch.stack([cond[0], null[1]]))
        zero_reducer = copy.deepcopy(model)
        torch.nn.init.zeros_(zero_reducer.conv1d_feat[2].weight)
        torch.nn.init.zeros_(zero_reducer.conv1d_feat[2].bias)
        assert not zero_reducer.encode_condition(v).any()
        torch.testing.assert_close(zero_reducer(x, t, v, keep=torch.ones(2)), null)


@pytest.mark.parametrize("spec", SPECS)
def test_masked_training_pass(spec: SegmentSpec) -> None:
    torch.manual_seed(0)
    model = randomise_zero_params(tiny(spec))
    x, t, v = inputs(spec)
    out, mask = model(x, t, v, enable_mask=True, generator=torch.Generator().manual_seed(3))
    rows, cols = spec.token_grid
    assert out.shape == (2, 2 * spec.latent_channels, spec.latent_height, spec.latent_width)
    time_lines = 22 if spec.time_axis == "col" else 71
    assert (mask.sum(1) == spec.num_tokens - time_lines * (rows if spec.time_axis == "col" else cols)).all()
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.any(), f"no gradient reaches {name}"
    for kind in ("fam", "sam"):  # the ablation's masks run through the same side interpolator
        out, mask = model(x, t, v, enable_mask=True, mask_kind=kind, generator=torch.Generator().manual_seed(3))
        assert out.shape == (2, 2 * spec.latent_channels, spec.latent_height, spec.latent_width)
        assert torch.isfinite(out).all() and 0 < mask.sum(1).min() < spec.num_tokens

    # the unmasked pass does not use the side block nor the mask token
    model.zero_grad(set_to_none=True)
    model(x, t, v).square().mean().backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == {n for n, _ in model.named_parameters() if n.startswith(("sideblocks.", "mask_token"))}


@pytest.mark.parametrize("spec", SPECS)
def test_masked_pass_ignores_masked_content_and_is_equivariant(spec: SegmentSpec) -> None:
    torch.manual_seed(0)
    model = randomise_zero_params(tiny(spec))
    x, t, v = inputs(spec)
    p = spec.patch_size
    with torch.no_grad():
        out, mask = model(x, t, v, enable_mask=True, generator=torch.Generator().manual_seed(5))
        # latent content under masked tokens never reaches the output
        rows, cols = spec.token_grid
        pixel_mask = mask.view(2, 1, rows, cols).repeat_interleave(p, 2).repeat_interleave(p, 3)  # (B, 1, H, W)
        x2 = x + 10.0 * pixel_mask * torch.randn_like(x)
        out2, mask2 = model(x2, t, v, enable_mask=True, generator=torch.Generator().manual_seed(5))
        assert torch.equal(mask, mask2)
        torch.testing.assert_close(out2, out)
        # ratio 0: encoder on shuffled tokens with gathered relative bias == the plain pass
        full, none_masked = model(x, t, v, enable_mask=True, mask_ratio=0.0)
        assert not none_masked.any()
        torch.testing.assert_close(full, model(x, t, v), rtol=1e-4, atol=1e-5)


def test_enable_mask_needs_a_ratio() -> None:
    model = tiny(DIFF_FOLEY, mask_ratio=None)
    x, t, v = inputs(DIFF_FOLEY)
    with pytest.raises(ValueError, match="mask_ratio"):
        model(x, t, v, enable_mask=True)
    _, mask = model(x, t, v, enable_mask=True, mask_ratio=0.5)
    assert mask.sum(1).tolist() == [128.0, 128.0]


# ---------------------------------------------------------------------------------------------------------------
# The temporal condition (our extension): per-time-line video features added to the tokens
# ---------------------------------------------------------------------------------------------------------------
def test_line_interpolation_reads_each_line_at_its_moment() -> None:
    w = line_interpolation(32, 32, 1.024)  # the Diff-Foley spec: 8.192 s / 32 columns, 4 fps
    assert w.shape == (32, 32) and torch.allclose(w.sum(1), torch.ones(32))
    pos = (w * torch.arange(32.0)).sum(1)  # the frame position each line reads
    torch.testing.assert_close(pos[:30], (torch.arange(30.0) + 0.5) * 1.024)
    assert pos[-1] == 31.0 and (pos.diff() >= 0).all()  # clamped past the last frame, never backwards
    assert (line_interpolation(32, 8, None) * torch.arange(32.0)).sum(1).tolist() == [2, 6, 10, 14, 18, 22, 26, 30]


@pytest.mark.parametrize("spec", SPECS)
def test_temporal_condition_starts_as_plain_mdsgen_and_is_time_local(spec: SegmentSpec) -> None:
    torch.manual_seed(0)
    base = randomise_zero_params(tiny(spec))
    model = tiny(spec, temporal_condition=True)
    assert model.config.frames_per_line == pytest.approx(spec.duration / model.config.time_lines * spec.video_fps)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert sorted(missing) == ["temporal_feat.bias", "temporal_feat.weight"] and not unexpected
    x, t, v = inputs(spec)
    with torch.no_grad():
        y = model.encode_condition(v)
        assert y.shape == (2, 1 + model.config.time_lines, 64) == (2, *model.config.condition_shape)
        # zero-initialised: exactly the warm-started model, conditioned or not
        torch.testing.assert_close(model(x, t, v), base(x, t, v), rtol=0, atol=0)
        torch.nn.init.normal_(model.temporal_feat.weight, std=0.5)
        cond = model.forward_with_condition(x, t, model.encode_condition(v))
        assert not torch.allclose(cond, base(x, t, v), atol=1e-4)
        # the null condition (zeros) is the unconditional model: no temporal term either
        null = model.forward_with_condition(x, t, torch.zeros_like(y))
        torch.testing.assert_close(null, base.forward_with_condition(x, t, torch.zeros(2, 64)))
        torch.testing.assert_close(model(x, t, v, keep=torch.tensor([1.0, 0.0])), torch.stack([cond[0], null[1]]))
        # changing the video late in the segment changes the temporal rows of late lines only
        v2 = v.clone()
        v2[:, -4:] += 1.0
        d = (model.encode_condition(v2) - model.encode_condition(v))[:, 1:].abs().amax(dim=(0, 2))  # per line
        assert (d[: model.config.time_lines // 2] == 0).all() and d[-1] > 0
        with pytest.raises(ValueError, match="condition must be"):
            model.forward_with_condition(x, t, y[:, 0])
    out, _ = model(x, t, v, enable_mask=True, generator=torch.Generator().manual_seed(3))
    out.square().mean().backward()
    assert model.temporal_feat.weight.grad is not None and model.temporal_feat.weight.grad.any()
