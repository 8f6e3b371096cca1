"""Export dialog: a muxed video, a WAV of the Foley track, Broadcast WAV stems and a timeline for an NLE (OTIO or
FCP7 XML), optional loudness normalisation."""

from __future__ import annotations

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

from foley_app.export import (
    STEM_RATE,
    STEMS_SUBDIR,
    TIMELINE_FORMATS,
    TRACK_FILE,
    ExportDefaults,
    ExportRequest,
    build_request,
)

if TYPE_CHECKING:
    from foley_app.views.dialogs.prompter import Prompter

LOUDNESS_PRESETS = (
    ("EBU R128 broadcast (−23 LUFS)", -23.0),
    ("US TV, ATSC A/85 (−24 LUFS)", -24.0),
    ("Web / podcast (−16 LUFS)", -16.0),
    ("Streaming platforms (−14 LUFS)", -14.0),
)


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

        post = QGroupBox("For a DAW or an NLE")
        pgrid = QGridLayout(post)
        self.stems_check = QCheckBox(f"Stems: {STEM_RATE // 1000} kHz 24-bit Broadcast WAV, one per clip")
        self.stems_check.setChecked(False)
        self.stems_dir = QLineEdit(defaults.stems_dir)
        stems_browse = QPushButton("Browse…")
        stems_browse.clicked.connect(self._browse_stems)
        pgrid.addWidget(self.stems_check, 0, 0, 1, 3)
        pgrid.addWidget(QLabel("Folder"), 1, 0)
        pgrid.addWidget(self.stems_dir, 1, 1)
        pgrid.addWidget(stems_browse, 1, 2)
        shint = QLabel(f"In the folder: {STEMS_SUBDIR}/seg-NNN.wav, each clip as it sounds in the mix (its gain, fades "
                       f"and crossfades applied), and {TRACK_FILE}, the whole track. Each file's BWF time reference "
                       "is the video's start timecode plus its position, so a DAW places it on import (Pro Tools: "
                       "Spot; REAPER, Nuendo: at the time reference); there the stems sum to the track.")
        shint.setObjectName("muted")
        shint.setWordWrap(True)
        pgrid.addWidget(shint, 2, 1, 1, 2)
        self.timeline_check = QCheckBox("Timeline:")
        self.timeline_format = QComboBox()
        for name, _suffix in TIMELINE_FORMATS:
            self.timeline_format.addItem(name)
        self.timeline_path = QLineEdit(defaults.timeline_path)
        known = [suffix for _n, suffix in TIMELINE_FORMATS]
        suffix = Path(defaults.timeline_path).suffix.lower()
        self.timeline_format.setCurrentIndex(known.index(suffix) if suffix in known else 0)
        self.timeline_format.currentIndexChanged.connect(self._on_timeline_format)
        timeline_browse = QPushButton("Browse…")
        timeline_browse.clicked.connect(self._browse_timeline)
        trow = QHBoxLayout()
        trow.addWidget(self.timeline_check)
        trow.addWidget(self.timeline_format, 1)
        pgrid.addLayout(trow, 3, 0, 1, 3)
        pgrid.addWidget(QLabel("File"), 4, 0)
        pgrid.addWidget(self.timeline_path, 4, 1)
        pgrid.addWidget(timeline_browse, 4, 2)
        n = defaults.markers
        thint = QLabel(f"The video, the stems (overlapping ones on alternating tracks) and the project's {n} "
                       f"marker{'s' if n != 1 else ''}, from the video's start timecode. OpenTimelineIO for "
                       "Resolve and the OTIO tools; Final Cut Pro 7 XML for Premiere and Resolve (whole frames). "
                       "The timeline refers to the stems, so they are exported with it.")
        thint.setObjectName("muted")
        thint.setWordWrap(True)
        pgrid.addWidget(thint, 5, 1, 1, 2)
        self.timeline_check.toggled.connect(self._on_timeline_toggled)
        self.stems_check.toggled.connect(self._on_stems_toggled)
        col.addWidget(post)

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
                                       "MP4 video (*.mp4 *.m4v);;QuickTime (*.mov);;Matroska (*.mkv)")
        if path:
            self.mp4_path.setText(path)
            self.mp4_check.setChecked(True)

    def _browse_wav(self) -> None:
        path = self.prompter.save_file("Export WAV", self.wav_path.text(), "WAV audio (*.wav)")
        if path:
            self.wav_path.setText(path)
            self.wav_check.setChecked(True)

    def _browse_stems(self) -> None:
        path = self.prompter.choose_dir("Folder for the stems", self.stems_dir.text())
        if path:
            self.stems_dir.setText(path)
            self.stems_check.setChecked(True)

    def _timeline_suffix(self) -> str:
        return TIMELINE_FORMATS[self.timeline_format.currentIndex()][1]

    def _browse_timeline(self) -> None:
        filters = ";;".join(f"{name.split(' (')[0]} (*{suffix})" for name, suffix in TIMELINE_FORMATS)
        path = self.prompter.save_file("Export timeline", self.timeline_path.text(), filters)
        if path:
            suffix = Path(path).suffix.lower()
            known = [s for _n, s in TIMELINE_FORMATS]
            if suffix in known:
                self.timeline_format.setCurrentIndex(known.index(suffix))
            self.timeline_path.setText(path)
            self._on_timeline_format()
            self.timeline_check.setChecked(True)

    def _on_timeline_format(self, *_args: object) -> None:
        """The file's suffix follows the chosen format."""
        text = self.timeline_path.text().strip()
        if text:
            p = Path(text)
            known = [s for _n, s in TIMELINE_FORMATS]
            self.timeline_path.setText(str(p.with_suffix(self._timeline_suffix()) if p.suffix.lower() in known
                                           else p.with_name(p.name + self._timeline_suffix())))

    def _on_timeline_toggled(self, on: bool) -> None:
        if on:
            self.stems_check.setChecked(True)  # the timeline refers to the stems

    def _on_stems_toggled(self, on: bool) -> None:
        if not on:
            self.timeline_check.setChecked(False)

    def _accept(self) -> None:
        mp4 = Path(self.mp4_path.text()).expanduser() if self.mp4_check.isChecked() else None
        wav = Path(self.wav_path.text()).expanduser() if self.wav_check.isChecked() else None
        stems = Path(self.stems_dir.text()).expanduser() if self.stems_check.isChecked() else None
        timeline = Path(self.timeline_path.text()).expanduser() if self.timeline_check.isChecked() else None
        request = build_request(self.defaults.video_path, mp4, wav, self.normalize.isChecked(), self.target.value(),
                                self.prompter, stems=stems, timeline=timeline,
                                timeline_suffix=self._timeline_suffix())
        if request is not None:
            self.request = request
            self.accept()
