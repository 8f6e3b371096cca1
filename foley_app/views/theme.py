"""Look of the editor: a dark Fusion palette (as media tools use), the style sheet, pyqtgraph colours."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from foley_app import resources

BACKGROUND = "#1d1f23"
PANEL = "#25282d"
TEXT = "#d7dae0"
MUTED_TEXT = "#8a9099"
ACCENT = "#e0a43a"

PLAYHEAD = "#ff5252"
ORIGINAL_WAVE = "#7f9cc4"
FOLEY_WAVE = "#6fd08c"
GHOST_WAVE = "#e0a43a"
SEGMENT_EDGE = "#e0a43a"
SEGMENT_EDGE_DIM = "#8a6a2e"
SEGMENT_TEXT = "#f3d9a6"
CLIP_TEXT = "#cfeed8"
CLIP_EDGE = "#3f7a52"
CLIP_EDGE_SELECTED = "#a8f0bf"
HIT = "#4fd3e8"  # the current segment's hits
HIT_DIM = "#3a8796"  # other segments' hits
HIT_SELECTED = "#ffffff"
HIT_OUTLINE = "#101214"
TAKE_HIT = "#ff6fd1"  # the hits the highlighted take was made with
MARKER = "#b88cff"  # markers: a line through every lane, a flag with the name on the markers lane
MARKER_TEXT = "#eadcff"

SEGMENT_BRUSH = pg.mkBrush(224, 164, 58, 40)
SEGMENT_SELECTED_BRUSH = pg.mkBrush(224, 164, 58, 70)
SEGMENT_CURRENT_BRUSH = pg.mkBrush(224, 164, 58, 95)
SEGMENT_HOVER_BRUSH = pg.mkBrush(224, 164, 58, 120)
CLIP_BRUSH = pg.mkBrush(70, 150, 95, 45)
CLIP_SELECTED_BRUSH = pg.mkBrush(90, 190, 120, 80)
TAKE_WAVE = "#8fb8a0"  # a candidate on its take lane
COMP_CUT = "#f0f0ff"  # a cut between two parts of a comped clip
COMP_BRUSH = pg.mkBrush(110, 200, 140, 55)  # where a take lane's candidate plays in the comp
CROSSFADE_BRUSH = QBrush(QColor(230, 230, 255, 70), Qt.BrushStyle.BDiagPattern)
LABEL_FILL = pg.mkBrush(20, 22, 26, 190)


def icon(name: str) -> QIcon:
    """An icon from resources/app/<name>.svg (light glyphs drawn for the dark theme)."""
    return QIcon(str(resources.path("app", f"{name}.svg")))


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(antialias=False, background=BACKGROUND, foreground=MUTED_TEXT, imageAxisOrder="row-major")


def apply(app: QApplication) -> None:
    """Fusion style, dark palette, the style sheet from resources/app."""
    configure_pyqtgraph()
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: PANEL,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BACKGROUND,
        QPalette.ColorRole.AlternateBase: "#2b2e34",
        QPalette.ColorRole.ToolTipBase: "#31353b",
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: MUTED_TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: "#30343a",
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#3d6fb6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#79a8ff",
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7078"))
    app.setPalette(pal)
    qss = resources.path("app", "foley.qss")
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
