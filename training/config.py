"""Training configuration: one dataclass tree, loaded from `training/configs/*.yaml` plus dotted `--set` overrides.

A YAML file may name a parent with `inherit: <name>` (another file of `training/configs/`, or a path); its values
are merged over the parent's, recursively. Every key is checked against the dataclasses (an unknown key or a value
of the wrong type is an error that names the key), so a typo never trains silently with a default. The resolved
config is written to the run folder (`config.yaml`) and embedded in the exported bundle's manifest.

Each stage's outputs carry a digest of the parts of the config they depend on (`stage_digest`), so that a rerun with
a changed config does not silently reuse a stage trained with another one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from engine.spec import SamplerConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
STAGES = ("vae", "vocoder", "projection", "denoiser", "detector", "bwe", "export", "evaluate")


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the key."""


# ---------------------------------------------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule of one stage."""

    name: Literal["adan", "adamw"] = "adamw"
    lr: float = 1e-4
    betas: list[float] | None = None  # None: the optimiser's defaults (Adan 0.98/0.92/0.99, AdamW 0.9/0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8
    warmup_steps: int = 0  # linear warm-up from 0
    schedule: Literal["constant", "cosine"] = "constant"  # after warm-up; cosine decays to min_lr_ratio * lr
    min_lr_ratio: float = 0.1
    grad_clip: float = 0.0  # global-norm clip; 0 = off


@dataclass
class LoopConfig:
    """How long a stage trains and how often it logs, validates and checkpoints."""

    steps: int = 1000
    batch_size: int = 8  # global (all ranks together)
    log_every: int = 10
    val_every: int = 250  # 0: only at the end
    ckpt_every: int = 250
    keep_ckpts: int = 2


@dataclass
class DataConfig:
    """Where clips come from and how they are cut, checked, split and cached."""

    inputs: list[str] = field(default_factory=list)  # folders (searched recursively) and/or list files
    synthetic_clips: int = 0  # > 0 and no inputs: generate this many synthetic clips (training.synthetic)
    synthetic_sources: int = 0  # distinct "source videos" among them (0: one per clip)
    synthetic_seconds: float = 10.0
    cache_dir: str | None = None  # default: <run>/cache
    extensions: list[str] = field(default_factory=lambda: [
        ".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".flv", ".wmv", ".3gp",
    ])
    chunk_seconds: float = 10.0  # long videos are cut into clips of this length (VGGSound clips are 10 s)
    min_seconds: float | None = None  # shorter clips are skipped; default: the segment length (8.192 s)
    silence_dbfs: float = -60.0  # clips whose RMS is below this are skipped as silent
    workers: int = 2  # preprocessing processes (1: in this process)
    val_fraction: float = 0.1  # used when no splits.json is given; split by source video
    test_fraction: float = 0.1
    split_seed: int = 0
    crop_stride: float = 0.5  # s between the segment crops whose latents are cached (multiple of 1/video_fps)
    max_clips: int = 0  # 0: all; else the first N clips in path order (smoke runs)


@dataclass
class VAEStageConfig:
    """Stage 1: the mel VAE (diffusers AutoencoderKL), reconstruction + KL + spectral losses."""

    block_out_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    layers_per_block: int = 1
    norm_num_groups: int = 32
    crop_frames: int = 128  # mel frames per training crop (the VAE is convolutional; full width at validation)
    kl_weight: float = 1e-6
    spectral_weight: float = 0.5  # spectral convergence on linear magnitudes + L1 of time and frequency differences
    # warm start: an earlier VAE's vae.safetensors of the same shape (e.g. a bundle's, for a new mel front-end)
    init_from: str | None = None
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=2e-4, warmup_steps=100))
    val_clips: int = 16


@dataclass
class VocoderStageConfig:
    """Stage 2: a Vocos-style vocoder (mel -> 16 kHz) with multi-resolution STFT, mel and adversarial losses."""

    dim: int = 192
    intermediate_dim: int = 576
    num_layers: int = 6
    segment_frames: int = 64  # mel frames per training crop (64 x 256 samples = 1.02 s)
    mel_weight: float = 45.0
    stft_weight: float = 1.0
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    adv_start: int = 0  # step from which the discriminators train and the adversarial losses count
    disc_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    disc_ffts: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    disc_channels: int = 16
    use: Literal["auto", "neural", "griffin-lim"] = "auto"  # auto: the neural vocoder only if it beats Griffin-Lim
    griffin_lim_iters: int = 32
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=5e-4, betas=[0.8, 0.99]))
    disc_optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=5e-4, betas=[0.8, 0.99]))
    val_clips: int = 8


