"""The export for a DAW or an NLE: 48 kHz 24-bit Broadcast WAV stems placed by their bext time reference (the
video's start timecode + the clip's position) that sum to the exported track, and the session as an OpenTimelineIO
or Final Cut Pro 7 XML timeline (video, stems, markers), read back through OpenTimelineIO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import FakeEngine, ScriptedPrompter, open_video

from engine import Cancelled, read_bext, read_timeline
from foley_app.errors import ExportError
from foley_app.export import STEM_RATE, ExportDefaults, ExportRequest, build_request, check_request, run_export
from foley_app.views.dialogs.export_dialog import ExportDialog

DUR = 8.192  # FakeEngine's segment
TC = "01:00:00:00"
TC_SAMPLES = 3600 * STEM_RATE


def _session_window(qtbot, make_window, video: Path, rate: int):
    """A project with two overlapping clips (0 s and 3.79 s, crossfaded; the second at -3 dB) and a marker; its
    video starts at 01:00:00:00."""
    w = make_window(engine=FakeEngine(), output_rate=rate)
    open_video(qtbot, w, video)
    ed, doc = w.editor, w.doc
    for start in (0.0, 6.0):
        sid = ed.add_segment(start)
        with qtbot.waitSignal(ed.generation_applied, timeout=10_000):
            ed.generate([sid])
        ed.select_segment(sid)
        ed.accept(1 if start else 0)
    ed.set_clip_gain(doc.project.clips[1].id, -3.0)
    ed.add_marker_at(3.0, "Door")
    doc.project.video.timecode = TC  # what probe_video reports for a video that starts at 01:00:00:00
    return w


def _export(qtbot, w, request: ExportRequest):
    with qtbot.waitSignal(w.editor.export_finished, timeout=60_000) as blocker:
        w.editor.start_export(request)
    assert w.prompter_.errors == [], w.prompter_.errors
    return blocker.args[0]


def _audio_clips(timeline) -> list[tuple[str, float, float]]:
    out = []
    for track in timeline.audio_tracks():
        for clip in track.find_clips():
            rng = clip.range_in_parent()
            out.append((clip.name, rng.start_time.to_seconds(), rng.duration.to_seconds()))
    return sorted(out, key=lambda c: c[1])


def _markers(timeline) -> list[tuple[str, float]]:
    found = list(timeline.tracks.markers) or [m for t in timeline.tracks for m in t.markers]
    return sorted((m.name, m.marked_range.start_time.to_seconds()) for m in found)


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_stems_sit_at_their_time_references_and_sum_to_the_track(qtbot, make_window, video_12s: Path,
                                                                  tmp_path: Path, rate: int) -> None:
    w = _session_window(qtbot, make_window, video_12s, rate)
    out = tmp_path / "session"
    timeline = tmp_path / "session.otio"
    result = _export(qtbot, w, ExportRequest(str(video_12s), None, None, stems_dir=out, timeline_path=timeline))
    stems = sorted((out / "stems").glob("*.wav"))
    assert [p.name for p in stems] == ["seg-000.wav", "seg-001.wav"] and result.stems == stems
    assert result.written == [out / "foley.wav", timeline]

    # each stem: 48 kHz 24-bit BWF, its time reference = the video's timecode + its position in samples
    track, track_rate = sf.read(out / "foley.wav", dtype="float64")
    info = sf.info(str(out / "foley.wav"))
    assert (track_rate, info.subtype, len(track)) == (STEM_RATE, "PCM_24", 12 * STEM_RATE)
    assert read_bext(out / "foley.wav").time_reference == TC_SAMPLES
    starts = [c.start for c in w.doc.project.clips]  # 0 and the latest frame where a segment fits (3.79 s)
    assert starts == [0.0, pytest.approx(91 / 24)]
    want = [round(t * rate) * (STEM_RATE // rate) for t in starts]  # the project's sample, at 48 kHz
    refs, total = [], np.zeros_like(track)
    for path, at_48k, label in zip(stems, want, ("S1 #1", "S2 #2")):
        bext = read_bext(path)
        assert bext is not None and bext.time_reference == TC_SAMPLES + at_48k
        assert label in bext.description and bext.coding_history.startswith("A=PCM,F=48000,W=24")
        audio, stem_rate = sf.read(path, dtype="float64")
        assert stem_rate == STEM_RATE and sf.info(str(path)).subtype == "PCM_24"
        at = bext.time_reference - TC_SAMPLES
        assert len(audio) == round(DUR * STEM_RATE)
        total[at : at + len(audio)] += audio
        refs.append(at)
    assert refs == want
    lsb = 2.0 ** -23
    # within 24-bit rounding: three files rounded to the LSB (half of one each) and the mix's float32 arithmetic
    assert np.abs(total - track).max() <= 3 * lsb
    assert np.abs(track).max() > 0.05  # not silence
    second, _ = sf.read(stems[1], dtype="float64")  # the clip as it sounds: its crossfade starts from silence
    assert abs(second[0]) < 1e-3 < np.abs(second).max()

    # the timeline: the video, the two stems where they are, the marker; from the video's timecode
    tl = read_timeline(timeline)
    (vclip,) = list(tl.video_tracks()[0].find_clips())
    assert vclip.duration().to_seconds() == pytest.approx(12.0, abs=1 / 24)
    assert _audio_clips(tl) == [("seg-000", 0.0, pytest.approx(DUR)),
                                ("seg-001", pytest.approx(want[1] / STEM_RATE), pytest.approx(DUR))]
    assert len(tl.audio_tracks()) == 2  # overlapping stems on two tracks
    for clip in tl.find_clips():
        if clip.name.startswith("seg-"):
            assert clip.media_reference.target_url.endswith(f"/stems/{clip.name}.wav")
    assert _markers(tl) == [("Door", pytest.approx(3.0))]
    assert tl.global_start_time.to_seconds() == pytest.approx(3600.0)


def test_fcp7_xml_replaces_an_earlier_export_after_asking(qtbot, make_window, video_12s: Path,
                                                          tmp_path: Path) -> None:
    w = _session_window(qtbot, make_window, video_12s, 16_000)
    out = tmp_path / "session"
    _export(qtbot, w, ExportRequest(str(video_12s), None, None, stems_dir=out, timeline_path=tmp_path / "a.otio"))
    stray = out / "stems" / "seg-007.wav"  # a stem an earlier export with more clips left
    stray.write_bytes((out / "stems" / "seg-000.wav").read_bytes())
    p = ScriptedPrompter()
    assert build_request(str(video_12s), None, None, False, -23.0, p, stems=out, timeline=tmp_path / "b") is None
    title, text, _ = p.asked[-1]
    assert title == "Replace files?" and "earlier stems export" in text  # answered Cancel
    with pytest.raises(ExportError, match="already exists"):
        check_request(ExportRequest(str(video_12s), None, None, stems_dir=out))
    p.queue("ask", "Replace")
    req = build_request(str(video_12s), None, None, False, -23.0, p, stems=out, timeline=tmp_path / "b",
                        timeline_suffix=".xml")
    assert req is not None and req.overwrite and req.timeline_path == tmp_path / "b.xml"
    _export(qtbot, w, req)
    assert not stray.exists() and sorted(p.name for p in (out / "stems").iterdir()) == ["seg-000.wav", "seg-001.wav"]
    tl = read_timeline(tmp_path / "b.xml")  # FCP7 XML counts whole frames (24 fps here)
    clips = _audio_clips(tl)
    assert [c[0] for c in clips] == ["seg-000", "seg-001"]
    assert [c[1] for c in clips] == pytest.approx([0.0, 91 / 24], abs=0.5 / 24)
    assert [c[2] for c in clips] == pytest.approx([DUR, DUR], abs=0.5 / 24)
    assert _markers(tl) == [("Door", pytest.approx(3.0, abs=0.5 / 24))]


def test_the_requests_that_cannot_work_are_refused_and_a_cancel_writes_nothing(
        qtbot, make_window, video_12s: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Nothing to export"):
        check_request(ExportRequest(None, None, None))
    with pytest.raises(ExportError, match="export the stems too"):
        check_request(ExportRequest(None, None, None, timeline_path=tmp_path / "t.otio"))
    with pytest.raises(ExportError, match=".otio or .xml"):
        check_request(ExportRequest(None, None, None, stems_dir=tmp_path / "s", timeline_path=tmp_path / "t.edl"))
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ExportError, match="the stems need a folder"):
        check_request(ExportRequest(None, None, None, stems_dir=tmp_path / "file"))
    with pytest.raises(ExportError, match="two outputs"):
        check_request(ExportRequest(None, None, tmp_path / "s" / "foley.wav", stems_dir=tmp_path / "s"))
    p = ScriptedPrompter()
    assert build_request(None, None, None, False, -23.0, p, timeline=tmp_path / "t.otio") is None
    assert p.errors[-1].title == "The timeline needs the stems"

    w = _session_window(qtbot, make_window, video_12s, 16_000)
    out = tmp_path / "cancelled"
    with pytest.raises(Cancelled, match="no file was written"):
        run_export(ExportRequest(str(video_12s), None, None, stems_dir=out), w.editor.export_session(),
                   lambda f, m: None, lambda: True)
    assert not out.exists() or not any(out.rglob("*.wav"))


def test_the_dialog_offers_stems_and_a_timeline(qtbot, tmp_path: Path, video_12s: Path) -> None:
    p = ScriptedPrompter()
    defaults = ExportDefaults(str(video_12s), str(tmp_path / "a.mp4"), str(tmp_path / "a.wav"), False, -23.0,
                              48_000, stems_dir=str(tmp_path / "a_stems"), timeline_path=str(tmp_path / "a.otio"),
                              markers=2)
    dlg = ExportDialog(defaults, p)
    qtbot.addWidget(dlg)
    assert not dlg.stems_check.isChecked() and not dlg.timeline_check.isChecked()
    assert "48 kHz 24-bit Broadcast WAV, one per clip" in dlg.stems_check.text()
    assert [dlg.timeline_format.itemText(i) for i in range(dlg.timeline_format.count())] == [
        "OpenTimelineIO (.otio)", "Final Cut Pro 7 XML (.xml)"]
    dlg.timeline_check.setChecked(True)
    assert dlg.stems_check.isChecked()  # the timeline refers to the stems
    dlg.stems_check.setChecked(False)
    assert not dlg.timeline_check.isChecked()
    dlg.timeline_check.setChecked(True)
    dlg.timeline_format.setCurrentIndex(1)
    assert dlg.timeline_path.text() == str(tmp_path / "a.xml")
    dlg.mp4_check.setChecked(False)
    dlg._accept()
    r = dlg.request
    assert r is not None and r.mp4_path is None and r.wav_path is None
    assert (r.stems_dir, r.timeline_path, r.overwrite) == (tmp_path / "a_stems", tmp_path / "a.xml", False)


def test_the_editor_suggests_stems_and_a_timeline_beside_the_video(qtbot, make_window, video_12s: Path) -> None:
    w = make_window(engine=FakeEngine())
    open_video(qtbot, w, video_12s)
    w.editor.add_marker_at(1.0)
    d = w.editor.export_defaults()
    assert Path(d.stems_dir) == video_12s.parent / "clip12_foley_stems"
    assert Path(d.timeline_path) == video_12s.parent / "clip12_foley.otio" and d.markers == 1
    s = w.editor.export_session()
    assert s.name == "clip12 Foley" and [(m.name, m.time) for m in s.markers] == [("Marker 1", 1.0)]
    assert s.timecode is None and s.fps == 24.0
