"""Waveforms to draw (foley_app/views/waveform.py): the envelope of long audio, made off the GUI thread, latest
request wins; and pyqtgraph's own downsampling really applies to the timeline's curves."""

from __future__ import annotations

import threading

import numpy as np

from foley_app.jobs import JobRunner
from foley_app.views import waveform
from foley_app.views.waveform import WaveformJobs, plot_data


def test_short_audio_is_drawn_as_it_is_and_long_audio_as_its_min_max_envelope() -> None:
    a = np.sin(np.arange(1000) / 10).astype(np.float32)
    t, y = plot_data(a, 1000, start=2.0)
    assert np.array_equal(y, a) and t[0] == 2.0 and np.isclose(t[-1], 2.999)
    rng = np.random.default_rng(0)
    long = rng.standard_normal(1_000_003).astype(np.float32)
    t, y = plot_data(long, 16_000, max_points=10_000)
    assert y.size <= 10_002 and t.size == y.size and np.all(np.diff(t) >= 0)
    assert y.max() == long.max() and y.min() == long.min()  # no peak is lost
    assert t[-1] < len(long) / 16_000


def test_long_waveforms_are_made_in_a_job_and_a_later_request_wins(qtbot, qapp, monkeypatch) -> None:
    gui = threading.get_ident()
    made_on: list[int] = []
    real = waveform.plot_data

    def spy(*args, **kw):
        made_on.append(threading.get_ident())
        return real(*args, **kw)

    monkeypatch.setattr(waveform, "plot_data", spy)
    runner = JobRunner()
    waves = WaveformJobs(runner)
    shown: list[int] = []
    long = np.zeros(waveform.SYNC_SAMPLES + 1, np.float32)
    waves.request("track", long, 16_000, lambda t, y: shown.append(1))
    waves.request("track", np.ones(waveform.SYNC_SAMPLES * 2, np.float32), 16_000, lambda t, y: shown.append(2))
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10_000)
    assert shown == [2] and made_on and gui not in made_on  # the envelope never on the GUI thread
    waves.request("track", np.ones(10, np.float32), 16_000, lambda t, y: shown.append(3))  # short: on the spot
    assert shown == [2, 3]
    runner.shutdown()


def test_the_timelines_curves_keep_their_downsampling(qtbot, make_window) -> None:
    """PlotItem.addItem imposes the plot's downsampling and clip-to-view modes on an item: set before it, they
    were silently off and every sample was pathed on the GUI thread (2.7 s for 10 minutes of audio)."""
    w = make_window()
    tl = w.timeline
    for curve in (tl.orig_curve, tl.foley_curve):
        assert curve.opts["autoDownsample"] and curve.opts["clipToView"] and curve.opts["downsampleMethod"] == "peak"
    wave = w.panel.preview.wave
    assert wave.opts["autoDownsample"] and wave.opts["clipToView"]


def test_selecting_a_clip_restyles_the_lane_without_rebuilding_it(qtbot, make_window, video_12s) -> None:
    from helpers import FakeEngine, open_video

    from foley_app.views.timeline_view import ClipItem

    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    ed, doc = w.editor, w.doc
    sid = ed.add_segment(1.0)
    with qtbot.waitSignal(ed.generation_applied, timeout=10_000):
        ed.generate([sid])
    ed.select_segment(sid)
    ed.accept(0)
    [item] = [i for i in w.timeline._clip_items if isinstance(i, ClipItem)]
    cid = doc.project.clips[0].id
    assert item.selected == (doc.selected_clip_id == cid)
    doc.set_selected_clip("")
    assert item.selected is False
    doc.set_selected_clip(cid)
    assert item.selected is True and [i for i in w.timeline._clip_items if isinstance(i, ClipItem)] == [item]


def test_the_track_mel_of_a_48_khz_project_spans_the_track(qtbot, make_window, video_12s) -> None:
    """The mel's bands and hop are the spec's (16 kHz): a 48 kHz track went in as if at 16 kHz (3x too long)."""
    from helpers import FakeEngine, open_video, wait_for

    w = make_window(engine=FakeEngine(sample_rate=48_000), output_rate=48_000)
    open_video(qtbot, w, video_12s)
    ed, doc = w.editor, w.doc
    assert doc.sample_rate == 48_000
    sid = ed.add_segment(1.0)
    with qtbot.waitSignal(ed.generation_applied, timeout=10_000):
        ed.generate([sid])
    ed.select_segment(sid)
    mels = []
    ed.track_mel_ready.connect(lambda mel, rev: mels.append(mel) if mel is not None else None)
    ed.accept(0)
    wait_for(qtbot, lambda: bool(mels), 20)
    seconds = mels[-1].shape[1] * 256 / 16_000
    assert abs(seconds - len(doc.track_audio()) / 48_000) < 0.1
