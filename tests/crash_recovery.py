"""Crash recovery: the editor killed with SIGKILL at seeded random moments, started again after each kill.

    .venv/bin/python tests/crash_recovery.py                     # the documented run: 10 kills, seed 1
    .venv/bin/python tests/crash_recovery.py --kills 4 --seed 3 --json out.json

The harness starts the editor as a subprocess (this script with `--child`: the real main window, offscreen Qt, a
scripted prompter standing in for the user, the tiny RANDOM-weight test bundle, generation with 2 steps, autosave
every `--autosave` seconds (1), one project file) and, once it says it is ready, kills it with SIGKILL after a
seeded random delay (`--min-delay`..`--max-delay` s); with `--targets mixed` (the default) the kills aim in turn
at any moment, an autosave, a save and a generation: after the delay, the kill waits for the next start of that
operation in the journal and lands while it runs. The child drives the editor as a user would, seeded: it adds,
moves and deletes segments, generates and accepts takes, changes clip gains and saves (Ctrl+S) every few edits.
It journals every accepted edit (the time and a fingerprint of the project's segments and clips) and the moments
it starts and ends a save, a generation and an autosave, each line flushed as it happens (a kill cannot lose
them: they are in the kernel's page cache).

At each start the child first does what the editor does at start-up: it offers recovery (the prompter answers
"recover"), else it opens the project file if there is one, else the video; it journals what it found. Checks,
after every kill, on what the next start found:
    - the project file, whenever it exists, parses (load_project) and is a state the editor had saved;
    - no accepted edit older than the autosave interval is lost: the state the next start works on (the recovered
      autosave, else the project file) is one the killed editor had at or after its last edit made more than
      `autosave + write` seconds before the kill, where `write` is the longest autosave write seen (so an edit
      made before that is in a finished snapshot);
    - so recovery is offered whenever the killed editor had unsaved edits older than that.
Prints a JSON report (per kill: the delay, what the editor was doing, what the next start found; the checks);
exit code 1 if a check fails. tests/app/test_crash_recovery.py runs a short version.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests" / "app"):  # the repo, and tests/app for its helpers module
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
if str(REPO / "tests") not in sys.path:
    sys.path.append(str(REPO / "tests"))  # stall.py's helpers (last: tests/app's conftest stays first)

PROJECT = "project.foleyproj"
JOURNAL = "journal.jsonl"


def fingerprint(project: Any) -> str:
    """The project's segments and clips (what an edit changes), as a short hash."""
    d = project.to_dict("media")
    return hashlib.sha1(json.dumps({"segments": d["segments"], "clips": d["clips"]}, sort_keys=True)
                        .encode()).hexdigest()[:16]


