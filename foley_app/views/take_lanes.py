"""Take lanes: the current segment's candidates stacked under the Foley track, as REAPER's fixed item lanes.

One lane per candidate, its waveform at the time it was made for. A click on a lane auditions that candidate
with the picture from the clicked time; a double-click picks it for the part of the segment's clip under the
click (the comp: S splits the clip at the playhead, Shift+S removes the nearest cut). Where a candidate plays in
the comp its lane is tinted, and every cut is a line through the lanes. The view only emits intents; the editor
turns them into commands.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from foley_app.document.document import ProjectDocument
from foley_app.document.project import Clip, Segment
from foley_app.views import theme
from foley_app.views.lane import Lane
from foley_app.views.waveform import WaveformJobs

LANE_HEIGHT = 40
MAX_LANES = 9  # the Alt+1…9 keys


class TakeLane(Lane):
    """One candidate's lane: its waveform, where it plays in the comp, the cuts, a playhead."""

    def __init__(self, index: int) -> None:
        super().__init__(f"Take {index + 1}", LANE_HEIGHT, tooltip=(
            f"Candidate {index + 1}: click to audition it from there with the picture; double-click (or Alt+"
            f"{index + 1} at the playhead) to use it for that part of the clip. S splits the clip at the playhead."))
        self.index = index
        self.header.layout().setContentsMargins(8, 2, 6, 2)
        self.vb.setYRange(-1, 1, padding=0.05)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(theme.TAKE_WAVE, width=1))
        self.plot.addItem(self.curve)
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        self.playhead = pg.InfiniteLine(0.0, angle=90, movable=False, pen=pg.mkPen(theme.PLAYHEAD, width=2))
        self.playhead.setZValue(100)
        self.plot.addItem(self.playhead)
        self.decor: list[pg.GraphicsObject] = []  # comp regions and cut lines, rebuilt with the comp

    def set_decor(self, items: list[pg.GraphicsObject]) -> None:
        for item in self.decor:
            self.plot.removeItem(item)
        self.decor = items
        for item in items:
            self.plot.addItem(item)


