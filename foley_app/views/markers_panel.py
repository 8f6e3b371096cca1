"""The markers list: name and timecode of every marker, in time order. Emits intents, never edits.

Double-click or Enter on a row asks for the playhead to go there; F2 (or a click on the selected name) renames in
place; Delete or Backspace asks to delete the selected markers. While the list has the keyboard focus it claims
those keys from the window's shortcuts (Enter would accept a candidate, Delete would delete a segment), through
the ShortcutOverride event; every other key (Space, J/K/L, the arrows' frame steps, Ctrl+M ...) stays the window's.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from foley_app.document.document import ProjectDocument
from foley_app.views.qt_models import MarkersModel

_CLAIMED_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_F2)


class MarkerTable(QTableView):
    """The table: claims Enter, Delete, Backspace and F2 from the window's shortcuts while it has the focus."""

    enter_pressed = Signal()
    delete_pressed = Signal()

    def event(self, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.ShortcutOverride and isinstance(ev, QKeyEvent) and ev.key() in _CLAIMED_KEYS \
                and ev.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier):
            ev.accept()  # the key press comes to this view (or its name editor) instead of a window shortcut
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: QKeyEvent) -> None:
        if self.state() != QAbstractItemView.State.EditingState:
            if ev.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.enter_pressed.emit()
                return
            if ev.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
                self.delete_pressed.emit()
                return
        super().keyPressEvent(ev)


class MarkersPanel(QWidget):
    add_requested = Signal()  # a marker at the playhead
    jump_requested = Signal(str)  # marker id
    rename_requested = Signal(str, str)  # marker id, name
    delete_requested = Signal(list)  # marker ids

    def __init__(self, document: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        col = QVBoxLayout(self)
        col.setContentsMargins(10, 8, 10, 8)
        hint = QLabel("Ctrl+M adds a marker at the playhead · double-click or Enter goes there · F2 renames · Del "
                      "deletes · Shift+Up / Shift+Down: the previous / next marker. Markers go into the exported "
                      "timeline.")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        col.addWidget(hint)
        self.model = MarkersModel(document, self._rename, self)
        self.table = MarkerTable()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.SelectedClicked)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_menu)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.doubleClicked.connect(lambda idx: self._jump(idx.row()))
        self.table.enter_pressed.connect(lambda: self._jump(self.table.currentIndex().row()))
        self.table.delete_pressed.connect(self._delete_selected)
        col.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add at Playhead")
        self.add_button.setToolTip("A marker on the frame at the playhead (Ctrl+M)")
        self.add_button.clicked.connect(self.add_requested)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected markers (Del while the list has the focus)")
        self.delete_button.clicked.connect(self._delete_selected)
        for b in (self.add_button, self.delete_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row.addStretch(1)
        row.addWidget(self.add_button)
        row.addWidget(self.delete_button)
        col.addLayout(row)
        self._selected_before: list[str] = []
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        self.model.modelReset.connect(self._restore_selection)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._update_buttons()

    # ---- state ------------------------------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [m.id for m in (self.model.marker_at(r) for r in rows) if m is not None]

    def select_marker(self, marker_id: str) -> None:
        row = self.model.row_of(marker_id)
        if row >= 0:
            self.table.selectionModel().setCurrentIndex(
                self.model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(self.model.index(row, 0))

    def _remember_selection(self) -> None:
        self._selected_before = self.selected_ids()

    def _restore_selection(self) -> None:
        for k, mid in enumerate(self._selected_before):
            row = self.model.row_of(mid)
            if row < 0:
                continue
            sel = QItemSelectionModel.SelectionFlag
            flags = sel.Rows | (sel.ClearAndSelect if k == 0 else sel.Select)
            self.table.selectionModel().setCurrentIndex(self.model.index(row, 0), flags)
        self._update_buttons()

    def _update_buttons(self, *_args: object) -> None:
        self.delete_button.setEnabled(bool(self.selected_ids()))
        self.add_button.setEnabled(self.doc.video is not None)

    # ---- intents ----------------------------------------------------------------------------------------------
    def _rename(self, marker_id: str, name: str) -> bool:
        self.rename_requested.emit(marker_id, name)
        marker = self.doc.project.marker(marker_id)
        return marker is not None and marker.name == " ".join(name.split())

    def _jump(self, row: int) -> None:
        marker = self.model.marker_at(row)
        if marker is not None:
            self.jump_requested.emit(marker.id)

    def _delete_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.delete_requested.emit(ids)

    def marker_menu(self, row: int) -> QMenu:
        menu = QMenu(self)
        marker = self.model.marker_at(row)
        if marker is not None:
            menu.addAction(f"Go to {marker.name}", lambda: self.jump_requested.emit(marker.id))
            menu.addAction("Rename", lambda: self.table.edit(self.model.index(row, 1)))
            menu.addSeparator()
            menu.addAction("Delete", self._delete_selected)
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if index.isValid():
            menu = self.marker_menu(index.row())
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            menu.popup(self.table.viewport().mapToGlobal(pos))