# ---- the editor (child) ---------------------------------------------------------------------------------------------
def child(a: argparse.Namespace) -> int:
    from helpers import ScriptedPrompter
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from engine import load_engine
    from foley_app.app import build_context, build_editor
    from foley_app.document.project import load_project
    from foley_app.settings import Settings
    from foley_app.views import theme
    from foley_app.views.main_window import MainWindow

    work = Path(a.work)
    journal = open(work / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's life)

    def note(event: str, **kw: Any) -> None:
        journal.write(json.dumps({"session": a.session, "event": event, "t": time.time(), **kw}) + "\n")
        journal.flush()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    engine = load_engine(a.bundle, backend="torch")
    theme.configure_pyqtgraph()
    settings = Settings(work / "settings.ini")
    settings.candidates, settings.steps, settings.autosave_seconds = 2, 2, int(a.autosave)
    settings.output_rate = 16_000
    ctx = build_context(settings, autosave_root=work / "autosave", logs=work / "logs", stills=work / "stills")
    prompter = ScriptedPrompter()
    editor, frames = build_editor(ctx, prompter)
    win = MainWindow(ctx, editor, frames, prompter)
    win.show()
    ctx.engine.set_engine(engine)
    ed, doc, jobs = win.editor, win.doc, ctx.jobs
    rng = random.Random(a.seed * 1000 + a.session)
    project_file = work / PROJECT

    # ---- start-up: what the editor does first ------------------------------------------------------------------
    saved_fp, saved_error = None, None
    if project_file.exists():
        try:
            saved_fp = fingerprint(load_project(project_file)[0])
        except Exception as exc:  # the check: it must never happen
            saved_error = f"{type(exc).__name__}: {exc}"
    prompter.queue("recover", *["recover"] * 4)
    recovered = ed.check_recovery()
    offered = hasattr(prompter, "recover_description")
    opened = "recovered" if recovered else ""
    if not recovered:
        if project_file.exists() and saved_error is None:
            job = ed.open_project(project_file, confirm=False)
            opened = "project"
        else:
            job = ed.open_video(a.video, confirm=False)
            opened = "video"
        deadline = time.monotonic() + 60
        while (job is not None and job.state in ("queued", "running")) or jobs.busy("open"):
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > deadline:
                break
    note("start", offered=offered, recovered=recovered, opened=opened, fp=fingerprint(doc.project),
         saved_fp=saved_fp, saved_error=saved_error, modified=doc.is_modified())
    if a.check_only:
        ctx.shutdown()
        return 0

    # ---- journaling -------------------------------------------------------------------------------------------
    last_fp = [fingerprint(doc.project)]

    def on_revision(_rev: int) -> None:
        fp = fingerprint(doc.project)
        if fp != last_fp[0]:
            last_fp[0] = fp
            note("edit", fp=fp)

    doc.revision_changed.connect(on_revision)
    jobs.job_started.connect(lambda job: note(f"{job.kind}-start") if job.kind in ("autosave", "generate") else None)
    jobs.job_finished.connect(lambda job: note(f"{job.kind}-end", state=job.state)
                              if job.kind in ("autosave", "generate") else None)
    pending: dict[str, str] = {}  # segment id -> waiting for its takes

    def applied(sid: str) -> None:
        pending.pop(sid, None)
        if doc.segment(sid) is not None and rng.random() < 0.85:
            ed.select_segment(sid)
            ed.accept(rng.randrange(2))

    ed.generation_applied.connect(applied)
    ed.generation_dropped.connect(lambda sid, why: pending.pop(sid, None))

    def step() -> None:
        v = doc.video
        if v is None:
            return
        segs = list(doc.project.segments)
        clips = list(doc.project.clips)
        choice = rng.choices(["add", "generate", "gain", "move", "delete", "save"],
                             [3, 3, 2, 1, 1 if len(segs) > 3 else 0, 1])[0]
        if choice == "add" or not segs:
            if len(segs) < 6:
                ed.add_segment(rng.uniform(0.0, max(0.0, v.duration - 8.2)))
        elif choice == "generate":
            free = [s for s in segs if not s.takes and s.id not in pending]
            if free and not pending:
                sid = rng.choice(free).id
                pending[sid] = "generating"
                ed.generate([sid])
        elif choice == "gain" and clips:
            ed.set_clip_gain(rng.choice(clips).id, round(rng.uniform(-12.0, 3.0), 1))
        elif choice == "move":
            s = rng.choice(segs)
            if s.id not in pending:
                ed.move_segment(s.id, rng.uniform(0.0, max(0.0, v.duration - 8.2)))
        elif choice == "delete":
            s = rng.choice(segs)
            if s.id not in pending:
                ed.select_segment(s.id)
                ed.delete_selected_segments()
        elif choice == "save" and doc.is_modified():
            if doc.path is None:
                prompter.queue("save_file", str(project_file))
            fp = fingerprint(doc.project)
            note("save-start", fp=fp)
            ok = ed.save()
            note("save-end", ok=ok, fp=fp)
        timer.start(rng.randint(80, 400))

    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(step)
    timer.start(0)
    print("ready", flush=True)
    return int(app.exec())


# ---- the harness --------------------------------------------------------------------------------------------------
TARGETS = ("any", "autosave", "save", "generate")  # --targets mixed: kill k aims at TARGETS[k % 4]


def wait_for_event(path: Path, session: int, event: str, since: float, timeout: float) -> bool:
    """Poll the journal (every 2 ms) for `event` of `session` at or after `since`; False on timeout."""
    deadline = time.monotonic() + timeout
    offset = 0
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8") as fh:
            fh.seek(offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                e = json.loads(line)
                if e["session"] == session and e["event"] == event and e["t"] >= since:
                    return True
        time.sleep(0.002)
    return False


def read_journal(work: Path) -> list[dict[str, Any]]:
    path = work / JOURNAL
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut by the kill (each is one write: never seen)
            out.append(json.loads(line))
    return out


def doing_at(events: list[dict[str, Any]], t_kill: float) -> list[str]:
    """What the killed editor was in the middle of: open saves, generations, autosaves; else editing."""
    open_: dict[str, int] = {}
    for e in events:
        if e["t"] > t_kill:
            break
        for what in ("save", "generate", "autosave"):
            if e["event"] == f"{what}-start":
                open_[what] = open_.get(what, 0) + 1
            elif e["event"] == f"{what}-end":
                open_[what] = max(0, open_.get(what, 0) - 1)
    names = {"save": "saving", "generate": "generating", "autosave": "autosaving"}
    return [names[w] for w, n in open_.items() if n] or ["editing"]


def check_kill(events: list[dict[str, Any]], nxt: dict[str, Any], t_kill: float, interval: float,
               write_s: float) -> dict[str, Any]:
    """The checks of one kill: `events` are the killed session's, `nxt` the next start's record."""
    start = next(e for e in events if e["event"] == "start")
    states = [(start["t"], start["fp"])] + [(e["t"], e["fp"]) for e in events if e["event"] == "edit"]
    saved = {e["fp"] for e in events if e["event"] == "save-end" and e.get("ok")}
    saved.add(start["saved_fp"])
    cutoff = t_kill - interval - write_s
    safe = max(i for i, (t, _fp) in enumerate(states) if t <= cutoff or i == 0)
    later = [fp for _t, fp in states[safe:]]
    found = nxt["fp"]
    problems = []
    if nxt["saved_error"]:
        problems.append(f"the project file does not parse: {nxt['saved_error']}")
    elif nxt["saved_fp"] is not None and nxt["saved_fp"] not in saved:
        problems.append("the project file holds a state that was never saved")
    if found not in later:
        lost = len(states) - 1 - safe
        problems.append(f"the next start works on a state older than the last edit made more than {interval:g} + "
                        f"{write_s:.2f} s before the kill ({'recovered' if nxt['recovered'] else nxt['opened']})"
                        f"; edits since then: {lost}")
    unsaved_old = states[safe][1] not in saved
    return {"edits": len(states) - 1, "safe_edit": safe, "offered": nxt["offered"], "recovered": nxt["recovered"],
            "opened": nxt["opened"], "needed_recovery": unsaved_old,
            "ok": not problems, "problems": problems}


def harness(a: argparse.Namespace) -> dict[str, Any]:
    work = Path(a.work or tempfile.mkdtemp(prefix="crash-recovery-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    from stall import tests_conftest

    conf = tests_conftest()
    video = cache / "clip24.mp4"
    if not video.is_file():
        conf.make_test_video(video.with_name(".part.mp4"), seconds=24.0).rename(video)
    bundle = cache / "tiny_gl"
    if not (bundle / "manifest.json").is_file():
        from engine.nn.random_bundle import random_bundle
        from engine.spec import DIFF_FOLEY

        random_bundle(bundle, spec=DIFF_FOLEY, preset="T", denoiser_overrides=conf.TINY_DENOISER,
                      vocoder="griffin-lim")
    rng = random.Random(a.seed)
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    base = [sys.executable, str(Path(__file__).resolve()), "--child", "--work", str(work), "--video", str(video),
            "--bundle", str(bundle), "--autosave", str(a.autosave), "--seed", str(a.seed)]
    kills: list[dict[str, Any]] = []
    log = open(work / "children.log", "a", encoding="utf-8")  # noqa: SIM115
    for k in range(a.kills + 1):
        last = k == a.kills
        cmd = [*base, "--session", str(k)] + (["--check-only"] if last else [])
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        assert proc.stdout is not None
        if last:
            proc.wait(timeout=300)
        else:
            line = proc.stdout.readline()
            if line.strip() != "ready":
                proc.kill()
                raise RuntimeError(f"the editor (session {k}) did not start: {line!r}; see {work / 'children.log'}")
            delay = a.delays[k] if a.delays else rng.uniform(a.min_delay, a.max_delay)
            target = TARGETS[k % len(TARGETS)] if a.targets == "mixed" else a.targets
            t_ready = time.time()
            time.sleep(delay)
            if target != "any":  # then at the next start of that operation, as soon as the journal says so
                wait_for_event(work / JOURNAL, k, f"{target}-start", t_ready + delay, timeout=30.0)
            t_kill = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            kills.append({"session": k, "target": target, "after_s": round(t_kill - t_ready, 2), "t_kill": t_kill})
        proc.stdout.close()
    log.close()
    events = read_journal(work)
    by_session: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        by_session.setdefault(e["session"], []).append(e)
    writes = []  # autosave write times: start to end
    for evs in by_session.values():
        t0 = None
        for e in evs:
            if e["event"] == "autosave-start":
                t0 = e["t"]
            elif e["event"] == "autosave-end" and t0 is not None:
                writes.append(e["t"] - t0)
                t0 = None
    write_s = max(writes, default=0.0) + 0.1  # + the journal's own latency
    for kill in kills:
        s = kill["session"]
        evs = by_session.get(s, [])
        nxt = next(e for e in by_session.get(s + 1, []) if e["event"] == "start")
        kill["doing"] = doing_at(evs, kill["t_kill"])
        kill.update(check_kill(evs, nxt, kill["t_kill"], a.autosave, write_s))
        del kill["t_kill"]
    final = next(e for e in by_session.get(a.kills, []) if e["event"] == "start")
    doing: dict[str, int] = {}
    for kill in kills:
        for d in kill["doing"]:
            doing[d] = doing.get(d, 0) + 1
    return {"kills": kills, "passed": all(k["ok"] for k in kills) and not final["saved_error"],
            "recoveries_ok": sum(k["ok"] for k in kills), "recovered": sum(k["recovered"] for k in kills),
            "killed_while": doing, "autosave_s": a.autosave, "longest_autosave_write_s": round(write_s, 2),
            "edits": sum(1 for e in events if e["event"] == "edit"), "work": str(work)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--autosave", type=int, default=1, help="autosave interval, s")
    p.add_argument("--min-delay", type=float, default=0.0, help="s after the editor is ready")
    p.add_argument("--max-delay", type=float, default=8.0)
    p.add_argument("--targets", default="mixed", choices=["mixed", *TARGETS],
                   help="what each kill aims at after its delay: mixed (in turn any moment, an autosave, a save, "
                        "a generation), or one of them")
    p.add_argument("--delays", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="the kills' delays (s, comma-separated) instead of random ones")
    p.add_argument("--work", default=None, help="the project's folder (default: a new temp folder)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "foley-crash-cache"),
                   help="where the test video and the tiny bundle are kept between runs")
    p.add_argument("--json", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--check-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--session", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--video", default=None, help=argparse.SUPPRESS)
    p.add_argument("--bundle", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.delays:
        a.kills = len(a.delays)
    if a.child:
        return child(a)
    report = harness(a)
    report["command"] = "tests/crash_recovery.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
