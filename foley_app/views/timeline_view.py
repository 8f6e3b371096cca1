"""The timeline: picture lane (thumbnails + segments), original audio, Foley track and its mel spectrogram.

Each lane is a pyqtgraph plot with a header on its left; all lanes share one x axis (seconds), one playhead and one
zoom/scroll (mouse wheel zooms time, drag pans, the scroll bar below follows). Segments are fixed-length regions
that snap to frames while dragged; a drag pushes one command when released (live preview while dragging). The view
never changes the document: it emits intents (`*_requested`) that the editor turns into commands.

Hits are thin lines with a handle in the lower band of a segment in the picture lane: a click selects one, a drag
moves it inside its segment (one command when released), a right click opens the hit menu (delete, clear, detect
again; on a segment: add a hit there). Above them, in another colour, the hits the highlighted take of the current
segment was made with, at the picture times it was made for.

Markers are lines through every lane with a flag and their name on the thin markers lane under the picture; a
click on one there moves the playhead to it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMenu,
    QScrollBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from foley_app.document.document import ProjectDocument
from foley_app.document.project import HITS_PENDING, HITS_USER
from foley_app.document.timeline import clamp_hit, comp_cut_spans, crossfade_spans, place_segment
from foley_app.jobs import JobRunner
from foley_app.views import theme
from foley_app.views.lane import HEADER_WIDTH, Lane
from foley_app.views.take_lanes import TakeLanes
from foley_app.views.waveform import WaveformJobs

SCROLL_STEPS = 10_000
HIT_SPAN = (0.0, 0.52)  # fraction of the picture lane's height: the segment's hits
TAKE_HIT_SPAN = (0.54, 0.72)  # the highlighted take's hits, just above
MEL_MAX_COLUMNS = 8192  # the track's mel image (10 minutes are 37,500 frames: 30 ms to colour on the GUI thread)


class SegmentRegion(pg.LinearRegionItem):
    """A fixed-length segment: drag moves it (snapped by the view), edges do not resize it."""

    def __init__(self, seg_id: str, start: float, duration: float) -> None:
        super().__init__(values=(start, start + duration), movable=True, swapMode="block")
        self.seg_id = seg_id
        self.duration = duration
        for line in self.lines:
            line.setMovable(False)
            line.setPen(pg.mkPen(theme.SEGMENT_EDGE, width=1.5))
        self.on_drag = None  # callable(seg_id, proposed_start, finished)
        self.on_click = None  # callable(seg_id, modifiers)
        self.on_menu = None  # callable(seg_id, None, x, screen_pos)
        self._grab_offset = 0.0
        self.setZValue(10)

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        ev.accept()
        if ev.isStart():
            self._grab_offset = ev.buttonDownPos().x() - self.getRegion()[0]
            self.moving = True
            if self.on_click is not None:
                self.on_click(self.seg_id, Qt.KeyboardModifier.NoModifier)
        if self.on_drag is not None:
            self.on_drag(self.seg_id, ev.pos().x() - self._grab_offset, ev.isFinish())
        if ev.isFinish():
            self.moving = False

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click is not None:
            ev.accept()
            self.on_click(self.seg_id, ev.modifiers())
        elif ev.button() == Qt.MouseButton.RightButton and self.on_menu is not None:
            ev.accept()
            self.on_menu(self.seg_id, None, float(ev.pos().x()), ev.screenPos())


class OutlinedLine(pg.InfiniteLine):
    """An InfiniteLine drawn on a dark outline, so that a thin line shows over any thumbnail."""

    def paint(self, p, *args) -> None:
        ends = getattr(self, "_endPoints", None)  # the span's ends in the line's coordinates (set with its bounds)
        if ends is not None:
            p.setPen(pg.mkPen(theme.HIT_OUTLINE, width=self.currentPen.widthF() + 2))
            p.drawLine(QPointF(ends[0], 0.0), QPointF(ends[1], 0.0))
        super().paint(p, *args)


class HitMarker(OutlinedLine):
    """One hit of a segment: a vertical line over the lower band with a handle on top, on a dark outline so that it
    shows over any thumbnail. A drag reports proposed positions (the view clamps them); a click selects; a right
    click asks for the hit menu. The current segment's hits are bright, other segments' dimmed."""

    def __init__(self, seg_id: str, time: float, x: float) -> None:
        super().__init__(pos=x, angle=90, movable=True, span=HIT_SPAN, pen=pg.mkPen(theme.HIT, width=2),
                         hoverPen=pg.mkPen(theme.HIT_SELECTED, width=3), markers=[("v", 1.0, 10)])
        self.seg_id = seg_id
        self.time = time  # s from the segment start
        self.on_drag = None  # callable(marker, proposed_x, finished)
        self.on_click = None  # callable(seg_id, time)
        self.on_menu = None  # callable(seg_id, time, x, screen_pos)
        self._grab = 0.0
        self.setZValue(30)

    def set_style(self, *, selected: bool, current: bool) -> None:
        colour = theme.HIT_SELECTED if selected else theme.HIT if current else theme.HIT_DIM
        self.setPen(pg.mkPen(colour, width=3 if selected else 2))
        self.setZValue(32 if selected else 31 if current else 30)

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        ev.accept()
        if ev.isStart():
            self.moving = True
            self._grab = float(self.value()) - self.mapToParent(ev.buttonDownPos()).x()
        if self.on_drag is not None:
            self.on_drag(self, self.mapToParent(ev.pos()).x() + self._grab, ev.isFinish())
        if ev.isFinish():
            self.moving = False

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click is not None:
            ev.accept()
            self.on_click(self.seg_id, self.time)
        elif ev.button() == Qt.MouseButton.RightButton and self.on_menu is not None:
            ev.accept()
            self.on_menu(self.seg_id, self.time, float(self.value()), ev.screenPos())


class MarkerFlag(pg.InfiniteLine):
    """A marker on the markers lane: its line, clickable (the playhead goes there)."""

    def __init__(self, marker_id: str, time: float) -> None:
        super().__init__(pos=time, angle=90, movable=False, pen=pg.mkPen(theme.MARKER, width=2),
                         hoverPen=pg.mkPen(theme.MARKER_TEXT, width=3))
        self.marker_id = marker_id
        self.on_click = None  # callable(marker_id)
        self.setZValue(40)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click is not None:
            ev.accept()
            self.on_click(self.marker_id)


class MarkerLabel(pg.TextItem):
    """A marker's name beside its flag; a click on it does what a click on the flag does."""

    def __init__(self, marker_id: str, name: str, time: float) -> None:
        super().__init__(name, color=theme.MARKER_TEXT, anchor=(0, 0.5), fill=theme.LABEL_FILL)
        self.marker_id = marker_id
        self.on_click = None
        self.setPos(time, 0.5)
        self.setZValue(41)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click is not None:
            ev.accept()
            self.on_click(self.marker_id)


