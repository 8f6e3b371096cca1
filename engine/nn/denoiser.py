"""MDSGen denoiser: a masked diffusion transformer over VAE latents, conditioned on CAVP video features.

The architecture is the one of the public MDSGen release (ICLR 2025), which is MDT v1 (Gao et al. 2023) built on
DiT (Peebles & Xie 2023), written here from the description in `shared/reference/mdsgen.md`; no code is copied.

    x (B, C, H, W) --patchify--> tokens (B, N, D) + pos_embed
    t (B,)         --sinusoid F--> Linear, SiLU, Linear --> t_emb (B, D)
    video (B, 32, 512) --Linear 512->D, GELU, LayerNorm--> (B, 32, D) --Reducer: Conv1d 32->1, GELU, LayerNorm--> y
    c = t_emb + y                         (null condition: y = 0, so c = t_emb)
    encoder: depth - decode_layer adaLN-Zero blocks   (on kept tokens only when masking)
    + decoder_pos_embed                   (or, when masking, the side interpolator: mask tokens + one side block)
    decoder: decode_layer adaLN-Zero blocks on all tokens
    final adaLN layer --> unpatchify --> (B, 2C, H, W)   (learn_sigma: eps, then variance interpolation)

Every attention layer adds a BEiT-style relative position bias over the R x Q token grid. Training uses
Temporal-Aware Masking (TAM): whole time lines of the token grid are dropped, along the spec's time axis.

Differences from the release, all deliberate:
- The token grid follows the config (the release hard-codes 102 x 8); with `time_axis="col"` TAM drops grid columns,
  which is what "time" means for the Diff-Foley latent (the release always drops rows).
- `forward` applies no condition dropout unless asked (`drop_prob` defaults to 0; the release silently uses 0.1).
- Inference takes the video condition pre-encoded (`encode_condition` once, `forward_with_condition` per step).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config_base import StrictConfig
from engine.nn.presets import PRESETS, preset_fields

if TYPE_CHECKING:
    from engine.spec import SegmentSpec, TimeAxis


# ---------------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DenoiserConfig(StrictConfig):
    """Every constructor argument of `MDSGen`; stored in the bundle manifest so the torch backend can rebuild it."""

    config_name = "denoiser-config"

    input_size: tuple[int, int]  # latent (H, W)
    in_channels: int
    patch_size: int = 2
    hidden_size: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    decode_layer: int = 4  # N2: blocks after the encoder/decoder boundary
    learn_sigma: bool = True
    feature_dim: int = 512  # CAVP feature width
    num_frames: int = 32  # CAVP frames per segment (Reducer input channels)
    freq_embed_size: int = 204  # width F of the sinusoidal timestep embedding (MDSGen: 204, DiT/MDT: 256)
    time_axis: TimeAxis  # which token-grid axis is time; TAM drops whole lines along it
    mask_ratio: float | None = 0.3  # training TAM ratio (paper: 0.3); the mask token exists either way
    # Our extension (not in the paper; off for the presets and the released checkpoint): besides the Reducer's
    # global vector, each time line of the token grid gets the video feature of its moment, interpolated from the
    # projected frames and added to its tokens through a zero-initialised Linear (so it starts as exact MDSGen).
    temporal_condition: bool = False
    frames_per_line: float | None = None  # video frames per token time line (spec: duration / lines * fps);
    #                                       None: num_frames / lines (frames spread evenly over the lines)
    # Hits (our extension, 0 = off): a hit track of `hit_slots` slots per time line (engine.hits) enters through a
    # zero-initialised projection of its own and is added to each line's tokens, at the input and at the
    # encoder/decoder boundary, like the temporal term. The null condition (zeros) drops it with the video.
    hit_slots: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(s) for s in self.input_size))
        p = self.patch_size
        if len(self.input_size) != 2 or p <= 0 or self.input_size[0] % p or self.input_size[1] % p:
            raise ValueError(f"input_size {self.input_size} must be two sizes divisible by patch_size {p}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.hidden_size % 4:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of 4 (2-D sin-cos table)")
        if not 0 <= self.decode_layer <= self.depth:
            raise ValueError(f"decode_layer {self.decode_layer} must be between 0 and depth {self.depth}")
        if self.freq_embed_size <= 0 or self.freq_embed_size % 2:
            raise ValueError(f"freq_embed_size must be a positive even number, got {self.freq_embed_size}")
        if self.time_axis not in ("row", "col"):
            raise ValueError(f"time_axis must be 'row' or 'col', got {self.time_axis!r}")
        if self.mask_ratio is not None and not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1) or None, got {self.mask_ratio}")
        if self.frames_per_line is not None and self.frames_per_line <= 0:
            raise ValueError(f"frames_per_line must be positive or None, got {self.frames_per_line}")
        if self.hit_slots < 0:
            raise ValueError(f"hit_slots must be >= 0 (0: no hits), got {self.hit_slots}")

    # ---- derived sizes -----------------------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        """(R, Q): rows and columns of the token grid."""
        return (self.input_size[0] // self.patch_size, self.input_size[1] // self.patch_size)

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def time_lines(self) -> int:
        """Token-grid lines along time (columns for the Diff-Foley latent, rows for AudioLDM's)."""
        return self.grid[1] if self.time_axis == "col" else self.grid[0]

    @property
    def per_line(self) -> bool:
        """Whether the condition has one row per time line (temporal condition and/or hits)."""
        return self.temporal_condition or self.hit_slots > 0

    @property
    def hit_shape(self) -> tuple[int, int]:
        """Per-sample shape of the hit track: (time_lines, hit_slots)."""
        return (self.time_lines, self.hit_slots)

    @property
    def condition_shape(self) -> tuple[int, ...]:
        """Per-sample shape of the encoded condition y: (D,), or (1 + time_lines, D) with `temporal_condition` or
        hits (row 0 the Reducer's global vector, then one row per time line). The null condition is zeros either way."""
        if self.per_line:
            return (1 + self.time_lines, self.hidden_size)
        return (self.hidden_size,)

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def rel_table_rows(self) -> int:
        """(2R-1)(2Q-1) relative offsets plus BEiT's 3 (unused) cls rows."""
        r, q = self.grid
        return (2 * r - 1) * (2 * q - 1) + 3

    # ---- construction / (de)serialisation ------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: SegmentSpec, preset: str, **overrides: Any) -> DenoiserConfig:
        """Sizes from the segment spec, shape from a preset of `PRESETS` (or `TEST_PRESETS`: "tiny"), then `overrides`
        (any field)."""
        fields: dict[str, Any] = {
            "input_size": (spec.latent_height, spec.latent_width),
            "in_channels": spec.latent_channels,
            "patch_size": spec.patch_size,
            "feature_dim": spec.feature_dim,
            "num_frames": spec.num_frames,
            "time_axis": spec.time_axis,
            **preset_fields(preset),
        }
        fields.update(overrides)
        cfg = cls(**fields)
        if cfg.temporal_condition and cfg.frames_per_line is None:  # the spec knows the seconds and the frame rate
            cfg = dataclasses.replace(cfg, frames_per_line=spec.duration / cfg.time_lines * spec.video_fps)
        return cfg


# ---------------------------------------------------------------------------------------------------------------
# Helpers: embeddings, relative index, masking
# ---------------------------------------------------------------------------------------------------------------
def _sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """[sin, cos] table of width `dim` for float64 positions (L,), with omega_k = 10000^(-k/(dim/2))."""
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)  # (dim/2,)
    omega = 1.0 / 10000.0**omega
    angles = pos[:, None] * omega[None, :]  # (L, dim/2)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (L, dim)


