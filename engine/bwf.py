"""Broadcast WAV stems: 24-bit PCM WAV with a `bext` chunk (EBU Tech 3285 v2) that places the file on a timeline.

A DAW (REAPER, Pro Tools, Nuendo, Fairlight) imports a BWF at its `TimeReference`: the sample count since
midnight at which the file's first sample sits, at the file's own rate. For a stem of the Foley track that is the
stem's position in the video plus the video's start timecode (00:00:00:00 unless its container says otherwise).

Written by hand because no registry package writes `bext` (libsndfile can, but python-soundfile does not expose
its broadcast-info command): soundfile writes the PCM WAV into memory and this module puts the 602-byte fixed
part plus the coding history in a `bext` chunk after the RIFF header, before `fmt `, as EBU 3285 recommends.
`read_bext` reads it back (and any other reader's BWF). Files are written atomically.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.atomic import atomic_write_bytes
from engine.errors import InvalidRequestError, VideoReadError

_BEXT_FIXED = struct.Struct("<256s32s32s10s8sIIH64shhhhh180s")  # 602 bytes
assert _BEXT_FIXED.size == 602
_MAX_RIFF = 2**32 - 1


@dataclass(frozen=True)
class BextInfo:
    """The fields of a `bext` chunk a DAW uses (strings decoded, loudness fields left out)."""

    description: str
    originator: str
    originator_reference: str
    origination_date: str  # yyyy-mm-dd
    origination_time: str  # hh:mm:ss
    time_reference: int  # samples since midnight, at the file's sample rate
    version: int
    coding_history: str


def _ascii(text: str, size: int) -> bytes:
    """A fixed-width ASCII field (struct pads it with NULs; longer text is cut, as the fields are fixed)."""
    return text.encode("ascii", "replace")[:size]


def bext_chunk(info: BextInfo) -> bytes:
    """The `bext` chunk (id, size, payload, pad byte) for `info`."""
    if not 0 <= info.time_reference < 2**64:
        raise InvalidRequestError(f"time reference must be 0 .. 2^64 - 1 samples, got {info.time_reference}")
    payload = _BEXT_FIXED.pack(
        _ascii(info.description, 256),
        _ascii(info.originator, 32),
        _ascii(info.originator_reference, 32),
        _ascii(info.origination_date, 10),
        _ascii(info.origination_time, 8),
        info.time_reference & 0xFFFFFFFF,
        info.time_reference >> 32,
        info.version,
        b"",  # UMID: none
        0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF,  # loudness values not given (EBU 3285 v2: 0x7FFF)
        b"",
    ) + info.coding_history.encode("ascii", "replace")
    pad = b"\0" if len(payload) % 2 else b""
    return b"bext" + struct.pack("<I", len(payload)) + payload + pad


def bwf_bytes(audio: np.ndarray, sample_rate: int, info: BextInfo) -> bytes:
    """A whole BWF file in memory: 24-bit PCM of `audio` ((n,) or (n, channels), float in [-1, 1])."""
    data = np.asarray(audio)
    if data.ndim not in (1, 2) or not np.issubdtype(data.dtype, np.floating):
        raise InvalidRequestError(f"audio must be float samples of shape (n,) or (n, channels), got "
                                  f"{data.dtype} {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InvalidRequestError("audio holds NaN or infinite samples")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidRequestError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    buf = io.BytesIO()
    sf.write(buf, np.clip(data, -1.0, 1.0).astype(np.float32), int(sample_rate), subtype="PCM_24", format="WAV")
    wav = buf.getvalue()
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise InvalidRequestError("the WAV writer did not write a RIFF/WAVE file")  # never seen: a libsndfile change
    chunk = bext_chunk(info)
    body = wav[12:]
    size = 4 + len(chunk) + len(body)
    if size > _MAX_RIFF:
        raise InvalidRequestError(f"{len(data) / sample_rate / 3600:.1f} h of audio is more than a WAV file holds "
                                  "(4 GiB); export shorter stems")
    return b"RIFF" + struct.pack("<I", size) + b"WAVE" + chunk + body


def write_bwf(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int, *, time_reference: int = 0,
              description: str = "", originator: str = "MDSGen Foley", originator_reference: str = "",
              when: datetime | None = None, coding_history: str = "") -> Path:
    """Write a 24-bit Broadcast WAV whose first sample sits at `time_reference` samples since midnight
    (atomically: temp file, fsync, rename). Returns the path."""
    when = when or datetime.now()
    info = BextInfo(description, originator, originator_reference, when.strftime("%Y-%m-%d"),
                    when.strftime("%H:%M:%S"), int(time_reference), 2, coding_history)
    target = Path(path)
    atomic_write_bytes(target, bwf_bytes(audio, sample_rate, info))
    return target


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def read_bext(path: str | os.PathLike[str]) -> BextInfo | None:
    """The `bext` chunk of a WAV file, or None if it has none. VideoReadError if it is not a RIFF/WAVE file."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise VideoReadError(f"{p} is not a WAV file (no RIFF/WAVE header)")
            while True:
                hdr = fh.read(8)
                if len(hdr) < 8:
                    return None
                cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"bext":
                    payload = fh.read(size)
                    if len(payload) < _BEXT_FIXED.size:
                        raise VideoReadError(f"{p}: its bext chunk is truncated ({len(payload)} of 602 bytes)")
                    f = _BEXT_FIXED.unpack(payload[: _BEXT_FIXED.size])
                    return BextInfo(_text(f[0]), _text(f[1]), _text(f[2]), _text(f[3]),
                                    _text(f[4]).replace("-", ":"), f[5] | (f[6] << 32), f[7],
                                    _text(payload[_BEXT_FIXED.size:]))
                fh.seek(size + (size & 1), os.SEEK_CUR)
    except OSError as exc:
        raise VideoReadError(f"Cannot read {p}: {exc}") from exc


def parse_timecode(tc: str | None, fps: float) -> float:
    """Seconds since midnight of a SMPTE timecode "HH:MM:SS:FF" (or ";" drop-frame, counted as non-drop: the
    difference is under 0.1 % and only matters beyond an hour); 0.0 for None or anything unreadable."""
    if not tc:
        return 0.0
    parts = tc.replace(";", ":").replace(".", ":").split(":")
    try:
        h, m, s, f = (int(x) for x in parts)
    except ValueError:
        return 0.0
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60 and f >= 0):
        return 0.0
    return h * 3600 + m * 60 + s + (f / fps if fps > 0 else 0.0)
