"""Synthetic stand-ins for the public MDSGen release files, built from `tests/fixtures` (copies of
`shared/fixtures`: exact keys, shapes and dtypes; random values at sensible scales), and the session fixtures that
write and import them.

Imported by `test_official.py` (not a conftest: the fixtures are only needed there). Writing the full-size files
takes a few seconds and about 1.3 GB of temporary disk; they are written once per test session.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # copies of ../shared/fixtures (tests/fixtures/README.md)
LAYOUT_FILES = {
    "mdsgen": "mdsgen_b_audioldm_state_dict_layout.json",
    "audioldm_vae": "audioldm_vae_state_dict_layout.json",
    "audioldm_vocoder": "audioldm_vocoder_state_dict_layout.json",
    "cavp": "cavp_video_state_dict_layout.json",
}
LEGACY_ATTENTION = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def fixture_json(name: str) -> dict:
    path = FIXTURES / name
    if not path.is_file():  # a failure, not a skip: a checkout without them would pass without testing the import
        pytest.fail(f"fixture {path} not found (tests/fixtures/ is part of the repository)")
    return json.loads(path.read_text())


def fixture_layout(role: str) -> dict[str, tuple[str, list[int]]]:
    """{key: (dtype, shape)} of one public file, as the fixture lists it."""
    return {k: (v[0], v[1]) for k, v in fixture_json(LAYOUT_FILES[role])["entries"].items()}


def _is_norm_weight(key: str) -> bool:
    return key.endswith(".weight") and any(
        s in key for s in (".bn.", "norm", "group_norm", "mlp_feat.2", "conv1d_feat.2")
    )


def synthetic_tensor(key: str, dtype: str, shape: list[int], g: torch.Generator) -> torch.Tensor:
    """A random tensor for one checkpoint entry, scaled so that a forward pass stays finite and non-trivial."""
    if dtype == "int64":
        if key.endswith("relative_position_index"):
            from engine.nn.denoiser import relative_position_index

            return relative_position_index((102, 8))
        return torch.tensor(1000, dtype=torch.int64) if not shape else torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=g) + 0.5
    if key.endswith("running_mean"):
        return torch.randn(shape, generator=g) * 0.1
    if key == "scale":  # the vocoder's unused normalisation buffers
        return torch.ones(shape)
    if key == "mean":
        return torch.zeros(shape)
    if _is_norm_weight(key):
        return 1.0 + 0.1 * torch.randn(shape, generator=g)
    if key.endswith(".bias") or len(shape) <= 1:
        return 0.02 * torch.randn(shape, generator=g)
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
    if key.startswith("upsampler."):  # ConvTranspose1d weight (in, out, k)
        fan_in = shape[0] * shape[2] // 4
    if key in ("pos_embed", "decoder_pos_embed", "mask_token") or key.endswith("relative_position_bias_table"):
        return 0.1 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g) / math.sqrt(max(fan_in, 1))


def synthetic_state(role: str, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: synthetic_tensor(k, dt, shape, g) for k, (dt, shape) in fixture_layout(role).items()}


@dataclass
class OfficialFiles:
    """Paths of a synthetic public release, as a user would have it on disk."""

    root: Path
    mdsgen: Path
    audioldm: Path
    cavp: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def args(self, out: Path, *extra: str) -> list[str]:
        return ["import-official", "--mdsgen", str(self.mdsgen), "--audioldm", str(self.audioldm), "--cavp",
                str(self.cavp), "--out", str(out), *extra]


def write_audioldm_folder(folder: Path, vae: dict, vocoder: dict, *, legacy_attention: bool) -> Path:
    """A `save_pretrained`-style pipeline folder with only what MDSGen uses (vae/, vocoder/)."""
    from safetensors.torch import save_file

    (folder / "vae").mkdir(parents=True, exist_ok=True)
    (folder / "vocoder").mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "AudioLDMPipeline", "vae": ["diffusers", "AutoencoderKL"],
        "vocoder": ["transformers", "SpeechT5HifiGan"],
    }))
    (folder / "vae" / "config.json").write_text(json.dumps(fixture_json("audioldm_vae_config.json")))
    (folder / "vocoder" / "config.json").write_text(json.dumps(fixture_json("audioldm_vocoder_config.json")))
    if legacy_attention:  # how the diffusers-0.15 conversion on the hub most likely stores the mid-block attention
        renamed = {}
        for k, v in vae.items():
            for new, old in LEGACY_ATTENTION.items():
                if ".attentions.0." in k and f".{new}." in k:
                    k = k.replace(f".{new}.", f".{old}.")
                    break
            renamed[k] = v
        vae = renamed
    save_file(vae, str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    save_file(vocoder, str(folder / "vocoder" / "model.safetensors"))
    return folder


def cavp_checkpoint(video: dict[str, torch.Tensor], *, seed: int = 7) -> dict:
    """An open_clip-style training checkpoint: DDP 'module.' keys under 'state_dict', the audio branch and
    logit_scale beside the video branch (as views of one storage: their values do not matter), optimizer state."""
    others = fixture_json(LAYOUT_FILES["cavp"])["other_keys_in_checkpoint"]
    biggest = max(math.prod(shape) for _, shape in others.values())
    pool = torch.randn(biggest, generator=torch.Generator().manual_seed(seed))
    state = {f"module.{k}": v for k, v in video.items()}
    for k, (dt, shape) in others.items():
        state[f"module.{k}"] = (torch.tensor(0, dtype=torch.int64) if dt == "int64"
                                else pool[: math.prod(shape)].view(shape))
    return {"epoch": 66, "name": "synthetic-cavp", "state_dict": state,
            "optimizer": {"state": {}, "param_groups": [{"lr": 8e-4, "params": [0, 1, 2]}]}}


def write_official_files(root: Path) -> OfficialFiles:
    root.mkdir(parents=True, exist_ok=True)
    seconds = {}
    t0 = time.perf_counter()
    torch.save(synthetic_state("mdsgen", 1), root / "mdsgen_audioldm.pt")
    seconds["mdsgen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    audioldm = write_audioldm_folder(root / "audioldm-s-full-v2", synthetic_state("audioldm_vae", 2),
                                     synthetic_state("audioldm_vocoder", 3), legacy_attention=True)
    seconds["audioldm"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    torch.save(cavp_checkpoint(synthetic_state("cavp", 4)), root / "cavp_epoch66.ckpt")
    seconds["cavp"] = time.perf_counter() - t0
    return OfficialFiles(root, root / "mdsgen_audioldm.pt", audioldm, root / "cavp_epoch66.ckpt", seconds)


@pytest.fixture(scope="session")
def official_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfficialFiles]:
    """Full-size synthetic public files (MDSGen-B .pt ~640 MB, AudioLDM folder ~440 MB, CAVP .ckpt ~280 MB)."""
    files = write_official_files(tmp_path_factory.mktemp("official"))
    yield files
    shutil.rmtree(files.root, ignore_errors=True)


@pytest.fixture(scope="session")
def official_bundle(official_files: OfficialFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The synthetic release imported through `foley import-official` (fp32 ONNX graphs, parity-checked)."""
    pytest.importorskip("onnxruntime")
    from engine.cli import main

    out = tmp_path_factory.mktemp("imported") / "mdsgen-official"
    t0 = time.perf_counter()
    assert main(official_files.args(out, "--no-int8", "--quiet")) == 0
    official_files.seconds["import"] = time.perf_counter() - t0
    yield out
    shutil.rmtree(out, ignore_errors=True)  # ~2 GB (safetensors + ONNX graphs)
