"""Bundle format: writing, strict validation and clear errors for every broken-bundle case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.errors import BundleError
from engine.manifest import MANIFEST_NAME, load_manifest


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundle, dst)
    return dst


def _edit_manifest(bdir: Path, fn) -> None:
    p = bdir / MANIFEST_NAME
    d = json.loads(p.read_text())
    fn(d)
    p.write_text(json.dumps(d))


def test_tiny_bundle_manifest_is_complete(tiny_bundle: Path) -> None:
    m = load_manifest(tiny_bundle)
    assert m.random_weights is True
    assert set(m.components) == {"denoiser", "vae", "frame_encoder", "vocoder"}
    for c in m.components.values():
        if c.file:
            assert (tiny_bundle / c.file).is_file() and len(c.sha256 or "") == 64
    raw = json.loads((tiny_bundle / MANIFEST_NAME).read_text())
    assert raw["format_version"] == 1 and raw["spec_fingerprint"] == m.spec.fingerprint()
    assert raw["spec"]["num_samples"] == 131072


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_manifest(tmp_path / "nope")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(BundleError, match="not a bundle folder"):
        load_manifest(f)
    with pytest.raises(BundleError, match="has no manifest.json"):
        load_manifest(tmp_path)


def test_corrupt_manifest_json(bundle_copy: Path) -> None:
    (bundle_copy / MANIFEST_NAME).write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_manifest(bundle_copy)


def test_foreign_or_newer_manifest(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda d: d.update(format_version=99))
    with pytest.raises(BundleError, match="newer"):
        load_manifest(bundle_copy)
    _edit_manifest(bundle_copy, lambda d: d.update(format="something-else"))
    with pytest.raises(BundleError, match="not a mdsgen-foley-bundle"):
        load_manifest(bundle_copy)


def test_missing_weights_file(bundle_copy: Path) -> None:
    (bundle_copy / "vae.safetensors").unlink()
    with pytest.raises(BundleError, match="vae weights file vae.safetensors is missing"):
        load_manifest(bundle_copy)


def test_corrupt_weights_file_fails_its_checksum(bundle_copy: Path) -> None:
    p = bundle_copy / "denoiser.safetensors"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="corrupt"):
        load_manifest(bundle_copy)


def test_truncated_weights_file_fails_on_load_even_unverified(bundle_copy: Path) -> None:
    pytest.importorskip("torch")
    from engine.nn.bundle import load_component

    p = bundle_copy / "vae.safetensors"
    p.write_bytes(p.read_bytes()[:1000])
    m = load_manifest(bundle_copy, verify_files=False)
    with pytest.raises(BundleError, match="cannot be read"):
        load_component(bundle_copy, m, "vae")


def test_edited_spec_is_caught_by_the_fingerprint(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda d: d["spec"].update(video_fps=8.0, num_frames=64))
    with pytest.raises(BundleError, match="fingerprint"):
        load_manifest(bundle_copy)


def test_missing_component_and_unknown_type(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda d: d["components"].pop("denoiser"))
    with pytest.raises(BundleError, match="no 'denoiser' component"):
        load_manifest(bundle_copy)


def test_unknown_component_type(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, lambda d: d["components"]["vocoder"].update(type="wavenet"))
    with pytest.raises(BundleError, match="unknown type 'wavenet'"):
        load_manifest(bundle_copy)


def test_weights_that_do_not_match_the_config(bundle_copy: Path) -> None:
    """A config edited to another width: the weights no longer fit, and the error names the keys."""
    pytest.importorskip("torch")
    from engine.nn.bundle import load_component

    _edit_manifest(bundle_copy, lambda d: d["components"]["denoiser"]["config"].update(hidden_size=96))
    m = load_manifest(bundle_copy)
    with pytest.raises(BundleError, match="wrong shape"):
        load_component(bundle_copy, m, "denoiser")


def test_derived_buffers_are_not_stored_but_rebuilt(tiny_bundle: Path) -> None:
    pytest.importorskip("torch")
    from safetensors import safe_open

    from engine.nn.bundle import load_component

    with safe_open(str(tiny_bundle / "denoiser.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any(k.endswith("relative_position_index") for k in keys)
    den = load_component(tiny_bundle, load_manifest(tiny_bundle), "denoiser")
    idx = den.state_dict()["blocks.0.attn.rel_pos_bias.relative_position_index"]
    assert idx.dtype.is_floating_point is False and idx.shape == (256, 256)
