"""Media I/O for the engine: probe and read video frames, read audio, write WAV, mux Foley into a video.

Everything here goes through PyAV (FFmpeg), numpy and soundfile; no Qt and no torch.

Time convention: every time this package takes or returns is in seconds *relative to the first video frame* of
the file (its presentation time is `VideoInfo.start_time` on the file's own timeline), so a file whose first frame
sits at 1.5 s (MPEG-TS, edited MP4) behaves like any other. Audio read from a file that has a video stream uses
the same origin, so audio and frames line up.

Frame picking is by presentation time: the frame used for time t is the one being displayed at t, i.e. the frame
with the largest pts <= t. This is right for variable-frame-rate video, where "frame number t * fps" is not.

Rotation: phones store portrait video as landscape pixels plus a display matrix. FFmpeg (and PyAV 18's
`VideoFrame.rotation`) reports the matrix as a counter-clockwise angle; `VideoInfo.rotation` is the clockwise
angle to apply for display, and every frame returned here is already display-oriented.

The modules, one per seam (this `__init__` re-exports every name callers import, so `from engine.media import X`
and `from engine import media` work as they did when the package was one module):

    probe.py     probe_video, VideoInfo, check_segment_start; the opening, error and timestamp helpers they share
    frames.py    read_frames, read_segment_frames, FrameBatch: frames by presentation time, display-oriented
    audio_io.py  write_wav (24-bit PCM, atomic), read_audio
    mux.py       mux_foley, mux_plan, MuxPlan, MUX_SUFFIXES: the Foley into a copy of the video
    still.py     still_video, is_still_image, STILL_SUFFIXES: a PNG/JPEG as a video
    encode.py    encode_video, encode_audio: frames and samples into an open output (the data sets' and tests'
                 writers)
"""

# The names of __all__, and (as `X as X`: re-exported) those other modules and tests import from here too.
from engine.media.audio_io import _check_rate as _check_rate
from engine.media.audio_io import read_audio, write_wav
from engine.media.frames import FrameBatch, read_frames, read_segment_frames
from engine.media.frames import _seek as _seek
from engine.media.frames import _to_rgb as _to_rgb
from engine.media.mux import MUX_SUFFIXES as MUX_SUFFIXES
from engine.media.mux import MuxPlan, mux_foley, mux_plan
from engine.media.mux import _codec_fits as _codec_fits
from engine.media.mux import _repair_timestamps as _repair_timestamps
from engine.media.probe import PathLike as PathLike
from engine.media.probe import VideoInfo, probe_video
from engine.media.probe import _existing_file as _existing_file
from engine.media.probe import _frame_pts as _frame_pts
from engine.media.probe import _open_input as _open_input
from engine.media.probe import _probe_path as _probe_path
from engine.media.probe import _read_error as _read_error
from engine.media.probe import check_segment_start as check_segment_start
from engine.media.still import STILL_FPS as STILL_FPS
from engine.media.still import STILL_SUFFIXES as STILL_SUFFIXES
from engine.media.still import is_still_image as is_still_image
from engine.media.still import still_video as still_video

__all__ = [
    "FrameBatch",
    "MuxPlan",
    "VideoInfo",
    "mux_foley",
    "mux_plan",
    "probe_video",
    "read_audio",
    "read_frames",
    "read_segment_frames",
    "write_wav",
]
