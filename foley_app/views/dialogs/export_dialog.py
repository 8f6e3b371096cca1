"""Export dialog: a muxed video and/or a WAV of the Foley track, optional loudness normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from foley_app.export import ExportRequest, _same_file

if TYPE_CHECKING:
    from foley_app.views.dialogs.prompter import Prompter

LOUDNESS_PRESETS = (
    ("EBU R128 broadcast (−23 LUFS)", -23.0),
    ("US TV, ATSC A/85 (−24 LUFS)", -24.0),
    ("Web / podcast (−16 LUFS)", -16.0),
    ("Streaming platforms (−14 LUFS)", -14.0),
)


@dataclass
class ExportDefaults:
    video_path: str | None
    mp4_path: str
    wav_path: str
    normalize: bool
    target_lufs: float
    sample_rate: int = 16_000  # the project's: the WAV's rate


class ExportDialog(QDialog):
    def __init__(self, defaults: ExportDefaults, prompter: Prompter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.defaults = defaults
        self.prompter = prompter
        self.request: ExportRequest | None = None
        col = QVBoxLayout(self)

        files = QGroupBox("Files")
        grid = QGridLayout(files)
        self.mp4_check = QCheckBox("Video with the Foley track")
        self.mp4_check.setChecked(defaults.video_path is not None)
        self.mp4_check.setEnabled(defaults.video_path is not None)
        self.mp4_path = QLineEdit(defaults.mp4_path)
        self.mp4_path.setMinimumWidth(380)
        mp4_browse = QPushButton("Browse…")
        mp4_browse.clicked.connect(self._browse_mp4)
        grid.addWidget(self.mp4_check, 0, 0)
        grid.addWidget(self.mp4_path, 0, 1)
        grid.addWidget(mp4_browse, 0, 2)
        hint = QLabel("MP4, MOV or MKV. The video stream is copied as it is wherever the container holds its codec; "
                      "where it cannot (Theora or VP8 into MP4, VP9 into MOV) the video is re-encoded to H.264, "
                      "visually lossless, every frame at its time (.mkv keeps any video as it is). The Foley becomes "
                      "one AAC track at 48 kHz, placed to the sample. The source video is never changed.")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        grid.addWidget(hint, 1, 1, 1, 2)
        self.wav_check = QCheckBox("Foley track as WAV")
        self.wav_check.setChecked(defaults.video_path is None)
        self.wav_path = QLineEdit(defaults.wav_path)
        wav_browse = QPushButton("Browse…")
        wav_browse.clicked.connect(self._browse_wav)
        grid.addWidget(self.wav_check, 2, 0)
        grid.addWidget(self.wav_path, 2, 1)
        grid.addWidget(wav_browse, 2, 2)
        whint = QLabel(f"{defaults.sample_rate / 1000:g} kHz (the project's rate), 24-bit PCM, as long as the video.")
        whint.setObjectName("muted")
        grid.addWidget(whint, 3, 1, 1, 2)
        col.addWidget(files)

        loud = QGroupBox("Loudness")
        lrow = QHBoxLayout(loud)
        self.normalize = QCheckBox("Normalise to")
        self.normalize.setChecked(defaults.normalize)
        self.target = QDoubleSpinBox()
        self.target.setRange(-40.0, -5.0)
        self.target.setDecimals(1)
        self.target.setSuffix(" LUFS")
        self.target.setValue(defaults.target_lufs)
        self.preset = QComboBox()
        self.preset.addItem("Preset…")
        for name, _v in LOUDNESS_PRESETS:
            self.preset.addItem(name)
        self.preset.currentIndexChanged.connect(self._on_preset)
        lrow.addWidget(self.normalize)
        lrow.addWidget(self.target)
        lrow.addWidget(self.preset, 1)
        col.addWidget(loud)
        lhint = QLabel("Integrated loudness (EBU R128 / ITU-R BS.1770), one linear gain for the whole track; "
                       "peaks are kept under −1 dBFS.")
        lhint.setObjectName("muted")
        lhint.setWordWrap(True)
        col.addWidget(lhint)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)

    def _on_preset(self, index: int) -> None:
        if index > 0:
            self.target.setValue(LOUDNESS_PRESETS[index - 1][1])
            self.normalize.setChecked(True)

    def _browse_mp4(self) -> None:
        path = self.prompter.save_file("Export video", self.mp4_path.text(),
                                       "MP4 video (*.mp4);;QuickTime (*.mov);;Matroska (*.mkv)")
        if path:
            self.mp4_path.setText(path)
            self.mp4_check.setChecked(True)

    def _browse_wav(self) -> None:
        path = self.prompter.save_file("Export WAV", self.wav_path.text(), "WAV audio (*.wav)")
        if path:
            self.wav_path.setText(path)
            self.wav_check.setChecked(True)

    def _accept(self) -> None:
        mp4 = Path(self.mp4_path.text()).expanduser() if self.mp4_check.isChecked() else None
        wav = Path(self.wav_path.text()).expanduser() if self.wav_check.isChecked() else None
        request = build_request(self.defaults.video_path, mp4, wav, self.normalize.isChecked(), self.target.value(),
                                self.prompter)
        if request is not None:
            self.request = request
            self.accept()


def build_request(video: str | None, mp4: Path | None, wav: Path | None, normalize: bool, target: float,
                  prompter: Prompter) -> ExportRequest | None:
    """Validate choices, asking before replacing existing files; None if the user backs out."""
    from foley_app.errors import UserMessage

    if mp4 is None and wav is None:
        prompter.error(UserMessage("Nothing to export", "Neither the video nor the WAV is selected.",
                                   "Tick at least one of them."))
        return None
    if mp4 is not None and mp4.suffix.lower() not in (".mp4", ".m4v", ".mov", ".mkv"):
        prompter.error(UserMessage("Unsupported video format", f"{mp4.name} does not end in .mp4, .mov or .mkv.",
                                   "Choose one of those (.mkv holds every video codec)."))
        return None
    if wav is not None and wav.suffix.lower() != ".wav":
        wav = wav.with_name(wav.name + ".wav")
    if mp4 is not None and video and _same_file(Path(video), mp4):
        prompter.error(UserMessage("That is the source video", f"{mp4.name} is the video you are working on; the "
                                   "editor never overwrites it.", "Choose another name for the export."))
        return None
    existing = [p for p in (mp4, wav) if p is not None and p.exists()]
    overwrite = False
    if existing:
        names = ", ".join(p.name for p in existing)
        if prompter.ask("Replace files?", f"{names} already exist{'s' if len(existing) == 1 else ''}.",
                        ["Replace", "Cancel"], "Cancel", details="Replacing is atomic: the old file stays intact "
                        "until the new one is complete.") != "Replace":
            return None
        overwrite = True
    return ExportRequest(video, mp4, wav, normalize, target, overwrite)
