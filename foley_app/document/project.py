"""The project as plain data, and its file format: versioned JSON plus a folder of the WAVs it references.

Pure Python + numpy (no Qt). A project on disk is

    film.foleyproj           JSON: {"format": "mdsgen-foley-project", "version": 4, "video": ..., "segments": ...}
    film.media/<audio>.wav   every take and clip audio the JSON names, 24-bit PCM at the project's sample rate

Version 2 added hits (onset times, s from the segment start) to segments ("hits", "hits_state") and takes ("hits",
"hits_source"). A version 1 file still opens: its segments' hits are "not detected yet" (`HITS_PENDING`, none),
its takes' hits are those their settings recorded, if any.

Version 3 added markers ("markers", "next_marker_number": named points on the video's timeline) and two facts of
the video: its start timecode ("timecode", what the container records, for the exported stems' time references)
and, for a video made of a still image, the image ("source_image"). A version 1 or 2 file opens with no markers,
no timecode known (the export probes the video for it) and no source image.

Version 4 added comping to clips: "parts" (after the clip's first take, from which time on which other take of
the segment plays) and "crossfade_s" (the equal-power crossfade centred on each cut). Older files open with every
clip one take.

Every file is written atomically (temp file beside the target, fsync, rename), audio before the JSON that names
it, so a crash or a full disk at any moment leaves the previous project readable. Audio is immutable once made
and named by a random id, so a save only writes the audio the media folder does not hold yet.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine import DEFAULT_COMP_CROSSFADE_S, MAX_COMP_CROSSFADE_S, atomic_write_text, write_wav
from foley_app.errors import ProjectFileError

FORMAT = "mdsgen-foley-project"
FORMAT_VERSION = 4
PROJECT_SUFFIX = ".foleyproj"
SAMPLE_RATE = 16_000


# What a segment's hits are (Segment.hits_state):
HITS_PENDING = "pending"  # not detected yet: the detector (when the model has one) fills or replaces them
HITS_DETECTED = "detected"  # found by the detector, untouched since
HITS_USER = "user"  # the user's: added, moved, deleted or cleared by hand (no detection overwrites them)
HITS_STATES = (HITS_PENDING, HITS_DETECTED, HITS_USER)


def new_id() -> str:
    """A short random id for segments, clips and audio."""
    return uuid.uuid4().hex[:12]


# ---- data ----------------------------------------------------------------------------------------------------
@dataclass
class VideoRef:
    """The video a project is about; facts kept to tell a moved or replaced file."""

    path: str
    duration: float
    fps: float
    width: int
    height: int
    has_audio: bool
    timecode: str | None = None  # the start timecode the container records ("01:00:00:00"); None: none or unknown
    source_image: str = ""  # the still image (PNG/JPEG) this video was made of ("" for a real video)


@dataclass
class Marker:
    """A named point on the video's timeline (`time`: s from the first frame, on a frame), with an optional note.
    Markers go into the exported timeline (.otio / FCP7 XML)."""

    id: str
    name: str
    time: float
    note: str = ""


@dataclass
class Take:
    """One generated candidate of a segment: its audio, its seed and every setting it was made with."""

    index: int
    seed: int
    audio_id: str
    settings: dict[str, Any]
    level_db: float
    hits: list[float] = field(default_factory=list)  # the hits it was made with (s from its start)
    hits_source: str = ""  # the engine's word for them: "detected", "user", "none", "ignored" ("" = unknown)
    start: float | None = None  # the video time it was made for (s); None: its segment's start (old files)

    def __post_init__(self) -> None:
        if self.start is None and "start" in self.settings:  # what the engine recorded (and files up to version 4)
            self.start = float(self.settings["start"])

    def start_in(self, segment: Segment) -> float:
        """Where the take sits on the video's timeline: the start it was made for (its segment may have moved
        since)."""
        return float(self.start) if self.start is not None else float(segment.start)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Take:
        d = dict(d)
        settings = d.get("settings") or {}
        d.setdefault("hits", settings.get("hits", []))  # a version 1 file: what the engine recorded, if anything
        d.setdefault("hits_source", settings.get("hits_source", ""))
        d["hits"] = [float(h) for h in d["hits"]]
        return cls(**d)


@dataclass
class Segment:
    """A fixed-length window of the video marked for generation, with the takes generated for it and its hits
    (sorted onset times in seconds from `start`, each in [0, duration))."""

    id: str
    number: int
    start: float
    duration: float
    takes: list[Take] = field(default_factory=list)
    generation: dict[str, Any] = field(default_factory=dict)  # settings of the last generation (steps, ...)
    warnings: list[str] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)
    hits_state: str = HITS_PENDING  # one of HITS_STATES

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def label(self) -> str:
        return f"S{self.number}"


@dataclass
class ClipPart:
    """From `time` (s from its clip's start) to the next part, the clip plays this take of its segment."""

    time: float
    take_index: int
    seed: int
    audio_id: str


@dataclass
class Clip:
    """An accepted take placed on the Foley track at `start` (s), with its own gain.

    A comped clip plays its first take (`audio_id`, `take_index`, `seed`) up to the first of `parts`, then each
    part's take up to the next; `crossfade_s` is the equal-power crossfade centred on every cut."""

    id: str
    segment_id: str
    label: str
    start: float
    audio_id: str
    seed: int
    take_index: int
    gain_db: float = 0.0
    parts: list[ClipPart] = field(default_factory=list)  # sorted by time, all > 0
    crossfade_s: float = DEFAULT_COMP_CROSSFADE_S

    def take_indices(self) -> list[int]:
        """The take each part plays, the first part's first."""
        return [self.take_index, *(p.take_index for p in self.parts)]

    def part_times(self) -> list[float]:
        """Where each part starts (s from the clip's start), 0 for the first."""
        return [0.0, *(p.time for p in self.parts)]

    def part_at(self, t: float) -> int:
        """The index of the part that plays at `t` (s from the clip's start; 0 for the first take)."""
        return max(0, sum(1 for p in self.parts if p.time <= t))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Clip:
        fields = {k: v for k, v in d.items() if k not in ("parts", "crossfade_s")}
        parts = sorted((ClipPart(time=float(p["time"]), take_index=int(p["take_index"]), seed=int(p["seed"]),
                                 audio_id=str(p["audio_id"])) for p in d.get("parts", [])), key=lambda p: p.time)
        if any(not (math.isfinite(p.time) and p.time > 0.0) for p in parts):
            raise ValueError(f"clip {d.get('id')}: a comp part starts at a time not inside the clip")
        xf = float(d.get("crossfade_s", DEFAULT_COMP_CROSSFADE_S))
        if not (math.isfinite(xf) and 0.0 <= xf <= MAX_COMP_CROSSFADE_S):
            raise ValueError(f"clip {d.get('id')}: crossfade {xf!r} s is not in [0, {MAX_COMP_CROSSFADE_S}]")
        return cls(**fields, parts=parts, crossfade_s=xf)


@dataclass
class Project:
    """Everything the user made. Audio lives beside it in an id -> samples store (see `AudioStore`)."""

    video: VideoRef | None = None
    segments: list[Segment] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    next_segment_number: int = 1
    sample_rate: int = SAMPLE_RATE
    markers: list[Marker] = field(default_factory=list)  # sorted by time
    next_marker_number: int = 1  # the N of the next default name "Marker N"

    # ---- look-ups ---------------------------------------------------------------------------------------------
    def segment(self, seg_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == seg_id), None)

    def clip(self, clip_id: str) -> Clip | None:
        return next((c for c in self.clips if c.id == clip_id), None)

    def clip_for_segment(self, seg_id: str) -> Clip | None:
        return next((c for c in self.clips if c.segment_id == seg_id), None)

    def marker(self, marker_id: str) -> Marker | None:
        return next((m for m in self.markers if m.id == marker_id), None)

    def audio_ids(self) -> set[str]:
        ids = {c.audio_id for c in self.clips}
        ids.update(p.audio_id for c in self.clips for p in c.parts)
        for s in self.segments:
            ids.update(t.audio_id for t in s.takes)
        return ids

    def copy(self) -> Project:
        """A deep copy (the audio store is shared: its arrays are immutable)."""
        return copy.deepcopy(self)

    # ---- JSON ---------------------------------------------------------------------------------------------------
    def to_dict(self, media_dir: str, base: Path | None = None) -> dict[str, Any]:
        video = None
        if self.video is not None:
            video = asdict(self.video)
            if base is not None:
                with contextlib.suppress(ValueError):  # another drive on Windows
                    video["relative_path"] = os.path.relpath(self.video.path, base)
                if self.video.source_image:
                    with contextlib.suppress(ValueError):
                        video["source_image_relative"] = os.path.relpath(self.video.source_image, base)
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "sample_rate": self.sample_rate,
            "media_dir": media_dir,
            "video": video,
            "segments": [asdict(s) for s in self.segments],
            "clips": [asdict(c) for c in self.clips],
            "next_segment_number": self.next_segment_number,
            "markers": [asdict(m) for m in self.markers],
            "next_marker_number": self.next_marker_number,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path | None = None) -> Project:
        v = d.get("video")
        video = None
        if v is not None:
            # a project moved together with its video (or image) finds it by the relative path
            path = _moved(str(v["path"]), v.get("relative_path"), base)
            image = _moved(str(v.get("source_image") or ""), v.get("source_image_relative"), base)
            tc = v.get("timecode")
            video = VideoRef(
                path=path, duration=float(v["duration"]), fps=float(v["fps"]), width=int(v["width"]),
                height=int(v["height"]), has_audio=bool(v["has_audio"]), timecode=str(tc) if tc else None,
                source_image=image,
            )
        segments = [
            Segment(
                id=s["id"], number=int(s["number"]), start=float(s["start"]), duration=float(s["duration"]),
                takes=[Take.from_dict(t) for t in s.get("takes", [])], generation=dict(s.get("generation", {})),
                warnings=list(s.get("warnings", [])), hits=sorted(float(h) for h in s.get("hits", [])),
                hits_state=_hits_state(s.get("hits_state", HITS_PENDING)),
            )
            for s in d.get("segments", [])
        ]
        clips = [Clip.from_dict(c) for c in d.get("clips", [])]
        markers = sorted((_marker(m) for m in d.get("markers", [])), key=lambda m: (m.time, m.id))
        return cls(
            video=video, segments=segments, clips=clips,
            next_segment_number=int(d.get("next_segment_number", len(segments) + 1)),
            sample_rate=int(d.get("sample_rate", SAMPLE_RATE)), markers=markers,
            next_marker_number=int(d.get("next_marker_number", len(markers) + 1)),
        )


