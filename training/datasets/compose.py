"""Audio composition: place real recordings at event times, vary gain, pitch and room, mix to the segment spec.

Onset convention (docs/dataset.md): an event's time is the time of its visible impact frame, and the processed
recording (resampled to the clip rate, pitch-shifted, distance-filtered) is placed so that its onset sample, the
first sample whose magnitude reaches -40 dB relative to its peak (or clearly rises above a noisy head: see
`sources.onset_index`), lands exactly on that time, to the sample. Pitch shifting is by resampling (the sound
gets shorter when higher, as a smaller or faster source would); distance is a gentle low-pass and a lower level;
the room is pedalboard's reverb (with the dry signal at unity, so the onset stays where it is) on the event bus
only; ambience beds are looped with a crossfade and run under the whole clip. Everything is deterministic for a
given random generator.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets.sources import Recording, onset_index

SAMPLE_RATE = 16_000


class RecordingBank:
    """Loads recordings as mono float32 at the clip rate, with a small LRU cache (one per worker process)."""

    def __init__(self, extracted_root: Path, sample_rate: int = SAMPLE_RATE, max_items: int = 192) -> None:
        self.root = Path(extracted_root)
        self.sample_rate = sample_rate
        self.max_items = max_items
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def load(self, rec: Recording) -> np.ndarray:
        hit = self._cache.get(rec.id)
        if hit is not None:
            self._cache.move_to_end(rec.id)
            return hit
        import soundfile as sf

        data, sr = sf.read(str(self.root / rec.local), dtype="float32", always_2d=True)
        x = data.mean(axis=1)
        if sr != self.sample_rate:
            x = resample(x, sr, self.sample_rate)
        x = np.ascontiguousarray(x, dtype=np.float32)
        x.flags.writeable = False
        self._cache[rec.id] = x
        if len(self._cache) > self.max_items:
            self._cache.popitem(last=False)
        return x


def resample(x: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """Band-limited resampling (soxr, linear phase, deterministic)."""
    import librosa

    return librosa.resample(np.asarray(x, np.float32), orig_sr=float(sr_in), target_sr=float(sr_out),
                            res_type="soxr_hq").astype(np.float32)


def shift_pitch(x: np.ndarray, semitones: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Raise (or lower) the pitch by `semitones` by resampling: duration scales by 2**(-semitones/12)."""
    if abs(semitones) < 1e-6:
        return np.asarray(x, np.float32)
    return resample(x, sr * 2 ** (semitones / 12), sr)


@dataclass
class PlacedSound:
    """One event's sound: a recording placed so that its onset lands on `time`."""

    recording: Recording
    time: float  # seconds from the clip start; a multiple of 1/fps (the impact frame)
    level_db: float  # peak level of the processed event in the mix before the master gain (dBFS)
    pitch_semitones: float
    lowpass_hz: float | None = None  # distance filter
    max_seconds: float | None = None  # cut this long after the onset, with a 30 ms fade


@dataclass
class AmbienceBed:
    recording: Recording
    offset: float  # where in the recording the clip starts (s, at the clip rate)
    rms_db: float  # RMS level of the bed before the master gain (dBFS)


@dataclass
class Room:
    room_size: float
    damping: float
    wet_level: float

    def to_json(self) -> dict[str, float]:
        return {"room_size": round(self.room_size, 3), "damping": round(self.damping, 3),
                "wet_level": round(self.wet_level, 3)}


