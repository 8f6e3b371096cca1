"""engine.bwf: 24-bit Broadcast WAVs whose bext chunk places them on the timeline (time reference in samples)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.bwf import parse_timecode, read_bext, write_bwf
from engine.errors import InvalidRequestError, VideoReadError


def test_a_bwf_reads_back_its_samples_and_its_place(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    audio = (0.5 * rng.standard_normal(16000 * 2)).clip(-1, 1).astype(np.float32)
    when = datetime(2026, 12, 3, 14, 5, 6)
    path = write_bwf(tmp_path / "stem.wav", audio, 48000, time_reference=3600 * 48000 + 307200,
                     description="Foley stem seg-001", originator_reference="default-s3", when=when,
                     coding_history="A=PCM,F=48000,W=24,M=mono\r\n")
    back, rate = sf.read(path, dtype="float32")
    assert rate == 48000 and sf.info(path).subtype == "PCM_24"
    assert np.max(np.abs(back - audio)) < 2.0 ** -22  # 24-bit quantisation, nothing else
    bext = read_bext(path)
    assert bext is not None
    assert bext.time_reference == 3600 * 48000 + 307200
    assert bext.description == "Foley stem seg-001" and bext.originator_reference == "default-s3"
    assert (bext.origination_date, bext.origination_time) == ("2026-12-03", "14:05:06")
    assert bext.version == 2 and bext.coding_history.startswith("A=PCM,F=48000")
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file


def test_stereo_and_a_time_reference_beyond_32_bits(tmp_path: Path) -> None:
    audio = np.zeros((100, 2), np.float32)
    audio[:, 1] = 0.25
    ref = 23 * 3600 * 192000  # 1.59e10 samples: needs the high word
    path = write_bwf(tmp_path / "st.wav", audio, 192000, time_reference=ref)
    back, _ = sf.read(path, dtype="float32")
    assert back.shape == (100, 2) and np.allclose(back[:, 1], 0.25, atol=1e-6)
    assert read_bext(path).time_reference == ref


def test_a_plain_wav_has_no_bext_and_other_files_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.wav"
    sf.write(plain, np.zeros(10, np.float32), 16000)
    assert read_bext(plain) is None
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wave file at all")
    with pytest.raises(VideoReadError, match="not a WAV"):
        read_bext(junk)


@pytest.mark.parametrize("audio,rate,ref,match", [
    (np.full(10, np.nan, np.float32), 16000, 0, "NaN"),
    (np.zeros((2, 2, 2), np.float32), 16000, 0, "shape"),
    (np.zeros(10, np.float32), 0, 0, "sample_rate"),
    (np.zeros(10, np.float32), 16000, -1, "time reference"),
])
def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path, audio, rate, ref, match) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        write_bwf(tmp_path / "bad.wav", audio, rate, time_reference=ref)
    assert not list(tmp_path.iterdir())


def test_timecodes() -> None:
    assert parse_timecode("01:00:00:00", 25) == 3600.0
    assert parse_timecode("00:00:10:12", 24) == pytest.approx(10.5)
    assert parse_timecode("00:59:59;29", 29.97) == pytest.approx(3599 + 29 / 29.97)
    assert parse_timecode(None, 25) == 0.0
    assert parse_timecode("garbage", 25) == 0.0
    assert parse_timecode("25:00:00:00", 25) == 0.0
