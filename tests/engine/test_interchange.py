"""engine.interchange: the export's timeline (video, checkerboarded Foley stems, markers) as OTIO and FCP7 XML,
read back through OpenTimelineIO with the same clips, times and markers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("opentimelineio")

from engine.errors import InvalidRequestError
from engine.interchange import StemClip, TimelineMarker, export_timeline, read_timeline, smpte_rate

RATE = 48000
FPS = 25.0


def _stems(tmp_path: Path) -> list[StemClip]:
    # three 8.2 s stems, overlapping by 1.6 s: 0-8.2, 6.6-14.8, 13.2-21.4 -> lanes A, B, A
    starts = [0.0, 6.6, 13.2]
    return [StemClip(f"seg-{i:03d}", tmp_path / f"seg-{i:03d}.wav", round(s * RATE), round(8.2 * RATE))
            for i, s in enumerate(starts)]


def _audio_clips(timeline) -> list[tuple[str, str, float, float]]:
    """(track, clip, start s, duration s) of every audio clip, in the timeline's own time (FCP7 XML keeps no
    track names: its tracks are named by their index)."""
    out = []
    for i, track in enumerate(timeline.audio_tracks()):
        for clip in track.find_clips():
            rng = clip.range_in_parent()
            out.append((track.name or f"track {i}", clip.name, rng.start_time.to_seconds(), rng.duration.to_seconds()))
    return sorted(out, key=lambda c: c[2])


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_the_timeline_reads_back_with_the_same_clips_times_and_markers(tmp_path: Path, suffix: str) -> None:
    video = tmp_path / "scene.mp4"
    video.write_bytes(b"")  # the timeline references it; nothing reads it
    stems = _stems(tmp_path)
    markers = [TimelineMarker("door slam", 3.0, "needs a heavier door"), TimelineMarker("segment 2", 6.6)]
    path = export_timeline(tmp_path / f"session{suffix}", "scene Foley", video, 21.4, FPS, stems, RATE, markers,
                           start_timecode_s=3600.0)
    tl = read_timeline(path)
    (vtrack,) = tl.video_tracks()
    (vclip,) = list(vtrack.find_clips())
    assert vclip.duration().to_seconds() == pytest.approx(21.4, abs=1 / FPS)
    assert Path(vclip.media_reference.target_url.replace("file://", "")).name == "scene.mp4"
    clips = _audio_clips(tl)
    assert [(c[1]) for c in clips] == ["seg-000", "seg-001", "seg-002"]
    tol = 1e-6 if suffix == ".otio" else 0.5 / FPS  # FCP7 XML counts whole frames
    if suffix == ".otio":
        assert [c[0] for c in clips] == ["Foley A", "Foley B", "Foley A"]
    assert clips[0][0] == clips[2][0] != clips[1][0]  # overlapping stems on two lanes, checkerboarded
    for (_, _, start, dur), want_start in zip(clips, [0.0, 6.6, 13.2]):
        assert start == pytest.approx(want_start, abs=tol) and dur == pytest.approx(8.2, abs=tol)
    for clip in tl.find_clips():
        if clip.name.startswith("seg-"):
            assert clip.media_reference.target_url.endswith(f"{clip.name}.wav")
    got = sorted(tl.tracks.markers, key=lambda m: m.marked_range.start_time.to_seconds())
    if not got:  # the FCP XML adapter puts a sequence's markers on the stack or on the tracks
        got = sorted((m for t in tl.tracks for m in t.markers), key=lambda m: m.marked_range.start_time.to_seconds())
    assert [m.name for m in got] == ["door slam", "segment 2"]
    assert [m.marked_range.start_time.to_seconds() for m in got] == pytest.approx([3.0, 6.6], abs=0.5 / FPS)
    if suffix == ".otio":
        assert got[0].metadata["mdsgen_foley"]["note"] == "needs a heavier door"
        assert tl.global_start_time.to_seconds() == pytest.approx(3600.0)


def test_a_non_smpte_rate_falls_back_to_25_and_bad_suffixes_are_refused(tmp_path: Path) -> None:
    assert smpte_rate(24.0) == 24.0 and smpte_rate(29.97) == 29.97
    assert smpte_rate(20.0) == 25.0
    with pytest.raises(InvalidRequestError, match=".otio"):
        export_timeline(tmp_path / "t.edl", "x", None, 8.2, FPS, _stems(tmp_path), RATE)
    with pytest.raises(InvalidRequestError, match="positive"):
        export_timeline(tmp_path / "t.otio", "x", None, 8.2, 0.0, _stems(tmp_path), RATE)
    assert not list(tmp_path.iterdir())
