"""Issue 7: importing the public MDSGen release (MDSGen-B, AudioLDM VAE + HiFi-GAN vocoder, CAVP).

Synthetic stand-ins of the public files with exactly the fixtures' keys, shapes and dtypes are written once per
session (`conftest_official.py`) and imported through `foley import-official`; the bundle then generates end to
end on torch and on ONNX Runtime. The layout checks are also tested on meta tensors (free), and the read errors
on small files. The full-size tests (marked slow) share one import per session: about 2.5 minutes on two idle
cores, mostly the ONNX export and its parity checks, plus one generation on each backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest_official import (  # noqa: E402
    OfficialFiles,
    cavp_checkpoint,
    fixture_json,
    fixture_layout,
    official_bundle,  # noqa: F401  (session fixture)
    official_files,  # noqa: F401  (session fixture)
)

from engine.cli import main  # noqa: E402
from engine.errors import (  # noqa: E402
    CheckpointLayoutError,
    CheckpointReadError,
    InvalidRequestError,
    UntrustedCheckpointError,
)
from engine.manifest import load_manifest, sha256_file  # noqa: E402
from engine.nn.cavp import CAVPConfig, CAVPVideoEncoder  # noqa: E402
from engine.nn.hifigan import HiFiGAN, HiFiGANConfig  # noqa: E402
from engine.nn.official import (  # noqa: E402
    AUDIOLDM_LATENT_DIVISOR,
    cavp_source,
    check_layout,
    check_vae_config,
    check_vocoder_config,
    convert_vae_keys,
    expected_layouts,
    load_audioldm,
    locate_audioldm,
    mdsgen_source,
    read_pickle_checkpoint,
)
from engine.spec import AUDIOLDM  # noqa: E402

ROLES = ("mdsgen", "audioldm_vae", "audioldm_vocoder", "cavp")


@pytest.fixture(scope="module")
def layouts() -> dict:
    return expected_layouts()


def meta_state(role: str) -> dict[str, torch.Tensor]:
    """A state dict with the fixture's exact keys, shapes and dtypes, as meta tensors (no memory)."""
    return {k: torch.empty(shape, dtype=getattr(torch, dt), device="meta") for k, (dt, shape) in
            fixture_layout(role).items()}


# ---------------------------------------------------------------------------------------------------------------
# Our modules reproduce the public layouts
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_modules_have_exactly_the_public_layouts(layouts: dict, role: str) -> None:
    fixture = fixture_layout(role)
    ours = layouts[role]
    assert set(ours) == set(fixture) and len(ours) == len(fixture)
    for k, (dt, shape) in fixture.items():
        assert ours[k] == (tuple(shape), dt.startswith("float")), k


def test_parameter_counts_match_the_reference() -> None:
    from engine.nn.official import vae_config
    from engine.nn.vae import MelVAE

    with torch.device("meta"):
        cavp = CAVPVideoEncoder()
        voc = HiFiGAN(config=HiFiGANConfig.from_hf_config(fixture_json("audioldm_vocoder_config.json")))
        vae = MelVAE(config=vae_config())
    assert sum(p.numel() for p in cavp.parameters()) == 32_683_584
    assert sum(p.numel() for p in voc.parameters()) == 55_264_897
    assert {k for k, _ in voc.named_buffers()} == {"mean", "scale"}
    assert sum(p.numel() for p in vae.parameters()) == 55_376_873
    assert vae.config.downsample == AUDIOLDM.vae_downsample == 4 and vae.config.latent_scale == 4.0