@dataclass
class ProjectionStageConfig:
    """Stage 3: the video projection head, contrastive against the audio (CAVP-style)."""

    temporal_kernel: int = 3  # the projection's temporal conv (its width is the spec's feature_dim, 512)
    window_frames: int = 16  # 4 s at 4 fps, as CAVP
    windows_per_video: int = 3  # temporal contrast: windows of one video ...
    min_shift_frames: int = 8  # ... at least this far apart (2 s)
    temporal_weight: float = 1.0
    audio_channels: int = 256  # the training-only audio tower
    init_logit_scale: float = 14.285714  # 1 / 0.07
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=8e-4, warmup_steps=50,
                                                                   weight_decay=0.01))


@dataclass
class DenoiserStageConfig:
    """Stage 4: MDSGen. Loss = unmasked eps-MSE + mask_weight * masked eps-MSE, each plus the learned-variance term."""

    preset: str = "T"
    overrides: dict[str, Any] = field(default_factory=dict)  # any DenoiserConfig field (depth, hidden_size, ...)
    mask_ratio: float = 0.3
    mask_weight: float = 1.0  # lambda
    mask_kind: str = "tam"  # tam (MDSGen) | fam | sam | none: the paper's masking ablation (training.ablation)
    vb_weight: float = 1.0  # the learned-variance (VLB) term; 0 drops it
    min_snr_gamma: float | None = None  # None: plain eps-MSE (MDT v1); 5.0: the shipped gaussian_diffusion.py
    drop_prob: float = 0.1  # condition drop for classifier-free guidance
    sample_posterior: bool = True  # draw the latent from the VAE posterior (else its mean)
    ema_decay: float = 0.9999
    ema_warmup: bool = True  # decay_t = min(decay, (1 + t) / (10 + t)), so short runs get a useful EMA
    sample_steps: int = 25  # DPM-Solver steps for the sample PNGs
    # warm start: the denoiser.safetensors (EMA weights) of an earlier run; parameters this config adds (the
    # zero-initialised temporal_feat of overrides.temporal_condition) keep their init, anything else must match
    init_from: str | None = None
    # hits (overrides.hit_slots > 0): the training track is the clip's ground-truth onsets (the placed recordings'
    # onset samples), each moved by N(0, hit_jitter) s; the hit projection trains at hit_lr_mult x lr, no decay
    hit_jitter: float = 0.032
    hit_lr_mult: float = 10.0
    # with this probability a sample's video features come from another moment of the same clip (up to
    # video_shift_max s away) while the hits and the audio stay: timing has to come from the hits, content from
    # the video (so that a moved hit moves its sound whatever the picture shows)
    video_shift_prob: float = 0.0
    video_shift_max: float = 1.0
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adan", lr=5e-4, weight_decay=0.02))


@dataclass
class DetectorStageConfig:
    """Stage "detector": the hit detector (engine.nn.hit_detector) on motion features (engine.motion) of segment
    crops, against the clips' annotated onsets. Needs no other stage."""

    preset: str = "small"  # engine.nn.hit_detector.HIT_DETECTOR_PRESETS
    overrides: dict[str, Any] = field(default_factory=dict)  # any HitDetectorConfig field (channels, dilations, ...)
    slots: int = 0  # slots per segment; 0: the spec's time lines x engine.hits.DEFAULT_SLOTS (256 of 32 ms)
    label_sigma: float = 1.0  # slots: the target is a Gaussian of this width around each onset's slot (peak 1)
    pos_weight: float = 10.0  # BCE weight of the positive term (about 1 slot in 35 holds an onset in our data)
    tolerance: float = 0.1  # s: a detected hit this close to a true one counts (validation, threshold calibration)
    min_distance: float = 0.1  # s between two detected hits
    max_train_clips: int = 0  # 0: every train clip with annotations
    val_clips: int = 100  # val clips (two segment crops each: the first and the last) for validation + calibration
    # torch threads while the stage runs (0: runtime.threads). The model is tiny: a step of batch 32 took 0.06 s on
    # 1 thread and 1.5 s on 2 (measured on the busy 2-core machine, 2026-12-02)
    threads: int = 1
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=1500, batch_size=32, val_every=500,
                                                                ckpt_every=500))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=2e-3, warmup_steps=50,
                                                                   weight_decay=0.01, schedule="cosine"))


