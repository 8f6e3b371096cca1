"""ONNX export and runtime: graph parity with torch, the manifest's onnx section, providers and their fallback,
the same generation assertions on both backends, and torch-vs-ONNX parity through the whole pipeline."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from engine import BackendKind, BundleError, load_engine  # noqa: E402
from engine.backends import onnx_backend  # noqa: E402
from engine.backends.onnx_backend import CPU, CUDA, OnnxBackend, choose_providers, istft, session_options  # noqa: E402
from engine.errors import ExportError, InvalidRequestError  # noqa: E402
from engine.graphs import GRAPHS, graphs_for_components  # noqa: E402
from engine.manifest import MANIFEST_NAME, load_manifest, sha256_file  # noqa: E402
from engine.nn.presets import TINY_DENOISER  # noqa: E402
from engine.spec import DIFF_FOLEY  # noqa: E402

TINY = TINY_DENOISER  # the fixtures' tiny denoiser (tests/conftest.py)
EXPECTED_GRAPHS = {"frame_encoder", "condition", "denoiser", "vae_decoder", "vocoder"}


def _edit_manifest(bdir: Path, fn) -> None:
    p = bdir / MANIFEST_NAME
    d = json.loads(p.read_text())
    fn(d)
    p.write_text(json.dumps(d))


@pytest.fixture
def onnx_copy(onnx_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(onnx_bundle, dst)
    return dst


@pytest.fixture(scope="module")
def engines(onnx_bundle: Path):
    """The same bundle on both backends (ONNX in fp32 so that it can be compared with torch closely)."""
    es = {
        "torch": load_engine(onnx_bundle, backend="torch"),
        "onnx": load_engine(onnx_bundle, backend="onnx", backend_options={"precision": "fp32"}),
    }
    yield es
    for e in es.values():
        e.close()


# ---- export and manifest -------------------------------------------------------------------------------------
def test_manifest_names_every_graph_with_its_io_and_parity(onnx_bundle: Path) -> None:
    m = load_manifest(onnx_bundle)
    graphs = m.onnx["graphs"]
    assert set(graphs) == EXPECTED_GRAPHS and m.onnx["opset"] >= 17
    by_name = {g.name: g for g in graphs_for_components({n: c.type for n, c in m.components.items()})}
    for name, entry in graphs.items():
        io = by_name[name]
        assert [t["name"] for t in entry["inputs"]] == io.input_names
        assert [t["name"] for t in entry["outputs"]] == io.output_names
        assert entry["inputs"][0]["shape"][0] == "batch"  # the batch axis is dynamic, the others are numbers
        assert all(isinstance(d, int) for t in entry["inputs"] for d in t["shape"][2:])
        assert sha256_file(onnx_bundle / entry["file"]) == entry["sha256"]
        parity = entry["parity"]
        assert 0.0 <= parity["max_abs_diff"] <= parity["tolerance"] <= 1e-3, name
        assert parity["max_abs_output"] > 0.0, name  # the check compared real numbers, not zeros
    den = graphs["denoiser"]
    assert den["inputs"][0]["shape"] == ["batch", *DIFF_FOLEY.latent_shape]
    int8 = den["variants"]["int8"]
    assert (onnx_bundle / int8["file"]).is_file()
    assert int8["parity"]["max_abs_diff"] <= int8["parity"]["relative_tolerance"] * int8["parity"]["max_abs_output"]
    assert m.onnx["runtime"]["precision"] == "int8"


@pytest.mark.parametrize("graph", sorted(EXPECTED_GRAPHS))
def test_each_graph_matches_torch_on_fresh_inputs(onnx_bundle: Path, graph: str) -> None:
    """Independently of the exporter's own check: new seed, bigger batch, torch module vs onnxruntime session."""
    from engine.nn.bundle import load_component
    from engine.nn.export import EXPORTERS

    m = load_manifest(onnx_bundle)
    entry = m.onnx["graphs"][graph]
    comp = m.components[entry["component"]]
    module = load_component(onnx_bundle, m, entry["component"])
    case = EXPORTERS[(graph, comp.type)](module, m.spec, torch.Generator().manual_seed(123))
    inputs = tuple(torch.cat([t, t.flip(0)]) for t in case.check)  # another batch size than the exporter used
    with torch.inference_mode():
        ref = case.module(*inputs)
    refs = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    sess = ort.InferenceSession(str(onnx_bundle / entry["file"]), providers=[CPU])
    got = sess.run(None, {t["name"]: x.numpy() for t, x in zip(entry["inputs"], inputs)})
    for r, g in zip(refs, got):
        assert r.shape == g.shape
        np.testing.assert_allclose(g, r, atol=1e-3, rtol=1e-3)
        assert np.abs(r).max() > 0


