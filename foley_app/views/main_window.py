"""The main window: layout, menus and shortcuts, status bar. Thin: behaviour lives in `Editor`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QToolButton,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from foley_app.context import AppContext, EngineState
from foley_app.document.timeline import format_time
from foley_app.editor import Editor
from foley_app.errors import explain
from foley_app.frames import FrameSource
from foley_app.jobs import Job, JobProgress
from foley_app.resources import demo_videos
from foley_app.views import theme
from foley_app.views.candidates_panel import CandidatesPanel
from foley_app.views.dialogs.preferences_dialog import PreferencesDialog
from foley_app.views.dialogs.prompter import PROJECT_FILTER, VIDEO_FILTER, Prompter
from foley_app.views.markers_panel import MarkersPanel
from foley_app.views.timeline_view import TimelineView
from foley_app.views.video_view import VideoView

log = logging.getLogger(__name__)

APP_NAME = "Foley Editor"

# action ids
A_OPEN_VIDEO, A_OPEN_PROJECT, A_SAVE, A_SAVE_AS, A_EXPORT, A_QUIT = (
    "open_video", "open_project", "save", "save_as", "export", "quit")
A_UNDO, A_REDO, A_PREFERENCES = "undo", "redo", "preferences"
A_PLAY, A_J, A_K, A_L = "play_pause", "shuttle_back", "pause", "shuttle_forward"
A_PREV_FRAME, A_NEXT_FRAME, A_BACK_1S, A_FWD_1S, A_HOME, A_END = (
    "prev_frame", "next_frame", "back_1s", "forward_1s", "go_start", "go_end")
A_NEW_SEGMENT, A_MARK_IN, A_MARK_OUT = "new_segment", "mark_in", "mark_out"
A_NUDGE_L, A_NUDGE_R, A_NUDGE_L_1S, A_NUDGE_R_1S = "nudge_left", "nudge_right", "nudge_left_1s", "nudge_right_1s"
A_PREV_SEGMENT, A_NEXT_SEGMENT, A_DELETE_SEGMENT, A_FILL = "prev_segment", "next_segment", "delete_segment", "fill"
A_GENERATE, A_REGENERATE, A_CANCEL = "generate", "regenerate", "cancel_generation"
A_ACCEPT, A_STOP_AUDITION, A_REMOVE_CLIP = "accept", "stop_audition", "remove_clip"
A_SPLIT_CLIP, A_JOIN_CUT = "split_clip", "join_cut"
A_ADD_HIT, A_DELETE_HIT, A_CLEAR_HITS, A_REDETECT_HITS = "add_hit", "delete_hit", "clear_hits", "redetect_hits"
A_ADD_MARKER, A_PREV_MARKER, A_NEXT_MARKER, A_MARKERS = "add_marker", "prev_marker", "next_marker", "show_markers"
A_ZOOM_IN, A_ZOOM_OUT, A_ZOOM_FIT, A_MUTE_ORIGINAL, A_HISTORY = "zoom_in", "zoom_out", "zoom_fit", "mute", "history"
A_SHORTCUTS, A_LOG_FOLDER, A_ABOUT = "shortcuts", "log_folder", "about"


class JobIndicator(QWidget):
    """Status-bar view of background work: what runs, how far, how many wait, and a Cancel button."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window_ = window
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(160)
        self.bar.setTextVisible(False)
        self.cancel = QToolButton()
        self.cancel.setText("Cancel")
        self.cancel.setToolTip("Cancel generation and export jobs (Ctrl+.)")
        self.cancel.clicked.connect(window.cancel_jobs)
        row.addWidget(self.label)
        row.addWidget(self.bar)
        row.addWidget(self.cancel)
        jobs = window.ctx.jobs
        for sig in (jobs.job_queued, jobs.job_started, jobs.job_finished):
            sig.connect(self.refresh)
        jobs.job_progress.connect(self._on_progress)
        self.refresh()

    def _visible_jobs(self) -> list[Job]:
        return [j for j in self.window_.ctx.jobs.jobs() if j.kind in ("generate", "export", "load")]

    def _on_progress(self, job: Job, _p: JobProgress) -> None:
        if job.kind in ("generate", "export", "load"):
            self.refresh()

    def refresh(self, *_args: object) -> None:
        jobs = self._visible_jobs()
        if not jobs:
            self.hide()
            return
        self.show()
        running = next((j for j in jobs if j.state == "running"), jobs[0])
        waiting = len(jobs) - 1
        text = f"{running.title}: {running.progress.message}"
        if waiting:
            text += f"  (+{waiting} queued)"
        self.label.setText(text)
        self.bar.setValue(int(1000 * running.progress.fraction))
        self.cancel.setVisible(running.kind != "load")


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, editor: Editor, frames: FrameSource, prompter: Prompter) -> None:
        """The views over `editor` (built with `frames` and `prompter` in the composition root, `foley_app.app.
        build_editor`); a `Prompter` without a parent window gets this one."""
        super().__init__()
        self.ctx = ctx
        self.doc = ctx.document
        self.prompter = prompter
        if isinstance(prompter, Prompter) and prompter.parent is None:
            prompter.parent = self
        self.frames = frames
        self.editor = editor
        frames.setParent(self)
        editor.setParent(self)
        self.actions_: dict[str, QAction] = {}
        self._engine_error_shown = False
        self.setAcceptDrops(True)
        self.setWindowTitle(APP_NAME)
        self.resize(1440, 900)
        self._build_views()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._connect()
        geo, state = ctx.settings.window_state()
        if geo is not None:
            self.restoreGeometry(geo)
        if state is not None:
            self.restoreState(state)
        self._update_title()
        self._update_enabled()

    # ---- construction ---------------------------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.video_view = VideoView()
        self.panel = CandidatesPanel(self.doc, self.ctx.jobs)
        self.timeline = TimelineView(self.doc, jobs=self.ctx.jobs)
        self.markers_panel = MarkersPanel(self.doc)
        self.panel.tabs.addTab(self.markers_panel, "Markers")
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.video_view)
        top.addWidget(self.panel)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 1)
        top.setSizes([980, 440])
        self.transport = QToolBar("Transport")
        self.transport.setIconSize(QSize(18, 18))
        self.transport.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bottom = QWidget()
        bcol = QVBoxLayout(bottom)
        bcol.setContentsMargins(0, 0, 0, 0)
        bcol.setSpacing(0)
        bcol.addWidget(self.transport)
        bcol.addWidget(self.timeline)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setCollapsible(1, False)
        self.setCentralWidget(split)
        self.undo_view = QUndoView(self.doc.undo_stack)
        self.undo_view.setWindowTitle("Undo History")
        self.undo_view.setEmptyLabel("<opened>")
        self.undo_view.setWindowFlag(Qt.WindowType.Tool)

    def _action(self, key: str, text: str, slot: Callable[[], object], shortcuts: list[str] | str = (),
                tip: str = "", icon: QStyle.StandardPixmap | str | None = None, checkable: bool = False) -> QAction:
        act = QAction(text, self)
        seqs = [shortcuts] if isinstance(shortcuts, str) else list(shortcuts)
        act.setShortcuts([QKeySequence(s) for s in seqs])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        keys = " / ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in seqs)
        act.setToolTip(f"{tip or text.replace('…', '').replace('&', '')}" + (f"  ({keys})" if keys else ""))
        act.setStatusTip(act.toolTip())
        if isinstance(icon, str):
            act.setIcon(theme.icon(icon))
        elif icon is not None:
            act.setIcon(self.style().standardIcon(icon))
        act.setCheckable(checkable)
        if checkable:
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)  # shortcuts work without the menu bar (and offscreen)
        self.actions_[key] = act
        return act

    def _build_actions(self) -> None:
        pb, ed, SP = self.ctx.playback, self.editor, QStyle.StandardPixmap
        a = self._action
        a(A_OPEN_VIDEO, "&Open Video…", self.open_video_dialog, "Ctrl+O", icon=SP.SP_DialogOpenButton,
          tip="Open a video, or a still image (PNG/JPEG) as a video of it")
        a(A_OPEN_PROJECT, "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        a(A_SAVE, "&Save Project", ed.save, "Ctrl+S", icon=SP.SP_DialogSaveButton)
        a(A_SAVE_AS, "Save Project &As…", ed.save_as, "Ctrl+Shift+S")
        a(A_EXPORT, "&Export…", ed.export, "Ctrl+E", tip="Export the video with the Foley track, or a WAV")
        a(A_QUIT, "&Quit", self.close, "Ctrl+Q")
        undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        undo.setShortcuts([QKeySequence("Ctrl+Z")])
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for key, act in ((A_UNDO, undo), (A_REDO, redo)):
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(act)
            self.actions_[key] = act
        # bound methods (not lambdas): the connections end with the window, while the document lives on
        self.doc.undo_stack.undoTextChanged.connect(self._name_undo_keys)
        self.doc.undo_stack.redoTextChanged.connect(self._name_redo_keys)
        self._name_undo_keys("")
        self._name_redo_keys("")
        a(A_PREFERENCES, "&Preferences…", self.show_preferences, "Ctrl+,")

        a(A_PLAY, "Play / Pause", pb.toggle, "Space", icon="play")
        a(A_J, "Play Backward", lambda: pb.shuttle(-1), "J", tip="Play backward; press again for faster",
          icon="shuttle-back")
        a(A_K, "Pause", pb.pause, "K", icon="pause")
        a(A_L, "Play Forward", lambda: pb.shuttle(1), "L", tip="Play forward; press again for faster",
          icon="shuttle-forward")
        a(A_PREV_FRAME, "Previous Frame", lambda: pb.step_frames(-1), "Left")
        a(A_NEXT_FRAME, "Next Frame", lambda: pb.step_frames(1), "Right")
        a(A_BACK_1S, "Back 1 Second", lambda: pb.seek(pb.current_time() - 1.0), "Shift+Left")
        a(A_FWD_1S, "Forward 1 Second", lambda: pb.seek(pb.current_time() + 1.0), "Shift+Right")
        a(A_HOME, "Go to Start", lambda: pb.seek(0.0), "Home", icon="skip-start")
        a(A_END, "Go to End", lambda: pb.seek(pb.duration), "End", icon="skip-end")

        a(A_NEW_SEGMENT, "&New Segment at Playhead", lambda: ed.add_segment(pb.current_time()), "N",
          tip="Add an 8.2 s segment starting at the playhead")
        a(A_MARK_IN, "Segment Starts &Here", lambda: ed.mark_in(pb.current_time()), "I",
          tip="Move the current segment to start at the playhead (or add one)")
        a(A_MARK_OUT, "Segment &Ends Here", lambda: ed.mark_out(pb.current_time()), "O",
          tip="Move the current segment to end at the playhead (or add one)")
        a(A_NUDGE_L, "Nudge Segment Left", lambda: ed.nudge_selected(-1), "Alt+Left", tip="Move the selected "
          "segments one frame earlier")
        a(A_NUDGE_R, "Nudge Segment Right", lambda: ed.nudge_selected(1), "Alt+Right", tip="Move the selected "
          "segments one frame later")
        fps = lambda: round(self.doc.video.fps) if self.doc.video else 25  # noqa: E731
        a(A_NUDGE_L_1S, "Nudge Segment Left 1 s", lambda: ed.nudge_selected(-fps()), "Alt+Shift+Left")
        a(A_NUDGE_R_1S, "Nudge Segment Right 1 s", lambda: ed.nudge_selected(fps()), "Alt+Shift+Right")
        a(A_PREV_SEGMENT, "Previous Segment", lambda: ed.select_next_segment(-1), "[")
        a(A_NEXT_SEGMENT, "Next Segment", lambda: ed.select_next_segment(1), "]")
        a(A_DELETE_SEGMENT, "&Delete Segment", ed.delete_selection, ["Delete", "Backspace"],
          tip="Delete the selected hit; with no hit selected, the selected segments and their candidates (clips "
          "on the track stay)")
        a(A_FILL, "&Fill Whole Video", ed.fill_whole_video, "Ctrl+Shift+F",
          tip="Generate overlapping segments across the whole video and splice them with crossfades")

        a(A_ADD_HIT, "Add &Hit at Playhead", lambda: ed.add_hit_at(pb.current_time()), "H",
          tip="Add a hit (a sound's onset) at the playhead, in the segment under it")
        a(A_DELETE_HIT, "&Delete Selected Hit", lambda: ed.delete_hit(), tip="Delete the selected hit marker (Del)")
        a(A_CLEAR_HITS, "&Clear Hits of Segment", lambda: ed.clear_hits(),
          tip="Remove every hit of the selected segments (the detector leaves them empty)")
        a(A_REDETECT_HITS, "Detect Hits &Again", lambda: ed.redetect_hits(),
          tip="Replace the hits of the selected segments with the model's hit detector's")

        a(A_ADD_MARKER, "Add &Marker at Playhead", self.add_marker, "Ctrl+M",
          tip="A named marker on the frame at the playhead (rename it in the Markers list)")
        a(A_PREV_MARKER, "&Previous Marker", lambda: ed.jump_to_marker(-1), ["Shift+Up", "Ctrl+Shift+M"],
          tip="Move the playhead to the previous marker")
        a(A_NEXT_MARKER, "&Next Marker", lambda: ed.jump_to_marker(1), ["Shift+Down", "Shift+M"],
          tip="Move the playhead to the next marker")
        a(A_MARKERS, "Show Markers &List", self.show_markers_list, tip="The Markers tab: rename, go to, delete")

        a(A_GENERATE, "&Generate Foley", lambda: ed.generate(), "Ctrl+G",
          tip="Generate candidates for the selected segments")
        a(A_REGENERATE, "Generate with &New Seeds", lambda: ed.generate(new_seeds=True), "Ctrl+Shift+G")
        a(A_CANCEL, "&Cancel Generation", self.cancel_jobs, "Ctrl+.", icon="stop")
        for k in range(1, 10):
            a(f"audition_{k}", f"Audition Candidate {k}", lambda k=k: ed.audition(k - 1), str(k))
        a(A_ACCEPT, "&Accept Candidate", lambda: ed.accept(), ["Return", "Enter"],
          tip="Put the highlighted candidate on the Foley track")
        a(A_STOP_AUDITION, "Stop Audition", pb.stop_audition, "Esc", tip="Back to the Foley track")
        a(A_REMOVE_CLIP, "&Remove Clip from Track", lambda: ed.remove_clip(), "Shift+Delete")
        a(A_SPLIT_CLIP, "&Split Clip at Playhead", lambda: ed.split_at(pb.current_time()), "S",
          tip="Cut the clip under the playhead in two; pick another take for a part on its take lane")
        a(A_JOIN_CUT, "Remove &Cut Nearest Playhead", lambda: ed.join_at(pb.current_time()), "Shift+S",
          tip="Join the two parts of a comped clip at the cut nearest the playhead")
        for k in range(1, 10):
            a(f"use_take_{k}", f"Use Candidate {k} at Playhead", lambda k=k: ed.use_take_at_playhead(k - 1),
              f"Alt+{k}", tip=f"Candidate {k} plays in the part of the clip under the playhead (comping)")

        a(A_ZOOM_IN, "Zoom &In", lambda: self.timeline.zoom(1.5, pb.current_time()), ["=", "+"])
        a(A_ZOOM_OUT, "Zoom &Out", lambda: self.timeline.zoom(1 / 1.5, pb.current_time()), "-")
        a(A_ZOOM_FIT, "Zoom to &Fit", self.timeline.zoom_to_fit, "\\")
        mute = a(A_MUTE_ORIGINAL, "&Mute Original Audio", self._set_mute_original, "M", checkable=True)
        mute.setChecked(self.ctx.settings.mute_original)
        a(A_HISTORY, "Undo &History", self.undo_view.show)
        a(A_SHORTCUTS, "&Keyboard Shortcuts", self.show_shortcuts, ["F1", "?"])
        a(A_LOG_FOLDER, "Show &Log Folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.ctx.log_dir))))
        a(A_ABOUT, "&About", self.show_about)

        t = self.transport
        t.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)  # names and keys are in the tooltips
        for key in (A_HOME, A_J, A_PLAY, A_L, A_END):
            t.addAction(self.actions_[key])
        self.timecode = QLabel("0:00:00 / 0:00:00")
        self.timecode.setObjectName("timecode")
        self.timecode.setToolTip("Playhead / duration (minutes:seconds:frames)")
        t.addWidget(self.timecode)
        t.addSeparator()
        for key, label in ((A_NEW_SEGMENT, "New Segment"), (A_GENERATE, "Generate"), (A_FILL, "Fill Video")):
            act = self.actions_[key]
            act.setIconText(label)
            btn = QToolButton()
            btn.setDefaultAction(act)
            btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            t.addWidget(btn)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        t.addWidget(spacer)
        for key, label in ((A_ZOOM_OUT, "−"), (A_ZOOM_FIT, "Fit"), (A_ZOOM_IN, "+")):
            self.actions_[key].setIconText(label)
            btn = QToolButton()
            btn.setDefaultAction(self.actions_[key])
            btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            t.addWidget(btn)
        for act in t.actions():
            w = t.widgetForAction(act)
            if w is not None:
                w.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def _name_undo_keys(self, text: str) -> None:
        act = self.actions_[A_UNDO]
        if shiboken6.isValid(act):  # the stack outlives the window's actions while the window is destroyed
            act.setToolTip(f"Undo {text}  (Ctrl+Z)" if text else "Undo  (Ctrl+Z)")

    def _name_redo_keys(self, text: str) -> None:
        act = self.actions_[A_REDO]
        if shiboken6.isValid(act):
            act.setToolTip(f"Redo {text}  (Ctrl+Shift+Z)" if text else "Redo  (Ctrl+Shift+Z)")

    def _build_menus(self) -> None:
        mb = self.menuBar()
        ac = self.actions_

        def menu(title: str, keys: list[str | None]) -> object:
            m = mb.addMenu(title)
            for key in keys:
                if key is None:
                    m.addSeparator()
                else:
                    m.addAction(ac[key])
            return m

        fm = mb.addMenu("&File")
        fm.addAction(ac[A_OPEN_VIDEO])
        fm.addAction(ac[A_OPEN_PROJECT])
        self.recent_menu = fm.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.demo_menu = fm.addMenu("Open &Demo Video")
        self.demo_menu.aboutToShow.connect(self._fill_demo_menu)
        fm.addSeparator()
        for key in (A_SAVE, A_SAVE_AS, None, A_EXPORT, None, A_QUIT):
            fm.addSeparator() if key is None else fm.addAction(ac[key])
        menu("&Edit", [A_UNDO, A_REDO, None, A_PREFERENCES])
        menu("&Playback", [A_PLAY, A_J, A_K, A_L, None, A_PREV_FRAME, A_NEXT_FRAME, A_BACK_1S, A_FWD_1S, None,
                           A_HOME, A_END])
        menu("&Segment", [A_NEW_SEGMENT, A_MARK_IN, A_MARK_OUT, None, A_NUDGE_L, A_NUDGE_R, A_NUDGE_L_1S,
                          A_NUDGE_R_1S, None, A_PREV_SEGMENT, A_NEXT_SEGMENT, None, A_DELETE_SEGMENT, None, A_FILL])
        menu("&Hits", [A_ADD_HIT, A_DELETE_HIT, None, A_CLEAR_HITS, A_REDETECT_HITS])
        menu("Mar&kers", [A_ADD_MARKER, None, A_PREV_MARKER, A_NEXT_MARKER, None, A_MARKERS])
        cm = menu("&Generate", [A_GENERATE, A_REGENERATE, A_CANCEL, None])
        am = cm.addMenu("&Audition")  # type: ignore[attr-defined]
        for k in range(1, 10):
            am.addAction(ac[f"audition_{k}"])
        for key in (A_STOP_AUDITION, None, A_ACCEPT, A_REMOVE_CLIP):
            cm.addSeparator() if key is None else cm.addAction(ac[key])  # type: ignore[attr-defined]
        comp = menu("C&omp", [A_SPLIT_CLIP, A_JOIN_CUT, None])
        for k in range(1, 10):
            comp.addAction(ac[f"use_take_{k}"])  # type: ignore[attr-defined]
        menu("&View", [A_ZOOM_IN, A_ZOOM_OUT, A_ZOOM_FIT, None, A_MUTE_ORIGINAL, None, A_HISTORY])
        menu("&Help", [A_SHORTCUTS, A_LOG_FOLDER, None, A_ABOUT])

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.jobs_indicator = JobIndicator(self)
        sb.addPermanentWidget(self.jobs_indicator)
        self.audio_label = QLabel(self.ctx.playback.audio_status)
        self.audio_label.setToolTip("Audio output (choose it in Edit ▸ Preferences ▸ Audio)")
        sb.addPermanentWidget(self.audio_label)
        self.model_label = QLabel(self.ctx.engine.status_text())
        self.model_label.setToolTip("The model bundle in use (Edit ▸ Preferences ▸ Model)")
        sb.addPermanentWidget(self.model_label)
        self._on_engine_state(self.ctx.engine.state)

    def _connect(self) -> None:
        ed, pb, doc, tl = self.editor, self.ctx.playback, self.doc, self.timeline
        ed.status_message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        ed.thumbnails_ready.connect(tl.set_thumbnails)
        ed.track_mel_ready.connect(lambda mel, rev: tl.set_mel(mel, rev))
        ed.video_missing.connect(lambda p: self.video_view.clear(f"Video not found:\n{p}\n\nFile ▸ Open Video… to "
                                                                   "choose it again"))
        tl.seek_requested.connect(pb.seek)
        tl.segment_selected.connect(ed.select_segment)
        tl.segment_move_requested.connect(ed.move_segment)
        tl.clip_selected.connect(doc.set_selected_clip)
        tl.mute_original_toggled.connect(lambda m: self.actions_[A_MUTE_ORIGINAL].setChecked(m))
        tl.hit_selected.connect(ed.select_hit)
        tl.hit_move_requested.connect(ed.move_hit)
        tl.hit_add_requested.connect(ed.add_hit)
        tl.hit_delete_requested.connect(ed.delete_hit)
        tl.hits_clear_requested.connect(lambda sid: ed.clear_hits([sid]))
        tl.hits_redetect_requested.connect(lambda sid: ed.redetect_hits([sid]))
        tl.marker_clicked.connect(self._go_to_marker)
        tl.take_audition_requested.connect(ed.audition_lane)
        tl.take_use_requested.connect(ed.use_take_at)
        mp = self.markers_panel
        mp.add_requested.connect(self.add_marker)
        mp.jump_requested.connect(self._go_to_marker)
        mp.rename_requested.connect(ed.rename_marker)
        mp.delete_requested.connect(ed.delete_markers)
        doc.markers_changed.connect(self._update_markers_tab)
        doc.project_replaced.connect(self._update_markers_tab)
        p = self.panel
        p.audition_requested.connect(ed.audition)
        p.accept_requested.connect(ed.accept)
        p.generate_requested.connect(lambda: ed.generate())
        p.regenerate_requested.connect(lambda: ed.generate(new_seeds=True))
        p.take_highlighted.connect(ed.highlight_take)
        p.gain_requested.connect(ed.set_clip_gain)
        p.crossfade_requested.connect(ed.set_crossfade)
        p.remove_clip_requested.connect(ed.remove_clip)
        p.clip_selected.connect(doc.set_selected_clip)
        pb.position_changed.connect(self._on_position)
        pb.state_changed.connect(self._on_playback_state)
        pb.audio_failed.connect(self._on_audio_failed)
        pb.audio_status_changed.connect(self.audio_label.setText)
        self.frames.frame_ready.connect(self._on_frame_ready)
        self.frames.failed.connect(lambda exc: self.statusBar().showMessage(f"Could not read frames: {exc}", 8000))
        doc.modified_changed.connect(self._update_title)
        doc.path_changed.connect(self._update_title)
        doc.project_replaced.connect(self._on_project_replaced)
        doc.current_segment_changed.connect(self._update_ghost)
        doc.current_take_changed.connect(self._update_ghost)
        doc.segment_changed.connect(self._update_ghost)
        doc.segments_changed.connect(self._update_enabled)
        doc.current_segment_changed.connect(self._update_enabled)
        doc.clips_changed.connect(self._update_enabled)
        doc.selected_hit_changed.connect(self._update_enabled)
        self.ctx.engine.state_changed.connect(self._on_engine_state)
        self.ctx.autosaver.failed.connect(self._on_autosave_failed)
        self._set_mute_original(self.ctx.settings.mute_original)

    # ---- reactions --------------------------------------------------------------------------------------------------
    def _update_title(self, *_args: object) -> None:
        self.setWindowTitle(f"{self.doc.display_name()}[*] — {APP_NAME}")
        self.setWindowModified(self.doc.is_modified())

    def _update_enabled(self, *_args: object) -> None:
        has_video = self.doc.video is not None
        has_seg = self.doc.current_segment() is not None
        for key in (A_NEW_SEGMENT, A_MARK_IN, A_MARK_OUT, A_FILL, A_PLAY, A_J, A_K, A_L):
            self.actions_[key].setEnabled(has_video)
        for key in (A_GENERATE, A_NUDGE_L, A_NUDGE_R, A_NUDGE_L_1S, A_NUDGE_R_1S, A_DELETE_SEGMENT, A_CLEAR_HITS):
            self.actions_[key].setEnabled(has_video and has_seg)
        self.actions_[A_ADD_HIT].setEnabled(has_video and bool(self.doc.project.segments))
        self.actions_[A_ADD_MARKER].setEnabled(has_video)
        self.actions_[A_REDETECT_HITS].setEnabled(has_video and has_seg and self.ctx.engine.has_hit_detector)
        hit = self.doc.selected_hit is not None
        self.actions_[A_DELETE_HIT].setEnabled(hit)
        self.actions_[A_DELETE_SEGMENT].setText("&Delete Hit" if hit else "&Delete Segment")
        self.actions_[A_EXPORT].setEnabled(bool(self.doc.project.clips))
        self.actions_[A_SPLIT_CLIP].setEnabled(bool(self.doc.project.clips))
        self.actions_[A_JOIN_CUT].setEnabled(any(c.parts for c in self.doc.project.clips))

    def _on_project_replaced(self) -> None:
        v = self.doc.video
        self.video_view.fps = v.fps if v else 0.0
        self.video_view.clear("Reading the video…" if v else None)
        self.timeline.rebuild()
        self._update_title()
        self._update_enabled()
        self._on_position(0.0)

    def _on_position(self, t: float) -> None:
        pb = self.ctx.playback
        self.timeline.set_playhead(t)
        if pb.playing:
            self.timeline.follow(t)
        v = self.doc.video
        fps = v.fps if v else None
        self.timecode.setText(f"{format_time(t, fps)} / {format_time(pb.duration, fps)}")
        if v is None:
            return
        img = self.frames.request(t, read_ahead=pb.playing)
        if img is not None:
            self.video_view.set_frame(img, t)
        else:
            self.video_view.set_time(t)

    def _on_frame_ready(self, t: float, img: object) -> None:
        now = self.ctx.playback.current_time()
        if self.frames.frame_index(t) == self.frames.frame_index(now) or not self.ctx.playback.playing:
            self.video_view.set_frame(self.frames.cached(now) or img, now)  # type: ignore[arg-type]

    def _on_playback_state(self) -> None:
        pb = self.ctx.playback
        self.actions_[A_PLAY].setIcon(theme.icon("pause" if pb.playing else "play"))
        if pb.audition is not None:
            seg = self.doc.segment(pb.audition[0])
            label = f"{seg.label} #{pb.audition[1] + 1}" if seg else ""
            self.video_view.set_badge(f"Auditioning {label}  ·  1–9 switch  ·  Enter accepts  ·  Esc back to track")
        else:
            self.video_view.set_badge("")
        self.panel.set_auditioning(pb.audition if pb.playing else None)

    def _update_ghost(self, *_args: object) -> None:
        take = self.doc.current_take()
        seg = self.doc.current_segment()
        if take is None or seg is None:
            self.timeline.show_ghost(None, 0.0)
            return
        self.timeline.show_ghost(self.doc.audio.get(take.audio_id), take.start_in(seg))

    def _on_autosave_failed(self, exc: BaseException) -> None:
        self.prompter.error(explain(exc, "autosaving"))

    def _on_audio_failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage("No audio output: playing the picture without sound.", 10000)
        self.prompter.error(explain(exc, "playing audio"))

    def _on_engine_state(self, state: str) -> None:
        eng = self.ctx.engine
        self.model_label.setText(eng.status_text())
        self.model_label.setObjectName("randomWeights" if eng.random_weights else "")
        self.model_label.style().unpolish(self.model_label)
        self.model_label.style().polish(self.model_label)
        self.panel.set_random_weights(eng.random_weights)
        self.panel.set_hit_support(eng.has_hit_detector, eng.takes_hits if eng.ready else None)
        self.timeline.set_hit_detection(eng.has_hit_detector)
        self._update_enabled()
        if state == EngineState.FAILED and not self._engine_error_shown and eng.error is not None:
            self._engine_error_shown = True
            self.prompter.error(explain(eng.error, "loading the model"))

    def _set_mute_original(self, muted: bool) -> None:
        self.ctx.settings.mute_original = muted
        self.ctx.playback.set_mute_original(muted)
        self.timeline.set_original_muted(muted)

    def _update_markers_tab(self, *_args: object) -> None:
        n = len(self.doc.project.markers)
        self.panel.tabs.setTabText(self.panel.tabs.indexOf(self.markers_panel), f"Markers ({n})" if n else "Markers")

    # ---- commands of the window -------------------------------------------------------------------------------------
    def add_marker(self) -> None:
        """Ctrl+M: a marker at the playhead, selected in the list."""
        marker_id = self.editor.add_marker_at(self.ctx.playback.current_time())
        if marker_id is not None:
            self.markers_panel.select_marker(marker_id)

    def _go_to_marker(self, marker_id: str) -> None:
        self.editor.go_to_marker(marker_id)
        self.markers_panel.select_marker(marker_id)

    def show_markers_list(self) -> None:
        self.panel.tabs.setCurrentWidget(self.markers_panel)
        self.markers_panel.table.setFocus()

    def cancel_jobs(self) -> None:
        self.editor.cancel_generation()
        self.ctx.jobs.cancel_all("export")

    def open_video_dialog(self) -> None:
        path = self.prompter.open_file("Open video", self.ctx.settings.last_dir, VIDEO_FILTER)
        if path:
            self.editor.open_path(path)

    def open_project_dialog(self) -> None:
        path = self.prompter.open_file("Open project", self.ctx.settings.last_dir, PROJECT_FILTER)
        if path:
            self.editor.open_path(path)

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        files = self.ctx.settings.recent_files
        for f in files:
            act = m.addAction(Path(f).name)
            act.setToolTip(f)
            act.setStatusTip(f)
            act.triggered.connect(lambda _c=False, f=f: self.editor.open_path(f))
        if not files:
            m.addAction("No recent files").setEnabled(False)
        else:
            m.addSeparator()
            m.addAction("Clear Recent Files", self.ctx.settings.clear_recent_files)

    def _fill_demo_menu(self) -> None:
        m = self.demo_menu
        m.clear()
        for d in demo_videos():
            act = m.addAction(d.title)
            act.setToolTip(d.description)
            act.setStatusTip(d.description)
            act.triggered.connect(lambda _c=False, p=str(d.path): self.editor.open_path(p))
        if m.isEmpty():
            m.addAction("No demo videos installed").setEnabled(False)

    def show_preferences(self) -> None:
        dlg = PreferencesDialog(self.ctx.settings, self.ctx.playback.output, self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            s = self.ctx.settings
            self.ctx.playback.output.device = s.audio_device
            self.ctx.autosaver.set_interval(s.autosave_seconds)
            if dlg.bundle_changed:
                self._engine_error_shown = False
                self.ctx.engine.load(s.bundle or None, s.backend)

    def show_shortcuts(self) -> None:
        dlg = QDialog(self)
        dlg.setWindowTitle("Keyboard Shortcuts")
        dlg.resize(520, 640)
        col = QVBoxLayout(dlg)
        rows = [(act.text().replace("&", ""), act.shortcuts()) for act in self.actions_.values() if act.shortcuts()]
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Command", "Keys"])
        table.verticalHeader().hide()
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for i, (name, seqs) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(name))
            table.setItem(i, 1, QTableWidgetItem(", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                                                           for s in seqs)))
        col.addWidget(table)
        dlg.exec()

    def show_about(self) -> None:
        eng = self.ctx.engine.describe()
        self.prompter.info(
            f"About {APP_NAME}",
            "Foley Editor: generate sound effects in sync with a video with MDSGen (ICLR 2025), audition "
            "candidates, splice them with crossfades, export.\n\n"
            f"Model: {eng.name if eng else 'none'} ({eng.backend if eng else '-'})\nLog folder: {self.ctx.log_dir}\n"
            f"Settings: {self.ctx.settings.file_name}",
        )

    # ---- window events ---------------------------------------------------------------------------------------------
    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev: QDropEvent) -> None:
        files = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if files:
            ev.acceptProposedAction()
            self.editor.open_path(files[0])

    def closeEvent(self, ev: QCloseEvent) -> None:
        if not self.editor.confirm_discard():
            ev.ignore()
            return
        self.ctx.settings.set_window_state(self.saveGeometry(), self.saveState())
        self.undo_view.close()
        self.ctx.shutdown()
        ev.accept()

    @staticmethod
    def app_icon() -> QIcon:
        return theme.icon("foley")