def test_hifigan_lengths_and_forward() -> None:
    cfg = HiFiGANConfig.from_hf_config(fixture_json("audioldm_vocoder_config.json"))
    assert cfg == HiFiGANConfig() and cfg.hop_length == 160
    assert cfg.output_length(816) == 130_592  # what the release writes for 816 frames (130560 + overhang)
    with torch.device("meta"):
        assert HiFiGAN(config=cfg)(torch.empty(2, 64, 816)).shape == (2, 130_592)
    torch.manual_seed(0)
    small = HiFiGAN(config=HiFiGANConfig(upsample_initial_channel=32)).eval()
    with torch.inference_mode():
        wav = small(torch.randn(1, 64, 12) - 5.0)
    assert wav.shape == (1, cfg.output_length(12)) and wav.abs().max() <= 1.0 and wav.std() > 0
    with pytest.raises(ValueError, match="mel must be"):
        small(torch.randn(1, 12, 64))


def test_hifigan_residual_blocks_and_final_slope() -> None:
    """Stage output = mean of its resblocks; the last leaky ReLU uses slope 0.01, the others the config's 0.1."""
    torch.manual_seed(0)
    cfg = HiFiGANConfig(model_in_dim=4, upsample_initial_channel=8, upsample_rates=(2,), upsample_kernel_sizes=(4,),
                        resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 2), (1, 3)))
    net = HiFiGAN(config=cfg).eval()
    x = torch.randn(1, 4, 10)
    f = torch.nn.functional
    with torch.inference_mode():
        h = net.upsampler[0](f.leaky_relu(net.conv_pre(x), 0.1))
        blocks = []
        for rb in net.resblocks:
            y = h
            for c1, c2 in zip(rb.convs1, rb.convs2):
                y = y + c2(f.leaky_relu(c1(f.leaky_relu(y, 0.1)), 0.1))
            blocks.append(y)
        want = torch.tanh(net.conv_post(f.leaky_relu((blocks[0] + blocks[1]) / 2, 0.01))).squeeze(1)
        torch.testing.assert_close(net(x), want)
        wrong = torch.tanh(net.conv_post(f.leaky_relu((blocks[0] + blocks[1]) / 2, 0.1))).squeeze(1)
        assert not torch.allclose(net(x), wrong)


def test_cavp_shapes_preprocessing_and_chunking() -> None:
    with torch.device("meta"):  # the traced shapes of a 40-frame chunk at 224 x 224, free of compute
        enc = CAVPVideoEncoder()
        fmap = enc.video_encoder(torch.empty(1, 3, 40, 224, 224))
        assert fmap.shape == (1, 2048, 40, 7, 7)
        assert enc(torch.empty(1, 40, 3, 224, 224)).shape == (1, 40, 512)
    torch.manual_seed(0)
    enc = CAVPVideoEncoder(config=CAVPConfig(chunk_frames=4)).eval()
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (1, 6, 64, 64, 3), generator=g, dtype=torch.uint8)
    with torch.inference_mode():
        feats = enc.encode_uint8(frames)
        x = frames.permute(0, 1, 4, 2, 3).float() / 255.0  # [0, 1], no mean/std
        chunks = torch.cat([enc(x[:, :4]), enc(x[:, 4:])], dim=1)  # 4 + a shorter last chunk of 2
        whole = enc(x)
    assert feats.shape == (1, 6, 512)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(1, 6))  # unit L2 norm per frame
    torch.testing.assert_close(feats, chunks)
    # chunk edges matter: the 3x1x1 convolutions see zero padding there (that is why chunking is reproduced)
    assert (feats - whole).abs().max() > 1e-4


