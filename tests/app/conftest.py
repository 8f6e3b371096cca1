"""Fixtures of the editor's tests: a scripted prompter (answers dialogs), a window factory, audio devices, engines.

Qt runs offscreen (tests/conftest.py). Audio: `null_audio` points ALSA's default device at a null sink (playback
succeeds, nothing is heard); `no_audio` leaves PortAudio with no output device at all. Engines: `tiny_engine` is the
real engine on the tiny random-weight bundle; `FakeEngine` is a stand-in with the engine's generate signature that
returns noise at once (or when released), for the tests of job handling where the model's output does not matter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ScriptedPrompter


def _reinit_portaudio() -> Any:
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return sd


@contextlib.contextmanager
def _alsa_config(home: Path, asoundrc: str) -> Iterator[Any]:
    """HOME points at a folder whose .asoundrc is `asoundrc`, PortAudio re-reads it; both restored on exit."""
    (home / ".asoundrc").write_text(asoundrc)
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield _reinit_portaudio()
    finally:
        if old is not None:
            os.environ["HOME"] = old
        _reinit_portaudio()


@pytest.fixture
def null_audio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ALSA's default device is a null sink: audio 'plays' (fast, silent) as on a machine with a sound card."""
    rc = "pcm.!default { type null }\nctl.!default { type hw card 0 }\n"
    with _alsa_config(tmp_path_factory.mktemp("nullhome"), rc) as sd:
        if not any(d["max_output_channels"] > 0 for d in sd.query_devices()):
            pytest.skip("ALSA's null device is not available here")
        yield


@pytest.fixture
def no_audio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """PortAudio finds no output device (as on a server or a VM without sound)."""
    rc = "pcm.!default { type hw card 99 }\nctl.!default { type hw card 99 }\n"
    with _alsa_config(tmp_path_factory.mktemp("noaudiohome"), rc) as sd:
        try:
            sd.query_devices(kind="output")
        except Exception:
            pass
        else:
            pytest.skip("this machine has a working sound card; the no-device path cannot be forced here")
        yield


@pytest.fixture(scope="session")
def tiny_engine(tiny_bundle: Path) -> Iterator[Any]:
    from engine import load_engine

    engine = load_engine(tiny_bundle, backend="torch")
    yield engine
    engine.close()


@pytest.fixture
def make_window(qtbot: Any, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build a main window with its own settings, autosave folder and scripted prompter."""
    from foley_app.app import build_context, build_editor
    from foley_app.settings import Settings
    from foley_app.views import theme
    from foley_app.views.main_window import MainWindow

    theme.configure_pyqtgraph()
    made: list[Any] = []

    def make(*, engine: Any = None, candidates: int = 2, steps: int = 2, autosave_s: int = 0,
             autosave_root: Path | None = None, name: str = "w", output_rate: int | None = 16_000) -> Any:
        """output_rate: the preference of new projects (16 kHz, as the tests' numbers assume; None: the app's
        default)."""
        settings = Settings(tmp_path / f"{name}-settings.ini")
        settings.candidates, settings.steps, settings.autosave_seconds = candidates, steps, autosave_s
        if output_rate is not None:
            settings.output_rate = output_rate
        ctx = build_context(settings, autosave_root=autosave_root or tmp_path / "autosave", logs=tmp_path / "logs",
                            stills=tmp_path / f"{name}-stills")
        prompter = ScriptedPrompter()
        editor, frames = build_editor(ctx, prompter)
        window = MainWindow(ctx, editor, frames, prompter)
        window.prompter_ = prompter
        window.resize(1280, 800)
        qtbot.addWidget(window)
        window.show()
        if engine is not None:
            ctx.engine.set_engine(engine)
        made.append(window)
        return window

    yield make
    for window in made:
        window.ctx.shutdown()