@dataclass
class BweStageConfig:
    """Stage "bwe": the 16 -> 48 kHz bandwidth extension (engine.bwe, engine.nn.bwe) on full-band recordings (44.1 kHz
    or more; the clips' own audio is 16 kHz). Needs no other stage; skipped (logged, no extension in the bundle) when
    it finds no full-band recording, or is disabled."""

    enabled: bool = True
    # the Foley dataset's source recordings (training.datasets: <cache>/extracted/*/catalogue.json), split by source
    # recording exactly as the dataset builder splits them, so no test recording is trained on
    catalogue: bool = False
    cache: str = ""  # the dataset download cache; "" = training.datasets.sources.default_cache_dir()
    recordings: list[str] = field(default_factory=list)  # more folders/files of full-band audio (split by hash)
    min_rate: int = 44_100  # Hz: files recorded below this have no high band to learn from
    channels: int = 96  # the network's width (96 beat 192 at equal wall time: docs/results.md)
    lr: float = 1.0e-3
    batch_size: int = 32
    minutes: float = 9.0  # wall-time budget (0: by steps only)
    steps: int = 0  # step budget (0: by minutes only); both given: the first reached
    val_every: int = 100  # steps between validations (logged; the last weights are kept: docs/results.md)
    # the 16 kHz inputs trained on (training.bwe.INPUTS): "real" (the recording at 16 kHz) and/or "griffin-lim" (that
    # through the mel and Griffin-Lim, what the engine's vocoder gives the extension)
    inputs: list[str] = field(default_factory=lambda: ["real"])
    threads: int = 0  # torch threads while the stage runs (0: runtime.threads)


@dataclass
class ExportConfig:
    name: str = ""  # bundle name; default: the run name
    description: str = ""
    onnx: bool = True  # add the ONNX graphs (engine.nn.export.export_onnx)
    onnx_precisions: list[str] = field(default_factory=lambda: ["fp32", "int8"])
    sampler_steps: int = SamplerConfig.steps
    guidance: float = SamplerConfig.guidance


@dataclass
class EvalConfig:
    max_clips: int = 50
    candidates: int = 1
    steps: int = SamplerConfig.steps
    guidance: float = SamplerConfig.guidance
    # guidance only where the noise level sigma/alpha is in (lo, hi] (issue #17's lever; e.g. [0.28, 5.42]); "all"
    # (or []) for every step (MDSGen's sampler); "default": the bundle's sampler default
    guidance_interval: list[float] | Literal["default", "all"] = "default"
    solver_order: int = SamplerConfig.solver_order  # DPM-Solver++(2M); 3: (3M)
    tolerances: list[float] = field(default_factory=lambda: [0.1, 0.3])
    write_audio: int = 4  # write this many generated WAVs next to the metrics
    backend: str = "auto"  # the engine backend to generate with (auto: ONNX Runtime when the bundle has graphs)
    precision: str = "auto"  # the ONNX denoiser graph: auto (the bundle's runtime default), fp32 or int8
    metrics: list[str] = field(default_factory=lambda: ["onset", "mel"])  # + any name in evaluate.METRICS
    # vocoded: the real mel through the bundle's vocoder; reconstruction: through its VAE + vocoder; shuffled: audio
    # generated for another clip
    controls: list[str] = field(default_factory=lambda: ["vocoded", "reconstruction", "shuffled"])
    #   with a hit-aware bundle also: gt_hits (generated with the annotated onsets as hits), no_hits (with none)
    alignment_steps: int = 1500  # training steps of the alignment classifier ("alignment" metric)
    # the hits of the "generated" condition (and of "shuffled", from its own clip): auto (the bundle's detector, what
    # a user gets), truth (the annotated onsets) or none
    hits: str = "auto"
    # the "shift" metric: every annotated hit moved by each of these seconds, same initial noise
    shifts: list[float] = field(default_factory=lambda: [-0.5, -0.25, 0.25, 0.5])
    shift_clips: int = 50  # clips of the shift test (the first ones evaluated)


@dataclass
class RuntimeConfig:
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0: torch's default
    bf16: bool = False  # bf16 autocast for forward passes (CPU with AVX-512 bf16, or CUDA)
    device: str = "auto"  # auto | cpu | cuda
    dist_backend: str = "auto"  # auto: nccl on CUDA, gloo on the CPU


