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
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from foley_app.autosave import Autosaver, default_autosave_root
from foley_app.context import AppContext, EngineHandle
from foley_app.document.document import ProjectDocument
from foley_app.editor import Editor, PrompterLike
from foley_app.frames import FrameSource
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
    p.add_argument("--smoke-test", metavar="OUT_DIR",
                   help="non-interactive self-test: open FILE, generate, accept, export and save into OUT_DIR, quit; "
                        "exit code 0 if all of it worked (packaging/smoke_test.sh)")
    p.add_argument("--smoke-steps", type=int, default=4, help="denoising steps of the self-test (default 4)")
    p.add_argument("--measure-startup", action="store_true",
                   help="print when the window was first painted and when the model was ready (seconds since "
                        "$FOLEY_STARTUP_T0, else since the process started), then quit (packaging/startup_time.sh)")
    args = p.parse_args(argv)
    if args.smoke_test and not args.file:
        p.error("--smoke-test needs the video to open (FILE)")
    return args


def _process_start() -> float:
    """Wall-clock time the launcher took just before starting the app ($FOLEY_STARTUP_T0, seconds since the
    epoch), else the process's start from /proc (Linux), else now."""
    import os
    import time

    t0 = os.environ.get("FOLEY_STARTUP_T0")
    if t0:
        return float(t0)
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def _measure_startup(app: QApplication, window: QWidget, engine: EngineHandle, t0: float) -> None:
    """--measure-startup: one JSON line on stdout with the first paint of the window and the engine's readiness."""
    import json
    import time

    from PySide6.QtCore import QEvent, QObject

    seen: dict[str, float] = {}

    def mark(what: str) -> None:
        seen.setdefault(what, round(time.time() - t0, 3))
        if "window_shown_s" in seen and ("engine_ready_s" in seen or "engine_failed_s" in seen):
            print(json.dumps(seen), flush=True)
            QTimer.singleShot(0, window.close)

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint:
                window.removeEventFilter(self)
                QTimer.singleShot(0, lambda: mark("window_shown_s"))  # after the paint itself
            return False

    window._startup_filter = FirstPaint(window)  # type: ignore[attr-defined]
    window.installEventFilter(window._startup_filter)  # type: ignore[attr-defined]
    engine.state_changed.connect(lambda state: mark(f"engine_{state}_s") if state in ("ready", "failed") else None)


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


def build_editor(ctx: AppContext, prompter: PrompterLike) -> tuple[Editor, FrameSource]:
    """The editor's behaviour and its frame source over `ctx` (no window: tests drive it alone; MainWindow shows
    it)."""
    frames = FrameSource(ctx.jobs)
    return Editor(ctx, prompter, frames), frames


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = _process_start() if args.measure_startup else 0.0
    if args.smoke_test:  # the self-test touches none of the user's preferences and autosaves
        out = Path(args.smoke_test)
        args.settings = args.settings or str(out / "smoke-settings.ini")
        args.autosave_dir = args.autosave_dir or str(out / "autosave")
        args.no_recovery = True
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
    from foley_app.views.dialogs.prompter import Prompter

    prompter = Prompter()
    editor, frames = build_editor(ctx, prompter)
    window = MainWindow(ctx, editor, frames, prompter)
    window.setWindowIcon(MainWindow.app_icon())
    if args.measure_startup:
        _measure_startup(app, window, ctx.engine, t0)
    window.show()
    ctx.engine.load(args.bundle or settings.bundle or None, args.backend or settings.backend)

    def start() -> None:
        if args.smoke_test:
            from foley_app.selftest import SmokeTest

            window._smoke_test = SmokeTest(window, args.file, Path(args.smoke_test), steps=args.smoke_steps)
            window._smoke_test.start()
            return
        if not args.no_recovery:
            window.editor.check_recovery()
        if args.file:
            window.editor.open_path(args.file)

    QTimer.singleShot(0, start)
    log.info("foley-app started (settings %s)", settings.file_name)
    return int(app.exec())
