"""Engine fixtures: the root conftest's tiny random bundle, copied and given its ONNX graphs (tests only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def onnx_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundle with fp32 + int8 ONNX graphs exported and checked against torch (a copy: `tiny_bundle`
    itself stays torch-only, so `auto` keeps picking torch for it)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from engine.nn.export import export_onnx

    dst = tmp_path_factory.mktemp("bundles") / "tiny_onnx"
    shutil.copytree(tiny_bundle, dst)
    export_onnx(dst)
    return dst
