"""The whole flow on the real engine (tiny random-weight bundle), offscreen, driven by keys and the menus' actions:
open, select, generate, audition, accept, undo and redo, save and reopen, export; then the MP4 is decoded and its
streams, duration and the position of the Foley are checked."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from helpers import wait_for
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engine import measure_loudness, read_audio
from foley_app.export import ExportRequest

pytest.importorskip("torch")

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def _drag(widget, start: QPointF, end: QPointF, steps: int = 6) -> None:
    """A real left-button drag on a widget (press, moves with the button held, release)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    QApplication.sendEvent(widget, QMouseEvent(QEvent.Type.MouseButtonPress, start, start, left, left,
                                               Qt.KeyboardModifier.NoModifier))
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        QApplication.sendEvent(widget, QMouseEvent(QEvent.Type.MouseMove, p, p, none, left,
                                                   Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(widget, QMouseEvent(QEvent.Type.MouseButtonRelease, end, end, left, none,
                                               Qt.KeyboardModifier.NoModifier))


def _lag(reference: np.ndarray, signal: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The lag (samples) at which `signal` best matches `reference`, and the normalised correlation there."""
    n = len(reference) - 2 * max_lag
    ref = reference[max_lag : max_lag + n]
    best = (0, -1.0)
    for lag in range(-max_lag, max_lag + 1):
        seg = signal[max_lag + lag : max_lag + lag + n]
        c = float(np.dot(ref, seg) / (np.linalg.norm(ref) * np.linalg.norm(seg) + 1e-12))
        if c > best[1]:
            best = (lag, c)
    return best


def test_open_select_generate_accept_undo_save_reopen_export(qtbot, make_window, tiny_bundle: Path,
                                                             video_12s: Path, tmp_path: Path, null_audio) -> None:
    w = make_window(candidates=2, steps=2)
    key = lambda k, mod=Qt.KeyboardModifier.NoModifier: qtbot.keyClick(w, k, mod)  # noqa: E731

    # the model loads once, in the background; the status bar says it holds random weights
    w.ctx.engine.load(str(tiny_bundle), "torch")
    wait_for(qtbot, lambda: w.ctx.engine.ready, 60)
    assert "RANDOM WEIGHTS" in w.model_label.text()

    # open (File ▸ Open Video…, Ctrl+O)
    w.prompter_.queue("open_file", str(video_12s))
    with qtbot.waitSignal(w.editor.video_opened, timeout=20_000):
        key(Qt.Key.Key_O, CTRL)
    wait_for(qtbot, lambda: w.video_view.image is not None, 20)  # the first frame is shown
    assert w.doc.video.duration == pytest.approx(12.0)

    # select: playhead to 2 s (Home, Shift+Right x2), N adds a segment there, then drag it later with the mouse
    key(Qt.Key.Key_Home)
    key(Qt.Key.Key_Right, SHIFT)
    key(Qt.Key.Key_Right, SHIFT)
    key(Qt.Key.Key_N)
    seg = w.doc.current_segment()
    assert seg.start == pytest.approx(2.0) and seg.duration == pytest.approx(8.192)
    vb = w.timeline.picture.vb
    view = w.timeline.picture.plot
    to_widget = lambda x: QPointF(view.mapFromScene(vb.mapViewToScene(QPointF(x, 0.5))))  # noqa: E731
    _drag(view.viewport(), to_widget(5.0), to_widget(5.5))
    assert abs(seg.start - 2.5) < 0.1 and abs(seg.start * 24 - round(seg.start * 24)) < 1e-6  # moved, on a frame
    start = seg.start
    assert w.doc.undo_stack.undoText() == "Move segment S1"

    # generate (Ctrl+G): in the background, with progress; the window stays responsive
    with qtbot.waitSignal(w.editor.generation_applied, timeout=120_000):
        key(Qt.Key.Key_G, CTRL)
        qtbot.waitUntil(lambda: w.jobs_indicator.isVisible(), timeout=5000)
        key(Qt.Key.Key_Right)  # keys still work while it runs
    assert [t.seed for t in seg.takes] == [0, 1]
    assert all(t.settings["steps"] == 2 and t.settings["start"] == start for t in seg.takes)
    assert w.panel.model.rowCount() == 2 and "2 steps" in w.panel.info.text()

    # audition candidate 2 with the picture from the segment start, then accept it (Enter)
    key(Qt.Key.Key_2)
    assert w.ctx.playback.audition == (seg.id, 1) and w.ctx.playback._audio_live
    key(Qt.Key.Key_Return)
    key(Qt.Key.Key_Escape)
    [clip] = w.doc.project.clips
    assert clip.start == start and clip.seed == 1
    track = w.doc.track_audio().copy()
    first = round(start * 16000)
    assert not np.any(track[:first]) and np.abs(track[first + 100 : first + 16000]).max() > 0

    # undo and redo (Ctrl+Z / Ctrl+Shift+Z)
    key(Qt.Key.Key_Z, CTRL)
    assert w.doc.project.clips == [] and not np.any(w.doc.track_audio())
    key(Qt.Key.Key_Z, CTRL | SHIFT)
    assert len(w.doc.project.clips) == 1
    np.testing.assert_array_equal(w.doc.track_audio(), track)

    # save (Ctrl+S asks where the first time)
    project_path = tmp_path / "film.foleyproj"
    w.prompter_.queue("save_file", str(project_path))
    with qtbot.waitSignal(w.editor.project_saved, timeout=10_000):
        key(Qt.Key.Key_S, CTRL)
    assert project_path.is_file() and not w.doc.is_modified() and not w.isWindowModified()

    # reopen in a fresh window (File ▸ Open Project…, Ctrl+Shift+O)
    w2 = make_window(candidates=2, steps=2, name="w2")
    w2.ctx.engine.set_engine(w.ctx.engine.engine)
    w2.activateWindow()
    qtbot.waitUntil(w2.isActiveWindow, timeout=5000)
    w2.prompter_.queue("open_file", str(project_path))
    with qtbot.waitSignal(w2.editor.project_opened, timeout=20_000):
        qtbot.keyClick(w2, Qt.Key.Key_O, CTRL | SHIFT)
    assert w2.doc.project == w.doc.project
    np.testing.assert_allclose(w2.doc.track_audio(), track, atol=2 ** -22)
    assert w2.doc.undo_stack.count() == 0 and not w2.doc.is_modified()

    # export (Ctrl+E): the video with the Foley track and a WAV, in the background
    out_mp4, out_wav = tmp_path / "out" / "film_foley.mp4", tmp_path / "out" / "film_foley.wav"
    w2.prompter_.queue("export_options", ExportRequest(str(video_12s), out_mp4, out_wav))
    with qtbot.waitSignal(w2.editor.export_finished, timeout=60_000) as blocker:
        qtbot.keyClick(w2, Qt.Key.Key_E, CTRL)
    assert blocker.args[0].written == [out_wav, out_mp4]
    assert w2.prompter_.infos and "Export finished" in w2.prompter_.infos[-1][0]
    assert w2.prompter_.export_defaults.mp4_path != str(video_12s)  # the default never names the source

    # the MP4: the video stream copied packet for packet, one AAC track at 48 kHz, the video's duration
    with av.open(str(video_12s)) as src, av.open(str(out_mp4)) as out:
        assert len(out.streams.video) == 1 and len(out.streams.audio) == 1
        sv, ov, oa = src.streams.video[0], out.streams.video[0], out.streams.audio[0]
        assert ov.codec_context.name == sv.codec_context.name == "h264"
        assert (ov.width, ov.height) == (sv.width, sv.height)
        src_packets = [bytes(p) for p in src.demux(sv) if p.size]
    with av.open(str(out_mp4)) as out:
        out_packets = [bytes(p) for p in out.demux(out.streams.video[0]) if p.size]
        assert oa.codec_context.name == "aac" and oa.rate == 48_000 and oa.codec_context.channels == 1
        assert float(out.duration / av.time_base) == pytest.approx(12.0, abs=0.05)
    assert out_packets == src_packets

    # the Foley sits at the right time: decode the AAC track and find the track's lag by cross-correlation
    decoded = read_audio(out_mp4, 16000, duration=12.0)
    assert np.sqrt(np.mean(decoded[: first - 400] ** 2)) < 1e-3  # silence before the clip
    lag, corr = _lag(track[first : first + 4 * 16000 + 2 * 80], decoded[first : first + 4 * 16000 + 2 * 80], 80)
    assert lag == 0 and corr > 0.9, (lag, corr)

    # the WAV: the whole Foley track, 16 kHz, as long as the video
    wav, rate = sf.read(str(out_wav), dtype="float32")
    assert rate == 16000 and len(wav) == 12 * 16000
    np.testing.assert_allclose(wav, np.clip(track, -1, 1), atol=2 ** -22)

    # loudness normalisation on export (WAV only, replacing the file after confirmation in the dialog)
    w2.prompter_.queue("export_options", ExportRequest(str(video_12s), None, out_wav, True, -30.0, True))
    with qtbot.waitSignal(w2.editor.export_finished, timeout=60_000) as blocker:
        w2.actions_["export"].trigger()
    assert measure_loudness(sf.read(str(out_wav), dtype="float32")[0], 16000) == pytest.approx(-30.0, abs=0.2)
    assert "LUFS" in w2.prompter_.infos[-1][1]
    assert w.prompter_.errors == [] and w2.prompter_.errors == []


def test_a_48k_project_generates_through_the_extension_saves_and_exports_at_48k(
        qtbot, make_window, tiny_bundle: Path, video_12s: Path, tmp_path: Path, null_audio) -> None:
    """The app's default output rate (48 kHz) with a bundle that has a bandwidth extension (random weights, tests
    only): the takes, the project's audio files and the exported WAV and MP4 are 48 kHz; a 16 kHz project stays so."""
    import shutil

    import torch

    from engine.nn.bundle import add_component
    from engine.nn.bwe import BandwidthNet, BweConfig
    from foley_app.settings import Settings

    bundle = tmp_path / "tiny_bwe"
    shutil.copytree(tiny_bundle, bundle)
    torch.manual_seed(0)
    add_component(bundle, "bwe", BandwidthNet(BweConfig(channels=16)))
    assert Settings(tmp_path / "fresh.ini").output_rate == 48_000  # the app's default
    w = make_window(candidates=1, steps=2, output_rate=None)
    w.ctx.engine.load(str(bundle), "torch")
    wait_for(qtbot, lambda: w.ctx.engine.ready, 60)
    w.prompter_.queue("open_file", str(video_12s))
    with qtbot.waitSignal(w.editor.video_opened, timeout=20_000):
        qtbot.keyClick(w, Qt.Key.Key_O, CTRL)
    assert w.doc.sample_rate == 48_000
    seg_id = w.editor.add_segment(2.0)
    with qtbot.waitSignal(w.editor.generation_applied, timeout=120_000):
        w.editor.generate([seg_id])
    [take] = w.doc.segment(seg_id).takes
    assert take.settings["rate_stage"] == "bwe-conv1d" and take.settings["sample_rate"] == 48_000
    assert len(w.doc.audio.get(take.audio_id)) == round(8.192 * 48_000)
    w.editor.select_segment(seg_id)
    qtbot.keyClick(w, Qt.Key.Key_1)  # audition: the device runs at the project's rate, nothing is lost on the way
    assert w.ctx.playback._audio_live and w.ctx.playback.output.rate == 48_000
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    w.editor.accept(0)
    track = w.doc.track_audio().copy()
    assert track.shape == (12 * 48_000,) and not np.any(track[: 2 * 48_000 - 1])

    project_path = tmp_path / "film48.foleyproj"
    w.prompter_.queue("save_file", str(project_path))
    with qtbot.waitSignal(w.editor.project_saved, timeout=10_000):
        qtbot.keyClick(w, Qt.Key.Key_S, CTRL)
    media = tmp_path / "film48.media"
    assert {sf.info(str(p)).samplerate for p in media.glob("*.wav")} == {48_000}

    out_mp4, out_wav = tmp_path / "out48" / "film.mp4", tmp_path / "out48" / "film.wav"
    w.prompter_.queue("export_options", ExportRequest(str(video_12s), out_mp4, out_wav))
    with qtbot.waitSignal(w.editor.export_finished, timeout=60_000):
        w.actions_["export"].trigger()
    wav, rate = sf.read(str(out_wav), dtype="float32")
    assert rate == 48_000 and len(wav) == 12 * 48_000
    decoded = read_audio(out_mp4, 48_000, duration=12.0)
    first = 2 * 48_000
    lag, corr = _lag(track[first : first + 2 * 48_000 + 480], decoded[first : first + 2 * 48_000 + 480], 240)
    assert lag == 0 and corr > 0.9, (lag, corr)

    # the preference applies to new projects: a 16 kHz one generates at 16 kHz with the same bundle
    w16 = make_window(candidates=1, steps=2, name="w16", output_rate=16_000)
    w16.ctx.engine.set_engine(w.ctx.engine.engine)
    with qtbot.waitSignal(w16.editor.video_opened, timeout=20_000):
        w16.editor.open_path(video_12s)
    seg16 = w16.editor.add_segment(1.0)
    with qtbot.waitSignal(w16.editor.generation_applied, timeout=120_000):
        w16.editor.generate([seg16])
    [take16] = w16.doc.segment(seg16).takes
    assert take16.settings["rate_stage"] == "none" and len(w16.doc.audio.get(take16.audio_id)) == 8.192 * 16_000
    assert w.prompter_.errors == [] and w16.prompter_.errors == []


def test_export_of_a_vp8_video_to_mp4_re_encodes_and_says_so(qtbot, make_window, video_vp8: Path,
                                                             tmp_path: Path) -> None:
    from helpers import FakeEngine

    w = make_window(engine=FakeEngine(), candidates=1)
    with qtbot.waitSignal(w.editor.video_opened, timeout=20_000):
        w.editor.open_path(video_vp8)
    seg_id = w.editor.add_segment(0.5)
    with qtbot.waitSignal(w.editor.generation_applied, timeout=20_000):
        w.editor.generate([seg_id])
    w.editor.select_segment(seg_id)
    w.editor.accept(0)
    defaults = w.editor.export_defaults()
    assert defaults.mp4_path.endswith("film_foley.mp4")  # an MP4 by default, whatever the source's container
    out = tmp_path / "vp8_out.mp4"
    w.prompter_.queue("export_options", ExportRequest(str(video_vp8), out, None))
    with qtbot.waitSignal(w.editor.export_finished, timeout=60_000) as blocker:
        w.actions_["export"].trigger()
    assert any("re-encoded" in n for n in blocker.args[0].notes)
    assert "re-encoded to H.264" in w.prompter_.infos[-1][1]
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
