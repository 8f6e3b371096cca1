"""Typed errors of the editor, and how each error the user can meet is explained: what happened, what to do.

`explain` maps any exception (the engine's typed errors, OS errors such as a full disk or a read-only folder, and
the app's own) to a `UserMessage` that the dialogs show as is. Qt-free.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from engine import (
    BackendUnavailableError,
    BundleError,
    Cancelled,
    EngineError,
    FeatureFileError,
    InvalidRequestError,
    MuxError,
    NoVideoStreamError,
    SegmentOutOfRangeError,
    VideoError,
    VideoNotFoundError,
    VideoReadError,
)


class AppError(Exception):
    """Base class of the errors the editor raises on purpose; the message says what happened."""


class ProjectFileError(AppError):
    """A project file cannot be read: not a project, corrupt, made by a newer version, or its audio is missing."""


class AudioDeviceError(AppError):
    """No audio output can be opened (no device, no PortAudio library, or the device refused the format)."""


class ExportError(AppError):
    """An export cannot run as asked (e.g. the output would replace the source video)."""


class NoEngineError(AppError):
    """Generation was asked for while no model bundle is loaded."""


@dataclass(frozen=True)
class UserMessage:
    """What a dialog says: a title, what happened, what to do, and whether it is only a warning."""

    title: str
    what: str
    todo: str
    warning: bool = False

    @property
    def text(self) -> str:
        return f"{self.what}\n\n{self.todo}"


_NOTHING_LOST = "Your work is still open in the editor; nothing was lost."


def _os_message(exc: OSError, doing: str) -> UserMessage:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return UserMessage(
            "Disk full",
            f"The disk is full: {doing} failed{where}.",
            f"Free some space, or choose a folder on another disk. {_NOTHING_LOST}",
        )
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserMessage(
            "Folder is read-only",
            f"{doing.capitalize()} failed: the folder cannot be written{where}.",
            f"Choose a folder you can write to (for a project: File ▸ Save Project As…). {_NOTHING_LOST}",
        )
    if isinstance(exc, FileNotFoundError):
        return UserMessage(
            "File not found",
            f"{doing.capitalize()} failed: {exc.strerror or exc}{where}.",
            "Check that the file or folder still exists (an unplugged drive?) and try again.",
        )
    return UserMessage(
        "Input/output error",
        f"{doing.capitalize()} failed: {exc.strerror or exc}{where}.",
        f"Check the disk and the folder, then try again. {_NOTHING_LOST}",
    )


def explain(exc: BaseException, doing: str = "the operation") -> UserMessage:
    """The message a dialog shows for `exc`, raised while `doing` (e.g. "saving the project")."""
    text = str(exc) or type(exc).__name__
    text = text[:1].upper() + text[1:]
    if isinstance(exc, Cancelled):
        return UserMessage("Cancelled", f"{doing.capitalize()} was cancelled.", "Nothing was changed.", warning=True)
    if isinstance(exc, (BundleError, NoEngineError)):
        return UserMessage(
            "Model bundle not available",
            text,
            "Choose a model bundle folder in Edit ▸ Preferences ▸ Model (or start with --bundle FOLDER). "
            "You can still open videos, mark segments, edit the Foley track, save and export.",
        )
    if isinstance(exc, BackendUnavailableError):
        return UserMessage(
            "Inference backend not available",
            text,
            "Install the missing package named above, or pick another backend in Edit ▸ Preferences ▸ Model.",
        )
    if isinstance(exc, (VideoNotFoundError, VideoReadError, NoVideoStreamError)):
        return UserMessage(
            "Cannot open the video",
            text,
            "Choose another file. Any format FFmpeg reads works (MP4, MOV, MKV, WebM, AVI…); a damaged file can "
            "often be repaired by re-encoding it with FFmpeg.",
        )
    if isinstance(exc, SegmentOutOfRangeError):
        return UserMessage("Segment outside the video", text, "Move the segment inside the video and try again.")
    if isinstance(exc, MuxError):
        return UserMessage("Export failed", text, f"Choose another output name or folder. {_NOTHING_LOST}")
    if isinstance(exc, ExportError):
        return UserMessage("Cannot export", text, "Choose another output file.")
    if isinstance(exc, ProjectFileError):
        return UserMessage("Cannot open the project", text, "Pick another project file, or open the video instead.")
    if isinstance(exc, AudioDeviceError):
        return UserMessage(
            "No audio output",
            text,
            "Connect or enable a sound device, then choose it in Edit ▸ Preferences ▸ Audio (Rescan). Until then "
            "the picture plays without sound; generating, editing, saving and exporting all keep working.",
            warning=True,
        )
    if isinstance(exc, (VideoError, FeatureFileError, InvalidRequestError, EngineError)):
        return UserMessage("The engine could not do that", text, "Check the request and try again.")
    if isinstance(exc, OSError):
        return _os_message(exc, doing)
    if isinstance(exc, MemoryError):
        return UserMessage(
            "Out of memory", f"{doing.capitalize()} ran out of memory.",
            f"Close other programs or work on a shorter video. {_NOTHING_LOST}",
        )
    return UserMessage(
        "Unexpected error",
        f"{doing.capitalize()} failed: {type(exc).__name__}: {text}",
        f"This is a bug; the details are in the log (Help ▸ Show Log Folder). {_NOTHING_LOST}",
    )