def sincos_pos_embed_2d(dim: int, grid: tuple[int, int]) -> Tensor:
    """The 2-D sin-cos table (R*Q, dim), row-major; first dim/2 channels encode the column, the rest the row."""
    rows, cols = grid
    r = torch.arange(rows, dtype=torch.float64).repeat_interleave(cols)  # (R*Q,) row index of each token
    q = torch.arange(cols, dtype=torch.float64).repeat(rows)  # (R*Q,) column index of each token
    return torch.cat([_sincos_1d(dim // 2, q), _sincos_1d(dim // 2, r)], dim=1).float()  # (R*Q, dim)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """[cos(t f_k), sin(t f_k)] with f_k = exp(-ln(max_period) k / (dim/2)); t (B,) may be fractional -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]  # (B, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)


def relative_position_index(grid: tuple[int, int]) -> Tensor:
    """BEiT pair index (N, N) int64 over an R x Q grid, without cls entries.

    index[i, j] = (dr + R - 1) * (2Q - 1) + (dc + Q - 1) with (dr, dc) = position(i) - position(j) (query minus key),
    so it spans 0 .. (2R-1)(2Q-1) - 1; the 3 extra table rows BEiT reserves for a cls token are never addressed.
    """
    rows, cols = grid
    r = torch.arange(rows).repeat_interleave(cols)  # (N,) row of each token
    q = torch.arange(cols).repeat(rows)  # (N,) column of each token
    dr = r[:, None] - r[None, :]  # (N, N)
    dc = q[:, None] - q[None, :]  # (N, N)
    return (dr + rows - 1) * (2 * cols - 1) + (dc + cols - 1)  # (N, N) int64


def temporal_aware_mask(
    batch: int,
    grid: tuple[int, int],
    time_axis: TimeAxis,
    ratio: float,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Temporal-Aware Masking: per sample, keep floor(T (1 - ratio)) whole time lines of the R x Q token grid.

    A time line is a grid row (`time_axis="row"`, the AudioLDM latent) or a grid column (`"col"`, the Diff-Foley
    latent); all tokens of a line are kept or masked together. One uniform number per line is drawn and the lines
    are argsorted, as in MDSGen's `random_masking` (which only knows rows).

    Returns
        ids_keep    (B, L_keep) int64: token ids of the kept tokens, in shuffled order (kept lines first)
        ids_restore (B, N) int64: inverse permutation; gathering [kept, masked] tokens with it restores grid order
        mask        (B, N) float32: 1 = masked, 0 = kept, in grid order
    """
    if time_axis not in ("row", "col"):
        raise ValueError(f"time_axis must be 'row' or 'col', got {time_axis!r}")
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    rows, cols = grid
    n_time, line_len = (rows, cols) if time_axis == "row" else (cols, rows)
    n_keep = int(n_time * (1.0 - ratio))
    if n_keep < 1:
        raise ValueError(f"mask ratio {ratio} keeps no time line out of {n_time}")
    noise = torch.rand(batch, n_time, generator=generator, device=device)  # (B, T)
    lines = torch.argsort(noise, dim=1)  # (B, T) time lines, kept ones first
    along = torch.arange(line_len, device=noise.device)  # (P,) position along a line
    if time_axis == "row":
        tokens = lines[:, :, None] * cols + along[None, None, :]  # (B, T, P) row r -> r*Q + c
    else:
        tokens = along[None, None, :] * cols + lines[:, :, None]  # (B, T, P) column c -> r*Q + c
    ids_shuffle = tokens.reshape(batch, rows * cols)  # (B, N)
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, N)
    ids_keep = ids_shuffle[:, : n_keep * line_len]  # (B, L_keep)
    mask = torch.ones(batch, rows * cols, device=noise.device)  # (B, N)
    mask.scatter_(1, ids_keep, 0.0)
    return ids_keep, ids_restore, mask


def line_interpolation(num_frames: int, lines: int, frames_per_line: float | None) -> Tensor:
    """(lines, num_frames) linear-interpolation weights: row l reads the frame features at the centre of time line
    l, at frame position (l + 0.5) * frames_per_line (clamped to the first and last frame)."""
    fpl = num_frames / lines if frames_per_line is None else frames_per_line
    pos = ((torch.arange(lines, dtype=torch.float64) + 0.5) * fpl).clamp(0, num_frames - 1)  # (lines,)
    lo = pos.floor().long().clamp(max=num_frames - 2) if num_frames > 1 else pos.floor().long()
    frac = pos - lo
    w = torch.zeros(lines, num_frames, dtype=torch.float64)
    w[torch.arange(lines), lo] = 1.0 - frac
    if num_frames > 1:
        w[torch.arange(lines), lo + 1] += frac
    return w.float()


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation of tokens x (B, L, D) by per-sample shift/scale (B, D)."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------
class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches to tokens: Conv2d(C -> D, kernel = stride = p), flattened row-major."""

    def __init__(self, *, patch_size: int, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # (B, D, R, Q)
        return x.flatten(2).transpose(1, 2)  # (B, N, D), column index fastest


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of a (fractional) timestep, width F, then Linear(F -> D), SiLU, Linear(D -> D)."""

    def __init__(self, *, hidden_size: int, frequency_embedding_size: int) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_embedding_size))  # (B, D)


class RelativePositionBias(nn.Module):
    """BEiT relative position bias over the token grid: a learned table ((2R-1)(2Q-1)+3, heads) and its index.

    The index is a persistent int64 buffer because the released checkpoint stores it.
    """

    def __init__(self, *, grid: tuple[int, int], num_heads: int) -> None:
        super().__init__()
        rows, cols = grid
        num_offsets = (2 * rows - 1) * (2 * cols - 1) + 3  # +3: BEiT's cls slots, unused here
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_offsets, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(grid), persistent=True)

    def forward(self, ids_keep: Tensor | None = None) -> Tensor:
        """The bias (heads, N, N), or gathered at kept token ids (B, L) on both axes -> (B, heads, L, L)."""
        table = self.relative_position_bias_table
        if ids_keep is None:
            bias = table[self.relative_position_index]  # (N, N, heads)
            return bias.permute(2, 0, 1)  # (heads, N, N)
        index = self.relative_position_index[ids_keep[:, :, None], ids_keep[:, None, :]]  # (B, L, L)
        return table[index].permute(0, 3, 1, 2)  # (B, heads, L, L)


class Attention(nn.Module):
    """Multi-head self-attention with a relative position bias added to the logits; no dropout."""

    def __init__(self, *, hidden_size: int, num_heads: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=True)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.rel_pos_bias = RelativePositionBias(grid=grid, num_heads=num_heads)

    def forward(self, x: Tensor, ids_keep: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)  # (B, L, 3, heads, d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, heads, L, d_head)
        bias = self.rel_pos_bias(ids_keep).to(q.dtype)  # (heads, L, L) or (B, heads, L, L)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, heads, L, d_head), scale d_head^-1/2
        x = x.transpose(1, 2).reshape(b, n, d)  # (B, L, D)
        return self.proj(x)


class Mlp(nn.Module):
    """Linear(D -> rD), GELU (tanh approximation), Linear(rD -> D); names fc1/fc2 as in the checkpoint."""

    def __init__(self, *, hidden_size: int, mlp_hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, mlp_hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(mlp_hidden, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MDTBlock(nn.Module):
    """adaLN-Zero transformer block (DiT): c -> SiLU, Linear(D -> 6D) gives shift/scale/gate for attention and MLP."""

    def __init__(self, *, hidden_size: int, num_heads: int, mlp_ratio: float, grid: tuple[int, int]) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size=hidden_size, num_heads=num_heads, grid=grid)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size=hidden_size, mlp_hidden=int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True))

    def forward(self, x: Tensor, c: Tensor, ids_keep: Tensor | None = None) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)  # 6 x (B, D)
        x = x + gate1[:, None, :] * self.attn(modulate(self.norm1(x), shift1, scale1), ids_keep)
        return x + gate2[:, None, :] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """Output head: non-affine LayerNorm, adaLN shift/scale (no gate), Linear(D -> p*p*C_out)."""

    def __init__(self, *, hidden_size: int, patch_size: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)  # 2 x (B, D)
        return self.linear(modulate(self.norm_final(x), shift, scale))  # (B, N, p*p*C_out)


# ---------------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------------
class MDSGen(nn.Module):
    """MDSGen masked diffusion transformer: predicts (eps, variance interpolation) for a noisy latent.

    Submodule and parameter names match the released checkpoint (`mdsgen_audioldm.pt`), which loads strictly into
    `build_denoiser(AUDIOLDM, "B")`.
    """

    def __init__(self, *, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        d, grid = config.hidden_size, config.grid
        n = config.num_tokens
        self.x_embedder = PatchEmbed(patch_size=config.patch_size, in_channels=config.in_channels, hidden_size=d)
        self.t_embedder = TimestepEmbedder(hidden_size=d, frequency_embedding_size=config.freq_embed_size)
        # the Reducer: per-frame projection, then a learned weighted sum over frames (Conv1d, frames as channels)
        self.mlp_feat = nn.Sequential(nn.Linear(config.feature_dim, d), nn.GELU(), nn.LayerNorm(d, eps=1e-12))
        self.conv1d_feat = nn.Sequential(
            nn.Conv1d(config.num_frames, 1, kernel_size=1), nn.GELU(), nn.LayerNorm(d, eps=1e-12)
        )
        if config.temporal_condition:
            lines = config.time_lines
            self.temporal_feat = nn.Linear(d, d)  # zero-initialised: a warm start from plain MDSGen is exact
            self.register_buffer("line_weights", line_interpolation(config.num_frames, lines, config.frames_per_line),
                                 persistent=False)  # (lines, frames)
        if config.hit_slots > 0:
            self.hit_proj = nn.Linear(config.hit_slots, d)  # zero-initialised: hits start as no-ops
        if config.per_line:
            rows, cols = grid
            line_of_token = torch.arange(cols).repeat(rows) if config.time_axis == "col" else \
                torch.arange(rows).repeat_interleave(cols)
            self.register_buffer("line_of_token", line_of_token, persistent=False)  # (N,) time line of each token
        self.pos_embed = nn.Parameter(torch.zeros(1, n, d))  # learnable, sin-cos initialised (MDT)
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n, d))
        block_args = {"hidden_size": d, "num_heads": config.num_heads, "mlp_ratio": config.mlp_ratio, "grid": grid}
        self.blocks = nn.ModuleList([MDTBlock(**block_args) for _ in range(config.depth)])
        self.sideblocks = nn.ModuleList([MDTBlock(**block_args)])  # MDT's "side interpolater", training only
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.final_layer = FinalLayer(hidden_size=d, patch_size=config.patch_size, out_channels=config.out_channels)
        self._init_weights()

    def _init_weights(self) -> None:
        """DiT/MDT initialisation, in the release's order (rel-bias tables are set in their own constructor)."""

        def basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

        self.apply(basic_init)
        table = sincos_pos_embed_2d(self.config.hidden_size, self.config.grid)  # (N, D)
        with torch.no_grad():
            self.pos_embed.copy_(table[None])  # (1, N, D)
            self.decoder_pos_embed.copy_(table[None])  # (1, N, D)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # like a Linear on the flattened (C*p*p) kernel
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        nn.init.normal_(self.mlp_feat[0].weight, std=0.02)
        nn.init.normal_(self.conv1d_feat[0].weight, std=0.02)  # its bias keeps PyTorch's default init
        for block in [*self.blocks, *self.sideblocks]:
            nn.init.zeros_(block.adaLN_modulation[1].weight)
            nn.init.zeros_(block.adaLN_modulation[1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)
        if self.config.mask_ratio is not None:
            nn.init.normal_(self.mask_token, std=0.02)
        if self.config.temporal_condition:
            nn.init.zeros_(self.temporal_feat.weight)
            nn.init.zeros_(self.temporal_feat.bias)
        if self.config.hit_slots > 0:
            nn.init.zeros_(self.hit_proj.weight)
            nn.init.zeros_(self.hit_proj.bias)

    # ---- pieces ----------------------------------------------------------------------------------------------
    def encode_condition(self, video_feats: Tensor, hits: Tensor | None = None) -> Tensor:
        """Video features (B, num_frames, feature_dim) and, with `hit_slots`, the hit track (B, lines, hit_slots)
        -> y (B, *condition_shape). Step-invariant: run once per generation. A hit-aware denoiser given no track
        gets an empty one (no hits)."""
        cfg = self.config
        expected = (cfg.num_frames, cfg.feature_dim)
        if video_feats.ndim != 3 or tuple(video_feats.shape[1:]) != expected:
            raise ValueError(f"video_feats must be (B, {expected[0]}, {expected[1]}), got {tuple(video_feats.shape)}")
        feats = self.mlp_feat(video_feats)  # (B, frames, D)
        y = self.conv1d_feat(feats)  # (B, 1, D)
        if not cfg.per_line:
            return y.squeeze(1)  # (B, D)
        rows: Tensor | None = None  # (B, lines, D): the sum of the per-line terms (static shapes for the export)
        if cfg.temporal_condition:
            per_line = torch.matmul(self.line_weights.to(feats.dtype), feats)  # (lines, frames) @ (B, frames, D)
            rows = self.temporal_feat(per_line)
        if cfg.hit_slots > 0:
            if hits is None:
                hits = feats.new_zeros(feats.shape[0], *cfg.hit_shape)
            if hits.ndim != 3 or tuple(hits.shape[1:]) != cfg.hit_shape:
                raise ValueError(f"hits must be (B, {cfg.time_lines}, {cfg.hit_slots}), got {tuple(hits.shape)}")
            h = self.hit_proj(hits.to(feats.dtype))  # (B, lines, D)
            rows = h if rows is None else rows + h
        return torch.cat([y, rows], dim=1)  # (B, 1 + lines, D)

    def _split_condition(self, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """c = t_emb + the global condition (B, D), and the per-token temporal term (B, N, D) or None."""
        if y.shape[1:] != self.config.condition_shape:
            raise ValueError(f"condition must be (B, {', '.join(map(str, self.config.condition_shape))}), "
                             f"got {tuple(y.shape)}")
        if not self.config.per_line:
            return self.t_embedder(t) + y, None
        return self.t_embedder(t) + y[:, 0], y[:, 1:][:, self.line_of_token]  # (B, D), (B, N, D)

    def unpatchify(self, x: Tensor) -> Tensor:
        """Tokens (B, N, p*p*C_out) -> latent (B, C_out, H, W)."""
        (rows, cols), p, c = self.config.grid, self.config.patch_size, self.config.out_channels
        x = x.reshape(x.shape[0], rows, cols, p, p, c)  # (B, R, Q, p, p, C_out)
        x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C_out, R, p, Q, p)
        return x.reshape(x.shape[0], c, rows * p, cols * p)  # (B, C_out, H, W)

    def split_eps(self, out: Tensor) -> Tensor:
        """The eps prediction (first C channels) of an output (B, C_out, H, W)."""
        return out[:, : self.config.in_channels]  # (B, C, H, W)

    def _check_latent(self, x: Tensor, t: Tensor) -> Tensor:
        expected = (self.config.in_channels, *self.config.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"latent must be (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])  # (B,)
        if t.shape != (x.shape[0],):
            raise ValueError(f"timestep must be a scalar or (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        return t

    def _side_interpolate(self, x: Tensor, c: Tensor, ids_restore: Tensor, mask: Tensor,
                          temporal: Tensor | None) -> Tensor:
        """MDT's side interpolator: fill masked positions with mask tokens, predict them with the side block."""
        b, n_keep, d = x.shape
        n = ids_restore.shape[1]
        mask_tokens = self.mask_token.to(x.dtype).expand(b, n - n_keep, d)  # (B, N - L_keep, D)
        x = torch.cat([x, mask_tokens], dim=1)  # (B, N, D) in shuffled order
        x = torch.gather(x, 1, ids_restore[:, :, None].expand(b, n, d))  # (B, N, D) in grid order
        x = x + self.decoder_pos_embed
        if temporal is not None:
            x = x + temporal
        before = x
        for block in self.sideblocks:
            x = block(x, c)
        masked = mask[:, :, None].bool()  # (B, N, 1)
        return torch.where(masked, x, before)  # masked shortcut: side output only where masked

    def _run(self, x: Tensor, c: Tensor, masking: tuple[Tensor, Tensor, Tensor] | None,
             temporal: Tensor | None = None) -> Tensor:
        """Backbone: patchify, encoder (on kept tokens if masking), boundary, decoder, head, unpatchify.

        temporal: the per-token video term (B, N, D) of `temporal_condition`, added to the input tokens and again
        at the encoder/decoder boundary (where masked positions get their first view of it)."""
        tokens = self.x_embedder(x) + self.pos_embed  # (B, N, D)
        if temporal is not None:
            tokens = tokens + temporal
        ids_keep = None
        if masking is not None:
            ids_keep, ids_restore, mask = masking
            b, _, d = tokens.shape
            tokens = torch.gather(tokens, 1, ids_keep[:, :, None].expand(b, ids_keep.shape[1], d))  # (B, L_keep, D)
        n_encoder = self.config.depth - self.config.decode_layer
        for block in self.blocks[:n_encoder]:
            tokens = block(tokens, c, ids_keep)
        if masking is not None:
            tokens = self._side_interpolate(tokens, c, ids_restore, mask, temporal)  # (B, N, D)
        else:
            tokens = tokens + self.decoder_pos_embed  # (B, N, D)
            if temporal is not None:
                tokens = tokens + temporal
        for block in self.blocks[n_encoder:]:
            tokens = block(tokens, c)
        return self.unpatchify(self.final_layer(tokens, c))  # (B, C_out, H, W)

    # ---- entry points ------------------------------------------------------------------------------------------
    def forward_with_condition(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """Inference pass: latent (B, C, H, W), timestep (B,) float, encoded condition y (B, *condition_shape)
        -> (B, C_out, H, W).

        The null (unconditional) condition is y = 0, so c = t_emb (and no temporal term).
        """
        t = self._check_latent(x, t)
        c, temporal = self._split_condition(t, y)
        return self._run(x, c, None, temporal)

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        video_feats: Tensor,
        *,
        hits: Tensor | None = None,
        keep: Tensor | None = None,
        drop_prob: float = 0.0,
        enable_mask: bool = False,
        mask_ratio: float | None = None,
        generator: torch.Generator | None = None,
        mask_kind: str = "tam",
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Training pass. Returns the output (B, C_out, H, W), and with `enable_mask` also the TAM mask (B, N).

        hits: the hit track (B, lines, hit_slots) of a hit-aware denoiser (None: no hits).
        keep: per-sample condition-keep mask (B,) of 0/1; if None it is drawn Bernoulli(1 - drop_prob); a dropped
            condition drops the video and the hits together.
        enable_mask: apply TAM with `mask_ratio` (default: the config's) and run the side interpolator.
        mask_kind: "tam" (MDSGen), or the ablation's "fam" / "sam" (`token_mask`).
        generator: optional RNG for the keep draw and the TAM draw (on x's device).
        """
        t = self._check_latent(x, t)
        y = self.encode_condition(video_feats, hits)  # (B, *condition_shape)
        if keep is None:
            if drop_prob > 0.0:
                keep = torch.rand(x.shape[0], generator=generator, device=x.device) >= drop_prob  # (B,)
            else:
                keep = torch.ones(x.shape[0], device=x.device)  # (B,)
        y = y * keep.to(y.dtype).reshape(-1, *[1] * (y.ndim - 1))  # (B, *condition_shape)
        c, temporal = self._split_condition(t, y)
        if not enable_mask:
            return self._run(x, c, None, temporal)
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        if ratio is None:
            raise ValueError("enable_mask needs a mask_ratio (the config has none)")
        masking = token_mask(
            mask_kind, x.shape[0], self.config.grid, self.config.time_axis, ratio, generator, device=x.device
        )
        return self._run(x, c, masking, temporal), masking[2]


MASK_KINDS = ("tam", "fam", "sam")


def token_mask(
    kind: str,
    batch: int,
    grid: tuple[int, int],
    time_axis: TimeAxis,
    ratio: float,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The masks of the paper's ablation (Table 5), all keeping the same number of tokens where the grid allows:

    tam  temporal-aware: whole time lines (`temporal_aware_mask`, MDSGen's choice)
    fam  frequency-aware: whole frequency lines (the other grid axis)
    sam  spatial/random: single tokens drawn uniformly (MDT's mask)

    Same return convention as `temporal_aware_mask`.
    """
    if kind == "tam":
        return temporal_aware_mask(batch, grid, time_axis, ratio, generator, device=device)
    if kind == "fam":
        other: TimeAxis = "col" if time_axis == "row" else "row"
        return temporal_aware_mask(batch, grid, other, ratio, generator, device=device)
    if kind != "sam":
        raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    n = grid[0] * grid[1]
    n_keep = int(n * (1.0 - ratio))
    noise = torch.rand(batch, n, generator=generator, device=device)  # (B, N)
    ids_shuffle = torch.argsort(noise, dim=1)  # (B, N), kept tokens first
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :n_keep]
    mask = torch.ones(batch, n, device=noise.device)
    mask.scatter_(1, ids_keep, 0.0)
    return ids_keep, ids_restore, mask


# ---------------------------------------------------------------------------------------------------------------
# Building and counting (the presets: engine.nn.presets)
# ---------------------------------------------------------------------------------------------------------------
_TRAINING_ONLY_PREFIXES = ("sideblocks.", "mask_token")


def build_denoiser(spec: SegmentSpec, preset: str, **overrides: Any) -> MDSGen:
    """An `MDSGen` for a segment spec and a preset name of `PRESETS`; `overrides` replace any config field."""
    return MDSGen(config=DenoiserConfig.from_spec(spec, preset, **overrides))


def count_parameters(model: nn.Module, *, inference_only: bool = True) -> int:
    """Parameter count; `inference_only` leaves out the side block and mask token. Buffers never count."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not (inference_only and name.startswith(_TRAINING_ONLY_PREFIXES))
    )


def preset_parameter_counts(spec: SegmentSpec) -> dict[str, tuple[int, int]]:
    """{preset: (inference-only, total)} for a spec, built on the meta device (no memory, no init cost)."""
    counts: dict[str, tuple[int, int]] = {}
    for name in PRESETS:
        with torch.device("meta"):
            model = build_denoiser(spec, name)
        counts[name] = (count_parameters(model), count_parameters(model, inference_only=False))
    return counts