def _moved(path: str, rel: object, base: Path | None) -> str:
    """`path`, or where `rel` (relative to the project's folder) finds the file when `path` is gone."""
    if path and base is not None and rel and not Path(path).is_file() and (base / str(rel)).is_file():
        return str((base / str(rel)).resolve())
    return path


def _marker(m: dict[str, Any]) -> Marker:
    t = float(m["time"])
    if not (math.isfinite(t) and t >= 0.0):
        raise ValueError(f"marker time {t!r} is not a time in the video")
    return Marker(id=str(m["id"]), name=str(m["name"]), time=t, note=str(m.get("note", "")))


def _hits_state(value: object) -> str:
    if value not in HITS_STATES:
        raise ValueError(f"hits_state {value!r} is none of {HITS_STATES}")
    return str(value)


class AudioStore:
    """Immutable mono float32 arrays by id; shared by the document, its undo commands and snapshots."""

    def __init__(self) -> None:
        self._data: dict[str, np.ndarray] = {}

    def add(self, audio: np.ndarray, audio_id: str | None = None) -> str:
        arr = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        arr.setflags(write=False)
        key = audio_id or new_id()
        self._data[key] = arr
        return key

    def get(self, audio_id: str) -> np.ndarray:
        return self._data[audio_id]

    def __contains__(self, audio_id: object) -> bool:
        return audio_id in self._data

    def ids(self) -> set[str]:
        return set(self._data)

    def snapshot(self, ids: set[str]) -> dict[str, np.ndarray]:
        """The arrays for `ids` (by reference: they are read-only)."""
        return {i: self._data[i] for i in ids if i in self._data}


