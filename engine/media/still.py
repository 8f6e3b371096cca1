"""Still images as videos: a PNG or JPEG becomes an H.264 MP4 that every reader, the hit detector and the mux
treat as any video."""

from __future__ import annotations

import math
from pathlib import Path

import av
import av.error
import numpy as np

from engine.atomic import atomic_replace
from engine.errors import InvalidRequestError, MuxError, VideoReadError
from engine.media.mux import _REENCODE_CODEC, _REENCODE_OPTIONS
from engine.media.probe import PathLike, _existing_file, _read_error

STILL_SUFFIXES = (".png", ".jpg", ".jpeg")
STILL_FPS = 25


def is_still_image(path: PathLike) -> bool:
    """Whether `path` names a still image the engine opens as a video (PNG or JPEG, by suffix)."""
    return Path(path).suffix.lower() in STILL_SUFFIXES


def still_video(image: PathLike, out: PathLike, duration: float, *, fps: int = STILL_FPS) -> Path:
    """Make `out` (an MP4) a video of `duration` seconds that shows `image` (PNG/JPEG) on every frame: H.264 at
    `fps`, CRF 18, even size (a pixel of the last row/column repeated if odd), written atomically. The image-to-
    audio use: every reader, the hit detector and the mux then treat it as any video. Returns `out`.

    Raises VideoNotFoundError / VideoReadError (not a readable image), InvalidRequestError (bad duration)."""
    src = _existing_file(image)
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and 0 < duration <= 24 * 3600):
        raise InvalidRequestError(f"a still image's length must be a positive number of seconds, got {duration!r}")
    try:
        with av.open(str(src)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is None:
                raise VideoReadError(f"{src.name} holds no picture; open a PNG or JPEG image")
            frame = next(container.decode(stream), None)
    except av.error.FFmpegError as err:
        raise _read_error(src, err, "decode") from err
    if frame is None:
        raise VideoReadError(f"No picture of {src.name} decodes: the image is empty or damaged")
    rgb = frame.to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    target = Path(out)
    n = max(1, math.ceil(duration * fps - 1e-9))
    try:
        with atomic_replace(target, suffix=".part") as tmp, av.open(str(tmp), mode="w", format="mp4") as output:
            stream = output.add_stream(_REENCODE_CODEC, rate=fps, options=dict(_REENCODE_OPTIONS))
            stream.width, stream.height = rgb.shape[1], rgb.shape[0]
            stream.pix_fmt = "yuv420p"
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            for i in range(n):
                picture.pts = i
                output.mux(stream.encode(picture))
            output.mux(stream.encode(None))
    except av.error.FFmpegError as err:
        raise MuxError(f"Cannot write {target}: {err}") from err
    return target
