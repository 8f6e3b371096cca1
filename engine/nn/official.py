"""Import the public MDSGen release into a model bundle (`foley import-official`).

Three things a user downloads themselves (nothing is fetched here):

- `mdsgen_audioldm.pt`: the MDSGen-B checkpoint (VGGSound), a flat state dict of 177 tensors, loaded strictly
  into `build_denoiser(AUDIOLDM, "B")` (its layout: `shared/fixtures/mdsgen_b_audioldm_state_dict_layout.json`).
- a saved diffusers copy of `cvssp/audioldm-s-full-v2` (or its hub-cache folder): only `vae/` (AutoencoderKL,
  204 tensors) and `vocoder/` (SpeechT5HifiGan, 196 tensors) are used, each a `config.json` beside safetensors
  (preferred) or a pickled `.bin`.
- Diff-Foley's `cavp_epoch66.ckpt`: an open_clip training checkpoint whose `state_dict` holds the video branch
  (320 tensors under `video_encoder.` / `video_project_head.`, DDP prefix `module.`), the audio branch and more.

Every file is checked before anything is written: each expected key present, no unknown key, every shape and dtype
kind right, finite values, the relative-position index buffers equal to the ones the model rebuilds. A mismatch
raises `CheckpointLayoutError` naming the keys (and an extra or missing key prefix, when that is the cause). Pickles
are read with `torch.load(weights_only=True)`; full unpickling happens only with `trusted=True` (the user's
`--trust-pickle`). That reading and the layout check are `engine.nn.checkpoint` (nothing there knows this release);
here are the release's files, roles, configs and conversions. Then the weights are converted (the AudioLDM VAE's
pre-0.15 attention names `query/key/value/proj_attn` -> `to_q/to_k/to_v/to_out.0`; the CAVP wrapper and `module.`
prefix), loaded into our modules with `strict=True`, and saved as a bundle: safetensors per component and a manifest
with the AudioLDM segment spec, the release's sampler settings (50 DPM-Solver++ steps, guidance 5, power 0.01), the
decode convention (latent / 4: `VAEConfig.latent_scale = 4`, not the VAE's `scaling_factor`), and the sources with
their sha256 and licences. The ONNX graphs are exported into the bundle with parity checks
(`engine.nn.export.export_onnx`). The bundle appears at `out` only when all of it succeeded (it is built in a
temporary folder beside it and renamed).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from engine.errors import (
    CheckpointError,
    CheckpointLayoutError,
    CheckpointReadError,
    InvalidRequestError,
)
from engine.manifest import ModelManifest, load_manifest, sha256_file, write_manifest
from engine.nn import checkpoint
from engine.nn.bundle import component_from_module
from engine.nn.cavp import CAVPConfig, CAVPVideoEncoder
from engine.nn.checkpoint import (
    CHECK_THE_FILE,
    Layout,
    existing_file,
    find_weights_file,
    float_dtypes,
    keys_text,
    load_strict,
    module_layout,
    only_tensors,
    read_json_config,
    read_state_dict,
)
from engine.nn.denoiser import DenoiserConfig, MDSGen, relative_position_index
from engine.nn.hifigan import HiFiGAN, HiFiGANConfig
from engine.nn.vae import MelVAE, VAEConfig
from engine.spec import AUDIOLDM

log = logging.getLogger(__name__)

BUNDLE_NAME = "mdsgen-b-audioldm-vggsound"
#: The release decodes `vae.decode(latent / pipe.vae_scale_factor)`, and that factor is 4 (the VAE's spatial
#: down-sampling), not the VAE config's learned `scaling_factor` (0.939 for audioldm-s-full-v2).
AUDIOLDM_LATENT_DIVISOR = 4.0
#: MDSGen's `inference.py`: 50 DPM-Solver++(2M) steps, CFG 5 with the power-cosine schedule at p = 0.01.
RELEASE_SAMPLER = {"steps": 50, "guidance": 5.0, "guidance_power": 0.01}

#: Where each file comes from and under which terms (shown by `foley info` and the README).
SOURCES: dict[str, dict[str, str]] = {
    "mdsgen": {
        "what": "MDSGen-B checkpoint mdsgen_audioldm.pt (trained on VGGSound, AudioLDM latent)",
        "origin": "the Google Drive link in the README of github.com/triton99/MDSGen",
        "licence": "none stated: the MDSGen repository has no LICENSE file and the README names no terms for the "
                   "weights; treat them as research-only and ask the authors before any other use",
    },
    "audioldm_vae": {
        "what": "AudioLDM VAE (AutoencoderKL, vae/ of cvssp/audioldm-s-full-v2)",
        "origin": "huggingface.co/cvssp/audioldm-s-full-v2",
        "licence": "CC-BY-NC-SA-4.0 (the model card): non-commercial, share-alike, attribution",
    },
    "audioldm_vocoder": {
        "what": "AudioLDM HiFi-GAN vocoder (SpeechT5HifiGan, vocoder/ of cvssp/audioldm-s-full-v2)",
        "origin": "huggingface.co/cvssp/audioldm-s-full-v2",
        "licence": "CC-BY-NC-SA-4.0 (the model card): non-commercial, share-alike, attribution",
    },
    "cavp": {
        "what": "Diff-Foley CAVP video encoder cavp_epoch66.ckpt (SlowOnly ResNet3d-50 + projection; only the "
                "video branch is imported)",
        "origin": "diff_foley_ckpt/ of huggingface.co/SimianLuo/Diff-Foley",
        "licence": "MIT (the model card)",
    },
}
LICENCE_SUMMARY = (
    "NON-COMMERCIAL use only: the AudioLDM VAE and vocoder are CC-BY-NC-SA-4.0, and the MDSGen checkpoint comes "
    "with no stated licence (research use; ask its authors). CAVP is MIT. This project's code is Apache-2.0."
)

Progress = Callable[[str], None]


# ---------------------------------------------------------------------------------------------------------------
# The models the release needs, and their state-dict layouts (computed on the meta device: no memory, no init)
# ---------------------------------------------------------------------------------------------------------------
def denoiser_config() -> DenoiserConfig:
    """MDSGen-B on the AudioLDM latent 8x204x16 (102 x 8 tokens, time on rows), as `MDSGen_B_2(decode_layer=4)`."""
    return DenoiserConfig.from_spec(AUDIOLDM, "B", mask_ratio=None)


def vae_config() -> VAEConfig:
    """The AudioLDM-s-full-v2 VAE as our `MelVAE`: mono mel image (816 x 64), latent 8 x 204 x 16, decode z / 4."""
    return VAEConfig(channel_mode="mono", latent_channels=8, block_out_channels=(128, 256, 512), layers_per_block=2,
                     norm_num_groups=32, latent_scale=AUDIOLDM_LATENT_DIVISOR)


def vocoder_config(**overrides: Any) -> HiFiGANConfig:
    return HiFiGANConfig(**overrides)


def cavp_config() -> CAVPConfig:
    return CAVPConfig()


def expected_layouts() -> dict[str, Layout]:
    """The layouts of the four public files, in their own key names (what the fixtures list)."""
    with torch.device("meta"):
        return {
            "mdsgen": module_layout(MDSGen(config=denoiser_config())),
            "audioldm_vae": module_layout(MelVAE(config=vae_config()), strip="vae."),
            "audioldm_vocoder": module_layout(HiFiGAN(config=vocoder_config())),
            "cavp": module_layout(CAVPVideoEncoder(config=cavp_config())),
        }


# ---------------------------------------------------------------------------------------------------------------
# Reading and checking files (engine.nn.checkpoint), with each role's description and where to get it again
# ---------------------------------------------------------------------------------------------------------------
def _describe(role: str) -> str:
    return SOURCES[role]["what"] if role in SOURCES else role


def _redownload(role: str) -> str:
    return f"Download it again ({SOURCES[role]['origin']})." if role in SOURCES else CHECK_THE_FILE


def _existing_file(path: str | os.PathLike[str], role: str, flag: str) -> Path:
    return existing_file(path, flag=flag, what=_describe(role))


def read_pickle_checkpoint(path: Path, *, role: str, trusted: bool = False) -> Any:
    """`engine.nn.checkpoint.read_pickle_checkpoint`, its errors ending with where to download `role` again."""
    return checkpoint.read_pickle_checkpoint(path, trusted=trusted, advice=_redownload(role))


def check_layout(
    state: Mapping[str, Any], layout: Layout, *, role: str, path: Path | str, fix: str, check_values: bool = True,
) -> None:
    """`engine.nn.checkpoint.check_layout` for one of the `SOURCES` roles (the error names what `role` is)."""
    checkpoint.check_layout(state, layout, what=_describe(role), path=path, fix=fix, check_values=check_values)


# ---------------------------------------------------------------------------------------------------------------
# The four sources: read, unwrap, check, convert (all before any module is built)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Source:
    """One checked input: its state dict in our module's key names, and what was done to get it."""

    role: str
    files: list[Path]
    state: dict[str, Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        files = [{"name": p.name, "path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in self.files]
        return {**SOURCES[self.role], "files": files, "stored_dtypes": self.dtypes, "conversion": self.notes}


MDSGEN_WRAPPERS = ("ema", "model", "state_dict", "module", "net")


def load_mdsgen(path: str | os.PathLike[str], layout: Layout, *, trusted: bool = False,
                strip_prefixes: Iterable[str] = ()) -> Source:
    """Read and check `mdsgen_audioldm.pt` (a flat state dict; a wrapper dict is unwrapped and reported)."""
    p = _existing_file(path, "mdsgen", "--mdsgen")
    return mdsgen_source(read_pickle_checkpoint(p, role="mdsgen", trusted=trusted), p, layout,
                         strip_prefixes=strip_prefixes)


def mdsgen_source(obj: Any, p: Path, layout: Layout, *, strip_prefixes: Iterable[str] = ()) -> Source:
    """Unwrap and check the loaded MDSGen checkpoint object `obj` (read from `p`)."""
    notes: list[str] = []
    if not isinstance(obj, Mapping):
        raise CheckpointLayoutError(
            f"{p} holds a {type(obj).__name__}, not a state dict: it is not mdsgen_audioldm.pt. {_redownload('mdsgen')}"
        )
    if not only_tensors(obj):
        inner = [k for k in MDSGEN_WRAPPERS if isinstance(obj.get(k), Mapping) and only_tensors(obj[k])]
        if not inner:
            raise CheckpointLayoutError(
                f"{p} is a dict whose top-level keys are {keys_text(list(obj))}, with no state dict of tensors under "
                f"any of {list(MDSGEN_WRAPPERS)}: it is not mdsgen_audioldm.pt (a flat state dict). "
                f"{_redownload('mdsgen')}"
            )
        notes.append(f"the file wraps its weights; used the {inner[0]!r} entry" +
                     (f" (it also holds {inner[1:]})" if len(inner) > 1 else ""))
        obj = obj[inner[0]]
    state = dict(obj)
    for prefix in strip_prefixes:
        if not prefix:
            continue
        if not all(k.startswith(prefix) for k in state):
            raise CheckpointLayoutError(
                f"--strip-prefix {prefix!r}: not every key of {p} starts with it (e.g. "
                f"{next(k for k in state if not k.startswith(prefix))!r}); drop the option or fix the prefix."
            )
        state = {k[len(prefix):]: v for k, v in state.items()}
        notes.append(f"removed the key prefix {prefix!r} (--strip-prefix)")
    check_layout(state, layout, role="mdsgen", path=p, fix=(
        "The public mdsgen_audioldm.pt is a flat state dict of MDSGen-B (depth 12, width 768, 12 heads) on the "
        "AudioLDM latent 8x204x16; a DataParallel re-save can be read with --strip-prefix module. "
        + _redownload("mdsgen")))
    index = relative_position_index(denoiser_config().grid)
    bad = [k for k, v in state.items()
           if k.endswith("relative_position_index") and not v.is_meta and not torch.equal(v.long(), index)]
    if bad:
        raise CheckpointLayoutError(
            f"{p}: {keys_text(bad)} differ from the BEiT relative-position index of the 102 x 8 token grid, so the "
            f"file is not a checkpoint of this model (or it is damaged). {_redownload('mdsgen')}"
        )
    dtypes = float_dtypes(state)
    if dtypes != ["float32"]:
        notes.append(f"weights stored as {', '.join(dtypes)}; converted to float32")
    return Source("mdsgen", [p], state, notes=notes, dtypes=dtypes)


CAVP_VIDEO_PREFIXES = ("video_encoder.", "video_project_head.")


def load_cavp(path: str | os.PathLike[str], layout: Layout, *, trusted: bool = False) -> Source:
    """Read and check `cavp_epoch66.ckpt`: unwrap `state_dict`, strip `module.`, keep the 320 video-branch keys."""
    p = _existing_file(path, "cavp", "--cavp")
    return cavp_source(read_pickle_checkpoint(p, role="cavp", trusted=trusted), p, layout)


def cavp_source(obj: Any, p: Path, layout: Layout) -> Source:
    """Unwrap, strip and check the loaded CAVP checkpoint object `obj` (read from `p`)."""
    notes: list[str] = []
    if not isinstance(obj, Mapping):
        raise CheckpointLayoutError(f"{p} holds a {type(obj).__name__}, not a checkpoint dict. {_redownload('cavp')}")
    if isinstance(obj.get("state_dict"), Mapping):
        others = sorted(k for k in obj if k != "state_dict")
        notes.append("unwrapped the open_clip checkpoint's 'state_dict'" +
                     (f" (ignored its {', '.join(map(str, others))})" if others else ""))
        obj = obj["state_dict"]
    stripped = 0
    state: dict[str, Any] = {}
    for key, value in obj.items():
        k = str(key)
        while k.startswith("module."):
            k = k[len("module."):]
        stripped += k != key
        state[k] = value
    if stripped:
        notes.append(f"removed the DistributedDataParallel prefix 'module.' from {stripped} keys")
    video = {k: v for k, v in state.items() if k.startswith(CAVP_VIDEO_PREFIXES)}
    ignored = len(state) - len(video)
    if not video:
        near = [k for k in state if "video_encoder." in k or "video_project_head." in k]
        where = (f"its video keys sit under an unexpected prefix {near[0][: near[0].find('video_')]!r} "
                 f"(e.g. {near[0]!r})") if near else f"its keys start {keys_text(list(state), 5)}"
        raise CheckpointLayoutError(
            f"{p} holds no CAVP video-branch keys ('video_encoder.*', 'video_project_head.*'): {where}. Pass "
            f"Diff-Foley's cavp_epoch66.ckpt. {_redownload('cavp')}"
        )
    if ignored:
        notes.append(f"ignored {ignored} keys outside the video branch (audio branch 'spec_encoder.*', "
                     "'logit_scale', ...)")
    check_layout(video, layout, role="cavp", path=p, fix=(
        "All 320 video-branch tensors of the SlowOnly ResNet3d-50 and its projection head are required (no key is "
        "left at random initialisation). " + _redownload("cavp")))
    dtypes = float_dtypes(video)
    if dtypes != ["float32"]:
        notes.append(f"weights stored as {', '.join(dtypes)}; converted to float32")
    return Source("cavp", [p], video, notes=notes, dtypes=dtypes)


# ---- AudioLDM (diffusers folder) ------------------------------------------------------------------------------
def locate_audioldm(path: str | os.PathLike[str]) -> Path:
    """The pipeline folder holding `vae/` and `vocoder/` (a save_pretrained folder or a hub-cache repo folder)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointReadError(
            f"--audioldm {p}: no such folder. Pass the folder of a saved cvssp/audioldm-s-full-v2 pipeline "
            "(it holds vae/ and vocoder/)."
        )
    if not p.is_dir():
        raise CheckpointReadError(f"--audioldm {p} is a file: pass the pipeline folder that holds vae/ and vocoder/.")
    snapshots = p / "snapshots"
    if snapshots.is_dir():  # a Hugging Face hub-cache repo folder: models--cvssp--audioldm-s-full-v2
        ref = p / "refs" / "main"
        revs = sorted(d for d in snapshots.iterdir() if d.is_dir())
        if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
            p = snapshots / ref.read_text().strip()
        elif len(revs) == 1:
            p = revs[0]
        else:
            raise CheckpointReadError(
                f"--audioldm {p} is a hub-cache folder with {len(revs)} snapshots and no refs/main: pass one "
                "snapshots/<revision> folder."
            )
    missing = [s for s in ("vae", "vocoder") if not (p / s).is_dir()]
    if missing:
        raise CheckpointReadError(
            f"--audioldm {p} has no {' and no '.join(s + '/' for s in missing)} subfolder: pass the folder of a saved "
            "cvssp/audioldm-s-full-v2 pipeline (model_index.json beside vae/ and vocoder/; only those two are used)."
        )
    return p


def _read_json(path: Path, role: str) -> dict[str, Any]:
    return read_json_config(path, what=_describe(role), advice=_redownload(role))


def _weights_in(folder: Path, names: tuple[str, str], role: str) -> Path:
    return find_weights_file(folder, names, what=_describe(role), advice=_redownload(role))


def _read_weights(path: Path, role: str, trusted: bool) -> dict[str, Any]:
    return read_state_dict(path, trusted=trusted, advice=_redownload(role))


# diffusers' AutoencoderKL defaults, for fields a config.json may leave out
_VAE_DEFAULTS: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D"], "block_out_channels": [64], "layers_per_block": 1, "act_fn": "silu",
    "latent_channels": 4, "norm_num_groups": 32,
}
_VAE_RELEASE: dict[str, Any] = {
    "in_channels": 1, "out_channels": 1, "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3, "block_out_channels": [128, 256, 512], "layers_per_block": 2,
    "act_fn": "silu", "latent_channels": 8, "norm_num_groups": 32,
}
_VAE_MUST_BE_TRUE_IF_SET = ("use_quant_conv", "use_post_quant_conv", "mid_block_add_attention")

# transformers' SpeechT5HifiGanConfig defaults, likewise
_VOCODER_DEFAULTS: dict[str, Any] = {
    "model_in_dim": 80, "sampling_rate": 16000, "upsample_initial_channel": 512, "upsample_rates": [4, 4, 4, 4],
    "upsample_kernel_sizes": [8, 8, 8, 8], "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "leaky_relu_slope": 0.1, "normalize_before": True,
}
_VOCODER_RELEASE: dict[str, Any] = {
    "model_in_dim": 64, "sampling_rate": 16000, "upsample_initial_channel": 1024, "upsample_rates": [5, 4, 2, 2, 2],
    "upsample_kernel_sizes": [16, 16, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
}


def _norm(v: Any) -> Any:
    return [_norm(x) for x in v] if isinstance(v, (list, tuple)) else v


def _config_mismatches(cfg: dict[str, Any], release: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    out = []
    for k, want in release.items():
        got = _norm(cfg.get(k, defaults.get(k)))
        if got != _norm(want):
            shown = f"{got!r}" if k in cfg else f"missing (the library default is {got!r})"
            out.append(f"{k} is {shown}, the release needs {want!r}")
    return out


def check_vae_config(cfg: dict[str, Any], path: Path) -> list[str]:
    """Refuse a VAE config that is not AudioLDM-s-full-v2's architecture; tolerate extra or missing extras."""
    problems = _config_mismatches(cfg, _VAE_RELEASE, _VAE_DEFAULTS)
    if cfg.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        problems.insert(0, f"_class_name is {cfg['_class_name']!r}, not 'AutoencoderKL'")
    problems += [f"{k} is {cfg[k]!r}, the release needs true" for k in _VAE_MUST_BE_TRUE_IF_SET
                 if k in cfg and cfg[k] is not True]
    if problems:
        raise CheckpointLayoutError(
            f"{path} does not describe the AudioLDM VAE that MDSGen was trained on: " + "; ".join(problems)
            + f". Pass the folder of cvssp/audioldm-s-full-v2. {_redownload('audioldm_vae')}"
        )
    notes = []
    if "scaling_factor" in cfg:
        notes.append(f"the VAE config's scaling_factor {cfg['scaling_factor']!r} is recorded but not used: MDSGen "
                     f"decodes latent / {AUDIOLDM_LATENT_DIVISOR:g} (VAEConfig.latent_scale)")
    return notes


def check_vocoder_config(cfg: dict[str, Any], path: Path) -> tuple[HiFiGANConfig, list[str]]:
    problems = _config_mismatches(cfg, _VOCODER_RELEASE, _VOCODER_DEFAULTS)
    arch = cfg.get("architectures")
    if arch is not None and "SpeechT5HifiGan" not in arch:
        problems.insert(0, f"architectures is {arch!r}, not ['SpeechT5HifiGan']")
    if problems:
        raise CheckpointLayoutError(
            f"{path} does not describe the AudioLDM HiFi-GAN vocoder: " + "; ".join(problems)
            + f". Pass the folder of cvssp/audioldm-s-full-v2. {_redownload('audioldm_vocoder')}"
        )
    normalize = bool(cfg.get("normalize_before", _VOCODER_DEFAULTS["normalize_before"]))
    slope = float(cfg.get("leaky_relu_slope", _VOCODER_DEFAULTS["leaky_relu_slope"]))
    notes = [] if not normalize else ["normalize_before is true: the vocoder standardises mels with its mean/scale"]
    return vocoder_config(normalize_before=normalize, leaky_relu_slope=slope), notes


_LEGACY_ATTENTION = re.compile(
    r"^(?P<head>(?:encoder|decoder)\.mid_block\.attentions\.\d+\.)(?P<name>query|key|value|proj_attn)\."
    r"(?P<kind>weight|bias)$"
)
_ATTENTION_NEW_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def convert_vae_keys(state: Mapping[str, Any], path: Path, layout: Layout) -> tuple[dict[str, Any], list[str]]:
    """Rename diffusers' deprecated VAE attention keys (`query/key/value/proj_attn` -> `to_q/to_k/to_v/to_out.0`).

    Also accepts the 1x1-conv form [C, C, 1, 1] of those weights that some old conversions kept. Raises if a file
    holds the same weight under both names.
    """
    out: dict[str, Any] = {}
    renamed = squeezed = 0
    for key, value in state.items():
        m = _LEGACY_ATTENTION.match(key)
        new = key
        if m:
            new = f"{m['head']}{_ATTENTION_NEW_NAMES[m['name']]}.{m['kind']}"
            renamed += 1
            if new in state:
                raise CheckpointLayoutError(
                    f"{path} holds the attention weight both under its old name {key!r} and its new name {new!r}; "
                    f"the file is inconsistent. {_redownload('audioldm_vae')}"
                )
        if (new.endswith("weight") and isinstance(value, Tensor) and value.ndim == 4 and value.shape[2:] == (1, 1)
                and layout.get(new, ((),))[0] == tuple(value.shape[:2])):
            value = value[:, :, 0, 0]
            squeezed += 1
        out[new] = value
    notes = []
    if renamed:
        notes.append(f"renamed {renamed} mid-block attention tensors from diffusers' deprecated names "
                     "(query, key, value, proj_attn) to to_q, to_k, to_v, to_out.0")
    if squeezed:
        notes.append(f"reshaped {squeezed} attention weights from 1x1-conv [C, C, 1, 1] to linear [C, C]")
    return out, notes


def load_audioldm(path: str | os.PathLike[str], layouts: dict[str, Layout], *, trusted: bool = False
                  ) -> tuple[Source, Source]:
    """Read and check the AudioLDM VAE and vocoder of a saved `cvssp/audioldm-s-full-v2` pipeline folder."""
    root = locate_audioldm(path)
    vae_dir, voc_dir = root / "vae", root / "vocoder"

    vae_cfg_path = vae_dir / "config.json"
    vae_cfg = _read_json(vae_cfg_path, "audioldm_vae")
    vae_notes = check_vae_config(vae_cfg, vae_cfg_path)
    vae_file = _weights_in(vae_dir, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
                           "audioldm_vae")
    raw = _read_weights(vae_file, "audioldm_vae", trusted)
    vae_state, conv_notes = convert_vae_keys(raw, vae_file, layouts["audioldm_vae"])
    check_layout(vae_state, layouts["audioldm_vae"], role="audioldm_vae", path=vae_file, fix=(
        "It must be the AutoencoderKL of cvssp/audioldm-s-full-v2 (204 tensors). " + _redownload("audioldm_vae")))
    vae = Source("audioldm_vae", [vae_cfg_path, vae_file], vae_state, config=vae_cfg,
                 notes=[*conv_notes, *vae_notes], dtypes=float_dtypes(vae_state))

    voc_cfg_path = voc_dir / "config.json"
    voc_cfg = _read_json(voc_cfg_path, "audioldm_vocoder")
    hifigan_cfg, voc_notes = check_vocoder_config(voc_cfg, voc_cfg_path)
    voc_file = _weights_in(voc_dir, ("model.safetensors", "pytorch_model.bin"), "audioldm_vocoder")
    voc_state = _read_weights(voc_file, "audioldm_vocoder", trusted)
    check_layout(voc_state, layouts["audioldm_vocoder"], role="audioldm_vocoder", path=voc_file, fix=(
        "It must be the SpeechT5HifiGan vocoder of cvssp/audioldm-s-full-v2 (196 tensors, plain weights without "
        "weight norm). " + _redownload("audioldm_vocoder")))
    voc = Source("audioldm_vocoder", [voc_cfg_path, voc_file], voc_state,
                 config={**voc_cfg, "_hifigan": hifigan_cfg.to_dict()}, notes=voc_notes,
                 dtypes=float_dtypes(voc_state))
    for src in (vae, voc):
        if src.dtypes != ["float32"]:
            src.notes.append(f"weights stored as {', '.join(src.dtypes)}; converted to float32")
    return vae, voc


# ---------------------------------------------------------------------------------------------------------------
# Building the modules and the bundle
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    """What `import_official` did: the bundle, its manifest, and what was converted or exported."""

    bundle_dir: Path
    manifest: ModelManifest
    notes: dict[str, list[str]]
    onnx: dict[str, Any]


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidRequestError(f"--out {out} is a file; pass a folder path for the new bundle.")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidRequestError(f"--out {out} exists and is not empty; pass --overwrite to replace it, or another "
                                  "folder.")


def _install(tmp: Path, out: Path) -> None:
    """Move the finished bundle folder onto `out` (the old one, if any, is replaced only after it is complete)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def import_official(
    *,
    mdsgen: str | os.PathLike[str],
    audioldm: str | os.PathLike[str],
    cavp: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trusted: bool = False,
    strip_prefixes: Iterable[str] = (),
    overwrite: bool = False,
    onnx: bool = True,
    onnx_precisions: tuple[str, ...] = ("fp32", "int8"),
    progress: Progress | None = None,
) -> ImportResult:
    """Check the three public sources, convert them into a bundle at `out`, export and check its ONNX graphs.

    Raises `CheckpointError` subclasses for a bad input (before anything is written), `InvalidRequestError` for a
    bad `out`, `ExportError` if an ONNX graph does not match torch. `out` is only created (or replaced, with
    `overwrite`) once everything succeeded.
    """
    say = progress or (lambda msg: log.info("%s", msg))
    out_dir = Path(out).expanduser()
    _prepare_out(out_dir, overwrite)

    say("checking the files against the public layouts")
    layouts = expected_layouts()
    # cheap path checks first, so that a typo fails at once and not after reading 600 MB
    _existing_file(mdsgen, "mdsgen", "--mdsgen")
    _existing_file(cavp, "cavp", "--cavp")
    locate_audioldm(audioldm)
    src_cavp = load_cavp(cavp, layouts["cavp"], trusted=trusted)
    src_vae, src_voc = load_audioldm(audioldm, layouts, trusted=trusted)
    src_mdsgen = load_mdsgen(mdsgen, layouts["mdsgen"], trusted=trusted, strip_prefixes=strip_prefixes)
    sources = (src_mdsgen, src_vae, src_voc, src_cavp)
    say("all files match: " + ", ".join(f"{s.role} ({len(s.state)} tensors)" for s in sources))

    say("converting into our modules (strict loads)")
    den = load_strict(MDSGen(config=denoiser_config()), src_mdsgen.state)
    vae = load_strict(MelVAE(config=vae_config()), src_vae.state, prefix="vae.")
    hifigan_cfg = HiFiGANConfig.from_dict(src_voc.config["_hifigan"])
    voc = load_strict(HiFiGAN(config=hifigan_cfg), src_voc.state)
    enc = load_strict(CAVPVideoEncoder(config=cavp_config()), src_cavp.state)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.importing-", dir=out_dir.parent))
    try:
        say(f"writing the bundle ({tmp.name})")
        # each module's type ("mdsgen", "autoencoder-kl", "hifigan", "cavp-resnet3d50") from engine.components
        comps = {name: component_from_module(tmp, name, module)
                 for name, module in (("denoiser", den), ("vae", vae), ("vocoder", voc), ("frame_encoder", enc))}
        del den, vae, voc, enc
        say("hashing the sources")
        provenance = {
            "weights": "the public MDSGen release, imported (not trained by this project)",
            "licence": LICENCE_SUMMARY,
            "imported_by": "foley import-official",
            "imported_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "decode": f"latent / {AUDIOLDM_LATENT_DIVISOR:g} before the VAE decoder, as the release does (not the "
                      "VAE's scaling_factor); the vocoder's 130592 samples are trimmed to the segment's 130560",
            "sources": {s.role: s.record() for s in sources},
        }
        manifest = ModelManifest(
            name=BUNDLE_NAME,
            spec=AUDIOLDM,
            components=comps,
            condition="cavp",
            sampler_defaults=dict(RELEASE_SAMPLER),
            random_weights=False,
            description="MDSGen-B as released (trained on VGGSound): AudioLDM-s-full-v2 VAE and HiFi-GAN vocoder, "
                        "Diff-Foley CAVP video features; 8.16 s segments. Non-commercial use only.",
            provenance=provenance,
        )
        write_manifest(tmp, manifest)
        manifest = load_manifest(tmp)
        onnx_info: dict[str, Any] = {}
        if onnx:
            say("exporting the ONNX graphs and checking them against torch")
            from engine.nn.export import export_onnx

            manifest = export_onnx(tmp, precisions=onnx_precisions)
            onnx_info = manifest.onnx
        _install(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"bundle written to {out_dir}")
    return ImportResult(out_dir, load_manifest(out_dir), {s.role: s.notes for s in sources}, onnx_info)


__all__ = [
    "AUDIOLDM_LATENT_DIVISOR",
    "RELEASE_SAMPLER",
    "SOURCES",
    "CheckpointError",
    "ImportResult",
    "cavp_source",
    "check_layout",
    "convert_vae_keys",
    "expected_layouts",
    "import_official",
    "load_audioldm",
    "load_cavp",
    "load_mdsgen",
    "mdsgen_source",
    "read_pickle_checkpoint",
]