# ---- files ---------------------------------------------------------------------------------------------------
def media_dir_for(project_path: Path) -> Path:
    """The folder holding a project's audio: film.foleyproj -> film.media."""
    return project_path.with_name(project_path.stem + ".media")


def save_project(project: Project, audio: dict[str, np.ndarray], path: Path, *, prune: bool = True) -> Path:
    """Write the project to `path` (+ its media folder). Audio first, then the JSON, each atomically.

    `audio` must hold every id the project references. With `prune`, WAVs in the media folder that the saved
    project no longer references are removed after the JSON is in place (they belong to nothing any more).
    """
    path = Path(path)
    if path.suffix != PROJECT_SUFFIX:
        path = path.with_name(path.name + PROJECT_SUFFIX)
    media = media_dir_for(path)
    needed = project.audio_ids()
    missing = needed - set(audio)
    assert not missing, f"audio missing from the store: {sorted(missing)}"
    media.mkdir(parents=True, exist_ok=True)
    for audio_id in sorted(needed):
        wav = media / f"{audio_id}.wav"
        if not wav.is_file():
            write_wav(wav, np.asarray(audio[audio_id]), project.sample_rate)
    data = project.to_dict(media.name, base=path.parent)
    atomic_write_text(path, json.dumps(data, indent=1))
    if prune:
        for wav in media.glob("*.wav"):
            if wav.stem not in needed:
                with contextlib.suppress(OSError):
                    wav.unlink()
    return path