def test_exporter_refuses_a_graph_that_differs_from_torch(tiny_bundle: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.graphs import CONDITION
    from engine.nn import export
    from engine.nn.bundle import load_component

    m = load_manifest(tiny_bundle)
    real = export.EXPORTERS[("condition", "mdsgen")]

    def strict(module, spec, g):  # a tolerance no float computation meets
        case = real(module, spec, g)
        case.tolerance = -1.0
        return case

    monkeypatch.setitem(export.EXPORTERS, ("condition", "mdsgen"), strict)
    with pytest.raises(ExportError, match="differs from torch"):
        export.export_graph(CONDITION, load_component(tiny_bundle, m, "denoiser"), m.spec, tmp_path,
                            component_type="mdsgen", precisions=("fp32",))
    assert not list(tmp_path.rglob("*.tmp"))  # the temporary file is gone


def test_every_known_graph_has_an_exporter() -> None:
    from engine.nn.export import EXPORTERS

    for io in GRAPHS:
        for ctype in io.types:
            assert (io.name, ctype) in EXPORTERS


def test_missing_graph_file_is_named(onnx_copy: Path) -> None:
    (onnx_copy / "onnx" / "vae_decoder.onnx").unlink()
    with pytest.raises(BundleError, match=r"vae_decoder\.onnx .* missing"):
        load_manifest(onnx_copy)


def test_an_onnx_only_copy_runs_on_onnx_runtime_and_tells_torch_why_not(onnx_copy: Path, video_12s: Path) -> None:
    """The frozen app ships the bundle without the safetensors its graphs hold: the ONNX backend runs it; the torch
    backend refuses it with the reason; a weights file no graph covers is still required."""
    from engine import BackendUnavailableError

    m = load_manifest(onnx_copy)
    covered = {e["component"] for e in m.onnx["graphs"].values()}
    removed = []
    for name, comp in m.components.items():
        if comp.file and name in covered:
            (onnx_copy / comp.file).unlink()
            removed.append(name)
    assert {"denoiser", "vae"} <= set(removed)
    m2 = load_manifest(onnx_copy)
    assert m2.weights_absent == frozenset(removed)
    assert m.weights_absent == frozenset()
    e = load_engine(onnx_copy, backend="auto")
    assert e.backend.name.startswith("onnx")
    assert len(e.generate(video_12s, 0.0, candidates=1, steps=2).candidates) == 1
    with pytest.raises(BackendUnavailableError, match="ONNX-only"):
        load_engine(onnx_copy, backend="torch")
    _edit_manifest(onnx_copy, lambda d: d["onnx"]["graphs"].pop("denoiser"))
    with pytest.raises(BundleError):  # the denoiser's weights are nowhere now
        load_manifest(onnx_copy)


def test_corrupt_graph_file_is_caught_by_sha256(onnx_copy: Path) -> None:
    with open(onnx_copy / "onnx" / "denoiser.int8.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="corrupt"):
        load_manifest(onnx_copy)
    load_manifest(onnx_copy, verify_files=False)  # only the hash check sees it


def test_graph_with_other_tensor_names_is_refused(onnx_copy: Path) -> None:
    _edit_manifest(onnx_copy, lambda d: d["onnx"]["graphs"]["denoiser"]["inputs"][0].update(name="x"))
    with pytest.raises(BundleError, match="expects"):
        load_manifest(onnx_copy)


def test_manifest_without_a_needed_graph_is_refused(onnx_copy: Path) -> None:
    _edit_manifest(onnx_copy, lambda d: d["onnx"]["graphs"].pop("vocoder"))
    with pytest.raises(BundleError, match="no 'vocoder' graph"):
        load_manifest(onnx_copy)


# ---- backend choice, providers, session settings -------------------------------------------------------------
def test_auto_picks_onnx_when_the_bundle_has_graphs(onnx_bundle: Path, tiny_bundle: Path) -> None:
    e = load_engine(onnx_bundle)
    assert e.backend.name == "onnx" and e.describe().providers == (CPU,)
    assert load_engine(tiny_bundle).backend.name == "torch"


def test_onnx_backend_on_a_bundle_without_graphs_says_what_to_do(tiny_bundle: Path) -> None:
    from engine.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="export"):
        load_engine(tiny_bundle, backend=BackendKind.ONNX)


def test_cuda_requested_on_a_cpu_build_falls_back_and_says_why(onnx_bundle: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="engine"):
        e = load_engine(onnx_bundle, backend="onnx", device="cuda")
    assert e.backend.providers_in_use == [CPU] and e.backend.device == "cpu"
    reason = e.describe().fallback_reason
    assert "has no CUDAExecutionProvider" in reason and "mdsgen-foley[cuda]" in reason
    assert any(r.levelno == logging.WARNING and "falls back to the CPU" in r.getMessage() for r in caplog.records)
    assert any("runs on CPUExecutionProvider" in r.getMessage() for r in caplog.records)
    assert e.backend.precision == "int8"  # the CPU fallback keeps the CPU's fastest precision


def test_cuda_that_does_not_start_is_detected_from_the_sessions(onnx_bundle: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that lists CUDA but cannot start it: onnxruntime silently uses the CPU; the backend notices."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    e = load_engine(onnx_bundle, backend="onnx", device="auto")
    assert e.backend.providers_in_use == [CPU]
    assert "did not start" in e.backend.fallback_reason and "not in available provider" in e.backend.fallback_reason
    assert e.backend.precision == "fp32"  # chosen for the GPU that was expected


def test_provider_lists() -> None:
    assert choose_providers("auto", [CPU]) == ([CPU], None)
    assert choose_providers("auto", [CUDA, CPU]) == ([CUDA, CPU], None)
    assert choose_providers("cuda:1", [CUDA, CPU]) == ([(CUDA, {"device_id": 1}), CPU], None)
    providers, reason = choose_providers("cuda", [CPU])
    assert providers == [CPU] and "no CUDAExecutionProvider" in reason
    with pytest.raises(InvalidRequestError):
        choose_providers("tpu", [CPU])


def test_session_settings_are_explicit() -> None:
    so = session_options(threads=1, optimization="basic")
    assert so.intra_op_num_threads == 1 and so.inter_op_num_threads == 1
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session_options().intra_op_num_threads == onnx_backend.cpu_threads()
    with pytest.raises(InvalidRequestError):
        session_options(optimization="max")


def test_precision_option_picks_the_graph_file(onnx_bundle: Path) -> None:
    m = load_manifest(onnx_bundle)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *DIFF_FOLEY.latent_shape), dtype=np.float32)
    t = np.array([900.0, 900.0], np.float32)
    y = rng.standard_normal((2, m.components["denoiser"].config["hidden_size"]), dtype=np.float32)
    outs = {}
    for precision in ("fp32", "int8"):
        be = OnnxBackend(onnx_bundle, m, precision=precision, threads=1)
        assert be.precision == precision
        outs[precision] = be.denoise(x, t, y)
    diff = np.abs(outs["fp32"] - outs["int8"]).max()
    assert 0.0 < diff < 0.25 * np.abs(outs["fp32"]).max()  # a different graph, close to the same function


