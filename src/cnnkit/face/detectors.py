"""Choosing a face detector: dlib's HOG (fast, frontal faces) or the MMOD CNN (turned, small,
poorly lit faces; :mod:`cnnkit.face.mmod`), ``hog+cnn`` (HOG, and the CNN only where HOG finds
nothing: HOG's boxes and cost on most images, the CNN's recall on the rest), or ``auto``.

``auto`` picks the CNN where it is cheap enough: on a GPU always, on the CPU when the image after
upsampling has at most :data:`CNN_AUTO_MAX_PIXELS` pixels (about 0.5 s at 1 thread on a recent
x86 core: the CNN costs about 0.5 us per upsampled pixel there, HOG about a tenth of that).
It logs what it chose, and :func:`detect_with` returns it.

A photo over :data:`DETECT_MAX_PIXELS` (a 12 Mpx phone photo) is searched on a copy scaled
down to that many pixels (Pillow's antialiased bilinear), and the boxes are mapped back onto
the full image; landmarks and chips are then made from the full image. At 1 thread a 4000x3000
photo takes ~0.9 s with HOG instead of ~3.4 s (docs/face.md, bench/face_photos.py), and the
smallest face found there at upsample 1 is ~60 px instead of ~40 px: ``upsample=2`` gives that
recall back, at the old cost.

Example:
    >>> found = detect_with(image, upsample=1, detector="auto")
    >>> found.detector, found.boxes                  # "cnn", [(top, right, bottom, left), ...]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cnnkit.face.detection import Box, check_image, detect_scored

log = logging.getLogger(__name__)

#: The names a detector can be asked for by.
DETECTORS = ("hog", "cnn", "hog+cnn", "auto")
#: The use cases' (and so the CLI's and the server's) detector: the CNN where it is cheap (a GPU,
#: or an image of at most :data:`CNN_AUTO_MAX_PIXELS` after upsampling), else HOG. On LFW-dev
#: (150x150) it is the CNN: 99.20% pair accuracy, HOG 99.10% (bench/face_detector_lever.py).
DEFAULT_DETECTOR = "auto"
#: ``auto`` on the CPU uses the CNN up to this many pixels after upsampling (~0.5 s, 1 thread).
CNN_AUTO_MAX_PIXELS = 1_000_000
#: Larger images are searched on a copy scaled down to this many pixels (2000x1500 for a 4:3
#: photo; a 1080p video frame is not scaled), the boxes mapped back.
DETECT_MAX_PIXELS = 3_000_000
#: No detector can find a face in an image whose shorter side, after upsampling, is below this
#: (and the CNN's unpadded convolutions fail on one of a few pixels): such an image has no face.
MIN_SIDE = 16


@dataclass(frozen=True)
class Detections:
    """Faces found in one image: boxes (top, right, bottom, left), their scores, and the detector
    that ran (``"hog"`` or ``"cnn"``; ``auto`` resolved)."""

    boxes: list[Box]
    scores: list[float]
    detector: str


def _cnn_device_is_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_detector(detector: str, shape: tuple[int, ...], upsample: int) -> str:
    """``"hog"`` or ``"cnn"`` for a request of ``detector`` on an image of ``shape`` (H, W, ...);
    ``"hog+cnn"`` stays itself (which one ran is known only after HOG has run).

    Raises:
        ValueError: an unknown detector name.
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}; got {detector!r}")
    if detector != "auto":
        return detector
    if _cnn_device_is_gpu():
        return "cnn"
    pixels = int(shape[0]) * int(shape[1]) * 4 ** max(upsample, 0)
    return "cnn" if pixels <= CNN_AUTO_MAX_PIXELS else "hog"


def describe_detector(detector: str) -> str:
    """What a request of ``detector`` runs, in words: ``"hog"``, ``"cnn"``, or auto's rule on
    this machine (for the service's /info and /readyz)."""
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}; got {detector!r}")
    if detector == "hog+cnn":
        return "hog, then cnn where hog finds no face"
    if detector != "auto":
        return detector
    if _cnn_device_is_gpu():
        return "auto: cnn (GPU)"
    return f"auto: cnn up to {CNN_AUTO_MAX_PIXELS:,} px after upsampling, else hog"


