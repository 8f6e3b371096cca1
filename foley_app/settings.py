"""User preferences: a typed wrapper over QSettings, one group per component (engine, generation, fill, export,
audio, autosave, ui, recent files).

Values are read on access, so a change made in the preferences dialog applies to the next job. Tests pass an INI
path, so they never touch the user's real settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, QSettings

from engine import QUALITIES

T = TypeVar("T")

MAX_RECENT = 10


#: the output rates the editor offers, the default first
OUTPUT_RATES = (48_000, 16_000)


class Settings:
    """Typed access to the app's QSettings."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            self._q = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "MDSGen", "FoleyEditor")
        else:
            self._q = QSettings(str(path), QSettings.Format.IniFormat)

    @property
    def file_name(self) -> str:
        return self._q.fileName()

    def sync(self) -> None:
        self._q.sync()

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _get(self, key: str, default: T, kind: type[T]) -> T:
        value = self._q.value(key, default)
        if value is None or value == "":
            return default
        try:
            if kind is bool:
                if isinstance(value, str):
                    return value.lower() in ("1", "true", "yes", "on")  # type: ignore[return-value]
                return bool(value)  # type: ignore[return-value]
            return kind(value)  # type: ignore[call-arg]
        except (TypeError, ValueError):
            return default

    def _set(self, key: str, value: Any) -> None:
        self._q.setValue(key, value)

    # ---- engine -------------------------------------------------------------------------------------------------
    @property
    def bundle(self) -> str:
        """Model bundle folder; "" = the engine's default bundle."""
        return self._get("engine/bundle", "", str)

    @bundle.setter
    def bundle(self, value: str) -> None:
        self._set("engine/bundle", value)

    @property
    def backend(self) -> str:
        return self._get("engine/backend", "auto", str)

    @backend.setter
    def backend(self, value: str) -> None:
        self._set("engine/backend", value)

    # ---- generation ---------------------------------------------------------------------------------------------
    @property
    def candidates(self) -> int:
        return max(1, min(9, self._get("generation/candidates", 4, int)))

    @candidates.setter
    def candidates(self, value: int) -> None:
        self._set("generation/candidates", int(value))

    @property
    def steps(self) -> int:
        """Denoising steps; 0 = the bundle's default."""
        return max(0, self._get("generation/steps", 0, int))

    @steps.setter
    def steps(self, value: int) -> None:
        self._set("generation/steps", int(value))

    @property
    def quality(self) -> str:
        """The sampler by name (`engine.QUALITIES`): "final" (the bundle's) or "draft" (faster, worse takes)."""
        value = self._get("generation/quality", "final", str)
        return value if value in QUALITIES else "final"

    @quality.setter
    def quality(self, value: str) -> None:
        if value not in QUALITIES:
            raise ValueError(f"quality must be one of {tuple(QUALITIES)}, got {value!r}")
        self._set("generation/quality", value)

    @property
    def guidance(self) -> float:
        """Classifier-free guidance scale; 0 = the bundle's default."""
        return max(0.0, self._get("generation/guidance", 0.0, float))

    @guidance.setter
    def guidance(self, value: float) -> None:
        self._set("generation/guidance", float(value))

    @property
    def base_seed(self) -> int:
        return self._get("generation/seed", 0, int)

    @base_seed.setter
    def base_seed(self, value: int) -> None:
        self._set("generation/seed", int(value))

    @property
    def output_rate(self) -> int:
        """The sample rate of new projects' takes and exports: 48000 (the bundle's bandwidth extension, or
        resampling for a bundle without one) or 16000 (as generated)."""
        value = self._get("generation/output_rate", OUTPUT_RATES[0], int)
        return value if value in OUTPUT_RATES else OUTPUT_RATES[0]

    @output_rate.setter
    def output_rate(self, value: int) -> None:
        if int(value) not in OUTPUT_RATES:
            raise ValueError(f"output rate must be one of {OUTPUT_RATES}, got {value!r}")
        self._set("generation/output_rate", int(value))

    # ---- fill -----------------------------------------------------------------------------------------------------
    @property
    def fill_overlap(self) -> float:
        return self._get("fill/overlap_s", 1.6, float)

    @fill_overlap.setter
    def fill_overlap(self, value: float) -> None:
        self._set("fill/overlap_s", float(value))

    # ---- export -----------------------------------------------------------------------------------------------------
    @property
    def normalize(self) -> bool:
        return self._get("export/normalize", False, bool)

    @normalize.setter
    def normalize(self, value: bool) -> None:
        self._set("export/normalize", bool(value))

    @property
    def target_lufs(self) -> float:
        return self._get("export/target_lufs", -23.0, float)

    @target_lufs.setter
    def target_lufs(self, value: float) -> None:
        self._set("export/target_lufs", float(value))

    @property
    def export_dir(self) -> str:
        return self._get("export/dir", "", str)

    @export_dir.setter
    def export_dir(self, value: str) -> None:
        self._set("export/dir", value)

    # ---- audio ------------------------------------------------------------------------------------------------------
    @property
    def audio_device(self) -> str:
        """Output device name; "" = the system default."""
        return self._get("audio/device", "", str)

    @audio_device.setter
    def audio_device(self, value: str) -> None:
        self._set("audio/device", value)

    @property
    def mute_original(self) -> bool:
        return self._get("audio/mute_original", False, bool)

    @mute_original.setter
    def mute_original(self, value: bool) -> None:
        self._set("audio/mute_original", bool(value))

    # ---- autosave ---------------------------------------------------------------------------------------------------
    @property
    def autosave_seconds(self) -> int:
        """Autosave interval; 0 turns autosave off."""
        return max(0, self._get("autosave/interval_s", 30, int))

    @autosave_seconds.setter
    def autosave_seconds(self, value: int) -> None:
        self._set("autosave/interval_s", int(value))

    @property
    def autosave_dir(self) -> str:
        """Where autosaves go; "" = the platform's app-data folder."""
        return self._get("autosave/dir", "", str)

    @autosave_dir.setter
    def autosave_dir(self, value: str) -> None:
        self._set("autosave/dir", value)

    # ---- files and window --------------------------------------------------------------------------------------------
    @property
    def recent_files(self) -> list[str]:
        value = self._q.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent_file(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        files = [f for f in self.recent_files if f != p]
        self._set("files/recent", [p, *files][:MAX_RECENT])

    def clear_recent_files(self) -> None:
        self._set("files/recent", [])

    @property
    def last_dir(self) -> str:
        return self._get("files/last_dir", "", str)

    @last_dir.setter
    def last_dir(self, value: str) -> None:
        self._set("files/last_dir", value)

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        geo, state = self._q.value("ui/geometry"), self._q.value("ui/state")
        return (geo if isinstance(geo, QByteArray) else None, state if isinstance(state, QByteArray) else None)

    def set_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._set("ui/geometry", geometry)
        self._set("ui/state", state)
