"""The composition root: QApplication, logging, the excepthook, settings, the context and the main window.

`build_context` assembles the app's parts (tests call it with their own settings and folders); `run` is what
`foley-app` does: parse the command line, build everything, offer crash recovery, open the file given, load the
model in the background, and enter the event loop.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QStandardPaths, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from foley_app.autosave import Autosaver, default_autosave_root
from foley_app.context import AppContext, EngineHandle
from foley_app.document.document import ProjectDocument
from foley_app.jobs import JobRunner
from foley_app.playback import AudioOutput, Playback
from foley_app.settings import Settings

log = logging.getLogger("foley_app")

APP_NAME = "Foley Editor"
ORG_NAME = "MDSGen"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="foley-app", description="The Foley editor: generate, audition, splice and "
                                "export Foley for a video (MDSGen).")
    p.add_argument("file", nargs="?", help="a video (anything FFmpeg reads) or a .foleyproj project to open")
    p.add_argument("--bundle", help="model bundle folder (default: the one in Preferences, else the shipped model)")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], help="inference backend (default: Preferences)")
    p.add_argument("--settings", help="use this INI file for preferences instead of the user's")
    p.add_argument("--autosave-dir", help="folder for autosaves (default: the app-data folder)")
    p.add_argument("--no-recovery", action="store_true", help="do not offer to recover autosaves at start-up")
    return p.parse_args(argv)


def log_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base or Path.home() / ".mdsgen-foley") / "logs"


def default_stills_dir() -> Path:
    """Where the videos of opened still images are made: the app's cache folder (on Linux
    ~/.cache/MDSGen/Foley Editor/stills). Losing it loses nothing: a project makes its still's video again."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    return Path(base or Path.home() / ".mdsgen-foley" / "cache") / "stills"


def setup_logging(folder: Path) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_foley", False) for h in root.handlers):
        return
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(folder / "foley-app.log", maxBytes=2_000_000,
                                                             backupCount=3, encoding="utf-8"))
    except OSError as exc:  # a read-only home: log to stderr only
        print(f"foley-app: cannot write logs to {folder}: {exc}", file=sys.stderr)
    for h in handlers:
        h.setFormatter(fmt)
        h._foley = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(logging.INFO)


def install_excepthook(app: QApplication, folder: Path) -> None:
    """Log any uncaught exception and say so in a dialog (once at a time); the app keeps running."""
    showing = [False]

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        if showing[0] or QApplication.instance() is None:
            return
        showing[0] = True
        try:
            QMessageBox.critical(
                app.activeWindow(), "Unexpected error",
                f"Something went wrong: {kind.__name__}: {exc}\n\nYour work is still open; save it now (Ctrl+S) if "
                f"you can. The details are in the log in {folder}.",
            )
        finally:
            showing[0] = False

    sys.excepthook = hook


def build_context(settings: Settings, *, autosave_root: Path | None = None, logs: Path | None = None,
                  jobs: JobRunner | None = None, stills: Path | None = None) -> AppContext:
    """All the parts of the app, wired together (no window)."""
    jobs = jobs or JobRunner()
    doc = ProjectDocument()
    playback = Playback(doc, AudioOutput(settings.audio_device))
    root = autosave_root or (Path(settings.autosave_dir) if settings.autosave_dir else default_autosave_root())
    autosaver = Autosaver(doc, jobs, root, settings.autosave_seconds)
    engine = EngineHandle(jobs)
    return AppContext(settings=settings, jobs=jobs, engine=engine, document=doc, playback=playback,
                      autosaver=autosaver, log_dir=logs or log_dir(), stills_dir=stills or default_stills_dir())


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    logs = log_dir()
    setup_logging(logs)
    install_excepthook(app, logs)

    from foley_app.views import theme
    from foley_app.views.main_window import MainWindow

    theme.apply(app)
    settings = Settings(args.settings)
    ctx = build_context(settings, autosave_root=Path(args.autosave_dir) if args.autosave_dir else None, logs=logs)
    window = MainWindow(ctx)
    window.setWindowIcon(MainWindow.app_icon())
    window.show()
    ctx.engine.load(args.bundle or settings.bundle or None, args.backend or settings.backend)

    def start() -> None:
        if not args.no_recovery:
            window.editor.check_recovery()
        if args.file:
            window.editor.open_path(args.file)

    QTimer.singleShot(0, start)
    log.info("foley-app started (settings %s)", settings.file_name)
    return int(app.exec())
