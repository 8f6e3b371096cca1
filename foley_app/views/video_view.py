"""The picture: the frame at the playhead, letterboxed, with the time and frame number over it."""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from foley_app.document.timeline import format_time


class VideoView(QWidget):
    """Shows a QImage scaled to fit (aspect kept) and an overlay line of text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.time = 0.0
        self.fps = 0.0
        self.badge = ""  # e.g. "Auditioning S1 #2"
        self.message = "No video open\n\nFile ▸ Open Video… (Ctrl+O), a recent file, or drop a video here"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(720, 405)

    def set_frame(self, image: QImage | None, t: float) -> None:
        self.image = image
        self.time = t
        self.update()

    def set_time(self, t: float) -> None:
        self.time = t
        self.update()

    def set_badge(self, text: str) -> None:
        self.badge = text
        self.update()

    def clear(self, message: str | None = None) -> None:
        self.image = None
        if message is not None:
            self.message = message
        self.update()

    def image_rect(self) -> QRect:
        if self.image is None:
            return QRect()
        size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect((self.width() - size.width()) // 2, (self.height() - size.height()) // 2, size.width(),
                     size.height())

    def paintEvent(self, _ev: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0c0d0f"))
        if self.image is None:
            p.setPen(QColor("#8a9099"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(QRectF(self.image_rect()), self.image)
        font = QFont(self.font())
        font.setFamily("DejaVu Sans Mono")
        font.setPointSize(10)
        p.setFont(font)
        text = format_time(self.time, self.fps or None)
        if self.fps:
            text += f"   frame {int(self.time * self.fps + 1e-6)}"
        box = QRect(8, self.height() - 28, p.fontMetrics().horizontalAdvance(text) + 16, 22)
        p.fillRect(box, QColor(0, 0, 0, 160))
        p.setPen(QColor("#f0f2f5"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        if self.badge:
            w = p.fontMetrics().horizontalAdvance(self.badge) + 16
            bbox = QRect(self.width() - w - 8, 8, w, 22)
            p.fillRect(bbox, QColor(224, 164, 58, 220))
            p.setPen(QColor("#1d1f23"))
            p.drawText(bbox, Qt.AlignmentFlag.AlignCenter, self.badge)
