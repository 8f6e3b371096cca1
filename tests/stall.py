"""The GUI event loop's worst stall while the editor loads a long video, detects hits, generates and exports.

    .venv/bin/python tests/stall.py                          # the documented run: a 10 min video, the tiny bundle
    .venv/bin/python tests/stall.py --minutes 2 --json out.json --where

The editor's real main window (offscreen Qt, a scripted prompter) runs on a tiny RANDOM-weight bundle with a
random hit detector (built in a temp folder; `--bundle B` for another; `--steps` 2, `--candidates` 2). A 5 ms
precise QTimer records the gaps between its ticks; a stall is a gap minus the 5 ms. Each action is measured
alone, from its start to the moment no job is left and the window has been quiet for 0.3 s:

    load      open a `--minutes` long video (160x120, 24 fps, AAC; made once with tests/conftest.py's
              make_test_video): probe, first frame, thumbnails, the original audio
    detect    a new segment: the model's hit detector runs on it (editor: pending hits are detected)
    generate  generate the segment (candidates, steps as given)
    accept    accept its first take: the Foley track (as long as the video) is mixed, drawn, its mel made
    export    the Foley track as WAV + muxed into a copy of the video (MP4)
    save      save the project (the editor writes it on the GUI thread: small)

On a shared machine other processes take the CPUs: the GUI thread then waits, runnable, in the kernel's run
queue (Linux counts it: /proc/thread-self/schedstat). Each gap minus that wait is the stall the editor itself
caused (its own work on the GUI thread, or a worker holding the GIL): `worst_own_stall_ms`. An idle window is
measured first (`--idle` seconds): the machine's own noise. Prints a JSON report: per action the worst stall and
the worst own stall in ms, its 5 worst gaps with the GUI thread's CPU time and run-queue wait in each, the load
average; with `--where` the GUI thread's stack during the longest stalls, and where the other threads were when
the watchdog itself could not run (one of them held the GIL). Exit code 1 if the worst stall (`--own`: the worst
own stall) of load, detect, generate, accept or export exceeds `--max-ms` (50). Saving writes the project on the
GUI thread (the editor's save returns whether it worked): reported, not bounded. `--jobs-on-gui-thread` runs every
job's work on the GUI thread instead of the job runner's threads: the regression the bound must catch.
tests/app/test_stall.py runs a short version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests" / "app"):  # the repo, and tests/app for its helpers module
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

TICK_MS = 5
ACTIONS = ("load", "detect", "generate", "accept", "export", "save")
BOUNDED = ("load", "detect", "generate", "accept", "export")  # save runs on the GUI thread by design: reported


class StallMeter:
    """A 5 ms timer on the GUI thread; the gaps between its ticks, per phase. `where`: a watchdog thread samples
    the GUI thread's stack when it has not ticked for 3 ticks."""

    def __init__(self, where: bool = False) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.phase = ""
        self.gaps: dict[str, list[float]] = {}
        self._last = 0.0
        self._last_cpu = self._last_queued = 0.0
        self.cpu: dict[str, list[float]] = {}  # the GUI thread's own CPU time in each gap
        self.queued: dict[str, list[float]] = {}  # its time runnable but waiting for a CPU (other processes)
        self._gui = threading.get_ident()
        self.stacks: dict[str, list[tuple[float, str]]] = {}
        self.gil: dict[str, list[tuple[float, str]]] = {}  # the watchdog itself woke late: the other threads
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, daemon=True) if where else None

    def start(self, phase: str) -> None:
        self.phase = phase
        self.gaps.setdefault(phase, [])
        self._last, self._last_cpu, self._last_queued = time.perf_counter(), time.thread_time(), _runqueue_wait()
        if not self.timer.isActive():
            self.timer.start()
        if self._watch is not None and not self._watch.is_alive():
            self._watch.start()

    def _tick(self) -> None:
        now, cpu, queued = time.perf_counter(), time.thread_time(), _runqueue_wait()
        self.gaps[self.phase].append(now - self._last)
        self.cpu.setdefault(self.phase, []).append(cpu - self._last_cpu)
        self.queued.setdefault(self.phase, []).append(queued - self._last_queued)
        self._last, self._last_cpu, self._last_queued = now, cpu, queued

    def _watchdog(self) -> None:
        """While the GUI thread is late, sample its stack every 5 ms; a stall's report is its most seen stack."""
        samples: list[str] = []
        stall_of = 0.0
        late = 0.0
        while True:
            asleep = time.perf_counter()
            if self._stop.wait(TICK_MS / 1000):
                return
            if time.perf_counter() - asleep > 6 * TICK_MS / 1000:  # this thread waited too: the GIL was held
                me = threading.get_ident()
                others = [_where(f) for ident, f in sys._current_frames().items() if ident not in (me, self._gui)]
                overslept = time.perf_counter() - asleep
                self.gil.setdefault(self.phase, []).append((overslept, "\n".join(others)))
            last = self._last
            if samples and last != stall_of:  # it ticked again: that stall is over
                seen = sorted(set(samples), key=lambda st: -samples.count(st))[:3]
                self.stacks.setdefault(self.phase, []).append((late, "".join(
                    f"{samples.count(st)}/{len(samples)} samples here:\n{st}" for st in seen)))
                samples = []
            late = time.perf_counter() - last
            if late > 3 * TICK_MS / 1000:
                frame = sys._current_frames().get(self._gui)
                if frame is not None:
                    stall_of = last
                    samples.append(_where(frame))
                del frame

    def stop(self) -> None:
        self.timer.stop()
        self._stop.set()

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for phase, gaps in self.gaps.items():
            order = sorted(range(len(gaps)), key=lambda i: -gaps[i])[:5]
            worst = [gaps[i] for i in order]
            queued = self.queued.get(phase, [])
            own = [g - q for g, q in zip(gaps, queued)]  # what the machine's other processes do not explain
            ms = lambda v: round(max(0.0, v * 1000 - TICK_MS), 1)  # noqa: E731
            out[phase] = {"worst_stall_ms": ms(worst[0] if worst else 0.0),
                          "worst_own_stall_ms": ms(max(own, default=0.0)),
                          "worst_gaps_ms": [round(g * 1000, 1) for g in worst],
                          "their_gui_cpu_ms": [round(self.cpu[phase][i] * 1000, 1) for i in order],
                          "their_runqueue_ms": [round(queued[i] * 1000, 1) for i in order],
                          "ticks": len(gaps)}
            if phase in self.stacks:  # the 3 longest stalls, each with the stack seen most in it
                longest = sorted(self.stacks[phase], key=lambda s: -s[0])[:3]
                out[phase]["where"] = [f"{late * 1000:.0f} ms, {stack}" for late, stack in longest]
            if phase in self.gil:  # the watchdog's own longest waits for the GIL: where the other threads were
                longest = sorted(self.gil[phase], key=lambda s: -s[0])[:2]
                out[phase]["gil_held_by"] = [f"{late * 1000:.0f} ms late:\n{stacks}" for late, stacks in longest]
        return out


