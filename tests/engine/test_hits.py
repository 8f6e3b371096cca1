"""Hits: the hit track, user hit validation, the hit-aware denoiser and condition graph, engine and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InvalidRequestError
from engine.hits import check_hits, hit_shape, hit_track, jitter_times, parse_hits_arg, track_times

DUR = 8.192


# ---- the track ------------------------------------------------------------------------------------------------
def test_hit_track_puts_each_time_in_its_slot_and_keeps_the_position_inside_the_column() -> None:
    tr = hit_track([0.0, 0.033, 0.30, 8.191, 8.192, -0.01], DUR, 32, 8)
    assert tr.shape == (32, 8) and tr.dtype == np.float32
    # slot width 32 ms: 0.0 -> slot 0, 0.033 -> slot 1, 0.30 -> slot 9 = column 1 slot 1, 8.191 -> the last slot;
    # 8.192 (the next segment) and negative times are dropped
    assert tr[0, 0] == 1 and tr[0, 1] == 1 and tr[1, 1] == 1 and tr[31, 7] == 1
    assert tr.sum() == 4
    assert track_times(tr, DUR) == [0.0, 0.032, 0.288, 8.16]


def test_jitter_moves_times_by_about_sigma_and_is_seeded() -> None:
    times = [1.0] * 2000
    a = jitter_times(times, np.random.default_rng(0), 0.032)
    b = jitter_times(times, np.random.default_rng(0), 0.032)
    assert a == b
    assert abs(np.std(np.asarray(a) - 1.0) - 0.032) < 0.003
    assert jitter_times([1.0, 2.0], np.random.default_rng(0), 0.0) == [1.0, 2.0]


def test_check_hits_sorts_dedups_and_refuses_bad_times() -> None:
    assert check_hits([2.0, 0.5, 2.0, np.float32(1.25)], DUR) == [0.5, 1.25, 2.0]
    for bad, msg in (([-0.1], "outside the segment"), ([8.192], "outside the segment"), (["x"], "not a number"),
                     ([float("nan")], "finite"), ([True], "not a number")):
        with pytest.raises(InvalidRequestError, match=msg):
            check_hits(bad, DUR)
    with pytest.raises(InvalidRequestError, match="at most"):
        check_hits([i * 0.01 for i in range(300)], DUR)


def test_parse_hits_arg_reads_every_form(tmp_path: Path) -> None:
    assert parse_hits_arg("auto", DUR) == "auto"
    assert parse_hits_arg("none", DUR) == []
    assert parse_hits_arg("1.5, 0.25", DUR) == [0.25, 1.5]
    (tmp_path / "a.json").write_text(json.dumps({"hits": [0.5, 3.0]}))
    (tmp_path / "b.json").write_text(json.dumps([{"time": 2.0}]))
    assert parse_hits_arg(str(tmp_path / "a.json"), DUR) == [0.5, 3.0]
    assert parse_hits_arg(str(tmp_path / "b.json"), DUR) == [2.0]
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InvalidRequestError, match="not readable JSON"):
        parse_hits_arg(str(tmp_path / "bad.json"), DUR)
    with pytest.raises(InvalidRequestError, match="does not exist"):
        parse_hits_arg(str(tmp_path / "missing.json"), DUR)
    with pytest.raises(InvalidRequestError, match="not a number"):
        parse_hits_arg("1.0,abc", DUR)
    with pytest.raises(InvalidRequestError, match="outside the segment"):
        parse_hits_arg("9.5", DUR)


def test_hit_shape_from_a_manifest_config() -> None:
    assert hit_shape({"input_size": [16, 64], "patch_size": 2, "time_axis": "col", "hit_slots": 8}) == (32, 8)
    assert hit_shape({"input_size": [204, 16], "patch_size": 2, "time_axis": "row"}) == (102, 0)


# ---- the denoiser ---------------------------------------------------------------------------------------------
def _pair(temporal: bool):
    torch = pytest.importorskip("torch")
    from engine.nn.denoiser import build_denoiser
    from engine.spec import DIFF_FOLEY

    small = {"depth": 2, "hidden_size": 32, "num_heads": 2, "decode_layer": 1, "temporal_condition": temporal}
    torch.manual_seed(0)
    old = build_denoiser(DIFF_FOLEY, "T", **small)
    with torch.no_grad():  # a trained-looking model: nothing left at zero
        for p in old.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    new = build_denoiser(DIFF_FOLEY, "T", **small, hit_slots=8)
    missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
    assert sorted(missing) == ["hit_proj.bias", "hit_proj.weight"] and not unexpected
    return torch, old, new


@pytest.mark.parametrize("temporal", [True, False])
def test_zero_initialised_hit_path_gives_the_old_model_exactly(temporal: bool) -> None:
    torch, old, new = _pair(temporal)
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(3, 4, 16, 64, generator=g), torch.tensor([10.0, 500.0, 990.0])
    feats = torch.randn(3, 32, 512, generator=g)
    hits = (torch.rand(3, 32, 8, generator=g) < 0.1).float()
    with torch.no_grad():
        y_old, y_new = old.encode_condition(feats), new.encode_condition(feats, hits)
        a = old.forward_with_condition(x, t, y_old)
        b = new.forward_with_condition(x, t, y_new)
        c, _ = old(x, t, feats, enable_mask=True, generator=torch.Generator().manual_seed(5))
        d, _ = new(x, t, feats, hits=hits, enable_mask=True, generator=torch.Generator().manual_seed(5))
    assert new.config.condition_shape == (33, 32)
    assert torch.equal(a, b) and torch.equal(c, d)


def test_trained_hit_path_moves_the_prediction_with_the_hits_and_the_null_condition_drops_them() -> None:
    torch, _, new = _pair(True)
    with torch.no_grad():
        new.hit_proj.weight.normal_(0, 0.5)
    g = torch.Generator().manual_seed(2)
    x, t, feats = torch.randn(1, 4, 16, 64, generator=g), torch.tensor([300.0]), torch.randn(1, 32, 512, generator=g)
    h1, h2 = torch.zeros(1, 32, 8), torch.zeros(1, 32, 8)
    h1[0, 3, 2], h2[0, 20, 5] = 1.0, 1.0
    with torch.no_grad():
        e1 = new(x, t, feats, hits=h1)
        e2 = new(x, t, feats, hits=h2)
        n1 = new(x, t, feats, hits=h1, keep=torch.zeros(1))
        n2 = new(x, t, feats, hits=h2, keep=torch.zeros(1))
    assert not torch.allclose(e1, e2)
    assert torch.equal(n1, n2)  # classifier-free guidance drops the hits with the video


def test_condition_graph_with_hits_matches_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    from engine.backends.onnx_backend import OnnxBackend
    from engine.backends.torch_backend import TorchBackend
    from engine.graphs import CONDITION, CONDITION_HITS, graph_for
    from engine.manifest import load_manifest
    from engine.nn.random_bundle import random_bundle
    from engine.spec import DIFF_FOLEY

    small = {"depth": 2, "hidden_size": 32, "num_heads": 2, "decode_layer": 1, "temporal_condition": True,
             "hit_slots": 8}
    from engine.nn.export import export_onnx

    random_bundle(tmp_path / "b", spec=DIFF_FOLEY, denoiser_overrides=small, vocoder="griffin-lim",
                  randomize_zero_init=("final_layer", "adaLN_modulation", "hit_proj", "temporal_feat"))
    # fp32 only: this test is about the condition graph, and the int8 check of a width-32 random denoiser depends on
    # the CPU's int8 kernels (25.6 % of the output range on one machine against a 25 % bound)
    export_onnx(tmp_path / "b", precisions=("fp32",))
    m = load_manifest(tmp_path / "b")
    cfg = m.components["denoiser"].config
    assert graph_for("condition", "mdsgen", cfg) is CONDITION_HITS
    assert graph_for("condition", "mdsgen", {**cfg, "hit_slots": 0}) is CONDITION
    assert [t["name"] for t in m.onnx["graphs"]["condition"]["inputs"]] == ["video_features", "hits"]
    feats = np.random.default_rng(0).standard_normal((2, 32, 512)).astype(np.float32)
    hits = np.zeros((2, 32, 8), np.float32)
    hits[0, 5, 3] = hits[1, 30, 0] = 1.0
    onx, tch = OnnxBackend(tmp_path / "b", m), TorchBackend(tmp_path / "b", m, device="cpu")
    a, b = onx.encode_conditions(feats, hits), tch.encode_conditions(feats, hits)
    assert a.shape == (2, 33, 32) and np.abs(a - b).max() < 1e-4
    assert np.abs(onx.encode_conditions(feats, None) - onx.encode_conditions(feats, np.zeros_like(hits))).max() == 0
    assert np.abs(a - onx.encode_conditions(feats, None)).max() > 1e-3  # the hits change the condition
    del torch


# ---- engine and CLI -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hits_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from engine.nn.random_bundle import random_bundle
    from engine.spec import DIFF_FOLEY

    bdir = tmp_path_factory.mktemp("bundles") / "hits"
    small = {"depth": 2, "hidden_size": 32, "num_heads": 2, "decode_layer": 1, "hit_slots": 8}
    random_bundle(bdir, spec=DIFF_FOLEY, denoiser_overrides=small, vocoder="griffin-lim", onnx=True,
                  randomize_zero_init=("final_layer", "adaLN_modulation", "hit_proj"))
    return bdir


def test_engine_follows_given_hits_and_records_them(hits_bundle: Path, video_12s: Path) -> None:
    from engine.pipeline import load_engine

    eng = load_engine(hits_bundle, backend="onnx")
    assert eng.takes_hits and not eng.has_hit_detector
    a = eng.generate(video_12s, 1.0, candidates=1, steps=2, hits=[0.5, 2.25])
    b = eng.generate(video_12s, 1.0, candidates=1, steps=2, hits=[4.0])
    c = eng.generate(video_12s, 1.0, candidates=1, steps=2, hits=[])
    auto = eng.generate(video_12s, 1.0, candidates=1, steps=2)  # no detector in this bundle: no hits, said so
    assert a.candidates[0].settings["hits"] == [0.5, 2.25] and a.candidates[0].settings["hits_source"] == "user"
    assert c.candidates[0].settings["hits_source"] == "none" and c.candidates[0].settings["hits"] == []
    assert np.abs(a.candidates[0].mel - b.candidates[0].mel).max() > 1e-4
    assert auto.candidates[0].settings["hits_source"] == "none" and any("hit detector" in w for w in auto.warnings)
    np.testing.assert_array_equal(auto.candidates[0].audio, c.candidates[0].audio)
    with pytest.raises(InvalidRequestError, match="outside the segment"):
        eng.generate(video_12s, 1.0, candidates=1, steps=2, hits=[9.0])
    with pytest.raises(InvalidRequestError, match="no hit detector"):
        eng.detect_hits(video_12s, 1.0)


def test_a_bundle_without_hits_ignores_given_hits_and_says_so(tiny_bundle: Path, video_12s: Path) -> None:
    from engine.pipeline import load_engine

    eng = load_engine(tiny_bundle, backend="torch")
    assert not eng.takes_hits
    r = eng.generate(video_12s, 0.0, candidates=1, steps=2, hits=[1.0])
    plain = eng.generate(video_12s, 0.0, candidates=1, steps=2, hits=[])
    assert r.candidates[0].settings["hits_source"] == "ignored" and any("ignored" in w for w in r.warnings)
    np.testing.assert_array_equal(r.candidates[0].audio, plain.candidates[0].audio)


def test_cli_generate_hits_sidecar_and_errors(hits_bundle: Path, video_12s: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    out = tmp_path / "out"
    rc = main(["generate", str(video_12s), "--bundle", str(hits_bundle), "--start", "1", "-n", "1", "--steps", "2",
               "--hits", "0.5,2", "--out", str(out), "-q"])
    assert rc == 0
    side = json.loads(next(out.glob("*.json")).read_text())
    assert side["hits"] == [0.5, 2.0] and side["hits_source"] == "user"
    for bad in ("abc", "12.0", str(tmp_path / "nope.json")):
        capsys.readouterr()
        assert main(["generate", str(video_12s), "--bundle", str(hits_bundle), "-n", "1", "--steps", "2",
                     "--hits", bad, "--out", str(out), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    capsys.readouterr()
    assert main(["hits", str(video_12s), "--bundle", str(hits_bundle)]) == 2  # no detector: a one-line error
    assert "no hit detector" in capsys.readouterr().err
