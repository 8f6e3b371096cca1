"""One lane of the timeline: a header (title, subtitle, buttons) beside a pyqtgraph plot on the shared time axis."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

HEADER_WIDTH = 118


class TimeAxis(pg.AxisItem):
    """Ticks as m:ss (m:ss.s when zoomed in)."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        out = []
        for v in values:
            if v < 0:
                out.append("")
                continue
            m, s = divmod(v, 60.0)
            out.append(f"{int(m)}:{s:04.1f}" if spacing < 1.0 else f"{int(m)}:{round(s):02d}")
        return out


class Lane(QWidget):
    """A header (title, extra buttons) beside a plot."""

    def __init__(self, title: str, height: int, *, top_axis: bool = False, tooltip: str = "") -> None:
        super().__init__()
        self.setToolTip(tooltip)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.header = QWidget()
        self.header.setObjectName("laneHeader")
        self.header.setFixedWidth(HEADER_WIDTH)
        hl = QVBoxLayout(self.header)
        hl.setContentsMargins(8, 4, 6, 4)
        hl.setSpacing(2)
        self.title = QLabel(title)
        self.title.setObjectName("laneTitle")
        hl.addWidget(self.title)
        self.subtitle = QLabel("")
        self.subtitle.setObjectName("laneSubtitle")
        self.subtitle.setWordWrap(True)
        hl.addWidget(self.subtitle)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(2)
        hl.addLayout(self.buttons)
        hl.addStretch(1)
        row.addWidget(self.header)
        axes = {"top": TimeAxis("top")} if top_axis else {}
        self.plot = pg.PlotWidget(axisItems=axes)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        pi = self.plot.getPlotItem()
        pi.hideAxis("left")
        pi.hideAxis("bottom")
        if top_axis:
            pi.showAxis("top")
            pi.getAxis("top").setHeight(22)
        pi.layout.setContentsMargins(0, 0, 4, 0)
        self.vb: pg.ViewBox = pi.getViewBox()
        self.vb.setMouseEnabled(x=True, y=False)
        self.vb.setDefaultPadding(0.0)
        row.addWidget(self.plot, 1)
        self.setFixedHeight(height + (22 if top_axis else 0))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