@dataclass
class TrainConfig:
    """The whole training run."""

    name: str = "run"
    description: str = ""
    spec: str = "diff-foley"
    # levers on the latent: fields of the spec replaced (e.g. {latent_channels: 8}); the spec keeps its name and the
    # feature cache is shared (only the mel and video fields decide what preprocessing writes)
    spec_overrides: dict[str, Any] = field(default_factory=dict)
    runs_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    vae: VAEStageConfig = field(default_factory=VAEStageConfig)
    vocoder: VocoderStageConfig = field(default_factory=VocoderStageConfig)
    projection: ProjectionStageConfig = field(default_factory=ProjectionStageConfig)
    denoiser: DenoiserStageConfig = field(default_factory=DenoiserStageConfig)
    detector: DetectorStageConfig = field(default_factory=DetectorStageConfig)
    bwe: BweStageConfig = field(default_factory=BweStageConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# Typed construction from plain dicts
# ---------------------------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp` (converting int -> float and list -> tuple where harmless)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: None is not allowed (expected {_type_name(tp)})")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp!r}")


def from_dict(cls: type, d: dict[str, Any], *, prefix: str = "") -> Any:
    """Build dataclass `cls` from a (partial) dict; missing keys keep their defaults, unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {[prefix + u for u in unknown]}; known: {sorted(names)}")
    obj = cls()
    for k, v in d.items():
        cur = getattr(obj, k)
        if dataclasses.is_dataclass(cur) and isinstance(v, dict):
            # a partial mapping merges into the default sub-config
            merged = _merge(dataclasses.asdict(cur), v)
            setattr(obj, k, from_dict(type(cur), merged, prefix=f"{prefix}{k}."))
        else:
            setattr(obj, k, _coerce(v, hints[k], prefix + k))
    return obj


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: `over` wins; nested mappings merge (except free-form ones replaced whole by None)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------------------------
# YAML and overrides
# ---------------------------------------------------------------------------------------------------------------
def _resolve_path(name: str, relative_to: Path | None = None) -> Path:
    p = Path(name)
    candidates = [p] if p.suffix in (".yaml", ".yml") else []
    if relative_to is not None:
        candidates.append(relative_to / (name if p.suffix else f"{name}.yaml"))
    candidates += [CONFIG_DIR / (name if p.suffix else f"{name}.yaml")]
    for c in candidates:
        if c.is_file():
            return c
    known = sorted(x.stem for x in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"no config {name!r}: give a YAML path or one of {known}")


def load_yaml_tree(name: str, *, _seen: tuple[Path, ...] = (), relative_to: Path | None = None) -> dict[str, Any]:
    """A config file as a dict, with `inherit:` parents merged underneath."""
    import yaml

    path = _resolve_path(name, relative_to).resolve()
    if path in _seen:
        raise ConfigError(f"config inheritance loops through {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping")
    parent = raw.pop("inherit", None)
    if parent:
        return _merge(load_yaml_tree(str(parent), _seen=(*_seen, path), relative_to=path.parent), raw)
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a", "b", "c"], YAML-parsed value)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, _, raw = text.partition("=")
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set {text!r} names no key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc})") from exc
    return keys, value


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a config dict (type-checked later by `from_dict`)."""
    tree = json.loads(json.dumps(tree))  # deep copy of plain data
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for k in keys[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: {k} is not a section")
            node = nxt
        node[keys[-1]] = value
    return tree


def load_config(name: str = "default", overrides: list[str] | None = None) -> TrainConfig:
    """Load `training/configs/<name>.yaml` (or a path), apply `--set` overrides, type-check, validate."""
    tree = apply_overrides(load_yaml_tree(name), overrides or [])
    # overrides of a dataclass-typed default must start from the defaults, so go through the full tree
    full = _merge(dataclasses.asdict(TrainConfig()), tree)
    cfg = from_dict(TrainConfig, full)
    validate(cfg)
    return cfg


LATENT_FIELDS = ("latent_channels", "latent_height", "latent_width", "time_axis", "patch_size")


def resolve_spec(cfg: TrainConfig) -> Any:
    """The run's SegmentSpec: `spec` with `spec_overrides` (latent fields only) applied. ConfigError otherwise."""
    from engine.spec import SPECS

    bad = sorted(set(cfg.spec_overrides) - set(LATENT_FIELDS))
    if bad:
        raise ConfigError(f"spec_overrides may change only {', '.join(LATENT_FIELDS)}, not {', '.join(bad)}")
    try:
        return dataclasses.replace(SPECS[cfg.spec], **cfg.spec_overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"spec_overrides {cfg.spec_overrides}: {exc}") from exc


def validate(cfg: TrainConfig) -> None:
    """Cross-field checks that the type checker cannot do."""
    from engine.spec import SPECS

    if cfg.spec not in SPECS:
        raise ConfigError(f"spec: {cfg.spec!r} is not one of {sorted(SPECS)}")
    spec = resolve_spec(cfg)
    for stage in ("vae", "vocoder", "projection", "denoiser", "detector"):
        loop: LoopConfig = getattr(cfg, stage).loop
        if loop.steps < 0 or loop.batch_size < 1 or loop.log_every < 1 or loop.ckpt_every < 1:
            raise ConfigError(f"{stage}.loop: steps >= 0, batch_size >= 1, log_every >= 1 and ckpt_every >= 1")
        if loop.keep_ckpts < 1:
            raise ConfigError(f"{stage}.loop.keep_ckpts must be >= 1")
    frame = 1.0 / spec.video_fps
    if cfg.data.crop_stride <= 0 or abs(round(cfg.data.crop_stride / frame) * frame - cfg.data.crop_stride) > 1e-9:
        raise ConfigError(f"data.crop_stride must be a positive multiple of 1/{spec.video_fps:g} s")
    if cfg.data.chunk_seconds < spec.duration:
        raise ConfigError(f"data.chunk_seconds must be at least the segment length {spec.duration:.3f} s")
    if cfg.vae.crop_frames % 8 or cfg.vae.crop_frames > spec.mel_frames:
        raise ConfigError(f"vae.crop_frames must be a multiple of 8 and at most {spec.mel_frames}")
    p = cfg.projection
    if p.window_frames > spec.num_frames or p.windows_per_video < 1:
        raise ConfigError(f"projection.window_frames must be <= {spec.num_frames}; windows_per_video >= 1")
    if cfg.denoiser.mask_kind not in ("tam", "fam", "sam", "none"):
        raise ConfigError(f"denoiser.mask_kind must be tam, fam, sam or none, got {cfg.denoiser.mask_kind!r}")
    if not 0 <= cfg.denoiser.drop_prob < 1 or not 0 <= cfg.denoiser.mask_ratio < 1:
        raise ConfigError("denoiser.drop_prob and denoiser.mask_ratio must be in [0, 1)")
    b = cfg.bwe
    if b.enabled and (b.minutes < 0 or b.steps < 0 or (b.minutes == 0 and b.steps == 0)):
        raise ConfigError("bwe: give a budget, bwe.minutes > 0 or bwe.steps > 0 (or bwe.enabled: false)")
    if b.channels < 1 or b.batch_size < 1 or b.val_every < 1 or b.lr <= 0:
        raise ConfigError("bwe: channels, batch_size and val_every must be >= 1 and lr > 0")
    if not b.inputs or any(k not in ("real", "griffin-lim") for k in b.inputs):
        raise ConfigError(f"bwe.inputs: one or both of real, griffin-lim; got {b.inputs}")


def to_yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None, width=120)


def digest(obj: Any) -> str:
    """A short stable digest of plain data (dataclasses are turned into dicts)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_digest(cfg: TrainConfig, stage: str) -> str:
    """What a stage's output depends on: the spec, the data, the seed and its own section (and its inputs')."""
    data = dataclasses.asdict(cfg.data)
    for k in ("workers", "cache_dir"):  # how preprocessing runs does not change what it produces
        data.pop(k)
    parts: dict[str, Any] = {"spec": cfg.spec, "data": data, "seed": cfg.runtime.seed, "bf16": cfg.runtime.bf16}
    if cfg.spec_overrides:  # only when set: the digests of earlier runs stay valid
        parts["spec_overrides"] = cfg.spec_overrides
    models = ["vae", "vocoder", "projection", "denoiser", "detector", "bwe"]
    deps = {"vae": ["vae"], "vocoder": ["vocoder"], "projection": ["projection"],
            "denoiser": ["vae", "projection", "denoiser"], "detector": ["detector"], "bwe": ["bwe"],
            "export": [*models, "export"], "evaluate": [*models, "export", "evaluate"]}  # the bundle of them all
    for d in deps.get(stage, []):
        section = dataclasses.asdict(getattr(cfg, d))
        if "loop" in section:
            section["loop"].pop("log_every", None)
        if d == "denoiser" and section.get("mask_kind") == "tam":
            section.pop("mask_kind")  # added later at its old behaviour: runs trained before it stay valid
        if d in ("denoiser", "vae") and section.get("init_from") is None:
            section.pop("init_from")  # likewise
        if d in ("detector", "bwe"):
            section.pop("threads")  # how it runs, not what it trains (as runtime.threads)
        if d == "bwe":
            section.pop("cache")  # where the recordings are, not which
        if d == "vocoder" and stage == "vocoder":
            section["use"] = "auto"  # the export's choice, not the trained weights' (its old value: runs stay valid)
        parts[d] = section
    return digest(parts)