def read_project_json(path: Path) -> dict[str, Any]:
    """The project's JSON after checks of format and version (ProjectFileError names the problem)."""
    path = Path(path)
    if not path.is_file():
        raise ProjectFileError(f"The project file {path} does not exist.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectFileError(f"{path.name} is not a readable project file ({exc}).") from exc
    if not isinstance(data, dict):
        raise ProjectFileError(f"{path.name} is not a Foley project (it holds a JSON {type(data).__name__}, not an "
                               "object).")
    if data.get("format") != FORMAT:
        raise ProjectFileError(f"{path.name} is not a Foley project (its format is {data.get('format')!r}).")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise ProjectFileError(f"{path.name} has no valid format version.")
    if version > FORMAT_VERSION:
        raise ProjectFileError(
            f"{path.name} was saved by a newer version of the Foley editor (project format {version}; this "
            f"version reads up to {FORMAT_VERSION}). Update the editor to open it."
        )
    return data


def load_project(path: Path) -> tuple[Project, dict[str, np.ndarray]]:
    """Read a project and all the audio it references.

    Raises ProjectFileError if the file is not a project, is corrupt, is too new, or audio is missing/unreadable.
    """
    path = Path(path)
    data = read_project_json(path)
    try:
        project = Project.from_dict(data, base=path.parent)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectFileError(f"{path.name} is damaged: a field is missing or malformed ({exc!r}).") from exc
    media = path.parent / str(data.get("media_dir") or media_dir_for(path).name)
    audio: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for audio_id in sorted(project.audio_ids()):
        wav = media / f"{audio_id}.wav"
        try:
            samples, rate = sf.read(str(wav), dtype="float32", always_2d=True)
        except (OSError, RuntimeError, sf.LibsndfileError):
            missing.append(wav.name)
            continue
        if rate != project.sample_rate:
            raise ProjectFileError(f"{wav} is at {rate} Hz; the project needs {project.sample_rate} Hz.")
        audio[audio_id] = samples.mean(axis=1)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ProjectFileError(
            f"{len(missing)} audio file(s) of {path.name} are missing or unreadable in {media}: {shown}. "
            "Keep the .media folder beside the project file when you move or copy a project."
        )
    return project, audio