def test_mel_front_end_matches_audioldm_on_a_known_signal() -> None:
    """The AUDIOLDM spec's mel against an independent restatement of AudioLDM's TacotronSTFT, and by hand."""
    import librosa
    from scipy.signal import get_window

    from engine import audio

    spec = AUDIOLDM
    assert (spec.sample_rate, spec.n_fft, spec.win_length, spec.hop_length) == (16_000, 1024, 1024, 160)
    assert (spec.n_mels, spec.fmin, spec.fmax, spec.num_samples, spec.mel_frames) == (64, 0.0, 8000.0, 130_560, 816)
    t = np.arange(spec.num_samples) / spec.sample_rate
    wav = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    wav[: 16_000] = 0.0  # one second of digital silence first

    # reference: reflect-pad 512, periodic Hann (scipy fftbins=True), |rfft|, Slaney mel 0-8000 Hz, ln(max(., 1e-5))
    x = np.pad(wav.astype(np.float64), 512, mode="reflect")
    window = get_window("hann", 1024, fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(x, 1024)[::160][:816]  # (816, 1024)
    mag = np.abs(np.fft.rfft(frames * window, axis=1)).T  # (513, 816)
    basis = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    ref = np.log(np.maximum(basis @ mag, 1e-5))  # (64, 816)

    mel = audio.wav_to_mel(wav, spec)
    assert mel.shape == (64, 816)
    np.testing.assert_allclose(mel, ref, atol=2e-3)
    # by hand: silence sits on the floor ln(1e-5); the tone peaks in the band whose centre is nearest 1 kHz
    np.testing.assert_allclose(mel[:, 10:90], np.log(1e-5), atol=1e-6)
    centres = librosa.mel_frequencies(n_mels=66, fmin=0.0, fmax=8000.0, htk=False)[1:-1]
    steady = mel[:, 200:700].mean(axis=1)
    assert int(np.argmax(steady)) == int(np.argmin(np.abs(centres - 1000.0)))
    # the VAE sees time on rows: (816, 64)
    assert audio.to_mel_image(mel, spec).shape == (816, 64) == spec.mel_image_shape


# ---------------------------------------------------------------------------------------------------------------
# Layout checks: clear errors that name the key (meta tensors: no memory, no file)
# ---------------------------------------------------------------------------------------------------------------
def test_exact_layout_passes_and_wrong_shape_is_named(layouts: dict) -> None:
    state = meta_state("mdsgen")
    check_layout(state, layouts["mdsgen"], role="mdsgen", path="ckpt.pt", fix="FIX.")
    state["blocks.3.attn.qkv.weight"] = torch.empty(2304, 512, device="meta")
    with pytest.raises(CheckpointLayoutError) as err:
        check_layout(state, layouts["mdsgen"], role="mdsgen", path="ckpt.pt", fix="Download it again.")
    msg = str(err.value)
    assert "'blocks.3.attn.qkv.weight' has shape [2304, 512], expected [2304, 768]" in msg
    assert msg.endswith("Download it again.") and "ckpt.pt" in msg


def test_missing_and_unexpected_keys_are_named(layouts: dict) -> None:
    state = meta_state("mdsgen")
    del state["final_layer.linear.bias"]
    state["blocks.12.mlp.fc1.weight"] = torch.empty(3072, 768, device="meta")
    with pytest.raises(CheckpointLayoutError) as err:
        check_layout(state, layouts["mdsgen"], role="mdsgen", path="x.pt", fix="")
    msg = str(err.value)
    assert "1 of the 177 expected keys are missing: 'final_layer.linear.bias'" in msg
    assert "1 keys are not part of the layout: 'blocks.12.mlp.fc1.weight'" in msg


def test_extra_module_prefix_is_explained(layouts: dict) -> None:
    state = {f"module.{k}": v for k, v in meta_state("mdsgen").items()}
    with pytest.raises(CheckpointLayoutError) as err:
        mdsgen_source(state, Path("mdsgen_audioldm.pt"), layouts["mdsgen"])
    msg = str(err.value)
    assert "extra prefix 'module.'" in msg and "--strip-prefix module." in msg
    # ... and the explicit option reads it
    src = mdsgen_source(state, Path("mdsgen_audioldm.pt"), layouts["mdsgen"], strip_prefixes=("module.",))
    assert len(src.state) == 177 and any("module." in n for n in src.notes)


def test_dtype_kind_and_non_finite_values_are_named(layouts: dict) -> None:
    state = meta_state("cavp")
    state["video_encoder.conv1.bn.running_var"] = torch.zeros(64, dtype=torch.int64, device="meta")
    with pytest.raises(CheckpointLayoutError, match=r"'video_encoder.conv1.bn.running_var' holds int64 values, "
                                                     "expected floating-point"):
        check_layout(state, layouts["cavp"], role="cavp", path="c.ckpt", fix="")
    real = {"mean": torch.zeros(64), "scale": torch.tensor([float("nan")] + [1.0] * 63)}
    small = {"mean": ((64,), True), "scale": ((64,), True)}
    with pytest.raises(CheckpointLayoutError, match="'scale' holds NaN or infinite values"):
        check_layout(real, small, role="audioldm_vocoder", path="v", fix="")


def test_mdsgen_wrappers_and_dtypes(layouts: dict) -> None:
    flat = meta_state("mdsgen")
    src = mdsgen_source({"ema": flat, "opt": {"lr": 1}}, Path("m.pt"), layouts["mdsgen"])
    assert any("'ema'" in n for n in src.notes)
    half = {k: (v.to(torch.float16) if v.dtype.is_floating_point else v) for k, v in flat.items()}
    assert any("float16" in n for n in mdsgen_source(half, Path("m.pt"), layouts["mdsgen"]).notes)
    with pytest.raises(CheckpointLayoutError, match="top-level keys are 'epoch', 'args'"):
        mdsgen_source({"epoch": 3, "args": "x"}, Path("m.pt"), layouts["mdsgen"])


def test_cavp_wrapper_prefix_and_other_branches(layouts: dict) -> None:
    ckpt = cavp_checkpoint(meta_state("cavp"))  # {'state_dict': {'module.video_encoder...', 'module.spec_encoder...'}}
    src = cavp_source(ckpt, Path("cavp.ckpt"), layouts["cavp"])
    assert len(src.state) == 320 and all(k.startswith(("video_encoder.", "video_project_head.")) for k in src.state)
    notes = " ".join(src.notes)
    assert "'module.'" in notes and "ignored 82 keys" in notes and "optimizer" in notes
    # a bare dict without the DDP prefix (what the official loader also accepts)
    assert len(cavp_source(meta_state("cavp"), Path("c"), layouts["cavp"]).state) == 320


def test_cavp_missing_keys_are_listed_not_left_random(layouts: dict) -> None:
    state = meta_state("cavp")
    del state["video_encoder.layer4.2.conv3.bn.running_var"], state["video_project_head.bias"]
    with pytest.raises(CheckpointLayoutError) as err:
        cavp_source({"state_dict": state}, Path("cavp.ckpt"), layouts["cavp"])
    msg = str(err.value)
    assert "2 of the 320 expected keys are missing" in msg
    assert "'video_encoder.layer4.2.conv3.bn.running_var'" in msg and "'video_project_head.bias'" in msg


def test_cavp_under_a_foreign_prefix_is_named(layouts: dict) -> None:
    state = {f"model.{k}": v for k, v in meta_state("cavp").items()}
    with pytest.raises(CheckpointLayoutError, match=r"unexpected prefix 'model\.'"):
        cavp_source({"state_dict": state}, Path("cavp.ckpt"), layouts["cavp"])


def test_vae_legacy_attention_names_are_converted(layouts: dict) -> None:
    state = meta_state("audioldm_vae")
    old = {}
    for k, v in state.items():
        for new, legacy in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
            if ".attentions.0." in k and f".{new}." in k:
                k = k.replace(f".{new}.", f".{legacy}.")
        old[k] = v
    assert "decoder.mid_block.attentions.0.proj_attn.weight" in old and len(old) == 204
    converted, notes = convert_vae_keys(old, Path("vae.safetensors"), layouts["audioldm_vae"])
    assert list(converted) == list(state) and "renamed 16" in notes[0]
    # old conversions kept 1x1-conv shapes; both names at once is an error
    conv = dict(old, **{"encoder.mid_block.attentions.0.query.weight": torch.empty(512, 512, 1, 1, device="meta")})
    converted, notes = convert_vae_keys(conv, Path("v"), layouts["audioldm_vae"])
    assert converted["encoder.mid_block.attentions.0.to_q.weight"].shape == (512, 512) and len(notes) == 2
    both = dict(state, **{"decoder.mid_block.attentions.0.key.bias": torch.empty(512, device="meta")})
    with pytest.raises(CheckpointLayoutError, match="both under its old name"):
        convert_vae_keys(both, Path("v"), layouts["audioldm_vae"])


def test_configs_are_checked_field_by_field(tmp_path: Path) -> None:
    vae = fixture_json("audioldm_vae_config.json")
    notes = check_vae_config(vae, tmp_path / "config.json")
    assert "0.9392935633659363" in notes[0] and f"latent / {AUDIOLDM_LATENT_DIVISOR:g}" in notes[0]
    # newer diffusers re-saves add fields; force_upcast may be missing: both fine
    check_vae_config({**vae, "force_upcast": True, "shift_factor": None, "use_quant_conv": True}, tmp_path)
    with pytest.raises(CheckpointLayoutError, match="latent_channels is 4, the release needs 8"):
        check_vae_config({**vae, "latent_channels": 4}, tmp_path / "config.json")
    without = {k: v for k, v in vae.items() if k != "layers_per_block"}
    with pytest.raises(CheckpointLayoutError, match="layers_per_block is missing"):
        check_vae_config(without, tmp_path)
    voc = fixture_json("audioldm_vocoder_config.json")
    cfg, _ = check_vocoder_config({**voc, "transformers_version": "4.99", "extra": 1}, tmp_path)
    assert cfg == HiFiGANConfig()
    with pytest.raises(CheckpointLayoutError, match="upsample_rates is"):
        check_vocoder_config({**voc, "upsample_rates": [4, 4, 4, 4]}, tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Reading files: truncated, untrusted pickles, folder layouts
# ---------------------------------------------------------------------------------------------------------------
def _head(src: Path, dst: Path, nbytes: int) -> Path:
    with open(src, "rb") as f:
        dst.write_bytes(f.read(nbytes))
    return dst


def test_truncated_files_give_a_clear_error(official_files: OfficialFiles, tmp_path: Path) -> None:  # noqa: F811
    cut = _head(official_files.mdsgen, tmp_path / "mdsgen_audioldm.pt", 5_000_000)
    with pytest.raises(CheckpointReadError, match="truncated or damaged.*interrupted download"):
        read_pickle_checkpoint(cut, role="mdsgen")
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointReadError, match="truncated, corrupt, or not a checkpoint"):
        read_pickle_checkpoint(garbage, role="mdsgen")
    # a truncated safetensors file inside the AudioLDM folder
    folder = tmp_path / "audioldm"
    shutil.copytree(official_files.audioldm / "vae", folder / "vae")
    (folder / "vocoder").mkdir()
    shutil.copy(official_files.audioldm / "vocoder" / "config.json", folder / "vocoder")
    _head(official_files.audioldm / "vocoder" / "model.safetensors", folder / "vocoder" / "model.safetensors", 10_000)
    with pytest.raises(CheckpointReadError, match=r"model\.safetensors cannot be read as safetensors.*truncated"):
        load_audioldm(folder, expected_layouts())


def test_pickles_with_objects_need_explicit_trust(tmp_path: Path) -> None:
    path = tmp_path / "cavp.ckpt"
    torch.save({"state_dict": {"module.logit_scale": torch.zeros(())}, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"argparse\.Namespace.*--trust-pickle"):
        read_pickle_checkpoint(path, role="cavp")
    obj = read_pickle_checkpoint(path, role="cavp", trusted=True)
    assert obj["args"].lr == 1


def test_audioldm_folder_forms(official_files: OfficialFiles, tmp_path: Path) -> None:  # noqa: F811
    # a hub-cache folder: refs/main names the snapshot
    cache = tmp_path / "models--cvssp--audioldm-s-full-v2"
    snap = cache / "snapshots" / "feeb3d14203495a4b6ac0893cbdedb2159b4819c"
    snap.mkdir(parents=True)
    for sub in ("vae", "vocoder"):
        (snap / sub).symlink_to(official_files.audioldm / sub)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text("feeb3d14203495a4b6ac0893cbdedb2159b4819c\n")
    assert locate_audioldm(cache) == snap
    only_vae = tmp_path / "only_vae"
    (only_vae / "vae").mkdir(parents=True)
    with pytest.raises(CheckpointReadError, match="has no vocoder/ subfolder"):
        locate_audioldm(only_vae)
    with pytest.raises(CheckpointReadError, match="no such folder"):
        locate_audioldm(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------------------------
# The command: errors come before anything is written
# ---------------------------------------------------------------------------------------------------------------
def test_cli_rejects_a_wrong_file_and_writes_nothing(official_files: OfficialFiles, tmp_path: Path,  # noqa: F811
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = torch.load(official_files.cavp, map_location="cpu", weights_only=True, mmap=True)
    ckpt["state_dict"]["module.video_encoder.layer3.0.conv1.conv.weight"] = torch.zeros(256, 512, 1, 1, 1)
    bad = tmp_path / "cavp_epoch66.ckpt"
    torch.save(ckpt, bad)
    del ckpt
    out = tmp_path / "bundle"
    args = official_files.args(out, "--quiet")
    args[args.index("--cavp") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'video_encoder.layer3.0.conv1.conv.weight' has shape [256, 512, 1, 1, 1], " \
                                        "expected [256, 512, 3, 1, 1]" in err
    assert not out.exists() and not list(tmp_path.glob(".bundle*"))
    # a missing file is named before anything heavy happens
    args[args.index("--mdsgen") + 1] = str(tmp_path / "missing.pt")
    assert main(args) == 2
    assert "--mdsgen" in capsys.readouterr().err


def test_existing_output_needs_overwrite(official_files: OfficialFiles, tmp_path: Path) -> None:  # noqa: F811
    from engine.nn.official import import_official

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    with pytest.raises(InvalidRequestError, match="--overwrite"):
        import_official(mdsgen=official_files.mdsgen, audioldm=official_files.audioldm, cavp=official_files.cavp,
                        out=tmp_path / "b")
    assert (tmp_path / "b" / "keep.txt").read_text() == "x"


# ---------------------------------------------------------------------------------------------------------------
# The imported bundle (one full-size import per session)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_manifest_records_the_release_settings_sources_and_licences(
    official_bundle: Path, official_files: OfficialFiles, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:
    m = load_manifest(official_bundle)
    assert m.spec == AUDIOLDM and m.condition == "cavp" and not m.random_weights
    assert {n: c.type for n, c in m.components.items()} == {
        "denoiser": "mdsgen", "vae": "autoencoder-kl", "vocoder": "hifigan", "frame_encoder": "cavp-resnet3d50"}
    assert m.sampler_defaults == {"steps": 50, "guidance": 5.0, "guidance_power": 0.01}
    assert m.components["vae"].config["latent_scale"] == 4.0  # decode latent / 4, as the release does
    den = m.components["denoiser"].config
    assert (den["depth"], den["hidden_size"], den["num_heads"], den["decode_layer"]) == (12, 768, 12, 4)
    assert den["input_size"] == [204, 16] and den["time_axis"] == "row" and den["freq_embed_size"] == 204
    assert m.components["frame_encoder"].config["chunk_frames"] == 40
    sources = m.provenance["sources"]
    assert set(sources) == {"mdsgen", "audioldm_vae", "audioldm_vocoder", "cavp"}
    assert sources["mdsgen"]["files"][0]["sha256"] == sha256_file(official_files.mdsgen)
    assert sources["cavp"]["files"][0]["sha256"] == sha256_file(official_files.cavp)
    assert "CC-BY-NC-SA-4.0" in sources["audioldm_vae"]["licence"] and "MIT" in sources["cavp"]["licence"]
    assert "none stated" in sources["mdsgen"]["licence"] and "NON-COMMERCIAL" in m.provenance["licence"]
    assert any("renamed 16" in n for n in sources["audioldm_vae"]["conversion"])
    # every graph exported and checked against torch within the exporter's tolerance
    graphs = m.onnx["graphs"]
    assert set(graphs) == {"condition", "denoiser", "vae_decoder", "frame_encoder", "vocoder"}
    for name, g in graphs.items():
        assert g["parity"]["max_abs_diff"] <= g["parity"]["tolerance"], name
    assert graphs["vocoder"]["outputs"][0]["shape"][1] == 130_592
    assert not [p for p in official_bundle.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert main(["info", str(official_bundle)]) == 0
    out = capsys.readouterr().out
    assert "8.160 s" in out and "hifigan" in out and "cavp-resnet3d50" in out and "RANDOM" not in out


@pytest.mark.slow
def test_bundle_weights_are_the_source_weights(official_bundle: Path, official_files: OfficialFiles) -> None:  # noqa: F811
    from safetensors.torch import load_file

    src = torch.load(official_files.mdsgen, map_location="cpu", weights_only=True, mmap=True)
    den = load_file(str(official_bundle / "denoiser.safetensors"))
    assert set(den) == {k for k in src if not k.endswith("relative_position_index")}  # index buffers rebuilt
    assert all(torch.equal(den[k], src[k]) for k in den)
    cavp = torch.load(official_files.cavp, map_location="cpu", weights_only=True, mmap=True)["state_dict"]
    enc = load_file(str(official_bundle / "frame_encoder.safetensors"))
    assert len(enc) == 320 and all(torch.equal(v, cavp[f"module.{k}"]) for k, v in enc.items())
    vae_src = load_file(str(official_files.audioldm / "vae" / "diffusion_pytorch_model.safetensors"))
    vae = load_file(str(official_bundle / "vae.safetensors"))
    assert torch.equal(vae["vae.decoder.mid_block.attentions.0.to_out.0.weight"],
                       vae_src["decoder.mid_block.attentions.0.proj_attn.weight"])
    assert torch.equal(vae["vae.encoder.mid_block.attentions.0.to_k.bias"],
                       vae_src["encoder.mid_block.attentions.0.key.bias"])
    assert len(vae) == 204 and {k.removeprefix("vae.") for k in vae} == set(fixture_layout("audioldm_vae"))
    voc_src = load_file(str(official_files.audioldm / "vocoder" / "model.safetensors"))
    voc = load_file(str(official_bundle / "vocoder.safetensors"))
    assert set(voc) == set(voc_src) and all(torch.equal(voc[k], voc_src[k]) for k in voc)


@pytest.mark.slow
def test_denoiser_output_equals_the_reference_module_and_onnx(official_bundle: Path,  # noqa: F811
                                                              official_files: OfficialFiles) -> None:  # noqa: F811
    """The bundle's denoiser == MDSGen-B loaded straight from the checkpoint (strict), on fixed inputs; its ONNX
    graph within the exporter's tolerance."""
    import onnxruntime as ort

    from engine.nn.bundle import load_component
    from engine.nn.denoiser import build_denoiser

    m = load_manifest(official_bundle)
    ours = load_component(official_bundle, m, "denoiser")
    ref = build_denoiser(AUDIOLDM, "B")
    ref.load_state_dict(torch.load(official_files.mdsgen, map_location="cpu", weights_only=True, mmap=True),
                        strict=True)
    ref.eval()
    g = torch.Generator().manual_seed(123)
    x = torch.randn(1, 8, 204, 16, generator=g)
    t = torch.tensor([637.25])
    v = torch.randn(1, 32, 512, generator=g)
    with torch.inference_mode():
        want = ref(x, t, v)  # the training-style entry point, condition kept
        y = ours.encode_condition(v)
        got = ours.forward_with_condition(x, t, y)
    assert torch.equal(got, want)
    assert got.abs().max() > 0.1  # a real output, not zeros from untouched zero-initialised layers
    sess = ort.InferenceSession(str(official_bundle / m.onnx["graphs"]["denoiser"]["file"]),
                                providers=["CPUExecutionProvider"])
    eps = sess.run(["eps"], {"latent": x.numpy(), "timestep": t.numpy(), "condition": y.numpy()})[0]
    assert np.abs(eps - want[:, :8].numpy()).max() <= m.onnx["graphs"]["denoiser"]["parity"]["tolerance"]


@pytest.mark.slow
def test_generate_end_to_end_on_torch_and_onnx(official_bundle: Path, video_12s: Path, tmp_path: Path) -> None:  # noqa: F811
    """The imported bundle runs like any other: engine on torch, `foley generate` on ONNX; the two agree."""
    import soundfile as sf

    from engine import load_engine

    eng = load_engine(official_bundle, backend="torch")
    try:
        res = eng.generate(video_12s, 1.5, candidates=1, seed=3, steps=1)
    finally:
        eng.close()
    cand = res.candidates[0]
    assert cand.audio.shape == (130_560,) and cand.mel.shape == (64, 816) and cand.sample_rate == 16_000
    assert np.all(np.isfinite(cand.audio)) and cand.audio.std() > 1e-3 and not res.warnings
    assert cand.settings["vocoder"] == "hifigan" and res.duration == pytest.approx(8.16)

    out = tmp_path / "out"
    assert main(["generate", str(video_12s), "--start", "1.5", "--candidates", "1", "--seed", "3", "--steps", "1",
                 "--bundle", str(official_bundle), "--backend", "onnx", "--out", str(out), "-q"]) == 0
    wav_path = next(out.glob("*.wav"))
    onnx_audio, sr = sf.read(wav_path, dtype="float32")
    side = json.loads(wav_path.with_suffix(".json").read_text())
    assert sr == 16_000 and onnx_audio.shape == (130_560,) and side["backend"] == "onnx"
    assert side["random_weights"] is False and side["duration"] == pytest.approx(8.16)
    assert np.abs(onnx_audio - cand.audio).max() < 1e-3  # 24-bit WAV quantisation and float reassociation only


class _RecordingBackend:
    """Stands in for a backend to see which frames the engine hands to the frame encoder."""

    name = device = "stub"
    has_frame_encoder = True
    has_neural_vocoder = True

    def __init__(self) -> None:
        self.providers_in_use: list[str] = []
        self.frames: list[np.ndarray] = []

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        self.frames.append(frames)
        return np.zeros((frames.shape[0], frames.shape[1], 512), np.float32)


@pytest.mark.parametrize(("start", "clip"), [(1.0, 40), (3.0, 36)])
def test_cavp_sees_its_ten_second_clip(video_12s: Path, start: float, clip: int, tmp_path: Path) -> None:
    """CAVP encodes 40-frame clips: the engine reads the 8 frames after the segment too (the clip is shorter where
    the video ends, never padded with repeated frames), and keeps the segment's 32 features."""
    from engine.manifest import Component, ModelManifest
    from engine.media import read_frames
    from engine.pipeline import FoleyEngine

    manifest = ModelManifest(name="cavp-stub", spec=AUDIOLDM, condition="cavp", components={
        "frame_encoder": Component("cavp-resnet3d50", CAVPConfig().to_dict(), "frame_encoder.safetensors")})
    stub = _RecordingBackend()
    eng = FoleyEngine(tmp_path, manifest, stub)  # type: ignore[arg-type]
    feats, _, warnings = eng.video_features(video_12s, start)
    assert feats.shape == (32, 512) and not warnings
    frames = stub.frames[0]
    assert frames.shape == (1, clip, 224, 224, 3)
    times = start + np.arange(clip) / 4.0
    np.testing.assert_array_equal(frames[0], read_frames(video_12s, times, size=(224, 224)).frames)