class ClipItem(pg.LinearRegionItem):
    """A clip on the Foley lane (not draggable; a click selects it)."""

    def __init__(self, clip_id: str, start: float, end: float, selected: bool) -> None:
        super().__init__(values=(start, end), movable=False)
        self.clip_id = clip_id
        self.selected: bool | None = None
        self.set_selected(selected)
        self.on_click = None
        self.setZValue(-5)

    def set_selected(self, selected: bool) -> None:
        if selected == self.selected:
            return
        self.selected = selected
        self.setBrush(theme.CLIP_SELECTED_BRUSH if selected else theme.CLIP_BRUSH)
        for line in self.lines:
            line.setPen(pg.mkPen(theme.CLIP_EDGE_SELECTED if selected else theme.CLIP_EDGE, width=1))

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click is not None:
            ev.accept()
            self.on_click(self.clip_id)


class TimelineView(QWidget):
    """All lanes, the playhead, zoom and scroll."""

    seek_requested = Signal(float)
    segment_selected = Signal(str, bool)  # id, add to selection
    segment_move_requested = Signal(str, float)  # id, new start (snapped)
    clip_selected = Signal(str)
    mute_original_toggled = Signal(bool)
    hit_selected = Signal(str, float)  # segment id ("" = none), hit time (s from the segment start)
    hit_move_requested = Signal(str, float, float)  # segment id, old time, new time (clamped)
    hit_add_requested = Signal(str, float)  # segment id, time
    hit_delete_requested = Signal(str, float)
    hits_clear_requested = Signal(str)
    hits_redetect_requested = Signal(str)
    marker_clicked = Signal(str)  # marker id
    take_audition_requested = Signal(str, int, float)  # segment id, take index, time: a click on a take lane
    take_use_requested = Signal(str, int, float)  # segment id, take index, time: a double-click on a take lane

    def __init__(self, document: ProjectDocument, parent: QWidget | None = None, *,
                 jobs: JobRunner | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self._waves = WaveformJobs(jobs)  # long waveforms are reduced to envelopes in I/O jobs
        self._regions: dict[str, SegmentRegion] = {}
        self._labels: dict[str, pg.TextItem] = {}
        self._hit_items: dict[str, list[HitMarker]] = {}
        self._hit_keys: dict[str, tuple] = {}  # what each segment's markers were built from
        self._take_hit_items: list[OutlinedLine] = []
        self._can_detect = False
        self._thumb_items: list[pg.ImageItem] = []
        self._clip_items: list[pg.GraphicsObject] = []
        self._ghost: pg.PlotDataItem | None = None
        self._marker_items: list[tuple[Lane, pg.GraphicsObject]] = []
        self._mel_revision = -1
        self._syncing_scroll = False

        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(1)
        self.picture = Lane("Picture", 70, top_axis=True,
                            tooltip="Thumbnails and segments. Drag a segment to move it (it snaps to frames).")
        self.picture.subtitle.setText("segments snap to frames")
        self.marker_lane = Lane("Markers", 22, tooltip="Markers: Ctrl+M adds one at the playhead, Shift+Up / "
                                "Shift+Down go to the previous / next; click one to go there. The Markers tab lists "
                                "them.")
        self.marker_lane.subtitle.hide()
        self.marker_lane.header.layout().setContentsMargins(8, 2, 6, 2)
        self.original = Lane("Original audio", 52, tooltip="The video's own sound (for reference; not exported).")
        self.mute_button = QToolButton()
        self.mute_button.setText("Mute")
        self.mute_button.setCheckable(True)
        self.mute_button.setToolTip("Mute the original audio during playback (M)")
        self.mute_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.mute_button.toggled.connect(self.mute_original_toggled)
        self.original.buttons.addWidget(self.mute_button)
        self.original.buttons.addStretch(1)
        self.foley = Lane("Foley track", 84, tooltip="Accepted candidates, crossfaded where they overlap. "
                          "Click a clip to select it.")
        self.mel = Lane("Spectrogram", 96, tooltip="Mel spectrogram of the Foley track (125 Hz – 7.6 kHz).")
        self.mel.subtitle.setText("mel, 125 Hz – 7.6 kHz")
        self.lanes = [self.picture, self.marker_lane, self.original, self.foley, self.mel]
        self.take_lanes = TakeLanes(document, self.picture.plot, self._waves)
        self.take_lanes.audition_requested.connect(self.take_audition_requested)
        self.take_lanes.use_requested.connect(self.take_use_requested)
        for lane in self.lanes:
            col.addWidget(lane)
            if lane is self.foley:
                col.addWidget(self.take_lanes)
            if lane is not self.picture:
                lane.plot.setXLink(self.picture.plot)

        bottom = QHBoxLayout()
        bottom.setContentsMargins(HEADER_WIDTH, 0, 4, 0)
        self.scroll = QScrollBar(Qt.Orientation.Horizontal)
        self.scroll.setRange(0, 0)
        self.scroll.valueChanged.connect(self._on_scroll)
        bottom.addWidget(self.scroll, 1)
        col.addLayout(bottom)
        col.addStretch(1)

        # items
        self.picture.vb.setYRange(0, 1, padding=0)
        self.marker_lane.vb.setYRange(0, 1, padding=0)
        self.original.vb.setYRange(-1, 1, padding=0.05)
        self.foley.vb.setYRange(-1, 1, padding=0.05)
        self.orig_curve = self._wave_item(self.original, theme.ORIGINAL_WAVE)
        self.foley_curve = self._wave_item(self.foley, theme.FOLEY_WAVE)
        self.mel_image = pg.ImageItem(axisOrder="row-major")
        self.mel_image.setColorMap(pg.colormap.get("magma"))
        self.mel.plot.addItem(self.mel_image)
        self.mel.vb.setYRange(0, 128, padding=0)
        self.playheads = []
        for lane in self.lanes:
            line = pg.InfiniteLine(0.0, angle=90, movable=True, pen=pg.mkPen(theme.PLAYHEAD, width=2),
                                   hoverPen=pg.mkPen(theme.PLAYHEAD, width=3))
            line.setZValue(100)
            line.sigDragged.connect(self._on_playhead_dragged)
            lane.plot.addItem(line)
            self.playheads.append(line)
            lane.plot.scene().sigMouseClicked.connect(lambda ev, ln=lane: self._on_scene_click(ln, ev))
        self.empty_text = pg.TextItem("Open a video: File ▸ Open Video… (Ctrl+O), or drop a file here",
                                      color=theme.MUTED_TEXT, anchor=(0.5, 0.5))
        self.picture.plot.addItem(self.empty_text)
        self.picture.vb.sigXRangeChanged.connect(self._on_range_changed)

        document.project_replaced.connect(self.rebuild)
        document.segments_changed.connect(self.refresh_segments)
        document.segment_changed.connect(self.refresh_segments)
        document.current_segment_changed.connect(self.refresh_segments)
        document.selection_changed.connect(self.refresh_segments)
        document.clips_changed.connect(self.refresh_track)
        document.selected_clip_changed.connect(self._restyle_clips)
        document.original_audio_changed.connect(self.refresh_original)
        document.hits_changed.connect(self.refresh_segments)
        document.selected_hit_changed.connect(self._style_hits)
        document.markers_changed.connect(self.refresh_markers)
        document.current_take_changed.connect(self.refresh_take_hits)
        document.current_segment_changed.connect(self.refresh_take_hits)
        document.segment_changed.connect(self.refresh_take_hits)
        self.rebuild()

    # ---- building -------------------------------------------------------------------------------------------------
    @staticmethod
    def _wave_item(lane: Lane, color: str) -> pg.PlotDataItem:
        item = pg.PlotDataItem(pen=pg.mkPen(color, width=1))
        lane.plot.addItem(item)  # first: PlotItem.addItem imposes the plot's own downsampling and clipping modes
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        return item

    @property
    def duration(self) -> float:
        v = self.doc.video
        return v.duration if v is not None else 0.0

    def rebuild(self) -> None:
        dur = self.duration
        for lane in self.lanes:
            lane.vb.setLimits(xMin=0.0, xMax=max(dur, 1.0), minXRange=min(0.25, max(dur, 0.25)))
        self.take_lanes.set_x_limits(0.0, max(dur, 1.0))
        self.set_thumbnails([])
        self.empty_text.setVisible(self.doc.video is None)
        self.empty_text.setPos(0.5 * max(dur, 1.0), 0.5)
        self.picture.vb.setXRange(0.0, max(dur, 1.0), padding=0)
        self.refresh_original()
        self.refresh_segments()
        self.refresh_take_hits()
        self.refresh_track()
        self.refresh_markers()
        self.set_playhead(0.0)

    def set_thumbnails(self, thumbs: list[tuple[float, np.ndarray]]) -> None:
        for item in self._thumb_items:
            self.picture.plot.removeItem(item)
        self._thumb_items = []
        dur = self.duration
        if self._thumb_strip(thumbs, dur):
            return
        for i, (t, img) in enumerate(thumbs):
            t_next = thumbs[i + 1][0] if i + 1 < len(thumbs) else dur
            # image rows run top to bottom; the view's y runs up, so flip to keep the picture upright
            arr = img[::-1]
            item = pg.ImageItem(np.ascontiguousarray(arr), axisOrder="row-major")
            item.setRect(QRectF(t, 0.0, max(t_next - t, 1e-3), 1.0))
            item.setZValue(-10)
            item.setOpacity(0.85)
            self.picture.plot.addItem(item)
            self._thumb_items.append(item)

    def _thumb_strip(self, thumbs: list[tuple[float, np.ndarray]], dur: float) -> bool:
        """Evenly spaced thumbnails of one size (`read_thumbnails`' kind) as one image: one item to add and
        paint instead of 120 (70 ms on the GUI thread). False if they are not such."""
        if len(thumbs) < 2 or len({img.shape for _, img in thumbs}) != 1:
            return False
        times = np.array([t for t, _ in thumbs] + [dur])
        steps = np.diff(times)
        if steps.min() <= 0 or steps.max() - steps.min() > 1e-6 * max(dur, 1.0):
            return False
        strip = np.concatenate([img[::-1] for _, img in thumbs], axis=1)  # upright: the view's y runs up
        item = pg.ImageItem(np.ascontiguousarray(strip), axisOrder="row-major")
        item.setRect(QRectF(times[0], 0.0, dur - times[0], 1.0))
        item.setZValue(-10)
        item.setOpacity(0.85)
        self.picture.plot.addItem(item)
        self._thumb_items.append(item)
        return True

    def refresh_original(self) -> None:
        audio = self.doc.original_audio
        has = self.doc.video is not None and self.doc.video.has_audio
        self.original.setVisible(has)
        if audio is None:
            self._waves.request("original", None, self.doc.sample_rate, self.orig_curve.setData)
            self.original.subtitle.setText("reading…" if has else "")
            return
        self._waves.request("original", audio, self.doc.sample_rate, self.orig_curve.setData)
        self.original.subtitle.setText("muted" if self.mute_button.isChecked() else "")

    def set_original_muted(self, muted: bool) -> None:
        self.mute_button.blockSignals(True)
        self.mute_button.setChecked(muted)
        self.mute_button.blockSignals(False)
        self.original.subtitle.setText("muted" if muted else "")
        self.orig_curve.setOpacity(0.35 if muted else 1.0)

    def refresh_segments(self, *_args: object) -> None:
        segs = {s.id: s for s in self.doc.project.segments}
        for sid in list(self._regions):
            if sid not in segs:
                self.picture.plot.removeItem(self._regions.pop(sid))
                self.picture.plot.removeItem(self._labels.pop(sid))
                self._remove_hit_markers(sid)
        current = self.doc.current_segment_id
        selected = set(self.doc.selected_segment_ids())
        for sid, seg in segs.items():
            region = self._regions.get(sid)
            if region is None or abs(region.duration - seg.duration) > 1e-9:
                if region is not None:
                    self.picture.plot.removeItem(region)
                    self.picture.plot.removeItem(self._labels.pop(sid))
                region = SegmentRegion(sid, seg.start, seg.duration)
                region.on_drag = self._on_segment_drag
                region.on_click = self._on_segment_click
                region.on_menu = self._show_hit_menu
                self.picture.plot.addItem(region)
                self._regions[sid] = region
                label = pg.TextItem("", color=theme.SEGMENT_TEXT, anchor=(0, 0), fill=theme.LABEL_FILL)
                label.setZValue(20)
                self.picture.plot.addItem(label)
                self._labels[sid] = label
            if not region.moving:
                region.setRegion((seg.start, seg.end))
            is_current = sid == current
            is_selected = sid in selected
            region.setBrush(theme.SEGMENT_CURRENT_BRUSH if is_current else
                            theme.SEGMENT_SELECTED_BRUSH if is_selected else theme.SEGMENT_BRUSH)
            edge = pg.mkPen(theme.SEGMENT_EDGE if is_selected else theme.SEGMENT_EDGE_DIM,
                            width=2.5 if is_current else 1.2)
            for line in region.lines:
                line.setPen(edge)
            region.setZValue(12 if is_current else 10)
            region.setHoverBrush(theme.SEGMENT_HOVER_BRUSH)
            status = f"{len(seg.takes)} takes" if seg.takes else "no takes"
            if self.doc.project.clip_for_segment(sid) is not None:
                status += " · on track"
            if seg.hits_state == HITS_PENDING and self._can_detect:
                status += " · detecting hits…"
            elif seg.hits:
                status += f" · {len(seg.hits)} hit{'s' if len(seg.hits) != 1 else ''}"
            label = self._labels[sid]
            label.setText(f"{seg.label} · {status}")
            label.setPos(seg.start, 1.0)
            self._refresh_hit_markers(sid)
        self._style_hits()

    # ---- hits -----------------------------------------------------------------------------------------------------
    def set_hit_detection(self, available: bool) -> None:
        """Whether the model has a hit detector (labels say "detecting", the menu offers detecting again)."""
        if available != self._can_detect:
            self._can_detect = available
            self.refresh_segments()

    def _remove_hit_markers(self, seg_id: str) -> None:
        for item in self._hit_items.pop(seg_id, []):
            self.picture.plot.removeItem(item)
        self._hit_keys.pop(seg_id, None)

    def _refresh_hit_markers(self, seg_id: str) -> None:
        seg = self.doc.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        key = (tuple(seg.hits), seg.start, seg.duration)
        if self._hit_keys.get(seg_id) == key:
            for m in self._hit_items.get(seg_id, []):
                m.setVisible(True)  # after a segment drag that did not move it
            return
        self._remove_hit_markers(seg_id)
        markers = []
        for t in seg.hits:
            m = HitMarker(seg_id, t, seg.start + t)
            m.on_drag = self._on_hit_drag
            m.on_click = self.hit_selected.emit
            m.on_menu = self._show_hit_menu
            m.setToolTip(f"Hit of {seg.label} at {t:.3f} s: drag to move, Del deletes it when selected, right "
                         "click for more")
            self.picture.plot.addItem(m)
            markers.append(m)
        self._hit_items[seg_id] = markers
        self._hit_keys[seg_id] = key

    def _style_hits(self) -> None:
        sel, current = self.doc.selected_hit, self.doc.current_segment_id
        for sid, markers in self._hit_items.items():
            for m in markers:
                m.set_style(selected=sel == (sid, m.time), current=sid == current)

    def hit_markers(self, seg_id: str) -> list[HitMarker]:
        return list(self._hit_items.get(seg_id, []))

    def refresh_take_hits(self, *_args: object) -> None:
        """The hits the highlighted take of the current segment was made with, where it was made for."""
        for item in self._take_hit_items:
            self.picture.plot.removeItem(item)
        self._take_hit_items = []
        seg, take = self.doc.current_segment(), self.doc.current_take()
        if seg is None or take is None:
            return
        start = take.start_in(seg)
        for t in take.hits:
            line = OutlinedLine(pos=start + t, angle=90, movable=False, span=TAKE_HIT_SPAN,
                                pen=pg.mkPen(theme.TAKE_HIT, width=2))
            line.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            line.setZValue(25)
            self.picture.plot.addItem(line)
            self._take_hit_items.append(line)

    def take_hit_times(self) -> list[float]:
        """Picture times of the take hits shown."""
        return [float(item.value()) for item in self._take_hit_items]

    def _on_hit_drag(self, marker: HitMarker, proposed: float, finished: bool) -> None:
        seg = self.doc.segment(marker.seg_id)
        if seg is None:
            return
        t = clamp_hit(proposed - seg.start, seg.duration)
        marker.setValue(seg.start + t)  # live preview, inside the segment
        if finished:
            marker.moving = False
            if t != marker.time:
                self.hit_move_requested.emit(marker.seg_id, marker.time, t)
            else:
                marker.setValue(seg.start + marker.time)

    def hit_menu(self, seg_id: str, hit: float | None, x: float) -> QMenu:
        """The context menu of a hit (`hit`: its time) or of a segment (`hit` None: add one at picture time x)."""
        seg = self.doc.segment(seg_id)
        assert seg is not None, f"no segment {seg_id}"
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        if hit is not None:
            menu.addAction(f"Delete Hit at {hit:.3f} s", lambda: self.hit_delete_requested.emit(seg_id, hit))
        else:
            t = clamp_hit(x - seg.start, seg.duration)
            menu.addAction(f"Add Hit Here ({t:.3f} s into {seg.label})", lambda: self.hit_add_requested.emit(seg_id, t))
        menu.addSeparator()
        clear = menu.addAction(f"Clear Hits of {seg.label}", lambda: self.hits_clear_requested.emit(seg_id))
        clear.setEnabled(bool(seg.hits) or seg.hits_state != HITS_USER)
        again = menu.addAction(f"Detect Hits of {seg.label} Again", lambda: self.hits_redetect_requested.emit(seg_id))
        again.setEnabled(self._can_detect and seg.hits_state != HITS_PENDING)
        if not self._can_detect:
            again.setToolTip("The model has no hit detector")
        return menu

    def _show_hit_menu(self, seg_id: str, hit: float | None, x: float, screen_pos: QPointF) -> None:
        if self.doc.segment(seg_id) is None:
            return
        menu = self.hit_menu(seg_id, hit, x)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(QPoint(int(screen_pos.x()), int(screen_pos.y())))

    # ---- markers --------------------------------------------------------------------------------------------------
    def refresh_markers(self, *_args: object) -> None:
        """Every marker: a flag and its name on the markers lane, a dashed line through the other lanes."""
        for lane, item in self._marker_items:
            lane.plot.removeItem(item)
        self._marker_items = []
        through = pg.mkPen(theme.MARKER, width=1, style=Qt.PenStyle.DashLine)
        for m in self.doc.project.markers:
            flag, label = MarkerFlag(m.id, m.time), MarkerLabel(m.id, m.name, m.time)
            flag.on_click = label.on_click = self.marker_clicked.emit
            tip = f"{m.name} at {m.time:.3f} s: click to go there"
            flag.setToolTip(tip)
            label.setToolTip(tip)
            for item in (flag, label):
                self.marker_lane.plot.addItem(item)
                self._marker_items.append((self.marker_lane, item))
            for lane in self.lanes:
                if lane is self.marker_lane:
                    continue
                line = pg.InfiniteLine(pos=m.time, angle=90, movable=False, pen=through)
                line.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
                line.setZValue(50)
                lane.plot.addItem(line)
                self._marker_items.append((lane, line))

    def marker_labels(self) -> list[tuple[str, float]]:
        """(name, time) of every marker drawn on the markers lane."""
        return [(item.toPlainText(), float(item.pos().x())) for _lane, item in self._marker_items
                if isinstance(item, MarkerLabel)]

    def marker_lines(self, lane: Lane) -> list[float]:
        """Times of the marker lines drawn on `lane`."""
        return [float(item.value()) for ln, item in self._marker_items
                if ln is lane and isinstance(item, pg.InfiniteLine)]

    def _restyle_clips(self, *_args: object) -> None:
        """Another clip selected: restyle the clip items (rebuilding the lane, its waveform included, on every
        click cost a long track's whole envelope again)."""
        items = [i for i in self._clip_items if isinstance(i, ClipItem)]
        if [i.clip_id for i in items] != [c.id for c in self.doc.project.clips]:
            self.refresh_track()
            return
        for item in items:
            item.set_selected(item.clip_id == self.doc.selected_clip_id)

    def refresh_track(self, *_args: object) -> None:
        for item in self._clip_items:
            self.foley.plot.removeItem(item)
        self._clip_items = []
        doc = self.doc
        sr = doc.sample_rate
        self._waves.request("track", doc.track_audio() if doc.project.clips else None, sr, self.foley_curve.setData)
        selected = doc.selected_clip_id
        for clip in doc.project.clips:
            end = clip.start + len(doc.audio.get(clip.audio_id)) / sr
            item = ClipItem(clip.id, clip.start, end, clip.id == selected)
            item.on_click = self.clip_selected.emit
            self.foley.plot.addItem(item)
            self._clip_items.append(item)
            gain = f" {clip.gain_db:+.1f} dB" if abs(clip.gain_db) > 1e-9 else ""
            label = pg.TextItem(f"{clip.label}{gain}", color=theme.CLIP_TEXT, anchor=(0, 0), fill=theme.LABEL_FILL)
            label.setPos(clip.start, 1.05)
            label.setZValue(20)
            self.foley.plot.addItem(label)
            self._clip_items.append(label)
        for clip in doc.project.clips:  # the cuts of comped clips, with their crossfades
            length = len(doc.audio.get(clip.audio_id))
            cuts = [round(p.time * sr) for p in clip.parts]
            for a, b in comp_cut_spans([0, *cuts], length, round(clip.crossfade_s * sr)):
                c = clip.start + 0.5 * (a + b) / sr
                line = pg.InfiniteLine(c, angle=90, movable=False,
                                       pen=pg.mkPen(theme.COMP_CUT, width=1, style=Qt.PenStyle.DashLine))
                line.setToolTip(f"Cut between takes, {(b - a) / sr * 1000:.0f} ms equal-power crossfade "
                                "(Shift+S at the playhead removes it)")
                line.setZValue(15)
                self.foley.plot.addItem(line)
                self._clip_items.append(line)
        for a, b in crossfade_spans(doc.mix_clips()):
            xf = pg.LinearRegionItem(values=(a / sr, b / sr), movable=False, brush=theme.CROSSFADE_BRUSH,
                                     pen=pg.mkPen(None))
            xf.setToolTip(f"Equal-power crossfade, {(b - a) / sr:.2f} s")
            xf.setZValue(-4)
            self.foley.plot.addItem(xf)
            self._clip_items.append(xf)
        n = len(doc.project.clips)
        self.foley.subtitle.setText(f"{n} clip{'s' if n != 1 else ''}" if n else "empty — accept a candidate")
        if not doc.project.clips:
            self.set_mel(None, doc.clips_revision)

    def set_mel(self, mel: np.ndarray | None, revision: int, hop_seconds: float = 256 / 16000) -> None:
        """Show the track's mel (n_mels, frames), computed elsewhere for clips revision `revision`."""
        if revision != self.doc.clips_revision:
            return
        self._mel_revision = revision
        if mel is None or mel.size == 0:
            self.mel_image.clear()
            self.mel.subtitle.setText("mel, 125 Hz – 7.6 kHz")
            return
        frames = mel.shape[1]
        if frames > MEL_MAX_COLUMNS:  # a long track: at most MEL_MAX_COLUMNS columns, each its frames' maximum
            k = -(-frames // MEL_MAX_COLUMNS)
            full = frames // k * k
            cols = [mel[:, :full].reshape(mel.shape[0], -1, k).max(axis=2)]
            if full < frames:
                cols.append(mel[:, full:].max(axis=1, keepdims=True))
            mel = np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]
        self.mel_image.setImage(mel, autoLevels=False, levels=(0.0, 1.0))
        self.mel_image.setRect(QRectF(0.0, 0.0, frames * hop_seconds, mel.shape[0]))
        self.mel.vb.setYRange(0, mel.shape[0], padding=0)

    def show_ghost(self, audio: np.ndarray | None, start: float) -> None:
        """Overlay a candidate's waveform on the Foley lane where it would go."""
        if self._ghost is not None:
            self.foley.plot.removeItem(self._ghost)
            self._ghost = None
        if audio is None:
            return
        t = start + np.arange(len(audio), dtype=np.float64) / self.doc.sample_rate
        self._ghost = self._wave_item(self.foley, theme.GHOST_WAVE)  # added empty: data needs its view box
        self._ghost.setOpacity(0.7)
        self._ghost.setZValue(5)
        self._ghost.setData(t, audio)

    # ---- playhead, zoom, scroll ------------------------------------------------------------------------------
    def set_playhead(self, t: float) -> None:
        self.take_lanes.set_playhead(t)
        for line in self.playheads:
            if line.value() != t:
                line.blockSignals(True)
                line.setValue(t)
                line.blockSignals(False)

    def follow(self, t: float) -> None:
        """Keep the playhead in view while playing (page when it leaves the visible range)."""
        lo, hi = self.picture.vb.viewRange()[0]
        if not lo <= t <= hi:
            width = hi - lo
            self.picture.vb.setXRange(t - 0.05 * width, t + 0.95 * width, padding=0)

    def zoom(self, factor: float, center: float | None = None) -> None:
        lo, hi = self.picture.vb.viewRange()[0]
        c = center if center is not None else 0.5 * (lo + hi)
        c = min(max(c, lo), hi)
        new_w = max(0.25, min((hi - lo) / factor, max(self.duration, 1.0)))
        frac = (c - lo) / max(hi - lo, 1e-9)
        self.picture.vb.setXRange(c - frac * new_w, c + (1 - frac) * new_w, padding=0)

    def zoom_to_fit(self) -> None:
        self.picture.vb.setXRange(0.0, max(self.duration, 1.0), padding=0)

    def visible_range(self) -> tuple[float, float]:
        lo, hi = self.picture.vb.viewRange()[0]
        return float(lo), float(hi)

    def _on_range_changed(self, *_args: object) -> None:
        lo, hi = self.visible_range()
        dur = max(self.duration, 1e-9)
        self._syncing_scroll = True
        width = min(1.0, (hi - lo) / dur)
        self.scroll.setPageStep(max(1, int(width * SCROLL_STEPS)))
        self.scroll.setRange(0, max(0, SCROLL_STEPS - self.scroll.pageStep()))
        self.scroll.setValue(int(lo / dur * SCROLL_STEPS))
        self._syncing_scroll = False

    def _on_scroll(self, value: int) -> None:
        if self._syncing_scroll:
            return
        lo, hi = self.visible_range()
        start = value / SCROLL_STEPS * self.duration
        self.picture.vb.setXRange(start, start + (hi - lo), padding=0)

    # ---- interaction -----------------------------------------------------------------------------------------------
    def _on_playhead_dragged(self, line: pg.InfiniteLine) -> None:
        self.seek_requested.emit(max(0.0, min(float(line.value()), self.duration)))

    def _on_scene_click(self, lane: Lane, ev) -> None:
        if ev.isAccepted() or ev.button() != Qt.MouseButton.LeftButton or self.doc.video is None:
            return
        pos = ev.scenePos()
        if not lane.vb.sceneBoundingRect().contains(pos):
            return
        x = lane.vb.mapSceneToView(QPointF(pos)).x()
        if self.doc.selected_hit is not None:
            self.hit_selected.emit("", 0.0)
        self.seek_requested.emit(max(0.0, min(float(x), self.duration)))

    def _on_segment_click(self, seg_id: str, modifiers: Qt.KeyboardModifier) -> None:
        add = bool(modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))
        self.segment_selected.emit(seg_id, add)

    def _on_segment_drag(self, seg_id: str, proposed: float, finished: bool) -> None:
        seg = self.doc.segment(seg_id)
        v = self.doc.video
        if seg is None or v is None:
            return
        start = place_segment(proposed, seg.duration, v.duration, v.fps)
        region = self._regions[seg_id]
        region.setRegion((start, start + seg.duration))  # live preview, snapped
        self._labels[seg_id].setPos(start, 1.0)
        for m in self._hit_items.get(seg_id, []):  # hits keep their picture times; those left outside will go
            m.setVisible(start <= seg.start + m.time < start + seg.duration)
        if finished:
            region.moving = False
            if abs(start - seg.start) > 1e-9:
                self.segment_move_requested.emit(seg_id, start)
            else:
                self.refresh_segments()

    def pixels_per_second(self) -> float:
        lo, hi = self.visible_range()
        return self.picture.vb.width() / max(hi - lo, 1e-9)

