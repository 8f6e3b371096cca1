"""`foley` end to end: generate N WAVs + sidecars + a muxed MP4 from a generated 12 s video; info; presets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")

from engine.cli import main


def _video_packets(path: Path) -> list[tuple[int | None, bytes]]:
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return [(p.pts, bytes(p)) for p in c.demux(vs) if p.size]


def _decoded_audio_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        n = sum(f.samples for f in c.decode(a))
        return n / a.codec_context.sample_rate


def test_generate_end_to_end_with_mux(tiny_bundle: Path, video_12s: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    mp4 = tmp_path / "muxed.mp4"
    code = main(["generate", str(video_12s), "--start", "1.5", "--candidates", "3", "--seed", "4", "--steps", "3",
                 "--bundle", str(tiny_bundle), "--backend", "torch", "--out", str(out), "--mux", str(mp4), "-q"])
    assert code == 0
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 3
    for k, w in enumerate(wavs):
        data, sr = sf.read(w)
        assert sr == 16000 and data.shape == (131072,)
        side = json.loads(w.with_suffix(".json").read_text())
        assert side["seed"] == 4 + k and side["start"] == 1.5 and side["random_weights"] is True
    assert "RANDOM weights" in capsys.readouterr().err
    # the MP4: the source's video packets, untouched; an audio track as long as the video
    assert _video_packets(mp4) == _video_packets(video_12s)
    assert _decoded_audio_seconds(mp4) == pytest.approx(12.0, abs=0.05)


def test_the_foley_sits_at_the_start_time_in_the_mux(tiny_bundle: Path, video_12s: Path, tmp_path: Path) -> None:
    """Silence before --start, the candidate after it: the first loud sample of the muxed audio is at start."""
    import av

    mp4 = tmp_path / "m.mp4"
    assert main(["generate", str(video_12s), "--start", "2.0", "--candidates", "1", "--steps", "2", "--bundle",
                 str(tiny_bundle), "--backend", "torch", "--out", str(tmp_path / "o"), "--mux", str(mp4), "-q"]) == 0
    with av.open(str(mp4)) as c:
        a = c.streams.audio[0]
        res = av.AudioResampler(format="flt", layout="mono", rate=16000)
        pcm = np.concatenate([r.to_ndarray().ravel() for f in c.decode(a) for r in res.resample(f)])
    loud = np.flatnonzero(np.abs(pcm) > 1e-3)
    assert loud.size and abs(loud[0] / 16000 - 2.0) < 0.05
    assert loud[-1] / 16000 < 2.0 + 8.192 + 0.05


def test_bad_inputs_exit_with_a_message(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert main(["generate", str(tmp_path / "missing.mp4"), "--bundle", str(tiny_bundle), "-q"]) == 2
    assert "error:" in capsys.readouterr().err
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    assert main(["generate", str(junk), "--bundle", str(tiny_bundle), "-q"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["generate", str(junk), "--bundle", str(tmp_path / "nobundle"), "-q"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_info_and_presets(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in out and "8.192 s" in out and "denoiser" in out
    assert main(["info", str(tiny_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "mdsgen-foley-bundle"
    assert main(["presets", "--spec", "audioldm"]) == 0
    out = capsys.readouterr().out
    assert "33.524M" in out and "131.633M" in out and "460.183M" in out and "8.689M" in out


def test_console_script_runs_as_a_program(tiny_bundle: Path) -> None:
    """The installed `foley` entry point (what the README calls) starts and describes a bundle."""
    exe = Path(sys.executable).with_name("foley")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "engine"]
    r = subprocess.run([*cmd, "info", str(tiny_bundle)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "random-t-test" in r.stdout


def test_mux_of_a_vp8_source_to_mp4_re_encodes_and_says_so(tiny_bundle: Path, video_vp8: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import av

    src = video_vp8
    mp4 = tmp_path / "film_foley.mp4"
    assert main(["generate", str(src), "-n", "1", "--steps", "2", "--bundle", str(tiny_bundle), "--backend",
                 "torch", "--out", str(tmp_path / "out"), "--mux", str(mp4), "-q"]) == 0
    assert "re-encoded to H.264" in capsys.readouterr().err
    with av.open(str(mp4)) as c:
        assert c.streams.video[0].codec_context.name == "h264" and len(c.streams.audio) == 1
    assert _decoded_audio_seconds(mp4) == pytest.approx(9.0, abs=0.05)


def test_guidance_interval_argument() -> None:
    from engine.cli import build_parser

    parse = lambda *a: build_parser().parse_args(["generate", "v.mp4", *a]).guidance_interval  # noqa: E731
    assert parse() == "default" and parse("--guidance-interval", "all") is None
    assert parse("--guidance-interval", "0.28,5.42") == (0.28, 5.42)
    for bad in ("5,1", "x", "1,2,3"):
        with pytest.raises(SystemExit):
            parse("--guidance-interval", bad)
