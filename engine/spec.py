"""The segment spec: the single source of truth for clip length, mel front-end, video rate and latent shape.

Every other module (audio front-end, video reader, models, exporter, runtime, app) derives its sizes from a
`SegmentSpec`. A bundle stores the spec it was trained with in its manifest, and the engine checks it on load.

Three specs exist:
- `DIFF_FOLEY` (the paper's setting): 16 kHz, 131072 samples = 8.192 s, Diff-Foley's 128-band
  mel (n_fft 1024, hop 256, 125-7600 Hz, Slaney, [-80, 20] dB -> [0, 1]) as a 128x512 image, 32 frames at
  4 fps, latent 4x16x64 with time on the column axis (8x32 token grid).
- `FOLEY_16K` (our models from `foley-16k` on): `DIFF_FOLEY` with the mel over the whole 0-8000 Hz band. The
  paper's 125 Hz floor is what cost the timbre: on the source recordings, the true phase on the 125-7600 Hz mel
  keeps 40 % category accuracy (real audio 56 %), on the 0-7600 Hz mel 58 %, and Griffin-Lim from the 0-8000 Hz mel
  56 % (FAD 139 vs 121 for the real audio, 203 for Griffin-Lim from the paper's mel); `python -m
  training.vocoder_levers --ceilings`, docs/results.md "The mel front-end".
- `AUDIOLDM` (the public MDSGen release): 16 kHz, 130560 samples = 8.16 s, AudioLDM's 64-band log mel
  (hop 160, 0-8000 Hz), latent 8x204x16 with time on the row axis (102x8 token grid).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

MelKind = Literal["diff-foley", "audioldm"]
TimeAxis = Literal["row", "col"]


@dataclass(frozen=True)
class SegmentSpec:
    """Sizes of one generated segment. Frozen; validated on construction."""

    name: str = "diff-foley"
    sample_rate: int = 16_000
    num_samples: int = 131_072
    # mel front-end
    mel_kind: MelKind = "diff-foley"
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 125.0
    fmax: float = 7600.0
    # video
    video_fps: float = 4.0
    num_frames: int = 32
    feature_dim: int = 512
    # latent (C, H, W) and which latent axis is time
    latent_channels: int = 4
    latent_height: int = 16
    latent_width: int = 64
    time_axis: TimeAxis = "col"
    patch_size: int = 2

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.num_samples <= 0:
            raise ValueError(f"sample_rate and num_samples must be positive: {self.sample_rate}, {self.num_samples}")
        if self.num_samples % self.hop_length:
            raise ValueError(f"num_samples {self.num_samples} is not a multiple of hop_length {self.hop_length}")
        if self.mel_kind not in ("diff-foley", "audioldm"):
            raise ValueError(f"unknown mel_kind {self.mel_kind!r}")
        if self.time_axis not in ("row", "col"):
            raise ValueError(f"time_axis must be 'row' or 'col', got {self.time_axis!r}")
        if self.latent_height % self.patch_size or self.latent_width % self.patch_size:
            raise ValueError(f"latent {self.latent_shape} is not divisible by patch size {self.patch_size}")
        # the mel image must map onto the latent by one spatial factor
        mh, mw = self.mel_image_shape
        if mh % self.latent_height or mw % self.latent_width or mh // self.latent_height != mw // self.latent_width:
            raise ValueError(f"mel image {self.mel_image_shape} does not map onto latent {self.latent_shape}")
        if round(self.duration * self.video_fps) < self.num_frames:
            raise ValueError(f"{self.num_frames} frames at {self.video_fps} fps do not fit in {self.duration:.3f} s")

    # ---- derived sizes -------------------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        """Segment length in seconds (8.192 for DIFF_FOLEY)."""
        return self.num_samples / self.sample_rate

    @property
    def mel_frames(self) -> int:
        """Mel frames kept per segment (512 for DIFF_FOLEY; the centred STFT's extra frame is dropped)."""
        return self.num_samples // self.hop_length

    @property
    def mel_image_shape(self) -> tuple[int, int]:
        """(H, W) of the mel image the VAE sees: (mels, frames) if time is the column axis, else (frames, mels)."""
        if self.time_axis == "col":
            return (self.n_mels, self.mel_frames)
        return (self.mel_frames, self.n_mels)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_height, self.latent_width)

    @property
    def vae_downsample(self) -> int:
        return self.mel_image_shape[0] // self.latent_height

    @property
    def token_grid(self) -> tuple[int, int]:
        """(rows, cols) of the transformer's token grid."""
        return (self.latent_height // self.patch_size, self.latent_width // self.patch_size)

    @property
    def num_tokens(self) -> int:
        r, c = self.token_grid
        return r * c

    @property
    def frame_times(self) -> tuple[float, ...]:
        """Times (s, from the segment start) of the video frames the model sees."""
        return tuple(k / self.video_fps for k in range(self.num_frames))

    # ---- (de)serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown segment-spec fields {sorted(unknown)}")
        return cls(**d)

    def fingerprint(self) -> str:
        """A short stable digest of every field; bundles record it so a mismatch is caught on load."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


DIFF_FOLEY = SegmentSpec()

AUDIOLDM = SegmentSpec(
    name="audioldm",
    num_samples=130_560,
    mel_kind="audioldm",
    hop_length=160,
    n_mels=64,
    fmin=0.0,
    fmax=8000.0,
    latent_channels=8,
    latent_height=204,
    latent_width=16,
    time_axis="row",
)

FOLEY_16K = SegmentSpec(name="foley-16k", fmin=0.0, fmax=8000.0)

SPECS: dict[str, SegmentSpec] = {s.name: s for s in (DIFF_FOLEY, FOLEY_16K, AUDIOLDM)}


@dataclass(frozen=True)
class DiffusionSchedule:
    """The discrete DDPM noise schedule the denoiser was trained with (MDSGen: linear 1e-4 .. 0.02, 1000 steps)."""

    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: Literal["linear"] = "linear"

    def __post_init__(self) -> None:
        if self.beta_schedule != "linear":
            raise ValueError(f"only the 'linear' beta schedule is supported, got {self.beta_schedule!r}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: the sampler settings a user picks by name (`foley generate --quality`, the editor's Preferences): "final" is the
#: bundle's own sampler; "draft" is for auditioning ideas fast and costs a little quality (docs/results.md, "Speed
#: levers": 15 steps with guidance on the EDM2 interval, 0.44x the denoiser's work of MDSGen's sampler; onsets -1.3
#: points, family -4, FAD +1.6 on the shipped model). Explicit steps/solver_order/guidance_interval win.
EDM2_GUIDANCE_INTERVAL = (0.28, 5.42)  # Kynkäänniemi et al. 2024's interval of σ/α: the shipped model's default

QUALITIES: dict[str, dict[str, Any]] = {
    "final": {},
    "draft": {"steps": 15, "guidance_interval": list(EDM2_GUIDANCE_INTERVAL)},
}


@dataclass(frozen=True)
class SamplerConfig:
    """How one generation samples: DPM-Solver++(2M) steps, dynamic CFG, candidates and seed."""

    steps: int = 25
    guidance: float = 5.0
    guidance_power: float = 0.01
    candidates: int = 4
    seed: int = 0
    guidance_interval: tuple[float, float] | None = None  # EDM noise levels (lo, hi] where CFG applies; None: all
    solver_order: int = 2  # DPM-Solver++(2M), MDSGen's; 3: DPM-Solver++(3M)

    def __post_init__(self) -> None:
        from engine.errors import InvalidRequestError

        if not 1 <= self.steps <= 1000:
            raise InvalidRequestError(f"steps must be between 1 and 1000, got {self.steps}")
        if not 1 <= self.candidates <= 64:
            raise InvalidRequestError(f"candidates must be between 1 and 64, got {self.candidates}")
        if not 0.0 <= self.guidance <= 50.0:
            raise InvalidRequestError(f"guidance must be between 0 and 50 (1 = no guidance), got {self.guidance}")
        if self.guidance_power <= 0:
            raise InvalidRequestError(f"guidance_power must be positive, got {self.guidance_power}")
        gi = self.guidance_interval
        if gi is not None and not (len(gi) == 2 and 0.0 <= float(gi[0]) < float(gi[1])):
            raise InvalidRequestError(f"guidance_interval must be two noise levels 0 <= lo < hi, got {gi}")
        if self.solver_order not in (2, 3):
            raise InvalidRequestError(f"solver_order must be 2 or 3, got {self.solver_order}")
        if not 0 <= self.seed < 2**63:
            raise InvalidRequestError(f"seed must be a non-negative 64-bit integer, got {self.seed}")

    def candidate_seeds(self) -> list[int]:
        """Each candidate draws its own initial noise from seed + k, so one candidate can be regenerated alone."""
        return [self.seed + k for k in range(self.candidates)]
