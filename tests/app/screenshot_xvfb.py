"""Make the README's screenshot: the real editor in a real X window (Xvfb), with a generated result.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tests/app/screenshot_xvfb.py [--bundle B] [--out PNG]
    .venv/bin/python tests/app/screenshot_xvfb.py --markers --offscreen --out docs/screenshots/foley-markers.png
    .venv/bin/python tests/app/screenshot_xvfb.py --comp --offscreen --bundle resources/models/default
        --out docs/screenshots/foley-take-lanes.png          (one command)

Opens the demo clip, fills the video with overlapping segments (crossfaded on the Foley track), generates two more
candidates for a segment, highlights one and grabs the X screen. `--markers` also adds three named markers and
shows the Markers tab; `--comp` comps the last segment's clip from three of its candidates (two cuts) and zooms to
it, so that the take lanes show where each candidate plays; `--offscreen` renders the window without an X server
(Qt's offscreen platform, the window grabbed instead of the screen; saved as a 256-colour PNG to keep it small).
Without --bundle it builds the tests' tiny RANDOM-weight bundle (the status bar says so).
Not a test (no test_ prefix): run it by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bundle")
    p.add_argument("--video", default=str(ROOT / "resources/demo/bbb_excerpt.mp4"))
    p.add_argument("--out", default=str(ROOT / "docs/screenshots/foley-editor.png"))
    p.add_argument("--markers", action="store_true", help="add three markers and show the Markers tab")
    p.add_argument("--comp", action="store_true", help="comp a clip from three candidates, zoomed to it")
    p.add_argument("--offscreen", action="store_true", help="no X server: grab the window, not the screen")
    p.add_argument("--size", default="1600x1000", help="the window's size with --offscreen")
    args = p.parse_args()
    os.environ["QT_QPA_PLATFORM"] = "offscreen" if args.offscreen else os.environ.get("QT_QPA_PLATFORM", "xcb")
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="foley-shot-"))
    bundle = args.bundle
    if bundle is None:
        from engine.nn.presets import TINY_DENOISER
        from engine.nn.random_bundle import random_bundle
        from engine.spec import DIFF_FOLEY

        bundle = str(work / "tiny-random")
        random_bundle(bundle, spec=DIFF_FOLEY, preset="T", vocoder="vocos",
                      denoiser_overrides=TINY_DENOISER)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Foley Editor")
    from foley_app.app import build_context, build_editor
    from foley_app.settings import Settings
    from foley_app.views import theme
    from foley_app.views.dialogs.prompter import Prompter
    from foley_app.views.main_window import MainWindow

    theme.apply(app)
    settings = Settings(work / "settings.ini")
    settings.candidates, settings.steps, settings.autosave_seconds = 4, 8, 0
    settings.mute_original = False
    ctx = build_context(settings, autosave_root=work / "autosave", logs=work / "logs", stills=work / "stills")
    prompter = Prompter()
    editor, frames = build_editor(ctx, prompter)
    window = MainWindow(ctx, editor, frames, prompter)
    if args.offscreen:
        width, height = (int(x) for x in args.size.split("x"))
        window.resize(width, height)
    else:
        screen = app.primaryScreen().availableGeometry()
        window.setGeometry(0, 0, screen.width(), screen.height())
    window.show()

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def until(cond, timeout: float = 300.0) -> None:
        t0 = time.time()
        while not cond():
            if time.time() - t0 > timeout:
                raise TimeoutError("the editor did not get there in time")
            wait(100)

    ctx.engine.load(bundle, "auto")
    window.editor.open_path(args.video)
    until(lambda: ctx.document.video is not None and ctx.engine.ready and not ctx.jobs.busy("thumbnails"))
    ed = window.editor
    ed.fill_whole_video()
    until(lambda: not ctx.jobs.busy("generate"))
    segs = sorted(ctx.document.project.segments, key=lambda s: s.start)
    ed.select_segment(segs[-1].id)
    ed.generate(new_seeds=True)
    until(lambda: not ctx.jobs.busy("generate"))
    ed.accept(2)
    ed.highlight_take(1)
    ctx.playback.seek(7.3)
    window.timeline.zoom_to_fit()
    ed.select_segment(segs[-1].id)
    if args.markers:
        for t, name in ((1.2, "Door opens"), (4.6, "Footsteps on gravel"), (9.4, "Glass breaks")):
            marker_id = ed.add_marker_at(t, name)
        window.show_markers_list()
        window.markers_panel.select_marker(marker_id)
        ctx.playback.seek(9.4)
    if args.comp:
        seg = segs[-1]
        clip = ctx.document.project.clip_for_segment(seg.id)
        a, b = clip.start + 2.6, clip.start + 5.4
        for t, take in ((a, 0), (b, 3)):
            ed.split_at(t)
            ed.use_take_at(seg.id, take, t + 0.1)
        window.timeline.picture.vb.setXRange(seg.start - 0.3, seg.start + seg.duration + 0.3, padding=0)
        ctx.playback.seek(a + 1.0)
    until(lambda: not ctx.jobs.busy())
    wait(1500)
    # the X screen, as a user would see it; offscreen, the window itself
    shot = window.grab() if args.offscreen else app.primaryScreen().grabWindow(0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    shot.save(args.out)
    if args.offscreen:
        from PIL import Image  # Pillow (the train extra): a palette PNG, a fraction of the size

        Image.open(args.out).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"wrote {args.out} ({shot.width()}x{shot.height()}) on {app.platformName()}")
    ctx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
