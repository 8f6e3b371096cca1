"""The length of the video made of a still image (PNG/JPEG): a spin box in seconds, one segment by default."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QVBoxLayout, QWidget

MIN_LENGTH_S = 0.5
MAX_LENGTH_S = 3600.0


class StillLengthDialog(QDialog):
    def __init__(self, image_name: str, default: float, folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open a still image")
        col = QVBoxLayout(self)
        text = QLabel(f"{image_name} is a still image. The editor makes a video of it (H.264, 25 fps, the image on "
                      "every frame) to generate Foley for.")
        text.setWordWrap(True)
        col.addWidget(text)
        form = QFormLayout()
        self.length = QDoubleSpinBox()
        self.length.setRange(MIN_LENGTH_S, MAX_LENGTH_S)
        self.length.setDecimals(3)
        self.length.setSingleStep(1.0)
        self.length.setSuffix(" s")
        self.length.setValue(default)
        self.length.setToolTip(f"One segment is {default:g} s")
        form.addRow("Length of the video:", self.length)
        col.addLayout(form)
        hint = QLabel(f"One segment is {default:g} s. The video is made in {folder}; the image is not changed, and "
                      "the project remembers it (a project whose video has gone makes it again).")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        col.addWidget(hint)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton("Make Video", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        self.resize(460, self.sizeHint().height())

    def value(self) -> float:
        return float(self.length.value())
