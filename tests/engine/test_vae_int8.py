"""benchmarks.vae_int8: the int8 VAE-decoder copy of a bundle loads, generates, and differs only in that graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")


def test_the_int8_decoder_bundle_generates_and_times(onnx_bundle: Path, video_12s: Path, tmp_path: Path) -> None:
    import onnx

    from benchmarks.vae_int8 import make, time_decoders
    from engine import load_engine
    from engine.manifest import load_manifest

    out = make(onnx_bundle, tmp_path / "int8")
    m, m0 = load_manifest(out), load_manifest(onnx_bundle)  # verifies every file's sha256
    graph = m.onnx["graphs"]["vae_decoder"]
    assert graph["sha256"] != m0.onnx["graphs"]["vae_decoder"]["sha256"] and "int8" in graph["weights_storage"]
    assert {k: v["sha256"] for k, v in m.onnx["graphs"].items() if k != "vae_decoder"} == \
        {k: v["sha256"] for k, v in m0.onnx["graphs"].items() if k != "vae_decoder"}
    ops = {n.op_type for n in onnx.load(str(out / graph["file"])).graph.node}
    assert ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}
    e = load_engine(out, backend="onnx")
    try:
        res = e.generate(video_12s, 1.0, candidates=1, seed=0, steps=2)
        assert np.all(np.isfinite(res.candidates[0].audio))
    finally:
        e.close()
    t = time_decoders(onnx_bundle, out, runs=1, batch=1)
    assert t["seconds"]["int8"] > 0 and t["max_abs_diff"] < max(1.0, t["max_abs_output"])