_last_auto: list[str] = []  # the choice auto last logged, so a folder of images logs it once


def _say_auto(used: str, shape: tuple[int, ...], searched: tuple[int, ...]) -> None:
    """Log auto's choice at INFO when it differs from the last one logged (else DEBUG)."""
    level = logging.DEBUG if _last_auto[-1:] == [used] else logging.INFO
    _last_auto[:] = [used]
    scaled = "" if searched[:2] == shape[:2] else f", searched at {searched[1]}x{searched[0]}"
    log.log(level, "face detector auto: using %s (image %dx%d%s)", used, shape[1], shape[0], scaled)


def _clip(rect: tuple[int, int, int, int], h: int, w: int) -> Box:
    left, top, right, bottom = rect
    return (max(top, 0), min(right, w), min(bottom, h), max(left, 0))


def detection_size(shape: tuple[int, ...], max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) of the copy an image of ``shape`` is searched on: itself up to
    ``max_pixels`` (None: :data:`DETECT_MAX_PIXELS`; 0: no limit), else scaled down to that
    many pixels, aspect ratio kept."""
    h, w = int(shape[0]), int(shape[1])
    limit = DETECT_MAX_PIXELS if max_pixels is None else max_pixels
    if limit <= 0 or h * w <= limit:
        return h, w
    s = (limit / (h * w)) ** 0.5
    return max(1, int(h * s)), max(1, int(w * s))


def _scale_box(box: Box, sy: float, sx: float, h: int, w: int) -> Box:
    """A box of the scaled copy on the full image (pixel centres: x = (x' + 1/2) / s - 1/2)."""
    top, right, bottom, left = box
    return (
        max(round((top + 0.5) / sy - 0.5), 0),
        min(round((right + 0.5) / sx - 0.5), w),
        min(round((bottom + 0.5) / sy - 0.5), h),
        max(round((left + 0.5) / sx - 0.5), 0),
    )


def _run(image: np.ndarray, upsample: int, used: str) -> Detections:
    if min(image.shape[:2]) * 2**upsample < MIN_SIDE:
        return Detections([], [], "cnn" if used == "cnn" else "hog")
    if used in ("hog", "hog+cnn"):
        scored = detect_scored(image, upsample)
        if scored or used == "hog":
            return Detections([b for b, _ in scored], [s for _, s in scored], "hog")
    from cnnkit.face.mmod import default_detector

    h, w = image.shape[:2]
    found = default_detector().detect(image, upsample)
    return Detections([_clip(d.rect, h, w) for d in found], [d.confidence for d in found], "cnn")


def detect_with(
    image: np.ndarray, upsample: int = 1, detector: str = "hog", max_pixels: int | None = None
) -> Detections:
    """Faces in an (H, W, 3) uint8 RGB image by the chosen detector, most confident first.

    Boxes are clipped to the image, as :func:`cnnkit.face.detection.detect` does; the CNN's
    are dlib's ``cnn_face_detection_model_v1(path)(image, upsample)`` rectangles. ``hog+cnn``
    returns HOG's faces when it finds any (``detector == "hog"``), else the CNN's (``"cnn"``).
    An image over ``max_pixels`` (None: :data:`DETECT_MAX_PIXELS`; 0: no limit) is searched on
    a scaled-down copy (:func:`detection_size`), its boxes mapped back; one with a side under
    :data:`MIN_SIDE` after upsampling has no face.
    """
    image = check_image(image)
    if upsample < 0:
        raise ValueError(f"upsample must be >= 0, got {upsample}")
    h, w = image.shape[:2]
    dh, dw = detection_size(image.shape, max_pixels)
    small = image
    if (dh, dw) != (h, w):
        from PIL import Image

        resized = Image.fromarray(image).resize((dw, dh), Image.Resampling.BILINEAR)
        small = np.asarray(resized)
    used = resolve_detector(detector, small.shape, upsample)
    if detector == "auto":
        _say_auto(used, image.shape, small.shape)
    found = _run(small, upsample, used)
    if small is image:
        return found
    sy, sx = dh / h, dw / w
    boxes = [_scale_box(b, sy, sx, h, w) for b in found.boxes]
    return Detections(boxes, found.scores, found.detector)
