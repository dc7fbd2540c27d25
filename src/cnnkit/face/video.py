"""Faces in a video: detect every Nth frame, track between detections, name each track.

:func:`identify_video` decodes a clip with PyAV and, frame by frame:

1. on every ``every``-th frame, HOG finds the faces; each box joins the track whose last box
   overlaps it most (IoU >= ``min_iou``, greedy, best pairs first); a box that overlaps none
   starts a new track; a track that no box joins ends;
2. between detections, each track keeps its last box (faces move little in ``every`` frames);
3. a track gets a descriptor when it starts and a fresh one every ``refresh`` detections
   (landmarks + align + embed with the database's pipeline), and is named by the same rule as
   ``identify`` (tau, T-norm when calibrated so).

With ``track=False`` (for comparison) every detected face gets a descriptor at every detection.
One :class:`VideoRow` per face per frame: ``frame, time, track, box, name, distance``. With
``out``, an annotated copy (boxes and names drawn with Pillow) is encoded (H.264, else MPEG-4)
and written atomically (a temporary file beside ``out``, renamed at the end).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.errors import CnnkitError, ImageReadError
from cnnkit.face.detection import Box

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.store import PersonStore

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"}


def is_video(path: str | Path) -> bool:
    """Is this a video file, by its suffix?"""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoRow:
    """One face in one frame."""

    frame: int
    time: float  # seconds
    track: int
    box: Box  # (top, right, bottom, left)
    name: str | None  # None: unknown
    distance: float  # to the nearest enrolled person, when the track was last described


@dataclass
class _Track:
    id: int
    box: Box
    name: str | None = None
    distance: float = float("inf")
    detections: int = 0  # detections since the last descriptor
    described: bool = False


@dataclass
class VideoStats:
    """What :func:`identify_video` did."""

    frames: int = 0
    detections: int = 0  # frames where the detector ran
    descriptors: int = 0  # faces embedded
    tracks: int = 0
    seconds: float = 0.0
    rows: list[VideoRow] = field(default_factory=list)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (top, right, bottom, left) boxes (inclusive pixels)."""
    top, bottom = max(a[0], b[0]), min(a[2], b[2])
    left, right = max(a[3], b[3]), min(a[1], b[1])
    inter = max(0, bottom - top + 1) * max(0, right - left + 1)

    def area(x: Box) -> int:
        return (x[2] - x[0] + 1) * (x[1] - x[3] + 1)

    return inter / float(area(a) + area(b) - inter)


def associate(tracks: list[Box], boxes: list[Box], min_iou: float) -> dict[int, int]:
    """Greedy IoU matching: box index -> track index, best overlaps first, each used once."""
    pairs = sorted(
        ((iou(t, b), ti, bi) for ti, t in enumerate(tracks) for bi, b in enumerate(boxes)),
        reverse=True,
    )
    used_t: set[int] = set()
    out: dict[int, int] = {}
    for score, ti, bi in pairs:
        if score < min_iou:
            break
        if ti in used_t or bi in out:
            continue
        used_t.add(ti)
        out[bi] = ti
    return out


def _writer(path: Path, width: int, height: int, rate: Any) -> tuple[Any, Any, Any]:
    """(tmp file, container, stream) of an encoder writing to a temp file beside ``path``."""
    import av

    from cnnkit.io.atomic import _open_temp_beside

    fd, tmp = _open_temp_beside(path)
    os.close(fd)
    fmt = {".mkv": "matroska", ".avi": "avi", ".webm": "webm", ".mov": "mov"}.get(
        path.suffix.lower(), "mp4"
    )
    container = av.open(tmp, mode="w", format=fmt)
    stream = None
    for codec in ("libx264", "mpeg4"):
        try:
            stream = container.add_stream(codec, rate=rate)
            break
        except Exception:  # noqa: BLE001  (a codec missing from this FFmpeg build)
            continue
    if stream is None:
        container.close()
        raise CnnkitError("no H.264 or MPEG-4 encoder in this PyAV build", path=path)
    stream.width, stream.height = width + width % 2, height + height % 2
    stream.pix_fmt = "yuv420p"
    return tmp, container, stream


