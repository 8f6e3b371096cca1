"""List models over the document: the current segment's candidates, the Foley track's clips, the markers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from foley_app.document.document import ProjectDocument
from foley_app.document.timeline import format_time

Index = QModelIndex | QPersistentModelIndex


class CandidatesModel(QAbstractTableModel):
    """Rows = takes of the current segment: key, seed, level, state (auditioning / on the track)."""

    HEADERS = ("Key", "Seed", "Level", "State")

    def __init__(self, document: ProjectDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.auditioning: tuple[str, int] | None = None
        for sig in (document.project_replaced, document.clips_changed):
            sig.connect(self.reload)
        document.current_segment_changed.connect(self.reload)
        document.segment_changed.connect(self._segment_changed)

    def _segment_changed(self, seg_id: str) -> None:
        if seg_id == self.doc.current_segment_id:
            self.reload()

    def reload(self, *_args: object) -> None:
        self.beginResetModel()
        self.endResetModel()

    def set_auditioning(self, value: tuple[str, int] | None) -> None:
        self.auditioning = value
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 3), self.index(self.rowCount() - 1, 3))

    def _takes(self) -> list:
        seg = self.doc.current_segment()
        return seg.takes if seg is not None else []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._takes())

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        takes = self._takes()
        if not 0 <= index.row() < len(takes):
            return None
        take = takes[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(index.row() + 1)
            if col == 1:
                return str(take.seed)
            if col == 2:
                return "silent" if not math.isfinite(take.level_db) else f"{take.level_db:.1f} dBFS"
            if col == 3:
                states = []
                seg_id = self.doc.current_segment_id
                if self.auditioning == (seg_id, index.row()):
                    states.append("▶ playing")
                clip = self.doc.project.clip_for_segment(seg_id)
                if clip is not None and take.audio_id in {clip.audio_id, *(p.audio_id for p in clip.parts)}:
                    states.append("✓ on track" if not clip.parts else "✓ in the comp")
                return "  ".join(states)
        if role == Qt.ItemDataRole.ToolTipRole:
            s = take.settings
            return (f"Candidate {index.row() + 1}: seed {take.seed}, {s.get('steps')} steps, guidance "
                    f"{s.get('guidance')}, made for {s.get('start', 0):.3f} s with {s.get('bundle')} "
                    f"({s.get('backend')}), {len(take.hits)} hit{'s' if len(take.hits) != 1 else ''}"
                    f"{f' ({take.hits_source})' if take.hits_source else ''}. Press {index.row() + 1} to audition it.")
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _TableModel(QAbstractTableModel):
    """A table over a list of the project's items: `_items()` gives the rows, HEADERS the columns, EDITABLE the
    column (if any) a user may edit."""

    HEADERS: tuple[str, ...] = ()
    EDITABLE: int | None = None

    def _items(self) -> list:
        raise NotImplementedError

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items())

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == self.EDITABLE:
            f |= Qt.ItemFlag.ItemIsEditable
        return f


class ClipsModel(_TableModel):
    """Rows = clips on the Foley track. The gain column is editable; an edit becomes a command (`on_gain`)."""

    HEADERS = ("Clip", "Start", "Seed", "Gain (dB)")
    EDITABLE = 3

    def __init__(self, document: ProjectDocument, on_gain: Callable[[str, float], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.on_gain = on_gain
        document.project_replaced.connect(self.reload)
        document.clips_changed.connect(self.reload)

    def reload(self) -> None:
        self.beginResetModel()
        self.endResetModel()

    def clip_at(self, row: int) -> Any:
        clips = self.doc.project.clips
        return clips[row] if 0 <= row < len(clips) else None

    def _items(self) -> list:
        return self.doc.project.clips

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        clip = self.clip_at(index.row()) if index.isValid() else None
        if clip is None:
            return None
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == 0:
                return clip.label
            if col == 1:
                return f"{clip.start:.3f} s"
            if col == 2:
                return str(clip.seed)
            if col == 3:
                return round(clip.gain_db, 2) if role == Qt.ItemDataRole.EditRole else f"{clip.gain_db:+.1f}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        clip = self.clip_at(index.row()) if index.isValid() else None
        if clip is None or index.column() != 3 or role != Qt.ItemDataRole.EditRole:
            return False
        try:
            gain = float(value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(gain) or not -60.0 <= gain <= 24.0:
            return False
        self.on_gain(clip.id, gain)  # a command; the document's signal refreshes the model
        return True


class MarkersModel(_TableModel):
    """Rows = the project's markers in time order: timecode, name. The name is editable; an edit becomes a command
    (`on_rename(marker_id, name) -> accepted`)."""

    HEADERS = ("Timecode", "Name")
    EDITABLE = 1

    def __init__(self, document: ProjectDocument, on_rename: Callable[[str, str], bool],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.on_rename = on_rename
        self._ids: list[str] = []
        document.project_replaced.connect(self.reload)
        document.markers_changed.connect(self._on_markers_changed)

    def reload(self) -> None:
        self.beginResetModel()
        self._ids = [m.id for m in self.doc.project.markers]
        self.endResetModel()

    def _on_markers_changed(self) -> None:
        """A rename changes a row in place (an open name editor and the selection stay); anything else resets."""
        if [m.id for m in self.doc.project.markers] == self._ids and self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, len(self.HEADERS) - 1))
        else:
            self.reload()

    def marker_at(self, row: int) -> Any:
        markers = self.doc.project.markers
        return markers[row] if 0 <= row < len(markers) else None

    def row_of(self, marker_id: str) -> int:
        return next((i for i, m in enumerate(self.doc.project.markers) if m.id == marker_id), -1)

    def _items(self) -> list:
        return self.doc.project.markers

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        marker = self.marker_at(index.row()) if index.isValid() else None
        if marker is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if index.column() == 0:
                return format_time(marker.time, self.doc.video.fps if self.doc.video else None)
            return marker.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{marker.name} at {marker.time:.3f} s. Double-click or Enter: the playhead goes there; F2 or a "
                    "click on the selected name renames it; Del deletes it.")
        if role == Qt.ItemDataRole.UserRole:
            return marker.id
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        marker = self.marker_at(index.row()) if index.isValid() else None
        if marker is None or index.column() != 1 or role != Qt.ItemDataRole.EditRole:
            return False
        return self.on_rename(marker.id, str(value))  # a command; the document's signal refreshes the model
