"""Helpers of the editor's tests: a scripted prompter (answers dialogs), a fake engine, waiting helpers."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine import (
    Cancelled,
    Candidate,
    EngineInfo,
    GenerationResult,
    InvalidRequestError,
    Progress,
    check_hits,
    probe_video,
)


class ScriptedPrompter:
    """Stands in for the user at every dialog: answers from queues, records what was shown."""

    def __init__(self) -> None:
        self.answers: dict[str, deque] = defaultdict(deque)
        self.errors: list = []
        self.infos: list[tuple[str, str]] = []
        self.asked: list[tuple[str, str, list[str]]] = []

    def queue(self, method: str, *answers: Any) -> None:
        self.answers[method].extend(answers)

    def _next(self, method: str, default: Any) -> Any:
        q = self.answers[method]
        return q.popleft() if q else default

    def error(self, msg: Any) -> None:
        self.errors.append(msg)

    def info(self, title: str, text: str) -> None:
        self.infos.append((title, text))

    def ask(self, title: str, text: str, choices: list[str], default: str, *, details: str = "") -> str:
        self.asked.append((title, text, choices))
        answer = self._next("ask", "Cancel")
        assert answer in choices, f"scripted answer {answer!r} is not among {choices} for {title!r}"
        return answer

    def open_file(self, title: str, directory: str, filters: str) -> str | None:
        return self._next("open_file", None)

    def save_file(self, title: str, suggested: str, filters: str) -> str | None:
        return self._next("save_file", None)

    def export_options(self, defaults: Any) -> Any:
        self.export_defaults = defaults
        return self._next("export_options", None)

    def recover(self, description: str) -> str:
        self.recover_description = description
        return self._next("recover", "later")

    def still_length(self, image_name: str, default: float, folder: str) -> float | None:
        self.still_asked = (image_name, default, folder)
        return self._next("still_length", default)


class FakeEngine:
    """The engine's generate() contract with noise for audio; `gate` (if set) holds each call until released.

    Hits: `detector` (a function start -> hit times) makes it an engine with a hit detector; `takes_hits` says
    whether its "denoiser" follows them. `hits_calls` records the `hits` argument of every generate() call,
    `detect_calls` the start of every detect_hits() call; `detect_gate` (if set) holds detection until released.
    """

    def __init__(self, *, duration: float = 8.192, sample_rate: int = 16_000,
                 detector: Callable[[float], list[float]] | None = None, takes_hits: bool = True) -> None:
        self.duration = duration
        self.sample_rate = sample_rate
        self.gate: threading.Event | None = None
        self.calls: list[tuple[str, float, int, int]] = []
        self.started = threading.Event()
        self.detector = detector
        self.takes_hits = takes_hits
        self.hits_calls: list[Any] = []
        self.detect_calls: list[float] = []
        self.prepare_calls: list[float] = []
        self.quality_calls: list[str] = []
        self.detect_gate: threading.Event | None = None
        self.rate_calls: list[int | None] = []

    @property
    def has_hit_detector(self) -> bool:
        return self.detector is not None

    def detect_hits(self, video: str, start: float, *, should_cancel: Callable[[], bool] | None = None) -> list[float]:
        if self.detector is None:
            raise InvalidRequestError("bundle 'fake-engine' has no hit detector; give the hits yourself")
        probe_video(video)
        self.detect_calls.append(start)
        if self.detect_gate is not None:
            while not self.detect_gate.wait(0.01):
                if should_cancel and should_cancel():
                    raise Cancelled("hit detection cancelled")
        return list(self.detector(start))

    def prepare(self, video: str, start: float, *, should_cancel: Callable[[], bool] | None = None) -> None:
        self.prepare_calls.append(start)

    def describe(self) -> EngineInfo:
        return EngineInfo(bundle="", name="fake-engine", random_weights=True, backend="fake", device="cpu",
                          providers=(), fallback_reason=None, segment_seconds=self.duration,
                          sample_rate=self.sample_rate, vocoder="none", output_rates=(self.sample_rate,),
                          default_output_rate=self.sample_rate, bwe=None)

    def close(self) -> None:
        pass

    def generate(self, video: str, start: float = 0.0, *, candidates: int = 4, seed: int = 0, steps: int | None = None,
                 guidance: float | None = None, hits: Any = "auto", sample_rate: int | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 should_cancel: Callable[[], bool] | None = None, quality: str = "final") -> GenerationResult:
        self.calls.append((str(video), start, candidates, seed))
        self.quality_calls.append(quality)
        rate = int(sample_rate or self.sample_rate)
        self.rate_calls.append(sample_rate)
        self.hits_calls.append(hits if isinstance(hits, str) else list(hits))
        if isinstance(hits, str):
            used = self.detect_hits(video, start) if self.detector is not None and self.takes_hits else []
            source = "detected" if used else "none"
        else:
            used = check_hits(hits, self.duration) if self.takes_hits else []
            source = ("user" if used else "none") if self.takes_hits else ("ignored" if hits else "none")
        probe_video(video)
        self.started.set()
        if self.gate is not None:
            while not self.gate.wait(0.01):
                if should_cancel and should_cancel():
                    raise Cancelled("generation cancelled")
        n = round(self.duration * rate)
        cands = []
        for k in range(candidates):
            if should_cancel and should_cancel():
                raise Cancelled("generation cancelled")
            if on_progress:
                on_progress(Progress("denoise", (k + 1) / candidates, f"candidate {k + 1}/{candidates}"))
            audio = (0.1 * np.random.default_rng(seed + k).standard_normal(n)).astype(np.float32)
            settings = {"bundle": "fake-engine", "video": str(video), "start": float(start), "duration": self.duration,
                        "steps": steps or 25, "guidance": guidance or 5.0, "candidates": candidates,
                        "backend": "fake", "seed": seed + k, "candidate": k, "hits": list(used),
                        "hits_source": source, "sample_rate": rate, "generated_rate": self.sample_rate,
                        "rate_stage": "none" if rate == self.sample_rate else "resample"}
            cands.append(Candidate(k, seed + k, audio, np.zeros((128, 512), np.float32), rate, settings))
        return GenerationResult(cands, str(video), float(start), self.duration, rate,
                                {**cands[0].settings, "seed": seed}, timings={"total": 0.01})


def wait_for(qtbot: Any, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    qtbot.waitUntil(condition, timeout=int(timeout * 1000))


def open_video(qtbot: Any, window: Any, path: Path) -> None:
    with qtbot.waitSignal(window.editor.video_opened, timeout=20_000):
        window.editor.open_path(path)
    wait_for(qtbot, lambda: not window.ctx.jobs.busy("thumbnails"), 20)


def elapsed(t0: float) -> float:
    return time.perf_counter() - t0


