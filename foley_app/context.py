"""`AppContext`: everything the app is made of, built once by the composition root (`app.py`); no singletons.

`EngineHandle` keeps the model loaded once for the whole session: it is loaded by a job on the one-thread
inference pool, so generations queued meanwhile simply run after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine import DIFF_FOLEY, EngineInfo, FoleyEngine, load_engine
from foley_app.autosave import Autosaver
from foley_app.document.document import ProjectDocument
from foley_app.errors import NoEngineError
from foley_app.jobs import Job, JobRunner
from foley_app.playback import Playback
from foley_app.settings import Settings

log = logging.getLogger(__name__)


class EngineState(str, Enum):
    """Where the session's engine is (a str, so that `state_changed` carries it and it compares with its value)."""

    NONE = "none"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class EngineHandle(QObject):
    """The session's engine: loading, ready, failed or none; what is loaded, for the status bar."""

    state_changed = Signal(str)

    def __init__(self, jobs: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self.engine: FoleyEngine | Any | None = None
        self.state = EngineState.NONE
        self.error: BaseException | None = None
        self.bundle: str = ""
        self._info: EngineInfo | None = None  # the loaded engine's `describe()`
        self.has_hit_detector = False  # the loaded bundle can find hits (engine.detect_hits)
        self.takes_hits = False  # the loaded bundle's denoiser follows hits (others ignore them)

    def load(self, bundle: str | None, backend: str = "auto") -> Job:
        """Load `bundle` ("" or None = the engine's default) in the background, replacing any loaded engine."""
        old = self.engine
        self.engine, self.error, self.bundle, self._info = None, None, bundle or "", None
        self.has_hit_detector = self.takes_hits = False
        self._set_state(EngineState.LOADING)

        def work(report, should_cancel):
            if old is not None and hasattr(old, "close"):
                old.close()
            report(0.1, "loading the model bundle")
            return load_engine(bundle or None, backend=backend)

        return self._jobs.submit(
            "load", "Loading the model", work, inference=True, on_result=self._loaded, on_error=self._failed
        )

    def set_engine(self, engine: Any) -> None:
        """Use an already loaded engine (embedding, tests)."""
        self.engine, self.error = engine, None
        self._info = engine.describe()
        self.has_hit_detector, self.takes_hits = bool(engine.has_hit_detector), bool(engine.takes_hits)
        self._set_state(EngineState.READY)

    def _loaded(self, _job: Job, engine: FoleyEngine) -> None:
        self.set_engine(engine)
        info = self._info
        log.info("engine ready: %s", info.to_dict() if info is not None else None)

    def _failed(self, _job: Job, exc: BaseException) -> None:
        self.error = exc
        log.warning("model bundle could not be loaded: %s", exc)
        self._set_state(EngineState.FAILED)

    def _set_state(self, state: EngineState) -> None:
        self.state = state
        self.state_changed.emit(state.value)

    # ---- facts ------------------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    def describe(self) -> EngineInfo | None:
        """What the loaded engine is (`FoleyEngine.describe`); None while none is loaded."""
        return self._info

    @property
    def random_weights(self) -> bool:
        return self._info is not None and bool(self._info.random_weights)

    @property
    def segment_duration(self) -> float:
        """Length of one generated segment: the loaded bundle's, else the paper's 8.192 s."""
        return float(self._info.segment_seconds if self._info is not None else DIFF_FOLEY.duration)

    def require(self) -> Any:
        """The engine, for a job about to generate (any thread); NoEngineError says why there is none."""
        if self.engine is not None:
            return self.engine
        if self.error is not None:
            raise NoEngineError(f"No model is loaded: {self.error}")
        raise NoEngineError("No model is loaded (the model bundle has not been loaded).")

    def status_text(self) -> str:
        if self.state is EngineState.LOADING:
            return "Model: loading…"
        if self.state is EngineState.FAILED:
            return "Model: not loaded — generation unavailable"
        i = self._info
        if self.state is not EngineState.READY or i is None:
            return "Model: none"
        where = f"{i.backend}/{i.device}"
        if i.random_weights:
            return f"Model: {i.name} — RANDOM WEIGHTS (test bundle: output is noise, not Foley) · {where}"
        return f"Model: {i.name} · {where}"


@dataclass
class AppContext:
    """The composition: settings, job runner, engine, document, playback, autosave and the app's folders."""

    settings: Settings
    jobs: JobRunner
    engine: EngineHandle
    document: ProjectDocument
    playback: Playback
    autosaver: Autosaver
    log_dir: Path
    stills_dir: Path  # where the videos of opened still images are made (the user's cache folder)

    def shutdown(self) -> None:
        self.playback.stop()
        self.jobs.shutdown()
        self.autosaver.close_session()