def _runqueue_wait() -> float:
    """Seconds the calling thread has spent runnable but waiting for a CPU (Linux schedstat; 0 elsewhere)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _where(frame: Any) -> str:
    """The app's own frames of a stack (foley_app/, engine/, not this script) and its innermost 3."""
    frames = traceback.extract_stack(frame)
    ours = [f for f in frames[:-3] if ("/foley_app/" in f.filename or "/engine/" in f.filename)]
    return "".join(traceback.format_list(ours[-6:] + frames[-3:]))


def wait_until(app: Any, pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the event loop until `pred()` holds (checked every 10 ms), or raise TimeoutError."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(lambda: loop.quit() if pred() or time.monotonic() > deadline else None)
    poll.start()
    if not pred():
        loop.exec()
    poll.stop()
    if not pred():
        raise TimeoutError(f"{what}: not done in {timeout:.0f} s")


def quiet(app: Any, jobs: Any, seconds: float = 0.3, timeout: float = 600.0, what: str = "") -> None:
    """Until no job is left, then `seconds` more of an idle event loop (debounced work starts in it)."""
    for _ in range(3):
        wait_until(app, lambda: not jobs.busy(), timeout, what)
        until = time.monotonic() + seconds
        wait_until(app, lambda until=until: time.monotonic() > until, seconds + 5, what)
        if not jobs.busy():
            return


def tests_conftest() -> Any:
    """tests/conftest.py (its tiny bundle's shape, make_test_video), loaded by path: tests/app has one too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("foley_tests_conftest", REPO / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_bundle(folder: Path) -> Path:
    tiny_denoiser = tests_conftest().TINY_DENOISER

    from engine.nn.bundle import add_hit_detector
    from engine.nn.hit_detector import HitDetector, hit_detector_config
    from engine.nn.random_bundle import random_bundle
    from engine.spec import DIFF_FOLEY

    bdir = folder / "tiny_hits"
    if not (bdir / "manifest.json").is_file():
        random_bundle(bdir, spec=DIFF_FOLEY, preset="T", denoiser_overrides=tiny_denoiser, vocoder="griffin-lim")
        add_hit_detector(bdir, HitDetector(config=hit_detector_config("tiny", dropout=0.0)))
    return bdir


def long_video(folder: Path, minutes: float) -> Path:
    make_test_video = tests_conftest().make_test_video
    path = folder / f"long_{minutes:g}min.mp4"
    if not path.is_file():
        tmp = path.with_name(".part-" + path.name)
        make_test_video(tmp, seconds=60.0 * minutes, with_audio=True)
        tmp.rename(path)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    from helpers import ScriptedPrompter
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from engine import load_engine
    from foley_app.app import build_context, build_editor
    from foley_app.export import ExportRequest
    from foley_app.settings import Settings
    from foley_app.views import theme
    from foley_app.views.main_window import MainWindow

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stall-"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    bundle = Path(args.bundle) if args.bundle else build_bundle(cache)
    video = Path(args.video) if args.video else long_video(cache, args.minutes)
    engine = load_engine(bundle, backend="torch")
    theme.configure_pyqtgraph()
    settings = Settings(work / "settings.ini")
    settings.candidates, settings.steps, settings.autosave_seconds = args.candidates, args.steps, 0
    settings.output_rate = args.rate
    ctx = build_context(settings, autosave_root=work / "autosave", logs=work / "logs", stills=work / "stills")
    prompter = ScriptedPrompter()
    editor, frames = build_editor(ctx, prompter)
    win = MainWindow(ctx, editor, frames, prompter)
    win.resize(1280, 800)
    win.show()
    ctx.engine.set_engine(engine)
    ed, doc, jobs = win.editor, win.doc, ctx.jobs
    if args.jobs_on_gui_thread:  # the regression the meter must catch: every job's work back on the GUI thread
        for pool in (jobs.inference_pool, jobs.io_pool, jobs.save_pool):
            pool.start = lambda job, fn: QTimer.singleShot(0, lambda: jobs._run(job, fn))  # type: ignore
    meter = StallMeter(where=args.where)
    seconds: dict[str, float] = {}
    sid: list[str] = []

    def act(name: str, start: Callable[[], Any], done: Callable[[], bool]) -> None:
        if name not in args.actions:
            return
        quiet(app, jobs, what=f"before {name}")
        meter.start(name)
        t0 = time.perf_counter()
        start()
        wait_until(app, done, 900, name)
        quiet(app, jobs, what=name)
        seconds[name] = round(time.perf_counter() - t0, 2)
        meter.start("idle")

    opened: list[str] = []
    ed.video_opened.connect(opened.append)
    detected: list[str] = []
    ed.hits_detected.connect(detected.append)
    generated: list[str] = []
    ed.generation_applied.connect(generated.append)
    exported: list[Any] = []
    ed.export_finished.connect(exported.append)

    quiet(app, jobs, what="starting")
    meter.start("idle (the machine's own noise)")
    idle_until = time.monotonic() + args.idle
    wait_until(app, lambda: time.monotonic() > idle_until, args.idle + 5, "idle")
    meter.start("idle")
    act("load", lambda: ed.open_video(video, confirm=False), lambda: bool(opened))
    if doc.video is None:  # "load" not measured: open it anyway
        ed.open_video(video, confirm=False)
        wait_until(app, lambda: bool(opened), 600, "opening")
    at = min(60.0, doc.video.duration / 2)

    def add() -> None:
        sid.append(ed.add_segment(at))

    act("detect", add, lambda: bool(detected))
    if not sid:
        add()

    def gen() -> None:
        ed.generate([sid[0]])

    act("generate", gen, lambda: bool(generated))
    if not generated:
        gen()
        wait_until(app, lambda: bool(generated), 600, "generating")
        quiet(app, jobs, what="generating")
    ed.select_segment(sid[0])
    act("accept", lambda: ed.accept(0), lambda: bool(doc.project.clips))
    if not doc.project.clips:
        ed.accept(0)
        quiet(app, jobs, what="accept")
    out_dir = work / "export"
    request = ExportRequest(str(video), out_dir / "out_foley.mp4", out_dir / "out_foley.wav", overwrite=True)
    act("export", lambda: ed.start_export(request), lambda: bool(exported) or bool(prompter.errors))
    prompter.queue("save_file", str(work / "stall.foleyproj"))
    act("save", ed.save, lambda: not doc.is_modified())
    meter.stop()
    rep = meter.report()
    rep.pop("idle", None)
    errors = [str(e) for e in prompter.errors]
    ctx.shutdown()
    win.close()
    return {"actions": rep, "seconds": seconds, "errors": errors, "video": str(video),
            "video_minutes": round(doc.video.duration / 60, 2) if doc.video else None, "bundle": str(bundle)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the long test video")
    p.add_argument("--video", default=None, help="use this video instead of making one")
    p.add_argument("--bundle", default=None, help="default: a tiny random bundle with a random hit detector")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--rate", type=int, default=48_000, help="the project's output rate (the app's default: 48 kHz)")
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--actions", nargs="+", default=list(ACTIONS), choices=ACTIONS)
    p.add_argument("--max-ms", type=float, default=50.0, help="pass: every action's worst stall at most this")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "foley-stall-cache"),
                   help="where the bundle and the long video are kept between runs")
    p.add_argument("--own", action="store_true", help="pass/fail on the own stall (a loaded machine's bound)")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of an idle window measured first")
    p.add_argument("--jobs-on-gui-thread", action="store_true",
                   help="run every job on the GUI thread (what the test checks the meter catches)")
    p.add_argument("--where", action="store_true", help="sample the GUI thread's stack during stalls")
    p.add_argument("--json", default=None)
    p.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (s) to try")
    a = p.parse_args(argv)
    if a.switch_interval:
        sys.setswitchinterval(a.switch_interval)
    report = run(a)
    report["command"] = "tests/stall.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report["max_ms"] = a.max_ms
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    report["cpus"] = os.cpu_count()
    report["passed"] = not report["errors"] and all(
        r["worst_own_stall_ms" if a.own else "worst_stall_ms"] <= a.max_ms
        for name, r in report["actions"].items() if name in BOUNDED)
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    sys.stdout.flush()
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
