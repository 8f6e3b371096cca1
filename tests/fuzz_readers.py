"""A coverage-guided mutation fuzzer (atheris, libFuzzer) over every reader of user files.

    .venv/bin/python tests/fuzz_readers.py -runs=10000 -seed=1        # the documented run (10,000 inputs)
    .venv/bin/python tests/fuzz_readers.py -runs=1500 -seed=1         # what tests/engine/test_fuzz.py runs

Targets, chosen by the input's first byte (so one run covers them all and libFuzzer's mutations move between them):
the video probe and frame/audio reader (`engine.probe_video`, `read_frames`, `read_audio`), a WAV through
`read_audio`, precomputed feature files (.npy/.npz, `engine.pipeline.load_feature_file`), project files
(`foley_app.document.project.load_project`, with a media folder) and bundle manifests (`engine.load_manifest`).
The seed corpus (made here, in a temporary folder) holds one valid file of each; libFuzzer mutates them. Every
input must end in a result or in one of the typed errors the readers promise (`engine.EngineError`,
`foley_app.errors.ProjectFileError`); any other exception is a finding: libFuzzer stops, prints the traceback and
writes the input as `crash-*` into the working folder. `-timeout` (10 s) makes a hang a finding too. Other
libFuzzer flags pass through (`-help=1` lists them). Exit code 0: no finding.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np
from media_writers import write_tiny_mp4

with atheris.instrument_imports():
    from engine import EngineError, load_manifest, probe_video, read_audio, read_frames
    from engine.pipeline import load_feature_file
    from engine.spec import DIFF_FOLEY
    from foley_app.document.project import load_project
    from foley_app.errors import ProjectFileError

TARGETS = ("video", "wav", "features", "project", "manifest")
WORK = Path(tempfile.mkdtemp(prefix="foley-fuzz-"))


def _video_bytes() -> bytes:
    buf = io.BytesIO()
    write_tiny_mp4(buf)
    return buf.getvalue()


def _wav_bytes() -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(np.arange(1600) / 5)).astype(np.float32), 16_000, format="WAV", subtype="PCM_24")
    return buf.getvalue()


def _features_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros((40, 512), np.float32))
    return buf.getvalue()


def _project_bytes() -> bytes:
    return json.dumps({
        "format": "mdsgen-foley-project", "version": 2, "sample_rate": 16000, "media_dir": "p.media",
        "video": {"path": "/nonexistent/film.mp4", "duration": 12.0, "fps": 24.0, "width": 160, "height": 120,
                  "has_audio": False},
        "segments": [{"id": "s1", "number": 1, "start": 1.0, "duration": 8.192, "takes": [
            {"index": 0, "seed": 0, "audio_id": "a1", "settings": {"steps": 25}, "level_db": -20.0}],
            "generation": {}, "warnings": [], "hits": [0.5], "hits_state": "detected"}],
        "clips": [{"id": "c1", "segment_id": "s1", "start": 1.0, "audio_id": "a1", "seed": 0, "take_index": 0,
                   "gain_db": 0.0}],
        "next_segment_number": 2,
    }).encode()


def _manifest_bytes() -> bytes:
    return json.dumps({
        "format": "mdsgen-foley-bundle", "version": 1, "name": "fuzz", "spec": DIFF_FOLEY.to_dict(),
        "components": {"denoiser": {"type": "mdsgen", "config": {}, "file": "denoiser.safetensors", "sha256": None},
                       "vae": {"type": "autoencoder-kl", "config": {}, "file": "vae.safetensors", "sha256": None},
                       "vocoder": {"type": "griffin-lim", "config": {"n_iter": 32}}},
        "condition": "efficientnet-lite0", "random_weights": True,
    }).encode()


SEEDS = {"video": _video_bytes, "wav": _wav_bytes, "features": _features_bytes, "project": _project_bytes,
         "manifest": _manifest_bytes}


def _write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def one_input(data: bytes) -> None:
    if not data:
        return
    target, payload = TARGETS[data[0] % len(TARGETS)], data[1:]
    try:
        if target == "video":
            path = _write("clip.mp4", payload)
            info = probe_video(path)
            read_frames(path, [0.0, min(0.5, info.duration / 2)], size=(32, 24))
            if info.has_audio:
                read_audio(path, 16_000, duration=0.5)
        elif target == "wav":
            read_audio(_write("take.wav", payload), 16_000)
        elif target == "features":
            for suffix in (".npy", ".npz"):
                load_feature_file(_write(f"feats{suffix}", payload), 0.0, DIFF_FOLEY)
        elif target == "project":
            media = WORK / "p.media"
            media.mkdir(exist_ok=True)
            (media / "a1.wav").write_bytes(SEEDS["wav"]())
            load_project(_write("p.foleyproj", payload))
        else:
            bundle = WORK / "bundle"
            bundle.mkdir(exist_ok=True)
            (bundle / "manifest.json").write_bytes(payload)
            load_manifest(bundle, verify_files=False)
    except (EngineError, ProjectFileError):
        pass  # a typed error with a message: what a reader must do with bad input


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(TARGETS):
        (folder / f"seed-{name}").write_bytes(bytes([k]) + SEEDS[name]())
    return folder


def main(argv: list[str]) -> None:
    args = list(argv)
    if not any(a.startswith("-timeout=") for a in args):
        args.append("-timeout=10")
    if not any(a.startswith("-rss_limit_mb=") for a in args):
        args.append("-rss_limit_mb=4096")
    corpus = write_corpus(WORK / "corpus")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    atheris.Setup([sys.argv[0], *args, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
