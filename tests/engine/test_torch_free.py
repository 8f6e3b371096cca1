"""The runtime needs no torch: `import engine`, an ONNX generation and `foley generate` in processes where
importing torch (or diffusers) fails, as on a user's machine without the torch extra. Nor librosa (and its numba
and llvmlite), nor scipy beyond scipy.fft: the frozen desktop build leaves them out (packaging/foley.spec)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# a sitecustomize that makes every import of torch/diffusers fail as if they were not installed
BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = ("torch", "torchvision", "torchaudio", "diffusers", "librosa", "numba", "llvmlite")


    class _NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the torch-free test)", name=name)
            return None


    sys.meta_path.insert(0, _NotInstalled())
    """
)

API_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import engine
    from engine import load_engine

    bundle, video = sys.argv[1], sys.argv[2]
    e = load_engine(bundle)  # auto: ONNX Runtime, the only backend that can run here
    res = e.generate(video, 1.0, candidates=2, seed=0, steps=2)
    e.generate(video, 1.0, candidates=1, seed=0, steps=2, sample_rate=48000)  # resampled to 48 kHz
    engine.normalize_loudness(res.candidates[0].audio, 16000, -23.0)  # the export's loudness step
    # nor scipy beyond its FFT: scipy.signal would pull linalg, sparse, optimize, stats and OpenBLAS into the app
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers", "librosa", "numba")
                   or m.split(".")[:2] in (["scipy", "signal"], ["scipy", "linalg"], ["scipy", "sparse"],
                                           ["scipy", "optimize"], ["scipy", "stats"]))
    print(json.dumps({
        "backend": e.backend.name, "providers": e.backend.providers_in_use, "heavy": heavy,
        "shapes": [list(c.audio.shape) for c in res.candidates],
        "peak": [float(abs(c.audio).max()) for c in res.candidates],
    }))
    """
)


@pytest.fixture(scope="module")
def torch_free_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("torch_free")
    (d / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(d)
    return env


def _run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, **kw)


def test_the_blocker_blocks_torch(torch_free_env: dict[str, str]) -> None:
    """Without this, the tests below could pass for the wrong reason."""
    r = _run([sys.executable, "-c", "import torch"], torch_free_env)
    assert r.returncode != 0 and "blocked by the torch-free test" in r.stderr
    r = _run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('onnxruntime') is not None)"],
             torch_free_env)
    assert r.stdout.strip() == "True"


def test_import_engine_and_generate_without_torch(torch_free_env: dict[str, str], onnx_bundle: Path,
                                                  video_12s: Path, tmp_path: Path) -> None:
    script = tmp_path / "gen.py"
    script.write_text(API_SCRIPT)
    r = _run([sys.executable, str(script), str(onnx_bundle), str(video_12s)], torch_free_env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["backend"] == "onnx" and out["providers"] == ["CPUExecutionProvider"]
    assert out["heavy"] == []
    assert out["shapes"] == [[131072], [131072]] and min(out["peak"]) > 0


def test_foley_generate_cli_without_torch(torch_free_env: dict[str, str], onnx_bundle: Path, video_12s: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "engine", "generate", str(video_12s), "--start", "2", "--candidates", "2",
           "--steps", "2", "--bundle", str(onnx_bundle), "--backend", "onnx", "--out", str(out), "-q"]
    r = _run(cmd, torch_free_env)
    assert r.returncode == 0, r.stderr
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 2 and all(w.stat().st_size > 2 * 131072 for w in wavs)
    assert "(onnx;" in r.stderr
    # asking for the torch backend there is a clear one-line error, not a traceback
    r = _run([*cmd[:-3], "--backend", "torch", "--out", str(tmp_path / "o2"), "-q"], torch_free_env)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "torch" in r.stderr