def draw(frame: np.ndarray, rows: list[VideoRow]) -> np.ndarray:
    """The frame with each face's box and name drawn: (H, W, 3) uint8 -> the same shape."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    pen = ImageDraw.Draw(img)
    for r in rows:
        top, right, bottom, left = r.box
        colour = (40, 200, 80) if r.name else (230, 60, 40)
        pen.rectangle((left, top, right, bottom), outline=colour, width=2)
        label = f"{r.name or 'unknown'} {r.distance:.2f}" if np.isfinite(r.distance) else "?"
        pen.text((left + 2, max(0, top - 12)), label, fill=colour)
    return np.asarray(img)


def identify_video(
    store: PersonStore,
    path: str | Path,
    *,
    every: int = 5,
    refresh: int = 10,
    track: bool = True,
    out: str | Path | None = None,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    tolerance: float | None = None,
    min_iou: float = 0.3,
    on_row: Callable[[VideoRow], None] | None = None,
    show_progress: bool = True,
    detector: str = "hog",
) -> VideoStats:
    """Name the faces of a video (see the module doc); rows go to ``on_row`` as they come
    (and are kept in the result only without ``on_row``); ``detector``: hog, cnn or auto (see
    :func:`cnnkit.face.detect`)."""
    import av

    from cnnkit.face.alignment import align_faces
    from cnnkit.face.descriptors import checked_pipeline, get_pipeline
    from cnnkit.face.detection import detect
    from cnnkit.face.identification import identification_threshold, named_distance
    from cnnkit.face.pipeline import embed_chips
    from cnnkit.face.usecases import _encoder
    from cnnkit.progress import progress

    if every < 1 or refresh < 1:
        raise CnnkitError(f"--every and refresh must be >= 1, got {every} and {refresh}")
    path = Path(path)
    try:
        container = av.open(str(path))
        vstream = container.streams.video[0]
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise ImageReadError(f"cannot read the video: {exc}", path=path) from exc
    enc = _encoder(encoder)
    pipeline = get_pipeline(checked_pipeline(store, enc))
    threshold = identification_threshold(store, tolerance)
    stats = VideoStats()
    tracks: list[_Track] = []
    next_id = 0
    writer = None
    rate = vstream.average_rate or 25
    t0 = time.perf_counter()
    total = vstream.frames or None
    try:
        frames = container.decode(vstream)
        for i, frame in enumerate(
            progress(frames, total=total, desc="video", unit="frame") if show_progress else frames
        ):
            image = frame.to_ndarray(format="rgb24")
            if out is not None and writer is None:
                writer = _writer(Path(out), image.shape[1], image.shape[0], rate)
            if i % every == 0:
                boxes = detect(image, upsample, detector)
                stats.detections += 1
                match = associate([t.box for t in tracks], boxes, min_iou) if track else {}
                kept: list[_Track] = []
                for bi, box in enumerate(boxes):
                    if bi in match:
                        t = tracks[match[bi]]
                        t.box = box
                        t.detections += 1
                    else:
                        t = _Track(next_id, box)
                        next_id += 1
                    kept.append(t)
                tracks = kept
                todo = [t for t in tracks if not t.described or t.detections >= refresh]
                if todo:
                    boxes = [t.box for t in todo]
                    _, chips = align_faces(image, boxes, pipeline.landmark_upsample, pipeline.views)
                    emb = embed_chips(chips, enc, pipeline.flip, pipeline.views)
                    stats.descriptors += len(todo)
                    for t, near in zip(todo, store.nearest(emb, threshold.k), strict=True):
                        t.name, _ = threshold.decide(near, store)
                        t.distance = named_distance(near, t.name)
                        t.described, t.detections = True, 0
            seconds = float(frame.time) if frame.time is not None else i / float(rate)
            rows = [VideoRow(i, seconds, t.id, t.box, t.name, t.distance) for t in tracks]
            for r in rows:
                if on_row is not None:
                    on_row(r)
                else:
                    stats.rows.append(r)
            if writer is not None:
                _, out_container, out_stream = writer
                pic = draw(image, rows)
                if pic.shape[0] != out_stream.height or pic.shape[1] != out_stream.width:
                    pic = np.pad(
                        pic,
                        (
                            (0, out_stream.height - pic.shape[0]),
                            (0, out_stream.width - pic.shape[1]),
                            (0, 0),
                        ),
                    )
                vf = av.VideoFrame.from_ndarray(pic, format="rgb24")
                for packet in out_stream.encode(vf):
                    out_container.mux(packet)
            stats.frames += 1
        stats.tracks = next_id
        if writer is not None:
            tmp, out_container, out_stream = writer
            for packet in out_stream.encode():
                out_container.mux(packet)
            out_container.close()
            writer = None
            os.replace(tmp, Path(out))  # type: ignore[arg-type]
    except av.FFmpegError as exc:
        raise ImageReadError(f"cannot decode the video: {exc}", path=path) from exc
    finally:
        container.close()
        if writer is not None:  # failed half-way: drop the temporary file
            with contextlib.suppress(Exception):
                writer[1].close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(writer[0])
    stats.seconds = time.perf_counter() - t0
    return stats
