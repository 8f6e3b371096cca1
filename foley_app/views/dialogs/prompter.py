"""`Prompter`: every message, question and file chooser the editor shows, in one place.

The editor talks to the user only through this object, so the wording stays consistent (what happened, then what
to do) and tests can answer in place of a person by passing a scripted prompter.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine import STILL_SUFFIXES
from foley_app.errors import UserMessage
from foley_app.export import ExportDefaults, ExportRequest
from foley_app.views.dialogs.export_dialog import ExportDialog
from foley_app.views.dialogs.still_dialog import StillLengthDialog

_VIDEOS = "*.mp4 *.m4v *.mov *.mkv *.webm *.avi *.ogv *.mpg *.mpeg *.ts *.mts *.wmv *.flv"
_IMAGES = " ".join(f"*{suffix}" for suffix in STILL_SUFFIXES)  # opened as a video of the image
VIDEO_FILTER = (f"Videos and still images ({_VIDEOS} {_IMAGES});;Videos ({_VIDEOS});;Still images ({_IMAGES});;"
                "Foley projects (*.foleyproj);;All files (*)")
PROJECT_FILTER = "Foley projects (*.foleyproj);;All files (*)"


class Prompter:
    """Dialogs over a parent window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent  # the window the dialogs sit over (MainWindow sets itself when this is None)
        self._open_warnings: list[QMessageBox] = []

    def error(self, msg: UserMessage) -> None:
        """A modal message: what happened and what to do. Warnings are not modal (work goes on)."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Warning if msg.warning else QMessageBox.Icon.Critical)
        box.setWindowTitle(msg.title)
        box.setText(msg.what)
        box.setInformativeText(msg.todo)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if msg.warning:
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self._open_warnings = [b for b in self._open_warnings if b.isVisible()] + [box]
            box.show()
        else:
            box.exec()

    def info(self, title: str, text: str) -> None:
        QMessageBox.information(self.parent, title, text)

    def ask(self, title: str, text: str, choices: list[str], default: str, *, details: str = "") -> str:
        """Ask a question; returns the label of the button pressed, or "Cancel" when the dialog is dismissed."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        box.setText(text)
        if details:
            box.setInformativeText(details)
        buttons = {}
        for label in choices:
            role = QMessageBox.ButtonRole.RejectRole if label == "Cancel" else QMessageBox.ButtonRole.AcceptRole
            if label in ("Discard", "Don't Save"):
                role = QMessageBox.ButtonRole.DestructiveRole
            buttons[box.addButton(label, role)] = label
        for b, label in buttons.items():
            if label == default:
                box.setDefaultButton(b)
            if label == "Cancel":
                box.setEscapeButton(b)
        box.exec()
        return buttons.get(box.clickedButton(), "Cancel")

    def open_file(self, title: str, directory: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, directory, filters)
        return path or None

    def save_file(self, title: str, suggested: str, filters: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, suggested, filters)
        return path or None

    def choose_dir(self, title: str, directory: str) -> str | None:
        return QFileDialog.getExistingDirectory(self.parent, title, directory) or None

    def export_options(self, defaults: ExportDefaults) -> ExportRequest | None:
        dlg = ExportDialog(defaults, self, self.parent)
        return dlg.request if dlg.exec() else None

    def still_length(self, image_name: str, default: float, folder: str) -> float | None:
        """The length (s) of the video to make of a still image, or None if the user cancels."""
        dlg = StillLengthDialog(image_name, default, folder, self.parent)
        return dlg.value() if dlg.exec() else None

    def recover(self, description: str) -> str:
        """"recover", "discard" or "later" for an autosave left by a crash."""
        choice = self.ask(
            "Recover unsaved work?",
            "The Foley editor did not close normally last time. An autosave of your unsaved work was found:",
            ["Recover", "Discard", "Decide Later"], "Recover", details=description,
        )
        return {"Recover": "recover", "Discard": "discard"}.get(choice, "later")
