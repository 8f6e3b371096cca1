"""Transport and audio output: play the picture with the Foley track, or audition one candidate from its start.

`AudioOutput` wraps a sounddevice (PortAudio) output stream. `Playback` is the transport: position, play/pause,
J/K/L shuttle, and the clock that one display timer reads to move the playhead (30 per second). While audio plays
at normal speed, the clock is the audio itself (samples the device consumed, minus its latency; never ahead of the
wall clock), so picture and sound stay together. At other speeds, or with no audio device, the picture plays on a
wall clock without sound; a missing device is reported once and everything else keeps working.

The audio callback runs on PortAudio's thread and reads only an immutable `_Mix` snapshot that the GUI thread
swaps in whenever a source changes (clips edited, original muted, another candidate chosen).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QElapsedTimer, QObject, QTimer, Signal

from foley_app.document.document import ProjectDocument
from foley_app.errors import AudioDeviceError

log = logging.getLogger(__name__)

DISPLAY_INTERVAL_MS = 33
FALLBACK_RATE = 48_000
SHUTTLE_SPEEDS = (1.0, 2.0, 4.0, 8.0)


# ---- the device ----------------------------------------------------------------------------------------------
class AudioOutput:
    """A mono output stream on a named device ("" = the default), via sounddevice."""

    def __init__(self, device: str = "") -> None:
        self.device = device
        self.stream: Any = None
        self.rate = 0

    @staticmethod
    def _sd() -> Any:
        try:
            import sounddevice as sd
        except OSError as exc:  # the PortAudio library is missing
            raise AudioDeviceError(
                f"The PortAudio sound library is not installed ({exc}); on Debian/Ubuntu: apt install libportaudio2."
            ) from exc
        return sd

    def rescan(self) -> None:
        """Re-read the list of devices (after plugging one in)."""
        sd = self._sd()
        self.close()
        sd._terminate()
        sd._initialize()

    def output_devices(self) -> list[str]:
        try:
            sd = self._sd()
            return [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
        except Exception:
            return []

    def check(self) -> str:
        """The name of the device that would play, or AudioDeviceError saying why none can."""
        sd = self._sd()
        try:
            info = sd.query_devices(self.device or None, kind="output")
        except (ValueError, sd.PortAudioError) as exc:
            if self.device:
                raise AudioDeviceError(f"The audio device “{self.device}” is not available ({exc}).") from exc
            raise AudioDeviceError(f"No audio output device was found ({exc}).") from exc
        return str(info["name"])

    def open(self, callback: Any, preferred_rate: int = 16_000) -> int:
        """Start a stream calling `callback(out_block, frames)` at `preferred_rate` (the project's) if the device
        takes it, else at 48 kHz, else 16 kHz; returns the rate it runs at."""
        sd = self._sd()
        self.close()
        self.check()
        last: Exception | None = None
        for rate in dict.fromkeys((int(preferred_rate), FALLBACK_RATE, 16_000)):  # in order, without repeats

            def cb(outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
                callback(outdata, frames)

            try:
                stream = sd.OutputStream(samplerate=rate, channels=1, dtype="float32", device=self.device or None,
                                         callback=cb, latency="low")
            except (sd.PortAudioError, ValueError) as exc:
                last = exc
                continue
            self.stream, self.rate = stream, rate  # before start: the callback reads the rate
            try:
                stream.start()
            except sd.PortAudioError as exc:
                self.close()
                last = exc
                continue
            return rate
        raise AudioDeviceError(f"The audio device refused to play ({last}).")

    @property
    def latency(self) -> float:
        try:
            return float(self.stream.latency) if self.stream is not None else 0.0
        except Exception:
            return 0.0

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.abort()
                self.stream.close()
            except Exception as exc:
                log.debug("closing the audio stream: %s", exc)
            self.stream = None


# ---- what plays ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    audio: np.ndarray  # mono float32 at `rate`
    offset: int  # sample (at `rate`) of the timeline where audio[0] plays
    gain: float = 1.0


@dataclass(frozen=True)
class _Mix:
    rate: int
    sources: tuple[_Source, ...]


def render_block(mix: _Mix, start_time: float, frames: int, out_rate: int) -> np.ndarray:
    """`frames` output samples at `out_rate` from timeline time `start_time` (linear interpolation if rates differ)."""
    out = np.zeros(frames, np.float32)
    pos = start_time * mix.rate + np.arange(frames) * (mix.rate / out_rate)  # source sample positions
    for src in mix.sources:
        idx = pos - src.offset
        lo, hi = int(np.floor(idx[0])), int(np.ceil(idx[-1])) + 1
        if hi <= 0 or lo >= len(src.audio):
            continue
        if out_rate == mix.rate:
            i = np.round(idx).astype(np.int64)
            ok = (i >= 0) & (i < len(src.audio))
            out[ok] += src.gain * src.audio[i[ok]]
        else:
            src_x = np.arange(len(src.audio))
            out += src.gain * np.interp(idx, src_x, src.audio, left=0.0, right=0.0).astype(np.float32)
    return np.clip(out, -1.0, 1.0)


# ---- the transport ----------------------------------------------------------------------------------------------
class Playback(QObject):
    """Position, play/pause/shuttle, and what is heard (the track, or one candidate being auditioned)."""

    position_changed = Signal(float)
    state_changed = Signal()
    audio_failed = Signal(object)  # AudioDeviceError, once per failure streak
    audio_status_changed = Signal(str)

    def __init__(self, document: ProjectDocument, output: AudioOutput, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.output = output
        self.position = 0.0
        self.playing = False
        self.rate = 1.0  # signed speed: 1 normal, 2/4/8 fast, negative = reverse (J)
        self.mute_original = False
        self.audition: tuple[str, int] | None = None  # (segment id, take index) being auditioned
        self.audio_status = "Audio: idle"
        self._mix = _Mix(document.sample_rate, ())
        self._lock = threading.Lock()
        self._consumed = 0  # output samples the device took since `_start_pos`
        self._start_pos = 0.0
        self._audio_live = False
        self._audio_reported = False
        self._stop_at: float | None = None
        self._wall = QElapsedTimer()
        self.timer = QTimer(self)
        self.timer.setInterval(DISPLAY_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        document.clips_changed.connect(self._sources_changed)
        document.original_audio_changed.connect(self._sources_changed)
        document.project_replaced.connect(self._on_project_replaced)
        document.segment_changed.connect(self._on_segment_changed)

    # ---- facts ----------------------------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        v = self.doc.video
        return v.duration if v is not None else self.doc.total_samples() / self.doc.sample_rate

    @property
    def frame_step(self) -> float:
        v = self.doc.video
        return 1.0 / v.fps if v is not None and v.fps > 0 else 1.0 / 25.0

    # ---- sources ------------------------------------------------------------------------------------------------
    def _build_mix(self) -> _Mix:
        doc = self.doc
        sources: list[_Source] = []
        if self.audition is not None:
            seg = doc.segment(self.audition[0])
            if seg is not None and 0 <= self.audition[1] < len(seg.takes):
                take = seg.takes[self.audition[1]]
                start = take.start_in(seg)
                sources.append(_Source(doc.audio.get(take.audio_id), round(start * doc.sample_rate)))
        elif doc.project.clips:
            sources.append(_Source(doc.track_audio(), 0))
        if doc.original_audio is not None and not self.mute_original:
            sources.append(_Source(doc.original_audio, 0))
        return _Mix(doc.sample_rate, tuple(sources))

    def _sources_changed(self) -> None:
        self._mix = self._build_mix()

    def _on_project_replaced(self) -> None:
        self.stop()
        self.audition = None
        self.position = 0.0
        self._sources_changed()
        self.position_changed.emit(0.0)

    def _on_segment_changed(self, seg_id: str) -> None:
        if self.audition is not None and self.audition[0] == seg_id:
            seg = self.doc.segment(seg_id)
            if seg is None or self.audition[1] >= len(seg.takes):
                self.stop_audition()
            else:
                self._sources_changed()

    def set_mute_original(self, muted: bool) -> None:
        self.mute_original = muted
        self._sources_changed()
        self.state_changed.emit()

    # ---- transport ------------------------------------------------------------------------------------------------
    def current_time(self) -> float:
        if not self.playing:
            return self.position
        wall = self._start_pos + self.rate * self._wall.elapsed() / 1000.0
        if self._audio_live:
            # the device's clock (what it has played) leads; a device that takes samples faster than real time
            # (a null sink, some virtual devices) cannot run the picture ahead of the wall clock
            with self._lock:
                consumed = self._consumed
            return min(wall, self._start_pos + max(0.0, consumed / self.output.rate - self.output.latency))
        return wall

    def play(self) -> None:
        if self.playing:
            return
        end = self._stop_at if self._stop_at is not None else self.duration
        if self.rate > 0 and self.position >= end - 1e-3:
            self.position = 0.0 if self.audition is None else self.position
        self._start_pos = self.position
        self._consumed = 0
        self._audio_live = False
        if self.rate == 1.0:
            self._mix = self._build_mix()
            try:
                self.output.open(self._callback, self.doc.sample_rate)
                self._audio_live = True
                self._audio_reported = False
                self._set_audio_status(f"Audio: {self.output.check()} ({self.output.rate // 1000} kHz)")
            except AudioDeviceError as exc:
                self._set_audio_status("Audio: no output device — playing without sound")
                if not self._audio_reported:
                    self._audio_reported = True
                    self.audio_failed.emit(exc)
        else:
            self._set_audio_status(f"Audio: muted at {abs(self.rate):g}× {'reverse' if self.rate < 0 else 'speed'}")
        self._wall.start()
        self.playing = True
        self.timer.start()
        self.state_changed.emit()

    def pause(self) -> None:
        if not self.playing:
            return
        self.position = self._clamp(self.current_time())
        self.playing = False
        self.timer.stop()
        self.output.close()
        self._audio_live = False
        self.state_changed.emit()
        self.position_changed.emit(self.position)

    def stop(self) -> None:
        self.pause()
        self.rate = 1.0
        self._stop_at = None

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.rate = 1.0
            self.play()

    def seek(self, t: float) -> None:
        was = self.playing
        if was:
            self.pause()
        self.position = self._clamp(t)
        self.position_changed.emit(self.position)
        if was:
            self.play()

    def step_frames(self, n: int) -> None:
        self.seek(self.current_time() + n * self.frame_step)

    def shuttle(self, direction: int) -> None:
        """L (+1) / J (-1): play forward/backward, each further press in the same direction faster."""
        cur = self.rate if self.playing else 0.0
        if direction > 0:
            speed = SHUTTLE_SPEEDS[min(SHUTTLE_SPEEDS.index(cur) + 1, len(SHUTTLE_SPEEDS) - 1)] if cur > 0 else 1.0
        else:
            speed = -SHUTTLE_SPEEDS[min(SHUTTLE_SPEEDS.index(-cur) + 1, len(SHUTTLE_SPEEDS) - 1)] if cur < 0 else -1.0
        self.pause()
        self.rate = speed
        self.play()

    # ---- audition ---------------------------------------------------------------------------------------------------
    def audition_take(self, seg_id: str, index: int, *, restart: bool = True, at: float | None = None) -> None:
        """Play candidate `index` of a segment with the picture from its start (or keep the position, flipping;
        or from time `at`, a click on its take lane, where that is inside the take)."""
        seg = self.doc.segment(seg_id)
        if seg is None or not 0 <= index < len(seg.takes):
            return
        take = seg.takes[index]
        start = take.start_in(seg)
        end = start + len(self.doc.audio.get(take.audio_id)) / self.doc.sample_rate
        pos = self.current_time()
        keep = not restart and self.playing and self.audition is not None and start <= pos < end
        self.pause()
        self.audition = (seg_id, index)
        self._stop_at = min(end, self.duration)
        self.rate = 1.0
        self.position = pos if keep else start
        if at is not None and start <= at < end:
            self.position = at
        self.position_changed.emit(self.position)
        self.play()
        self.state_changed.emit()

    def stop_audition(self) -> None:
        was = self.audition is not None
        self.audition = None
        self._stop_at = None
        if was:
            self.pause()
            self._sources_changed()
            self.state_changed.emit()

    # ---- internals --------------------------------------------------------------------------------------------------
    def _clamp(self, t: float) -> float:
        return min(max(t, 0.0), max(self.duration - 1e-6, 0.0))

    def _set_audio_status(self, text: str) -> None:
        self.audio_status = text
        self.audio_status_changed.emit(text)

    def _callback(self, outdata: np.ndarray, frames: int) -> None:
        with self._lock:
            consumed = self._consumed
            self._consumed += frames
        t = self._start_pos + consumed / self.output.rate
        outdata[:, 0] = render_block(self._mix, t, frames, self.output.rate)

    def _tick(self) -> None:
        t = self.current_time()
        end = self._stop_at if self._stop_at is not None else self.duration
        if (self.rate > 0 and t >= end) or (self.rate < 0 and t <= 0.0):
            self.position = self._clamp(min(max(t, 0.0), end))
            self.pause()
            if self.audition is not None and self._stop_at is not None:
                # the take ended: go back to its start, ready to compare the next one
                seg = self.doc.segment(self.audition[0])
                if seg is not None and self.audition[1] < len(seg.takes):
                    self.position = seg.takes[self.audition[1]].start_in(seg)
            self.rate = 1.0
            self.position_changed.emit(self.position)
            return
        self.position = t
        self.position_changed.emit(t)
