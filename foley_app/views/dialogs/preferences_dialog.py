"""Preferences: model bundle and backend, generation defaults, audio device, autosave."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import default_bundle_dir
from foley_app.playback import AudioOutput
from foley_app.settings import OUTPUT_RATES, Settings

_QUALITY_LABELS = {"final": "Final (the model's sampler)", "draft": "Draft (faster, for auditioning)"}

_RATE_LABELS = {48_000: "48 kHz (bandwidth extension)", 16_000: "16 kHz (as generated)"}


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, output: AudioOutput, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.output = output
        self.setMinimumWidth(560)
        col = QVBoxLayout(self)
        tabs = QTabWidget()
        col.addWidget(tabs)

        # model
        model = QWidget()
        form = QFormLayout(model)
        row = QHBoxLayout()
        self.bundle = QLineEdit(settings.bundle)
        self.bundle.setPlaceholderText(f"default: {default_bundle_dir()}")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_bundle)
        row.addWidget(self.bundle, 1)
        row.addWidget(browse)
        form.addRow("Model bundle folder", row)
        self.backend = QComboBox()
        self.backend.addItems(["auto", "onnx", "torch"])
        self.backend.setCurrentText(settings.backend)
        form.addRow("Inference backend", self.backend)
        note = QLabel("A bundle is a folder with manifest.json and its weights. Changing it reloads the model.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        form.addRow(note)
        tabs.addTab(model, "Model")

        # generation
        gen = QWidget()
        gform = QFormLayout(gen)
        self.candidates = QSpinBox()
        self.candidates.setRange(1, 9)
        self.candidates.setValue(settings.candidates)
        gform.addRow("Candidates per generation", self.candidates)
        self.quality = QComboBox()
        for name, label in _QUALITY_LABELS.items():
            self.quality.addItem(label, name)
        self.quality.setCurrentIndex(max(self.quality.findData(settings.quality), 0))
        self.quality.setToolTip(
            "Final: the model's own sampler. Draft: 15 steps with guidance on the EDM2 interval, faster, for "
            "auditioning ideas; its takes are a little worse (docs/results.md, Speed levers). A take records its "
            "quality.")
        gform.addRow("Quality", self.quality)
        self.steps = QSpinBox()
        self.steps.setRange(0, 200)
        self.steps.setSpecialValueText("by quality")
        self.steps.setValue(settings.steps)
        gform.addRow("Denoising steps", self.steps)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 20.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setSpecialValueText("bundle default")
        self.guidance.setValue(settings.guidance)
        gform.addRow("Guidance scale", self.guidance)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(settings.base_seed)
        gform.addRow("First seed", self.seed)
        self.overlap = QDoubleSpinBox()
        self.overlap.setRange(0.0, 4.0)
        self.overlap.setSingleStep(0.1)
        self.overlap.setSuffix(" s")
        self.overlap.setValue(settings.fill_overlap)
        gform.addRow("Fill: overlap between segments", self.overlap)
        self.output_rate = QComboBox()
        for rate in OUTPUT_RATES:
            self.output_rate.addItem(_RATE_LABELS.get(rate, f"{rate} Hz"), rate)
        self.output_rate.setCurrentIndex(max(self.output_rate.findData(settings.output_rate), 0))
        self.output_rate.setToolTip(
            "48 kHz: the model's 16 kHz take with its 8-24 kHz band predicted by the bundle's bandwidth extension "
            "(plain resampling for a bundle without one). A project keeps the rate it was made with.")
        gform.addRow("Output sample rate (new projects)", self.output_rate)
        tabs.addTab(gen, "Generation")

        # audio
        audio = QWidget()
        aform = QFormLayout(audio)
        arow = QHBoxLayout()
        self.device = QComboBox()
        self._fill_devices()
        rescan = QPushButton("Rescan")
        rescan.setToolTip("Look for audio devices again (after plugging one in)")
        rescan.clicked.connect(self._rescan)
        arow.addWidget(self.device, 1)
        arow.addWidget(rescan)
        aform.addRow("Output device", arow)
        self.device_status = QLabel("")
        self.device_status.setObjectName("muted")
        self.device_status.setWordWrap(True)
        aform.addRow(self.device_status)
        self._update_device_status()
        tabs.addTab(audio, "Audio")

        # autosave
        auto = QWidget()
        sform = QFormLayout(auto)
        self.autosave = QSpinBox()
        self.autosave.setRange(0, 3600)
        self.autosave.setSuffix(" s")
        self.autosave.setSpecialValueText("off")
        self.autosave.setValue(settings.autosave_seconds)
        sform.addRow("Autosave every", self.autosave)
        tabs.addTab(auto, "Autosave")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        self.bundle_changed = False

    def _browse_bundle(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model bundle folder", self.bundle.text())
        if path:
            self.bundle.setText(path)

    def _fill_devices(self) -> None:
        self.device.clear()
        self.device.addItem("System default", "")
        for name in self.output.output_devices():
            self.device.addItem(name, name)
        i = self.device.findData(self.settings.audio_device)
        self.device.setCurrentIndex(max(i, 0))

    def _rescan(self) -> None:
        try:
            self.output.rescan()
        except Exception as exc:
            self.device_status.setText(str(exc))
            return
        self._fill_devices()
        self._update_device_status()

    def _update_device_status(self) -> None:
        try:
            self.device_status.setText(f"Plays on: {self.output.check()}")
        except Exception as exc:
            self.device_status.setText(str(exc))

    def _save(self) -> None:
        s = self.settings
        self.bundle_changed = (self.bundle.text().strip() != s.bundle) or (self.backend.currentText() != s.backend)
        s.bundle = self.bundle.text().strip()
        s.backend = self.backend.currentText()
        s.candidates = self.candidates.value()
        s.quality = str(self.quality.currentData())
        s.steps = self.steps.value()
        s.guidance = self.guidance.value()
        s.base_seed = self.seed.value()
        s.fill_overlap = self.overlap.value()
        s.output_rate = int(self.output_rate.currentData())
        s.audio_device = self.device.currentData() or ""
        s.autosave_seconds = self.autosave.value()
        s.sync()
        self.accept()
