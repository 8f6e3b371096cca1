"""The inspector: the current segment's candidates (seeds, settings, level, waveform + mel of the highlighted one),
its hits and those the highlighted take was made with, audition / accept / regenerate, the gain of its clip on the
track; and a tab listing every clip on the track."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QItemSelectionModel, QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import DIFF_FOLEY, mel_spectrogram
from foley_app.document.document import ProjectDocument
from foley_app.document.project import HITS_DETECTED, HITS_PENDING, Segment
from foley_app.document.timeline import DEFAULT_COMP_CROSSFADE_S, MAX_COMP_CROSSFADE_S, format_time
from foley_app.jobs import Job, JobProgress, JobRunner
from foley_app.views import theme
from foley_app.views.qt_models import CandidatesModel, ClipsModel


def _button(text: str, tip: str, *, primary: bool = False) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keep Space/Enter/digits for the editor's shortcuts
    if primary:
        b.setObjectName("primary")
    return b


class CandidatePreview(pg.GraphicsLayoutWidget):
    """Waveform over mel spectrogram of one candidate (Audacity's multi-view). The mel is computed in an I/O job
    when there is a job runner (a 48 kHz take's mel is some tens of ms; with librosa, as the engine once had, its
    first use also compiled numba kernels for 3 s on the GUI thread: tests/stall.py), on the spot without one."""

    def __init__(self, jobs: JobRunner | None = None) -> None:
        super().__init__()
        self.jobs = jobs
        self._shown = 0  # which show_audio call the mel on its way belongs to
        if jobs is not None:  # the mel's first call (its filterbank, made once) now, while the app is starting,
            # rather than at the first candidate
            jobs.submit("warm-up", "Preparing the spectrogram", lambda report, cancel: mel_spectrogram(
                np.zeros(4096, np.float32), DIFF_FOLEY), on_error=lambda _j, _e: None)
        self.setMinimumHeight(150)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.ci.layout.setSpacing(1)
        self.wave_plot = self.addPlot(row=0, col=0)
        self.mel_plot = self.addPlot(row=1, col=0)
        self.ci.layout.setRowStretchFactor(0, 2)
        self.ci.layout.setRowStretchFactor(1, 3)
        for p in (self.wave_plot, self.mel_plot):
            p.hideAxis("left")
            p.hideAxis("bottom")
            p.setMenuEnabled(False)
            p.hideButtons()
            p.setMouseEnabled(x=False, y=False)
        self.wave_plot.setYRange(-1, 1, padding=0.05)
        self.wave = pg.PlotDataItem(pen=pg.mkPen(theme.GHOST_WAVE, width=1))
        self.wave_plot.addItem(self.wave)  # first: PlotItem.addItem imposes the plot's downsampling and clipping
        self.wave.setDownsampling(auto=True, method="peak")
        self.wave.setClipToView(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("magma"))
        self.mel_plot.addItem(self.image)
        self.mel_plot.setXLink(self.wave_plot)

    def show_audio(self, audio: np.ndarray | None, sample_rate: int) -> None:
        self._shown += 1
        if audio is None or audio.size == 0:
            self.wave.setData([], [])
            self.image.clear()
            return
        t = np.arange(len(audio)) / sample_rate
        self.wave.setData(t, audio)
        dur = len(audio) / sample_rate
        self.wave_plot.setXRange(0, dur, padding=0)
        if self.jobs is None:
            self._show_mel(mel_spectrogram(audio, DIFF_FOLEY), dur)
            return
        shown = self._shown

        def done(_job: Job, mel: np.ndarray) -> None:
            if shown == self._shown:
                self._show_mel(mel, dur)

        self.jobs.submit("preview-mel", "Candidate spectrogram", lambda report, cancel: mel_spectrogram(
            audio, DIFF_FOLEY), on_result=done, on_error=lambda _j, _e: None)

    def _show_mel(self, mel: np.ndarray, dur: float) -> None:
        self.image.setImage(mel, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(0, 0, dur, mel.shape[0]))
        self.mel_plot.setYRange(0, mel.shape[0], padding=0)


class CandidatesPanel(QWidget):
    """Inspector of the current segment and the track's clips; emits intents, never edits."""

    audition_requested = Signal(int)
    accept_requested = Signal(int)
    generate_requested = Signal()
    regenerate_requested = Signal()
    take_highlighted = Signal(int)
    gain_requested = Signal(str, float)
    crossfade_requested = Signal(str, float)  # clip id, seconds: the crossfade at a comp's cuts
    remove_clip_requested = Signal(str)
    clip_selected = Signal(str)

    def __init__(self, document: ProjectDocument, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.jobs = jobs
        self.setMinimumWidth(340)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs)

        # ---- segment tab
        page = QWidget()
        col = QVBoxLayout(page)
        col.setContentsMargins(10, 8, 10, 8)
        col.setSpacing(6)
        self.title = QLabel("No segment")
        self.title.setObjectName("panelTitle")
        col.addWidget(self.title)
        self.info = QLabel("")
        self.info.setObjectName("muted")
        self.info.setWordWrap(True)
        col.addWidget(self.info)
        self.hits_info = QLabel("")
        self.hits_info.setObjectName("muted")
        self.hits_info.setWordWrap(True)
        self.hits_info.setToolTip("Hits are the onsets of the segment's sounds (the cyan markers in the picture lane; "
                                  "the pink ones are the highlighted candidate's). H adds one at the playhead.")
        col.addWidget(self.hits_info)
        self.random_banner = QLabel("Test bundle with RANDOM weights: candidates are noise, not Foley.")
        self.random_banner.setObjectName("randomWeights")
        self.random_banner.setWordWrap(True)
        self.random_banner.hide()
        col.addWidget(self.random_banner)
        self.notes = QLabel("")
        self.notes.setObjectName("warning")
        self.notes.setWordWrap(True)
        self.notes.hide()
        col.addWidget(self.notes)
        prog_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("muted")
        prog_row.addWidget(self.progress, 1)
        prog_row.addWidget(self.progress_label)
        self.progress_box = QWidget()
        self.progress_box.setLayout(prog_row)
        prog_row.setContentsMargins(0, 0, 0, 0)
        self.progress_box.hide()
        col.addWidget(self.progress_box)

        self.model = CandidatesModel(document, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)
        self.table.setMinimumHeight(152)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.doubleClicked.connect(lambda idx: self.audition_requested.emit(idx.row()))
        self.table.selectionModel().currentRowChanged.connect(self._on_row_changed)
        self.model.modelReset.connect(self._after_reset)
        col.addWidget(self.table, 3)

        self.preview = CandidatePreview(jobs)
        self.preview.setToolTip("The highlighted candidate: waveform and mel spectrogram")
        col.addWidget(self.preview, 2)

        row = QHBoxLayout()
        self.generate_button = _button("Generate", "Generate candidates for the selected segments (Ctrl+G)",
                                       primary=True)
        self.generate_button.clicked.connect(self.generate_requested)
        self.regenerate_button = _button("New seeds", "Generate again with new seeds (Ctrl+Shift+G)")
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.audition_button = _button("▶ Audition", "Play the highlighted candidate with the picture from the "
                                       "segment start (keys 1–9 pick a candidate)")
        self.audition_button.clicked.connect(lambda: self.audition_requested.emit(self.highlighted()))
        self.accept_button = _button("Accept", "Put the highlighted candidate on the Foley track (Enter)")
        self.accept_button.clicked.connect(lambda: self.accept_requested.emit(self.highlighted()))
        for b in (self.generate_button, self.regenerate_button, self.audition_button, self.accept_button):
            row.addWidget(b)
        col.addLayout(row)

        self.clip_box = QGroupBox("On the Foley track")
        box = QVBoxLayout(self.clip_box)
        self.clip_label = QLabel("nothing accepted yet")
        self.clip_label.setWordWrap(True)
        box.addWidget(self.clip_label)
        cb = QHBoxLayout()
        box.addLayout(cb)
        cb.addWidget(QLabel("Gain"))
        self.gain = QDoubleSpinBox()
        self.gain.setRange(-60.0, 24.0)
        self.gain.setSingleStep(0.5)
        self.gain.setDecimals(1)
        self.gain.setSuffix(" dB")
        self.gain.setToolTip("Gain of this clip on the track (every change can be undone)")
        self.gain.setKeyboardTracking(False)
        self.gain.valueChanged.connect(self._on_gain_changed)
        cb.addWidget(self.gain)
        self.crossfade_label = QLabel("Crossfade")
        cb.addWidget(self.crossfade_label)
        self.crossfade = QDoubleSpinBox()
        self.crossfade.setRange(0.0, MAX_COMP_CROSSFADE_S * 1000.0)
        self.crossfade.setSingleStep(5.0)
        self.crossfade.setDecimals(0)
        self.crossfade.setSuffix(" ms")
        self.crossfade.setToolTip("Equal-power crossfade centred on each cut between takes of this clip (S splits "
                                  "the clip at the playhead; every change can be undone)")
        self.crossfade.setKeyboardTracking(False)
        self.crossfade.valueChanged.connect(self._on_crossfade_changed)
        cb.addWidget(self.crossfade)
        self.remove_clip_button = _button("Remove", "Take this clip off the Foley track")
        self.remove_clip_button.clicked.connect(self._remove_current_clip)
        cb.addStretch(1)
        cb.addWidget(self.remove_clip_button)
        col.addWidget(self.clip_box)
        self.tabs.addTab(page, "Segment")

        # ---- track tab
        tpage = QWidget()
        tcol = QVBoxLayout(tpage)
        tcol.setContentsMargins(10, 8, 10, 8)
        tcol.addWidget(QLabel("Clips on the Foley track (double-click a gain to edit it):"))
        self.clips_model = ClipsModel(document, lambda cid, g: self.gain_requested.emit(cid, g), self)
        self.clips_table = QTableView()
        self.clips_table.setModel(self.clips_model)
        self.clips_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.clips_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.clips_table.verticalHeader().hide()
        self.clips_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.clips_table.selectionModel().currentRowChanged.connect(self._on_clip_row)
        tcol.addWidget(self.clips_table, 1)
        trow = QHBoxLayout()
        self.remove_selected_clip = _button("Remove clip", "Take the selected clip off the track")
        self.remove_selected_clip.clicked.connect(self._remove_selected_clip)
        trow.addStretch(1)
        trow.addWidget(self.remove_selected_clip)
        tcol.addLayout(trow)
        self.tabs.addTab(tpage, "Track")

        document.project_replaced.connect(self.refresh)
        document.current_segment_changed.connect(self.refresh)
        document.segment_changed.connect(self._on_segment_changed)
        document.clips_changed.connect(self.refresh)
        document.current_take_changed.connect(self._on_current_take)
        document.hits_changed.connect(self._on_segment_changed)
        jobs.job_queued.connect(self._on_job)
        jobs.job_started.connect(self._on_job)
        jobs.job_progress.connect(self._on_job_progress)
        jobs.job_finished.connect(self._refresh_progress)
        self.random_weights = False
        self.has_hit_detector = False
        self.takes_hits: bool | None = None  # None: no model loaded yet
        self.refresh()

    # ---- state -------------------------------------------------------------------------------------------------
    def highlighted(self) -> int:
        return self.doc.current_take_index(self.doc.current_segment_id)

    def set_random_weights(self, random: bool) -> None:
        self.random_weights = random
        self.random_banner.setVisible(random)

    def set_hit_support(self, has_detector: bool, takes_hits: bool | None) -> None:
        """What the loaded model does with hits (`takes_hits` None: no model yet)."""
        self.has_hit_detector, self.takes_hits = has_detector, takes_hits
        self.refresh()

    def _hits_text(self, seg: Segment) -> str:
        n = len(seg.hits)
        if seg.hits_state == HITS_PENDING and self.has_hit_detector:
            text = "Hits: detecting…"
        elif n:
            whose = {HITS_DETECTED: "detected", HITS_PENDING: "to be detected again"}.get(seg.hits_state, "yours")
            text = f"Hits: {n} ({whose})"
        else:
            text = "Hits: none" + ("" if self.has_hit_detector else " (the model has no hit detector)")
        text += " · H adds one at the playhead, Del deletes the selected one"
        if self.takes_hits is False:
            text += " · this model does not follow hits"
        take = self.doc.current_take(seg.id)
        if take is not None:
            n = len(take.hits)
            text += f" · candidate {take.index + 1} was made with {n} hit{'s' if n != 1 else ''}"
        return text

    def set_auditioning(self, value: tuple[str, int] | None) -> None:
        self.model.set_auditioning(value)

    def refresh(self, *_args: object) -> None:
        seg = self.doc.current_segment()
        has_video = self.doc.video is not None
        self.generate_button.setEnabled(has_video and seg is not None)
        if seg is None:
            self.title.setText("No segment")
            self.info.setText("Add a segment at the playhead with I (start here) or O (end here), or use "
                              "Segment ▸ Fill Whole Video.")
            self.hits_info.setText("")
            self.notes.hide()
            for b in (self.regenerate_button, self.audition_button, self.accept_button):
                b.setEnabled(False)
            self.clip_box.setEnabled(False)
            self.preview.show_audio(None, self.doc.sample_rate)
            self._refresh_progress()
            return
        self.title.setText(f"Segment {seg.label}   {seg.start:.3f} – {seg.end:.3f} s")
        self.title.setToolTip(f"{format_time(seg.start, self.doc.video.fps if self.doc.video else None)} start "
                              f"(timecode), {seg.duration:.3f} s long")
        if seg.takes:
            g = seg.generation
            self.info.setText(
                f"{len(seg.takes)} candidates · seeds {seg.takes[0].seed}–{seg.takes[-1].seed} · {g.get('steps')} "
                f"steps · guidance {g.get('guidance')} · {g.get('bundle')} ({g.get('backend')})"
            )
        else:
            self.info.setText("No candidates yet: press Generate (Ctrl+G).")
        self.hits_info.setText(self._hits_text(seg))
        notes = list(seg.warnings)
        made_for = {t.start_in(seg) for t in seg.takes}
        if seg.takes and any(abs(m - seg.start) > 1e-6 for m in made_for):
            notes.append(f"These candidates were made for {min(made_for):.3f} s; the segment has moved since. "
                         "Accepting places them where they were made (in sync); generate again for the new place.")
        self.notes.setText("\n".join(notes))
        self.notes.setVisible(bool(notes))
        has_takes = bool(seg.takes)
        self.regenerate_button.setEnabled(has_video and has_takes)
        self.audition_button.setEnabled(has_takes)
        self.accept_button.setEnabled(has_takes)
        clip = self.doc.project.clip_for_segment(seg.id)
        self.clip_box.setEnabled(clip is not None)
        self.gain.blockSignals(True)
        self.gain.setValue(clip.gain_db if clip else 0.0)
        self.gain.blockSignals(False)
        self.crossfade.blockSignals(True)
        self.crossfade.setValue(round(clip.crossfade_s * 1000.0) if clip else DEFAULT_COMP_CROSSFADE_S * 1000.0)
        self.crossfade.blockSignals(False)
        comped = clip is not None and bool(clip.parts)
        self.crossfade.setEnabled(comped)
        self.crossfade_label.setEnabled(comped)
        seeds = f"seed {clip.seed}" if clip and not clip.parts else (
            f"{len(clip.parts) + 1} parts" if clip else "")
        self.clip_label.setText(f"{clip.label} ({seeds}) at {clip.start:.3f} s" if clip else
                                "nothing accepted yet")
        self._refresh_progress()

    def _after_reset(self) -> None:
        k = self.highlighted()
        if k >= 0:
            self.table.selectionModel().setCurrentIndex(
                self.model.index(k, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
            )
        self._show_preview()

    def _show_preview(self) -> None:
        take = self.doc.current_take()
        self.preview.show_audio(self.doc.audio.get(take.audio_id) if take else None, self.doc.sample_rate)

    def _on_row_changed(self, current, _previous) -> None:
        if current.isValid() and current.row() != self.highlighted():
            self.take_highlighted.emit(current.row())

    def _on_current_take(self, seg_id: str, index: int) -> None:
        if seg_id == self.doc.current_segment_id:
            if self.table.currentIndex().row() != index:
                self.table.selectionModel().setCurrentIndex(
                    self.model.index(index, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
                )
            self._show_preview()
            seg = self.doc.current_segment()
            if seg is not None:
                self.hits_info.setText(self._hits_text(seg))

    def _on_segment_changed(self, seg_id: str) -> None:
        if seg_id == self.doc.current_segment_id:
            self.refresh()

    def _on_gain_changed(self, value: float) -> None:
        clip = self.doc.project.clip_for_segment(self.doc.current_segment_id)
        if clip is not None and math.isfinite(value) and abs(value - clip.gain_db) > 1e-9:
            self.gain_requested.emit(clip.id, float(value))

    def _on_crossfade_changed(self, ms: float) -> None:
        clip = self.doc.project.clip_for_segment(self.doc.current_segment_id)
        if clip is not None and math.isfinite(ms) and abs(ms / 1000.0 - clip.crossfade_s) > 1e-9:
            self.crossfade_requested.emit(clip.id, float(ms) / 1000.0)

    def _remove_current_clip(self) -> None:
        clip = self.doc.project.clip_for_segment(self.doc.current_segment_id)
        if clip is not None:
            self.remove_clip_requested.emit(clip.id)

    def _on_clip_row(self, current, _previous) -> None:
        clip = self.clips_model.clip_at(current.row()) if current.isValid() else None
        if clip is not None:
            self.clip_selected.emit(clip.id)

    def _remove_selected_clip(self) -> None:
        clip = self.clips_model.clip_at(self.clips_table.currentIndex().row())
        if clip is not None:
            self.remove_clip_requested.emit(clip.id)

    # ---- generation progress of the current segment -----------------------------------------------------------
    def _current_job(self) -> Job | None:
        sid = self.doc.current_segment_id
        jobs = [j for j in self.jobs.jobs("generate") if j.segment_id == sid]
        return jobs[0] if jobs else None

    def _on_job(self, job: Job) -> None:
        if job.kind == "generate":
            self._refresh_progress()

    def _on_job_progress(self, job: Job, _p: JobProgress) -> None:
        if job.kind == "generate" and job.segment_id == self.doc.current_segment_id:
            self._refresh_progress()

    def _refresh_progress(self, *_args: object) -> None:
        job = self._current_job()
        if job is None:
            self.progress_box.hide()
            return
        self.progress_box.show()
        self.progress.setValue(int(1000 * job.progress.fraction))
        text = "queued" if job.state == "queued" else job.progress.message
        self.progress_label.setText(f"{text}  {int(100 * job.progress.fraction)} %" if job.state != "queued" else text)