# ---- the numpy inverse STFT ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_fft", "hop", "frames"), [(1024, 256, 513), (1024, 160, 817), (64, 24, 9)])
def test_numpy_istft_matches_torch(n_fft: int, hop: int, frames: int) -> None:
    from engine.nn.vocoder import istft as torch_istft

    rng = np.random.default_rng(0)
    lm = (0.5 * rng.standard_normal((2, n_fft // 2 + 1, frames))).astype(np.float32)
    ph = rng.uniform(-np.pi, np.pi, lm.shape).astype(np.float32)
    length = (frames - 1) * hop
    ref = torch_istft(torch.from_numpy(lm), torch.from_numpy(ph), n_fft=n_fft, hop_length=hop, length=length).numpy()
    got = istft(lm, ph, n_fft=n_fft, hop_length=hop, length=length)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5 * np.abs(ref).max())


# ---- generation: same assertions on every backend, and parity between them ----------------------------------
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_generation_on_every_backend(engines, backend: str, video_12s: Path) -> None:
    e = engines[backend]
    res = e.generate(video_12s, 1.0, candidates=2, seed=3, steps=3)
    assert e.backend.name == backend and res.settings["backend"] == backend
    assert set(res.timings) >= {"video", "features", "denoise", "decode", "vocode", "total"}
    for k, c in enumerate(res.candidates):
        assert c.audio.shape == (DIFF_FOLEY.num_samples,) and c.audio.dtype == np.float32
        assert c.mel.shape == (DIFF_FOLEY.n_mels, DIFF_FOLEY.mel_frames) and c.seed == 3 + k
        assert np.all(np.isfinite(c.audio)) and 0 < np.abs(c.audio).max() <= 0.99 + 1e-6  # never beyond full scale
        assert c.settings["peak_gain_db"] <= 0.0
    assert not np.allclose(res.candidates[0].audio, res.candidates[1].audio)


def test_onnx_and_torch_generate_the_same_candidates(engines, video_12s: Path) -> None:
    a = engines["torch"].generate(video_12s, 2.0, candidates=2, seed=7, steps=4)
    b = engines["onnx"].generate(video_12s, 2.0, candidates=2, seed=7, steps=4)
    for ca, cb in zip(a.candidates, b.candidates):
        np.testing.assert_allclose(cb.mel, ca.mel, atol=2e-3)
        np.testing.assert_allclose(cb.audio, ca.audio, atol=2e-3 * max(np.abs(ca.audio).max(), 1e-3))
    feats_t, _, _ = engines["torch"].video_features(video_12s, 2.0)
    feats_o, _, _ = engines["onnx"].video_features(video_12s, 2.0)
    np.testing.assert_allclose(feats_o, feats_t, atol=1e-4)


def test_temporal_condition_bundle_exports_and_generates_alike_on_both_backends(
        tmp_path: Path, video_12s: Path) -> None:
    """The denoiser's temporal condition (a 3-D condition tensor) through export, manifest, both backends."""
    from engine.nn.random_bundle import random_bundle

    bdir = tmp_path / "temporal"
    m = random_bundle(bdir, spec=DIFF_FOLEY, denoiser_overrides={**TINY, "temporal_condition": True},
                      randomize_zero_init=("final_layer", "adaLN_modulation", "temporal_feat"), onnx=True)
    graphs = m.onnx["graphs"]
    lines = DIFF_FOLEY.token_grid[1]
    cond_in = next(t for t in graphs["denoiser"]["inputs"] if t["name"] == "condition")
    assert cond_in["shape"] == ["batch", 1 + lines, 64]
    assert graphs["condition"]["outputs"][0]["shape"] == ["batch", 1 + lines, 64]
    assert graphs["denoiser"]["parity"]["max_abs_diff"] <= graphs["denoiser"]["parity"]["tolerance"]
    a = load_engine(bdir, backend="torch").generate(video_12s, 2.0, candidates=2, seed=7, steps=4)
    b = load_engine(bdir, backend="onnx", backend_options={"precision": "fp32"}).generate(
        video_12s, 2.0, candidates=2, seed=7, steps=4)
    for ca, cb in zip(a.candidates, b.candidates):
        np.testing.assert_allclose(cb.mel, ca.mel, atol=2e-3)
    assert not np.allclose(a.candidates[0].mel, a.candidates[1].mel)


def test_int8_generation_stays_close_to_fp32(onnx_bundle: Path, engines, video_12s: Path) -> None:
    e8 = load_engine(onnx_bundle, backend="onnx", backend_options={"precision": "int8"})
    assert e8.backend.precision == "int8"
    a = engines["onnx"].generate(video_12s, 2.0, candidates=1, seed=1, steps=4).candidates[0].mel
    b = e8.generate(video_12s, 2.0, candidates=1, seed=1, steps=4).candidates[0].mel
    assert not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_components_without_a_graph_are_named() -> None:
    from engine.graphs import components_without_graphs

    base = {"denoiser": "mdsgen", "vae": "autoencoder-kl", "frame_encoder": "efficientnet-lite0-projection"}
    assert components_without_graphs({**base, "vocoder": "vocos"}) == []
    assert components_without_graphs({**base, "vocoder": "griffin-lim"}) == []
    assert components_without_graphs({**base, "vocoder": "some-new-vocoder"}) == [("vocoder", "some-new-vocoder")]


def test_export_replaces_broken_graphs_and_fp32_only_bundles_run_fp32(onnx_copy: Path) -> None:
    from engine.nn.export import export_onnx

    (onnx_copy / "onnx" / "denoiser.onnx").write_bytes(b"broken")
    with pytest.raises(BundleError, match="corrupt"):
        load_manifest(onnx_copy)
    m = export_onnx(onnx_copy, precisions=("fp32",))
    assert m.onnx["runtime"]["precision"] == "fp32" and m.onnx["graphs"]["denoiser"]["variants"] == {}
    be = OnnxBackend(onnx_copy, m, threads=1)
    assert be.precision == "fp32"