def _fade_out(x: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(x))
    if n > 0:
        x = x.copy()
        x[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return x


def _lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    import pedalboard

    board = pedalboard.Pedalboard([pedalboard.LowpassFilter(cutoff_frequency_hz=float(cutoff))])
    return board(x[None].astype(np.float32), sr)[0]


def _loop_to(x: np.ndarray, offset: int, n: int, fade: int) -> np.ndarray:
    """`n` samples of `x` from `offset`, looping with a linear crossfade of `fade` samples at each wrap."""
    fade = max(1, min(fade, len(x) // 4))
    out = np.zeros(n + len(x) + fade, np.float32)
    first = x[offset:]
    out[: len(first)] = first
    end = len(first)
    down = np.linspace(1.0, 0.0, fade, dtype=np.float32)
    while end < n:
        s = max(0, end - fade)
        out[s:end] *= down[fade - (end - s) :]
        piece = x.astype(np.float32, copy=True)
        piece[: end - s] *= 1.0 - down[fade - (end - s) :]
        out[s : s + len(piece)] += piece
        end = s + len(piece)
    return out[:n].copy()


def mix_clip(
    events: list[PlacedSound],
    ambience: AmbienceBed | None,
    room: Room | None,
    num_samples: int,
    bank: RecordingBank,
    master_peak_db: float,
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """The clip's audio (float32, `num_samples`) and, per event, what was done to its source.

    Each event record holds `onset_in_source` (s, after pitch/filter), `peak_offset` (s from the onset to the first
    sample at half the peak: how far the main transient trails the onset), `gain_db` (the gain applied to the source
    file's samples, master included, so `source * 10**(gain_db/20)` is what is in the file before the room) and
    `seconds` (how much of it plays). The master gain scales the mix so that its peak is `master_peak_db`.
    """
    sr = bank.sample_rate
    bus = np.zeros(num_samples, np.float32)
    records: list[dict[str, Any]] = []
    for ev in events:
        x = bank.load(ev.recording)
        x = shift_pitch(x, ev.pitch_semitones, sr)
        if ev.lowpass_hz:
            x = _lowpass(x, ev.lowpass_hz, sr)
        on = onset_index(x, sr)
        peak = float(np.abs(x).max()) or 1.0
        gain = 10 ** (ev.level_db / 20) / peak
        at = round(ev.time * sr)
        start = at - on
        seg = x
        if start < 0:  # the recording's pre-onset would start before the clip: drop that part
            seg, start = seg[-start:], 0
        end = len(seg)
        if ev.max_seconds is not None:
            end = min(end, (at - start) + round(ev.max_seconds * sr))
        end = min(end, num_samples - start)
        cut = end < len(seg)
        seg = seg[:end]
        if cut:
            seg = _fade_out(seg, round(0.03 * sr))
        bus[start : start + len(seg)] += seg * gain
        half = int(np.argmax(np.abs(x) >= 0.5 * peak))  # the main transient, for soft-attack sounds
        records.append({"onset_in_source": on / sr, "peak_offset": max(0, half - on) / sr, "source_gain": gain,
                        "seconds": len(seg) / sr})

    if room is not None and room.wet_level > 0:
        import pedalboard

        board = pedalboard.Pedalboard([pedalboard.Reverb(room_size=room.room_size, damping=room.damping,
                                                         wet_level=room.wet_level, dry_level=1.0, width=0.0)])
        bus = board(bus[None], sr)[0].astype(np.float32)

    amb_info: dict[str, Any] = {}
    mix = bus
    if ambience is not None:
        y = bank.load(ambience.recording)
        off = round(ambience.offset * sr) % max(1, len(y))
        bed = _loop_to(y, off, num_samples, round(0.25 * sr))
        rms = float(np.sqrt(np.mean(bed.astype(np.float64) ** 2))) or 1.0
        g = 10 ** (ambience.rms_db / 20) / rms
        mix = bus + bed * g
        amb_info = {"source_gain": g}

    peak = float(np.abs(mix).max())
    master = 10 ** (master_peak_db / 20) / peak if peak > 0 else 1.0
    mix = (mix * master).astype(np.float32)
    for r in records:
        r["gain_db"] = 20 * math.log10(r.pop("source_gain") * master)
    if amb_info:
        amb_info["gain_db"] = 20 * math.log10(amb_info.pop("source_gain") * master)
    return mix, records, {"master_gain_db": 20 * math.log10(master), "ambience": amb_info}


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as int16 (rounded, clipped): what the FLAC track stores."""
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
