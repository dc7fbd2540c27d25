"""Fast style transfer of a video, frame by frame, with PyAV (FFmpeg).

The style condition (style vector or built-in style weights) is computed once; each decoded frame
goes through the transformer; frames are encoded with H.264 (MPEG-4 Part 2 where libx264 is
missing) into a temporary file beside the output, renamed only when the whole video is written,
so an error or Ctrl-C leaves no partial video. Audio is not copied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.errors import CnnkitError, DependencyError, ImageReadError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


@dataclass
class VideoResult:
    """Frames written, their rate and size, the wall time, and the precision that ran."""

    frames: int
    fps: float
    size: tuple[int, int]
    seconds: float
    precision: str


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise DependencyError(
            "the package av (PyAV) is not installed", hint='pip install "cnnkit[style]"'
        ) from exc
    return av


def _open_input(av: Any, src: Path) -> tuple[Any, Any]:
    if not src.is_file():
        raise ImageReadError("no such file", path=src, hint="check the path")
    try:
        container = av.open(str(src))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageReadError(
            "not a readable video", path=src, hint="give an MP4, MOV, MKV or WebM"
        ) from exc
    if not container.streams.video:
        container.close()
        raise ImageReadError("the file has no video stream", path=src, hint="give a video file")
    return container, container.streams.video[0]


def first_frame(src: str | Path) -> Any:
    """The first frame of a video as an RGB PIL image (the content's own style, --strength)."""
    av = _av()
    container, stream = _open_input(av, Path(src))
    try:
        for frame in container.decode(stream):
            return frame.to_image()
    except av.error.FFmpegError as exc:
        raise ImageReadError("cannot decode the video", path=src) from exc
    finally:
        container.close()
    raise ImageReadError("the video has no frames", path=src, hint="check the file")


def stylize_video(
    src: str | Path,
    dst: str | Path,
    stylizer: Any,
    cond: torch.Tensor,
    *,
    network: str = "transform",
    size: int | None = None,
    fast_size: int | None = None,
    preserve_colors: bool = False,
    blend: float = 1.0,
) -> VideoResult:
    """Stylise every frame of ``src`` into ``dst`` (atomic) with a ready condition.

    ``stylizer`` is a :class:`cnnkit.style.fast.FastStylizer`; ``cond``, ``network`` and ``blend``
    come from :func:`cnnkit.style.fast.style_condition`. ``size`` and ``fast_size`` as in
    :func:`cnnkit.style.stylize_fast` (default: the frames' own size). Raises ImageReadError for
    a file that is not a video or has no frames.
    """
    from cnnkit.io import atomic_write
    from cnnkit.progress import progress

    av = _av()
    src, dst = Path(src), Path(dst)
    fmt = _FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise CnnkitError(
            f"cannot write a {dst.suffix or 'suffix-less'} video", path=dst, hint="use .mp4"
        )
    container, stream = _open_input(av, src)
    start = time.perf_counter()
    n = 0
    fps = float(stream.average_rate or 25)
    out_size = (0, 0)
    try:
        with atomic_write(dst, "wb") as f:
            output = av.open(f, "w", format=fmt)
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            ostream = None
            bar = progress(total=stream.frames or None, desc="frames", unit="frame")
            try:
                for frame in container.decode(stream):
                    result = stylizer.stylize(
                        frame.to_image(),
                        cond,
                        network=network,
                        size=size,
                        fast_size=fast_size,
                        preserve_colors=preserve_colors,
                        blend=blend,
                    )
                    rgb = (result.image * 255.0 + 0.5).astype(np.uint8)
                    h, w = rgb.shape[:2] if ostream is None else (ostream.height, ostream.width)
                    if ostream is None:
                        h, w = h - h % 2, w - w % 2  # yuv420p wants even sides
                        ostream = output.add_stream(
                            codec, rate=Fraction(fps).limit_denominator(1001)
                        )
                        ostream.width, ostream.height, ostream.pix_fmt = w, h, "yuv420p"
                        out_size = (w, h)
                    video_frame = av.VideoFrame.from_ndarray(
                        np.ascontiguousarray(rgb[:h, :w]), format="rgb24"
                    )
                    for packet in ostream.encode(video_frame):
                        output.mux(packet)
                    n += 1
                    bar.update(1)
                if ostream is None:
                    raise ImageReadError("the video has no frames", path=src, hint="check the file")
                for packet in ostream.encode():
                    output.mux(packet)
            except av.error.FFmpegError as exc:
                raise ImageReadError(
                    f"cannot decode the video ({exc})".replace("\n", " "), path=src
                ) from exc
            finally:
                bar.close()
                output.close()
    finally:
        container.close()
    seconds = time.perf_counter() - start
    log.debug("wrote %s: %d frames in %.1f s (%s)", dst, n, seconds, stylizer.precision)
    return VideoResult(n, fps, out_size, seconds, stylizer.precision)