class TakeLanes(QWidget):
    """The lanes of the current segment's candidates (hidden while it has none)."""

    audition_requested = Signal(str, int, float)  # segment id, take index, time (s)
    use_requested = Signal(str, int, float)  # segment id, take index, time (s): that take for the part there

    def __init__(self, document: ProjectDocument, x_link: pg.PlotWidget, waves: WaveformJobs) -> None:
        super().__init__()
        self.doc = document
        self._x_link = x_link
        self._waves = waves
        self._limits = (0.0, 1.0)
        self._built: tuple = ()
        self._seg_id = ""
        self._playhead = 0.0
        self.lanes: list[TakeLane] = []
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(1)
        document.project_replaced.connect(self.refresh)
        document.current_segment_changed.connect(self.refresh)
        document.segment_changed.connect(self.refresh)
        document.clips_changed.connect(self.refresh)
        document.current_take_changed.connect(self._restyle)
        self.refresh()

    # ---- state --------------------------------------------------------------------------------------------------
    @property
    def segment_id(self) -> str:
        return self._seg_id

    def _segment(self) -> Segment | None:
        seg = self.doc.current_segment()
        return seg if seg is not None and seg.takes else None

    def comp_spans(self, index: int) -> list[tuple[float, float]]:
        """(start, end) track times where take `index` plays in the current segment's clip."""
        seg = self._segment()
        clip = self.doc.project.clip_for_segment(seg.id) if seg is not None else None
        if clip is None:
            return []
        return [(a, b) for (a, b, k) in self._parts(clip) if k == index and self._is_take(clip, seg, k)]

    def _parts(self, clip: Clip) -> list[tuple[float, float, int]]:
        length = len(self.doc.audio.get(clip.audio_id)) / self.doc.sample_rate
        times = clip.part_times()
        ends = [*times[1:], length]
        return [(clip.start + a, clip.start + b, k) for a, b, k in zip(times, ends, clip.take_indices())]

    @staticmethod
    def _is_take(clip: Clip, seg: Segment, index: int) -> bool:
        """Whether the clip's parts of take `index` are still that candidate (not one of an earlier generation)."""
        ids = {clip.audio_id, *(p.audio_id for p in clip.parts)}
        return 0 <= index < len(seg.takes) and seg.takes[index].audio_id in ids

    # ---- building -----------------------------------------------------------------------------------------------
    def set_x_limits(self, lo: float, hi: float) -> None:
        self._limits = (lo, hi)
        for lane in self.lanes:
            lane.vb.setLimits(xMin=lo, xMax=hi)

    def refresh(self, *_args: object) -> None:
        seg = self._segment()
        takes = seg.takes[:MAX_LANES] if seg is not None else []
        key = (seg.id if seg else "", tuple(t.audio_id for t in takes))
        if key != self._built:
            self._rebuild(seg, takes)
            self._built = key
        self._decorate()
        self._restyle()

    def _rebuild(self, seg: Segment | None, takes: list) -> None:
        layout = self.layout()
        for lane in self.lanes:
            layout.removeWidget(lane)
            lane.deleteLater()
        self.lanes = []
        self._seg_id = seg.id if seg is not None else ""
        for take in takes:
            lane = TakeLane(take.index)
            lane.subtitle.setText(f"seed {take.seed}")
            lane.plot.setXLink(self._x_link)
            lane.vb.setLimits(xMin=self._limits[0], xMax=self._limits[1])
            lane.playhead.setValue(self._playhead)
            lane.plot.scene().sigMouseClicked.connect(lambda ev, ln=lane: self._on_click(ln, ev))
            start = take.start_in(seg) if seg is not None else 0.0
            self._waves.request(f"take-lane-{take.index}", self.doc.audio.get(take.audio_id), self.doc.sample_rate,
                                lane.curve.setData, start=start)
            layout.addWidget(lane)
            self.lanes.append(lane)
        self.setVisible(bool(self.lanes))

    def _decorate(self) -> None:
        seg = self._segment()
        clip = self.doc.project.clip_for_segment(seg.id) if seg is not None else None
        parts = self._parts(clip) if clip is not None else []
        cuts = [a for a, _b, _k in parts[1:]]
        for lane in self.lanes:
            items: list[pg.GraphicsObject] = []
            for a, b, k in parts:
                if k == lane.index and self._is_take(clip, seg, k):  # type: ignore[arg-type]
                    region = pg.LinearRegionItem(values=(a, b), movable=False, brush=theme.COMP_BRUSH,
                                                 pen=pg.mkPen(None))
                    region.setZValue(-5)
                    items.append(region)
            for t in cuts:
                line = pg.InfiniteLine(t, angle=90, movable=False,
                                       pen=pg.mkPen(theme.COMP_CUT, width=1, style=Qt.PenStyle.DashLine))
                line.setZValue(50)
                items.append(line)
            lane.set_decor(items)
            in_comp = any(k == lane.index for _a, _b, k in parts) and clip is not None and self._is_take(
                clip, seg, lane.index)  # type: ignore[arg-type]
            take = seg.takes[lane.index] if seg is not None else None
            lane.subtitle.setText(f"seed {take.seed}" + ("  ✓" if in_comp else "") if take is not None else "")

    def _restyle(self, *_args: object) -> None:
        current = self.doc.current_take_index(self._seg_id) if self._seg_id else -1
        for lane in self.lanes:
            lane.title.setStyleSheet(f"font-weight: bold; color: {theme.ACCENT};" if lane.index == current else "")

    def set_playhead(self, t: float) -> None:
        self._playhead = t
        for lane in self.lanes:
            lane.playhead.setValue(t)

    def waveform(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (t, y) drawn on lane `index` (for tests and screenshots)."""
        x, y = self.lanes[index].curve.getData()
        return (np.zeros(0) if x is None else x), (np.zeros(0) if y is None else y)

    # ---- interaction --------------------------------------------------------------------------------------------
    def _on_click(self, lane: TakeLane, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not self._seg_id:
            return
        pos = ev.scenePos()
        if not lane.vb.sceneBoundingRect().contains(pos):
            return
        ev.accept()
        t = float(lane.vb.mapSceneToView(QPointF(pos)).x())
        if ev.double():
            self.use_requested.emit(self._seg_id, lane.index, t)
        else:
            self.audition_requested.emit(self._seg_id, lane.index, t)
