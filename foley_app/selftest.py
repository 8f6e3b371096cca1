"""`foley-app --smoke-test OUT_DIR VIDEO`: the editor drives itself through one job from start to end, with no
one at the keyboard (packaging/smoke_test.sh runs it in the frozen build under Qt's offscreen platform).

Open the video, wait for the model, mark a segment, generate a few candidates (few steps), accept one, export the
muxed video, the WAV and the stems, save the project, close the window. Every dialog the editor would show goes to
a `HeadlessPrompter` instead: an error message fails the test, a question gets the answer that goes on. The exit
code is 0 only when every step got there and the files exist; `OUT_DIR/smoke-test.json` says what happened.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from foley_app.export import ExportRequest

log = logging.getLogger("foley_app.selftest")

STEP_TIMEOUT_S = 300.0


class SmokeTestError(RuntimeError):
    pass


@dataclass
class SmokeReport:
    ok: bool = False
    steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes
    seconds: dict[str, float] = field(default_factory=dict)


class HeadlessPrompter:
    """The editor's prompter with nobody there: errors are recorded (and fail the test), questions answered."""

    def __init__(self, out_dir: Path, report: SmokeReport) -> None:
        self.out_dir, self.report = out_dir, report

    def error(self, msg: Any) -> None:
        text = f"{getattr(msg, 'title', '')}: {getattr(msg, 'what', msg)} {getattr(msg, 'todo', '')}".strip()
        if getattr(msg, "warning", False):
            log.warning("smoke test: warning shown: %s", text)
            return
        log.error("smoke test: error shown: %s", text)
        self.report.errors.append(text)

    def info(self, title: str, text: str) -> None:
        log.info("smoke test: %s: %s", title, text.replace("\n", " | "))

    def ask(self, title: str, text: str, choices: list[str], default: str, *, details: str = "") -> str:
        for answer in ("Don't Save", "Discard", "Replace"):
            if answer in choices:
                return answer
        return default

    def open_file(self, title: str, directory: str, filters: str) -> str | None:
        return None

    def save_file(self, title: str, suggested: str, filters: str) -> str | None:
        return str(self.out_dir / Path(suggested).name) if suggested else None

    def export_options(self, defaults: Any) -> ExportRequest | None:
        return None

    def recover(self, description: str) -> str:
        return "later"

    def still_length(self, image_name: str, default: float, folder: str) -> float | None:
        return default


class SmokeTest:
    """A state machine on a QTimer: each step starts something, then polls until the editor is there."""

    def __init__(self, window: Any, video: str, out_dir: Path, *, start: float = 1.0, steps: int = 4,
                 candidates: int = 2) -> None:
        self.window, self.ctx, self.editor = window, window.ctx, window.editor
        self.video, self.out_dir, self.start_at = str(Path(video).resolve()), out_dir, start
        self.report = SmokeReport()
        self.prompter = HeadlessPrompter(out_dir, self.report)
        self.window.prompter = self.editor.prompter = self.prompter
        settings = self.ctx.settings
        settings.candidates, settings.steps, settings.autosave_seconds = candidates, steps, 0
        self._plan: list[tuple[str, Callable[[], None], Callable[[], bool]]] = [
            ("open the video and load the model", self._open, self._opened),
            ("generate", self._generate, self._generated),
            ("accept a candidate", self._accept, lambda: bool(self.ctx.document.project.clips)),
            ("export", self._export, self._exported),
            ("save the project", self._save, lambda: not self.ctx.document.is_modified()),
        ]
        self._step = -1
        self._t0 = self._t_step = time.monotonic()
        self._exported_result: Any = None
        self.editor.export_finished.connect(lambda result: setattr(self, "_exported_result", result))
        self._timer = QTimer(self.window)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)
        self.exit_code = 1

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._next()
        self._timer.start()

    # ---- the steps -------------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self.editor.open_path(self.video)

    def _opened(self) -> bool:
        if self.ctx.engine.state == "failed":
            raise SmokeTestError(f"the model did not load: {self.ctx.engine.error}")
        return self.ctx.document.video is not None and self.ctx.engine.ready

    def _generate(self) -> None:
        seg_id = self.editor.add_segment(self.start_at)
        if seg_id is None:
            raise SmokeTestError(f"no segment could be marked at {self.start_at} s")
        self.editor.select_segment(seg_id)
        if not self.editor.generate([seg_id]):
            raise SmokeTestError("the generation did not start")

    def _generated(self) -> bool:
        if self.ctx.jobs.busy("generate"):
            return False
        seg = self.ctx.document.current_segment()
        if seg is None or not seg.takes:
            raise SmokeTestError("the generation finished without candidates")
        return True

    def _accept(self) -> None:
        self.editor.accept(0)

    def _export(self) -> None:
        stem = Path(self.video).stem
        request = ExportRequest(self.video, self.out_dir / f"{stem}_foley.mp4", self.out_dir / f"{stem}_foley.wav",
                                normalize=True, overwrite=True, stems_dir=self.out_dir / f"{stem}_foley_stems")
        self.editor.start_export(request)

    def _exported(self) -> bool:
        if self._exported_result is None:
            return False
        for p in self._exported_result.written:
            self.report.files[Path(p).name] = Path(p).stat().st_size
        if not any(str(p).endswith(".mp4") for p in self._exported_result.written):
            raise SmokeTestError(f"the export wrote no video: {self._exported_result.written}")
        return True

    def _save(self) -> None:
        if not self.editor.save_as():
            raise SmokeTestError("the project was not saved")
        if self.ctx.document.path is not None:
            self.report.files[self.ctx.document.path.name] = self.ctx.document.path.stat().st_size

    # ---- the machine -----------------------------------------------------------------------------------------------
    def _next(self) -> None:
        now = time.monotonic()
        if self._step >= 0:
            name = self._plan[self._step][0]
            self.report.steps.append(name)
            self.report.seconds[name] = round(now - self._t_step, 2)
            log.info("smoke test: %s: done in %.1f s", name, now - self._t_step)
        self._step += 1
        self._t_step = now
        if self._step == len(self._plan):
            self._finish(ok=True)
            return
        self._plan[self._step][1]()

    def _poll(self) -> None:
        try:
            if self.report.errors:
                raise SmokeTestError(f"the editor showed an error: {self.report.errors[0]}")
            if self._plan[self._step][2]():
                self._next()
            elif time.monotonic() - self._t_step > STEP_TIMEOUT_S:
                raise SmokeTestError(f"timed out after {STEP_TIMEOUT_S:g} s: {self._plan[self._step][0]}")
        except Exception as exc:  # every failure ends the test with a reason, never a hang
            log.exception("smoke test failed at %r", self._plan[self._step][0] if self._step < len(self._plan)
                          else "the end")
            self.report.errors.append(f"{type(exc).__name__}: {exc}")
            self._finish(ok=False)

    def _finish(self, *, ok: bool) -> None:
        self._timer.stop()
        self.report.ok = ok and not self.report.errors
        self.report.seconds["total"] = round(time.monotonic() - self._t0, 2)
        self.exit_code = 0 if self.report.ok else 1
        (self.out_dir / "smoke-test.json").write_text(json.dumps(asdict(self.report), indent=2) + "\n",
                                                     encoding="utf-8")
        log.info("smoke test %s in %.1f s", "passed" if self.report.ok else "FAILED", self.report.seconds["total"])
        self.window.close()  # the window's own close: confirms (answered), saves its state, shuts the jobs down
        QApplication.instance().exit(self.exit_code)
