"""Typed errors of the engine. Every message says what happened and what to do about it."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidRequestError(EngineError, ValueError):
    """A generation request has an argument out of range (candidates, steps, guidance, ...)."""


class VideoError(EngineError):
    """A video could not be used."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The video file does not exist."""


class VideoReadError(VideoError):
    """The file is not a readable video: corrupt, truncated, or an unsupported format."""


class NoVideoStreamError(VideoError):
    """The file opens but holds no video stream (audio only, subtitles, ...)."""


class SegmentOutOfRangeError(VideoError, ValueError):
    """The requested segment start lies outside the video."""


class NoAudioStreamError(VideoError):
    """The file opens but holds no audio stream to read."""


class FeatureFileError(EngineError):
    """A precomputed video-feature file (.npy/.npz) has the wrong shape or cannot be read."""


class BundleError(EngineError):
    """A model bundle is missing, corrupt or does not match this engine."""


class BackendUnavailableError(EngineError):
    """The requested inference backend cannot run here (a package is missing)."""


class MuxError(EngineError):
    """Writing the output video failed."""


class Cancelled(EngineError):
    """The caller asked to stop a long job; nothing was written."""


class ExportError(EngineError):
    """Exporting a bundle's networks to ONNX failed, or an exported graph does not match torch."""


class CheckpointError(EngineError):
    """A pretrained-weights file given to the importer (`foley import-official`) cannot be used."""


class CheckpointReadError(CheckpointError):
    """The file is missing, truncated, corrupt, or not a checkpoint at all."""


class CheckpointLayoutError(CheckpointError):
    """The file reads, but its keys or shapes are not the public layout (the message names the keys)."""


class UntrustedCheckpointError(CheckpointError):
    """A pickled checkpoint holds objects beyond tensors; it is only unpickled fully when the user trusts it."""


class UnknownConfigKeyError(EngineError, ValueError):
    """A component config (a bundle manifest's init-args) has keys its config class does not know; the message
    names them and the known ones (`engine.config_base.StrictConfig.from_dict`)."""

    def __init__(self, message: str, *, unknown: list[str] | None = None, known: list[str] | None = None) -> None:
        super().__init__(message)
        self.unknown = list(unknown or [])
        self.known = list(known or [])
